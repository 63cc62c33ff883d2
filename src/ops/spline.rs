//! The unconstrained rational-quadratic spline **inverse** (Durkan et al. 2019, "Neural Spline
//! Flows"; VITS' `transforms.py` with `inverse=True`, `tails="linear"`), one scalar per time row:
//! `y[t] = g_t^{-1}(x[t])` where the monotone spline `g_t` on `[-B, B]` is given by row `t` of
//! a `[T, 3K - 1]` parameter matrix (K unnormalised widths, K heights, K - 1 interior
//! derivatives), identity outside `[-B, B]`. This is the transform of VITS' stochastic duration
//! predictor (`ConvFlow`, K = 10, B = 5, widths and heights divided by `sqrt(filter_channels)`).
//!
//! # How it runs (`kernels/ops/spline/spline_inverse.cpp`)
//! A per-element bin search and quadratic root do not map onto 32x32 tile math, and the sizes are
//! tiny (T <= a few hundred rows x 29 parameters), so the op runs as **scalar fp32 code on a data
//! movement RISC-V** (RISCV_0) of each core it uses. The work is split in units of two time rows
//! (up to `16 * ceil(T / 32)` units, spread evenly over the whole grid, so a 109-row input runs
//! about one unit per core on a Wormhole 8x8 grid): a core reads the tiles of `x [T, 1]` and
//! `p [T, 3K-1]` its units touch into L1, evaluates its rows, and writes each unit's own
//! aligned chunk of the output tile (column 0 = y, every other element and rows >= T zero, so
//! the output padding is zero; chunks of different cores never overlap).
//!
//! The kernel uses only fp32 add/sub/mul/compare and integer bit manipulation (reciprocal and
//! square root by Newton iteration, exp and log1p by range reduction and polynomials), which
//! Blackhole's baby RISC-Vs execute natively (their `F` subset lacks fdiv/fsqrt) and Wormhole's
//! RV32IM executes through the toolchain's soft-float routines.
//!
//! # Device time
//! The simulator's timing model charges only API calls (NoC reads/writes, CB calls), not RISC-V
//! instructions between them, and has no way for a kernel to charge cycles (its `riscv_wait` is
//! a no-op; calling it on hardware would really stall). The [`RunStats`] of this op therefore
//! **omit the scalar arithmetic**: they cover the tile transfers only. For a budget: per row the
//! kernel executes about 24 exp, 2 log1p, 5 reciprocals, 1 square root and ~80 other float
//! operations, about 1,500 fp32 operations; on Blackhole (hardware fadd/fmul, roughly one per
//! cycle plus loads) that is in the order of 2-4k cycles per row, i.e. a few us per two-row unit
//! at 1.35 GHz; on Wormhole every float operation is a soft-float call (tens of cycles each),
//! roughly 10-30x more (~50-150k cycles per row, 0.1-0.3 ms per unit at 1 GHz). [`estimated_riscv_cycles`] gives this estimate so callers
//! can add it to their own ledgers explicitly.
//!
//! # Numerics
//! The device computes in fp32 with the same formula as VITS (and the cpu backend); the f64
//! reference is [`spline_inverse_reference`]. Inputs are read in their tensor format (Float32
//! exact, Float16_b exact after the host's bf16 rounding); outputs are Float32 or Float16_b
//! (round to nearest even on the RISC-V).

use tt_safe::{CbConfig, CbFormat, DataFormat, Device, KernelKind, KernelSpec, Program, RunStats};

use super::common::{DeviceTensor, OpError, tiles};
use super::embed::split_rows;
use crate::kernels;

const OP: &str = "spline_inverse";
const CB_SCRATCH: u32 = 8;
/// Most bins the kernel supports (its scratch arrays are sized for this).
pub const MAX_BINS: usize = 32;

/// Parameters of the spline (the VITS defaults are [`SplineParams::vits`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplineParams {
    /// Number of bins K (the parameter matrix has `3K - 1` columns).
    pub bins: usize,
    /// Tail bound B: identity outside `[-B, B]`.
    pub tail_bound: f32,
    /// Minimum bin width (fraction of the interval).
    pub min_bin_width: f32,
    /// Minimum bin height.
    pub min_bin_height: f32,
    /// Minimum derivative.
    pub min_derivative: f32,
    /// Factor applied to the unnormalised widths and heights before the softmax
    /// (VITS' ConvFlow: `1 / sqrt(filter_channels)`).
    pub input_scale: f32,
    /// Optional affine applied to the result: `(y - m) * s` (VITS' reverse ElementwiseAffine,
    /// `s = exp(-logs)`), fused to avoid another launch.
    pub output_affine: Option<(f32, f32)>,
}

