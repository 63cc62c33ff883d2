//! One GRU layer on device (PyTorch gate order r, z, n and equations):
//!
//! ```text
//! r_t = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr)
//! z_t = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz)
//! n_t = tanh(W_in x_t + b_in + r_t * (W_hn h + b_hn))
//! h'  = (1 - z_t) * n_t + z_t * h
//! ```
//!
//! Layout: the input is time-major `[T * B, I]` (row `t * B + b` is step t of batch element b,
//! the crate's activation convention with the batch innermost), the output `[T * B, H]` holds
//! every h_t (h_n is its last `B` rows), h0 is `[B, H]`.
//!
//! Two programs, no CPU work besides planning:
//! 1. **Input projection** for all steps as one matmul `Gx = x @ W_ih^T` (`[T*B, I] x [I, 3Hp]`,
//!    [`crate::ops::matmul::Matmul`], multi-core; bf16 output; each gate padded to
//!    `Hp = 32 * ceil(H / 32)` columns so a gate's tile columns never straddle another gate).
//! 2. **Recurrence**: a persistent kernel on `Ht = Hp / 32` cores; core k owns hidden units
//!    `32k..32k+31`: its slice of `W_hh^T` (3 * Ht tiles, in the weight format) and the biases
//!    stay resident in L1 for all T steps, as does the full hidden state h (double-buffered,
//!    2 * Ht bf16 tiles). Each step it computes its r/z/n columns (`kernels/ops/gru/gru_step.cpp`),
//!    and the writer sends its new h tile to every core over the NoC with a semaphore increment
//!    (`writer_gru.cpp`); the reader releases step t + 1 once all Ht tiles have arrived
//!    (`reader_gru.cpp`).
//!
//! Limits ([`OpError::ShapeUnsupported`] names each): batch 1..=32 (one tile row of h), hidden
//! 1..=[`MAX_HIDDEN`], steps 1..=[`MAX_STEPS`], `Ht` cores on the grid, and the per-core L1 plan
//! ([`GruPlan::l1_bytes`]) within the device's L1.

use super::common::{Activation, DeviceTensor, OpError, Precision, TILE, tiles};
use super::matmul::Matmul;
use crate::kernels;
use tt_safe::{
    CbConfig, CbFormat, ComputeConfig, CoreCoord, CoreRange, DataFormat, Device, KernelKind,
    KernelSpec, Program, RunStats, Tensor2d,
};

/// Largest hidden size (16 hidden tiles: 16 cores, W_hh slice 48 tiles per core).
pub const MAX_HIDDEN: usize = 512;
/// Largest batch (h is one tile row).
pub const MAX_BATCH: usize = 32;
/// Longest sequence (semaphore counts stay far below 2^32; the issue's bound is 4000).
pub const MAX_STEPS: usize = 1 << 20;

const OP: &str = "gru";
const CB_W: u32 = 1;
const CB_H: u32 = 2;
const CB_GX: u32 = 3;
const CB_BIAS: u32 = 4;
const CB_SCRATCH: u32 = 5;
const CB_HOUT: u32 = 16;
const CB_STAGE: u32 = 17;
const CB_TMP: u32 = 24;
const CB_N: u32 = 25;
const SCRATCH_BYTES: u32 = 128;

/// GRU weights prepared on the device.
#[derive(Debug)]
pub struct GruWeights {
    /// The input projection `x @ W_ih^T` (`W_ih^T` `[I, 3Hp]` in the weight format, gate g,
    /// unit j at column `g * Hp + j`), bf16 output.
    pub projection: Matmul,
    /// `W_hh^T`, `[H, 3Hp]` in the weight format.
    pub w_hh_t: DeviceTensor,
    /// `[32, 4Hp]` bf16, every row `b_ir + b_hr | b_iz + b_hz | b_in | b_hn`.
    pub bias: DeviceTensor,
    /// Input size I.
    pub input_size: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// The precision the weights were prepared for.
    pub precision: Precision,
}

fn shape_err(what: String, limit: String) -> OpError {
    OpError::ShapeUnsupported {
        op: OP,
        what,
        limit,
    }
}

