//! The stochastic duration predictor (VITS `StochasticDurationPredictor`, reverse direction) on
//! the device: [`DevDurationPredictor`], used by [`super::TtBackend`]'s `log_durations` (its
//! [`DpStats`] go to the backend's ledger under the stage "duration predictor").
//!
//! # What runs where
//! Everything between the encoder output and `logw` runs as tt-kernels ops on the device:
//! - conditioning `h = proj(DDSConv(pre(x)))`: 1x1 convs ([`Conv1d`]), and per DDSConv layer
//!   the depthwise dilated conv (groups = channels, dilation `k^i`), [`LayerNorm`], GELU (exact
//!   erf, [`Eltwise`]), the 1x1 conv, LayerNorm, GELU and the residual add ([`Eltwise`]);
//! - per reverse ConvFlow: `pre(x0) + h` as one conv with the residual fused
//!   ([`Conv1d::run_with_residual`]), DDSConv, `proj` (`[T, 3K-1]` spline parameters) and the
//!   rational-quadratic spline inverse ([`spline_inverse`], scalar fp32 on a RISC-V of each
//!   core, see its module doc), which also writes the bf16 copy the next flow's `pre` reads;
//! - the final reverse ElementwiseAffine `(z - m) * exp(-logs)` fused into the last spline;
//! - optionally the alignment ([`DevDurationPredictor::align`]): integer durations
//!   `ceil(exp(logw) * length_scale)` and their total on a RISC-V, then the expansion of the
//!   prior statistics to frames with tt-kernels' `expand_durations` (integer prefix sum on the
//!   device); only the frame count is read back.
//!
//! The host only uploads the encoder output and the noise and downloads `logw` (I/O). The flip
//! between flows is free (it swaps which tensor is which). The flow variables `z0`, `z1` stay
//! Float32 on the device between flows; the other activations are in the format
//! [`DevDurationPredictor::new`] takes from the plan's default setting (bf16 or Float32).
//!
//! # Device time
//! [`DpStats::device_ns`] sums the provider's per-launch times (ESTIMATES on the simulator). The
//! spline launches' scalar RISC-V arithmetic is **not** in it (the simulator's timing model does
//! not charge RISC-V instructions); [`DpStats::spline_rows`] counts the rows it processed, and
//! `tt_kernels::ops::spline::estimated_riscv_cycles` turns that into an estimate.

use tt_kernels::ops::common::{Activation, DeviceTensor, OpError, Precision};
use tt_kernels::ops::conv::{Conv1d, Conv1dParams};
use tt_kernels::ops::eltwise::{BinaryOp, Broadcast, Eltwise, EltwiseOp, UnaryOp};
use tt_kernels::ops::embed::expand_durations_with_stats;
use tt_kernels::ops::norm::LayerNorm;
use tt_kernels::ops::spline::{SplineParams, durations_from_logw, spline_inverse};
use tt_safe::{Buffer, DataFormat, Device, RunStats};

use crate::backend::Encoded;
use crate::error::{Result, TtsError};
use crate::precision::{ActivationFormat, LayerPrecision, ResolvedPlan};
use crate::voice::{Hparams, Voice};

/// Accounting of one [`DevDurationPredictor::log_durations`] call (add it to the backend's
/// ledger under the stage "duration predictor").
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DpStats {
    /// Conv FLOPs executed on the device (2 per multiply-accumulate, logical shapes).
    pub device_flops: f64,
    /// Device time of all launches in ns (ESTIMATE on the simulator; spline arithmetic
    /// excluded, see the module doc).
    pub device_ns: u64,
    /// Whether any device time is an estimate.
    pub is_estimate: bool,
    /// Device op launches.
    pub launches: u64,
    /// Rows (time steps x flows) evaluated by the scalar spline kernel.
    pub spline_rows: u64,
}

impl DpStats {
    fn add(&mut self, flops: f64, st: &RunStats) {
        self.device_flops += flops;
        self.device_ns += st.device_ns.unwrap_or(0);
        self.is_estimate |= st.is_estimate;
        self.launches += 1;
    }
}