impl SplineParams {
    /// VITS' ConvFlow spline: `bins` bins, tail bound 5, minimum width/height/derivative 1e-3,
    /// widths and heights scaled by `1 / sqrt(filter_channels)`.
    pub fn vits(bins: usize, filter_channels: usize) -> SplineParams {
        SplineParams {
            bins,
            tail_bound: 5.0,
            min_bin_width: 1e-3,
            min_bin_height: 1e-3,
            min_derivative: 1e-3,
            input_scale: (1.0 / (filter_channels as f64).sqrt()) as f32,
            output_affine: None,
        }
    }

    /// The unnormalised derivative used at both ends, `ln(e^(1 - min_derivative) - 1)`, so that
    /// the boundary derivatives are 1 (matching the linear tails).
    pub fn boundary_derivative(&self) -> f32 {
        (f64::from(1.0 - self.min_derivative).exp() - 1.0).ln() as f32
    }

    /// Columns of the parameter matrix: `3 bins - 1`.
    pub fn num_params(&self) -> usize {
        3 * self.bins - 1
    }

    fn validate(&self) -> Result<(), OpError> {
        let bad = |what: String| Err(OpError::InvalidArgument { op: OP, what });
        if !(2..=MAX_BINS).contains(&self.bins) {
            return bad(format!("bins {} must be in 2..={MAX_BINS}", self.bins));
        }
        let k = self.bins as f32;
        if !(self.tail_bound.is_finite() && self.tail_bound > 0.0) {
            return bad(format!(
                "tail bound {} must be finite and > 0",
                self.tail_bound
            ));
        }
        for (name, v) in [
            ("min_bin_width", self.min_bin_width),
            ("min_bin_height", self.min_bin_height),
        ] {
            if !(v.is_finite() && v > 0.0 && v * k < 1.0) {
                return bad(format!("{name} {v} must be > 0 and < 1 / bins"));
            }
        }
        if !(self.min_derivative.is_finite()
            && self.min_derivative > 0.0
            && self.min_derivative < 1.0)
        {
            return bad(format!(
                "min_derivative {} must be in (0, 1)",
                self.min_derivative
            ));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return bad(format!(
                "input scale {} must be finite and > 0",
                self.input_scale
            ));
        }
        if let Some((m, s)) = self.output_affine
            && !(m.is_finite() && s.is_finite())
        {
            return bad(format!("output affine ({m}, {s}) must be finite"));
        }
        Ok(())
    }
}

/// The outputs of one [`spline_inverse`] call.
#[derive(Debug)]
pub struct SplineOutput {
    /// `y [T, 1]` in the requested format (padding zero).
    pub y: DeviceTensor,
    /// The same values in a second format when asked for (e.g. Float32 to chain the flow and
    /// bf16 to feed a conv), written by the same launch.
    pub y2: Option<DeviceTensor>,
    /// Run statistics (on the simulator: transfers only, see the module doc).
    pub stats: RunStats,
}

fn check_format(role: &'static str, f: DataFormat) -> Result<u32, OpError> {
    match f {
        DataFormat::Float32 => Ok(0),
        DataFormat::Float16_b => Ok(1),
        other => Err(OpError::FormatUnsupported {
            op: OP,
            role,
            format: other,
            supported: "Float32 or Float16_b",
        }),
    }
}

/// Estimated RISC-V cycles of the scalar arithmetic the kernel runs for `rows` rows on one core
/// (not included in [`RunStats`]; see the module doc): 1,500 fp32 operations per row inside
/// the tail bound at `cycles_per_flop` cycles each (about 2 on Blackhole's hardware `F` subset,
/// 30-60 for Wormhole's soft-float) plus ~200 integer cycles of loads and stores per row.
pub fn estimated_riscv_cycles(rows: usize, cycles_per_flop: f64) -> f64 {
    rows as f64 * (1500.0 * cycles_per_flop + 200.0)
}

