//! Which kernels are compute kernels. Shared, as one file, by the crate and by `build.rs` (which
//! includes it with `#[path]`), so the build-time syntax check and the run-time catalogue agree.

/// Whether the kernel at `path` (relative to `kernels/`) with `source` is a compute kernel: it
/// lives under `compute/` or includes the compute API (`api/compute/...`, or the older
/// `compute_kernel_api...`). Everything else is a data-movement kernel.
pub fn is_compute(path: &str, source: &str) -> bool {
    path.starts_with("compute/")
        || path.contains("/compute/")
        || source.contains("\"api/compute/")
        || source.contains("\"compute_kernel_api")
}
