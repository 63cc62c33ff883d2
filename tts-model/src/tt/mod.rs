//! The `tt` backend: VITS inference composed from tt-kernels ops on a tt-safe device (the
//! simulator by default, TT-Metal hardware through the metal provider when present).
//!
//! Every layer's weights are prepared once on the device in the format the [`Plan`] gives it,
//! with its fidelity and accumulation. What runs where is **accounted, not hidden**: each call adds
//! its device FLOPs, host FLOPs and host elementwise steps to a [`Ledger`]
//! ([`TtBackend::ledger`]), from which `tts eval` prints the on-device share.
//!
//! Current split (see `docs/pipeline-on-tensix.md`, kept in sync with [`HOST_STEPS`]):
//! - on device, with activations kept as device tensors between the ops of a stage (only a
//!   stage's input and output cross to the host):
//!   - text encoder: embedding gather with the sqrt(C) scale, q/k/v/o 1x1 convs, VITS relative
//!     attention, both residual adds (fused into `conv_o` / FFN `conv_2` as a residual), both
//!     layer norms, FFN convs with fused ReLU, proj;
//!   - flow: the channel flip and half split are folded into the `pre` / `post` weights at load
//!     time (an exact row/column permutation; `post` is also negated and widened to all channels
//!     so `x1 -= post(..)` is a fused residual of `post`); `in_layers` and `res_skip_layers` are
//!     split into their two halves (exact); the WaveNet gate `tanh(a) * sigmoid(b)` is an eltwise
//!     op; residual and skip adds are fused residuals of the res/skip convs;
//!   - decoder: `conv_pre` with the first leaky ReLU fused on its output, `ups` (conv-transpose),
//!     every resblock layer `x + conv(leaky_relu(x))` as one conv (fused input activation and
//!     residual), the resblock mean and the following leaky ReLU as eltwise ops, `conv_post` with
//!     the 0.01 leaky ReLU fused on its input and the final tanh on its output.
//!   - duration predictor ([`dp`]): conditioning convs, DDSConv (depthwise dilated conv, layer
//!     norm, GELU), ConvFlows with the rational-quadratic spline inverse (scalar fp32 on a
//!     data-movement RISC-V) and the final affine;
//!   - alignment: `ceil(exp(logw) * length_scale)`, the integer total and the expansion of `m_p`
//!     to frames (integer prefix sum + row gather), [`Backend::align`].
//! - on the host: tokenisation, I/O (uploads/downloads at stage boundaries), and for noisy
//!   synthesis only the prior noise term ([`HOST_STEPS`]). In emulation mode (tests) the
//!   duration predictor and the alignment run on the host and are counted as host FLOPs.
//!
//! Activation formats: each device op writes the activation format its layer's plan setting
//! gives ([`act_format`]); the glue ops write the format of the stage.
//!
//! Split operands ([`to_precision`]): a layer's `bf16x2` weights and `fp32x2` activations set
//! tt-kernels' `Precision::weights_lo` / `activations_lo` on every [`Conv1d`] and
//! [`ConvTranspose1d`] (encoder, flow, decoder and, in [`dp`], the duration predictor's convs
//! including the depthwise DDSConv ones). The attention cores take `fp32x2` as tt-kernels'
//! attention `activations_lo` (q, k, v, P and the relative embeddings split; HiFi4 and Float32
//! q/k/v needed, checked when the backend is prepared) through [`attention_precision`]. Ops that
//! do not implement the split get the precision through [`without_split`] (both flags
//! cleared): layer norms and eltwise glue; the embedding gather takes no precision (with
//! Float32 encoder activations its table is already a bf16 hi + lo pair).
//!
//! A plan's `isolate_products` becomes tt-kernels' `Precision::isolate_products` on the same
//! convs and conv-transposes (the main term as 8 weight-masked passes, so the FPU's MVMUL
//! alignment rounds nothing; tt-kernels chunks input channels across launches when that does not
//! fit L1). [`without_split`] clears it with the split flags; [`attention_precision`] clears it
//! (the attention core's `fp32x2` split path isolates its products already; see there).
//! `isolate_products` also turns on tt-kernels' `Precision::guard_dest_quirk` on those convs:
//! each conv runs twice with the masked passes in opposite orders and keeps the elementwise
//! max, which removes the rare fp32-DEST "-1" renormalisation events the simulator models
//! (an event only ever lowers the accumulated value; 2x the conv's device time).
#![deny(unsafe_code)]

pub mod dp;

use std::collections::HashMap;
use std::sync::Mutex;

use tt_kernels::ops::attention::{AttentionKind, attention_with_stats};
use tt_kernels::ops::common::{Activation, DeviceTensor, OpError, Precision};
use tt_kernels::ops::conv::{Conv1d, Conv1dParams, conv1d_reference};
use tt_kernels::ops::conv_transpose::{
    ConvTranspose1d, ConvTranspose1dParams, conv_transpose1d_reference,
};
use tt_kernels::ops::eltwise::{BinaryOp, Broadcast, Eltwise, EltwiseOp, UnaryOp};
use tt_kernels::ops::embed::{EmbedScale, embedding_gather, index_buffer};
use tt_kernels::ops::norm::LayerNorm;
pub use tt_safe::Arch;
use tt_safe::{DataFormat, Device, MathFidelity, RunStats};

use crate::backend::{Backend, Encoded};
use crate::cpu::{CpuBackend, CpuOptions};
use crate::error::{Result, TtsError};
use crate::precision::{
    self, ActivationFormat, Fidelity, LayerPrecision, Plan, ResolvedPlan, WeightFormat,
};
use crate::voice::{Hparams, ResBlockKind, Voice};

/// Host steps of the current `tt` backend (whole stages and elementwise glue), for reports.
pub const HOST_STEPS: &[&str] = &[
    "prior noise for noisy synthesis only: N(0,1) * exp(logs_p) * noise_scale added to the device-expanded m_p (nothing with noise_scale = 0)",
];

/// Which device to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// The simulator of `arch` (Wormhole B0 = n150, Blackhole = p150).
    Sim(Arch),
    /// TT-Metal hardware `id` through the metal provider.
    Metal(u32),
}

/// Options of the `tt` backend.
#[derive(Debug, Clone)]
pub struct TtOptions {
    /// Device to open.
    pub device: DeviceKind,
    /// Precision plan.
    pub plan: Plan,
    /// Threads of the cpu backend used for the host stages (0 = all cores).
    pub host_threads: usize,
    /// Run every device op as its host emulation instead (f64 reference on the stored inputs,
    /// a Float32 input as the matmul reads it (TF32, or TF32 hi + lo with `fp32x2`), weights
    /// rounded to bf16 (or to a bf16 hi + lo pair with `bf16x2`), bias in the output format,
    /// output activation then one rounding to the output format): the expected device result
    /// under the `hifi` / `hifi-bf16` plans up to accumulation order, for tests. Only bf16 /
    /// bf16x2-weight plans.
    pub emulate: bool,
}

/// What ran where so far (accumulated over calls; reset with [`TtBackend::reset_ledger`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ledger {
    /// Matmul/conv FLOPs executed on the device.
    pub device_flops: f64,
    /// Matmul/conv FLOPs executed on the host, per stage.
    pub host_flops: HashMap<&'static str, f64>,
    /// Elementwise host operations (element count), per step.
    pub host_elementwise: HashMap<&'static str, u64>,
    /// Device time per stage in ns as reported by the provider (ESTIMATE on the simulator).
    pub device_ns: HashMap<&'static str, u64>,
    /// Whether any device time is an estimate.
    pub estimate: bool,
    /// Device op launches.
    pub launches: u64,
}