/// `y[t] = spline_t^{-1}(x[t])` for `x [T, 1]` and parameters `p [T, 3K - 1]` (row `t` =
/// K unnormalised widths, K heights, K - 1 interior derivatives). `x` and `p` may be Float32 or
/// Float16_b; `out_format` (and `out2_format`, when given, for a second copy) Float32 or
/// Float16_b.
pub fn spline_inverse(
    device: &Device,
    x: &DeviceTensor,
    p: &DeviceTensor,
    params: &SplineParams,
    out_format: DataFormat,
    out2_format: Option<DataFormat>,
) -> Result<SplineOutput, OpError> {
    params.validate()?;
    let x_fmt = check_format("x", x.format())?;
    let p_fmt = check_format("parameters", p.format())?;
    let o_fmt = check_format("output", out_format)?;
    let o2_fmt = match out2_format {
        Some(f) => check_format("second output", f)?,
        None => o_fmt,
    };
    for t in [x, p] {
        // tt-safe exposes no device identity; a different device kind or provider is caught.
        if t.device().info() != device.info() || t.device().selection() != device.selection() {
            return Err(OpError::ForeignDevice { op: OP });
        }
    }
    if x.cols() != 1 {
        return Err(OpError::ShapeMismatch {
            op: OP,
            what: format!("x must be [T, 1], it is {:?}", x.shape()),
        });
    }
    if p.rows() != x.rows() || p.cols() != params.num_params() {
        return Err(OpError::ShapeMismatch {
            op: OP,
            what: format!(
                "parameters must be [T = {}, 3 bins - 1 = {}], they are {:?}",
                x.rows(),
                params.num_params(),
                p.shape()
            ),
        });
    }
    let rows = x.rows();
    let y = DeviceTensor::alloc(device, rows, 1, out_format)?;
    let y2 = match out2_format {
        Some(f) => Some(DeviceTensor::alloc(device, rows, 1, f)?),
        None => None,
    };
    let p_tc = p.tile_cols();
    // Work units of two time rows (16 per tile row), split evenly over the grid.
    let units = 16 * tiles(rows);
    let grid = device.grid();
    let split = split_rows(units, grid.num_cores(), grid.size.x);

    let mut program = Program::new(device)?;
    let scratch = (4096 * (1 + p_tc) + 1024 + 256) as u32;
    let cores: Vec<tt_safe::CoreRange> = split
        .parts
        .iter()
        .map(|(c, _, _)| tt_safe::CoreRange::single(*c))
        .collect();
    program.add_circular_buffer(
        cores.clone(),
        CbConfig {
            total_size: scratch,
            formats: vec![CbFormat {
                index: CB_SCRATCH,
                format: DataFormat::UInt32,
                page_size: scratch,
            }],
            globally_allocated: None,
        },
    )?;
    let out2_buf = y2.as_ref().unwrap_or(&y).buffer();
    let mut ct = x.buffer().accessor_args()?;
    ct.extend(p.buffer().accessor_args()?);
    ct.extend(y.buffer().accessor_args()?);
    ct.extend(out2_buf.accessor_args()?);
    let (aff, (m, s)) = match params.output_affine {
        Some(a) => (1, a),
        None => (0, (0.0, 1.0)),
    };
    ct.extend([
        x_fmt,
        p_fmt,
        o_fmt,
        o2_fmt,
        p_tc as u32,
        params.bins as u32,
        u32::from(y2.is_some()),
        aff,
        CB_SCRATCH,
    ]);
    let kernel = program.add_kernel(
        KernelSpec::new(
            "ops_spline_inverse",
            kernels::OPS_SPLINE_SPLINE_INVERSE,
            KernelKind::riscv0(),
            cores,
        )
        .compile_args(ct),
    )?;
    let addrs = [
        x.buffer().address_u32()?,
        p.buffer().address_u32()?,
        y.buffer().address_u32()?,
        out2_buf.address_u32()?,
    ];
    for (c, first, n) in &split.parts {
        let mut args = addrs.to_vec();
        args.extend([
            *first,
            *n,
            rows as u32,
            params.tail_bound.to_bits(),
            params.min_bin_width.to_bits(),
            params.min_bin_height.to_bits(),
            params.min_derivative.to_bits(),
            params.input_scale.to_bits(),
            params.boundary_derivative().to_bits(),
            m.to_bits(),
            s.to_bits(),
        ]);
        program.set_runtime_args(kernel, *c, &args)?;
    }
    let stats = device.run(&program)?;
    Ok(SplineOutput { y, y2, stats })
}

