//! Split operands for fp32-grade matmuls on the Tensix FPU.
//!
//! # Why
//! The FPU reads a `Float32` tile as **TF32**: the unpacker drops the low 13 of the 23 mantissa
//! bits (truncation toward zero, tt-formats [`tt_formats::tf32_truncate`]; tt-sim
//! `fpu/pack.rs` `fp32_to_src`), so a matmul sees 11 significant bits of each Float32 activation
//! (relative loss below `2^-10`). Multiplying the lost part as well recovers about 21-22 bits:
//! with `a = hi + lo`, `hi = TF32(a)` and `lo = a - TF32(a)` (exact in fp32), the FPU reads `hi`
//! exactly and `lo` as `TF32(lo)`. For `|a|` in `[2^e, 2^(e+1))`, `|lo| < 2^(e-10)`, so `lo`'s
//! exponent is at most `e - 11` and `TF32(lo)` drops less than `2^(e-21)`:
//! `|a - (TF32(a) + TF32(lo))| < 2^-21 |a|` (the tests check this bound; measured up to
//! `3.6e-7 = 2^-21.4` on random data).
//! A conv contracts an input whose channel tiles are interleaved copies `[a, lo(a), a]` against
//! weights `[w_hi, w_hi, w_lo]`, i.e. `a w_hi + lo w_hi + a w_lo`.
//!
//! # Contract of [`split_operand`]
//! - Input `x [rows, C]`, `Float32` or `Float16_b`, any shape. `a = pre(x)` is computed in fp32
//!   on the SFPU (`pre` is [`Activation::None`], [`Activation::Relu`] or
//!   [`Activation::LeakyRelu`] with a finite slope; leaky ReLU multiplies by the slope with one
//!   fp32 rounding, `slope * x` in f32). For a bf16 input, `a` is the fp32 value of `pre(x)`.
//! - Output `Float32 [rows, P * tiles(C) * 32]` (`P = parts.len()`), parts interleaved per tile
//!   column: output tile column `t * P + s` holds part `parts[s]` of input tile column `t`.
//!   [`Part::Full`] is `a` bit for bit; [`Part::Lo`] is `a - TF32(a)` where `TF32(a)` is what the
//!   unpacker actually delivers to the FPU: the kernel packs `a` to a Float32 buffer, reads it
//!   back once straight to DEST (`UnpackToDestFp32`, exact) and once through a source register
//!   with an FPU datacopy (exactly the matmul's unpack path), and subtracts the two on the SFPU
//!   (`sub_binary_tile`, exact here). So `hi + Lo == a` holds for whatever conversion the
//!   unpacker does, not only for the documented truncation. (DEST flushes denormals: a value
//!   with `|a| < 2^-126` is stored as zero, and a `Lo` below `2^-126` is zero. A non-finite `a`
//!   gives a NaN `Lo`.) For a bf16 input with `pre` None or Relu, `a` has 8 significant bits
//!   and `Lo` is exactly zero: a caller can skip the Lo pass there.
//! - Padding: the reader zeroes the padding rows and columns of the input tiles in L1, so every
//!   part's padding (columns `C..32 * tiles(C)` of each part tile, rows past `rows`) is zero
//!   (`pre(0) = 0`, `lo(0) = 0`), whatever the input's padding held; the output has
//!   [`DeviceTensor::pad_is_zero`] set.
//! - One launch, multi-core over the input tiles (each core a contiguous range in row-major tile
//!   order, like [`crate::ops::eltwise`]). [`split_operand_range`] splits only the input tile
//!   columns of a range (the convs' input-channel chunks): the output then has
//!   `P * range.len()` tile columns, and the padding rule applies to the input's own last tile
//!   column when the range holds it. Kernels: `kernels/ops/split/{reader,compute,writer}.cpp`.
//!   The compute makes at most one Full and one Lo tile per input tile; the writer writes each
//!   to every output column that asks for it.
//!
//! # Cost
//! DRAM-bound: per input tile one tile read (4 KiB Float32 / 2 KiB bf16) and `P` 4 KiB tile
//! writes. On the simulator's timing model (Wormhole, 64 cores) `[4096, 512]` Float32 (2048
//! tiles) takes 73 us for `[Full]` or `[Lo]` and 136 us for `[Full, Lo, Full]` (about 235 GB/s
//! of DRAM traffic, 4.3k cycles per input tile per core); `[1024, 192]` (192 tiles) 13 us for
//! `[Full, Lo, Full]`; an eltwise Float32 leaky ReLU of the same tensor costs the same as `[Full]`.

