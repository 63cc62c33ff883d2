//! tt-sim: a Tensix simulator that runs unmodified TT-Metal kernels in-process.
//!
//! # Contract
//! An unmodified TT-Metal kernel (0.81-era dialect: `void kernel_main()` for data movement and
//! compute, and the legacy `namespace NAMESPACE { void MAIN { ... } }` for compute) runs on the
//! host and produces the bits the hardware would (the FPU numerics are [`fpu`]'s, bit-exact with
//! Tenstorrent's `ttsim` where that module says so). A kernel that breaks a rule fails with
//! [`SimError::KernelFault`] naming the core (logical x,y), the RISC, the kernel, the call and the
//! source line; a hang fails with [`SimError::Deadlock`] listing every blocked call.
//!
//! Two ways in:
//! - the Rust API: [`SimDevice`] (buffers, runs), [`SimProgram`] (circular buffers, semaphores,
//!   kernels, runtime args), configs [`BufferConfig`], [`CbConfig`], [`KernelConfig`];
//! - the C ABI of `tt-sys/include/tt_shim.h`: [`shim_api`] returns the provider table
//!   (provider name `"sim"`), which is how tt-safe drives the simulator. Every feature of the Rust
//!   API is reachable through it. [`ffi::tt_sim_shim_get_api`] is the same as an exported C symbol.
//!
//! # How it works
//! - **JIT** ([`jit`]): kernel source + defines + `-DKERNEL_COMPILE_TIME_ARGS=...` are compiled by
//!   the host C++ compiler (`$TT_SIM_CXX` or `c++`, C++20, `-O2 -fPIC -shared`) against emulation
//!   headers embedded in this crate (`tt-sim/emu/`, written to the cache at run time) into a
//!   content-addressed cache (`$TT_SIM_CACHE_DIR`, else `$XDG_CACHE_HOME/tt-sim`, else
//!   `~/.cache/tt-sim`). **A C++20 compiler is required at run time.** Compile errors are
//!   [`SimError::KernelBuild`] with the compiler output.
//! - **Kernel images**: each kernel binary is `dlopen`ed once per process and shared by every
//!   program, core and run that uses it; mutable kernel globals are still per core and per RISC
//!   (each RISC's copy is swapped in when it is resumed) and start from their initial values on
//!   every run (the image's writable segments are snapshotted at load).
//! - **Execution**: every RISC (BRISC, NCRISC, and the three TRISCs as one sequential thread) is a
//!   stackful coroutine on the calling thread, scheduled deterministically (cores row-major, then
//!   BRISC, NCRISC, compute). Blocking calls (CB wait/reserve, semaphore waits) yield. Same inputs,
//!   same schedule, same bits.
//! - **Memory**: each core's L1 is a memfd; the running core's L1 is mapped at its device addresses
//!   `[0x10000, l1_size)` so kernels dereference device addresses directly
//!   (`reinterpret_cast<volatile uint32_t*>(get_write_ptr(cb))`, semaphores, `get_arg_addr`). The
//!   window is reserved once per process; program runs in one process are serialised. The
//!   simulator's own region (16 semaphores at 0x10000, 16 B apart; runtime args from 0x11000,
//!   per RISC slot: BRISC, NCRISC, compute) lies below `l1_unreserved_base`. L1 buffers are
//!   allocated top-down, circular buffers bottom-up from `l1_unreserved_base` at the same address on
//!   every core of their range; a run whose CBs reach into L1 buffers fails with
//!   [`SimError::OutOfMemory`] saying how much is free. DRAM banks are sparse host memory with the
//!   interleaved rule (page i on bank i % banks at `base + (i / banks) * align(page)`); L1 buffers can
//!   be interleaved (one bank per worker, row-major) or height/width/block sharded
//!   (tt-formats' `ShardedPageMap`). Arch constants and coordinates come from tt-formats'
//!   `ArchSpec` (Wormhole B0 n150 8x8, Blackhole p150 11x10).
//! - **NoC**: transfers are checked when issued and delivered when the issuing RISC calls a
//!   barrier, blocks, or exits, so data used without a barrier is stale; pushing CB pages an
//!   outstanding read targets, popping pages an outstanding write reads, and exiting with
//!   transactions outstanding are faults.
//! - **Multicast** (as the hardware): a rectangle is given by two worker corners in NoC coordinates
//!   and may span the DRAM/Ethernet/PCIe rows and columns between them (Wormhole's DRAM column x=5,
//!   Ethernet row y=6); it is delivered to the Tensix worker cores inside it only, and `num_dests`
//!   must be the number of those workers (minus the sender unless `loopback_src`). So one rectangle
//!   from the first to the last worker of a row, column or the whole grid is correct, as TT-Metal
//!   kernels compute it.
//! - **Compute**: DEST (8 tiles 16-bit half-sync, 4 with fp32 accumulation, 16/8 full-sync) and
//!   the unpack/math/pack numerics are done by [`fpu`].
//!
//! # Checks (watcher grade)
//! NoC address out of range, zero length, coordinates that are neither a worker nor a DRAM bank,
//! misalignment (L1 16 B; DRAM reads at the DRAM alignment), multicast rectangles that are
//! inverted (NoC 1 takes them swapped) or whose corners are not workers, `num_dests` not matching
//! the number of worker cores in the rectangle, writes into the firmware-reserved region (only semaphores may be written below
//! `l1_unreserved_base`), CB pushes/pops that straddle the ring end or exceed what was
//! reserved/waited for, unconfigured CBs and semaphores, runtime-arg index out of range, DEST index
//! beyond capacity and DEST protocol misuse, kernel exit with outstanding NoC transactions or DEST
//! held, deadlocks. Not detected: raw pointer writes by a kernel into reserved L1 (only NoC writes
//! are checked) and wild pointers outside L1 (they crash the process like on a host program).
//!
//! # Timing (ESTIMATES)
//! [`timing`] is a cycle-approximate model: per-RISC clocks (three threads for compute) advanced
//! by FPU work per fidelity, unpack/pack, API calls and NoC issue; NoC transfers finish by link
//! bandwidth, DRAM bank bandwidth and hops; blocking calls resume at the producer's timestamp.
//! [`RunStats`] carries the program's estimated cycles (max over RISCs) and
//! [`SimProgram::profile`] the per-core, per-thread breakdown, exportable as a Chrome/Perfetto
//! trace ([`Profile::to_chrome_trace`]) or a text summary ([`Profile::summary`]). The model and
//! its calibration against published matmul numbers are in `docs/timing.md`.

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
pub mod timing;

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
pub use timing::{Profile, Span, SpanKind, ThreadProfile, TimingParams};

impl SimDevice {
    /// Runs a program to completion (TT-Metal `EnqueueMeshWorkload` + `Finish`).
    pub fn run(&mut self, program: &mut SimProgram) -> SimResult<RunStats> {
        kernel_host::run_program(self, program)
    }
}