/// Integer durations on the device (VITS alignment, step 1): `d[t] = ceil(exp(logw[t]) *
/// length_scale)` (0 when not positive) from `logw [T, 1]` (Float32 or Float16_b), written as an
/// index buffer in the layout [`super::embed::expand_durations`] reads (u32, pages of 32
/// entries), and their integer total, summed on the device (one 4-byte word read back: the host
/// needs the frame count to size the output). Runs on one data-movement RISC-V (same kernel
/// file as the spline, `DURATIONS` define; its exp is the spline kernel's, within a few fp32
/// ulp of libm's, so a duration whose `exp(logw) * length_scale` lies within ~1e-6 relative of
/// an integer may round the other way than an f32 host computation).
pub fn durations_from_logw(
    device: &Device,
    logw: &DeviceTensor,
    length_scale: f32,
) -> Result<(tt_safe::Buffer, u64, RunStats), OpError> {
    let fmt = check_format("logw", logw.format())?;
    if logw.cols() != 1 {
        return Err(OpError::ShapeMismatch {
            op: "durations_from_logw",
            what: format!("logw must be [T, 1], it is {:?}", logw.shape()),
        });
    }
    if !(length_scale.is_finite() && length_scale > 0.0) {
        return Err(OpError::InvalidArgument {
            op: "durations_from_logw",
            what: format!("length_scale {length_scale} must be finite and > 0"),
        });
    }
    let rows = logw.rows();
    let pages = tiles(rows);
    let index = tt_safe::Buffer::dram(device, (pages * 128) as u64, 128)?;
    let aux = tt_safe::Buffer::dram(device, 64, 64)?;
    let mut program = Program::new(device)?;
    let c = tt_safe::core(0, 0);
    let scratch = 4096 + 128 + 64;
    program.add_circular_buffer(
        c,
        CbConfig {
            total_size: scratch,
            formats: vec![CbFormat {
                index: CB_SCRATCH,
                format: DataFormat::UInt32,
                page_size: scratch,
            }],
            globally_allocated: None,
        },
    )?;
    let mut ct = logw.buffer().accessor_args()?;
    ct.extend(index.accessor_args()?);
    ct.extend(aux.accessor_args()?);
    ct.extend([fmt, CB_SCRATCH]);
    let kernel = program.add_kernel(
        KernelSpec::new(
            "ops_spline_durations",
            kernels::OPS_SPLINE_SPLINE_INVERSE,
            KernelKind::riscv0(),
            c,
        )
        .compile_args(ct)
        .define("DURATIONS", "1"),
    )?;
    program.set_runtime_args(
        kernel,
        c,
        &[
            logw.buffer().address_u32()?,
            index.address_u32()?,
            aux.address_u32()?,
            rows as u32,
            length_scale.to_bits(),
        ],
    )?;
    let stats = device.run(&program)?;
    let a = aux.read()?;
    let total = u64::from(u32::from_le_bytes([a[0], a[1], a[2], a[3]]));
    Ok((index, total, stats))
}

/// The spline inverse of one value in f64 (the reference the op is tested against), with the
/// same parameterisation: `p` holds K widths, K heights, K - 1 interior derivatives.
pub fn spline_inverse_reference(x: f64, p: &[f32], params: &SplineParams) -> f64 {
    let k = params.bins;
    let b = f64::from(params.tail_bound);
    let y = if x < -b || x > b {
        x
    } else {
        let scale = f64::from(params.input_scale);
        let knots = |u: &[f32], min: f64| -> Vec<f64> {
            let v: Vec<f64> = u.iter().map(|&a| f64::from(a) * scale).collect();
            let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let e: Vec<f64> = v.iter().map(|a| (a - mx).exp()).collect();
            let sum: f64 = e.iter().sum();
            let mut cum = vec![-b];
            let mut acc = 0.0;
            for a in &e {
                acc += min + (1.0 - min * k as f64) * a / sum;
                cum.push(2.0 * b * acc - b);
            }
            cum[k] = b;
            cum
        };
        let cw = knots(&p[..k], f64::from(params.min_bin_width));
        let ch = knots(&p[k..2 * k], f64::from(params.min_bin_height));
        let min_d = f64::from(params.min_derivative);
        let d = |i: usize| -> f64 {
            if i == 0 || i == k {
                1.0
            } else {
                min_d + super::common::reference::softplus(f64::from(p[2 * k + i - 1]))
            }
        };
        let bin = (0..k).rfind(|&i| x >= ch[i]).unwrap_or(0);
        let (w, h) = (cw[bin + 1] - cw[bin], ch[bin + 1] - ch[bin]);
        let delta = h / w;
        let (d0, d1) = (d(bin), d(bin + 1));
        let dy = x - ch[bin];
        let a = dy * (d0 + d1 - 2.0 * delta) + h * (delta - d0);
        let bq = h * d0 - dy * (d0 + d1 - 2.0 * delta);
        let c = -delta * dy;
        let disc = (bq * bq - 4.0 * a * c).max(0.0);
        let root = if c == 0.0 {
            0.0
        } else {
            2.0 * c / (-bq - disc.sqrt())
        };
        root * w + cw[bin]
    };
    match params.output_affine {
        Some((m, s)) => (y - f64::from(m)) * f64::from(s),
        None => y,
    }
}

