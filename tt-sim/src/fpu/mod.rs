//! Tensix FPU numerics (Wormhole B0), bit-exact with Tenstorrent's functional simulator `ttsim`.
//!
//! This module turns the bytes of circular-buffer tiles into what the unpacker puts in SrcA/SrcB
//! ([`unpack`]), runs the FPU operations the compute LLK issues for one tile (
//! [`matmul`], [`eltwise`], [`datacopy`], [`reduce`], [`transpose`]), the SFPU operations
//! ([`sfpu`], f32 accuracy, not bit-exact) and turns DEST back into tile bytes the way the packer
//! does ([`pack`]). Sources of truth, read (never copied) while writing it:
//! `tenstorrent/ttsim` `src/tensix.cpp` (MVMUL, ELWADD/ELWSUB/ELWMUL, GAPOOL/GMPOOL, MOVA2D,
//! MOVD2B, UNPACR, PACR, SFPSTORE), `tenstorrent/tt-llk` `tt_llk_wormhole_b0/llk_lib`
//! (`llk_math_matmul.h`, `llk_math_eltwise_binary.h`, `llk_math_reduce.h`,
//! `llk_math_eltwise_unary_datacopy.h`) and TT-Metal's `jit_build/data_format.cpp` and
//! `genfiles.cpp` (which SrcA/SrcB and packer formats a program gets).
//!
//! # Data model
//! - [`SrcTile`]: one 32x32 tile as the unpacker leaves it in SrcA or SrcB, in tile (face) order,
//!   each datum the 19-bit source encoding (sign 18, exponent 17..10, mantissa 9..0).
//! - [`DestTile`]: one DEST tile slot. Each datum is kept as the *fp32 bit pattern of the value
//!   DEST holds*; in 16-bit (bf16) mode the low 16 bits are always zero. The hardware stores bf16
//!   in DEST with a bit swizzle (`dst_encode_bf16`: mantissa high, exponent low) that is a pure
//!   relabelling; it is not modelled because nothing in this API can observe it. DEST rows (16
//!   datums) also carry the hardware's "row valid" flag: [`DestTile::zero`] is a cleared
//!   (ZEROACC'd) slot, which reads as 0 for arithmetic and as "minus infinity" for max-pooling.
//!
//! # Signature changes from the brief (forced by the hardware)
//! - [`unpack`] takes the [`FpuConfig`]: what Float32 tiles become in SrcA/SrcB depends on the
//!   program (TT-Metal's `unpack_conditional_dst_format`: TF32 with `fp32_dest_acc_en`, else
//!   bf16 when any CB has an 8-bit-exponent format); see [`FpuConfig::for_program`].
//! - [`FpuConfig`] has two more fields, `bfp8_pack_precise` and `fp32_src`; build it with
//!   [`FpuConfig::new`] or [`FpuConfig::for_program`].
//! - [`transpose_dest`] is added (the fp32 `transpose_wh_tile` path transposes in DEST).
//!
//! # Where this deviates from ttsim, or is unsure
//! - Only 8-bit-exponent operand formats are modelled (Float32 -> TF32/bf16, Float16_b, Bfp8_b,
//!   Bfp4_b, Bfp2_b). The 5-bit-exponent family (Float16, Bfp8, Bfp4) and the fp16 DEST mode it
//!   implies (also what an all-Float32 program *without* fp32_dest_acc_en gets) return
//!   [`FpuError::Unsupported`]. Integer formats are unsupported.
//! - Packing Bfp2_b from a Bfp8_b packer source: ttsim rejects this format pair; we apply the same
//!   block rule as Bfp4_b (truncate the 7-bit magnitude to 1 bit). Unverified.
//! - Pack-time ReLU, L1 accumulation, stochastic rounding and edge masks are not modelled (the
//!   reduce ops instead leave zeros outside their result row/column, which is what the packer's
//!   reduce mask writes).
//! - [`reduce`]: GAPOOL is modelled as MVMUL restricted to the scaler's first row (row 0 of face 0
//!   of the scaler tile, 16 values); scaler rows 1..3 only affect DEST rows the packer masks.
//!   The REDUCE_ROW/SCALAR transposes go through SrcB, which truncates an fp32 DEST value to bf16
//!   (or TF32 when SrcA holds TF32); modelled. The `enforce_fp32_accumulation` LLK variant is not.
//! - [`sfpu`] is not bit-exact (see [`SfpuOp`]).
//! - Performance: [`matmul`] / [`matmul_block`] are lane-parallel i16/i32 code over the 32
//!   output columns, compiled per SIMD level and dispatched at run time (see the `matmul`
//!   module docs). Measured with `cargo bench -p tt-sim --bench fpu_matmul` on the shared
//!   development machine (AMD EPYC, best of 15 batches, other builds running; 2 * 32^3 FLOP per
//!   tile matmul): AVX-512 path about 15-18 GFLOP/s for bfp8 LoFi (17-19 before the zero-operand
//!   bookkeeping below) and 6.5-7 GFLOP/s for bf16 HiFi4 (fp32 or 16-bit DEST); the AVX2 path (measured with the AVX-512 clone removed) about
//!   9-10 and 4.3-4.6 GFLOP/s. Baseline x86-64 (SSE2) code was about 4x slower than AVX2 when last
//!   measured. Zero operands are skipped where that is exact (zero K rows of in1 / rows of in0,
//!   see the `matmul` module): a pass of the `hifi` conv plan's isolated products (weight tiles
//!   with one live K row per group of 8; TF32 x bf16, HiFi4, fp32 DEST) measured 6.5 us per tile
//!   against 9.6 us dense (AVX-512; the AVX2 clone about 9 us, measured one revision
//!   earlier). [`eltwise`] and GAPOOL [`reduce`] use the same lane code (1-2.5 us per tile);
//!   [`unpack`] and [`pack`] cost under 1 us per tile ([`SrcTile`] keeps its datums on the
//!   heap: moving 4 KiB tiles through `Result`s cost more than the unpack itself).
//! - [`matmul_block`] is the batched entry point: `dst[r * ct + c] += in0[r] x in1[c]`, each
//!   operand tile decomposed once per block (for `matmul_block`-style LLK calls, `rt_dim` x
//!   `ct_dim` output tiles per K tile). The decomposition is cheap: per tile it measured the
//!   same as one [`matmul`] per output tile for HiFi4 and up to ~10% faster for LoFi.
//! - Special values: infinities and NaNs go through the same integer datapath as on ttsim (an
//!   exponent of 255 is an ordinary large exponent; overflow saturates to infinity), so they
//!   match ttsim, but no test pins them.

