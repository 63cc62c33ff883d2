//! Layernorm over channels: for each time row of `x [T, C]`,
//! `y = (x - mean) / sqrt(var + eps) * gamma + beta` with the mean and the biased variance over
//! the C channels (VITS's `LayerNorm`, applied channel-wise on time-major activations).
//!
//! On the device each core takes a contiguous range of tile rows (32 time steps each) and keeps a
//! whole tile row (Ct tiles) in L1. When C is not a multiple of 32 a column mask zeroes the
//! padding of the last tile before the sums, so the input's padding may hold anything finite.
//! The output's padding is finite, not zero.
//!
//! # bf16 / bfp8_b activations (`kernels/ops/norm/layernorm_{reader,compute}.cpp`)
//! Row sums use `reduce_tile` (ROW) with an all-ones scaler, then an SFPU multiply by 1/C;
//! `x - mean` and `* rstd` broadcast column 0 of the statistics tiles, `* gamma` and `+ beta`
//! broadcast row 0 (FPU); `rsqrt` runs on the SFPU. Intermediates are fp32 with
//! [`Precision::fp32_acc`], bf16 otherwise.
//!
//! # Float32 activations (`precision.activations == Float32`, needs `fp32_acc`)
//! `kernels/ops/norm/layernorm_fp32_compute.cpp`: every elementwise step (masking, `x - mean`,
//! squares, `* rstd`, `* gamma`, `+ beta`) is exact fp32 on the SFPU (`add/sub/mul_binary_tile`)
//! on operands copied to DEST without loss (Float32 CBs unpack straight to DEST; gamma and beta
//! are stored as full Float32 tiles). Only the row sums use the FPU: a matmul with an all-ones
//! tile accumulated in the fp32 DEST (operands read as TF32, MVMUL alignment within groups of
//! eight products; `reduce_tile` ROW would also truncate every partial sum to TF32 when moving
//! it through SrcB). Each statistic is refined once so that the FPU only sums centred
//! residuals, `m = m1 + mean(x - m1)`, `var = v1 + mean(d^2 - v1)`, and the refining sums add
//! each value's TF32 part and its lost low part `v - TF32(v)` (operand truncation 2^-20 instead
//! of 2^-10). The mean's error is thus relative to `|x - m|`, not `|x|` (it no longer grows with
//! the mean), and nothing is biased by truncation. `rsqrt` is followed by two fp32 Newton steps
//! (hardware's SFPU rsqrt is a few bf16 ulp).
//!
//! **Isolated products.** The MVMUL sums its products in groups of eight consecutive K, aligned
//! to the group's largest product and rounded at about 2^-12 of it, so one large channel (an
//! outlier, or the square of one in the variance) would round its seven neighbours' products
//! at 2^-12 of itself. The refining sums (`c`, `c2`) of the TF32 parts therefore always run as
//! eight matmuls per tile against masked ones tiles (ones only in the K rows `k = r mod 8`, the
//! rows of in1, the all-ones operand), accumulated in the same fp32 DEST: every MVMUL group holds
//! one non-zero product, nothing is aligned, and only fp32 DEST roundings remain. The first
//! estimates (`m1`, `v1`) and the lo parts keep one all-ones matmul per tile: the refinement
//! measures the first estimates' error, and the lo parts are 2^-10 of the values. Rows of N(0, 1)
//! with one channel at +-200 (T 45): max error 8.9e-6 (C 192) / 8.4e-6 (C 70) against 2.3e-2 /
//! 6.4e-3 without isolation ([`LayerNorm::without_isolated_sums`], a diagnostic), for 20 tile
//! matmuls per input tile and row instead of 6 (run at HiFi3, which loses nothing against the
//! ones tiles, see `run`): device time +25% / +17% (23.8 / 16.0 us against 19.1 / 13.6 us,
//! simulator ESTIMATE, `tests/op_norm.rs` `layernorm_float32_outlier_channels`).
//! Piper's `[300, 192]` without outliers (`piper_shapes`): max error 1.8e-6 / 9.9e-6 (mean 10x
//! the spread; |y| up to 3.6) against 4.4e-5 / 4.1e-5 unisolated and 3.8e-2 / 2.1e-1 for the
//! old all-FPU path; 27.5 us against 22.8 us unisolated, 23.3 us for the kernel before the
//! isolation (unisolated, HiFi4) and 12.0 us for the all-FPU path (wormhole_b0 ESTIMATE).
//! [`LayerNorm::with_tf32_fpu_path`] keeps the old all-FPU arithmetic for comparisons.

