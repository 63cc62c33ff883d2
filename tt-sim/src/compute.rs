//! Compute kernel state: DEST and the FPU plumbing (filled in with the fpu module).

use crate::error::SimResult;
use crate::program::ComputeConfig;
use crate::run::{RiscCtx, RunState};

/// Per compute-RISC state.
#[derive(Debug, Default)]
pub(crate) struct ComputeState {}

impl ComputeState {
    pub(crate) fn new(_cc: &ComputeConfig) -> SimResult<Self> {
        Ok(ComputeState {})
    }
    pub(crate) fn exit_problem(&self) -> Option<String> {
        None
    }
}

pub(crate) fn dispatch(rc: &mut RiscCtx, _st: &mut RunState, op: u32, _a: &[u32], line: u32) -> SimResult<Option<u32>> {
    Err(rc.fault("compute", line, format!("compute operation {op} is not implemented by the simulator yet")))
}
