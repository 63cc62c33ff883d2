//! `conv1d` on the device: kernel size k, stride s, asymmetric zero padding, dilation d, groups
//! (1, depthwise, or any divisor), bias and a fused activation; weights bf16 / bfp8_b / bfp4_b.
//!
//! Activations (input, output = `Precision::activations`, residual) are `Float16_b` or, with
//! `fp32_acc`, `Float32`, in any mix. With a Float32 tensor the op takes the exact-fp32 path
//! ([`ConvFormats::exact`]): the matmul reads Float32 activations as TF32 (2^-10), the bias is
//! loaded into DEST first, the residual is added on the SFPU in fp32, and a Float32 output is
//! packed unrounded ([`conv_error_bound_formats`] bounds it).
//!
//! # Split operands ([`Precision::weights_lo`], [`Precision::activations_lo`])
//! Both ops (conv1d and conv_transpose1d) implement them by **K concatenation**: the input is
//! first split on the device by [`super::split::split_operand`] (one launch; Float32
//! `[T, P * 32 * tiles(cin)]`, part `s` of input-channel tile `t` in tile column `t P + s`; a
//! fused input activation is applied there, in fp32), and the gather conv then contracts over
//! `P` parts per input-channel tile against weight rows stacked the same way
//! (`SplitLayout`):
//! - `weights_lo`: parts `[Full, Full]` x rows `[w_hi, w_lo]`;
//! - `activations_lo`: parts `[Full, Lo]` x rows `[w, w]`;
//! - both: parts `[Full, Lo, Full]` x rows `[w_hi, w_hi, w_lo]`, i.e.
//!   `a_hi w_hi + a_lo w_hi + a_hi w_lo` (the dropped `a_lo w_lo` is below `2^-18 |a w|`),
//!
//! with `w_hi = bf16(w)` (round to nearest even) and `w_lo = bf16(w - w_hi)`, both exact in
//! bf16, and `a_hi` / `a_lo` what the unpacker delivers of `a` / `a - TF32(a)`. All terms of an
//! output tile accumulate in one fp32 DEST (the bias is loaded once, the activation and the
//! residual applied once). The internal gather sees `cin' = P * 32 * tiles(cin)`; grouped and
//! depthwise output tiles keep contiguous input-tile ranges (`(lo, hi) -> (P lo, P hi)`), so the
//! kernels are unchanged. Any input format (bf16 or Float32) goes through the split, so the
//! weight layout is fixed at construction. Both flags need `fp32_acc` (the split input is
//! Float32) and are meant for Float32 outputs (a bf16 output rounds to `2^-9` again). The
//! returned [`RunStats`] are those of the split and the conv launch together
//! ([`combine_stats`]). Cost: `P` times the FPU work and in0 / weight L1 (`P` Float32 in0 tiles
//! per original tile). The gain is bounded by the MVMUL alignment (each product of a group of
//! 8 is rounded at about `2^-12` of the group's largest product): with both flags a dense conv
//! reaches that floor, see `docs/ops.md` ("Split operands") for measured errors.
//!
//! # Isolated products ([`Precision::isolate_products`]) and input-channel chunks
//! With `isolate_products` the main term is 8 parts `Full` against weight rows
//! `mask_r(w_hi)` (or `mask_r(w)` without `weights_lo`), `r = 0..7`, keeping only the rows `i`
//! of each 32-row tile with `i mod 8 == r`: every MVMUL group of 8 K holds one non-zero product
//! and the alignment rounds nothing; the correction parts follow (both flags: parts
//! `[Full x 8, Lo, Full]`, rows `[mask_0(w_hi) .. mask_7(w_hi), w_hi, w_lo]`, `P = 10`).
//! When a split conv does not plan within L1 in one launch it is prepared as input-channel
//! chunks (`prepare_chunks`: the largest chunk that plans in the worst case of a run, shared
//! evenly), each with its own weights (bias in the first), run as a split of its input tile
//! columns ([`super::split::split_operand_range`]) plus one gather launch writing a Float32
//! partial sum, chained exactly in fp32 (`run_chunks`: conv1d through the fused residual input,
//! conv_transpose1d by eltwise adds; an output activation then runs as an eltwise op on the sum,
//! followed by the caller's residual). A conv that planned in one launch before chunking existed
//! (no `isolate_products`) keeps exactly its single launch and weights.
//!
//! # Guarding against the fp32-DEST -1 quirk ([`Precision::guard_dest_quirk`])
//! An accumulation step whose aligned sum is exactly -1 unit leaves the fp32 DEST exponent 27 too
//! high (Wormhole; modelled by tt-sim): the value becomes a large negative power of two. Events
//! only move values down and the fused output steps are non-decreasing, so a guarded conv runs
//! two computations (`run_guarded`): its chunks as usual and a second set with the masked passes
//! in reverse order (`SplitLayout::reversed_of`, same split input, second weight buffer), both
//! writing Float32, then `max(a, b) = b + relu(a - b)` in exact fp32 eltwise launches. Needs
//! `isolate_products` (and `fp32_acc`). Cost: 2x the conv's launches and FPU work, 2x weight
//! memory, plus 3 eltwise launches; see `docs/ops.md`, "Split operands".
//!
//! # How it runs (kernels in `kernels/ops/conv/`)
//! A dense conv is `y[t] = sum_j x[t s + j d - pad_left] W_j` with `W_j = weight[:, :, j]^T`
//! (`[Cin, Cout]`), i.e. a sum over taps of shifted, strided `[T_out, Cin] x [Cin, Cout]` matmuls.
//! - `reader_conv_gather` builds the shifted input tiles **on the device**: per output block of
//!   32 rows it reads the window of input tiles the block needs (the slice plus its halo of
//!   `(k-1) d` rows) and copies 64-byte rows into one in0 tile per (tap, input-channel tile);
//!   rows outside `[0, T_in)` become zeros (the padding), so DRAM padding rows are never used.
//! - `conv_gather_mm` accumulates every tap and input-channel tile of an output tile in DEST
//!   (`matmul_tiles`; no partial-sum spills, fp32 throughout with fp32 accumulation), adds the
//!   bias (DEST-reuse eltwise add) and applies the activation on the SFPU.
//! - `writer_conv_interleave` writes the tiles and zeroes output rows at or beyond `T_out`.
//!
//! Grouped and depthwise convs use block-diagonal weights: output-channel tile `n` reduces only
//! over the input-channel tiles its groups read (depthwise: one), so the FPU work is
//! `k x (tiles that overlap)`, not `k x Cin`.
//!
//! # Time slicing and L1
//! The time axis is processed in blocks of 32 output rows (`32 P` for conv-transpose): each block
//! is a slice with its halo read from DRAM, so the L1 a core needs does **not** grow with T; a
//! 100k-sample sequence is simply more blocks. Per core L1 holds: the block's in0 tiles (double
//! buffered when it fits), the core's weights (resident), bias, the halo window, the output tiles
//! and the conv-transpose assembly tiles. [`plan`] sizes all of them from the device's L1 and
//! fails with [`OpError::ShapeUnsupported`] naming the limit when even one output-channel tile's
//! weights cannot fit.
//!
//! # Multi-core
//! Output channels are split into blocks of `nb` tiles (weights of a block stay resident on its
//! cores; every core reads its own copy, i.e. weights are replicated, not multicast), and time
//! blocks are split evenly over the remaining cores of the grid.

use tt_safe::{
    Args, Buffer, CbConfig, ComputeConfig, CoreCoord, CoreRange, DataFormat, Device, KernelKind,
    KernelSpec, Program, RunStats, Tensor2d, core, range,
};

use super::common::{Activation, DeviceTensor, OpError, Precision, TILE, combine_stats, tiles};
use super::eltwise::{BinaryOp, Broadcast, Eltwise, EltwiseOp, UnaryOp};
use super::split::{Part, split_operand_range};

const OP: &str = "conv1d";

/// How [`Precision::weights_lo`] / [`Precision::activations_lo`] split the operands of a
/// gather conv (K concatenation, see the module doc): per original input-channel tile, the
/// input parts and the weight rows they multiply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SplitLayout {
    /// Input parts, in tile order: part `s` of original input tile `t` is tile `t P + s`.
    pub parts: &'static [Part],
    /// The weight rows of each part.
    pub weights: &'static [WeightPart],
}

/// Which weight values multiply one input part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightPart {
    /// `w` (quantised to the weight format by the upload).
    Full,
    /// `bf16(w)` (round to nearest even).
    Hi,
    /// `bf16(w - bf16(w))`.
    Lo,
    /// [`WeightPart::Full`] on the rows `i` of each 32-row tile with `i mod 8 == r`, zero
    /// elsewhere ([`Precision::isolate_products`]).
    FullMasked(u8),
    /// [`WeightPart::Hi`] on the rows with `i mod 8 == r`, zero elsewhere.
    HiMasked(u8),
}

use Part::{Full as PF, Lo as PL};
use WeightPart::{FullMasked as FM, HiMasked as HM};
/// The 8 masked passes of the main term (`Full x 8`).
const ISO_PARTS: [Part; 8] = [PF; 8];
const ISO_FULL: [WeightPart; 8] = [FM(0), FM(1), FM(2), FM(3), FM(4), FM(5), FM(6), FM(7)];
const ISO_HI: [WeightPart; 8] = [HM(0), HM(1), HM(2), HM(3), HM(4), HM(5), HM(6), HM(7)];
const fn cat<T: Copy, const A: usize, const B: usize, const C: usize>(
    a: [T; A],
    b: [T; B],
) -> [T; C] {
    let mut out = [a[0]; C];
    let mut i = 0;
    while i < A {
        out[i] = a[i];
        i += 1;
    }
    while i < C {
        out[i] = b[i - A];
        i += 1;
    }
    out
}
static ISO_BOTH_PARTS: [Part; 10] = cat(ISO_PARTS, [PL, PF]);
static ISO_BOTH_W: [WeightPart; 10] = cat(ISO_HI, [WeightPart::Hi, WeightPart::Lo]);
static ISO_WLO_PARTS: [Part; 9] = cat(ISO_PARTS, [PF]);
static ISO_WLO_W: [WeightPart; 9] = cat(ISO_HI, [WeightPart::Lo]);
static ISO_ALO_PARTS: [Part; 9] = cat(ISO_PARTS, [PL]);
static ISO_ALO_W: [WeightPart; 9] = cat(ISO_FULL, [WeightPart::Full]);
static ISO_ONLY_W: [WeightPart; 8] = ISO_FULL;
static ISO_ONLY_PARTS: [Part; 8] = ISO_PARTS;
// The guard's second accumulation order ([`Precision::guard_dest_quirk`]): the masked passes
// reversed (`r = 7..0`), the same input parts.
const ISO_FULL_REV: [WeightPart; 8] = [FM(7), FM(6), FM(5), FM(4), FM(3), FM(2), FM(1), FM(0)];
const ISO_HI_REV: [WeightPart; 8] = [HM(7), HM(6), HM(5), HM(4), HM(3), HM(2), HM(1), HM(0)];
static ISO_BOTH_W_REV: [WeightPart; 10] = cat(ISO_HI_REV, [WeightPart::Hi, WeightPart::Lo]);
static ISO_WLO_W_REV: [WeightPart; 9] = cat(ISO_HI_REV, [WeightPart::Lo]);
static ISO_ALO_W_REV: [WeightPart; 9] = cat(ISO_FULL_REV, [WeightPart::Full]);
static ISO_ONLY_W_REV: [WeightPart; 8] = ISO_FULL_REV;

