//! Types shared by every op: [`Precision`] (data formats, math fidelity, accumulation),
//! [`Activation`] (fused elementwise functions), [`DeviceTensor`] (a tiled, interleaved DRAM
//! matrix with a logical shape), [`OpError`], error bounds derived from the formats
//! ([`tolerance`]) and f64 CPU references ([`reference`](mod@reference)).
//!
//! # Padding convention
//! A `[rows, cols]` tensor is stored as whole 32x32 tiles; the elements past `rows`/`cols` in the
//! last tile row/column are *padding*. Tensors made by [`DeviceTensor::from_host`] and
//! [`DeviceTensor::zeros`] have zero padding. An op's output padding is **finite but otherwise
//! unspecified** unless the op documents otherwise; [`DeviceTensor::pad_is_zero`] says which.
//! An op that reduces over a padded axis either relies on zero *weights* there (matmul: the
//! padded rows of the prepared weights are zero, so any finite padding of the activations
//! contributes nothing) or masks the padding itself (layernorm).

use tt_safe::{Buffer, DataFormat, Device, MathFidelity, RunStats, Tensor2d};

/// Tile edge (elements).
pub const TILE: usize = 32;

/// Tiles needed for `n` elements along one axis.
pub const fn tiles(n: usize) -> usize {
    n.div_ceil(TILE)
}

/// The numeric configuration of an op.
///
/// In a matmul the activations are in0 (unpacked to SrcB), the weights in1 (SrcA); see
/// `shared/TENSTORRENT.md` section 4 for what each fidelity phase multiplies.
///
/// # Float32 activations
/// `activations == DataFormat::Float32` (preset [`Precision::hifi_fp32`]) needs `fp32_acc`: a
/// Float32 tile reaches the FPU as TF32 (the unpacker drops the low 13 mantissa bits, 11
/// significant bits remain, a relative truncation below `2^-10`) only with an fp32 DEST, and
/// only an fp32 DEST packs a Float32 output without rounding. Ops that accept it (see
/// `docs/ops.md`): eltwise (exact fp32 add/sub/mul on the SFPU: both operands are unpacked
/// straight to DEST, `UnpackToDestFp32`), conv1d and conv_transpose1d (Float32 or bf16 input
/// and output; the matmul reads TF32 activations), matmul. Use HiFi4 (or HiFi3): at HiFi2 or
/// LoFi the multiplier keeps only 7 activation bits, less than bf16. Ops that do not accept it
/// return [`OpError::FormatUnsupported`]. [`Precision::validate`] accepts only bf16 / bfp8_b
/// activations; ops that take Float32 call [`Precision::validate_fp32`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Precision {
    /// Format of weights prepared on the device: `Float16_b`, `Bfp8_b` or `Bfp4_b`.
    pub weights: DataFormat,
    /// Format of activation tensors the op writes (and the usual input format):
    /// `Float16_b` or `Bfp8_b`, or `Float32` (with `fp32_acc`) for the ops that support it.
    pub activations: DataFormat,
    /// Matmul fidelity (multiplier phases).
    pub fidelity: MathFidelity,
    /// FP32 accumulation in DEST (and fp32 intermediates for spilled partial sums).
    pub fp32_acc: bool,
    /// Weights prepared as a bf16 hi + bf16 lo pair (`w = hi + lo`, 16 significant bits) and
    /// both terms multiplied (a second matmul pass). `Float16_b` weights only; the ops that
    /// support it document it (conv1d and conv_transpose1d, which also need `fp32_acc`; see
    /// `docs/ops.md`, "Split operands"), the others return [`OpError::InvalidArgument`].
    pub weights_lo: bool,
    /// A Float32 input is split on the device into the TF32 part the FPU reads and the rest
    /// (`x - TF32(x)`), and both are multiplied (a second matmul pass): about 21 significant
    /// bits of the activation instead of 11. Needs `fp32_acc`; the ops that support it document
    /// it (conv1d and conv_transpose1d: any input format goes through the split, Float32
    /// output activations keep what it gains), the others return [`OpError::InvalidArgument`].
    ///
    /// The matmul engine itself rounds each product of a group of 8 at about `2^-12` of the
    /// group's largest product (MVMUL alignment), so splitting reaches that floor and no further
    /// unless [`Precision::isolate_products`] is set as well.
    pub activations_lo: bool,
    /// Isolates the products of the main term from the MVMUL alignment (conv1d and
    /// conv_transpose1d; needs `fp32_acc`). The FPU sums the products of each output datum in
    /// groups of 8 consecutive K and rounds every product of a group at about `2^-12` of the
    /// group's largest one. With this flag the main term (`a x w_hi` with
    /// [`Precision::weights_lo`], `a x w` without) is computed as 8 passes whose weights keep only
    /// the K rows with `k mod 8 == r` (`r = 0..7`), so every MVMUL group of 8 holds one non-zero
    /// product and the alignment rounds nothing; the small correction terms (`a_lo w_hi`,
    /// `a w_lo`) keep their own tiles and groups. Costs 8x the FPU work and in0 / weight L1 of the
    /// main term; a conv whose operands no longer fit L1 in one launch runs as several launches
    /// over input-channel chunks, chained exactly in fp32 (see `docs/ops.md`, "Split operands").
    /// It is applied whenever set, also to grouped / depthwise convs, where it is correct but
    /// gains nothing when a group of 8 K rows already holds at most one non-zero weight per output
    /// column (depthwise). Other ops return [`OpError::InvalidArgument`].
    pub isolate_products: bool,
    /// Guards conv1d / conv_transpose1d against the Wormhole fp32-DEST renormalisation quirk
    /// (an accumulation step whose aligned integer sum is exactly -1 unit leaves the exponent 27
    /// too high: the DEST value becomes a large *negative* power of two, 8-32x the operands'
    /// scale; rare, but with [`Precision::isolate_products`] it is the whole remaining error).
    /// The conv is computed twice with different accumulation orders (the 8 masked passes of
    /// the main term in order `r = 0..7`, then `7..0`: the same split input, a second weight
    /// buffer) and the result is the elementwise max. An event only ever moves a value down and
    /// the output activation and residual add are non-decreasing, so the max keeps the
    /// uncorrupted computation wherever only one was hit; without events both agree to fp32
    /// rounding. Needs `fp32_acc`, `isolate_products` and a non-decreasing output activation
    /// (not GELU, not a negative leaky slope) (else [`OpError::InvalidArgument`]);
    /// other ops reject it. Cost: 2x the conv's launches (split and gather), FPU work and weight
    /// DRAM, plus 3 exact-fp32 eltwise launches (`b + relu(a - b)`). See `docs/ops.md`, "Split
    /// operands".
    pub guard_dest_quirk: bool,
}