/// The alignment of one utterance on the device (VITS step 4 and the gather of step 5).
#[derive(Debug)]
pub struct DevAlignment {
    /// Per input statistics tensor, `[frames, C]` bf16: row `j` is row `i` of the statistics
    /// where `cum[i-1] <= j < cum[i]` (integer prefix sum on the device).
    pub priors: Vec<DeviceTensor>,
    /// Total frames (integer sum of the durations, computed on the device).
    pub frames: usize,
    /// The durations `ceil(exp(logw) * length_scale)` as a device index buffer (u32, pages of
    /// 32 entries; the layout `tt_kernels::ops::embed::expand_durations` reads).
    pub durations: Buffer,
    /// Number of ids.
    pub ids: usize,
}

impl DevAlignment {
    /// Downloads the durations (I/O: the synthesizer reports them).
    pub fn durations_host(&self) -> Result<Vec<u32>> {
        let bytes = self
            .durations
            .read()
            .map_err(|e| dev_err(OpError::from(e)))?;
        Ok(bytes
            .chunks_exact(4)
            .take(self.ids)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

/// A conv prepared on the device with its FLOPs per output row.
struct DevConv {
    op: Conv1d,
    flops_per_row: f64,
}

impl DevConv {
    fn run(&self, x: &DeviceTensor, st: &mut DpStats) -> Result<DeviceTensor> {
        let (y, s) = self.op.run(x).map_err(dev_err)?;
        st.add(self.flops_per_row * y.rows() as f64, &s);
        Ok(y)
    }

    fn run_with_residual(
        &self,
        x: &DeviceTensor,
        residual: &DeviceTensor,
        st: &mut DpStats,
    ) -> Result<DeviceTensor> {
        let (y, s) = self.op.run_with_residual(x, residual).map_err(dev_err)?;
        st.add(self.flops_per_row * y.rows() as f64, &s);
        Ok(y)
    }
}

/// One DDSConv layer: depthwise dilated conv, LN, GELU, 1x1 conv, LN, GELU, residual.
struct DdsLayer {
    sep: DevConv,
    n1: LayerNorm,
    pw: DevConv,
    n2: LayerNorm,
}

struct DevConvFlow {
    pre: DevConv,
    dds: Vec<DdsLayer>,
    proj: DevConv,
}

/// The duration predictor's weights on the device, ready to run.
pub struct DevDurationPredictor {
    device: Device,
    hidden: usize,
    acts: DataFormat,
    pre: DevConv,
    dds: Vec<DdsLayer>,
    proj: DevConv,
    /// Reverse order of application (`hp.dp_flows`, e.g. 7, 5, 3).
    flows: Vec<DevConvFlow>,
    eltwise: Eltwise,
    spline: SplineParams,
}

impl std::fmt::Debug for DevDurationPredictor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevDurationPredictor")
            .field("hidden", &self.hidden)
            .field("activations", &self.acts)
            .field("flows", &self.flows.len())
            .field("spline", &self.spline)
            .finish()
    }
}

fn dev_err(e: OpError) -> TtsError {
    TtsError::Unsupported(format!("tt device op failed (duration predictor): {e}"))
}

/// The tt-kernels precision of a conv's plan setting with `acts` activations: its `bf16x2`
/// weights and `fp32x2` activations set `weights_lo` / `activations_lo` (conv1d implements
/// both); the activation split only where the input is Float32 (a bf16 input has no low part).
/// `isolate_products` is passed through on every conv, the depthwise DDSConv ones included:
/// tt-kernels applies it whenever set and decides what it is worth (correct there but a gain of
/// nothing, a group of 8 K rows of a depthwise conv holding at most one non-zero weight per
/// output column).
fn precision_of(s: LayerPrecision, acts: DataFormat) -> Precision {
    let p = super::to_precision(s).with_activations(acts);
    Precision {
        activations_lo: p.activations_lo && acts == DataFormat::Float32,
        ..p
    }
}

impl DevDurationPredictor {
    /// Prepares every `dp.*` layer of `voice` on `device` with the plan's per-layer setting
    /// (`default` for layers the plan does not list and for the layer norms / eltwise ops), with
    /// activations in `default.activations` (bf16, or Float32 which needs `fp32_acc`). Errors
    /// for multi-speaker voices (speaker conditioning `dp.cond` is not wired).
    pub fn new(
        device: &Device,
        voice: &Voice,
        plan: &ResolvedPlan,
        default: LayerPrecision,
    ) -> Result<Self> {
        let acts = match default.activations {
            ActivationFormat::Bf16 => DataFormat::Float16_b,
            ActivationFormat::Fp32 | ActivationFormat::Fp32x2 => DataFormat::Float32,
        };
        Self::new_with_activations(device, voice, plan, default, acts)
    }