impl SplitLayout {
    /// The layout of `precision`, or `None` without a split.
    pub fn of(precision: &Precision) -> Option<SplitLayout> {
        use Part::{Full, Lo};
        if precision.isolate_products {
            // The main term as 8 masked passes, then the correction terms as above.
            let (parts, weights): (&'static [Part], &'static [WeightPart]) =
                match (precision.weights_lo, precision.activations_lo) {
                    (false, false) => (&ISO_ONLY_PARTS, &ISO_ONLY_W),
                    (true, false) => (&ISO_WLO_PARTS, &ISO_WLO_W),
                    (false, true) => (&ISO_ALO_PARTS, &ISO_ALO_W),
                    (true, true) => (&ISO_BOTH_PARTS, &ISO_BOTH_W),
                };
            return Some(SplitLayout { parts, weights });
        }
        match (precision.weights_lo, precision.activations_lo) {
            (false, false) => None,
            // a_hi w_hi + a_hi w_lo
            (true, false) => Some(SplitLayout {
                parts: &[Full, Full],
                weights: &[WeightPart::Hi, WeightPart::Lo],
            }),
            // a_hi w + a_lo w
            (false, true) => Some(SplitLayout {
                parts: &[Full, Lo],
                weights: &[WeightPart::Full, WeightPart::Full],
            }),
            // a_hi w_hi + a_lo w_hi + a_hi w_lo (a_lo w_lo, below 2^-18 |a w|, is dropped)
            (true, true) => Some(SplitLayout {
                parts: &[Full, Lo, Full],
                weights: &[WeightPart::Hi, WeightPart::Hi, WeightPart::Lo],
            }),
        }
    }

    /// The layout of the guard's second computation ([`Precision::guard_dest_quirk`]): with
    /// `isolate_products`, the same input parts against the masked weight passes in reverse
    /// order (`mask_7 .. mask_0`), so every partial sum of the main term differs from the first
    /// order; `None` without `isolate_products`.
    pub fn reversed_of(precision: &Precision) -> Option<SplitLayout> {
        if !precision.isolate_products {
            return None;
        }
        let (parts, weights): (&'static [Part], &'static [WeightPart]) =
            match (precision.weights_lo, precision.activations_lo) {
                (false, false) => (&ISO_ONLY_PARTS, &ISO_ONLY_W_REV),
                (true, false) => (&ISO_WLO_PARTS, &ISO_WLO_W_REV),
                (false, true) => (&ISO_ALO_PARTS, &ISO_ALO_W_REV),
                (true, true) => (&ISO_BOTH_PARTS, &ISO_BOTH_W_REV),
            };
        Some(SplitLayout { parts, weights })
    }

    /// Parts per input-channel tile.
    pub fn factor(&self) -> usize {
        self.parts.len()
    }

    /// Expands a dense weight matrix of `blocks` row blocks (`phases * taps`) of `cin_t * 32`
    /// rows each (`cout` columns) to the split layout: block `b`, original tile `t`, part `s`
    /// is row block `(b cin_t + t) P + s` of 32 rows, holding that part's weight values. This
    /// is the (phase, tap, input-channel tile, part) order in which the reader builds the in0
    /// tiles and the compute kernel indexes the weights, with `cin_t' = P cin_t`.
    pub fn expand(&self, dense: &[f32], blocks: usize, cin_t: usize, cout: usize) -> Vec<f32> {
        let p = self.factor();
        let mut out = vec![0f32; dense.len() * p];
        let hi = |w: f32| tt_formats::bf16_to_f32(tt_formats::f32_to_bf16_host(w));
        for bt in 0..blocks * cin_t {
            for (s, part) in self.weights.iter().enumerate() {
                for i in 0..TILE {
                    let src = &dense[(bt * TILE + i) * cout..(bt * TILE + i + 1) * cout];
                    let row = (bt * p + s) * TILE + i;
                    let dst = &mut out[row * cout..(row + 1) * cout];
                    for (d, &w) in dst.iter_mut().zip(src) {
                        *d = match *part {
                            WeightPart::Full => w,
                            WeightPart::Hi => hi(w),
                            WeightPart::Lo => hi(w - hi(w)),
                            WeightPart::FullMasked(r) if i % 8 == r as usize => w,
                            WeightPart::HiMasked(r) if i % 8 == r as usize => hi(w),
                            WeightPart::FullMasked(_) | WeightPart::HiMasked(_) => 0.0,
                        };
                    }
                }
            }
        }
        out
    }
}

/// Shape parameters of a 1-D convolution (PyTorch `Conv1d` semantics, `padding_mode="zeros"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv1dParams {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (taps).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Zeros before the sequence.
    pub pad_left: usize,
    /// Zeros after the sequence.
    pub pad_right: usize,
    /// Dilation.
    pub dilation: usize,
    /// Groups (`cin` and `cout` must be multiples; `groups == cin == cout` is depthwise).
    pub groups: usize,
}

impl Conv1dParams {
    /// Stride 1, symmetric padding `padding`, dilation 1, one group.
    pub fn new(cin: usize, cout: usize, kernel: usize, padding: usize) -> Conv1dParams {
        Conv1dParams {
            cin,
            cout,
            kernel,
            stride: 1,
            pad_left: padding,
            pad_right: padding,
            dilation: 1,
            groups: 1,
        }
    }

    /// `T_out = floor((T_in + pad_left + pad_right - d (k - 1) - 1) / s) + 1`, or `None` when the
    /// padded input is shorter than the dilated kernel.
    pub fn output_len(&self, t_in: usize) -> Option<usize> {
        let span = self.dilation * (self.kernel.saturating_sub(1)) + 1;
        let padded = t_in + self.pad_left + self.pad_right;
        (padded >= span && self.stride > 0).then(|| (padded - span) / self.stride + 1)
    }

    fn validate(&self) -> Result<(), OpError> {
        let bad = |what: String| Err(OpError::InvalidArgument { op: OP, what });
        if self.cin == 0 || self.cout == 0 || self.kernel == 0 {
            return bad(format!(
                "cin {}, cout {} and kernel {} must be positive",
                self.cin, self.cout, self.kernel
            ));
        }
        if self.stride == 0 || self.dilation == 0 || self.groups == 0 {
            return bad(format!(
                "stride {}, dilation {} and groups {} must be positive",
                self.stride, self.dilation, self.groups
            ));
        }
        if !self.cin.is_multiple_of(self.groups) || !self.cout.is_multiple_of(self.groups) {
            return bad(format!(
                "groups {} must divide cin {} and cout {}",
                self.groups, self.cin, self.cout
            ));
        }
        Ok(())
    }
}

/// The device engine shared by conv1d and conv_transpose1d ("gather conv"): per output block
/// and phase `p < phases`, in0 row `i` of tap `m` is input row
/// `block * block_stride + offsets[p] + i * row_step + m * tap_step`; phase `p`'s row `i` is
/// output row `block * 32 * phases + i * phases + out_rows[p]`.
#[derive(Debug, Clone)]
pub(crate) struct Gather {
    pub op: &'static str,
    pub t_in: usize,
    pub t_out: usize,
    pub cin: usize,
    pub cout: usize,
    pub phases: usize,
    pub taps: usize,
    pub block_stride: i64,
    pub row_step: i64,
    pub tap_step: i64,
    pub offsets: Vec<i64>,
    pub out_rows: Vec<u32>,
    /// Per output-channel tile, the input-channel tiles `[lo, hi)` it reduces over.
    pub cin_ranges: Vec<(u32, u32)>,
    /// Activation applied to the input before the convolution (relu / leaky relu or none).
    pub pre: Activation,
    /// Whether a `[t_out, cout]` residual is added after the output activation.
    pub residual: bool,
    /// Tensor formats of this run (input, output, residual).
    pub formats: ConvFormats,
    /// The exact-fp32 path (see [`ConvFormats::exact`]).
    pub exact: bool,
}

/// The activation-tensor formats of one conv run: `Float16_b` or (with `fp32_acc`) `Float32`
/// each. The output is `Precision::activations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvFormats {
    /// The input tensor.
    pub input: DataFormat,
    /// The output tensor.
    pub output: DataFormat,
    /// The residual tensor (when there is one).
    pub residual: DataFormat,
}

impl ConvFormats {
    /// bf16 in, out and residual (the original conv path).
    pub const fn bf16() -> ConvFormats {
        ConvFormats {
            input: DataFormat::Float16_b,
            output: DataFormat::Float16_b,
            residual: DataFormat::Float16_b,
        }
    }

    /// Input, output and residual all in `format` (what [`Conv1d::plan`] assumes).
    pub const fn uniform(format: DataFormat) -> ConvFormats {
        ConvFormats {
            input: format,
            output: format,
            residual: format,
        }
    }

    /// Whether the run takes the exact-fp32 path: fp32 accumulation and any Float32 tensor.
    /// Then the bias is loaded into DEST before the matmuls (exact; Float32 bias when
    /// `precision.activations` is Float32), Float32 tensors that are only copied to DEST
    /// unpack straight to DEST (`UnpackToDestFp32`) and the residual is added on the SFPU in
    /// fp32 (`add_binary_tile`). The matmul itself reads Float32 activations as TF32.
    pub fn exact(&self, precision: &Precision, residual: bool) -> bool {
        precision.fp32_acc
            && (self.input == DataFormat::Float32
                || self.output == DataFormat::Float32
                || (residual && self.residual == DataFormat::Float32))
    }
}

impl Gather {
    fn cin_t(&self) -> usize {
        tiles(self.cin)
    }
    fn cout_t(&self) -> usize {
        tiles(self.cout)
    }
    /// Output blocks (each `32 * phases` output rows).
    pub fn blocks(&self) -> usize {
        self.t_out.div_ceil(TILE * self.phases)
    }
    /// Relative input-row range `[lo, hi]` one block touches.
    fn rel_range(&self) -> (i64, i64) {
        let off_min = self.offsets.iter().copied().min().unwrap_or(0);
        let off_max = self.offsets.iter().copied().max().unwrap_or(0);
        let tap_span = (self.taps as i64 - 1) * self.tap_step;
        let rows = 31 * self.row_step;
        (
            off_min + tap_span.min(0) + rows.min(0),
            off_max + tap_span.max(0) + rows.max(0),
        )
    }
    /// Input tiles the reader's halo window must hold (same formula as the kernel).
    fn window_tiles(&self) -> usize {
        let (lo, hi) = self.rel_range();
        let span = (hi - lo + 1) as usize;
        (span.div_ceil(TILE) + 1).min(tiles(self.t_in)).max(1)
    }
}

