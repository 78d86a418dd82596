"""Where a Flex training step's CPU time goes, by kind of work, from a `perf` sampling profile.

Usage (Linux, perf from the linux-perf package; no debug info needed):
    perf record -e cpu-clock -F 999 -o flex.data -- gpicl bench --backends flex --preset bench
    python3 bench/flex_profile.py flex.data

Prints each kind's share of the samples (all threads), the largest first. Symbols are sorted into
kinds by name: burn's matrix products (the gemm crate), our kernels (gpicl_core::kernels), burn's
element-wise ops, memory traffic (copies, zero fills, page faults), task sampling, the rest.
"""

import collections
import re
import subprocess
import sys

KINDS = [
    ("matrix products (gemm)", r"gemm"),
    ("attention (our kernel)", r"kernels::attend"),
    ("GELU (our kernel)", r"kernels::gelu"),
    ("layer norm (our kernel)", r"kernels::layer_norm"),
    ("GELU's erf and exp (burn, scalar)", r"erff|__expf|xflowf|expf"),
    ("copies and zero fills", r"memmove|memcpy|memset|copy_2d|to_contiguous"),
    ("page faults and the kernel's memory work",
     r"page_fault|clear_page|mm_fault|alloc_pages|folio|brk|munmap|unmap|tlb|lru|memcg|rmqueue"),
    ("element-wise ops (burn)", r"binary_op|unary_op|scalar_op|zip_|macerator|reduce|softmax|cat"),
    ("task sampling", r"rand|chacha|StandardNormal|Normal|TaskSampler|from_seed"),
    ("allocator", r"malloc|_int_free|free\b|cfree"),
    ("threads waiting (rayon, scheduler)", r"sched|futex|yield|rayon|switch|spin"),
]


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else "perf.data"
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio", "-g", "none"],
        capture_output=True, text=True, check=True,
    ).stdout
    shares = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s+([0-9.]+)%\s+\[[.k]\]\s+(.*)", line)
        if not m:
            continue
        share, symbol = float(m.group(1)), m.group(2)
        kind = next((k for k, pattern in KINDS if re.search(pattern, symbol)), "other")
        shares[kind] += share
    for kind, share in shares.most_common():
        print(f"{share:6.1f} %  {kind}")


if __name__ == "__main__":
    main()