impl Precision {
    /// bf16 weights and activations, HiFi4, fp32 accumulation: exact products, the reference
    /// configuration.
    pub const fn hifi() -> Precision {
        Precision {
            weights: DataFormat::Float16_b,
            activations: DataFormat::Float16_b,
            fidelity: MathFidelity::HiFi4,
            fp32_acc: true,
            weights_lo: false,
            activations_lo: false,
            isolate_products: false,
            guard_dest_quirk: false,
        }
    }

    /// bf16 weights, **Float32** activations, HiFi4, fp32 accumulation: exact products of TF32
    /// activations and bf16 weights, exact fp32 elementwise ops, no output rounding.
    pub const fn hifi_fp32() -> Precision {
        Precision {
            weights: DataFormat::Float16_b,
            activations: DataFormat::Float32,
            fidelity: MathFidelity::HiFi4,
            fp32_acc: true,
            weights_lo: false,
            activations_lo: false,
            isolate_products: false,
            guard_dest_quirk: false,
        }
    }

    /// bfp8_b weights, bf16 activations, HiFi2 (full precision for bfp8 weights), bf16 DEST.
    pub const fn bfp8_hifi2() -> Precision {
        Precision {
            weights: DataFormat::Bfp8_b,
            activations: DataFormat::Float16_b,
            fidelity: MathFidelity::HiFi2,
            fp32_acc: false,
            weights_lo: false,
            activations_lo: false,
            isolate_products: false,
            guard_dest_quirk: false,
        }
    }

    /// bfp8_b weights, bf16 activations, LoFi, bf16 DEST.
    pub const fn bfp8_lofi() -> Precision {
        Precision {
            weights: DataFormat::Bfp8_b,
            activations: DataFormat::Float16_b,
            fidelity: MathFidelity::LoFi,
            fp32_acc: false,
            weights_lo: false,
            activations_lo: false,
            isolate_products: false,
            guard_dest_quirk: false,
        }
    }

    /// bfp4_b weights (exact under LoFi), bf16 activations, LoFi, bf16 DEST.
    pub const fn bfp4_lofi() -> Precision {
        Precision {
            weights: DataFormat::Bfp4_b,
            activations: DataFormat::Float16_b,
            fidelity: MathFidelity::LoFi,
            fp32_acc: false,
            weights_lo: false,
            activations_lo: false,
            isolate_products: false,
            guard_dest_quirk: false,
        }
    }