/// How a gather conv is laid out on the device (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvPlan {
    /// Output-channel tiles per core (the resident weight block).
    pub nb: usize,
    /// Output-channel blocks (`cout_t / nb`).
    pub channel_blocks: usize,
    /// Cores per channel block, each taking a contiguous range of time blocks.
    pub time_groups: usize,
    /// Time blocks (slices) of `32 * phases` output rows.
    pub time_blocks: usize,
    /// Input tiles of the halo window per channel tile.
    pub window_tiles: usize,
    /// Whether the in0 CB is double-buffered.
    pub double_buffered: bool,
    /// L1 bytes per core the plan's CBs take.
    pub l1_bytes: u64,
    /// L1 bytes per core available.
    pub l1_budget: u64,
    /// Tiles DEST holds per acquire.
    pub dest_group: usize,
}

fn dest_capacity(fp32_acc: bool) -> usize {
    if fp32_acc { 4 } else { 8 }
}

/// Plans a gather conv on `grid_cores` cores with `l1_budget` bytes of L1 each.
pub(crate) fn plan(
    g: &Gather,
    precision: &Precision,
    grid_cores: usize,
    l1_budget: u64,
    max_args: usize,
) -> Result<ConvPlan, OpError> {
    let cin_t = g.cin_t() as u64;
    // Reader runtime args: 17 + one offset per phase; compute: 1 + 2 per output-channel tile.
    if 17 + g.phases > max_args {
        return Err(OpError::ShapeUnsupported {
            op: g.op,
            what: format!("{} phases (stride)", g.phases),
            limit: format!(
                "{max_args} runtime args per kernel (the reader takes 17 + one per phase)"
            ),
        });
    }
    let cout_t = g.cout_t();
    let pm = (g.phases * g.taps) as u64;
    let w_tile = precision.weights.tile_size_bytes() as u64;
    let in_tile = g.formats.input.tile_size_bytes() as u64;
    let out_tile = g.formats.output.tile_size_bytes() as u64;
    let res_tile = g.formats.residual.tile_size_bytes() as u64;
    let bias_tile = bias_format(precision).tile_size_bytes() as u64;
    let window = g.window_tiles();
    let blocks = g.blocks();
    let per_block_in0 = pm * cin_t * in_tile;
    let fixed_asm = if g.phases > 1 {
        g.phases as u64 * out_tile
    } else {
        0
    };
    let pre_bytes = if g.pre == Activation::None {
        0
    } else {
        per_block_in0
    };
    let res_bytes = |nb: u64| {
        if g.residual {
            2 * g.phases as u64 * nb * res_tile
        } else {
            0
        }
    };
    let bytes = |nb: u64, double: bool| {
        per_block_in0 * if double { 2 } else { 1 }
            + pre_bytes
            + res_bytes(nb)
            + pm * cin_t * nb * w_tile
            + nb * bias_tile
            + window as u64 * in_tile * if g.row_step == 1 { 2 } else { 1 }
            + 2 * g.phases as u64 * nb * out_tile
            + fixed_asm
    };
    let mut best: Option<(u64, ConvPlan)> = None;
    for nb in (1..=cout_t).filter(|nb| cout_t.is_multiple_of(*nb)) {
        let channel_blocks = cout_t / nb;
        if channel_blocks > grid_cores || 1 + 2 * nb > max_args {
            continue;
        }
        let double = bytes(nb as u64, true) <= l1_budget;
        let need = bytes(nb as u64, double);
        if need > l1_budget {
            continue;
        }
        let time_groups = (grid_cores / channel_blocks).clamp(1, blocks.max(1));
        // Cost model: tile matmuls on the busiest core plus its weight load (in tiles).
        let per_core_blocks = blocks.div_ceil(time_groups) as u64;
        let cost = per_core_blocks * g.phases as u64 * nb as u64 * cin_t * g.taps as u64
            + pm * cin_t * nb as u64;
        let p = ConvPlan {
            nb,
            channel_blocks,
            time_groups,
            time_blocks: blocks,
            window_tiles: window,
            double_buffered: double,
            l1_bytes: need,
            l1_budget,
            // The exact path adds the residual from a second DEST tile per output tile.
            dest_group: nb.min(if g.exact && g.residual {
                dest_capacity(precision.fp32_acc) / 2
            } else {
                dest_capacity(precision.fp32_acc)
            }),
        };
        if best.as_ref().is_none_or(|(c, _)| cost < *c) {
            best = Some((cost, p));
        }
    }
    best.map(|(_, p)| p).ok_or_else(|| OpError::ShapeUnsupported {
        op: g.op,
        what: format!(
            "{} phase(s) x {} tap(s) x {} input-channel tiles with {:?} weights: one output-channel \
             tile needs {} bytes of L1 per core (resident weights {} B, input tiles {} B, halo \
             window {} tiles)",
            g.phases,
            g.taps,
            cin_t,
            precision.weights,
            bytes(1, false),
            pm * cin_t * w_tile,
            per_block_in0,
            window
        ),
        limit: format!(
            "{l1_budget} bytes of L1 per core; use fewer taps x input channels per conv (split \
             the input channels and add the results) or a smaller weight format"
        ),
    })
}

/// Device-resident weights of a gather conv: `[phases * taps * cin_p, cout_p]` tiles in the
/// weight format, the bias as one tile row with every row equal to the bias (bf16).
pub(crate) struct GatherWeights {
    pub weights: Buffer,
    pub bias: Option<Buffer>,
}

/// Uploads `dense` (row-major `[phases * taps * cin_p, cout]`, `cin_p = cin_t * 32`, zero where a
/// group does not connect) and the bias.
pub(crate) fn upload_weights(
    device: &Device,
    g: &Gather,
    precision: &Precision,
    dense: Vec<f32>,
    bias: Option<&[f32]>,
) -> Result<GatherWeights, OpError> {
    let rows = g.phases * g.taps * g.cin_t() * TILE;
    let w = Tensor2d::new(rows, g.cout, dense)?;
    let bytes = w.to_tiles(precision.weights)?;
    let page = precision.weights.tile_size_bytes() as u32;
    let weights = Buffer::dram(device, bytes.len() as u64, page)?;
    weights.write(&bytes)?;
    let bias = match bias {
        Some(b) => {
            let t = Tensor2d::from_fn(TILE, g.cout, |_, c| b[c]);
            let fmt = bias_format(precision);
            let bytes = t.to_tiles(fmt)?;
            let buf = Buffer::dram(device, bytes.len() as u64, fmt.tile_size_bytes() as u32)?;
            buf.write(&bytes)?;
            Some(buf)
        }
        None => None,
    };
    Ok(GatherWeights { weights, bias })
}

/// The bias is stored as Float32 when the activations are Float32, else bf16.
pub(crate) fn bias_format(precision: &Precision) -> DataFormat {
    if precision.activations == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

fn to_u32(op: &'static str, what: &str, v: i64) -> Result<u32, OpError> {
    i32::try_from(v)
        .map(|x| x as u32)
        .map_err(|_| OpError::ShapeUnsupported {
            op,
            what: format!("{what} = {v}"),
            limit: "32-bit signed row arithmetic in the kernels".into(),
        })
}

/// Runs a planned gather conv: reads `input` (`[t_in, cin]`, bf16), returns the `[t_out, cout]`
/// bf16 output (zero padding rows) and the run statistics.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    device: &Device,
    g: &Gather,
    precision: &Precision,
    activation: Activation,
    weights: &GatherWeights,
    plan: &ConvPlan,
    input: &DeviceTensor,
    residual: Option<&DeviceTensor>,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let cin_t = g.cin_t();
    let cout_t = g.cout_t();
    let grid = device.grid();
    let out = DeviceTensor::alloc(device, g.t_out, g.cout, g.formats.output)?;
    let (fin, fout, fres, fbias) = (
        g.formats.input,
        g.formats.output,
        g.formats.residual,
        bias_format(precision),
    );
    let pm = g.phases * g.taps;
    let in0_tiles = (pm * cin_t * if plan.double_buffered { 2 } else { 1 }) as u32;
    let w_tiles = (pm * cin_t * plan.nb) as u32;

    // Core list: channel block cb, time group tg -> core index cb * time_groups + tg.
    let n_cores = plan.channel_blocks * plan.time_groups;
    let coords: Vec<CoreCoord> = (0..n_cores)
        .map(|i| {
            core(
                (i % grid.size.x as usize) as u32,
                (i / grid.size.x as usize) as u32,
            )
        })
        .collect();
    let ranges: Vec<CoreRange> = coords.iter().map(|c| range(c.x, c.y, c.x, c.y)).collect();

    let mut program = Program::new(device)?;
    for c in &coords {
        program.add_circular_buffer(*c, CbConfig::tiles(0, fin, in0_tiles))?;
        program.add_circular_buffer(*c, CbConfig::tiles(1, precision.weights, w_tiles))?;
        if weights.bias.is_some() {
            program.add_circular_buffer(*c, CbConfig::tiles(2, fbias, plan.nb as u32))?;
        }
        program.add_circular_buffer(*c, CbConfig::tiles(3, fin, plan.window_tiles as u32))?;
        if g.row_step == 1 {
            program.add_circular_buffer(*c, CbConfig::tiles(7, fin, plan.window_tiles as u32))?;
        }
        if g.phases > 1 {
            program.add_circular_buffer(*c, CbConfig::tiles(4, fout, g.phases as u32))?;
        }
        if g.pre != Activation::None {
            program.add_circular_buffer(*c, CbConfig::tiles(5, fin, (pm * cin_t) as u32))?;
        }
        if residual.is_some() {
            program.add_circular_buffer(
                *c,
                CbConfig::tiles(6, fres, (2 * g.phases * plan.nb) as u32),
            )?;
        }
        program.add_circular_buffer(
            *c,
            CbConfig::tiles(16, fout, (2 * g.phases * plan.nb) as u32),
        )?;
    }

    let kernel = |path: &str| {
        crate::kernels::source(path).ok_or_else(|| OpError::InvalidArgument {
            op: g.op,
            what: format!("kernel {path} is not embedded in this build"),
        })
    };
    let mut reader_ct = input.buffer().accessor_args()?;
    reader_ct.extend(weights.weights.accessor_args()?);
    reader_ct.extend(
        weights
            .bias
            .as_ref()
            .unwrap_or(&weights.weights)
            .accessor_args()?,
    );
    reader_ct.extend(
        residual
            .map_or(&weights.weights, |r| r.buffer())
            .accessor_args()?,
    );
    let reader = program.add_kernel(
        KernelSpec::new(
            "reader_conv_gather",
            kernel("ops/conv/reader_conv_gather.cpp")?,
            KernelKind::riscv0(),
            ranges.clone(),
        )
        .compile_args(reader_ct),
    )?;
    let compute = program.add_kernel(
        KernelSpec::new(
            "conv_gather_mm",
            kernel("ops/conv/conv_gather_mm.cpp")?,
            KernelKind::compute(ComputeConfig {
                fidelity: precision.fidelity,
                fp32_dest_acc: precision.fp32_acc,
                // Float32 CBs the exact path only copies to DEST: the input when an input
                // activation is fused (the matmul then reads CB 5), the bias, the residual.
                unpack_to_dest_fp32: if g.exact {
                    [
                        (0, fin, g.pre != Activation::None),
                        (2, fbias, weights.bias.is_some()),
                        (6, fres, residual.is_some()),
                    ]
                    .iter()
                    .filter(|(_, f, used)| *used && *f == DataFormat::Float32)
                    .map(|(cb, ..)| *cb)
                    .collect()
                } else {
                    Vec::new()
                },
                ..ComputeConfig::default()
            }),
            ranges.clone(),
        )
        .compile_args(vec![
            cin_t as u32,
            plan.nb as u32,
            g.phases as u32,
            g.taps as u32,
            plan.dest_group as u32,
            u32::from(weights.bias.is_some()),
            activation.code(),
            activation.param_bits(),
            g.pre.code(),
            g.pre.param_bits(),
            u32::from(residual.is_some()),
            u32::from(g.exact),
        ]),
    )?;
    let writer = program.add_kernel(
        KernelSpec::new(
            "writer_conv_interleave",
            kernel("ops/conv/writer_conv_interleave.cpp")?,
            KernelKind::riscv1(),
            ranges,
        )
        .compile_args(out.buffer().accessor_args()?),
    )?;

    let t_in = to_u32(g.op, "input rows", g.t_in as i64)?;
    let t_out = to_u32(g.op, "output rows", g.t_out as i64)?;
    for (i, &c) in coords.iter().enumerate() {
        let cb = i / plan.time_groups;
        let tg = i % plan.time_groups;
        let n0 = cb * plan.nb;
        let b0 = plan.time_blocks * tg / plan.time_groups;
        let b1 = plan.time_blocks * (tg + 1) / plan.time_groups;
        let mut r = Args::new()
            .addr(input.buffer())?
            .addr(&weights.weights)?
            .u32(match &weights.bias {
                Some(b) => b.address_u32()?,
                None => 0,
            })
            .u32(t_in)
            .u32(cin_t as u32)
            .u32(cout_t as u32)
            .u32(n0 as u32)
            .u32(plan.nb as u32)
            .u32(g.phases as u32)
            .u32(g.taps as u32)
            .u32(b0 as u32)
            .u32(b1 as u32)
            .u32(to_u32(g.op, "block stride", g.block_stride)?)
            .u32(to_u32(g.op, "row step", g.row_step)?)
            .u32(to_u32(g.op, "tap step", g.tap_step)?)
            .u32(u32::from(weights.bias.is_some()))
            .u32(plan.window_tiles as u32);
        for &o in &g.offsets {
            r = r.u32(to_u32(g.op, "row offset", o)?);
        }
        r = match residual {
            Some(t) => r.addr(t.buffer())?,
            None => r.u32(0),
        };
        // The last block's rows must stay in i32 too.
        to_u32(
            g.op,
            "last input row",
            plan.time_blocks as i64 * g.block_stride + g.rel_range().1,
        )?;
        program.set_runtime_args(reader, c, &r)?;

        let mut cr = Args::new().u32((b1 - b0) as u32);
        for w in 0..plan.nb {
            let (lo, hi) = g.cin_ranges[n0 + w];
            cr = cr.u32(lo).u32(hi);
        }
        program.set_runtime_args(compute, c, &cr)?;

        let mut wr = Args::new()
            .addr(out.buffer())?
            .u32(t_out)
            .u32(cout_t as u32)
            .u32(n0 as u32)
            .u32(plan.nb as u32)
            .u32(g.phases as u32)
            .u32(b0 as u32)
            .u32(b1 as u32);
        for &rp in &g.out_rows {
            wr = wr.u32(rp);
        }
        program.set_runtime_args(writer, c, &wr)?;
    }
    let stats = device.run(&program)?;
    let mut out = out;
    // Rows past T_out are zeroed by the writer; columns past cout hold act(0) (zero weights and
    // bias there), which is zero for every activation but sigmoid.
    out.set_pad_is_zero(activation != Activation::Sigmoid || g.cout.is_multiple_of(TILE));
    Ok((out, stats))
}