/// Host GRU parameters in PyTorch's layout (all row-major): `weight_ih_l0` `[3H, I]`,
/// `weight_hh_l0` `[3H, H]`, `bias_ih_l0` and `bias_hh_l0` `[3H]`, gates in the order r, z, n.
#[derive(Debug, Clone, Copy)]
pub struct GruParams<'a> {
    /// Input size I.
    pub input_size: usize,
    /// Hidden size H.
    pub hidden: usize,
    /// `weight_ih_l0`.
    pub w_ih: &'a [f32],
    /// `weight_hh_l0`.
    pub w_hh: &'a [f32],
    /// `bias_ih_l0`.
    pub b_ih: &'a [f32],
    /// `bias_hh_l0`.
    pub b_hh: &'a [f32],
}

impl GruWeights {
    /// Prepares PyTorch-layout parameters for `precision` (weights in `precision.weights`).
    pub fn from_pytorch(
        device: &Device,
        params: &GruParams<'_>,
        precision: Precision,
    ) -> Result<GruWeights, OpError> {
        let GruParams {
            input_size,
            hidden,
            w_ih,
            w_hh,
            b_ih,
            b_hh,
        } = *params;
        precision.validate(OP)?;
        precision.check_no_split(OP)?;
        if hidden == 0 || hidden > MAX_HIDDEN {
            return Err(shape_err(
                format!("hidden size {hidden}"),
                format!("1..={MAX_HIDDEN}"),
            ));
        }
        if input_size == 0 {
            return Err(shape_err("input size 0".into(), ">= 1".into()));
        }
        let h3 = 3 * hidden;
        for (name, v, n) in [
            ("weight_ih", w_ih.len(), h3 * input_size),
            ("weight_hh", w_hh.len(), h3 * hidden),
            ("bias_ih", b_ih.len(), h3),
            ("bias_hh", b_hh.len(), h3),
        ] {
            if v != n {
                return Err(OpError::ShapeMismatch {
                    op: OP,
                    what: format!("{name} has {v} values, [{h3}, ..] needs {n}"),
                });
            }
        }
        let hp = tiles(hidden) * TILE;
        let transpose = |w: &[f32], k: usize| {
            let mut t = vec![0f32; k * 3 * hp];
            for g in 0..3 {
                for j in 0..hidden {
                    for i in 0..k {
                        t[i * 3 * hp + g * hp + j] = w[(g * hidden + j) * k + i];
                    }
                }
            }
            t
        };
        let wf = precision.weights;
        let w_ih_t = Tensor2d::new(input_size, 3 * hp, transpose(w_ih, input_size))?;
        let projection = Matmul::new(
            device,
            &w_ih_t,
            None,
            precision.with_activations(DataFormat::Float16_b),
            Activation::None,
        )?;
        let w_hh_t = DeviceTensor::from_host(device, hidden, 3 * hp, &transpose(w_hh, hidden), wf)?;
        let mut bias = vec![0f32; TILE * 4 * hp];
        for row in 0..TILE {
            for j in 0..hidden {
                let b = &mut bias[row * 4 * hp..(row + 1) * 4 * hp];
                b[j] = (f64::from(b_ih[j]) + f64::from(b_hh[j])) as f32;
                b[hp + j] = (f64::from(b_ih[hidden + j]) + f64::from(b_hh[hidden + j])) as f32;
                b[2 * hp + j] = b_ih[2 * hidden + j];
                b[3 * hp + j] = b_hh[2 * hidden + j];
            }
        }
        let bias = DeviceTensor::from_host(device, TILE, 4 * hp, &bias, DataFormat::Float16_b)?;
        Ok(GruWeights {
            projection,
            w_hh_t,
            bias,
            input_size,
            hidden,
            precision,
        })
    }
}

/// The per-core plan of the recurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GruPlan {
    /// Hidden tiles = cores.
    pub ht: usize,
    /// The cores (row-major over the grid), core k owns hidden tile k.
    pub cores: Vec<CoreCoord>,
    /// L1 bytes of circular buffers per core.
    pub l1_bytes: u64,
}