    /// The four presets the test suites run every op under.
    pub const fn presets() -> [(&'static str, Precision); 4] {
        [
            ("bf16/HiFi4/fp32acc", Precision::hifi()),
            ("bfp8_b/HiFi2", Precision::bfp8_hifi2()),
            ("bfp8_b/LoFi", Precision::bfp8_lofi()),
            ("bfp4_b/LoFi", Precision::bfp4_lofi()),
        ]
    }

    /// The same precision with `format` activations.
    pub const fn with_activations(mut self, format: DataFormat) -> Precision {
        self.activations = format;
        self
    }

    /// Checks that the formats are ones the ops support.
    pub fn validate(&self, op: &'static str) -> Result<(), OpError> {
        if !matches!(
            self.weights,
            DataFormat::Float16_b | DataFormat::Bfp8_b | DataFormat::Bfp4_b
        ) {
            return Err(OpError::FormatUnsupported {
                op,
                role: "weights",
                format: self.weights,
                supported: "Float16_b, Bfp8_b or Bfp4_b",
            });
        }
        if self.weights_lo && self.weights != DataFormat::Float16_b {
            return Err(OpError::InvalidArgument {
                op,
                what: format!(
                    "weights_lo (bf16 hi + lo weight pairs) needs Float16_b weights, not {:?}",
                    self.weights
                ),
            });
        }
        if self.activations_lo && !self.fp32_acc {
            return Err(OpError::InvalidArgument {
                op,
                what: "activations_lo (TF32 hi + lo split of Float32 inputs) needs fp32_acc = true"
                    .into(),
            });
        }
        check_activation_format(op, self.activations)
    }

    /// [`Precision::validate`] for ops that also accept Float32 activations (which need
    /// `fp32_acc`; see the type's docs).
    pub fn validate_fp32(&self, op: &'static str) -> Result<(), OpError> {
        Precision {
            activations: DataFormat::Float16_b,
            ..*self
        }
        .validate(op)?;
        check_activation_format_fp32(op, "activations", self.activations, self.fp32_acc)
    }

    /// For matmul-based ops that do not implement [`Precision::weights_lo`] /
    /// [`Precision::activations_lo`]: an error naming the op instead of silently ignoring them.
    pub fn check_no_split(&self, op: &'static str) -> Result<(), OpError> {
        if self.weights_lo || self.activations_lo || self.isolate_products || self.guard_dest_quirk
        {
            return Err(OpError::InvalidArgument {
                op,
                what: "weights_lo / activations_lo / isolate_products / guard_dest_quirk (split \
                       matmul operands) \
                       are not implemented by this op; use conv1d / conv_transpose1d or clear them"
                    .into(),
            });
        }
        Ok(())
    }

    /// Tile matmuls per original K tile: 1 without a split, 2 with [`Precision::weights_lo`] or
    /// [`Precision::activations_lo`] alone, 3 with both (`a_hi w_hi + a_lo w_hi + a_hi w_lo`;
    /// see `docs/ops.md`, "Split operands").
    pub const fn split_parts(&self) -> usize {
        match (self.weights_lo, self.activations_lo) {
            (false, false) => 1,
            (true, true) => 3,
            _ => 2,
        }
    }

    /// The format of intermediate partial sums (spilled between K blocks): fp32 with fp32
    /// accumulation, bf16 otherwise.
    pub const fn intermediate_format(&self) -> DataFormat {
        if self.fp32_acc {
            DataFormat::Float32
        } else {
            DataFormat::Float16_b
        }
    }
}

/// Checks an activation-tensor format (`Float16_b` or `Bfp8_b`).
pub fn check_activation_format(op: &'static str, format: DataFormat) -> Result<(), OpError> {
    if matches!(format, DataFormat::Float16_b | DataFormat::Bfp8_b) {
        Ok(())
    } else {
        Err(OpError::FormatUnsupported {
            op,
            role: "activations",
            format,
            supported: "Float16_b or Bfp8_b",
        })
    }
}

/// Checks the format of an activation tensor an op reads or writes (`role`) when the op
/// supports Float32: `Float16_b`, `Bfp8_b`, or `Float32` with `fp32_acc` (an fp32 DEST, which
/// the TF32 unpack and the unrounded Float32 pack need).
pub fn check_activation_format_fp32(
    op: &'static str,
    role: &'static str,
    format: DataFormat,
    fp32_acc: bool,
) -> Result<(), OpError> {
    match format {
        DataFormat::Float16_b | DataFormat::Bfp8_b => Ok(()),
        DataFormat::Float32 if fp32_acc => Ok(()),
        DataFormat::Float32 => Err(OpError::FormatUnsupported {
            op,
            role,
            format,
            supported: "Float16_b or Bfp8_b, or Float32 with fp32_acc = true (Float32 needs an \
                        fp32 DEST; e.g. Precision::hifi_fp32())",
        }),
        _ => Err(OpError::FormatUnsupported {
            op,
            role,
            format,
            supported: "Float16_b, Bfp8_b, or Float32 with fp32_acc = true",
        }),
    }
}

/// The statistics of two launches run one after the other (e.g. a conv's operand split and the
/// conv itself) as one: device cycles, device time and host time add up (a time is `None` when
/// either launch lacks it), `is_estimate` when either is an estimate, the provider of the first.
pub fn combine_stats(a: &RunStats, b: &RunStats) -> RunStats {
    RunStats {
        provider: a.provider,
        is_estimate: a.is_estimate || b.is_estimate,
        device_cycles: a.device_cycles.zip(b.device_cycles).map(|(x, y)| x + y),
        device_ns: a.device_ns.zip(b.device_ns).map(|(x, y)| x + y),
        host_ns: a.host_ns + b.host_ns,
    }
}

/// An elementwise function fused after an op (applied in DEST by the SFPU before packing).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Activation {
    /// Identity.
    #[default]
    None,
    /// max(x, 0).
    Relu,
    /// x if x >= 0 else slope * x.
    LeakyRelu(f32),
    /// x * Phi(x) with the exact erf.
    Gelu,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^-x).
    Sigmoid,
}

impl Activation {
    /// The function in f64 (the CPU reference).
    pub fn apply(self, x: f64) -> f64 {
        reference::activation(self, x)
    }

    /// A Lipschitz constant L: |f(x) - f(y)| <= L |x - y|, used to carry an input error
    /// through the function. GELU's derivative Phi(x) + x phi(x) peaks at 1.1289 (x = sqrt 2).
    pub fn lipschitz(self) -> f64 {
        match self {
            Activation::None | Activation::Relu | Activation::Tanh => 1.0,
            Activation::LeakyRelu(s) => f64::from(s.abs()).max(1.0),
            Activation::Gelu => 1.129,
            Activation::Sigmoid => 0.25,
        }
    }

    /// Compile-time define value used by the op kernels (`ACTIVATION`): 0 none, 1 relu, 2 leaky
    /// relu, 3 gelu, 4 tanh, 5 sigmoid.
    pub fn code(self) -> u32 {
        match self {
            Activation::None => 0,
            Activation::Relu => 1,
            Activation::LeakyRelu(_) => 2,
            Activation::Gelu => 3,
            Activation::Tanh => 4,
            Activation::Sigmoid => 5,
        }
    }

    /// The f32 bits of the leaky-ReLU slope (the SFPU parameter), 0 otherwise.
    pub fn param_bits(self) -> u32 {
        match self {
            Activation::LeakyRelu(s) => s.to_bits(),
            _ => 0,
        }
    }
}

