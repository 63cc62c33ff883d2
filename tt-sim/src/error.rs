//! Simulator errors. Each variant maps onto one `tt_status` code of the C ABI.

use thiserror::Error;

/// What went wrong in the simulator. The message is what the C ABI's `last_error()` returns.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SimError {
    /// A bad value passed by the host: a core outside the grid, a bad size or index.
    #[error("{0}")]
    InvalidArgument(String),
    /// An L1 or DRAM allocation did not fit; the message says how much is free.
    #[error("{0}")]
    OutOfMemory(String),
    /// The C++ compiler rejected a kernel; the message holds the compiler output.
    #[error("{0}")]
    KernelBuild(String),
    /// A running kernel broke a rule (watcher-grade check); the message names core, RISC, kernel and call.
    #[error("{0}")]
    KernelFault(String),
    /// No RISC can make progress; the message lists every blocked call.
    #[error("{0}")]
    Deadlock(String),
    /// A feature the simulator does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// The host environment failed (address window taken, memfd/mmap failed, no compiler).
    #[error("{0}")]
    Device(String),
    /// A bug in the simulator.
    #[error("internal simulator error: {0}")]
    Internal(String),
}

impl SimError {
    /// The `tt_status` code of the C ABI for this error.
    pub fn status(&self) -> u32 {
        use tt_sys::tt_status as s;
        match self {
            SimError::InvalidArgument(_) => s::TT_ERR_INVALID_ARGUMENT,
            SimError::OutOfMemory(_) => s::TT_ERR_OUT_OF_MEMORY,
            SimError::KernelBuild(_) => s::TT_ERR_KERNEL_BUILD,
            SimError::KernelFault(_) => s::TT_ERR_KERNEL_FAULT,
            SimError::Deadlock(_) => s::TT_ERR_DEADLOCK,
            SimError::Unsupported(_) => s::TT_ERR_UNSUPPORTED,
            SimError::Device(_) => s::TT_ERR_DEVICE,
            SimError::Internal(_) => s::TT_ERR_INTERNAL,
        }
    }

    /// The message without the variant.
    pub fn message(&self) -> String {
        self.to_string()
    }
}

/// Shorthand for results of simulator calls.
pub type SimResult<T> = Result<T, SimError>;

pub(crate) fn invalid<T>(msg: impl Into<String>) -> SimResult<T> {
    Err(SimError::InvalidArgument(msg.into()))
}