// Numeric kernels here index several parallel arrays by hardware row/column/face position; range
// loops state that directly. The pool helpers take the LLK's full operand set.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]

mod core;
mod eltwise;
mod matmul;
mod pack;
mod sfpu;
mod sfpu_llk;

pub use eltwise::{datacopy, eltwise, reduce, transpose, transpose_dest};
pub use matmul::{matmul, matmul_block};
pub use pack::{pack, unpack, unpack_to_dest};
pub use sfpu::{SfpuError, SfpuModel, sfpu, sfpu_for_arch, sfpu_with_model};

use thiserror::Error;
use tt_formats::DataFormat;

/// Datums in one 32x32 tile.
pub const TILE_DATUMS: usize = 1024;

/// Index of element (row `r`, column `c`) of a 32x32 tile in tile (face) order.
#[inline(always)]
pub const fn face_index(r: usize, c: usize) -> usize {
    ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16
}

/// Errors of the FPU model.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FpuError {
    /// A tile buffer of the wrong size.
    #[error("{what}: a {format:?} tile is {expected} bytes, got {actual}; pass exactly one tile")]
    WrongLength {
        /// Which buffer.
        what: &'static str,
        /// Its format.
        format: DataFormat,
        /// Required bytes.
        expected: usize,
        /// Given bytes.
        actual: usize,
    },
    /// A format or mode the FPU model does not implement.
    #[error("{what} is not supported by the simulator's FPU model: {hint}")]
    Unsupported {
        /// What was attempted.
        what: String,
        /// What to do instead.
        hint: &'static str,
    },
    /// A [`matmul_block`] whose DEST slice does not hold one tile per (row, column) pair.
    #[error(
        "matmul_block: {rows} in0 tiles x {cols} in1 tiles need {} DEST tiles, got {dst}; pass \
         rt_dim * ct_dim DEST tiles in row-major order",
        rows * cols
    )]
    BlockShape {
        /// DEST tiles given.
        dst: usize,
        /// in0 (row) tiles.
        rows: usize,
        /// in1 (column) tiles.
        cols: usize,
    },
}

