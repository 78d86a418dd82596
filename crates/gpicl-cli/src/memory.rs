//! How the process's allocator treats the step's tensors.
//!
//! A training step allocates and frees the same few-megabyte tensors hundreds of times. glibc's
//! malloc serves each such block with its own `mmap` and returns it with `munmap` on free (or
//! trims the heap), so every step faults the same memory in again, page by page, zeroed by the
//! kernel: 30 % of a Flex step on this project's benchmark (README, "The CPU step"). Keeping
//! freed memory in the process removes that; the cost is that the process holds on to its peak
//! use until it exits, which for a training run is what it needs anyway.

/// Tells glibc's malloc to serve blocks below 32 MiB from its heap and never to hand freed heap
/// memory back to the system. Elsewhere (other C libraries, other systems) it does nothing.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