/// Checks the input tensor of a gather conv.
pub(crate) fn check_input(
    op: &'static str,
    device: &Device,
    input: &DeviceTensor,
    cin: usize,
    precision: &Precision,
) -> Result<(), OpError> {
    check_conv_format(op, "input activations", input.format(), precision)?;
    if input.cols() != cin {
        return Err(OpError::ShapeMismatch {
            op,
            what: format!(
                "input is [{}, {}] (time-major [T, C]) but the conv has {cin} input channels",
                input.rows(),
                input.cols()
            ),
        });
    }
    // tt-safe exposes no device identity; a different device kind or provider is caught here.
    if input.device().info() != device.info() || input.device().selection() != device.selection() {
        return Err(OpError::ForeignDevice { op });
    }
    Ok(())
}

/// A conv1d with its weights prepared on a device.
pub struct Conv1d {
    device: Device,
    params: Conv1dParams,
    precision: Precision,
    activation: Activation,
    /// The input activation (fused into the gather, or into the split with split operands).
    pre: Activation,
    /// The unchunked, unsplit gather (t_in / t_out filled per run).
    template: Gather,
    chunks: Vec<Chunk>,
    split: Option<SplitLayout>,
    /// The second computation with [`Precision::guard_dest_quirk`].
    guard: Option<Guard>,
}

impl std::fmt::Debug for Conv1d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conv1d")
            .field("params", &self.params)
            .field("precision", &self.precision)
            .field("activation", &self.activation)
            .finish()
    }
}