impl Ledger {
    /// Device FLOPs / all matmul-conv FLOPs.
    pub fn on_device_share(&self) -> f64 {
        let host: f64 = self.host_flops.values().sum();
        let total = self.device_flops + host;
        if total > 0.0 {
            self.device_flops / total
        } else {
            0.0
        }
    }

    /// Total device ns over stages.
    pub fn device_ns_total(&self) -> u64 {
        self.device_ns.values().sum()
    }
}

enum Op {
    Conv(Conv1d),
    Up(ConvTranspose1d),
}

enum Emu {
    Conv(Conv1dParams),
    Up(ConvTranspose1dParams),
}

/// One layer prepared on the device (possibly a derived layer: a half of a split conv, or a
/// conv with the flow's flip folded into its weights).
struct DevLayer {
    op: Op,
    emu: Emu,
    /// The weights as prepared (after folding), for the emulation.
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    /// Activation fused on the output.
    act: Activation,
    /// Activation fused on the input (convs only).
    pre: Activation,
    cout: usize,
    /// Output activation format.
    out_fmt: DataFormat,
    /// Weights as a bf16 hi + lo pair (`bf16x2`; the emulation rounds to the pair).
    weights_lo: bool,
    /// Float32 inputs split into TF32 hi + lo (`fp32x2`; the emulation reads both parts).
    activations_lo: bool,
    /// Real FLOPs per output row (conv) or per input row (conv-transpose), without the zero
    /// rows/columns that folding adds.
    flops_per_row: f64,
    transpose: bool,
}

/// An activation between ops: a device tensor, or its host emulation (`TtOptions::emulate`).
enum Act {
    Dev(DeviceTensor),
    Host {
        rows: usize,
        cols: usize,
        data: Vec<f32>,
        /// The format the device would store it in.
        fmt: DataFormat,
    },
}

impl Act {
    fn rows(&self) -> usize {
        match self {
            Act::Dev(t) => t.rows(),
            Act::Host { rows, .. } => *rows,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Act::Dev(t) => t.cols(),
            Act::Host { cols, .. } => *cols,
        }
    }
}

/// Which roundings the emulation (`TtOptions::emulate`) applies; all by default (what the
/// device does). Switching one off shows how much of the error against cpu it causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmulatedRounding {
    /// Weights rounded to bf16.
    pub weights: bool,
    /// Float32 matmul inputs truncated to TF32.
    pub tf32_inputs: bool,
}

impl Default for EmulatedRounding {
    fn default() -> Self {
        EmulatedRounding {
            weights: true,
            tf32_inputs: true,
        }
    }
}

/// The `tt` backend.
pub struct TtBackend {
    device: Device,
    hp: Hparams,
    cpu: CpuBackend,
    plan: ResolvedPlan,
    layers: HashMap<String, DevLayer>,
    ledger: Mutex<Ledger>,
    all_layers: Vec<precision::Layer>,
    emulate: bool,
    /// Which roundings the emulation applies (diagnostics, [`TtBackend::set_emulated_rounding`]).
    emu_round: EmulatedRounding,
    enc: DevEncoder,
    /// The stochastic duration predictor on the device (`None` in emulation mode).
    dp: Option<dp::DevDurationPredictor>,
    /// Activation format of the flow's residual stream `z` and its glue ops.
    flow_fmt: DataFormat,
    /// Activation format of the decoder's glue ops.
    dec_fmt: DataFormat,
    /// Format of the decoder's input.
    dec_in_fmt: DataFormat,
    /// Whether the flow's final channel order is reversed (an odd number of flips).
    flow_final_reversed: bool,
}

/// rel_k, rel_v (`[2w+1, d]`), attention precision, LN1, LN2 of one encoder layer.
type EncLayer = (Vec<f32>, Vec<f32>, Precision, LayerNorm, LayerNorm);

/// Encoder parts that are not convs.
struct DevEncoder {
    /// The embedding table times sqrt(C), bf16.
    emb: DeviceTensor,
    /// Its low part (`t - bf16(t)`), with Float32 encoder activations.
    emb_lo: Option<DeviceTensor>,
    /// Per layer: rel_k, rel_v (`[2w+1, d]`), attention precision, LN1, LN2.
    layers: Vec<EncLayer>,
}

fn dev_err(e: OpError) -> TtsError {
    TtsError::Unsupported(format!("tt device op failed: {e}"))
}

/// The activation format a plan setting asks for (what the layer's op writes): Float32 for
/// `fp32` and `fp32x2` (the split is how the matmul reads it, not a storage format).
pub fn act_format(s: LayerPrecision) -> DataFormat {
    match s.activations {
        ActivationFormat::Bf16 => DataFormat::Float16_b,
        ActivationFormat::Fp32 | ActivationFormat::Fp32x2 => DataFormat::Float32,
    }
}

/// Converts a plan setting to a tt-kernels precision: `bf16x2` weights are `Float16_b` with
/// `weights_lo`, `fp32x2` activations `Float32` with `activations_lo`, `isolate_products` is
/// passed through. For conv1d / conv_transpose1d; other ops take [`without_split`] of it.
pub fn to_precision(s: LayerPrecision) -> Precision {
    Precision {
        weights: match s.weights {
            WeightFormat::Bf16x2 | WeightFormat::Bf16 => DataFormat::Float16_b,
            WeightFormat::Bfp8 => DataFormat::Bfp8_b,
            WeightFormat::Bfp4 => DataFormat::Bfp4_b,
        },
        activations: act_format(s),
        fidelity: match s.fidelity {
            Fidelity::LoFi => MathFidelity::LoFi,
            Fidelity::HiFi2 => MathFidelity::HiFi2,
            Fidelity::HiFi3 => MathFidelity::HiFi3,
            Fidelity::HiFi4 => MathFidelity::HiFi4,
        },
        fp32_acc: s.fp32_acc,
        weights_lo: s.weights.is_split(),
        activations_lo: s.activations.is_split(),
        isolate_products: s.isolate_products,
        // The guard needs isolated products (tt-kernels refuses it otherwise) and costs 2x the
        // conv; plans turn it on with isolate_products (no separate key).
        guard_dest_quirk: s.isolate_products,
    }
}

/// `p` with `weights_lo`, `activations_lo` and `isolate_products` cleared: the precision of ops
/// that do not implement split operands (tt-kernels' matmul and gru reject them; layer norm,
/// eltwise and the embedding gather have no matmul operands to split). The one place where a
/// plan's `bf16x2` / `fp32x2` / `isolate_products` is dropped: those ops then run as `bf16` /
/// `fp32` with the FPU's usual MVMUL grouping.
pub fn without_split(p: Precision) -> Precision {
    Precision {
        weights_lo: false,
        activations_lo: false,
        isolate_products: false,
        guard_dest_quirk: false,
        ..p
    }
}

/// The precision of an attention core (`...emb_rel_k` setting): `fp32x2` becomes tt-kernels'
/// attention `activations_lo` (it splits q, k, v, the probabilities and the relative
/// embeddings); `weights_lo` is cleared (the core has no prepared weights; the relative
/// embeddings are split with the activations). `isolate_products` is cleared: tt-kernels'
/// attention has no such switch because its split path (`activations_lo`) already isolates,
/// computing `Ah Bh` as eight column-masked passes so no MVMUL group of 8 is aligned; without
/// the split nothing is isolated. A plan's `isolate_products` on an attention core therefore has
/// no effect; `fp32x2` there is what removes the alignment floor.
pub fn attention_precision(s: LayerPrecision) -> Precision {
    Precision {
        weights_lo: false,
        isolate_products: false,
        guard_dest_quirk: false,
        ..to_precision(s)
    }
}