/// Errors of the op builders. Each says which limit or argument, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A shape the op cannot run; `limit` names the limit.
    #[error("{op}: {what} is not supported (limit: {limit}); split the work or change the shape")]
    ShapeUnsupported {
        /// The op.
        op: &'static str,
        /// What was asked for.
        what: String,
        /// The limit it breaks.
        limit: String,
    },
    /// Operand shapes that do not fit together.
    #[error("{op}: shape mismatch: {what}")]
    ShapeMismatch {
        /// The op.
        op: &'static str,
        /// Which shapes, and how they disagree.
        what: String,
    },
    /// A data format the op does not support in this role.
    #[error("{op}: {role} format {format:?} is not supported; use {supported}")]
    FormatUnsupported {
        /// The op.
        op: &'static str,
        /// "weights", "activations", "input", ...
        role: &'static str,
        /// The format given.
        format: DataFormat,
        /// The formats that work.
        supported: &'static str,
    },
    /// A bad argument (non-finite parameter, empty input, ...).
    #[error("{op}: invalid argument: {what}")]
    InvalidArgument {
        /// The op.
        op: &'static str,
        /// What is wrong.
        what: String,
    },
    /// An input tensor lives on another device.
    #[error(
        "{op}: input tensor is on another device; create it with DeviceTensor::from_host on this op's device"
    )]
    ForeignDevice {
        /// The op.
        op: &'static str,
    },
    /// An error from tt-safe (buffers, programs, runs, tiles); its message says what to do.
    #[error(transparent)]
    Tt(#[from] tt_safe::Error),
}

macro_rules! from_tt {
    ($($t:ty),*) => {$(
        impl From<$t> for OpError {
            fn from(e: $t) -> Self {
                OpError::Tt(tt_safe::Error::from(e))
            }
        }
    )*};
}
from_tt!(
    tt_safe::BufferError,
    tt_safe::ProgramError,
    tt_safe::RunError,
    tt_safe::TileError,
    tt_safe::McastError,
    tt_safe::GridError
);

/// A `[rows, cols]` matrix on the device: whole 32x32 tiles of `format` in row-major tile order,
/// one tile per page of an interleaved DRAM buffer. See the module doc for the padding rule.
pub struct DeviceTensor {
    buffer: Buffer,
    rows: usize,
    cols: usize,
    format: DataFormat,
    pad_is_zero: bool,
}

impl std::fmt::Debug for DeviceTensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceTensor")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .field("format", &self.format)
            .field("pad_is_zero", &self.pad_is_zero)
            .finish()
    }
}

fn check_tensor_format(format: DataFormat) -> Result<(), OpError> {
    if matches!(
        format,
        DataFormat::Float32 | DataFormat::Float16_b | DataFormat::Bfp8_b | DataFormat::Bfp4_b
    ) {
        Ok(())
    } else {
        Err(OpError::FormatUnsupported {
            op: "DeviceTensor",
            role: "tensor",
            format,
            supported: "Float32, Float16_b, Bfp8_b or Bfp4_b",
        })
    }
}

impl DeviceTensor {
    /// Uploads row-major `data` (`rows * cols` values) as tiles of `format` (host encoding:
    /// bf16 round-to-nearest-even, BFP with a shared exponent per 16-value face row).
    pub fn from_host(
        device: &Device,
        rows: usize,
        cols: usize,
        data: &[f32],
        format: DataFormat,
    ) -> Result<DeviceTensor, OpError> {
        check_tensor_format(format)?;
        if rows == 0 || cols == 0 {
            return Err(OpError::InvalidArgument {
                op: "DeviceTensor::from_host",
                what: format!("empty shape [{rows}, {cols}]; give at least one row and column"),
            });
        }
        let bytes = Tensor2d::new(rows, cols, data.to_vec())?.to_tiles(format)?;
        let t = DeviceTensor::alloc(device, rows, cols, format)?;
        t.buffer.write(&bytes)?;
        Ok(t)
    }

    /// A tensor of zeros (padding included).
    pub fn zeros(
        device: &Device,
        rows: usize,
        cols: usize,
        format: DataFormat,
    ) -> Result<DeviceTensor, OpError> {
        let data = vec![0f32; rows.saturating_mul(cols)];
        DeviceTensor::from_host(device, rows, cols, &data, format)
    }

    /// Allocates without initialising (for op outputs): padding marked not zero.
    pub fn alloc(
        device: &Device,
        rows: usize,
        cols: usize,
        format: DataFormat,
    ) -> Result<DeviceTensor, OpError> {
        check_tensor_format(format)?;
        if rows == 0 || cols == 0 {
            return Err(OpError::InvalidArgument {
                op: "DeviceTensor::alloc",
                what: format!("empty shape [{rows}, {cols}]; give at least one row and column"),
            });
        }
        let page = format.tile_size_bytes();
        let n = tiles(rows) * tiles(cols);
        let buffer = Buffer::dram(device, (n * page) as u64, page as u32)?;
        Ok(DeviceTensor {
            buffer,
            rows,
            cols,
            format,
            pad_is_zero: true,
        })
    }

    /// Wraps an op's output buffer; `pad_is_zero` says whether the op wrote zero padding.
    pub fn from_parts(
        buffer: Buffer,
        rows: usize,
        cols: usize,
        format: DataFormat,
        pad_is_zero: bool,
    ) -> Result<DeviceTensor, OpError> {
        check_tensor_format(format)?;
        let need = (tiles(rows) * tiles(cols) * format.tile_size_bytes()) as u64;
        if rows == 0 || cols == 0 || buffer.size() != need {
            return Err(OpError::ShapeMismatch {
                op: "DeviceTensor::from_parts",
                what: format!(
                    "a [{rows}, {cols}] {format:?} tensor needs {need} bytes, the buffer has {}",
                    buffer.size()
                ),
            });
        }
        Ok(DeviceTensor {
            buffer,
            rows,
            cols,
            format,
            pad_is_zero,
        })
    }

    /// Marks whether the padding is zero (ops call this on their outputs).
    pub fn set_pad_is_zero(&mut self, zero: bool) {
        self.pad_is_zero = zero;
    }

    /// Downloads and decodes to row-major `rows * cols` values (padding dropped).
    pub fn to_host(&self) -> Result<Vec<f32>, OpError> {
        let bytes = self.buffer.read()?;
        Ok(tt_safe::tiles::from_tiles(
            &bytes,
            self.rows,
            self.cols,
            self.format,
        )?)
    }