impl Conv1d {
    /// Prepares a conv: `weight` is PyTorch's `[cout, cin / groups, kernel]` row-major, `bias`
    /// `[cout]`; the activation is applied after the bias.
    pub fn new(
        device: &Device,
        params: Conv1dParams,
        weight: &[f32],
        bias: Option<&[f32]>,
        precision: Precision,
        activation: Activation,
    ) -> Result<Conv1d, OpError> {
        params.validate()?;
        precision.validate_fp32(OP)?;
        check_bf16_activations(OP, &precision)?;
        check_activation(OP, activation)?;
        check_guard_activation(OP, &precision, activation)?;
        let cin_g = params.cin / params.groups;
        let cout_g = params.cout / params.groups;
        let k = params.kernel;
        if weight.len() != params.cout * cin_g * k {
            return Err(OpError::ShapeMismatch {
                op: OP,
                what: format!(
                    "weight has {} values, [cout {}, cin/groups {cin_g}, k {k}] needs {}",
                    weight.len(),
                    params.cout,
                    params.cout * cin_g * k
                ),
            });
        }
        check_finite(OP, "weight", weight)?;
        let split = check_split(OP, &precision)?;
        if let Some(b) = bias {
            if b.len() != params.cout {
                return Err(OpError::ShapeMismatch {
                    op: OP,
                    what: format!("bias has {} values, cout is {}", b.len(), params.cout),
                });
            }
            check_finite(OP, "bias", b)?;
        }
        // Shape-independent description; t_in/t_out are filled per run.
        let template = Gather {
            op: OP,
            t_in: 1,
            t_out: 1,
            cin: params.cin,
            cout: params.cout,
            phases: 1,
            taps: k,
            block_stride: (TILE * params.stride) as i64,
            row_step: params.stride as i64,
            tap_step: params.dilation as i64,
            offsets: vec![-(params.pad_left as i64)],
            out_rows: vec![0],
            cin_ranges: group_cin_ranges(params.cin, params.cout, params.groups),
            pre: Activation::None,
            residual: false,
            // Per run the input's and residual's formats replace these (see run_inner).
            formats: ConvFormats::uniform(precision.activations),
            exact: ConvFormats::uniform(precision.activations).exact(&precision, false),
        };
        let cin_p = tiles(params.cin) * TILE;
        let mut dense = vec![0f32; k * cin_p * params.cout];
        for co in 0..params.cout {
            let g = co / cout_g;
            for ci in 0..cin_g {
                for j in 0..k {
                    let row = j * cin_p + g * cin_g + ci;
                    dense[row * params.cout + co] = weight[(co * cin_g + ci) * k + j];
                }
            }
        }
        let guard = prepare_guard(device, &template, &precision, &dense, k, bias, true)?;
        let chunks = prepare_chunks(
            device,
            &template,
            split.as_ref(),
            &precision,
            dense,
            k,
            bias,
            true,
        )?;
        Ok(Conv1d {
            device: device.clone(),
            params,
            precision,
            activation,
            pre: Activation::None,
            template,
            chunks,
            split,
            guard,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &Conv1dParams {
        &self.params
    }

    fn gather(&self, t_in: usize) -> Result<Gather, OpError> {
        let t_out = self
            .params
            .output_len(t_in)
            .ok_or_else(|| OpError::ShapeMismatch {
                op: OP,
                what: format!(
                    "input length {t_in} with padding {}+{} is shorter than the dilated kernel {}",
                    self.params.pad_left,
                    self.params.pad_right,
                    self.params.dilation * (self.params.kernel - 1) + 1
                ),
            })?;
        Ok(Gather {
            t_in,
            t_out,
            ..self.template.clone()
        })
    }

    /// Input-channel chunks the conv runs as (one gather launch each; see the module doc): 1
    /// unless split operands (e.g. [`Precision::isolate_products`]) do not fit L1 in one launch.
    pub fn chunks(&self) -> usize {
        self.chunks.len()
    }

    /// The device plan for an input of `t_in` steps (input and output in
    /// `precision.activations`; with split operands the gather's input is the Float32 split
    /// tensor, `P` parts per input-channel tile). With several input-channel chunks, the plan
    /// of the first (largest) chunk.
    pub fn plan(&self, t_in: usize) -> Result<ConvPlan, OpError> {
        let g = self.gather(t_in)?;
        let mut g = Gather {
            t_in: g.t_in,
            t_out: g.t_out,
            // The split applies the input activation; the gather then runs without it.
            pre: if self.split.is_some() {
                Activation::None
            } else {
                self.pre
            },
            ..self.chunks[0].template.clone()
        };
        if self.chunks.len() > 1 {
            g.formats.output = DataFormat::Float32;
            g.residual = true;
            g.formats.residual = DataFormat::Float32;
            g.exact = true;
        }
        plan(
            &g,
            &self.precision,
            self.device.grid().num_cores(),
            self.device.info().l1_user_bytes(),
            self.device.info().max_runtime_args as usize,
        )
    }

    /// Applies `activation` (ReLU or leaky ReLU) to the input before convolving, on the device
    /// (HiFi-GAN's `conv(leaky_relu(x))`); combine with [`Conv1d::run_with_residual`] for a
    /// whole ResBlock layer `x + conv(leaky_relu(x))`.
    pub fn with_input_activation(mut self, activation: Activation) -> Result<Conv1d, OpError> {
        match activation {
            Activation::None | Activation::Relu => {}
            Activation::LeakyRelu(s) if s.is_finite() => {}
            other => {
                return Err(OpError::InvalidArgument {
                    op: OP,
                    what: format!(
                        "input activation {other:?}: only None, Relu and LeakyRelu (finite slope) \
                         are fused before the conv; apply others with an eltwise op"
                    ),
                });
            }
        }
        self.pre = activation;
        Ok(self)
    }

    /// Runs on `input` (`[T_in, cin]`, time-major, bf16 or with `fp32_acc` Float32); returns
    /// `[T_out, cout]` in `precision.activations`. With split operands the stats cover the split
    /// launch and the conv launch.
    pub fn run(&self, input: &DeviceTensor) -> Result<(DeviceTensor, RunStats), OpError> {
        self.run_inner(input, None)
    }

    /// `residual + act(conv(pre(input)) + bias)`; `residual` is `[T_out, cout]` bf16.
    pub fn run_with_residual(
        &self,
        input: &DeviceTensor,
        residual: &DeviceTensor,
    ) -> Result<(DeviceTensor, RunStats), OpError> {
        self.run_inner(input, Some(residual))
    }

    fn run_inner(
        &self,
        input: &DeviceTensor,
        residual: Option<&DeviceTensor>,
    ) -> Result<(DeviceTensor, RunStats), OpError> {
        check_input(OP, &self.device, input, self.params.cin, &self.precision)?;
        let mut g = self.gather(input.rows())?;
        if let Some(r) = residual {
            check_input(OP, &self.device, r, self.params.cout, &self.precision).map_err(
                |e| match e {
                    OpError::ShapeMismatch { .. } => OpError::ShapeMismatch {
                        op: OP,
                        what: format!(
                            "residual is [{}, {}], the output is [{}, {}]",
                            r.rows(),
                            r.cols(),
                            g.t_out,
                            self.params.cout
                        ),
                    },
                    other => other,
                },
            )?;
            if r.rows() != g.t_out {
                return Err(OpError::ShapeMismatch {
                    op: OP,
                    what: format!(
                        "residual has {} rows, the output has {} (T_out)",
                        r.rows(),
                        g.t_out
                    ),
                });
            }
            g.residual = true;
        }
        run_guarded(
            &self.device,
            &self.chunks,
            self.guard.as_ref(),
            g.t_in,
            g.t_out,
            self.pre,
            self.split.as_ref(),
            &self.precision,
            self.activation,
            input,
            residual,
            true,
        )
    }
}

/// Per output-channel tile, the input-channel tiles its groups read.
fn group_cin_ranges(cin: usize, cout: usize, groups: usize) -> Vec<(u32, u32)> {
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    (0..tiles(cout))
        .map(|n| {
            let co_lo = n * TILE;
            let co_hi = ((n + 1) * TILE).min(cout) - 1;
            let ci_lo = (co_lo / cout_g) * cin_g;
            let ci_hi = (co_hi / cout_g + 1) * cin_g; // exclusive
            ((ci_lo / TILE) as u32, ci_hi.div_ceil(TILE) as u32)
        })
        .collect()
}

/// With a split precision: the split's layout, after checking what the conv needs for it (the
/// split input is Float32, which the gather reads only with an fp32 DEST).
pub(crate) fn check_split(
    op: &'static str,
    precision: &Precision,
) -> Result<Option<SplitLayout>, OpError> {
    let split = SplitLayout::of(precision);
    if precision.guard_dest_quirk && !precision.isolate_products {
        return Err(OpError::InvalidArgument {
            op,
            what: "guard_dest_quirk needs isolate_products = true (and fp32_acc = true): its \
                   second accumulation order permutes the 8 masked weight passes of the \
                   isolated main term; set isolate_products or clear guard_dest_quirk"
                .into(),
        });
    }
    if split.is_some() && !precision.fp32_acc {
        return Err(OpError::InvalidArgument {
            op,
            what: "weights_lo / activations_lo / isolate_products need fp32_acc = true: the \
                   split input is Float32 and a bf16 DEST would round each partial sum to 8 \
                   bits, losing what the split adds"
                .into(),
        });
    }
    Ok(split)
}

/// The internal gather of a split conv: `P` input parts per input-channel tile, so
/// `cin' = P * 32 * tiles(cin)`, every output tile's input-tile range `(lo, hi)` becomes
/// `(P lo, P hi)`, and the input the gather reads is the Float32 split tensor.
pub(crate) fn split_gather(
    g: Gather,
    split: Option<&SplitLayout>,
    precision: &Precision,
) -> Gather {
    let Some(s) = split else { return g };
    let p = s.factor();
    let formats = ConvFormats {
        input: DataFormat::Float32,
        ..g.formats
    };
    Gather {
        cin: p * TILE * tiles(g.cin),
        cin_ranges: g
            .cin_ranges
            .iter()
            .map(|&(lo, hi)| (lo * p as u32, hi * p as u32))
            .collect(),
        exact: formats.exact(precision, g.residual),
        formats,
        ..g
    }
}

/// The dense weights of a split conv ([`SplitLayout::expand`]), checked finite (a weight near
/// the f32 maximum can round to an infinite bf16 hi part).
pub(crate) fn split_weights(
    op: &'static str,
    split: Option<&SplitLayout>,
    dense: Vec<f32>,
    blocks: usize,
    cin_t: usize,
    cout: usize,
) -> Result<Vec<f32>, OpError> {
    let Some(s) = split else { return Ok(dense) };
    let out = s.expand(&dense, blocks, cin_t, cout);
    check_finite(op, "split weight (bf16 hi / lo part)", &out)?;
    Ok(out)
}

/// One input-channel chunk of a gather conv: the original input-channel tiles it reduces over,
/// its gather (split applied: `cin' = P * 32 * tiles.len()`, output-tile ranges clipped to the
/// chunk) and its device weights (the bias only in the first chunk).
pub(crate) struct Chunk {
    pub tiles: std::ops::Range<usize>,
    pub template: Gather,
    pub weights: GatherWeights,
}

/// The gather of the input-channel tiles `tiles` of `base` (unsplit; `cin_ranges` in original
/// tiles), with the split layout applied. An output tile whose range misses the chunk reduces
/// over the chunk's first tile, where its weights are zero (keeps every DEST tile written by a
/// matmul).
fn chunk_gather(
    base: &Gather,
    tiles: &std::ops::Range<usize>,
    split: Option<&SplitLayout>,
    precision: &Precision,
) -> Gather {
    let (c0, c1) = (tiles.start as u32, tiles.end as u32);
    let whole = tiles.start == 0 && tiles.end == super::common::tiles(base.cin);
    let g = Gather {
        // The whole range keeps the conv's own cin (the unchunked gather, bit for bit).
        cin: if whole { base.cin } else { tiles.len() * TILE },
        cin_ranges: base
            .cin_ranges
            .iter()
            .map(|&(lo, hi)| {
                let (lo, hi) = (lo.max(c0), hi.min(c1));
                if lo < hi { (lo - c0, hi - c0) } else { (0, 1) }
            })
            .collect(),
        ..base.clone()
    };
    split_gather(g, split, precision)
}

/// Splits the input channels of a split conv into chunks that each plan within L1, uploads each
/// chunk's weights, and returns the chunks (one chunk covering every input tile when it fits).
///
/// `dense` is the unsplit weight matrix (`[blocks * 32 cin_t, cout]`, rows by (block, input
/// channel)). Without a split layout, and without [`Precision::isolate_products`] when the
/// whole conv plans as it did before chunking existed (shortest input, no residual), there is
/// one chunk with exactly the weights of the unchunked conv. Otherwise the chunk size is the
/// largest number of input tiles whose gather plans with the worst case of a run (a long input,
/// Float32 input, output and residual, a residual when `chain_residual`), and the input tiles
/// are shared out evenly.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_chunks(
    device: &Device,
    base: &Gather,
    split: Option<&SplitLayout>,
    precision: &Precision,
    dense: Vec<f32>,
    blocks: usize,
    bias: Option<&[f32]>,
    chain_residual: bool,
) -> Result<Vec<Chunk>, OpError> {
    let cin_t = tiles(base.cin);
    let (cores, l1, args) = (
        device.grid().num_cores(),
        device.info().l1_user_bytes(),
        device.info().max_runtime_args as usize,
    );
    let fits = |c: usize, worst: bool| -> Result<ConvPlan, OpError> {
        let mut g = chunk_gather(base, &(0..c), split, precision);
        if worst {
            g.t_in = 1 << 22;
            g.t_out = 1 << 22;
            g.residual = chain_residual;
            g.formats = ConvFormats::uniform(DataFormat::Float32);
            g.exact = true;
        }
        if split.is_some() {
            g.pre = Activation::None;
        }
        plan(&g, precision, cores, l1, args)
    };
    let whole = split.is_none() || (!precision.isolate_products && fits(cin_t, false).is_ok());
    let size = if whole {
        cin_t
    } else {
        match (1..=cin_t).rev().find(|&c| fits(c, true).is_ok()) {
            Some(c) => c,
            None => {
                return Err(fits(1, true).err().unwrap_or(OpError::ShapeUnsupported {
                    op: base.op,
                    what: "one input-channel tile per chunk".into(),
                    limit: "L1 per core".into(),
                }));
            }
        }
    };
    let n = cin_t.div_ceil(size);
    let cin_p = cin_t * TILE;
    let cout = base.cout;
    (0..n)
        .map(|i| {
            let range = cin_t * i / n..cin_t * (i + 1) / n;
            let template = chunk_gather(base, &range, split, precision);
            let rows = range.len() * TILE;
            let mut part = Vec::with_capacity(blocks * rows * cout);
            for b in 0..blocks {
                let r0 = b * cin_p + range.start * TILE;
                part.extend_from_slice(&dense[r0 * cout..(r0 + rows) * cout]);
            }
            let part = split_weights(base.op, split, part, blocks, range.len(), cout)?;
            let weights =
                upload_weights(device, &template, precision, part, bias.filter(|_| i == 0))?;
            Ok(Chunk {
                tiles: range,
                template,
                weights,
            })
        })
        .collect()
}

/// The eltwise function of a fused output activation (for a chunked conv, which applies it
/// after summing the chunks).
fn unary_of(a: Activation) -> Option<UnaryOp> {
    match a {
        Activation::None => None,
        Activation::Relu => Some(UnaryOp::Relu),
        Activation::LeakyRelu(s) => Some(UnaryOp::LeakyRelu(s)),
        Activation::Gelu => Some(UnaryOp::Gelu),
        Activation::Tanh => Some(UnaryOp::Tanh),
        Activation::Sigmoid => Some(UnaryOp::Sigmoid),
    }
}

/// Runs the chunks of a gather conv on `input` and returns `residual + act(conv(pre(input)) +
/// bias)` in `out_format` (`precision.activations`, or Float32 for a guarded conv's two
/// computations; the bias format still follows `precision`) with the statistics of every
/// launch.
///
/// One chunk: the split (when there is one) and one gather launch, as without chunking. Several
/// chunks (always split convs, so `fp32_acc` and the exact path): per chunk a split of its input
/// tiles ([`split_operand_range`]) and a gather launch writing a Float32 partial sum; the bias
/// is in the first chunk's weights. With `fused_chain` (conv1d, one phase) chunk `i > 0` adds
/// the previous partial sum as its fused residual (exact fp32 SFPU add after its matmuls) and
/// the first chunk takes the caller's residual when there is no output activation; otherwise
/// (conv_transpose1d, whose reader has no phase-interleaved residual) the partial sums are
/// added by eltwise launches (exact fp32). An output activation then runs as an eltwise unary
/// on the Float32 sum, followed by the caller's residual as an eltwise add (the fused order
/// `residual + act(...)` cannot be chained through the residual input).
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_chunks(
    device: &Device,
    chunks: &[Chunk],
    t_in: usize,
    t_out: usize,
    pre: Activation,
    split: Option<&SplitLayout>,
    precision: &Precision,
    activation: Activation,
    input: &DeviceTensor,
    residual: Option<&DeviceTensor>,
    fused_chain: bool,
    out_format: DataFormat,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let f32f = DataFormat::Float32;
    let n = chunks.len();
    let post_act = if n > 1 { unary_of(activation) } else { None };
    // The caller's residual goes into the first chunk when the chain keeps the fused order.
    let fuse_residual = n == 1 || (fused_chain && post_act.is_none());
    let mut stats: Option<RunStats> = None;
    let mut add_stats = |s: &RunStats| {
        stats = Some(match &stats {
            Some(a) => combine_stats(a, s),
            None => *s,
        });
    };
    let eltwise = |fmt: DataFormat| {
        Eltwise::new(
            device,
            Precision {
                activations: fmt,
                ..*precision
            },
        )
    };
    let mut acc: Option<DeviceTensor> = None;
    for (i, chunk) in chunks.iter().enumerate() {
        let last = i + 1 == n;
        let mut g = Gather {
            t_in,
            t_out,
            pre,
            ..chunk.template.clone()
        };
        let split_in = match split {
            Some(s) => {
                let (t, st) =
                    split_operand_range(device, input, pre, s.parts, chunk.tiles.clone())?;
                add_stats(&st);
                g.pre = Activation::None;
                Some(t)
            }
            None => None,
        };
        let chunk_res = if n == 1 || (i == 0 && fuse_residual) {
            residual
        } else if fused_chain {
            acc.as_ref()
        } else {
            None
        };
        // Intermediate sums stay Float32; the last launch writes the output format unless an
        // eltwise step follows.
        let direct_out = last && (n == 1 || (fused_chain && post_act.is_none()));
        g.residual = chunk_res.is_some();
        g.formats = ConvFormats {
            input: split_in.as_ref().map_or(input.format(), |t| t.format()),
            output: if direct_out { out_format } else { f32f },
            residual: chunk_res.map_or(DataFormat::Float16_b, |r| r.format()),
        };
        g.exact = g.formats.exact(precision, g.residual);
        let p = plan(
            &g,
            precision,
            device.grid().num_cores(),
            device.info().l1_user_bytes(),
            device.info().max_runtime_args as usize,
        )?;
        let (mut out, st) = run(
            device,
            &g,
            precision,
            if n == 1 { activation } else { Activation::None },
            &chunk.weights,
            &p,
            split_in.as_ref().unwrap_or(input),
            chunk_res,
        )?;
        add_stats(&st);
        if let Some(r) = chunk_res {
            out.set_pad_is_zero(out.pad_is_zero() && r.pad_is_zero());
        }
        acc = Some(match acc {
            Some(prev) if !fused_chain => {
                let fmt = if last && post_act.is_none() && residual.is_none() {
                    out_format
                } else {
                    f32f
                };
                let (sum, st) = eltwise(fmt)?.run_op(
                    EltwiseOp::Binary(BinaryOp::Add, Broadcast::None),
                    &[&prev, &out],
                )?;
                add_stats(&st);
                sum
            }
            _ => out,
        });
    }
    let mut y = acc.ok_or_else(|| OpError::InvalidArgument {
        op: OP,
        what: "a conv without input-channel chunks".into(),
    })?;
    if let Some(op) = post_act {
        let fmt = if residual.is_some() { f32f } else { out_format };
        let (t, st) = eltwise(fmt)?.run_op(EltwiseOp::Unary(op), &[&y])?;
        add_stats(&st);
        y = t;
    }
    if let (Some(r), false) = (residual, fuse_residual) {
        let (t, st) = eltwise(out_format)?
            .run_op(EltwiseOp::Binary(BinaryOp::Add, Broadcast::None), &[&y, r])?;
        add_stats(&st);
        y = t;
    }
    let stats = stats.ok_or_else(|| OpError::InvalidArgument {
        op: OP,
        what: "a conv without launches".into(),
    })?;
    Ok((y, stats))
}

/// The second computation of a guarded conv ([`Precision::guard_dest_quirk`]): the reversed
/// layout ([`SplitLayout::reversed_of`]) and its chunks (weights uploaded a second time).
pub(crate) struct Guard {
    pub split: SplitLayout,
    pub chunks: Vec<Chunk>,
}

/// Prepares the guard of a conv with `precision.guard_dest_quirk` (`None` otherwise): the same
/// chunking as [`prepare_chunks`] with the reversed masked weight passes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn prepare_guard(
    device: &Device,
    base: &Gather,
    precision: &Precision,
    dense: &[f32],
    blocks: usize,
    bias: Option<&[f32]>,
    chain_residual: bool,
) -> Result<Option<Guard>, OpError> {
    if !precision.guard_dest_quirk {
        return Ok(None);
    }
    let Some(split) = SplitLayout::reversed_of(precision) else {
        return Err(OpError::InvalidArgument {
            op: base.op,
            what: "guard_dest_quirk needs isolate_products = true".into(),
        });
    };
    let chunks = prepare_chunks(
        device,
        base,
        Some(&split),
        precision,
        dense.to_vec(),
        blocks,
        bias,
        chain_residual,
    )?;
    Ok(Some(Guard { split, chunks }))
}

/// [`run_chunks`], guarded when `guard` is set: both computations (the conv's chunks and the
/// guard's, each writing Float32 with the bias, activation and residual applied), then
/// `max(a, b) = b + relu(a - b)` in exact fp32 eltwise launches, the last writing
/// `precision.activations`.
///
/// Rounding of the max (fp32, `u = 2^-24`): `relu(a - b)` is `0` when `a <= b` and the sum is
/// `b` exactly. When `b < a <= 2b` or both are within a factor 2 (no quirk event: they agree to
/// fp32 rounding) `a - b` is exact (Sterbenz) and `b + (a - b) = a` exactly. Otherwise (one side
/// hit by an event, `|b|` up to ~32x the scale) the two roundings give at most
/// `u (|a - b| + |a|) <= u (2 |a| + |b|)` absolute, i.e. a few times `2^-24 * 32` of the
/// operands' scale, far below the conv's own error bound.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_guarded(
    device: &Device,
    chunks: &[Chunk],
    guard: Option<&Guard>,
    t_in: usize,
    t_out: usize,
    pre: Activation,
    split: Option<&SplitLayout>,
    precision: &Precision,
    activation: Activation,
    input: &DeviceTensor,
    residual: Option<&DeviceTensor>,
    fused_chain: bool,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let Some(guard) = guard else {
        return run_chunks(
            device,
            chunks,
            t_in,
            t_out,
            pre,
            split,
            precision,
            activation,
            input,
            residual,
            fused_chain,
            precision.activations,
        );
    };
    let p32 = Precision {
        activations: DataFormat::Float32,
        ..*precision
    };
    let (a, sa) = run_chunks(
        device,
        chunks,
        t_in,
        t_out,
        pre,
        split,
        precision,
        activation,
        input,
        residual,
        fused_chain,
        DataFormat::Float32,
    )?;
    let (b, sb) = run_chunks(
        device,
        &guard.chunks,
        t_in,
        t_out,
        pre,
        Some(&guard.split),
        precision,
        activation,
        input,
        residual,
        fused_chain,
        DataFormat::Float32,
    )?;
    let e32 = Eltwise::new(device, p32)?;
    let (d, s1) = e32.run_op(EltwiseOp::Binary(BinaryOp::Sub, Broadcast::None), &[&a, &b])?;
    let (r, s2) = e32.run_op(EltwiseOp::Unary(UnaryOp::Relu), &[&d])?;
    let (y, s3) = Eltwise::new(device, *precision)?
        .run_op(EltwiseOp::Binary(BinaryOp::Add, Broadcast::None), &[&b, &r])?;
    let stats = [sb, s1, s2, s3]
        .iter()
        .fold(sa, |acc, s| combine_stats(&acc, s));
    Ok((y, stats))
}