/// Math fidelity: how many multiplier phases each product gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fidelity {
    /// Phase 0 only: SrcA's top 5 x SrcB's top 7 mantissa bits.
    LoFi,
    /// Phases 0-1.
    HiFi2,
    /// Phases 0-2.
    HiFi3,
    /// All four phases (exact bf16 x bf16 product).
    HiFi4,
}

impl Fidelity {
    /// From TT-Metal's `MathFidelity` value (0, 2, 3, 4); `None` for anything else.
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::LoFi),
            2 => Some(Self::HiFi2),
            3 => Some(Self::HiFi3),
            4 => Some(Self::HiFi4),
            _ => None,
        }
    }

    /// Number of multiplier phases (1..=4).
    pub const fn phases(self) -> u32 {
        match self {
            Self::LoFi => 1,
            Self::HiFi2 => 2,
            Self::HiFi3 => 3,
            Self::HiFi4 => 4,
        }
    }
}

/// What Float32 circular-buffer data becomes in SrcA/SrcB (TT-Metal `unpack_conditional_dst_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fp32SrcFormat {
    /// TF32: the low 13 mantissa bits are dropped (no rounding). With `fp32_dest_acc_en`.
    Tf32,
    /// bf16: denormals flushed, the low 16 bits dropped (no rounding).
    Bf16,
    /// fp16 (5-bit exponent): an all-Float32 program without fp32_dest_acc_en. Not modelled.
    Fp16,
}

/// Compute-kernel configuration the numerics depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FpuConfig {
    /// Math fidelity.
    pub fidelity: Fidelity,
    /// `fp32_dest_acc_en`: DEST holds fp32 (otherwise bf16).
    pub fp32_dest_acc: bool,
    /// `math_approx_mode` (SFPU).
    pub approx: bool,
    /// `bfp8_pack_precise`: BFP outputs are packed from an fp32/bf16 packer source instead of
    /// the default pre-rounded Bfp8_b source.
    pub bfp8_pack_precise: bool,
    /// What Float32 tiles unpack to; see [`FpuConfig::for_program`].
    pub fp32_src: Fp32SrcFormat,
}

impl FpuConfig {
    /// A configuration for a program whose circular buffers include at least one 8-bit-exponent
    /// format (bf16 / BFP*_b) or that enables fp32 accumulation: Float32 unpacks to TF32 with
    /// `fp32_dest_acc`, to bf16 without. `bfp8_pack_precise` off.
    pub fn new(fidelity: Fidelity, fp32_dest_acc: bool, approx: bool) -> Self {
        Self {
            fidelity,
            fp32_dest_acc,
            approx,
            bfp8_pack_precise: false,
            fp32_src: if fp32_dest_acc {
                Fp32SrcFormat::Tf32
            } else {
                Fp32SrcFormat::Bf16
            },
        }
    }

    /// The configuration TT-Metal derives for a compute kernel whose program uses the circular
    /// buffer formats `cb_formats` (TT-Metal `genfiles.cpp`: the exponent width is that of the
    /// non-Float32 formats; Float32 unpacks to TF32 when `fp32_dest_acc` and (all CBs are
    /// Float32 or the width is 8 bits), else to bf16 (8-bit width) or fp16 (5-bit width, or all
    /// Float32)).
    pub fn for_program(
        fidelity: Fidelity,
        fp32_dest_acc: bool,
        approx: bool,
        bfp8_pack_precise: bool,
        cb_formats: &[DataFormat],
    ) -> Self {
        let non_fp32: Vec<DataFormat> = cb_formats
            .iter()
            .copied()
            .filter(|f| {
                !matches!(
                    f,
                    DataFormat::Float32
                        | DataFormat::Int32
                        | DataFormat::UInt32
                        | DataFormat::UInt16
                        | DataFormat::UInt8
                )
            })
            .collect();
        let exp_b = non_fp32.last().is_some_and(|f| {
            matches!(
                f,
                DataFormat::Float16_b
                    | DataFormat::Bfp8_b
                    | DataFormat::Bfp4_b
                    | DataFormat::Bfp2_b
            )
        });
        let all_fp32 = cb_formats.iter().all(|f| *f == DataFormat::Float32);
        let fp32_src = if fp32_dest_acc && (all_fp32 || exp_b) {
            Fp32SrcFormat::Tf32
        } else if exp_b {
            Fp32SrcFormat::Bf16
        } else {
            Fp32SrcFormat::Fp16
        };
        Self {
            fidelity,
            fp32_dest_acc,
            approx,
            bfp8_pack_precise,
            fp32_src,
        }
    }
}