    /// Logical rows (time steps).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Logical columns (channels).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `[rows, cols]`.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }
    /// Tile rows.
    pub fn tile_rows(&self) -> usize {
        tiles(self.rows)
    }
    /// Tile columns.
    pub fn tile_cols(&self) -> usize {
        tiles(self.cols)
    }
    /// Tiles (pages).
    pub fn num_tiles(&self) -> usize {
        self.tile_rows() * self.tile_cols()
    }
    /// Tile format.
    pub fn format(&self) -> DataFormat {
        self.format
    }
    /// The DRAM buffer (one tile per page).
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }
    /// The device it lives on.
    pub fn device(&self) -> Device {
        self.buffer.device()
    }
    /// Whether the padding elements are known to be zero.
    pub fn pad_is_zero(&self) -> bool {
        self.pad_is_zero
    }
}

/// Error bounds derived from the data formats, the math fidelity and the accumulation, for
/// tests and for users choosing a precision. All bounds are worst-case (never statistical).
///
/// # Facts used (`shared/TENSTORRENT.md` sections 3-4, tt-formats codecs)
/// - **Unit roundoff** `u` of a float format with `p` significant bits under round-to-nearest:
///   `|fl(x) - x| <= 2^-p |x|`. bf16 has p = 8 (u = 2^-8), fp32 p = 24.
/// - **BFP** (`Bfp8_b`, `Bfp4_b`): 16 values of a face row share the largest exponent E; each
///   keeps a sign and m magnitude bits (7 or 3) on a step of 2^(E-m+1). The host encoder rounds
///   half to even and saturates, so `|q(x) - x| <= 2^-m * max|row|`: **2^-7** (bfp8) and
///   **2^-3** (bfp4) of the block max. The device packer first reduces the DEST value to bf16
///   and then aligns with rounding; see [`tolerance::pack_error_rel`].
/// - **Multiplier** (5-bit SrcA = weights x 7-bit SrcB = activations): an operand with more
///   significant bits than its slice is truncated; A's low 5-bit slice and B's low bits come
///   back in the later phases. With `ea = 2^-4` when the weights have more than 5 significant
///   bits (bf16: 8, bfp8: 7; bfp4 has 3, so `ea = 0`) and `eb = 2^-6` when the activations
///   have more than 7 (bf16: 8; bfp8: 7, so `eb = 0`), the relative product error is
///   LoFi `ea + eb + ea*eb`, HiFi2 `eb`, HiFi3 `ea*eb`, HiFi4 `0`. Truncation is toward zero.
/// - **MVMUL alignment**: each product is aligned to the largest exponent of its group of 8
///   with rounding, at most half an ulp of 2^-11 of the group max, per phase; the lower phases'
///   partial products are at most 2^-4 of the first's, so all phases together lose at most
///   `16 * 2^-12 * sum|a b|` (tt-sim `fpu/matmul.rs`, checked there against f64).
/// - **DEST accumulation**: each MVMUL result is rounded into DEST (bf16 `u = 2^-8`, or fp32
///   `2^-24`); per output element a tile matmul makes `2 * phases` such additions (two K faces
///   per phase), each adding at most `u * sum|a b|` (the partial sum never exceeds the sum of
///   absolute products). A kernel that spills partial sums between K blocks rounds once more
///   per block to the intermediate format (bounded here by one per K tile).
pub mod tolerance {
    use super::Precision;
    use tt_safe::{DataFormat, MathFidelity};

    fn p2(e: i32) -> f64 {
        2f64.powi(e)
    }

    /// Host quantisation of one value to `format`, as a fraction of the block max (BFP) or of
    /// the value itself (float formats; the value is at most the block max, so the same number
    /// bounds both).
    pub fn quant_rel(format: DataFormat) -> f64 {
        match format {
            DataFormat::Float32 => p2(-24),
            DataFormat::Float16_b => p2(-8),
            DataFormat::Bfp8_b => p2(-7),
            DataFormat::Bfp4_b => p2(-3),
            DataFormat::Bfp2_b => p2(-1),
            _ => 1.0,
        }
    }

    /// What the unpacker loses of a value of `format` on its way to SrcA/SrcB, relative to the
    /// value: Float32 becomes TF32 (the low 13 of 23 mantissa bits dropped, truncation toward
    /// zero: below `2^-10` relative); bf16 and BFP unpack exactly. (Float32 unpacked straight
    /// to DEST, `UnpackToDestFp32`, loses nothing.)
    pub fn unpack_rel(format: DataFormat) -> f64 {
        match format {
            DataFormat::Float32 => p2(-10),
            _ => 0.0,
        }
    }

    /// Relative error of a weight as the multiplier sees it, against the f32 weight `w`
    /// (as a fraction of the BFP block max for BFP formats, see [`quant_rel`]).
    ///
    /// Without [`Precision::weights_lo`]: [`quant_rel`] of the weight format. With it
    /// (`Float16_b` only) the weight is `w_hi = bf16(w)` (RNE: `|w - w_hi| <= 2^-8 |w|`) plus
    /// `w_lo = bf16(w - w_hi)` (`|w_lo - (w - w_hi)| <= 2^-8 |w - w_hi| <= 2^-16 |w|`), so
    /// `|w_hi + w_lo - w| <= 2^-16 |w|`. With [`Precision::activations_lo`] as well the conv
    /// drops the fourth product `a_lo w_lo` (`|a_lo| < 2^-10 |a|` after the TF32 truncation,
    /// `|w_lo| <= 2^-8 (1 + 2^-8) |w|`: below `2^-18 (1 + 2^-8) |a w| < 2^-17 |a w|`), which is
    /// charged here as a weight error: `2^-16 + 2^-17`.
    pub fn weight_rel(precision: &Precision) -> f64 {
        match (precision.weights_lo, precision.activations_lo) {
            (false, _) => quant_rel(precision.weights),
            (true, false) => p2(-16),
            (true, true) => p2(-16) + p2(-17),
        }
    }

