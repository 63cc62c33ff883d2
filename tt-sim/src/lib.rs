//! tt-sim: a Tensix simulator that runs unmodified TT-Metal kernels on the host.
//!
//! (Crate documentation is completed in the docs step.)

mod alloc;
pub mod arch;
mod compute;
pub mod device;
mod dram;
pub mod error;
pub mod ffi;
pub mod fpu;
pub mod jit;
mod kernel_host;
mod l1;
pub mod program;
mod run;

pub use arch::{ArchParams, CoreCoord, CoreRange, SimArch};
pub use device::{
    BufferConfig, BufferId, BufferLayout, BufferType, DeviceInfo, ShardOrientation, ShardSpec,
    SimDevice,
};
pub use error::{SimError, SimResult};
pub use ffi::shim_api;
pub use kernel_host::RunStats;
pub use program::{
    CbConfig, CbFormat, ComputeConfig, KernelConfig, KernelId, KernelKind, MathFidelity, Risc,
    SimProgram,
};

impl SimDevice {
    /// Runs a program to completion (TT-Metal `EnqueueMeshWorkload` + `Finish`).
    pub fn run(&mut self, program: &mut SimProgram) -> SimResult<RunStats> {
        kernel_host::run_program(self, program)
    }
}