use tt_safe::{
    CbConfig, ComputeConfig, CoreRange, DataFormat, Device, KernelKind, KernelSpec, MathFidelity,
    Program, RunStats, core,
};

use super::common::{Activation, DeviceTensor, OpError, TILE};
use crate::kernels;

const OP: &str = "split_operand";

/// Most parts one call can produce (the writer takes the parts as 32-bit masks).
pub const MAX_PARTS: usize = 32;

/// One part of a split operand tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// a itself (Float32; the FPU will read it as TF32)
    Full,
    /// a - TF32(a): exactly what the FPU loses when it reads a (exact in fp32)
    Lo,
}

/// out = the parts of a = pre(input), interleaved per tile column: output tile column t*P + s
/// (P = parts.len()) holds part s of input tile column t. Output Float32, [rows, P * tiles(C) * 32].
///
/// See the module docs for the contract (what Lo is, padding, the kernels). Errors:
/// [`OpError::InvalidArgument`] for empty `parts`, more than [`MAX_PARTS`] parts or a `pre`
/// other than None / Relu / LeakyRelu(finite); [`OpError::FormatUnsupported`] for an input
/// that is not Float32 or Float16_b; [`OpError::ForeignDevice`] for an input on another device.
pub fn split_operand(
    device: &Device,
    input: &DeviceTensor,
    pre: Activation,
    parts: &[Part],
) -> Result<(DeviceTensor, RunStats), OpError> {
    split_operand_range(device, input, pre, parts, 0..input.tile_cols())
}

/// [`split_operand`] of the input tile columns `tiles` only (channels `32 tiles.start ..
/// min(32 tiles.end, C)`): output Float32 `[rows, P * tiles.len() * 32]`, tile column `u * P + s`
/// holding part `s` of input tile column `tiles.start + u`. Used by the convs to split one
/// input-channel chunk at a time. Errors as [`split_operand`], plus
/// [`OpError::InvalidArgument`] for an empty range or one past the input's tile columns.
pub fn split_operand_range(
    device: &Device,
    input: &DeviceTensor,
    pre: Activation,
    parts: &[Part],
    tiles: std::ops::Range<usize>,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let pre_code = validate(device, input, pre, parts)?;
    let in_ct = input.tile_cols();
    if tiles.is_empty() || tiles.end > in_ct {
        return Err(OpError::InvalidArgument {
            op: OP,
            what: format!(
                "tile-column range {tiles:?} is empty or past the input's {in_ct} tile columns"
            ),
        });
    }
    let (full_mask, lo_mask) = masks(parts);
    let p = parts.len();
    // The kernels work in "range space": `ct` tile columns per tile row.
    let ct = tiles.len();
    let mt = input.tile_rows();
    let n_tiles = mt * ct;
    let f32f = DataFormat::Float32;
    let mut out = DeviceTensor::alloc(device, input.rows(), p * ct * TILE, f32f)?;

    let grid = device.grid();
    let n_cores = grid.num_cores().min(n_tiles).max(1);
    let gx = grid.size.x as usize;
    let cores: Vec<_> = (0..n_cores)
        .map(|i| core((i % gx) as u32, (i / gx) as u32))
        .collect();
    let set: Vec<CoreRange> = cores.iter().map(|&c| CoreRange::single(c)).collect();

    let mut program = Program::new(device)?;
    program.add_circular_buffer(set.clone(), CbConfig::tiles(0, input.format(), 2))?;
    if lo_mask != 0 {
        program.add_circular_buffer(set.clone(), CbConfig::tiles(1, f32f, 1))?;
        program.add_circular_buffer(set.clone(), CbConfig::tiles(2, f32f, 1))?;
    }
    program.add_circular_buffer(set.clone(), CbConfig::tiles(16, f32f, 4))?;

    let reader = program.add_kernel(
        KernelSpec::new(
            "ops_split_reader",
            kernels::OPS_SPLIT_READER,
            KernelKind::riscv0(),
            set.clone(),
        )
        .compile_args(input.buffer().accessor_args()?),
    )?;
    let writer = program.add_kernel(
        KernelSpec::new(
            "ops_split_writer",
            kernels::OPS_SPLIT_WRITER,
            KernelKind::riscv1(),
            set.clone(),
        )
        .compile_args(out.buffer().accessor_args()?),
    )?;
    // CB 1 (the exact copy of a) always unpacks straight to DEST; CB 2 never does (it is read
    // like a matmul operand); CB 0 does when Float32 (a bf16 CB 0 is exact through SrcA).
    let mut utd = Vec::new();
    if input.format() == f32f {
        utd.push(0);
    }
    if lo_mask != 0 {
        utd.push(1);
    }
    let mut spec = KernelSpec::new(
        "ops_split_compute",
        kernels::OPS_SPLIT_COMPUTE,
        KernelKind::compute(ComputeConfig {
            fidelity: MathFidelity::HiFi4,
            fp32_dest_acc: true,
            unpack_to_dest_fp32: utd,
            ..ComputeConfig::default()
        }),
        set.clone(),
    )
    .define("PRE", pre_code.to_string())
    .define("PRE_PARAM", format!("{}u", pre.param_bits()));
    if full_mask != 0 {
        spec = spec.define("HAS_FULL", "1");
    }
    if lo_mask != 0 {
        spec = spec.define("HAS_LO", "1");
    }
    let compute = program.add_kernel(spec)?;

    let per = n_tiles.div_ceil(n_cores);
    let in_addr = input.buffer().address_u32()?;
    let out_addr = out.buffer().address_u32()?;
    let valid_cols = (input.cols() - (in_ct - 1) * TILE) as u32;
    let valid_rows = (input.rows() - (mt - 1) * TILE) as u32;
    for (i, &c) in cores.iter().enumerate() {
        let start = (i * per).min(n_tiles) as u32;
        let count = per.min(n_tiles.saturating_sub(i * per)) as u32;
        program.set_runtime_args(
            reader,
            c,
            &[
                in_addr,
                start,
                count,
                in_ct as u32,
                mt as u32,
                valid_cols,
                valid_rows,
                tiles.start as u32,
                ct as u32,
            ],
        )?;
        program.set_runtime_args(
            writer,
            c,
            &[
                out_addr, start, count, ct as u32, p as u32, full_mask, lo_mask,
            ],
        )?;
        program.set_runtime_args(compute, c, &[count])?;
    }
    let stats = device.run(&program)?;
    out.set_pad_is_zero(true);
    Ok((out, stats))
}