    /// What the multiplier loses of an activation of `format` (relative, on top of its host
    /// quantisation): [`unpack_rel`] (`2^-10` for Float32, read as TF32), or with
    /// [`Precision::activations_lo`] `2^-20`: the input `a` is split into `a_hi = TF32(a)`
    /// (what the unpacker reads of the Full part) and `a_lo = a - a_hi` (exact in fp32,
    /// `|a_lo| < 2^-10 |a|`), and the unpacker truncates `a_lo` to TF32 in turn, losing below
    /// `2^-10 |a_lo| < 2^-20 |a|`. (A bf16 input has `a_lo = 0`; the bound still holds.)
    pub fn act_unpack_rel(precision: &Precision, format: DataFormat) -> f64 {
        if precision.activations_lo {
            p2(-20)
        } else {
            unpack_rel(format)
        }
    }

    /// Device-packer rounding of a DEST value to `format`, as a fraction of the block max:
    /// bf16 `2^-8` (round to nearest, ties away, tt-sim packer); fp32 0 from an fp32 DEST;
    /// BFP: a bf16 truncation (`2^-7`), a mantissa rounding (`2^-7`) and the alignment rounding
    /// with saturation (`2^-m` of the block max): bfp8 `3 * 2^-7`, bfp4 `2^-3 + 2^-6`.
    pub fn pack_error_rel(format: DataFormat) -> f64 {
        match format {
            DataFormat::Float32 => 0.0,
            DataFormat::Float16_b => p2(-8),
            DataFormat::Bfp8_b => 3.0 * p2(-7),
            DataFormat::Bfp4_b => p2(-3) + 2.0 * p2(-7),
            _ => 1.0,
        }
    }

    /// Significant bits a value of `format` can carry once unpacked.
    pub fn significant_bits(format: DataFormat) -> u32 {
        match format {
            DataFormat::Float32 => 11, // TF32 in the source registers
            DataFormat::Float16_b => 8,
            DataFormat::Bfp8_b => 7,
            DataFormat::Bfp4_b => 3,
            DataFormat::Bfp2_b => 1,
            _ => 24,
        }
    }

    /// Relative error of one product from the multiplier phases the fidelity skips (see the
    /// module doc): weights go to SrcA (5-bit slices), activations to SrcB (7-bit slices).
    pub fn fidelity_rel(fidelity: MathFidelity, weights: DataFormat, acts: DataFormat) -> f64 {
        let ea = if significant_bits(weights) > 5 {
            p2(-4)
        } else {
            0.0
        };
        let eb = if significant_bits(acts) > 7 {
            p2(-6)
        } else {
            0.0
        };
        match fidelity {
            MathFidelity::LoFi => ea + eb + ea * eb,
            MathFidelity::HiFi2 => eb,
            MathFidelity::HiFi3 => ea * eb,
            MathFidelity::HiFi4 => 0.0,
        }
    }

    /// Unit roundoff of DEST accumulation.
    pub fn dest_u(fp32_acc: bool) -> f64 {
        if fp32_acc { p2(-24) } else { p2(-8) }
    }

    /// Bound on `|y~ - y|` for one matmul output `y = sum_k a_k b_k` over `k` terms computed on
    /// the device from operands **already in their device formats** (no input quantisation),
    /// before the output is packed: `s_abs = sum_k |a_k b_k|`.
    ///
    /// `(fidelity_rel + 16 * 2^-12 + (2 * phases * Kt + Kt) * u_dest) * s_abs`, where `Kt`
    /// counts K tiles (DEST additions per tile and one spill per K tile at most).
    pub fn matmul_compute_bound(
        k: usize,
        precision: &Precision,
        act_format: DataFormat,
        s_abs: f64,
    ) -> f64 {
        let kt = k.div_ceil(32) as f64;
        let phases = f64::from(precision.fidelity.phases());
        let n_round = 2.0 * phases * kt + kt;
        (fidelity_rel(precision.fidelity, precision.weights, act_format)
            + 16.0 * p2(-12)
            + n_round * dest_u(precision.fp32_acc))
            * s_abs
    }

    /// Bound on the error that quantising the f32 inputs adds to a `k`-term dot product with
    /// `|a| <= max_a`, `|b| <= max_b`: each `|a~ - a| <= qa max_a`, `|b~ - b| <= qb max_b`, so
    /// `|a~ b~ - a b| <= (qa + qb + qa qb) max_a max_b` per term.
    pub fn quantisation_bound(
        k: usize,
        weights: DataFormat,
        acts: DataFormat,
        max_a: f64,
        max_b: f64,
    ) -> f64 {
        let (qa, qb) = (quant_rel(acts) + unpack_rel(acts), quant_rel(weights));
        k as f64 * (qa + qb + qa * qb) * max_a * max_b
    }

    /// Uniform bound on `|y~ - y|` for every element of `A [M, k] x W [k, N]` against f64 on
    /// the original f32 inputs (`|A| <= max_a`, `|W| <= max_b`, activations in
    /// `precision.activations`), **including** packing the output to `precision.activations`:
    /// input quantisation ([`quantisation_bound`]) + compute error with
    /// `s_abs <= k (1 + qa)(1 + qb) max_a max_b` ([`matmul_compute_bound`]) + output packing
    /// ([`pack_error_rel`] of the block max, itself at most `k max_a max_b` plus the errors).
    pub fn matmul_error_bound(k: usize, precision: &Precision, max_a: f64, max_b: f64) -> f64 {
        let acts = precision.activations;
        let (qa, qb) = (
            quant_rel(acts) + unpack_rel(acts),
            quant_rel(precision.weights),
        );
        let s_max = k as f64 * (1.0 + qa) * (1.0 + qb) * max_a * max_b;
        let pre = quantisation_bound(k, precision.weights, acts, max_a, max_b)
            + matmul_compute_bound(k, precision, acts, s_max);
        pre + pack_error_rel(acts) * (s_max + pre)
    }

