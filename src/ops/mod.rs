//! Op builders (program factories) for the TTS pipeline: each op plans L1 (circular buffers sized
//! to fit, time-axis slicing with halos for long sequences), the core grid and weight multicast,
//! builds its kernels from [`crate::kernels`], runs on a `tt_safe::Device`, and has a CPU reference
//! in f64/f32 it is tested against.
//!
//! Conventions shared by every op (see [`common`]):
//! - Activations of a sequence model are stored **time-major**: a `[T, C]` matrix (rows = time
//!   steps, columns = channels), tiled (32x32) in an interleaved DRAM buffer. A 1x1 conv is then a
//!   matmul `[T, Cin] x [Cin, Cout]`; a k-tap conv sums k shifted matmuls.
//! - Weights are prepared once on the host into the layout and data format the kernel reads
//!   (tilized, bf16 / bfp8_b / bfp4_b) and kept on the device.
//! - No op falls back to the CPU: a shape it cannot run returns an error naming the limit.

pub mod common;

pub mod eltwise;
pub mod matmul;
pub mod norm;
pub mod split;

pub mod conv;
pub mod conv_transpose;

pub mod attention;
pub mod embed;
pub mod gru;
pub mod spline;