/// Bit s of the first mask is set when `parts[s]` is Full, of the second when it is Lo.
fn masks(parts: &[Part]) -> (u32, u32) {
    let mut full = 0u32;
    let mut lo = 0u32;
    for (s, part) in parts.iter().enumerate() {
        match part {
            Part::Full => full |= 1 << s,
            Part::Lo => lo |= 1 << s,
        }
    }
    (full, lo)
}

/// Checks the arguments; returns the kernel's `PRE` code (0 none, 1 relu, 2 leaky relu).
fn validate(
    device: &Device,
    input: &DeviceTensor,
    pre: Activation,
    parts: &[Part],
) -> Result<u32, OpError> {
    if parts.is_empty() {
        return Err(OpError::InvalidArgument {
            op: OP,
            what: "parts is empty; ask for at least one part (e.g. [Part::Full, Part::Lo])".into(),
        });
    }
    if parts.len() > MAX_PARTS {
        return Err(OpError::InvalidArgument {
            op: OP,
            what: format!(
                "{} parts requested, at most {MAX_PARTS} per call; split the request into several calls",
                parts.len()
            ),
        });
    }
    let code = match pre {
        Activation::None => 0,
        Activation::Relu => 1,
        Activation::LeakyRelu(s) if s.is_finite() => 2,
        Activation::LeakyRelu(s) => {
            return Err(OpError::InvalidArgument {
                op: OP,
                what: format!("leaky ReLU slope {s} is not finite"),
            });
        }
        other => {
            return Err(OpError::InvalidArgument {
                op: OP,
                what: format!(
                    "pre-activation {other:?} is not supported; use None, Relu or LeakyRelu \
                     (apply other functions with the eltwise op first)"
                ),
            });
        }
    };
    if !matches!(input.format(), DataFormat::Float32 | DataFormat::Float16_b) {
        return Err(OpError::FormatUnsupported {
            op: OP,
            role: "input",
            format: input.format(),
            supported: "Float32 or Float16_b (convert the input with Eltwise::convert first)",
        });
    }
    // tt-safe exposes no device identity; a different device kind or provider is caught here.
    if input.device().info() != device.info() || input.device().selection() != device.selection() {
        return Err(OpError::ForeignDevice { op: OP });
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_parts() {
        assert_eq!(masks(&[Part::Full, Part::Lo, Part::Full]), (0b101, 0b010));
        assert_eq!(masks(&[Part::Full, Part::Full]), (0b11, 0));
        assert_eq!(masks(&[Part::Lo]), (0, 1));
    }
}