/// Plans the recurrence for `hidden` on `device` with weights in `weights` format.
pub fn plan(device: &Device, hidden: usize, precision: &Precision) -> Result<GruPlan, OpError> {
    let ht = tiles(hidden);
    let grid = device.grid();
    if ht > grid.num_cores() {
        return Err(shape_err(
            format!("hidden size {hidden} ({ht} hidden tiles, one core each)"),
            format!("{} cores on this grid", grid.num_cores()),
        ));
    }
    let cores = (0..ht as u32)
        .map(|i| CoreCoord::new(i % grid.size.x, i / grid.size.x))
        .collect();
    let bf = DataFormat::Float16_b.tile_size_bytes() as u64;
    let wt = precision.weights.tile_size_bytes() as u64;
    let tmp = precision.intermediate_format().tile_size_bytes() as u64;
    let ht64 = ht as u64;
    let l1_bytes = 3 * ht64 * wt            // W_hh slice, resident
        + 2 * ht64 * bf                     // h, double-buffered
        + 6 * bf                            // gx, 2 steps
        + 4 * bf                            // biases
        + 4 * tmp                           // r, z, gh_n, n
        + 3 * bf                            // h out (2) + staging
        + u64::from(SCRATCH_BYTES);
    let have = device.info().l1_user_bytes();
    if l1_bytes > have {
        return Err(shape_err(
            format!("hidden size {hidden}: {l1_bytes} bytes of L1 per core"),
            format!("{have} bytes of L1 per core"),
        ));
    }
    Ok(GruPlan {
        ht,
        cores,
        l1_bytes,
    })
}

/// Runs the GRU over `x` (`[T * batch, I]`, bf16 or bfp8_b tiles) with optional `h0`
/// (`[batch, H]`, bf16). Returns every hidden state, `[T * batch, H]` bf16.
pub fn gru(
    device: &Device,
    x: &DeviceTensor,
    batch: usize,
    weights: &GruWeights,
    h0: Option<&DeviceTensor>,
) -> Result<DeviceTensor, OpError> {
    Ok(gru_with_stats(device, x, batch, weights, h0)?.0)
}

/// [`gru`] plus the run statistics of its two programs (input projection, recurrence;
/// estimates on the simulator).
pub fn gru_with_stats(
    device: &Device,
    x: &DeviceTensor,
    batch: usize,
    weights: &GruWeights,
    h0: Option<&DeviceTensor>,
) -> Result<(DeviceTensor, [RunStats; 2]), OpError> {
    let precision = weights.precision;
    let hidden = weights.hidden;
    if batch == 0 || batch > MAX_BATCH {
        return Err(shape_err(
            format!("batch {batch}"),
            format!("1..={MAX_BATCH} (h is one tile row)"),
        ));
    }
    if x.cols() != weights.input_size || !x.rows().is_multiple_of(batch) {
        return Err(OpError::ShapeMismatch {
            op: OP,
            what: format!(
                "x is [{}, {}], expected [T * {batch}, {}]",
                x.rows(),
                x.cols(),
                weights.input_size
            ),
        });
    }
    super::common::check_activation_format(OP, x.format())?;
    let steps = x.rows() / batch;
    if steps > MAX_STEPS {
        return Err(shape_err(
            format!("{steps} steps"),
            format!("1..={MAX_STEPS}"),
        ));
    }
    if let Some(h0) = h0
        && (h0.rows() != batch || h0.cols() != hidden || h0.format() != DataFormat::Float16_b)
    {
        return Err(OpError::ShapeMismatch {
            op: OP,
            what: format!(
                "h0 is [{}, {}] {:?}, expected [{batch}, {hidden}] Float16_b",
                h0.rows(),
                h0.cols(),
                h0.format()
            ),
        });
    }
    let p = plan(device, hidden, &precision)?;
    // The input projection for all steps: one (multi-core) matmul, bf16 output.
    let (gx, proj_stats) = weights.projection.run_with_stats(x)?;
    let (out, rec_stats) = recurrence(device, &gx, steps, batch, weights, h0, &p)?;
    Ok((out, [proj_stats, rec_stats]))
}