    /// Error added by an SFPU function evaluated in DEST and stored back: the simulator
    /// computes the ideal function and rounds once to DEST (bf16 `2^-8` relative, fp32
    /// `2^-24`); hardware approximations (polynomials, LUTs) are specified to a few bf16 ulp,
    /// allowed here as `2^-6` relative plus `2^-12` absolute (within 4 ulp of bf16 for values
    /// above 2^-6). `y_abs` bounds the function's output magnitude.
    pub fn sfpu_error(fp32_acc: bool, y_abs: f64) -> f64 {
        dest_u(fp32_acc) * y_abs + p2(-6) * y_abs + p2(-12)
    }
}

/// A model of the device matmul for tests: what the multiplier computes on device-format
/// operands, and a per-element bound on what alignment and rounding can add to it.
pub mod device_model {
    use super::Precision;
    use super::tolerance::dest_u;
    use tt_safe::MathFidelity;

    /// `x` truncated to its `bits` most significant bits (toward zero; sign and exponent kept).
    pub fn truncate_bits(x: f32, bits: u32) -> f32 {
        if bits >= 24 || x == 0.0 || !x.is_finite() {
            return x;
        }
        let drop = 24 - bits;
        f32::from_bits(x.to_bits() & !((1u32 << drop) - 1))
    }

    /// The product the multiplier forms from weight `a` (SrcA) and activation `b` (SrcB) at
    /// `fidelity`: `a = A_hi + A_lo` with `A_hi` the top 5 significant bits, `b = B_hi + B_lo`
    /// with `B_hi` the top 7; LoFi `A_hi B_hi`, HiFi2 adds `A_lo B_hi`, HiFi3 `A_hi B_lo`,
    /// HiFi4 `A_lo B_lo` (`shared/TENSTORRENT.md` section 4). Exact in f64.
    pub fn product(a: f32, b: f32, fidelity: MathFidelity) -> f64 {
        let a_hi = f64::from(truncate_bits(a, 5));
        let a_lo = f64::from(a) - a_hi;
        let b_hi = f64::from(truncate_bits(b, 7));
        let b_lo = f64::from(b) - b_hi;
        match fidelity {
            MathFidelity::LoFi => a_hi * b_hi,
            MathFidelity::HiFi2 => (a_hi + a_lo) * b_hi,
            MathFidelity::HiFi3 => (a_hi + a_lo) * b_hi + a_hi * b_lo,
            MathFidelity::HiFi4 => f64::from(a) * f64::from(b),
        }
    }

    /// `x [m, k] (activations) x w [k, n] (weights) + bias` on device-format values: returns
    /// `(y, bound)` where `y` sums the fidelity-truncated products ([`product`]) in f64 and
    /// `bound` bounds, per element, the difference between the DEST result and `y`:
    /// - per K tile, the `2 * phases` MVMUL results rounded into DEST, each by at most
    ///   `u_dest * (|partial before the tile| + sum over the tile of |a b| + error so far)`;
    /// - per group of 8 products, the alignment to the group's largest product, at most
    ///   `8 * 2^-12 * max|a b|` for the first phase and 1/10 of that for the later ones;
    /// - per K block boundary (`k_tiles_per_block`), the spill of the partial sum to the
    ///   intermediate format (fp32 with fp32 accumulation, bf16 otherwise).
    ///
    /// The output packing and any activation are not included.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        x: &[f32],
        w: &[f32],
        m: usize,
        k: usize,
        n: usize,
        bias: Option<&[f32]>,
        precision: &Precision,
        k_tiles_per_block: usize,
    ) -> (Vec<f64>, Vec<f64>) {
        let fid = precision.fidelity;
        let u = dest_u(precision.fp32_acc);
        let phases = f64::from(fid.phases());
        let kt = k.div_ceil(32);
        let kpb = k_tiles_per_block.max(1);
        let align = 2f64.powi(-12) * 1.1;
        let mut y = vec![0f64; m * n];
        let mut bound = vec![0f64; m * n];
        let mut prods = vec![0f64; k];
        let mut absp = vec![0f64; k];
        for i in 0..m {
            for j in 0..n {
                for kk in 0..k {
                    let (a, b) = (w[kk * n + j], x[i * k + kk]);
                    prods[kk] = product(a, b, fid);
                    absp[kk] = (f64::from(a) * f64::from(b)).abs();
                }
                let mut run = bias.map_or(0.0, |b| f64::from(b[j]));
                let mut e = 0f64;
                for t in 0..kt {
                    let r = 32 * t..(32 * t + 32).min(k);
                    let s_tile: f64 = absp[r.clone()].iter().sum();
                    e += 2.0 * phases * u * (run.abs() + s_tile + e);
                    for g in absp[r.clone()].chunks(8) {
                        e += 8.0 * align * g.iter().fold(0f64, |a, &v| a.max(v));
                    }
                    run += prods[r].iter().sum::<f64>();
                    if (t + 1) % kpb == 0 && t + 1 < kt {
                        e += u * (run.abs() + e);
                    }
                }
                y[i * n + j] = run;
                bound[i * n + j] = e;
            }
        }
        (y, bound)
    }
}

/// f64 CPU references (the independent implementations the ops are tested against).
pub mod reference {
    use super::Activation;

