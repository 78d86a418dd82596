//! Choosing the compute device.

use anyhow::{Result, bail};
use burn::prelude::*;

/// A backend name from the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Pure-Rust CPU backend.
    Flex,
    /// wgpu: Vulkan/Metal/DX12 (llvmpipe on a machine without a GPU).
    Wgpu,
    /// CUDA (build with `--features cuda`).
    Cuda,
}

impl Backend {
    /// The backend's name, as results and checkpoints record it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// The device for this backend.
    pub fn device(self) -> Result<Device> {
        match self {
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => bail!(
                "this build of gpicl has no {other:?} backend (rebuild with --features {})",
                format!("{other:?}").to_lowercase()
            ),
        }
    }
}