/// The gather kernels read and write bf16 activations.
pub(crate) fn check_bf16_activations(op: &'static str, p: &Precision) -> Result<(), OpError> {
    check_conv_format(op, "activations (output)", p.activations, p)
}

/// The conv kernels shift rows of `Float16_b` or `Float32` tiles; Float32 needs `fp32_acc`.
pub(crate) fn check_conv_format(
    op: &'static str,
    role: &'static str,
    format: DataFormat,
    p: &Precision,
) -> Result<(), OpError> {
    match format {
        DataFormat::Float16_b => Ok(()),
        DataFormat::Float32 if p.fp32_acc => Ok(()),
        DataFormat::Float32 => Err(OpError::FormatUnsupported {
            op,
            role,
            format,
            supported: "Float16_b, or Float32 with fp32_acc = true (e.g. Precision::hifi_fp32())",
        }),
        _ => Err(OpError::FormatUnsupported {
            op,
            role,
            format,
            supported: "Float16_b or Float32 (the conv reader shifts bf16 / fp32 rows on the \
                        device; convert bfp8_b activations with an eltwise op first)",
        }),
    }
}

pub(crate) fn check_activation(op: &'static str, a: Activation) -> Result<(), OpError> {
    match a {
        Activation::LeakyRelu(s) if !s.is_finite() => Err(OpError::InvalidArgument {
            op,
            what: format!("leaky ReLU slope {s} is not finite"),
        }),
        _ => Ok(()),
    }
}

/// With [`Precision::guard_dest_quirk`] the output activation must be non-decreasing (the max
/// of the two computations keeps the uncorrupted one only then): GELU and a leaky ReLU with a
/// negative slope are refused.
pub(crate) fn check_guard_activation(
    op: &'static str,
    precision: &Precision,
    a: Activation,
) -> Result<(), OpError> {
    let monotonic = match a {
        Activation::Gelu => false,
        Activation::LeakyRelu(s) => s >= 0.0,
        Activation::None | Activation::Relu | Activation::Tanh | Activation::Sigmoid => true,
    };
    if precision.guard_dest_quirk && !monotonic {
        return Err(OpError::InvalidArgument {
            op,
            what: format!(
                "guard_dest_quirk needs a non-decreasing output activation (None, ReLU, leaky \
                 ReLU with slope >= 0, tanh, sigmoid), not {a:?}: it keeps the larger of two \
                 computations; apply {a:?} as an eltwise op after the conv"
            ),
        });
    }
    Ok(())
}

pub(crate) fn check_finite(op: &'static str, what: &str, v: &[f32]) -> Result<(), OpError> {
    match v.iter().position(|x| !x.is_finite()) {
        Some(i) => Err(OpError::InvalidArgument {
            op,
            what: format!("{what}[{i}] = {} is not finite", v[i]),
        }),
        None => Ok(()),
    }
}