impl Default for FpuConfig {
    fn default() -> Self {
        Self::new(Fidelity::LoFi, false, false)
    }
}

/// SrcA or SrcB contents for one 32x32 tile, tile (face) order, 19-bit source encoding.
///
/// The datums live on the heap: a tile is moved through several `Result`s per operation, and
/// 4 KiB stack copies (`memmove`) measured slower than the whole unpack on the development
/// machine.
#[derive(Clone, PartialEq, Eq)]
pub struct SrcTile {
    pub(crate) v: Box<[u32; TILE_DATUMS]>,
    /// The register holds TF32 (Float32 unpacked with `fp32_dest_acc_en`), not bf16-family data.
    pub(crate) tf32: bool,
}

impl std::fmt::Debug for SrcTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SrcTile[{:?}, ..]", &self.to_f32()[..4])
    }
}

impl SrcTile {
    /// From 19-bit source datums in tile order (bits above 18 are ignored); `tf32` says the
    /// register format is TF32 (otherwise bf16-family, whose low 3 mantissa bits must be 0).
    pub fn from_raw19(v: [u32; TILE_DATUMS], tf32: bool) -> Self {
        let mut t = Self {
            v: zeroed_tile(),
            tf32,
        };
        for (o, x) in t.v.iter_mut().zip(v.iter()) {
            *o = x & 0x7FFFF;
        }
        t
    }

    /// From bf16 bit patterns in tile order (exactly what the unpacker does for Float16_b).
    pub fn from_bf16_bits(bits: &[u16; TILE_DATUMS]) -> Self {
        let mut v = zeroed_tile();
        for (o, &b) in v.iter_mut().zip(bits.iter()) {
            *o = (b as u32) << 3;
        }
        Self { v, tf32: false }
    }

    /// From f32 values in tile order, converted as the unpacker converts Float32 with `fmt`.
    pub fn from_f32(vals: &[f32; TILE_DATUMS], fmt: Fp32SrcFormat) -> Result<Self, FpuError> {
        let mut v = zeroed_tile();
        for (o, x) in v.iter_mut().zip(vals.iter()) {
            *o = pack::fp32_to_src(x.to_bits(), fmt)?;
        }
        Ok(Self {
            v,
            tf32: fmt == Fp32SrcFormat::Tf32,
        })
    }

    /// The 19-bit datums, tile order.
    pub fn raw19(&self) -> &[u32; TILE_DATUMS] {
        &self.v
    }

    /// The values as f32 (exact), tile order.
    pub fn to_f32(&self) -> [f32; TILE_DATUMS] {
        let mut o = [0f32; TILE_DATUMS];
        for (o, &x) in o.iter_mut().zip(self.v.iter()) {
            *o = f32::from_bits(x << 13);
        }
        o
    }

    /// The tile with rows and columns swapped (what the unpacker's transpose delivers).
    pub fn transposed(&self) -> Self {
        let mut v = zeroed_tile();
        for r in 0..32 {
            for c in 0..32 {
                v[face_index(c, r)] = self.v[face_index(r, c)];
            }
        }
        Self { v, tf32: self.tf32 }
    }
}

/// A zeroed tile of datums on the heap (allocated zeroed, never built on the stack).
pub(crate) fn zeroed_tile() -> Box<[u32; TILE_DATUMS]> {
    let Ok(v) = vec![0u32; TILE_DATUMS].into_boxed_slice().try_into() else {
        unreachable!("a boxed slice of TILE_DATUMS elements converts to a boxed array");
    };
    v
}