    /// `a [m, k] x b [k, n]` (row-major f32) in f64: `(y, s_abs)` with `s_abs[i][j] =
    /// sum_k |a_ik b_kj|` for error bounds.
    pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> (Vec<f64>, Vec<f64>) {
        let mut y = vec![0f64; m * n];
        let mut s = vec![0f64; m * n];
        for i in 0..m {
            for kk in 0..k {
                let av = f64::from(a[i * k + kk]);
                let row = &b[kk * n..(kk + 1) * n];
                for (j, &bv) in row.iter().enumerate() {
                    let p = av * f64::from(bv);
                    y[i * n + j] += p;
                    s[i * n + j] += p.abs();
                }
            }
        }
        (y, s)
    }

    /// erf in f64: `2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (1*3*...*(2n+1))`, a series of
    /// positive terms (no cancellation) summed until the terms stop changing the sum; `±1`
    /// beyond |x| = 6 (erfc(6) < 2.2e-17).
    pub fn erf(x: f64) -> f64 {
        if x.is_nan() {
            return x;
        }
        if x.abs() >= 6.0 {
            return x.signum();
        }
        let x2 = x * x;
        let mut term = x;
        let mut sum = x;
        let mut n = 0.0;
        while term.abs() > sum.abs() * 1e-17 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-x2).exp() * sum
    }

    /// GELU with the exact erf: `x/2 (1 + erf(x / sqrt 2))`.
    pub fn gelu(x: f64) -> f64 {
        0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
    }

    /// 1 / (1 + e^-x), stable for large |x|.
    pub fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    }

    /// ln(1 + e^x), stable.
    pub fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }

    /// The fused activation in f64.
    pub fn activation(act: Activation, x: f64) -> f64 {
        match act {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::LeakyRelu(s) => {
                if x >= 0.0 {
                    x
                } else {
                    f64::from(s) * x
                }
            }
            Activation::Gelu => gelu(x),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => sigmoid(x),
        }
    }

    /// Layernorm over the columns of each row of `x [rows, cols]`: mean, biased variance,
    /// `(x - mean) / sqrt(var + eps) * gamma + beta`.
    pub fn layernorm(
        x: &[f32],
        rows: usize,
        cols: usize,
        gamma: &[f32],
        beta: &[f32],
        eps: f64,
    ) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / cols as f64;
            let var = row
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>()
                / cols as f64;
            let inv = 1.0 / (var + eps).sqrt();
            for c in 0..cols {
                out.push(
                    (f64::from(row[c]) - mean) * inv * f64::from(gamma[c]) + f64::from(beta[c]),
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_validate_and_bad_formats_fail() {
        for (_, p) in Precision::presets() {
            p.validate("test").unwrap();
        }
        let bad = Precision {
            weights: DataFormat::Float32,
            ..Precision::hifi()
        };
        let msg = bad.validate("matmul").unwrap_err().to_string();
        assert!(msg.contains("weights") && msg.contains("Bfp4_b"), "{msg}");
        let bad = Precision::hifi().with_activations(DataFormat::Bfp4_b);
        assert!(bad.validate("matmul").is_err());
    }

    #[test]
    fn fidelity_bounds_follow_operand_bits() {
        use tolerance::fidelity_rel;
        let (bf, b8, b4) = (
            DataFormat::Float16_b,
            DataFormat::Bfp8_b,
            DataFormat::Bfp4_b,
        );
        assert_eq!(fidelity_rel(MathFidelity::HiFi4, bf, bf), 0.0);
        // bfp8 weights, bfp8 activations: HiFi2 is exact, LoFi is not.
        assert_eq!(fidelity_rel(MathFidelity::HiFi2, b8, b8), 0.0);
        assert!(fidelity_rel(MathFidelity::LoFi, b8, b8) > 0.06);
        // bfp4 weights are exact under LoFi; only bf16 activations lose their 8th bit.
        assert_eq!(
            fidelity_rel(MathFidelity::LoFi, b4, bf),
            2f64.powi(-6),
            "bfp4 x bf16 LoFi"
        );
    }

    #[test]
    fn reference_functions() {
        assert!((reference::gelu(1.0) - 0.841_344_746_068_542_9).abs() < 1e-12);
        assert!((reference::erf(0.5) - 0.520_499_877_813_046_5).abs() < 1e-15);
        assert!((reference::erf(-3.0) + 0.999_977_909_503_001_4).abs() < 1e-15);
        assert!((reference::erf(5.9) - 1.0).abs() < 1e-15);
        assert!((reference::sigmoid(-800.0)).abs() < 1e-300);
        assert!((reference::softplus(50.0) - 50.0).abs() < 1e-12);
        let (y, s) = reference::matmul(&[1.0, -2.0], &[3.0, 4.0], 1, 2, 1);
        assert_eq!((y[0], s[0]), (-5.0, 11.0));
        let ln = reference::layernorm(&[1.0, 3.0], 1, 2, &[2.0, 2.0], &[1.0, 1.0], 0.0);
        assert_eq!(ln, vec![-1.0, 3.0]);
    }

    #[test]
    fn device_model_products() {
        use device_model::{product, truncate_bits};
        assert_eq!(truncate_bits(1.0 + 1.0 / 128.0, 7), 1.0);
        assert_eq!(truncate_bits(-1.5, 2), -1.5);
        // bf16 weight 1 + 2^-7 (bit below A_hi) x activation 1 + 2^-7 (B's 8th bit).
        let v = 1.0 + 1.0 / 128.0;
        assert_eq!(product(v, v, MathFidelity::LoFi), 1.0);
        assert_eq!(product(v, v, MathFidelity::HiFi2), v as f64);
        assert_eq!(product(v, v, MathFidelity::HiFi3), 2.0 * v as f64 - 1.0);
        assert_eq!(product(v, v, MathFidelity::HiFi4), (v as f64) * (v as f64));
    }
}