use tt_safe::{
    CbConfig, ComputeConfig, DataFormat, Device, KernelKind, KernelSpec, MathFidelity, Program,
    RunStats, core,
};

use super::common::{DeviceTensor, OpError, Precision, TILE, check_activation_format_fp32, tiles};
use crate::kernels;

/// gamma and beta are stored as Float32 with Float32 activations (as full tiles: 32 identical
/// rows, which the exact path copies to DEST), else bf16 (row 0 read by a row broadcast).
fn gamma_beta_format(p: &Precision) -> DataFormat {
    if p.activations == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

/// The masked copy of the input (CB 5) keeps a Float32 input's bits; bf16 otherwise (exact for
/// bf16 and bfp8_b inputs).
fn masked_format(input: DataFormat) -> DataFormat {
    if input == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

/// Tiles of the exact path's ones tensor: tile 0 all ones, tile 1 + r ones in the rows
/// `k = r mod 8` (in1's K index: each MVMUL group of eight consecutive K then holds one
/// non-zero product).
const ONES_TILES: usize = 9;

/// The exact path's ones tensor, `[32, 32 ONES_TILES]` row-major.
fn ones_tiles() -> Vec<f32> {
    let w = ONES_TILES * TILE;
    (0..TILE * w)
        .map(|i| {
            let (k, col) = (i / w, i % w);
            let t = col / TILE;
            if t == 0 || k % 8 == t - 1 { 1.0 } else { 0.0 }
        })
        .collect()
}

/// Fraction of a core's free L1 the layernorm's circular buffers may use.
pub const L1_BUDGET_FRACTION: f64 = 0.75;

/// A layernorm with gamma/beta prepared on the device.
pub struct LayerNorm {
    device: Device,
    c: usize,
    eps: f32,
    precision: Precision,
    gamma: DeviceTensor,
    beta: DeviceTensor,
    ones: DeviceTensor,
    mask: Option<DeviceTensor>,
    /// The exact path's constants as Float32: [`ONES_TILES`] ones tiles (all ones, then the
    /// eight masked ones tiles of the isolation) and the mask.
    ones32: Option<(DeviceTensor, Option<DeviceTensor>)>,
    tf32_fpu: bool,
    isolate: bool,
    max_cores: usize,
}

impl std::fmt::Debug for LayerNorm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerNorm")
            .field("c", &self.c)
            .field("eps", &self.eps)
            .field("precision", &self.precision)
            .finish()
    }
}