    /// [`DevDurationPredictor::new`] with activation tensors (conv inputs/outputs, layer norms,
    /// GELU, adds) in `acts`; the ops must support that format (tt-kernels returns a clear
    /// error otherwise). The flow variables are always Float32.
    pub fn new_with_activations(
        device: &Device,
        voice: &Voice,
        plan: &ResolvedPlan,
        default: LayerPrecision,
        acts: DataFormat,
    ) -> Result<Self> {
        let hp: &Hparams = &voice.hparams;
        if hp.n_speakers > 1 {
            return Err(TtsError::Unsupported(
                "multi-speaker voices in the device duration predictor (dp.cond is not wired); use --backend cpu".into(),
            ));
        }
        let w = &voice.weights;
        let f = hp.dp_filter;
        let setting = |name: &str| plan.get(name).unwrap_or(default);
        let conv = |name: &str, cin: usize, cout: usize| -> Result<DevConv> {
            let weight = w.get(&format!("{name}.weight"))?.to_f32();
            let bias_name = format!("{name}.bias");
            let bias = if w.has(&bias_name) {
                Some(w.get(&bias_name)?.to_f32())
            } else {
                None
            };
            let (k, params) = match w.conv_attrs(name) {
                Some(a) => {
                    let k = weight.len() / (cout * (cin / a.group.max(1)).max(1));
                    (
                        k,
                        Conv1dParams {
                            cin,
                            cout,
                            kernel: k,
                            stride: a.stride,
                            pad_left: a.pads.0,
                            pad_right: a.pads.1,
                            dilation: a.dilation,
                            groups: a.group,
                        },
                    )
                }
                // Only the 1x1 convs may lack a Conv node (checked for the DDS convs).
                None => {
                    let k = weight.len() / (cout * cin).max(1);
                    (k, Conv1dParams::new(cin, cout, k, 0))
                }
            };
            let op = Conv1d::new(
                device,
                params,
                &weight,
                bias.as_deref(),
                precision_of(setting(name), acts),
                Activation::None,
            )
            .map_err(dev_err)?;
            Ok(DevConv {
                op,
                flops_per_row: 2.0 * (cout * (cin / params.groups) * k) as f64,
            })
        };
        // Layer norms and eltwise ops have no matmul operands to split.
        let ln_prec = super::without_split(precision_of(default, acts));
        let ln = |name: &str| -> Result<LayerNorm> {
            let g = w.get(&format!("{name}.gamma"))?.to_f32();
            let b = w.get(&format!("{name}.beta"))?.to_f32();
            LayerNorm::new(device, &g, &b, 1e-5, ln_prec).map_err(dev_err)
        };
        let dds = |prefix: &str| -> Result<Vec<DdsLayer>> {
            (0..hp.dp_layers)
                .map(|i| {
                    let sep = format!("{prefix}.convs_sep.{i}");
                    if w.conv_attrs(&sep).is_none() {
                        return Err(TtsError::Weight {
                            name: sep,
                            detail:
                                "no Conv node found for this weight (cannot read dilation/padding)"
                                    .into(),
                        });
                    }
                    Ok(DdsLayer {
                        sep: conv(&sep, f, f)?,
                        n1: ln(&format!("{prefix}.norms_1.{i}"))?,
                        pw: conv(&format!("{prefix}.convs_1x1.{i}"), f, f)?,
                        n2: ln(&format!("{prefix}.norms_2.{i}"))?,
                    })
                })
                .collect()
        };
        let np = 3 * hp.dp_bins - 1;
        let mut flows = Vec::new();
        for &i in &hp.dp_flows {
            let p = format!("dp.flows.{i}");
            flows.push(DevConvFlow {
                pre: conv(&format!("{p}.pre"), 1, f)?,
                dds: dds(&format!("{p}.convs"))?,
                proj: conv(&format!("{p}.proj"), f, np)?,
            });
        }
        if flows.is_empty() {
            return Err(TtsError::Weight {
                name: "dp.flows".into(),
                detail: "no ConvFlow layers found".into(),
            });
        }
        let m = w.f32("dp.flows.0.m", &[2, 1])?;
        let e = w.f32("dp.flows.0.exp_neg_logs", &[2, 1])?;
        let mut spline = SplineParams::vits(hp.dp_bins, f);
        spline.output_affine = Some((m[0], e[0]));
        Ok(Self {
            device: device.clone(),
            hidden: hp.hidden,
            acts,
            pre: conv("dp.pre", hp.hidden, f)?,
            dds: dds("dp.convs")?,
            proj: conv("dp.proj", f, f)?,
            flows,
            eltwise: Eltwise::new(device, ln_prec).map_err(dev_err)?,
            spline,
        })
    }