/// Worst-case bound on `|y_device - y|` for one output element of conv1d / conv_transpose1d
/// (bf16 activations in and out), built from [`super::common::tolerance`]:
///
/// - `s_abs = sum_k |a_k w_k|` over the element's real terms (from the f64 reference);
/// - `wq = sum_k |a_k| e(w_k)`, `e(w)` the host quantisation bound of that weight: `2^-8 |w|`
///   (bf16), `2^-7` / `2^-3` of the max of its 16-value BFP block (bfp8_b / bfp4_b);
/// - `kt` = tile matmuls accumulated in DEST for the element (taps x input-channel tiles).
///
/// With `qa = 2^-8` (bf16 activations; 0 when `inputs_quantised`, i.e. the reference already
/// used the device's values and `wq = 0`):
/// 1. input quantisation: `|a~ w~ - a w| <= qa |a| (|w| + e(w)) + |a| e(w)`, summed:
///    `qa (s_abs + wq) + wq`; and `s~ = (1 + qa)(s_abs + wq)` bounds `sum |a~ w~|`;
/// 2. compute: [`tolerance::matmul_compute_bound`](super::common::tolerance::matmul_compute_bound)
///    with `32 kt` terms and `s~` (fidelity, MVMUL alignment, DEST roundings);
/// 3. bias (DEST-reuse add): bf16 quantisation `2^-8 |b|`, the DEST -> SrcA move (TF32, `2^-10`
///    of `|acc|`, fp32 DEST only) and one DEST rounding of `|acc| + |b|`;
/// 4. activation: Lipschitz constant times the error so far, plus
///    [`tolerance::sfpu_error`](super::common::tolerance::sfpu_error);
/// 5. packing to bf16: `2^-8 (|y| + error)`.
#[allow(clippy::too_many_arguments)]
pub fn conv_error_bound(
    precision: &Precision,
    activation: Activation,
    kt: usize,
    s_abs: f64,
    wq: f64,
    bias: Option<f64>,
    y_abs: f64,
    inputs_quantised: bool,
) -> f64 {
    conv_error_bound_fused(
        precision,
        Activation::None,
        activation,
        &ConvTerms {
            kt,
            s_abs,
            wq,
            bias,
            residual: None,
            y_post_abs: y_abs,
            y_abs,
            inputs_quantised,
        },
    )
}

/// Per-element terms of [`conv_error_bound_fused`].
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ConvTerms {
    /// Tile matmuls accumulated in DEST.
    pub kt: usize,
    /// `sum |a_k w_k|`, with `a = pre(x)` when an input activation is fused.
    pub s_abs: f64,
    /// `sum |a_k| e(w_k)`.
    pub wq: f64,
    /// The bias value, if any.
    pub bias: Option<f64>,
    /// The residual value, if any.
    pub residual: Option<f64>,
    /// `|post(conv + bias)|` (before the residual).
    pub y_post_abs: f64,
    /// `|y|` of the final output.
    pub y_abs: f64,
    /// The reference used the device's input values (bf16 input, decoded weights, bf16 bias and
    /// residual): only the compute error is bounded.
    pub inputs_quantised: bool,
}

/// [`conv_error_bound`] with a fused input activation `pre` (ReLU / leaky ReLU: exact on the
/// SFPU, then rounded into DEST and packed to bf16, i.e. an extra relative input error of
/// `u_dest + 2^-8`) and a residual added after the output activation (its bf16 quantisation
/// `2^-8 |r|`, the DEST -> SrcA move `2^-10` of the DEST value with fp32 DEST, one DEST rounding
/// of `|y_post| + |r|`), before the final bf16 packing.
pub fn conv_error_bound_fused(
    precision: &Precision,
    pre: Activation,
    activation: Activation,
    t: &ConvTerms,
) -> f64 {
    conv_error_bound_formats(precision, pre, activation, t, &ConvFormats::bf16())
}

/// [`conv_error_bound_fused`] for any [`ConvFormats`] (bf16 / Float32 input, output and
/// residual). On the bf16 path (`!formats.exact(..)`) it is exactly that bound with the
/// format-dependent terms taken from `formats`. On the exact-fp32 path
/// ([`ConvFormats::exact`]):
/// - input: host quantisation `quant_rel(input)` (0 when `inputs_quantised`) plus the TF32
///   truncation of a Float32 input by the unpacker, `tolerance::unpack_rel` (`2^-10`), in
///   `qa`; a fused input activation adds one fp32 rounding and the packing of CB 5 to the
///   input format (`u_dest + pack_error_rel(input)`);
/// - compute: [`tolerance::matmul_compute_bound`](super::common::tolerance::matmul_compute_bound)
///   with the input format's multiplier bits (TF32 has 11: exact products at HiFi4 / HiFi3
///   with bf16 weights);
/// - bias: loaded into DEST before the matmuls, so only its host quantisation (`2^-24` Float32
///   bias when `precision.activations` is Float32, `2^-8` bf16 otherwise) and the DEST
///   roundings of the accumulation it takes part in (`(2 phases kt + kt) u_dest |b|`);
/// - residual: its host quantisation (`quant_rel(residual)`) and one fp32 SFPU addition,
///   `u_dest (|y_post| + e + |r|)`;
/// - packing: `pack_error_rel(output)` (0 for Float32).
///
/// # Split operands ([`Precision::weights_lo`] / [`Precision::activations_lo`])
/// The conv then multiplies `P = precision.split_parts()` parts per input-channel tile in one
/// accumulation, on the exact-fp32 path (the split input is Float32). The caller passes the
/// same terms as without a split (`kt` of the original conv, `wq` from
/// [`tolerance::weight_rel`](super::common::tolerance::weight_rel): `2^-16 |w|` instead of
/// `2^-8 |w|` with `weights_lo`); the bound then uses:
/// - input: [`tolerance::act_unpack_rel`](super::common::tolerance::act_unpack_rel) (`2^-20`
///   instead of `2^-10` with `activations_lo`); a fused input activation is applied by the
///   split in fp32 (`u_dest`, no packing loss: the split tensor is Float32);
/// - compute: `P kt` tile matmuls over the products actually multiplied, whose absolute sum is
///   at most `(1 + 2^-6) s~`: `|a_hi w_hi| + |a_lo w_hi| + |a_hi w_lo| <= |a w| ((1 + 2^-10)
///   (1 + 2^-8) + 2^-8 (1 + 2^-8)) < (1 + 2^-6) |a w|`. The MVMUL alignment term (`16 2^-12` of
///   that sum, [`tolerance::matmul_compute_bound`](super::common::tolerance::matmul_compute_bound))
///   does not shrink with a split: it is then the dominant worst-case term. (On random data the
///   alignment errors are unbiased and small; see `docs/ops.md` for measured errors.)
pub fn conv_error_bound_formats(
    precision: &Precision,
    pre: Activation,
    activation: Activation,
    t: &ConvTerms,
    formats: &ConvFormats,
) -> f64 {
    use super::common::tolerance::{
        act_unpack_rel, dest_u, matmul_compute_bound, pack_error_rel, quant_rel, sfpu_error,
    };
    let parts = precision.split_parts();
    let split = parts > 1;
    // A split conv always runs the exact path (its gather input is the Float32 split tensor).
    let exact = split || formats.exact(precision, t.residual.is_some());
    let u_d = dest_u(precision.fp32_acc);
    let host = |f: DataFormat| {
        if t.inputs_quantised {
            0.0
        } else {
            quant_rel(f)
        }
    };
    let mut qa = host(formats.input) + act_unpack_rel(precision, formats.input);
    if pre != Activation::None {
        let p = u_d
            + if split {
                0.0
            } else {
                pack_error_rel(formats.input)
            };
        qa += p + qa * p;
    }
    let e_in = qa * (t.s_abs + t.wq) + t.wq;
    let s_t = (1.0 + qa) * (t.s_abs + t.wq);
    let (kt, mm_input, s_mm) = if split {
        (
            t.kt * parts,
            DataFormat::Float32,
            (1.0 + 2f64.powi(-6)) * s_t,
        )
    } else {
        (t.kt, formats.input, s_t)
    };
    let comp = matmul_compute_bound(kt * TILE, precision, mm_input, s_mm);
    let acc = s_t + comp;
    let tf32 = |v: f64| {
        if precision.fp32_acc {
            2f64.powi(-10) * v
        } else {
            0.0
        }
    };
    let e_bias = t.bias.map_or(0.0, |b| {
        let b = b.abs();
        if exact {
            let kt = kt as f64;
            let rounds = 2.0 * f64::from(precision.fidelity.phases()) * kt + kt;
            host(bias_format(precision)) * b
                + rounds * u_d * b * (1.0 + host(bias_format(precision)))
        } else {
            let bq = host(DataFormat::Float16_b);
            bq * b + tf32(acc) + u_d * (acc + b * (1.0 + 2f64.powi(-8)))
        }
    });
    let e1 = e_in + comp + e_bias;
    let e2 = if activation == Activation::None {
        e1
    } else {
        let l = activation.lipschitz();
        l * e1 + sfpu_error(precision.fp32_acc, t.y_post_abs + l * e1)
    };
    let e3 = t.residual.map_or(e2, |r| {
        let r = r.abs();
        let q = host(formats.residual) * r;
        let v = t.y_post_abs + e2;
        if exact {
            e2 + q + u_d * (v + r + q)
        } else {
            e2 + q + tf32(v) + u_d * (v + r * (1.0 + 2f64.powi(-8)))
        }
    });
    e3 + pack_error_rel(formats.output) * (t.y_abs + e3)
}