impl LayerNorm {
    /// Prepares `gamma`, `beta` (C values each; stored bf16, or Float32 with Float32 activations)
    /// for `x [T, C]` inputs.
    pub fn new(
        device: &Device,
        gamma: &[f32],
        beta: &[f32],
        eps: f32,
        precision: Precision,
    ) -> Result<LayerNorm, OpError> {
        check_activation_format_fp32(
            "layernorm",
            "output (precision.activations)",
            precision.activations,
            precision.fp32_acc,
        )?;
        let c = gamma.len();
        if c == 0 || beta.len() != c {
            return Err(OpError::ShapeMismatch {
                op: "layernorm",
                what: format!(
                    "gamma has {} values and beta {}; both need C > 0 values",
                    gamma.len(),
                    beta.len()
                ),
            });
        }
        if !(eps.is_finite() && eps > 0.0) {
            return Err(OpError::InvalidArgument {
                op: "layernorm",
                what: format!("eps {eps} must be finite and > 0"),
            });
        }
        let bf = DataFormat::Float16_b;
        let gb = gamma_beta_format(&precision);
        let fp32 = precision.activations == DataFormat::Float32;
        let rows = if fp32 { TILE } else { 1 };
        let full = |v: &[f32]| -> Vec<f32> { v.repeat(rows) };
        let gamma_t = DeviceTensor::from_host(device, rows, c, &full(gamma), gb)?;
        let beta_t = DeviceTensor::from_host(device, rows, c, &full(beta), gb)?;
        let ones = DeviceTensor::from_host(device, TILE, TILE, &[1.0; TILE * TILE], bf)?;
        let rem = c % TILE;
        let mask_vals: Vec<f32> = (0..TILE).map(|i| if i < rem { 1.0 } else { 0.0 }).collect();
        let mask = if rem == 0 {
            None
        } else {
            Some(DeviceTensor::from_host(device, 1, TILE, &mask_vals, bf)?)
        };
        let ones32 = if fp32 {
            let f = DataFormat::Float32;
            let o = DeviceTensor::from_host(device, TILE, ONES_TILES * TILE, &ones_tiles(), f)?;
            let m = if rem == 0 {
                None
            } else {
                Some(DeviceTensor::from_host(device, 1, TILE, &mask_vals, f)?)
            };
            Some((o, m))
        } else {
            None
        };
        Ok(LayerNorm {
            device: device.clone(),
            c,
            eps,
            precision,
            gamma: gamma_t,
            beta: beta_t,
            ones,
            mask,
            ones32,
            tf32_fpu: false,
            isolate: true,
            max_cores: device.grid().num_cores(),
        })
    }

    /// Diagnostic: with Float32 activations, runs the all-FPU arithmetic of the bf16 path
    /// (every operand read as TF32) instead of the exact-fp32 path, to measure what the exact
    /// path gains. No effect on other precisions.
    pub fn with_tf32_fpu_path(mut self) -> LayerNorm {
        self.tf32_fpu = true;
        self
    }

    /// Diagnostic: on the exact-fp32 path, sums the refinements' TF32 parts with one all-ones
    /// matmul per tile instead of eight isolating ones (see the module docs), to measure what
    /// the isolation gains. No effect on other paths.
    pub fn without_isolated_sums(mut self) -> LayerNorm {
        self.isolate = false;
        self
    }

    /// True when [`LayerNorm::run`] takes the exact-fp32 path (see the module docs).
    pub fn exact_fp32(&self) -> bool {
        self.ones32.is_some() && !self.tf32_fpu
    }

    /// Uses at most `n` cores (at least 1).
    pub fn with_max_cores(mut self, n: usize) -> LayerNorm {
        self.max_cores = n.clamp(1, self.device.grid().num_cores());
        self
    }

    /// Circular-buffer bytes per core for an input in `input` format.
    pub fn l1_bytes(&self, input: DataFormat) -> u64 {
        let ct = tiles(self.c) as u64;
        let b = |f: DataFormat| f.tile_size_bytes() as u64;
        if self.exact_fp32() {
            // x, ones (ONES_TILES), mask, gamma, beta, A, Ar, B, Br, lo parts, 3 statistics,
            // output.
            let f = b(DataFormat::Float32);
            return 2 * ct * b(input)
                + (ONES_TILES as u64 + 1) * f
                + 2 * ct * f
                + 5 * ct * f
                + 3 * f
                + 2 * b(self.precision.activations);
        }
        let bf = b(DataFormat::Float16_b);
        let im = b(self.interm());
        2 * ct * b(input)
            + 2 * bf
            + 2 * ct * b(gamma_beta_format(&self.precision))
            + if self.mask.is_some() {
                ct * b(masked_format(input))
            } else {
                0
            }
            + (2 * ct + 4) * im
            + 2 * b(self.precision.activations)
    }

