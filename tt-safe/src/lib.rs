//! Safe Rust over the `tt_shim.h` C ABI: devices, core grids, buffers, circular buffers,
//! programs, kernels, semaphores, runtime args, multicast plans and host tile conversions, on
//! either device provider (the in-process simulator `tt-sim`, or TT-Metal through
//! `libtt_shim_metal.so`).
//!
//! # Contract
//! - **Provider choice happens in one function**, [`Device::open`]. [`DeviceSelector::Auto`]
//!   (also [`Device::open_default`]) honours `TT_DEVICE=sim|metal`, `TT_SIM_ARCH=wormhole|blackhole`
//!   and `TT_DEVICE_ID`; without `TT_DEVICE` it opens metal when the shim library loads
//!   (`TT_SHIM_LIB` or the default search) *and* reports a device, otherwise the simulator. The
//!   choice is never silent: [`Device::provider`] says which, [`Device::selection`] says why, and
//!   [`Device::open_metal`] fails (never falls back) when metal is absent.
//! - **Ownership (RAII)**: a [`Device`] is an `Arc`; every [`Buffer`] and [`Program`] holds it, so
//!   the provider's device is closed only after all of them are destroyed (the ABI requires that
//!   order). A program holds the buffers that back its globally allocated circular buffers.
//! - **Threads**: all types are `Send + Sync`; calls on one device (its buffers, its programs) are
//!   serialised by a per-device lock, which is what the ABI's "one thread at a time per handle"
//!   asks for, and guarantees the provider's per-thread error text belongs to our call.
//! - **Validation before the provider**: what the host can check is checked here with typed
//!   errors that say what to do (core outside the grid, CB index reused on an overlapping core or
//!   out of range, runtime-arg count over the limit, a shard spec that breaks TT-Metal's rules,
//!   a buffer that cannot fit in L1, a multicast rectangle that would write cores that are not its
//!   receivers). What only the provider knows (how much L1 is free, compiler output, kernel faults
//!   with core/RISC/kernel/line, deadlocks) comes back verbatim inside the error.
//! - **Timing**: [`RunStats`] carries the provider's `is_estimate` flag; simulator numbers are
//!   model estimates and are labelled so by `Display`. [`Program::profile`] gives the estimated
//!   per-core, per-RISC breakdown of the last run ([`Profile`]: busy / waiting on CBs / waiting
//!   on NoC and semaphores, a Chrome/Perfetto trace and a text summary).
//! - **Unsafe code**: `#![deny(unsafe_code)]`; the only exception is the private `ffi` module,
//!   where every `unsafe` block states its `// SAFETY:` argument.
//!
//! # Example: a DRAM -> L1 -> DRAM copy
//! A reader kernel on RISCV_0 pulls pages of a DRAM buffer into circular buffer 0; a writer
//! kernel on RISCV_1 drains it into another DRAM buffer. Both address DRAM through TT-Metal 0.81's
//! `TensorAccessor`, whose compile-time args come from [`Buffer::accessor_args`].
//! ```
//! use tt_safe::{Args, Buffer, CbConfig, DataFormat, Device, KernelKind, KernelSpec, Program, Tensor2d, core};
//!
//! const READER: &str = r#"
//! #include "api/dataflow/dataflow_api.h"
//! void kernel_main() {
//!     const uint32_t src_addr = get_arg_val<uint32_t>(0);
//!     const uint32_t n = get_arg_val<uint32_t>(1);
//!     constexpr uint32_t cb = 0;
//!     constexpr auto args = TensorAccessorArgs<0>();
//!     const auto src = TensorAccessor(args, src_addr, get_tile_size(cb));
//!     for (uint32_t i = 0; i < n; ++i) {
//!         cb_reserve_back(cb, 1);
//!         noc_async_read_page(i, src, get_write_ptr(cb));
//!         noc_async_read_barrier();
//!         cb_push_back(cb, 1);
//!     }
//! }
//! "#;
//! const WRITER: &str = r#"
//! #include "api/dataflow/dataflow_api.h"
//! void kernel_main() {
//!     const uint32_t dst_addr = get_arg_val<uint32_t>(0);
//!     const uint32_t n = get_arg_val<uint32_t>(1);
//!     constexpr uint32_t cb = 0;
//!     constexpr auto args = TensorAccessorArgs<0>();
//!     const auto dst = TensorAccessor(args, dst_addr, get_tile_size(cb));
//!     for (uint32_t i = 0; i < n; ++i) {
//!         cb_wait_front(cb, 1);
//!         noc_async_write_page(i, dst, get_read_ptr(cb));
//!         noc_async_write_barrier();
//!         cb_pop_front(cb, 1);
//!     }
//! }
//! "#;
//!
//! # fn main() -> Result<(), tt_safe::Error> {
//! let device = Device::open_default()?;
//! println!("running on {} ({})", device.provider(), device.selection());
//!
//! // A 50 x 70 f32 matrix -> 2 x 3 bf16 tiles (zero-padded to whole tiles).
//! let input = Tensor2d::from_fn(50, 70, |r, c| (r as f32 - c as f32) * 0.25);
//! let format = DataFormat::Float16_b;
//! let bytes = input.to_tiles(format)?;
//! let page = format.tile_size_bytes() as u32;
//! let n_tiles = (bytes.len() / page as usize) as u32;
//!
//! let src = Buffer::dram(&device, bytes.len() as u64, page)?;
//! let dst = Buffer::dram(&device, bytes.len() as u64, page)?;
//! src.write(&bytes)?;
//!
//! let c = core(0, 0);
//! let mut program = Program::new(&device)?;
//! program.add_circular_buffer(c, CbConfig::tiles(0, format, 2))?;
//! let reader = program.add_kernel(
//!     KernelSpec::new("reader", READER, KernelKind::riscv0(), c).compile_args(src.accessor_args()?),
//! )?;
//! let writer = program.add_kernel(
//!     KernelSpec::new("writer", WRITER, KernelKind::riscv1(), c).compile_args(dst.accessor_args()?),
//! )?;
//! program.set_runtime_args(reader, c, &Args::new().addr(&src)?.u32(n_tiles))?;
//! program.set_runtime_args(writer, c, &Args::new().addr(&dst)?.u32(n_tiles))?;
//! let stats = device.run(&program)?;
//! println!("{stats}"); // simulator times are labelled as estimates
//!
//! let output = Tensor2d::from_tiles(&dst.read()?, 50, 70, format)?;
//! assert_eq!(output, Tensor2d::from_tiles(&bytes, 50, 70, format)?);
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod buffer;
pub mod device;
pub mod error;
mod ffi;
pub mod grid;
pub mod mcast;
pub mod profile;
pub mod program;
pub mod tiles;

pub use args::{Args, pod_slice_words, pod_words};
pub use buffer::{
    Buffer, BufferConfig, BufferKind, ShardGeometry, ShardLayout, ShardOrientation, ShardSpec,
};
pub use device::{Device, DeviceInfo, DeviceSelector, ProviderKind};
pub use error::{
    BufferError, Error, GridError, McastError, OpenError, ProgramError, ProviderError, RunError,
    ShardSpecError, Status, TileError,
};
pub use grid::{CoreCoord, CoreRange, CoreRangeSet, CoreSpec, Grid, NocMap, core, range};
pub use mcast::{McastPlan, McastRect, McastRole, McastSemaphores};
pub use profile::{CoreProfile, Profile, ProfileThread, ThreadProfile};
pub use program::{
    CbConfig, CbFormat, CbHandle, ComputeConfig, KernelHandle, KernelKind, KernelSpec,
    MathFidelity, Noc, Processor, Program, RunStats, SemaphoreId,
};
pub use tiles::Tensor2d;
pub use tt_formats::{Arch, DataFormat};