/// One DEST tile slot (64 rows of 16 datums, tile order). See the module docs for the encoding.
#[derive(Clone, PartialEq, Eq)]
pub struct DestTile {
    pub(crate) v: [u32; TILE_DATUMS],
    /// Bit i set: DEST row i (datums 16i..16i+15) has been written since the last clear.
    pub(crate) valid: u64,
}

impl std::fmt::Debug for DestTile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DestTile[valid={:#x}, {:?}, ..]",
            self.valid,
            &self.v[..4]
        )
    }
}

impl Default for DestTile {
    fn default() -> Self {
        Self::zero()
    }
}

impl DestTile {
    /// A cleared slot (what the packer's release leaves behind).
    pub fn zero() -> Self {
        Self {
            v: [0; TILE_DATUMS],
            valid: 0,
        }
    }

    /// The value bits (fp32 patterns, tile order).
    pub fn bits(&self) -> &[u32; TILE_DATUMS] {
        &self.v
    }

    /// From fp32 bit patterns as DEST would hold them in the mode `cfg` selects: in 16-bit mode
    /// each value is rounded to bf16 (nearest, ties to even, as the SFPU kernels round before
    /// storing) and denormals flush to signed zero; in fp32 mode denormals flush.
    pub fn from_bits(bits: &[u32; TILE_DATUMS], cfg: &FpuConfig) -> Self {
        let mut t = Self {
            v: [0; TILE_DATUMS],
            valid: u64::MAX,
        };
        for (o, &b) in t.v.iter_mut().zip(bits.iter()) {
            *o = sfpu::store_to_dest(b, cfg.fp32_dest_acc);
        }
        t
    }

    /// From f32 values (see [`DestTile::from_bits`]).
    pub fn from_f32(vals: &[f32; TILE_DATUMS], cfg: &FpuConfig) -> Self {
        let mut bits = [0u32; TILE_DATUMS];
        for (o, v) in bits.iter_mut().zip(vals.iter()) {
            *o = v.to_bits();
        }
        Self::from_bits(&bits, cfg)
    }

    /// The values as f32, tile order (exact: DEST values are bf16 or fp32).
    pub fn to_f32(&self, _cfg: &FpuConfig) -> [f32; TILE_DATUMS] {
        let mut o = [0f32; TILE_DATUMS];
        for (o, &x) in o.iter_mut().zip(self.v.iter()) {
            *o = f32::from_bits(x);
        }
        o
    }

    /// Value at tile row `r`, column `c`.
    pub fn get(&self, r: usize, c: usize) -> f32 {
        f32::from_bits(self.v[face_index(r, c)])
    }

    /// Reads datum `i` for arithmetic (an invalid row reads 0).
    #[inline(always)]
    pub(crate) fn read(&self, i: usize) -> u32 {
        self.v[i]
    }

    /// Writes datum `i` (already in DEST precision) and marks its row valid.
    #[inline(always)]
    pub(crate) fn write(&mut self, i: usize, x: u32) {
        self.v[i] = x;
        self.valid |= 1u64 << (i / 16);
    }

    /// Marks every row written.
    pub(crate) fn set_all_valid(&mut self) {
        self.valid = u64::MAX;
    }
}

/// Rounds the fp32 result of an FPU operation to what DEST stores (keeps the bf16 half in
/// 16-bit mode; the FPU already rounded it there).
#[inline(always)]
pub(crate) fn dest_store(result: u32, fp32: bool) -> u32 {
    if fp32 { result } else { result & 0xFFFF_0000 }
}

/// Eltwise binary operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EltOp {
    /// ELWADD: A + B.
    Add,
    /// ELWSUB: A - B.
    Sub,
    /// ELWMUL: A * B (always accumulated onto DEST, as on hardware).
    Mul,
}

/// Broadcast of the B operand (TT-Metal `BroadcastType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bcast {
    /// `out[r][c] = A[r][c] op B[r][c]`.
    None,
    /// `*_tiles_bcast_rows`: B's row 0 is used for every row: `out[r][c] = A[r][c] op B[0][c]`.
    Rows,
    /// `*_tiles_bcast_cols`: B's column 0 is used for every column:
    /// `out[r][c] = A[r][c] op B[r][0]`.
    Cols,
    /// `*_tiles_bcast_scalar`: `out[r][c] = A[r][c] op B[0][0]`.
    Scalar,
}