    fn dds(
        &self,
        layers: &[DdsLayer],
        mut x: DeviceTensor,
        st: &mut DpStats,
    ) -> Result<DeviceTensor> {
        let gelu = |t: &DeviceTensor, st: &mut DpStats| -> Result<DeviceTensor> {
            let (y, s) = self
                .eltwise
                .run_op(EltwiseOp::Unary(UnaryOp::Gelu), &[t])
                .map_err(dev_err)?;
            st.add(0.0, &s);
            Ok(y)
        };
        for l in layers {
            let y = l.sep.run(&x, st)?;
            let (y, s) = l.n1.run_with_stats(&y).map_err(dev_err)?;
            st.add(0.0, &s);
            let y = gelu(&y, st)?;
            let y = l.pw.run(&y, st)?;
            let (y, s) = l.n2.run_with_stats(&y).map_err(dev_err)?;
            st.add(0.0, &s);
            let y = gelu(&y, st)?;
            let (sum, s) = self
                .eltwise
                .run_op(EltwiseOp::Binary(BinaryOp::Add, Broadcast::None), &[&x, &y])
                .map_err(dev_err)?;
            st.add(0.0, &s);
            x = sum;
        }
        Ok(x)
    }

    /// The device the predictor runs on (upload the prior statistics for [`Self::align`] there).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Alignment on the device: integer durations `ceil(exp(logw) * length_scale)` and their
    /// integer total (spline kernel file, `DURATIONS` build, one RISC-V), then the expansion of
    /// each prior statistics tensor `[T, C]` of `stats` (bf16, e.g. `m_p | logs_p`, or the hi and
    /// lo halves of one) to `[frames, C]` with tt-kernels' `expand_durations` (integer prefix
    /// sum on the device). Only the frame count (one word) is read back, to size the outputs.
    /// `logw` is the `[T, 1]` tensor of [`DevDurationPredictor::log_durations_device`].
    pub fn align(
        &self,
        logw: &DeviceTensor,
        stats: &[&DeviceTensor],
        length_scale: f32,
        st: &mut DpStats,
    ) -> Result<DevAlignment> {
        if let Some(bad) = stats.iter().find(|x| x.rows() != logw.rows()) {
            return Err(TtsError::Input(format!(
                "alignment: {} prior rows for {} durations",
                bad.rows(),
                logw.rows()
            )));
        }
        let (durations, total, s) =
            durations_from_logw(&self.device, logw, length_scale).map_err(dev_err)?;
        st.add(0.0, &s);
        let frames = usize::try_from(total)
            .ok()
            .filter(|&f| f > 0)
            .ok_or_else(|| {
                TtsError::Input(format!(
                    "alignment: the durations add up to {total} frames; nothing to synthesise"
                ))
            })?;
        let mut priors = Vec::with_capacity(stats.len());
        for x in stats {
            let (prior, n, s) =
                expand_durations_with_stats(&self.device, x, &durations, logw.rows(), frames)
                    .map_err(|e| {
                        TtsError::Unsupported(format!("tt device op failed (alignment): {e}"))
                    })?;
            st.add(0.0, &s);
            if n != frames {
                return Err(TtsError::Unsupported(format!(
                    "tt alignment: expansion produced {n} frames, the durations add up to {frames}"
                )));
            }
            priors.push(prior);
        }
        Ok(DevAlignment {
            priors,
            frames,
            durations,
            ids: logw.rows(),
        })
    }