fn raw_cb(index: u32, bytes: u32) -> CbConfig<'static> {
    CbConfig {
        total_size: bytes,
        formats: vec![CbFormat {
            index,
            format: DataFormat::UInt32,
            page_size: bytes,
        }],
        globally_allocated: None,
    }
}

fn recurrence(
    device: &Device,
    gx: &DeviceTensor,
    steps: usize,
    batch: usize,
    weights: &GruWeights,
    h0: Option<&DeviceTensor>,
    plan: &GruPlan,
) -> Result<(DeviceTensor, RunStats), OpError> {
    let precision = weights.precision;
    let bf = DataFormat::Float16_b;
    let ht = plan.ht as u32;
    let out = DeviceTensor::alloc(device, steps * batch, weights.hidden, bf)?;
    let ranges: Vec<CoreRange> = plan.cores.iter().map(|c| CoreRange::single(*c)).collect();
    let mut program = Program::new(device)?;
    for c in &plan.cores {
        program.add_circular_buffer(*c, CbConfig::tiles(CB_W, precision.weights, 3 * ht))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_H, bf, 2 * ht))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_GX, bf, 6))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_BIAS, bf, 4))?;
        program.add_circular_buffer(*c, raw_cb(CB_SCRATCH, SCRATCH_BYTES))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_HOUT, bf, 2))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_STAGE, bf, 1))?;
        let tmp = precision.intermediate_format();
        program.add_circular_buffer(*c, CbConfig::tiles(CB_TMP, tmp, 3))?;
        program.add_circular_buffer(*c, CbConfig::tiles(CB_N, tmp, 1))?;
    }
    let recv = program.add_semaphore(ranges.clone(), 0)?.id();
    let recv_odd = program.add_semaphore(ranges.clone(), 0)?.id();
    let mailbox = program.add_semaphore(ranges.clone(), 0)?.id();
    // Without h0 the reader zeroes slot 0; the accessor then points at the bias (never read).
    let h0_buf = h0.map_or(weights.bias.buffer(), |h| h.buffer());
    let mut reader_ct = weights.w_hh_t.buffer().accessor_args()?;
    reader_ct.extend(gx.buffer().accessor_args()?);
    reader_ct.extend(weights.bias.buffer().accessor_args()?);
    reader_ct.extend(h0_buf.accessor_args()?);
    reader_ct.extend([
        ht,
        batch as u32,
        ht,
        u32::from(h0.is_some()),
        recv,
        mailbox,
        CB_W,
        CB_H,
        CB_GX,
        CB_BIAS,
        CB_SCRATCH,
        recv_odd,
    ]);
    let reader = program.add_kernel(
        KernelSpec::new(
            "gru_reader",
            kernels::OPS_GRU_READER_GRU,
            KernelKind::riscv0(),
            ranges.clone(),
        )
        .compile_args(reader_ct),
    )?;
    let compute = program.add_kernel(
        KernelSpec::new(
            "gru_step",
            kernels::OPS_GRU_GRU_STEP,
            KernelKind::compute(ComputeConfig {
                fidelity: precision.fidelity,
                fp32_dest_acc: precision.fp32_acc,
                ..ComputeConfig::default()
            }),
            ranges.clone(),
        )
        .compile_args(vec![ht, CB_W, CB_H, CB_GX, CB_BIAS, CB_TMP, CB_N, CB_HOUT]),
    )?;
    let mut writer_ct = out.buffer().accessor_args()?;
    writer_ct.extend([
        ht,
        batch as u32,
        ht,
        recv,
        mailbox,
        CB_HOUT,
        CB_STAGE,
        recv_odd,
    ]);
    let writer = program.add_kernel(
        KernelSpec::new(
            "gru_writer",
            kernels::OPS_GRU_WRITER_GRU,
            KernelKind::riscv1(),
            ranges,
        )
        .compile_args(writer_ct),
    )?;
    let mut noc = Vec::with_capacity(2 * plan.cores.len());
    for c in &plan.cores {
        let n = device.worker_core(*c)?;
        noc.extend([n.x, n.y]);
    }
    for (k, c) in plan.cores.iter().enumerate() {
        program.set_runtime_args(
            reader,
            *c,
            &[
                weights.w_hh_t.buffer().address_u32()?,
                gx.buffer().address_u32()?,
                weights.bias.buffer().address_u32()?,
                h0_buf.address_u32()?,
                steps as u32,
                k as u32,
            ],
        )?;
        program.set_runtime_args(compute, *c, &[steps as u32, k as u32])?;
        let mut args = vec![out.buffer().address_u32()?, steps as u32, k as u32];
        args.extend(&noc);
        program.set_runtime_args(writer, *c, &args)?;
    }
    let stats = device.run(&program)?;
    Ok((out, stats))
}