/// Reduction (TT-Metal `PoolType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum of value x scaler (GAPOOL).
    Sum,
    /// Same datapath as `Sum` (the scaler tile carries 1/N).
    Avg,
    /// Maximum (GMPOOL; the scaler must be 1.0).
    Max,
}

/// Reduction direction (TT-Metal `ReduceDim`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceDim {
    /// Reduce each row; result in column 0.
    Row,
    /// Reduce each column; result in row 0.
    Col,
    /// Reduce everything; result at `[0][0]`.
    Scalar,
}

pub use sfpu::SfpuOp;

/// Operations [`cost_cycles`] knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CostOp {
    /// One 32x32x32 tile matmul (16 MVMUL per fidelity phase).
    Matmul,
    /// Eltwise add/sub of one tile.
    EltwiseAddSub,
    /// Eltwise multiply of one tile.
    EltwiseMul,
    /// Copy of one tile to DEST.
    Datacopy,
    /// One reduce_tile.
    Reduce,
    /// One transpose_wh_tile.
    Transpose,
    /// One SFPU op on one tile.
    Sfpu(SfpuOp),
}

/// Estimated math-thread cycles of one tile operation (a model for the timing estimate, not a
/// measurement): MVMUL and ELW* process 8 rows x 16 columns per cycle, so a tile matmul is 16
/// cycles per fidelity phase, add/sub 8, multiply 8 per phase; SFPU ops run 32 lanes and cost
/// [`SfpuOp::instructions`] instructions per row pair of lanes (>= 32 cycles per tile).
pub fn cost_cycles(op: CostOp, cfg: &FpuConfig) -> u64 {
    let phases = cfg.fidelity.phases() as u64;
    match op {
        CostOp::Matmul => 16 * phases,
        CostOp::EltwiseAddSub | CostOp::Datacopy | CostOp::Transpose => 8,
        CostOp::EltwiseMul => 8 * phases,
        CostOp::Reduce => 4 * 2 * phases + 16,
        CostOp::Sfpu(op) => 32 * op.instructions(cfg.approx) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_program_follows_tt_metal_conditional_format_rule() {
        use DataFormat::*;
        let f = |acc, cbs: &[DataFormat]| {
            FpuConfig::for_program(Fidelity::LoFi, acc, false, false, cbs).fp32_src
        };
        assert_eq!(f(true, &[Float32, Float16_b]), Fp32SrcFormat::Tf32);
        assert_eq!(f(true, &[Float32, Float32]), Fp32SrcFormat::Tf32);
        assert_eq!(f(false, &[Float32, Bfp8_b]), Fp32SrcFormat::Bf16);
        assert_eq!(f(false, &[Float32, Float32]), Fp32SrcFormat::Fp16);
        assert_eq!(f(true, &[Float32, Float16]), Fp32SrcFormat::Fp16);
        assert_eq!(
            FpuConfig::new(Fidelity::HiFi2, true, false).fp32_src,
            Fp32SrcFormat::Tf32
        );
        assert_eq!(Fidelity::from_raw(3), Some(Fidelity::HiFi3));
        assert_eq!(Fidelity::from_raw(1), None);
    }

    #[test]
    fn cost_model_matches_the_published_per_tile_cycles() {
        for (fid, mm) in [
            (Fidelity::LoFi, 16),
            (Fidelity::HiFi2, 32),
            (Fidelity::HiFi3, 48),
            (Fidelity::HiFi4, 64),
        ] {
            let cfg = FpuConfig::new(fid, false, false);
            assert_eq!(cost_cycles(CostOp::Matmul, &cfg), mm);
            assert_eq!(cost_cycles(CostOp::EltwiseAddSub, &cfg), 8);
            assert_eq!(cost_cycles(CostOp::EltwiseMul, &cfg), mm / 2);
            assert!(cost_cycles(CostOp::Sfpu(SfpuOp::Relu), &cfg) >= 32);
        }
    }
}