    /// `logw [T]` from the encoder output (`enc.x`, `[T, hidden]`) and the noise
    /// (`[T, 2]` row-major: `noise[2t]` is z0 and `noise[2t + 1]` z1 of step t, already
    /// multiplied by noise_w; zeros for noise off), exactly the contract of
    /// `Backend::log_durations`. Returns the accounting of the device work with it.
    pub fn log_durations(&self, enc: &Encoded, noise: &[f32]) -> Result<(Vec<f32>, DpStats)> {
        let (z, st) = self.log_durations_device(enc, noise)?;
        Ok((z.to_host().map_err(dev_err)?, st))
    }

    /// [`DevDurationPredictor::log_durations`] leaving `logw` on the device (`[T, 1]` Float32,
    /// zero padding), for a device-side alignment.
    pub fn log_durations_device(
        &self,
        enc: &Encoded,
        noise: &[f32],
    ) -> Result<(DeviceTensor, DpStats)> {
        let t = enc.t;
        if t == 0 || enc.x.len() != t * self.hidden {
            return Err(TtsError::Input(format!(
                "duration predictor input has {} values, expected {t} x {}",
                enc.x.len(),
                self.hidden
            )));
        }
        if noise.len() != 2 * t {
            return Err(TtsError::Input(format!(
                "duration noise has {} values, expected {}",
                noise.len(),
                2 * t
            )));
        }
        let mut st = DpStats::default();
        let up = |v: &[f32], cols: usize, fmt: DataFormat| {
            DeviceTensor::from_host(&self.device, t, cols, v, fmt).map_err(dev_err)
        };
        let x = up(&enc.x, self.hidden, self.acts)?;
        let h = self.pre.run(&x, &mut st)?;
        let h = self.dds(&self.dds, h, &mut st)?;
        let hcond = self.proj.run(&h, &mut st)?;

        // (Float32 value, copy in the activation format when a conv will read it and the
        // activations are not Float32 themselves).
        let f32_acts = self.acts == DataFormat::Float32;
        let n0: Vec<f32> = noise.iter().step_by(2).copied().collect();
        let n1: Vec<f32> = noise.iter().skip(1).step_by(2).copied().collect();
        let mut z0 = (up(&n0, 1, DataFormat::Float32)?, None::<DeviceTensor>);
        let mut z1 = (
            up(&n1, 1, DataFormat::Float32)?,
            if f32_acts {
                None
            } else {
                Some(up(&n1, 1, self.acts)?)
            },
        );
        let last = self.flows.len() - 1;
        for (i, fl) in self.flows.iter().enumerate() {
            std::mem::swap(&mut z0, &mut z1); // Flip
            let x0 = z0.1.as_ref().unwrap_or(&z0.0);
            let u = fl.pre.run_with_residual(x0, &hcond, &mut st)?;
            let u = self.dds(&fl.dds, u, &mut st)?;
            let p = fl.proj.run(&u, &mut st)?;
            let mut sp = self.spline;
            if i != last {
                sp.output_affine = None;
            }
            let out = spline_inverse(
                &self.device,
                &z1.0,
                &p,
                &sp,
                DataFormat::Float32,
                (i != last && !f32_acts).then_some(self.acts),
            )
            .map_err(dev_err)?;
            st.add(0.0, &out.stats);
            st.spline_rows += t as u64;
            z1 = (out.y, out.y2);
        }
        std::mem::swap(&mut z0, &mut z1);
        // The last spline applied the reverse ElementwiseAffine: z0 is logw.
        Ok((z0.0, st))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::Plan;

    #[test]
    fn conv_precision_keeps_the_split_and_splits_activations_only_when_float32() {
        let hifi = Plan::preset("hifi").expect("preset").default;
        let p = precision_of(hifi, DataFormat::Float32);
        assert!(p.weights_lo && p.activations_lo && p.isolate_products);
        assert_eq!(p.activations, DataFormat::Float32);
        // bf16 activations have no low part to split; the weight pair and the isolation stay.
        let p = precision_of(hifi, DataFormat::Float16_b);
        assert!(p.weights_lo && !p.activations_lo && p.isolate_products);
        assert_eq!(p.activations, DataFormat::Float16_b);
        // The plan's key, not the split formats, decides the isolation.
        let p = precision_of(hifi.with_isolated_products(false), DataFormat::Float32);
        assert!(p.weights_lo && p.activations_lo && !p.isolate_products);
        // Layer norms get none of it.
        assert!(
            !super::super::without_split(precision_of(hifi, DataFormat::Float32)).isolate_products
        );
    }
}