/// The forward spline `g(x)` in f64 (for round-trip tests of the reference): the rational
/// quadratic of the bin containing `x`, identity outside the tail bound. Ignores
/// `output_affine`.
pub fn spline_forward_reference(x: f64, p: &[f32], params: &SplineParams) -> f64 {
    let k = params.bins;
    let b = f64::from(params.tail_bound);
    if x < -b || x > b {
        return x;
    }
    let scale = f64::from(params.input_scale);
    let knots = |u: &[f32], min: f64| -> Vec<f64> {
        let e: Vec<f64> = u.iter().map(|&a| (f64::from(a) * scale).exp()).collect();
        let sum: f64 = e.iter().sum();
        let mut cum = vec![-b];
        let mut acc = 0.0;
        for a in &e {
            acc += min + (1.0 - min * k as f64) * a / sum;
            cum.push(2.0 * b * acc - b);
        }
        cum[k] = b;
        cum
    };
    let cw = knots(&p[..k], f64::from(params.min_bin_width));
    let ch = knots(&p[k..2 * k], f64::from(params.min_bin_height));
    let min_d = f64::from(params.min_derivative);
    let d = |i: usize| -> f64 {
        if i == 0 || i == k {
            1.0
        } else {
            min_d + (1.0 + f64::from(p[2 * k + i - 1]).exp()).ln()
        }
    };
    let bin = (0..k).rfind(|&i| x >= cw[i]).unwrap_or(0);
    let (w, h) = (cw[bin + 1] - cw[bin], ch[bin + 1] - ch[bin]);
    let s = h / w;
    let th = (x - cw[bin]) / w;
    let t1 = th * (1.0 - th);
    ch[bin] + h * (s * th * th + d(bin) * t1) / (s + (d(bin + 1) + d(bin) - 2.0 * s) * t1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params_row(seed: &mut u64, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * 6.0
            })
            .collect()
    }

    #[test]
    fn reference_inverts_the_forward_spline() {
        let sp = SplineParams::vits(10, 192);
        let mut seed = 7u64;
        let mut worst = 0f64;
        for _ in 0..100 {
            let p = params_row(&mut seed, sp.num_params());
            for i in 0..=200 {
                let x = -5.0 + 10.0 * f64::from(i) / 200.0;
                let y = spline_forward_reference(x, &p, &sp);
                worst = worst.max((spline_inverse_reference(y, &p, &sp) - x).abs());
            }
            assert_eq!(spline_inverse_reference(6.5, &p, &sp), 6.5);
            assert_eq!(spline_inverse_reference(-5.25, &p, &sp), -5.25);
        }
        // f64 round trip through slopes in [1e-3, 1e3]: far below 1e-9.
        assert!(worst < 1e-9, "worst round trip {worst}");
    }

    #[test]
    fn boundary_derivative_gives_slope_one() {
        let sp = SplineParams::vits(10, 192);
        let u = f64::from(sp.boundary_derivative());
        let d = 1e-3 + super::super::common::reference::softplus(u);
        assert!((d - 1.0).abs() < 1e-6, "{d}");
        assert!((u - 0.539_742_4).abs() < 1e-6, "{u}");
    }

    #[test]
    fn bad_params_are_rejected() {
        let mut sp = SplineParams::vits(1, 192);
        assert!(sp.validate().is_err());
        sp = SplineParams::vits(10, 192);
        sp.min_bin_width = 0.2;
        assert!(sp.validate().unwrap_err().to_string().contains("1 / bins"));
        sp = SplineParams::vits(10, 192);
        sp.output_affine = Some((f32::NAN, 1.0));
        assert!(sp.validate().is_err());
    }
}
