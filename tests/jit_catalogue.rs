//! Every kernel embedded from `kernels/` builds in the simulator's JIT (through tt-safe and the C
//! ABI), not only in build.rs's syntax check: this guards against the two include layouts
//! drifting apart. Compute kernels are those [`tt_kernels::kernels::is_compute`] recognises; every compile-time arg is 2,
//! as in the syntax check.

#[path = "support/common.rs"]
mod common;

use tt_kernels::kernels;
use tt_safe::{Arch, ComputeConfig, KernelKind, KernelSpec, Program, core};

#[test]
fn every_kernel_builds_in_the_simulator_jit() {
    let device = common::sim(Arch::WormholeB0);
    let mut built = 0;
    for (path, source) in kernels::ALL {
        if !path.ends_with(".cpp") {
            continue;
        }
        let kind = if tt_kernels::kernels::is_compute(path, source) {
            KernelKind::compute(ComputeConfig::default())
        } else {
            KernelKind::riscv0()
        };
        // One program per kernel: a core runs one kernel per RISC.
        let mut program = Program::new(&device).unwrap();
        let spec = KernelSpec::new(*path, *source, kind, core(0, 0)).compile_args(vec![2; 64]);
        if let Err(e) = program.add_kernel(spec) {
            panic!("kernels/{path} does not build in the simulator: {e}");
        }
        built += 1;
    }
    assert!(built >= 15, "only {built} kernels found");
}