/// f64 CPU reference: `x` row-major `[T * batch, I]`; returns every h_t, row-major
/// `[T * batch, H]`.
pub fn reference(x: &[f32], batch: usize, params: &GruParams<'_>, h0: Option<&[f32]>) -> Vec<f64> {
    let GruParams {
        input_size,
        hidden,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
    } = *params;
    let steps = x.len() / (batch * input_size);
    let mut h: Vec<f64> = match h0 {
        Some(h0) => h0.iter().map(|&v| f64::from(v)).collect(),
        None => vec![0.0; batch * hidden],
    };
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let mut out = Vec::with_capacity(steps * batch * hidden);
    for t in 0..steps {
        let mut next = vec![0f64; batch * hidden];
        for b in 0..batch {
            let xr = &x[(t * batch + b) * input_size..][..input_size];
            let hr = &h[b * hidden..][..hidden];
            let gate = |g: usize, j: usize| {
                let row = g * hidden + j;
                let gi: f64 = (0..input_size)
                    .map(|i| f64::from(w_ih[row * input_size + i]) * f64::from(xr[i]))
                    .sum::<f64>()
                    + f64::from(b_ih[row]);
                let gh: f64 = (0..hidden)
                    .map(|i| f64::from(w_hh[row * hidden + i]) * hr[i])
                    .sum::<f64>()
                    + f64::from(b_hh[row]);
                (gi, gh)
            };
            for j in 0..hidden {
                let (ir, hr_) = gate(0, j);
                let (iz, hz) = gate(1, j);
                let (inn, hn) = gate(2, j);
                let r = sig(ir + hr_);
                let z = sig(iz + hz);
                let n = (inn + r * hn).tanh();
                next[b * hidden + j] = (1.0 - z) * n + z * hr[j];
            }
        }
        out.extend_from_slice(&next);
        h = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_with_zero_weights_halves_h() {
        // r = z = sigmoid(0) = 1/2, n = tanh(0) = 0, so h' = h / 2.
        let (i, h) = (3, 2);
        let zeros = |n: usize| vec![0f32; n];
        let (wi, wh, b) = (zeros(3 * h * i), zeros(3 * h * h), zeros(3 * h));
        let p = GruParams {
            input_size: i,
            hidden: h,
            w_ih: &wi,
            w_hh: &wh,
            b_ih: &b,
            b_hh: &b,
        };
        let x = vec![1.0f32; 4 * i];
        let out = reference(&x, 1, &p, Some(&[2.0, -4.0]));
        assert_eq!(out, vec![1.0, -2.0, 0.5, -1.0, 0.25, -0.5, 0.125, -0.25]);
    }

    #[test]
    fn reference_gate_order_is_r_z_n() {
        // Only b_hh of the z gate is large: z -> 1, h stays h0 whatever n is.
        let (i, h) = (1, 1);
        let (wi, wh) = (vec![0.3f32; 3], vec![0.2f32; 3]);
        let b_ih = vec![0.0f32; 3];
        let b_hh = vec![0.0f32, 40.0, 0.0];
        let p = GruParams {
            input_size: i,
            hidden: h,
            w_ih: &wi,
            w_hh: &wh,
            b_ih: &b_ih,
            b_hh: &b_hh,
        };
        let out = reference(&[1.0], 1, &p, Some(&[0.7]));
        assert!((out[0] - f64::from(0.7f32)).abs() < 1e-12, "{}", out[0]);
    }
}