    fn interm(&self) -> DataFormat {
        if self.precision.fp32_acc {
            DataFormat::Float32
        } else {
            DataFormat::Float16_b
        }
    }

    /// Normalises each row of `x [T, C]`; the output is `[T, C]` in `precision.activations`.
    pub fn run(&self, x: &DeviceTensor) -> Result<DeviceTensor, OpError> {
        Ok(self.run_with_stats(x)?.0)
    }

    /// [`LayerNorm::run`] plus the device's run statistics.
    pub fn run_with_stats(&self, x: &DeviceTensor) -> Result<(DeviceTensor, RunStats), OpError> {
        check_activation_format_fp32("layernorm", "input", x.format(), self.precision.fp32_acc)?;
        if x.cols() != self.c {
            return Err(OpError::ShapeMismatch {
                op: "layernorm",
                what: format!(
                    "input has {} channels, gamma/beta have C = {}",
                    x.cols(),
                    self.c
                ),
            });
        }
        let budget = (self.device.info().l1_user_bytes() as f64 * L1_BUDGET_FRACTION) as u64;
        let need = self.l1_bytes(x.format());
        if need > budget {
            return Err(OpError::ShapeUnsupported {
                op: "layernorm",
                what: format!(
                    "C = {} channels ({} tiles per row kept in L1)",
                    self.c,
                    tiles(self.c)
                ),
                limit: format!(
                    "L1: {need} bytes of circular buffers per core, the budget is {budget}"
                ),
            });
        }
        let ct = x.tile_cols();
        let mt = x.tile_rows();
        let out =
            DeviceTensor::alloc(&self.device, x.rows(), x.cols(), self.precision.activations)?;
        let n_cores = self.max_cores.min(mt).max(1);
        let gx = self.device.grid().size.x as usize;
        let cores: Vec<_> = (0..n_cores)
            .map(|i| core((i % gx) as u32, (i / gx) as u32))
            .collect();
        let set: Vec<tt_safe::CoreRange> = cores
            .iter()
            .map(|&c| tt_safe::CoreRange::single(c))
            .collect();

        let ct32 = ct as u32;
        let bf = DataFormat::Float16_b;
        let im = self.interm();
        let exact = self.exact_fp32();
        let f32f = DataFormat::Float32;
        let mut program = Program::new(&self.device)?;
        let cbs_exact: [(u32, DataFormat, u32); 14] = [
            (0, x.format(), 2 * ct32),
            (1, f32f, ONES_TILES as u32),
            (2, f32f, 1),
            (3, f32f, ct32),
            (4, f32f, ct32),
            (5, f32f, ct32),
            (6, f32f, ct32),
            (7, f32f, ct32),
            (8, f32f, ct32),
            (9, f32f, 1),
            (10, f32f, 1),
            (11, f32f, 1),
            (12, f32f, ct32),
            (16, self.precision.activations, 2),
        ];
        let cbs_fpu: [(u32, DataFormat, u32); 12] = [
            (0, x.format(), 2 * ct32),
            (1, bf, 1),
            (2, bf, 1),
            (3, gamma_beta_format(&self.precision), ct32),
            (4, gamma_beta_format(&self.precision), ct32),
            (5, masked_format(x.format()), ct32),
            (6, im, 1),
            (7, im, ct32),
            (8, im, ct32),
            (9, im, 1),
            (10, im, 2),
            (16, self.precision.activations, 2),
        ];
        let cbs: &[(u32, DataFormat, u32)] = if exact { &cbs_exact } else { &cbs_fpu };
        for &(i, f, n) in cbs {
            if (i == 2 || (i == 5 && !exact)) && self.mask.is_none() {
                continue;
            }
            program.add_circular_buffer(set.clone(), CbConfig::tiles(i, f, n))?;
        }
        let mut reader_ct = x.buffer().accessor_args()?;
        reader_ct.extend(self.gamma.buffer().accessor_args()?);
        let reader = program.add_kernel(
            KernelSpec::new(
                "ops_layernorm_reader",
                kernels::OPS_NORM_LAYERNORM_READER,
                KernelKind::riscv0(),
                set.clone(),
            )
            .compile_args(reader_ct),
        )?;
        let writer = program.add_kernel(
            KernelSpec::new(
                "ops_layernorm_writer",
                kernels::OPS_ELTWISE_WRITER,
                KernelKind::riscv1(),
                set.clone(),
            )
            .compile_args(out.buffer().accessor_args()?),
        )?;
        let inv_c = (1.0 / self.c as f64) as f32;
        let (name, source, unpack_to_dest_fp32) = if exact {
            // The CBs that are only ever copied to DEST (never read by the FPU).
            let mut utd = vec![3, 4, 5, 7, 11];
            if x.format() == f32f {
                utd.push(0);
            }
            (
                "ops_layernorm_fp32_compute",
                kernels::OPS_NORM_LAYERNORM_FP32_COMPUTE,
                utd,
            )
        } else {
            (
                "ops_layernorm_compute",
                kernels::OPS_NORM_LAYERNORM_COMPUTE,
                Vec::new(),
            )
        };
        let mut spec = KernelSpec::new(
            name,
            source,
            KernelKind::compute(ComputeConfig {
                // The exact path's only FPU products are row sums against ones tiles (in1,
                // SrcA): SrcA's odd-phase mantissa slice of 1.0 is zero, so HiFi4's fourth phase
                // (SrcA low x SrcB low) adds nothing; HiFi3 keeps all 11 bits of the data
                // (SrcB, phases 0 and 2) and saves a quarter of the matmul time (measured: same
                // errors, [300, 192] 29.4 -> 27.5 us).
                fidelity: if exact {
                    MathFidelity::HiFi3
                } else {
                    MathFidelity::HiFi4
                },
                fp32_dest_acc: self.precision.fp32_acc,
                unpack_to_dest_fp32,
                ..ComputeConfig::default()
            }),
            set.clone(),
        )
        .compile_args(vec![ct32, inv_c.to_bits(), self.eps.to_bits()]);
        if self.mask.is_some() {
            spec = spec.define("HAS_MASK", "1");
        }
        if exact && self.isolate {
            spec = spec.define("ISOLATE", "1");
        }
        let compute = program.add_kernel(spec)?;

        let per = mt.div_ceil(n_cores);
        let x_addr = x.buffer().address_u32()?;
        let out_addr = out.buffer().address_u32()?;
        let (ones, mask) = match (&self.ones32, exact) {
            (Some((o, m)), true) => (o, m.as_ref()),
            _ => (&self.ones, self.mask.as_ref()),
        };
        let n_ones = if exact { ONES_TILES as u32 } else { 1 };
        let mask_addr = match mask {
            Some(m) => m.buffer().address_u32()?,
            None => 0,
        };
        for (i, &c) in cores.iter().enumerate() {
            let first = (i * per).min(mt);
            let rows = per.min(mt - first);
            program.set_runtime_args(
                reader,
                c,
                &[
                    x_addr,
                    first as u32,
                    rows as u32,
                    ct32,
                    ones.buffer().address_u32()?,
                    mask_addr,
                    self.gamma.buffer().address_u32()?,
                    self.beta.buffer().address_u32()?,
                    u32::from(self.mask.is_some()),
                    n_ones,
                ],
            )?;
            program.set_runtime_args(
                writer,
                c,
                &[out_addr, (first * ct) as u32, (rows * ct) as u32],
            )?;
            program.set_runtime_args(compute, c, &[rows as u32])?;
        }
        let stats = self.device.run(&program)?;
        let mut out = out;
        out.set_pad_is_zero(false);
        Ok((out, stats))
    }
}