/// f64 reference of PyTorch `Conv1d` on a time-major input `x [t_in, cin]` with weight
/// `[cout, cin / groups, k]` and optional bias, followed by `activation`. Returns
/// `(y [t_out, cout], s_abs [t_out, cout])` where `s_abs` is the sum of absolute products (for
/// error bounds).
pub fn conv1d_reference(
    p: &Conv1dParams,
    x: &[f32],
    t_in: usize,
    weight: &[f32],
    bias: Option<&[f32]>,
) -> (Vec<f64>, Vec<f64>) {
    let t_out = p.output_len(t_in).unwrap_or(0);
    let (cin_g, cout_g) = (p.cin / p.groups, p.cout / p.groups);
    let mut y = vec![0f64; t_out * p.cout];
    let mut s = vec![0f64; t_out * p.cout];
    for t in 0..t_out {
        for co in 0..p.cout {
            let g = co / cout_g;
            let mut acc = bias.map_or(0.0, |b| f64::from(b[co]));
            let mut sa = 0.0;
            for j in 0..p.kernel {
                let pos = (t * p.stride + j * p.dilation) as i64 - p.pad_left as i64;
                if pos < 0 || pos >= t_in as i64 {
                    continue;
                }
                let row = &x[pos as usize * p.cin..];
                for ci in 0..cin_g {
                    let prod = f64::from(row[g * cin_g + ci])
                        * f64::from(weight[(co * cin_g + ci) * p.kernel + j]);
                    acc += prod;
                    sa += prod.abs();
                }
            }
            y[t * p.cout + co] = acc;
            s[t * p.cout + co] = sa;
        }
    }
    (y, s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_len_matches_pytorch_formula() {
        let mut p = Conv1dParams::new(4, 4, 7, 3);
        assert_eq!(p.output_len(345), Some(345));
        p.stride = 2;
        assert_eq!(p.output_len(10), Some(5)); // floor((10 + 6 - 7) / 2) + 1
        p.pad_left = 0;
        p.pad_right = 0;
        assert_eq!(p.output_len(6), None);
        assert_eq!(p.output_len(7), Some(1));
    }

    #[test]
    fn group_ranges() {
        // Depthwise 64 channels: tile n reads only tile n.
        assert_eq!(group_cin_ranges(64, 64, 64), vec![(0, 1), (1, 2)]);
        // Dense.
        assert_eq!(group_cin_ranges(70, 40, 1), vec![(0, 3), (0, 3)]);
        // 4 groups of 16 in / 8 out: out tile 0 = channels 0..31 = groups 0..3 -> in 0..64.
        assert_eq!(group_cin_ranges(64, 32, 4), vec![(0, 2)]);
    }

    fn gather(t: usize, cin: usize, cout: usize, k: usize, d: usize) -> Gather {
        Gather {
            op: OP,
            t_in: t,
            t_out: t,
            cin,
            cout,
            phases: 1,
            taps: k,
            block_stride: 32,
            row_step: 1,
            tap_step: d as i64,
            offsets: vec![-(((k - 1) * d / 2) as i64)],
            out_rows: vec![0],
            cin_ranges: group_cin_ranges(cin, cout, 1),
            pre: Activation::None,
            residual: false,
            formats: ConvFormats::bf16(),
            exact: false,
        }
    }

    #[test]
    fn float32_plans_twice_the_activation_bytes() {
        let budget = 1_400_000;
        let g = gather(345, 64, 64, 5, 1);
        let bf = plan(&g, &Precision::hifi(), 64, budget, 341).unwrap();
        let g32 = Gather {
            formats: ConvFormats {
                input: DataFormat::Float32,
                output: DataFormat::Float32,
                residual: DataFormat::Float16_b,
            },
            exact: true,
            ..g
        };
        let f = plan(&g32, &Precision::hifi_fp32(), 64, budget, 341).unwrap();
        assert_eq!(f.nb, bf.nb);
        assert!(f.l1_bytes > bf.l1_bytes, "{f:?} vs {bf:?}");
        assert!(!ConvFormats::bf16().exact(&Precision::hifi(), false));
        assert!(g32.formats.exact(&Precision::hifi(), false));
        assert!(!g32.formats.exact(&Precision::bfp8_hifi2(), false));
    }

    #[test]
    fn plan_fits_l1_and_is_independent_of_t() {
        let budget = 1_400_000;
        let a = plan(
            &gather(345, 192, 256, 7, 1),
            &Precision::hifi(),
            64,
            budget,
            341,
        )
        .unwrap();
        assert!(a.l1_bytes <= budget);
        // 100k samples: more time blocks, same L1 per core.
        let g = gather(100_000, 32, 32, 7, 12);
        let b = plan(&g, &Precision::hifi(), 64, budget, 341).unwrap();
        assert_eq!(b.time_blocks, 3125);
        let short = plan(
            &gather(1_000, 32, 32, 7, 12),
            &Precision::hifi(),
            64,
            budget,
            341,
        )
        .unwrap();
        assert_eq!(
            b.l1_bytes, short.l1_bytes,
            "L1 per core must not grow with T: {b:?}"
        );
        assert!(b.l1_bytes < 128 * 1024, "{b:?}");
        // Halo of a dilation-12 k7 conv: 31 + 72 + 1 rows -> 4 tiles + 1 for misalignment.
        assert_eq!(b.window_tiles, 5);
    }

    #[test]
    fn plan_names_the_limit() {
        // 15 taps x 128 input tiles of bf16 weights: 3.9 MB for one output tile.
        let g = gather(100, 4096, 32, 15, 1);
        let e = plan(&g, &Precision::hifi(), 64, 1_400_000, 341).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("L1") && msg.contains("1400000"), "{msg}");
    }

    #[test]
    fn split_layout_orders_rows_by_block_tile_part() {
        let both = Precision {
            weights_lo: true,
            activations_lo: true,
            isolate_products: false,
            guard_dest_quirk: false,
            ..Precision::hifi_fp32()
        };
        let l = SplitLayout::of(&both).unwrap();
        assert_eq!(l.factor(), 3);
        assert_eq!(SplitLayout::of(&Precision::hifi_fp32()), None);
        // 2 blocks (taps) x 2 input tiles x 32 rows, 3 columns; w = 1 + row / 3000 + col / 7
        // (not bf16-exact, distinct per row and column).
        let (blocks, cin_t, cout) = (2, 2, 3);
        let w = |r: usize, c: usize| 1.0 + r as f32 / 3000.0 + c as f32 / 7.0;
        let dense: Vec<f32> = (0..blocks * cin_t * TILE * cout)
            .map(|i| w(i / cout, i % cout))
            .collect();
        let out = l.expand(&dense, blocks, cin_t, cout);
        assert_eq!(out.len(), 3 * dense.len());
        let bf16 = |x: f32| tt_formats::bf16_to_f32(tt_formats::f32_to_bf16_host(x));
        for b in 0..blocks {
            for t in 0..cin_t {
                for i in 0..TILE {
                    let src = (b * cin_t + t) * TILE + i;
                    for c in 0..cout {
                        let v = w(src, c);
                        let at = |s: usize| out[(((b * cin_t + t) * 3 + s) * TILE + i) * cout + c];
                        let (hi, hi2, lo) = (at(0), at(1), at(2));
                        assert_eq!(hi, bf16(v), "row {src} col {c}");
                        assert_eq!(hi2, hi);
                        assert_eq!(lo, bf16(lo), "lo must be bf16-exact");
                        let e = (f64::from(hi) + f64::from(lo) - f64::from(v)).abs();
                        assert!(e <= 2f64.powi(-16) * f64::from(v), "{v}: hi {hi} lo {lo}");
                        assert!(lo != 0.0 || hi == v);
                    }
                }
            }
        }
        // activations_lo alone repeats w unchanged.
        let a = SplitLayout::of(&Precision {
            activations_lo: true,
            isolate_products: false,
            guard_dest_quirk: false,
            ..Precision::hifi_fp32()
        })
        .unwrap();
        let out = a.expand(&dense, blocks, cin_t, cout);
        assert_eq!(&out[TILE * cout..2 * TILE * cout], &dense[..TILE * cout]);
    }

    #[test]
    fn guard_layout_reverses_the_masked_passes_only() {
        for (wlo, alo) in [(false, false), (true, false), (false, true), (true, true)] {
            let p = Precision {
                weights_lo: wlo,
                activations_lo: alo,
                isolate_products: true,
                guard_dest_quirk: true,
                ..Precision::hifi_fp32()
            };
            let fwd = SplitLayout::of(&p).unwrap();
            let rev = SplitLayout::reversed_of(&p).unwrap();
            // The same input parts: the guard reuses the split tensor.
            assert_eq!(fwd.parts, rev.parts);
            assert_eq!(fwd.weights.len(), rev.weights.len());
            for r in 0..8 {
                assert_eq!(fwd.weights[r], rev.weights[7 - r], "{wlo} {alo} pass {r}");
            }
            assert_eq!(fwd.weights[8..], rev.weights[8..]);
        }
        let no_iso = Precision {
            guard_dest_quirk: true,
            ..Precision::hifi_fp32()
        };
        assert_eq!(SplitLayout::reversed_of(&no_iso), None);
    }

    #[test]
    fn isolated_layout_masks_the_main_term_rows() {
        let all = Precision {
            weights_lo: true,
            activations_lo: true,
            isolate_products: true,
            guard_dest_quirk: false,
            ..Precision::hifi_fp32()
        };
        let l = SplitLayout::of(&all).unwrap();
        assert_eq!(l.factor(), 10);
        assert_eq!(&l.parts[8..], &[Part::Lo, Part::Full]);
        assert!(l.parts[..8].iter().all(|&p| p == Part::Full));
        for (flags, factor) in [((false, false), 8), ((true, false), 9), ((false, true), 9)] {
            let p = Precision {
                weights_lo: flags.0,
                activations_lo: flags.1,
                ..all
            };
            let l = SplitLayout::of(&p).unwrap();
            assert_eq!((l.factor(), l.weights.len()), (factor, factor), "{flags:?}");
        }
        // One tile, 2 columns, values not bf16-exact.
        let (cin_t, cout) = (1, 2);
        let dense: Vec<f32> = (0..TILE * cout).map(|i| 1.0 + i as f32 / 777.0).collect();
        let out = l.expand(&dense, 1, cin_t, cout);
        let bf16 = |x: f32| tt_formats::bf16_to_f32(tt_formats::f32_to_bf16_host(x));
        for i in 0..TILE {
            for c in 0..cout {
                let v = dense[i * cout + c];
                let at = |s: usize| out[(s * TILE + i) * cout + c];
                // Exactly one masked pass holds bf16(w) on row i: the one with r = i mod 8.
                for r in 0..8 {
                    let want = if i % 8 == r { bf16(v) } else { 0.0 };
                    assert_eq!(at(r), want, "row {i} col {c} pass {r}");
                }
                assert_eq!(at(8), bf16(v));
                assert_eq!(at(9), bf16(v - bf16(v)));
            }
        }
    }

    #[test]
    fn chunk_gather_clips_group_ranges() {
        let mut g = gather(45, 256, 256, 3, 1);
        // Depthwise-like: output tile n reads input tile n.
        g.cin_ranges = group_cin_ranges(256, 256, 256);
        let p = Precision::hifi_fp32();
        let c = chunk_gather(&g, &(2..5), None, &p);
        assert_eq!(c.cin, 3 * TILE);
        assert_eq!(c.cin_ranges[2], (0, 1));
        assert_eq!(c.cin_ranges[4], (2, 3));
        // Tiles outside the chunk reduce over its first tile (zero weights there).
        assert_eq!(c.cin_ranges[0], (0, 1));
        assert_eq!(c.cin_ranges[7], (0, 1));
        // The whole range is the unchunked gather.
        let whole = chunk_gather(&g, &(0..8), None, &p);
        assert_eq!((whole.cin, &whole.cin_ranges), (g.cin, &g.cin_ranges));
    }

    #[test]
    fn split_gather_scales_cin_and_group_ranges() {
        let p = Precision {
            weights_lo: true,
            ..Precision::hifi_fp32()
        };
        let mut g = gather(45, 70, 70, 3, 1);
        g.cin_ranges = group_cin_ranges(70, 70, 70);
        let s = split_gather(g, SplitLayout::of(&p).as_ref(), &p);
        assert_eq!(s.cin, 2 * 3 * 32);
        assert_eq!(s.cin_ranges, vec![(0, 2), (2, 4), (4, 6)]);
        assert_eq!(s.formats.input, DataFormat::Float32);
        assert!(s.exact);
        assert!(
            check_split(
                OP,
                &Precision {
                    fp32_acc: false,
                    ..p
                }
            )
            .is_err()
        );
        let iso = Precision {
            isolate_products: true,
            guard_dest_quirk: false,
            fp32_acc: false,
            ..Precision::hifi()
        };
        let e = check_split(OP, &iso).unwrap_err();
        assert!(e.to_string().contains("isolate_products"), "{e}");
    }

    #[test]
    fn reference_small_case_by_hand() {
        // cin 1, cout 1, k 2, pad 1: y[t] = w0 x[t-1] + w1 x[t] + b.
        let p = Conv1dParams::new(1, 1, 2, 1);
        let (y, _) = conv1d_reference(&p, &[1.0, 2.0, 3.0], 3, &[10.0, 1.0], Some(&[0.5]));
        assert_eq!(y, vec![1.5, 12.5, 23.5, 30.5]);
    }
}