/// A conv layer as loaded, before it is prepared on the device.
#[derive(Clone)]
struct ConvSpec {
    params: Conv1dParams,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    act: Activation,
    pre: Activation,
    flops_per_row: f64,
}

impl ConvSpec {
    /// Output channels `lo..hi` only (a split of the conv; exact).
    fn rows(&self, lo: usize, hi: usize) -> ConvSpec {
        let per = self.weight.len() / self.params.cout;
        ConvSpec {
            params: Conv1dParams {
                cout: hi - lo,
                ..self.params
            },
            weight: self.weight[lo * per..hi * per].to_vec(),
            bias: self.bias.as_ref().map(|b| b[lo..hi].to_vec()),
            act: self.act,
            pre: self.pre,
            flops_per_row: self.flops_per_row * (hi - lo) as f64 / self.params.cout as f64,
        }
    }
}

/// Physical channel of logical channel `c` of the flow's `z` (`inter` channels) when the
/// stored order is reversed.
fn phys(c: usize, inter: usize, reversed: bool) -> usize {
    if reversed { inter - 1 - c } else { c }
}

impl TtBackend {
    /// Opens the device and prepares every encoder, flow and decoder layer on it.
    pub fn new(voice: &Voice, opts: TtOptions) -> Result<Self> {
        let hp = voice.hparams.clone();
        if hp.n_speakers > 1 {
            return Err(TtsError::Unsupported(
                "multi-speaker voices on the tt backend (speaker conditioning is not wired yet); use --backend cpu".into(),
            ));
        }
        if hp.resblock != ResBlockKind::Two {
            return Err(TtsError::Unsupported(
                "HiFi-GAN ResBlock1 decoders (high tier) on the tt backend; use --backend cpu"
                    .into(),
            ));
        }
        if hp.ups.is_empty() {
            return Err(TtsError::Unsupported(
                "a decoder without upsampling layers on the tt backend; use --backend cpu".into(),
            ));
        }
        let device = match opts.device {
            DeviceKind::Sim(arch) => Device::open_sim(arch),
            DeviceKind::Metal(id) => Device::open_metal(id),
        }
        .map_err(|e| TtsError::Unsupported(format!("cannot open the tt device: {e}")))?;
        let all_layers = precision::layers(voice);
        let plan = opts
            .plan
            .resolve(&all_layers)
            .map_err(|e| TtsError::Input(e.to_string()))?;
        let cpu = CpuBackend::new(
            voice,
            CpuOptions {
                threads: opts.host_threads,
            },
        )?;
        let setting = |name: &str| plan.get(name).unwrap_or(opts.plan.default);

        // Orientation of z at each coupling: Flip toggles it (no data moves).
        let inter = hp.inter;
        let half = inter / 2;
        let mut reversed = false;
        let mut coupling_rev = HashMap::new();
        for &c in &hp.flow_layers {
            reversed = !reversed;
            coupling_rev.insert(c, reversed);
        }
        let flow_final_reversed = reversed;

        let mut layers = HashMap::new();
        let prepare = |layers: &mut HashMap<String, DevLayer>,
                       name: String,
                       base: &str,
                       spec: ConvSpec|
         -> Result<()> {
            let s = setting(base);
            let prec = to_precision(s);
            let mut op = Conv1d::new(
                &device,
                spec.params,
                &spec.weight,
                spec.bias.as_deref(),
                prec,
                spec.act,
            )
            .map_err(dev_err)?;
            if spec.pre != Activation::None {
                op = op.with_input_activation(spec.pre).map_err(dev_err)?;
            }
            layers.insert(
                name,
                DevLayer {
                    op: Op::Conv(op),
                    emu: Emu::Conv(spec.params),
                    weight: spec.weight,
                    bias: spec.bias,
                    act: spec.act,
                    pre: spec.pre,
                    cout: spec.params.cout,
                    out_fmt: prec.activations,
                    weights_lo: prec.weights_lo,
                    activations_lo: prec.activations_lo,
                    flops_per_row: spec.flops_per_row,
                    transpose: false,
                },
            );
            Ok(())
        };
        let mut ups = Vec::new();
        for l in &all_layers {
            if !(l.name.starts_with("flow.")
                || l.name.starts_with("dec.")
                || l.name.starts_with("enc_p."))
            {
                continue;
            }
            let w = match l.kind {
                precision::LayerKind::Conv { .. } | precision::LayerKind::ConvTranspose { .. } => {
                    voice.weights.get(&format!("{}.weight", l.name))?.to_f32()
                }
                _ => continue,
            };
            let bias_name = format!("{}.bias", l.name);
            let bias = if voice.weights.has(&bias_name) {
                Some(voice.weights.get(&bias_name)?.to_f32())
            } else {
                None
            };
            let (cout, cin_per_group, k) = match l.kind {
                precision::LayerKind::Conv {
                    cout,
                    cin_per_group,
                    k,
                } => (cout, cin_per_group, k),
                precision::LayerKind::ConvTranspose { cin, cout, k } => {
                    ups.push((l.name.clone(), cin, cout, k, w, bias));
                    continue;
                }
                _ => continue,
            };
            let a = voice
                .weights
                .conv_attrs(&l.name)
                .ok_or_else(|| TtsError::Weight {
                    name: l.name.clone(),
                    detail: "no Conv node found for this weight (cannot read padding/dilation)"
                        .into(),
                })?;
            // VITS' FFN pads explicitly (a Pad node before a pad-0 Conv): "same" padding
            // (k-1)/2 left, k/2 right.
            let pads = if l.name.starts_with("enc_p.encoder.ffn_layers.") && a.pads == (0, 0) {
                ((k - 1) / 2, k / 2)
            } else {
                a.pads
            };
            let n = &l.name;
            let act = if n == "dec.conv_post" {
                Activation::Tanh
            } else if n == "dec.conv_pre" {
                // conv_pre's output is only used through the first leaky ReLU.
                Activation::LeakyRelu(0.1)
            } else if n.starts_with("enc_p.encoder.ffn_layers.") && n.ends_with(".conv_1") {
                Activation::Relu
            } else {
                Activation::None
            };
            let pre = if n == "dec.conv_post" {
                Activation::LeakyRelu(0.01)
            } else if n.starts_with("dec.resblocks.") {
                Activation::LeakyRelu(0.1)
            } else {
                Activation::None
            };
            let spec = ConvSpec {
                params: Conv1dParams {
                    cin: cin_per_group * a.group,
                    cout,
                    kernel: k,
                    stride: a.stride,
                    pad_left: pads.0,
                    pad_right: pads.1,
                    dilation: a.dilation,
                    groups: a.group,
                },
                weight: w,
                bias,
                act,
                pre,
                flops_per_row: 2.0 * (cout * cin_per_group * k) as f64,
            };
            if let Some(rest) = n.strip_prefix("flow.flows.") {
                let c: usize = rest
                    .split('.')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| TtsError::Unsupported(format!("flow layer name {n}")))?;
                let rev = coupling_rev.get(&c).copied().unwrap_or(false);
                let fh = hp.flow_hidden;
                if n.ends_with(".pre") {
                    // x0 = logical channels 0..half of z: read them from z's stored order.
                    check_shape(n, &spec.params, half, fh, 1)?;
                    let mut w2 = vec![0f32; fh * inter];
                    for o in 0..fh {
                        for ci in 0..half {
                            w2[o * inter + phys(ci, inter, rev)] = spec.weight[o * half + ci];
                        }
                    }
                    let spec = ConvSpec {
                        params: Conv1dParams {
                            cin: inter,
                            ..spec.params
                        },
                        weight: w2,
                        ..spec
                    };
                    prepare(&mut layers, n.clone(), n, spec)?;
                } else if n.ends_with(".post") {
                    // -post(..) written to the stored positions of x1, zero elsewhere, so that
                    // `z + (-post)` as a fused residual is `x1 -= post(..)`.
                    check_shape(n, &spec.params, fh, half, 1)?;
                    let mut w2 = vec![0f32; inter * fh];
                    let mut b2 = vec![0f32; inter];
                    for co in 0..half {
                        let p = phys(half + co, inter, rev);
                        for ci in 0..fh {
                            w2[p * fh + ci] = -spec.weight[co * fh + ci];
                        }
                        if let Some(b) = &spec.bias {
                            b2[p] = -b[co];
                        }
                    }
                    let spec = ConvSpec {
                        params: Conv1dParams {
                            cout: inter,
                            ..spec.params
                        },
                        weight: w2,
                        bias: Some(b2),
                        ..spec
                    };
                    prepare(&mut layers, n.clone(), n, spec)?;
                } else if n.contains(".enc.in_layers.") {
                    check_shape(n, &spec.params, fh, 2 * fh, spec.params.kernel)?;
                    prepare(&mut layers, format!("{n}#tanh"), n, spec.rows(0, fh))?;
                    prepare(
                        &mut layers,
                        format!("{n}#sigmoid"),
                        n,
                        spec.rows(fh, 2 * fh),
                    )?;
                } else if n.contains(".enc.res_skip_layers.") && cout == 2 * fh {
                    prepare(&mut layers, format!("{n}#res"), n, spec.rows(0, fh))?;
                    prepare(&mut layers, format!("{n}#skip"), n, spec.rows(fh, 2 * fh))?;
                } else if n.contains(".enc.res_skip_layers.") {
                    check_shape(n, &spec.params, fh, fh, 1)?;
                    prepare(&mut layers, format!("{n}#skip"), n, spec)?;
                } else {
                    return Err(TtsError::Unsupported(format!(
                        "unexpected flow layer {n} on the tt backend"
                    )));
                }
            } else {
                prepare(&mut layers, n.clone(), n, spec)?;
            }
        }
        for (name, cin, cout, k, w, bias) in ups {
            let idx: usize = name
                .trim_start_matches("dec.ups.")
                .parse()
                .map_err(|_| TtsError::Unsupported(format!("layer name {name}")))?;
            let u = hp.ups.get(idx).ok_or_else(|| {
                TtsError::Unsupported(format!("{name} beyond the detected upsampling layers"))
            })?;
            let params = ConvTranspose1dParams {
                cin,
                cout,
                kernel: k,
                stride: u.stride,
                padding: u.pad,
                output_padding: 0,
            };
            let prec = to_precision(setting(&name));
            let op =
                ConvTranspose1d::new(&device, params, &w, bias.as_deref(), prec, Activation::None)
                    .map_err(dev_err)?;
            layers.insert(
                name,
                DevLayer {
                    op: Op::Up(op),
                    emu: Emu::Up(params),
                    weight: w,
                    bias,
                    act: Activation::None,
                    pre: Activation::None,
                    cout,
                    out_fmt: prec.activations,
                    weights_lo: prec.weights_lo,
                    activations_lo: prec.activations_lo,
                    flops_per_row: 2.0 * (cin * cout * k) as f64,
                    transpose: true,
                },
            );
        }
        let enc = {
            let w = &voice.weights;
            // The sqrt(C) scale is folded into the table (f32, at load); the gather then copies
            // rows exactly. With Float32 encoder activations the table is a bf16 pair
            // hi + lo (hi = bf16(t), lo = bf16(t - hi): 16 significant bits), summed on the
            // device into a Float32 tensor.
            let scale = (hp.hidden as f64).sqrt() as f32;
            let table: Vec<f32> = w
                .get("enc_p.emb.weight")?
                .to_f32()
                .iter()
                .map(|&v| v * scale)
                .collect();
            let enc_fmt = act_format(setting("enc_p.encoder.attn_layers.0.conv_q"));
            let hi: Vec<f32> = table.iter().map(|&v| bf16(v)).collect();
            let up = |v: &[f32]| {
                DeviceTensor::from_host(&device, hp.n_vocab, hp.hidden, v, DataFormat::Float16_b)
                    .map_err(dev_err)
            };
            let emb = up(&hi)?;
            let emb_lo = if enc_fmt == DataFormat::Float32 {
                let lo: Vec<f32> = table.iter().zip(&hi).map(|(&t, &h)| t - h).collect();
                Some(up(&lo)?)
            } else {
                None
            };
            let ln_prec = without_split(to_precision(opts.plan.default));
            let mut el = Vec::new();
            for i in 0..hp.n_layers {
                let a = format!("enc_p.encoder.attn_layers.{i}");
                let rk = w.get(&format!("{a}.emb_rel_k"))?.to_f32();
                let rv = w.get(&format!("{a}.emb_rel_v"))?.to_f32();
                let core = format!("{a}.emb_rel_k");
                let ap = attention_precision(setting(&core));
                if ap.activations_lo {
                    // What tt-kernels' split attention needs, checked here rather than at the
                    // first synthesis.
                    let qkv_fmt: Vec<Option<DataFormat>> = ["q", "k", "v"]
                        .iter()
                        .map(|x| layers.get(&format!("{a}.conv_{x}")).map(|l| l.out_fmt))
                        .collect();
                    if ap.fidelity != MathFidelity::HiFi4
                        || qkv_fmt.iter().any(|f| *f != Some(DataFormat::Float32))
                    {
                        return Err(TtsError::Input(format!(
                            "precision plan {}: {core} has activations = \"fp32x2\" (the split attention core), which needs fidelity = \"HiFi4\" (it has {}) and Float32 q/k/v, i.e. activations = \"fp32\" or \"fp32x2\" on {a}.conv_q/k/v (they write {qkv_fmt:?}); set those or use activations = \"fp32\" on {core}",
                            opts.plan.name,
                            setting(&core).fidelity
                        )));
                    }
                }
                let ln = |n: usize| -> Result<LayerNorm> {
                    let g = w
                        .get(&format!("enc_p.encoder.norm_layers_{n}.{i}.gamma"))?
                        .to_f32();
                    let b = w
                        .get(&format!("enc_p.encoder.norm_layers_{n}.{i}.beta"))?
                        .to_f32();
                    LayerNorm::new(&device, &g, &b, 1e-5, ln_prec).map_err(dev_err)
                };
                el.push((rk, rv, ap, ln(1)?, ln(2)?));
            }
            DevEncoder {
                emb,
                emb_lo,
                layers: el,
            }
        };
        // The flow's residual stream z is written by the fused `post` residual of each
        // coupling: its format is that of the first coupling's `post`.
        let flow_fmt = hp
            .flow_layers
            .first()
            .map(|c| act_format(setting(&format!("flow.flows.{c}.post"))))
            .unwrap_or(DataFormat::Float16_b);
        let dec_fmt = act_format(setting("dec.ups.0"));
        let dec_in_fmt = act_format(setting("dec.conv_pre"));
        let dp = if opts.emulate {
            None
        } else {
            Some(dp::DevDurationPredictor::new(
                &device,
                voice,
                &plan,
                opts.plan.default,
            )?)
        };
        Ok(Self {
            enc,
            dp,
            device,
            hp,
            cpu,
            plan,
            layers,
            ledger: Mutex::new(Ledger::default()),
            all_layers,
            emulate: opts.emulate,
            emu_round: EmulatedRounding::default(),
            flow_fmt,
            dec_fmt,
            dec_in_fmt,
            flow_final_reversed,
        })
    }

    /// Chooses which roundings the emulation applies (no effect on device runs).
    pub fn set_emulated_rounding(&mut self, r: EmulatedRounding) {
        self.emu_round = r;
    }

    /// The resolved precision plan.
    pub fn plan(&self) -> &ResolvedPlan {
        &self.plan
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A snapshot of the accounting so far.
    pub fn ledger(&self) -> Ledger {
        self.ledger.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// Replaces the accounting (e.g. to leave a diagnostic run out of it).
    pub fn set_ledger(&self, ledger: Ledger) {
        if let Ok(mut l) = self.ledger.lock() {
            *l = ledger;
        }
    }

    /// Clears the accounting.
    pub fn reset_ledger(&self) {
        if let Ok(mut l) = self.ledger.lock() {
            *l = Ledger::default();
        }
    }

    fn note(&self, f: impl FnOnce(&mut Ledger)) {
        if let Ok(mut l) = self.ledger.lock() {
            f(&mut l);
        }
    }

    fn host_stage_flops(&self, stage: &'static str, prefix: &str, ids: usize) {
        let f: f64 = self
            .all_layers
            .iter()
            .filter(|l| l.name.starts_with(prefix) && l.is_compute())
            .map(|l| l.flops(ids, 0))
            .sum();
        self.note(|l| *l.host_flops.entry(stage).or_default() += f);
    }

    /// Alignment on the device ([`dp::DevDurationPredictor::align`]): `ceil(exp(logw) *
    /// length_scale)` and the integer total (a RISC-V of the spline kernel file), then the prior
    /// means expanded to frames by `expand_durations` (integer prefix sum on the device). The gather moves bf16 rows, so
    /// `m_p` travels as a bf16 hi + lo pair (`hi = bf16(m)`, `lo = bf16(m - hi)`), both expanded
    /// and summed exactly into Float32 on the device (|error| <= 2^-17 |m|). Host work: uploads
    /// of `logw` and the pair, downloads of the durations and the result (I/O).
    fn align_device(
        &self,
        dp: &dp::DevDurationPredictor,
        enc: &Encoded,
        logw: &[f32],
        length_scale: f32,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let t = enc.t;
        let inter = self.hp.inter;
        if logw.len() != t || t == 0 || enc.stats.len() != t * 2 * inter {
            return Err(TtsError::Input(format!(
                "alignment: {} log-durations and {} prior values for {t} ids",
                logw.len(),
                enc.stats.len()
            )));
        }
        let dev = &self.device;
        let lw = DeviceTensor::from_host(dev, t, 1, logw, DataFormat::Float32).map_err(dev_err)?;
        let m: Vec<f32> = enc
            .stats
            .chunks(2 * inter)
            .flat_map(|r| r[..inter].iter().copied())
            .collect();
        let hi: Vec<f32> = m.iter().map(|&v| bf16(v)).collect();
        let lo: Vec<f32> = m.iter().zip(&hi).map(|(a, b)| a - b).collect();
        let up = |part: &[f32]| DeviceTensor::from_host(dev, t, inter, part, DataFormat::Float16_b);
        let (hi, lo) = (up(&hi).map_err(dev_err)?, up(&lo).map_err(dev_err)?);
        let mut st = dp::DpStats::default();
        let al = dp.align(&lw, &[&hi, &lo], length_scale, &mut st)?;
        let ew = Eltwise::new(dev, Precision::hifi_fp32()).map_err(dev_err)?;
        let (z, s) = ew
            .run_op(
                EltwiseOp::Binary(BinaryOp::Add, Broadcast::None),
                &[&al.priors[0], &al.priors[1]],
            )
            .map_err(dev_err)?;
        self.note_dp("alignment", &st);
        self.note_stats("alignment", 0.0, &s);
        Ok((al.durations_host()?, z.to_host().map_err(dev_err)?))
    }

    /// Adds the accounting of duration-predictor / alignment launches to the ledger.
    fn note_dp(&self, stage: &'static str, st: &dp::DpStats) {
        self.note(|g| {
            g.device_flops += st.device_flops;
            *g.device_ns.entry(stage).or_default() += st.device_ns;
            g.estimate |= st.is_estimate;
            g.launches += st.launches;
        });
    }

    fn note_stats(&self, stage: &'static str, flops: f64, stats: &RunStats) {
        self.note(|g| {
            g.device_flops += flops;
            *g.device_ns.entry(stage).or_default() += stats.device_ns.unwrap_or(0);
            g.estimate |= stats.is_estimate;
            g.launches += 1;
        });
    }

    /// A stage input: uploaded (or, emulated, rounded to `fmt`).
    fn upload(&self, data: &[f32], rows: usize, cols: usize, fmt: DataFormat) -> Result<Act> {
        if self.emulate {
            return Ok(Act::Host {
                rows,
                cols,
                data: data.iter().map(|&v| round_to(fmt, v)).collect(),
                fmt,
            });
        }
        Ok(Act::Dev(
            DeviceTensor::from_host(&self.device, rows, cols, data, fmt).map_err(dev_err)?,
        ))
    }

    /// A stage output, downloaded.
    fn download(&self, a: Act) -> Result<Vec<f32>> {
        match a {
            Act::Dev(t) => t.to_host().map_err(dev_err),
            Act::Host { data, .. } => Ok(data),
        }
    }

    fn layer(&self, name: &str) -> Result<&DevLayer> {
        self.layers.get(name).ok_or_else(|| TtsError::Weight {
            name: name.into(),
            detail: "not prepared on the device".into(),
        })
    }

    /// `residual + act(conv(pre(x)) + bias)` of one prepared layer (`residual` convs only).
    fn conv(
        &self,
        stage: &'static str,
        name: &str,
        x: &Act,
        residual: Option<&Act>,
    ) -> Result<Act> {
        let l = self.layer(name)?;
        let rows_in = x.rows();
        let out = match (x, residual) {
            (Act::Dev(t), None) => {
                let (o, st) = match &l.op {
                    Op::Conv(c) => c.run(t),
                    Op::Up(u) => u.run(t),
                }
                .map_err(dev_err)?;
                self.note_layer(stage, l, rows_in, o.rows(), &st);
                Act::Dev(o)
            }
            (Act::Dev(t), Some(Act::Dev(r))) => {
                let Op::Conv(c) = &l.op else {
                    return Err(TtsError::Unsupported(format!(
                        "{name}: a fused residual needs a conv"
                    )));
                };
                let (o, st) = c.run_with_residual(t, r).map_err(dev_err)?;
                self.note_layer(stage, l, rows_in, o.rows(), &st);
                Act::Dev(o)
            }
            (
                Act::Host {
                    rows,
                    cols,
                    data,
                    fmt,
                },
                r,
            ) => {
                let r = match r {
                    None => None,
                    Some(Act::Host { data, .. }) => Some(data.as_slice()),
                    Some(Act::Dev(_)) => {
                        return Err(TtsError::Unsupported(
                            "tt backend: mixed host/device activations".into(),
                        ));
                    }
                };
                let (y, n) = emulate(l, data, *rows, *cols, *fmt, r, self.emu_round)?;
                Act::Host {
                    rows: n,
                    cols: l.cout,
                    data: y,
                    fmt: l.out_fmt,
                }
            }
            (Act::Dev(_), Some(Act::Host { .. })) => {
                return Err(TtsError::Unsupported(
                    "tt backend: mixed host/device activations".into(),
                ));
            }
        };
        if out.cols() != l.cout {
            return Err(TtsError::Unsupported(format!(
                "tt backend: {name} gave {} channels, expected {}",
                out.cols(),
                l.cout
            )));
        }
        Ok(out)
    }

    fn note_layer(
        &self,
        stage: &'static str,
        l: &DevLayer,
        rows_in: usize,
        rows_out: usize,
        st: &RunStats,
    ) {
        let flop_rows = if l.transpose { rows_in } else { rows_out };
        self.note_stats(stage, l.flops_per_row * flop_rows as f64, st);
    }

    /// One elementwise glue op writing `fmt` (fp32 DEST).
    fn eltwise(
        &self,
        stage: &'static str,
        op: EltwiseOp,
        inputs: &[&Act],
        fmt: DataFormat,
    ) -> Result<Act> {
        let devs: Vec<&DeviceTensor> = inputs
            .iter()
            .filter_map(|a| match a {
                Act::Dev(t) => Some(t),
                Act::Host { .. } => None,
            })
            .collect();
        if devs.len() == inputs.len() {
            let ew = Eltwise::new(
                &self.device,
                Precision {
                    weights: DataFormat::Float16_b,
                    activations: fmt,
                    fidelity: MathFidelity::HiFi4,
                    fp32_acc: true,
                    weights_lo: false,
                    activations_lo: false,
                    isolate_products: false,
                    guard_dest_quirk: false,
                },
            )
            .map_err(dev_err)?;
            let (o, st) = ew.run_op(op, &devs).map_err(dev_err)?;
            self.note_stats(stage, 0.0, &st);
            return Ok(Act::Dev(o));
        }
        let hosts: Vec<&[f32]> = inputs
            .iter()
            .filter_map(|a| match a {
                Act::Host { data, .. } => Some(data.as_slice()),
                Act::Dev(_) => None,
            })
            .collect();
        if hosts.len() != inputs.len() || hosts.is_empty() {
            return Err(TtsError::Unsupported(
                "tt backend: mixed host/device activations".into(),
            ));
        }
        let n = hosts[0].len();
        if hosts.iter().any(|h| h.len() != n) {
            return Err(TtsError::Unsupported(format!(
                "tt backend: eltwise {op:?} on inputs of different sizes"
            )));
        }
        let f = |i: usize| -> f64 {
            match op {
                EltwiseOp::Unary(u) => u.apply(f64::from(hosts[0][i])),
                EltwiseOp::Gate => {
                    f64::from(hosts[0][i]).tanh() * sigmoid64(f64::from(hosts[1][i]))
                }
                EltwiseOp::Sum(s) => {
                    f64::from(s) * hosts.iter().map(|h| f64::from(h[i])).sum::<f64>()
                }
                EltwiseOp::Binary(..) => f64::NAN,
            }
        };
        if matches!(op, EltwiseOp::Binary(..)) {
            return Err(TtsError::Unsupported(
                "tt backend: binary eltwise is not emulated".into(),
            ));
        }
        Ok(Act::Host {
            rows: inputs[0].rows(),
            cols: inputs[0].cols(),
            data: (0..n).map(|i| round_to(fmt, f(i) as f32)).collect(),
            fmt,
        })
    }

    fn encode_device(&self, ids: &[i64]) -> Result<Encoded> {
        let hp = &self.hp;
        let t = ids.len();
        let idx: Vec<u32> = ids
            .iter()
            .map(|&i| {
                u32::try_from(i)
                    .ok()
                    .filter(|&v| (v as usize) < hp.n_vocab)
                    .ok_or_else(|| {
                        TtsError::Input(format!("phoneme id {i} outside 0..{}", hp.n_vocab))
                    })
            })
            .collect::<Result<_>>()?;
        let ed = |e: tt_kernels::ops::embed::EmbedError| {
            TtsError::Unsupported(format!("tt device op failed: {e}"))
        };
        let buf = index_buffer(&self.device, &idx).map_err(ed)?;
        let mut xd =
            embedding_gather(&self.device, &self.enc.emb, &buf, t, EmbedScale::None).map_err(ed)?;
        self.note(|g| g.launches += 1);
        if let Some(lo) = &self.enc.emb_lo {
            let xl = embedding_gather(&self.device, lo, &buf, t, EmbedScale::None).map_err(ed)?;
            self.note(|g| g.launches += 1);
            let ew = Eltwise::new(&self.device, Precision::hifi_fp32()).map_err(dev_err)?;
            let (x, st) = ew
                .run_op(
                    EltwiseOp::Binary(BinaryOp::Add, Broadcast::None),
                    &[&xd, &xl],
                )
                .map_err(dev_err)?;
            self.note_stats("encoder", 0.0, &st);
            xd = x;
        }
        let core_flops = |name: &str| -> f64 {
            self.all_layers
                .iter()
                .filter(|l| l.name.starts_with(name))
                .map(|l| l.flops(t, 0))
                .sum()
        };
        let dev = |a: Act| -> Result<DeviceTensor> {
            match a {
                Act::Dev(t) => Ok(t),
                Act::Host { .. } => Err(TtsError::Unsupported(
                    "tt backend: host tensor in the device encoder".into(),
                )),
            }
        };
        for (i, (rk, rv, ap, ln1, ln2)) in self.enc.layers.iter().enumerate() {
            let a = format!("enc_p.encoder.attn_layers.{i}");
            let x = Act::Dev(xd);
            let q = dev(self.conv("encoder", &format!("{a}.conv_q"), &x, None)?)?;
            let k = dev(self.conv("encoder", &format!("{a}.conv_k"), &x, None)?)?;
            let v = dev(self.conv("encoder", &format!("{a}.conv_v"), &x, None)?)?;
            let kind = AttentionKind::VitsRelative {
                rel_k: rk,
                rel_v: rv,
                window: hp.window,
            };
            let (att, st) =
                attention_with_stats(&self.device, [&q, &k, &v], hp.n_heads, kind, None, ap)
                    .map_err(dev_err)?;
            self.note_stats("encoder", core_flops(&format!("{a}.emb_rel_")), &st);
            // x + conv_o(att): the residual add fused into conv_o.
            let r = dev(self.conv("encoder", &format!("{a}.conv_o"), &Act::Dev(att), Some(&x))?)?;
            let (n1, st) = ln1.run_with_stats(&r).map_err(dev_err)?;
            self.note_stats("encoder", 0.0, &st);
            let f = format!("enc_p.encoder.ffn_layers.{i}");
            let n1 = Act::Dev(n1);
            let h = self.conv("encoder", &format!("{f}.conv_1"), &n1, None)?;
            let y = dev(self.conv("encoder", &format!("{f}.conv_2"), &h, Some(&n1))?)?;
            let (n2, st) = ln2.run_with_stats(&y).map_err(dev_err)?;
            self.note_stats("encoder", 0.0, &st);
            xd = n2;
        }
        let x = xd.to_host().map_err(dev_err)?;
        let stats = self.conv("encoder", "enc_p.proj", &Act::Dev(xd), None)?;
        let stats = self.download(stats)?;
        Ok(Encoded { t, x, stats })
    }
}

/// Round to nearest even bf16.
fn bf16(v: f32) -> f32 {
    let b = v.to_bits();
    f32::from_bits(b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

/// The bf16 pair `hi + lo` of `v` (`hi = bf16(v)`, `lo = bf16(v - hi)`), summed: what `bf16x2`
/// weights represent (16 significant bits).
fn bf16x2(v: f32) -> f32 {
    let hi = bf16(v);
    hi + bf16(v - hi)
}

/// What storing `v` in `fmt` keeps (the emulation's rounding): bf16 for `Float16_b`, exact for
/// `Float32`; other formats (block floats) are not emulated and round like bf16.
fn round_to(fmt: DataFormat, v: f32) -> f32 {
    if fmt == DataFormat::Float32 {
        v
    } else {
        bf16(v)
    }
}

/// The matmul's view of a Float32 activation: truncated to TF32 (10 explicit mantissa bits).
fn tf32(v: f32) -> f32 {
    f32::from_bits(v.to_bits() & 0xffff_e000)
}

fn sigmoid64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn check_shape(name: &str, p: &Conv1dParams, cin: usize, cout: usize, k: usize) -> Result<()> {
    if p.cin == cin && p.cout == cout && p.kernel == k && p.groups == 1 {
        Ok(())
    } else {
        Err(TtsError::Unsupported(format!(
            "{name}: [{}, {}, k {}] (groups {}), the tt backend expects [{cout}, {cin}, k {k}]",
            p.cout, p.cin, p.kernel, p.groups
        )))
    }
}

/// Host emulation of one device layer: f64 reference on the stored inputs (the fused input
/// activation stored in the input's format; a Float32 input truncated to TF32 as the unpacker
/// does, or with `activations_lo` its TF32 part plus the TF32 of the rest), bf16-rounded weights
/// (with `weights_lo` the bf16 pair `hi + bf16(w - hi)`) and bias (Float32 bias with Float32
/// activations), the output activation and residual in f64, then one rounding to the output
/// format.
fn emulate(
    l: &DevLayer,
    x: &[f32],
    rows: usize,
    _cols: usize,
    in_fmt: DataFormat,
    residual: Option<&[f32]>,
    er: EmulatedRounding,
) -> Result<(Vec<f32>, usize)> {
    let xr: Vec<f32> = x
        .iter()
        .map(|&v| {
            let a = if l.pre == Activation::None {
                v
            } else {
                round_to(in_fmt, l.pre.apply(f64::from(v)) as f32)
            };
            match (
                in_fmt == DataFormat::Float32 && er.tf32_inputs,
                l.activations_lo,
            ) {
                (false, _) => a,
                (true, false) => tf32(a),
                // `a - tf32(a)` is exact (the low mantissa bits of `a`).
                (true, true) => tf32(a) + tf32(a - tf32(a)),
            }
        })
        .collect();
    let wr: Vec<f32> = match (er.weights, l.weights_lo) {
        (false, _) => l.weight.clone(),
        (true, false) => l.weight.iter().map(|&v| bf16(v)).collect(),
        (true, true) => l.weight.iter().map(|&v| bf16x2(v)).collect(),
    };
    let br: Option<Vec<f32>> = l
        .bias
        .as_ref()
        .map(|b| b.iter().map(|&v| round_to(l.out_fmt, v)).collect());
    let y = match &l.emu {
        Emu::Conv(p) => conv1d_reference(p, &xr, rows, &wr, br.as_deref()).0,
        Emu::Up(p) => conv_transpose1d_reference(p, &xr, rows, &wr, br.as_deref()).0,
    };
    if let Some(r) = residual
        && r.len() != y.len()
    {
        return Err(TtsError::Unsupported(format!(
            "tt backend: residual has {} values, the output {} (a padding mismatch)",
            r.len(),
            y.len()
        )));
    }
    let out: Vec<f32> = y
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let a = l.act.apply(v) + residual.map_or(0.0, |r| f64::from(r[i]));
            round_to(l.out_fmt, a as f32)
        })
        .collect();
    let n = out.len() / l.cout;
    Ok((out, n))
}

impl Backend for TtBackend {
    fn name(&self) -> &str {
        "tt"
    }

    fn hparams(&self) -> &Hparams {
        &self.hp
    }

    fn encode(&self, ids: &[i64]) -> Result<Encoded> {
        if self.emulate {
            self.host_stage_flops("encoder", "enc_p.", ids.len());
            return self.cpu.encode(ids);
        }
        self.encode_device(ids)
    }

    fn log_durations(
        &self,
        enc: &Encoded,
        noise: &[f32],
        speaker: Option<usize>,
    ) -> Result<Vec<f32>> {
        let Some(dp) = &self.dp else {
            // Emulation mode (tests): the stage runs on the cpu backend and is counted as host.
            self.host_stage_flops("duration predictor", "dp.", enc.t);
            return self.cpu.log_durations(enc, noise, speaker);
        };
        if speaker.is_some() {
            return Err(TtsError::Unsupported(
                "speaker conditioning of the duration predictor on the tt backend; use --backend cpu"
                    .into(),
            ));
        }
        let (logw, st) = dp.log_durations(enc, noise)?;
        self.note_dp("duration predictor", &st);
        Ok(logw)
    }

    fn align(
        &self,
        enc: &Encoded,
        logw: &[f32],
        length_scale: f32,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let Some(dp) = &self.dp else {
            // Emulation mode (tests): host alignment, as the cpu backend.
            let durations = crate::backend::host_durations(logw, length_scale);
            let m_p = crate::backend::host_expand_means(enc, &durations, self.hp.inter);
            return Ok((durations, m_p));
        };
        self.align_device(dp, enc, logw, length_scale)
    }

    fn flow_reverse(
        &self,
        z_p: &[f32],
        frames: usize,
        _speaker: Option<usize>,
    ) -> Result<Vec<f32>> {
        let inter = self.hp.inter;
        if z_p.len() != frames * inter || frames == 0 {
            return Err(TtsError::Input(format!(
                "flow input has {} values, expected {} x {inter}",
                z_p.len(),
                frames
            )));
        }
        let nl = self.hp.wn_layers;
        // z stays in one tensor; flips and the half split are folded into pre/post weights.
        let mut z = self.upload(z_p, frames, inter, self.flow_fmt)?;
        for &c in &self.hp.flow_layers {
            let p = format!("flow.flows.{c}");
            let mut h = self.conv("flow", &format!("{p}.pre"), &z, None)?;
            let mut out: Option<Act> = None;
            for i in 0..nl {
                let l = format!("{p}.enc.in_layers.{i}");
                let a = self.conv("flow", &format!("{l}#tanh"), &h, None)?;
                let b = self.conv("flow", &format!("{l}#sigmoid"), &h, None)?;
                let acts = self.eltwise("flow", EltwiseOp::Gate, &[&a, &b], self.flow_fmt)?;
                let rs = format!("{p}.enc.res_skip_layers.{i}");
                out = Some(self.conv("flow", &format!("{rs}#skip"), &acts, out.as_ref())?);
                if i + 1 < nl {
                    h = self.conv("flow", &format!("{rs}#res"), &acts, Some(&h))?;
                }
            }
            let out = out.ok_or_else(|| {
                TtsError::Unsupported("a flow coupling without WaveNet layers".into())
            })?;
            z = self.conv("flow", &format!("{p}.post"), &out, Some(&z))?;
        }
        let mut z = self.download(z)?;
        if self.flow_final_reversed {
            // An odd number of flips (not Piper's 4): the stored order is reversed.
            z.chunks_mut(inter).for_each(|r| r.reverse());
        }
        Ok(z)
    }

    fn decode(&self, z: &[f32], frames: usize, _speaker: Option<usize>) -> Result<Vec<f32>> {
        let inter = self.hp.inter;
        if z.len() != frames * inter || frames == 0 {
            return Err(TtsError::Input(format!(
                "decoder input has {} values, expected {} x {inter}",
                z.len(),
                frames
            )));
        }
        let zin = self.upload(z, frames, inter, self.dec_in_fmt)?;
        // leaky_relu(conv_pre(z), 0.1), fused.
        let mut x = self.conv("decoder", "dec.conv_pre", &zin, None)?;
        let nk = self.hp.resblock_kernels.len();
        let n_ups = self.hp.ups.len();
        for s in 0..n_ups {
            let y = self.conv("decoder", &format!("dec.ups.{s}"), &x, None)?;
            let mut rbs = Vec::with_capacity(nk);
            for j in 0..nk {
                let rb = s * nk + j;
                let mut r: Option<Act> = None;
                for ci in 0..self.hp.resblock_dilations[j].len() {
                    let cur = r.as_ref().unwrap_or(&y);
                    // x + conv(leaky_relu(x)): input activation and residual fused.
                    let next = self.conv(
                        "decoder",
                        &format!("dec.resblocks.{rb}.convs.{ci}"),
                        cur,
                        Some(cur),
                    )?;
                    r = Some(next);
                }
                rbs.push(r.ok_or_else(|| {
                    TtsError::Unsupported(format!("resblock {rb} without layers"))
                })?);
            }
            let mean = self.mean("decoder", &rbs)?;
            x = if s + 1 < n_ups {
                self.eltwise(
                    "decoder",
                    EltwiseOp::Unary(UnaryOp::LeakyRelu(0.1)),
                    &[&mean],
                    self.dec_fmt,
                )?
            } else {
                mean
            };
        }
        // tanh(conv_post(leaky_relu(x, 0.01))), both fused.
        let y = self.conv("decoder", "dec.conv_post", &x, None)?;
        self.download(y)
    }
}

impl TtBackend {
    /// Mean of the resblock outputs on the device (chained scaled sums beyond
    /// `MAX_SUM_INPUTS`).
    fn mean(&self, stage: &'static str, xs: &[Act]) -> Result<Act> {
        use tt_kernels::ops::eltwise::MAX_SUM_INPUTS;
        let n = xs.len();
        if n < 2 {
            return Err(TtsError::Unsupported(format!(
                "tt backend: a resblock mean over {n} tensors"
            )));
        }
        if n <= MAX_SUM_INPUTS {
            let refs: Vec<&Act> = xs.iter().collect();
            return self.eltwise(stage, EltwiseOp::Sum(1.0 / n as f32), &refs, self.dec_fmt);
        }
        let mut acc = {
            let refs: Vec<&Act> = xs[..MAX_SUM_INPUTS].iter().collect();
            self.eltwise(stage, EltwiseOp::Sum(1.0), &refs, self.dec_fmt)?
        };
        let mut i = MAX_SUM_INPUTS;
        while i < n {
            let end = (i + MAX_SUM_INPUTS - 1).min(n);
            let last = end == n;
            let mut refs: Vec<&Act> = vec![&acc];
            refs.extend(xs[i..end].iter());
            let scale = if last { 1.0 / n as f32 } else { 1.0 };
            acc = self.eltwise(stage, EltwiseOp::Sum(scale), &refs, self.dec_fmt)?;
            i = end;
        }
        Ok(acc)
    }
}

/// A shared handle runs as a backend too (so a caller can keep reading the [`Ledger`]).
impl Backend for std::sync::Arc<TtBackend> {
    fn name(&self) -> &str {
        "tt"
    }

    fn hparams(&self) -> &Hparams {
        &self.hp
    }

    fn encode(&self, ids: &[i64]) -> Result<Encoded> {
        self.as_ref().encode(ids)
    }

    fn log_durations(
        &self,
        enc: &Encoded,
        noise: &[f32],
        speaker: Option<usize>,
    ) -> Result<Vec<f32>> {
        self.as_ref().log_durations(enc, noise, speaker)
    }

    fn align(
        &self,
        enc: &Encoded,
        logw: &[f32],
        length_scale: f32,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        self.as_ref().align(enc, logw, length_scale)
    }

    fn flow_reverse(&self, z_p: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        self.as_ref().flow_reverse(z_p, frames, speaker)
    }

    fn decode(&self, z: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        self.as_ref().decode(z, frames, speaker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_formats_map_to_the_split_flags_and_are_valid_for_the_convs() {
        let hifi = Plan::preset("hifi").expect("preset").default;
        let p = to_precision(hifi);
        assert_eq!(
            (p.weights, p.activations, p.fidelity, p.fp32_acc),
            (
                DataFormat::Float16_b,
                DataFormat::Float32,
                MathFidelity::HiFi4,
                true
            )
        );
        assert!(p.weights_lo && p.activations_lo && p.isolate_products);
        // tt-kernels accepts it for the ops that take Float32 (conv1d, conv_transpose1d).
        assert!(p.validate_fp32("conv1d").is_ok());
        // isolate_products follows the plan key alone, with or without the split formats.
        assert!(!to_precision(hifi.with_isolated_products(false)).isolate_products);
        let bfp8_iso = LayerPrecision::new(WeightFormat::Bfp8, Fidelity::LoFi, true)
            .with_isolated_products(true);
        let q = to_precision(bfp8_iso);
        assert!(q.isolate_products && !q.weights_lo && !q.activations_lo);
        assert_eq!(q.weights, DataFormat::Bfp8_b);
        // The previous hifi: no split.
        let plain = to_precision(Plan::preset("hifi-bf16").expect("preset").default);
        assert_eq!(plain, Precision::hifi_fp32());
        // Each flag follows its own format.
        let w_only = hifi.with_activations(ActivationFormat::Fp32);
        assert_eq!(
            (
                to_precision(w_only).weights_lo,
                to_precision(w_only).activations_lo
            ),
            (true, false)
        );
        let a_only = LayerPrecision {
            weights: WeightFormat::Bf16,
            ..hifi
        };
        assert_eq!(
            (
                to_precision(a_only).weights_lo,
                to_precision(a_only).activations_lo
            ),
            (false, true)
        );
        assert_eq!(act_format(hifi), DataFormat::Float32);
    }

    #[test]
    fn ops_without_the_split_get_both_flags_cleared() {
        let p = to_precision(Plan::preset("hifi").expect("preset").default);
        assert!(p.isolate_products && p.guard_dest_quirk);
        let q = without_split(p);
        assert!(!q.weights_lo && !q.activations_lo && !q.isolate_products && !q.guard_dest_quirk);
        assert_eq!(
            q,
            Precision {
                weights_lo: false,
                activations_lo: false,
                isolate_products: false,
                guard_dest_quirk: false,
                ..p
            }
        );
        let a = attention_precision(Plan::preset("hifi").expect("preset").default);
        assert!(a.activations_lo && !a.isolate_products && !a.guard_dest_quirk);
        // An isolated-only precision is refused by the ops without the split as well.
        let iso_only = Precision {
            isolate_products: true,
            ..Precision::hifi()
        };
        assert!(iso_only.check_no_split("matmul").is_err());
        assert!(without_split(iso_only).check_no_split("matmul").is_ok());
        // What matmul / gru demand of a precision they do not split.
        assert!(q.check_no_split("matmul").is_ok());
        assert!(p.check_no_split("matmul").is_err());
        // The attention core keeps the activation split and drops the (unused) weight split.
        // `isolate_products` is cleared: the split attention path isolates its products itself.
        let a = attention_precision(Plan::preset("hifi").expect("preset").default);
        assert!(a.activations_lo && !a.weights_lo && !a.isolate_products);
    }
}
