//! The `tt` backend: VITS inference composed from tt-kernels ops on a tt-safe device (the
//! simulator by default, TT-Metal hardware through the metal provider when present).
//!
//! Every layer's weights are prepared once on the device in the format the [`Plan`] gives it,
//! with its fidelity and accumulation. What runs where is **accounted, not hidden**: each call adds
//! its device FLOPs, host FLOPs and host elementwise steps to a [`Ledger`]
//! ([`TtBackend::ledger`]), from which `tts eval` prints the on-device share.
//!
//! Current split (see `docs/pipeline-on-tensix.md`, kept in sync with [`HOST_STEPS`]):
//! - on device: the text encoder (embedding gather with the sqrt(C) scale, q/k/v/o 1x1 convs,
//!   VITS relative attention, both layer norms, FFN convs with fused ReLU, proj), every conv and
//!   conv-transpose of the flow and the decoder (WN `pre`, `in_layers`, `res_skip_layers`, `post`;
//!   `conv_pre`, `ups`, all resblock convs, `conv_post` with the final tanh fused).
//! - on the host (explicit, counted): the stochastic duration predictor (whole stage on the cpu
//!   reference backend, incl. the spline), and the elementwise glue between device ops (encoder
//!   residual adds; flow flip/split, WaveNet gating, residual/skip adds; decoder leaky ReLU,
//!   residual adds, resblock mean), because the eltwise op of tt-kernels had not landed when this
//!   was written. Activations cross the host/device boundary around those steps.
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
use tt_kernels::ops::embed::{EmbedScale, embedding_gather, index_buffer};
use tt_kernels::ops::norm::LayerNorm;
pub use tt_safe::Arch;
use tt_safe::{DataFormat, Device, MathFidelity, RunStats};

use crate::backend::{Backend, Encoded};
use crate::cpu::{CpuBackend, CpuOptions};
use crate::error::{Result, TtsError};
use crate::precision::{self, Fidelity, LayerPrecision, Plan, ResolvedPlan, WeightFormat};
use crate::voice::{Hparams, ResBlockKind, Voice};

/// Host steps of the current `tt` backend (whole stages and elementwise glue), for reports.
pub const HOST_STEPS: &[&str] = &[
    "text encoder glue: the two residual adds per layer (embedding gather, q/k/v/o convs, relative attention, layer norms, FFN convs and proj run on the device)",
    "duration predictor (whole stage on the cpu backend, incl. the rational-quadratic spline)",
    "flow glue: channel flip and split, WaveNet gating tanh(a)*sigmoid(b), residual/skip adds, x1 -= post",
    "decoder glue: leaky ReLU before each conv, residual adds, resblock mean (/3)",
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
    /// Run every device op as its host emulation instead (f64 reference on bf16-rounded inputs,
    /// weights and bias, output activation then bf16 rounding): the expected device result under
    /// the `hifi` plan up to accumulation order, for tests. Only bf16-weight plans.
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

struct DevLayer {
    op: Op,
    emu: Emu,
    weight: Vec<f32>,
    bias: Option<Vec<f32>>,
    act: Activation,
    cout: usize,
    /// FLOPs per output row (conv) or per input row (conv-transpose).
    flops_per_row: f64,
    transpose: bool,
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
    enc: DevEncoder,
}

/// rel_k, rel_v (`[2w+1, d]`), attention precision, LN1, LN2 of one encoder layer.
type EncLayer = (Vec<f32>, Vec<f32>, Precision, LayerNorm, LayerNorm);

/// Encoder parts that are not convs.
struct DevEncoder {
    emb: DeviceTensor,
    /// Per layer: rel_k, rel_v (`[2w+1, d]`), attention precision, LN1, LN2.
    layers: Vec<EncLayer>,
}

fn dev_err(e: OpError) -> TtsError {
    TtsError::Unsupported(format!("tt device op failed: {e}"))
}

/// Converts a plan setting to a tt-kernels precision (bf16 activations).
pub fn to_precision(s: LayerPrecision) -> Precision {
    Precision {
        weights: match s.weights {
            WeightFormat::Bf16 => DataFormat::Float16_b,
            WeightFormat::Bfp8 => DataFormat::Bfp8_b,
            WeightFormat::Bfp4 => DataFormat::Bfp4_b,
        },
        activations: DataFormat::Float16_b,
        fidelity: match s.fidelity {
            Fidelity::LoFi => MathFidelity::LoFi,
            Fidelity::HiFi2 => MathFidelity::HiFi2,
            Fidelity::HiFi3 => MathFidelity::HiFi3,
            Fidelity::HiFi4 => MathFidelity::HiFi4,
        },
        fp32_acc: s.fp32_acc,
    }
}

impl TtBackend {
    /// Opens the device and prepares every flow and decoder layer on it.
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
        let mut layers = HashMap::new();
        for l in &all_layers {
            if !(l.name.starts_with("flow.")
                || l.name.starts_with("dec.")
                || l.name.starts_with("enc_p."))
            {
                continue;
            }
            if !matches!(
                l.kind,
                precision::LayerKind::Conv { .. } | precision::LayerKind::ConvTranspose { .. }
            ) {
                continue;
            }
            let setting = plan.get(&l.name).unwrap_or(opts.plan.default);
            let prec = to_precision(setting);
            let w = voice.weights.get(&format!("{}.weight", l.name))?.to_f32();
            let bias_name = format!("{}.bias", l.name);
            let bias = if voice.weights.has(&bias_name) {
                Some(voice.weights.get(&bias_name)?.to_f32())
            } else {
                None
            };
            let act = if l.name == "dec.conv_post" {
                Activation::Tanh
            } else if l.name.starts_with("enc_p.encoder.ffn_layers.") && l.name.ends_with(".conv_1")
            {
                Activation::Relu
            } else {
                Activation::None
            };
            let dl = match l.kind {
                precision::LayerKind::Conv {
                    cout,
                    cin_per_group,
                    k,
                } => {
                    let a = voice
                        .weights
                        .conv_attrs(&l.name)
                        .ok_or_else(|| TtsError::Weight {
                            name: l.name.clone(),
                            detail:
                                "no Conv node found for this weight (cannot read padding/dilation)"
                                    .into(),
                        })?;
                    // VITS' FFN pads explicitly (a Pad node before a pad-0 Conv): "same"
                    // padding (k-1)/2 left, k/2 right.
                    let pads =
                        if l.name.starts_with("enc_p.encoder.ffn_layers.") && a.pads == (0, 0) {
                            ((k - 1) / 2, k / 2)
                        } else {
                            a.pads
                        };
                    let params = Conv1dParams {
                        cin: cin_per_group * a.group,
                        cout,
                        kernel: k,
                        stride: a.stride,
                        pad_left: pads.0,
                        pad_right: pads.1,
                        dilation: a.dilation,
                        groups: a.group,
                    };
                    let op = Conv1d::new(&device, params, &w, bias.as_deref(), prec, act)
                        .map_err(dev_err)?;
                    DevLayer {
                        op: Op::Conv(op),
                        emu: Emu::Conv(params),
                        weight: w,
                        bias,
                        act,
                        cout,
                        flops_per_row: 2.0 * (cout * cin_per_group * k) as f64,
                        transpose: false,
                    }
                }
                precision::LayerKind::ConvTranspose { cin, cout, k } => {
                    let idx: usize = l
                        .name
                        .trim_start_matches("dec.ups.")
                        .parse()
                        .map_err(|_| TtsError::Unsupported(format!("layer name {}", l.name)))?;
                    let u = hp.ups.get(idx).ok_or_else(|| {
                        TtsError::Unsupported(format!(
                            "{} beyond the detected upsampling layers",
                            l.name
                        ))
                    })?;
                    let params = ConvTranspose1dParams {
                        cin,
                        cout,
                        kernel: k,
                        stride: u.stride,
                        padding: u.pad,
                        output_padding: 0,
                    };
                    let op = ConvTranspose1d::new(&device, params, &w, bias.as_deref(), prec, act)
                        .map_err(dev_err)?;
                    DevLayer {
                        op: Op::Up(op),
                        emu: Emu::Up(params),
                        weight: w,
                        bias,
                        act,
                        cout,
                        flops_per_row: 2.0 * (cin * cout * k) as f64,
                        transpose: true,
                    }
                }
                _ => continue,
            };
            layers.insert(l.name.clone(), dl);
        }
        let enc = {
            let w = &voice.weights;
            let emb = DeviceTensor::from_host(
                &device,
                hp.n_vocab,
                hp.hidden,
                &w.get("enc_p.emb.weight")?.to_f32(),
                DataFormat::Float16_b,
            )
            .map_err(dev_err)?;
            let ln_prec = to_precision(opts.plan.default);
            let mut el = Vec::new();
            for i in 0..hp.n_layers {
                let a = format!("enc_p.encoder.attn_layers.{i}");
                let rk = w.get(&format!("{a}.emb_rel_k"))?.to_f32();
                let rv = w.get(&format!("{a}.emb_rel_v"))?.to_f32();
                let ap = to_precision(
                    plan.get(&format!("{a}.emb_rel_k"))
                        .unwrap_or(opts.plan.default),
                );
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
            DevEncoder { emb, layers: el }
        };
        Ok(Self {
            enc,
            device,
            hp,
            cpu,
            plan,
            layers,
            ledger: Mutex::new(Ledger::default()),
            all_layers,
            emulate: opts.emulate,
        })
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

    fn host_ew(&self, step: &'static str, n: usize) {
        self.note(|l| *l.host_elementwise.entry(step).or_default() += n as u64);
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

    /// Runs one device layer on a host `[rows, cin]` input; returns `[rows_out, cout]`.
    fn run(
        &self,
        stage: &'static str,
        name: &str,
        x: &[f32],
        rows: usize,
    ) -> Result<(Vec<f32>, usize)> {
        let l = self.layers.get(name).ok_or_else(|| TtsError::Weight {
            name: name.into(),
            detail: "not prepared on the device".into(),
        })?;
        let cin = x.len() / rows.max(1);
        if self.emulate {
            return Ok(emulate(l, x, rows));
        }
        let input = DeviceTensor::from_host(&self.device, rows, cin, x, DataFormat::Float16_b)
            .map_err(dev_err)?;
        let out = self.run_t(stage, name, &input)?;
        let rows_out = out.rows();
        Ok((out.to_host().map_err(dev_err)?, rows_out))
    }

    /// Runs one device layer on a device tensor.
    fn run_t(&self, stage: &'static str, name: &str, input: &DeviceTensor) -> Result<DeviceTensor> {
        let l = self.layers.get(name).ok_or_else(|| TtsError::Weight {
            name: name.into(),
            detail: "not prepared on the device".into(),
        })?;
        let rows = input.rows();
        let (out, stats): (DeviceTensor, RunStats) = match &l.op {
            Op::Conv(c) => c.run(input),
            Op::Up(u) => u.run(input),
        }
        .map_err(dev_err)?;
        let rows_out = out.rows();
        let flop_rows = if l.transpose { rows } else { rows_out };
        debug_assert_eq!(out.cols(), l.cout);
        self.note(|g| {
            g.device_flops += l.flops_per_row * flop_rows as f64;
            *g.device_ns.entry(stage).or_default() += stats.device_ns.unwrap_or(0);
            g.estimate |= stats.is_estimate;
            g.launches += 1;
        });
        Ok(out)
    }

    fn note_stats(&self, stage: &'static str, flops: f64, stats: &RunStats) {
        self.note(|g| {
            g.device_flops += flops;
            *g.device_ns.entry(stage).or_default() += stats.device_ns.unwrap_or(0);
            g.estimate |= stats.is_estimate;
            g.launches += 1;
        });
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
        let mut xd = embedding_gather(
            &self.device,
            &self.enc.emb,
            &buf,
            t,
            EmbedScale::SqrtChannels,
        )
        .map_err(ed)?;
        self.note(|g| g.launches += 1);
        let mut x = xd.to_host().map_err(dev_err)?;
        let upload = |v: &[f32]| {
            DeviceTensor::from_host(&self.device, t, hp.hidden, v, DataFormat::Float16_b)
                .map_err(dev_err)
        };
        let core_flops = |name: &str| -> f64 {
            self.all_layers
                .iter()
                .filter(|l| l.name.starts_with(name))
                .map(|l| l.flops(t, 0))
                .sum()
        };
        for (i, (rk, rv, ap, ln1, ln2)) in self.enc.layers.iter().enumerate() {
            let a = format!("enc_p.encoder.attn_layers.{i}");
            let q = self.run_t("encoder", &format!("{a}.conv_q"), &xd)?;
            let k = self.run_t("encoder", &format!("{a}.conv_k"), &xd)?;
            let v = self.run_t("encoder", &format!("{a}.conv_v"), &xd)?;
            let kind = AttentionKind::VitsRelative {
                rel_k: rk,
                rel_v: rv,
                window: hp.window,
            };
            let (att, st) =
                attention_with_stats(&self.device, [&q, &k, &v], hp.n_heads, kind, None, ap)
                    .map_err(dev_err)?;
            self.note_stats("encoder", core_flops(&format!("{a}.emb_rel_")), &st);

            let o = self
                .run_t("encoder", &format!("{a}.conv_o"), &att)?
                .to_host()
                .map_err(dev_err)?;
            same_len("attention output", &x, &o)?;
            x.iter_mut().zip(&o).for_each(|(a, b)| *a += b);
            self.host_ew("encoder residual adds", o.len());
            let (n1, st) = ln1.run_with_stats(&upload(&x)?).map_err(dev_err)?;
            self.note_stats("encoder", 0.0, &st);
            let f = format!("enc_p.encoder.ffn_layers.{i}");
            let h = self.run_t("encoder", &format!("{f}.conv_1"), &n1)?;
            let y = self
                .run_t("encoder", &format!("{f}.conv_2"), &h)?
                .to_host()
                .map_err(dev_err)?;
            x = n1.to_host().map_err(dev_err)?;
            same_len("FFN output", &x, &y)?;
            x.iter_mut().zip(&y).for_each(|(a, b)| *a += b);
            self.host_ew("encoder residual adds", y.len());
            let (n2, st) = ln2.run_with_stats(&upload(&x)?).map_err(dev_err)?;
            self.note_stats("encoder", 0.0, &st);
            x = n2.to_host().map_err(dev_err)?;
            xd = n2;
        }
        let stats = self
            .run_t("encoder", "enc_p.proj", &xd)?
            .to_host()
            .map_err(dev_err)?;
        Ok(Encoded { t, x, stats })
    }
}

/// Round to nearest even bf16.
fn bf16(v: f32) -> f32 {
    let b = v.to_bits();
    f32::from_bits(b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

fn emulate(l: &DevLayer, x: &[f32], rows: usize) -> (Vec<f32>, usize) {
    let xr: Vec<f32> = x.iter().map(|&v| bf16(v)).collect();
    let wr: Vec<f32> = l.weight.iter().map(|&v| bf16(v)).collect();
    let br: Option<Vec<f32>> = l
        .bias
        .as_ref()
        .map(|b| b.iter().map(|&v| bf16(v)).collect());
    let y = match &l.emu {
        Emu::Conv(p) => conv1d_reference(p, &xr, rows, &wr, br.as_deref()).0,
        Emu::Up(p) => conv_transpose1d_reference(p, &xr, rows, &wr, br.as_deref()).0,
    };
    let out: Vec<f32> = y.iter().map(|&v| bf16(l.act.apply(v) as f32)).collect();
    let n = out.len() / l.cout;
    (out, n)
}

fn same_len(what: &str, a: &[f32], b: &[f32]) -> Result<()> {
    if a.len() == b.len() {
        Ok(())
    } else {
        Err(TtsError::Unsupported(format!(
            "tt backend: {what} has {} values, the residual {} (a padding mismatch)",
            b.len(),
            a.len()
        )))
    }
}

fn leaky(x: &[f32], slope: f32) -> Vec<f32> {
    x.iter()
        .map(|&v| if v >= 0.0 { v } else { v * slope })
        .collect()
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
        self.host_stage_flops("duration predictor", "dp.", enc.t);
        self.cpu.log_durations(enc, noise, speaker)
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
        let half = inter / 2;
        let fh = self.hp.flow_hidden;
        let nl = self.hp.wn_layers;
        let mut z = z_p.to_vec();
        for &c in &self.hp.flow_layers {
            z.chunks_mut(inter).for_each(|r| r.reverse());
            self.host_ew("flow flip", z.len());
            let x0: Vec<f32> = z
                .chunks(inter)
                .flat_map(|r| r[..half].iter().copied())
                .collect();
            let p = format!("flow.flows.{c}");
            let (mut h, _) = self.run("flow", &format!("{p}.pre"), &x0, frames)?;
            let mut out = vec![0.0f32; frames * fh];
            for i in 0..nl {
                let (a, _) = self.run("flow", &format!("{p}.enc.in_layers.{i}"), &h, frames)?;
                let acts: Vec<f32> = a
                    .chunks(2 * fh)
                    .flat_map(|r| (0..fh).map(move |k| r[k].tanh() * sigmoid(r[fh + k])))
                    .collect();
                self.host_ew("flow gating", acts.len());
                let (rs, _) = self.run(
                    "flow",
                    &format!("{p}.enc.res_skip_layers.{i}"),
                    &acts,
                    frames,
                )?;
                if i + 1 < nl {
                    for ((hr, orow), r) in h
                        .chunks_mut(fh)
                        .zip(out.chunks_mut(fh))
                        .zip(rs.chunks(2 * fh))
                    {
                        hr.iter_mut().zip(&r[..fh]).for_each(|(a, b)| *a += b);
                        orow.iter_mut().zip(&r[fh..]).for_each(|(a, b)| *a += b);
                    }
                    self.host_ew("flow adds", rs.len());
                } else {
                    out.iter_mut().zip(&rs).for_each(|(a, b)| *a += b);
                    self.host_ew("flow adds", rs.len());
                }
            }
            let (m, _) = self.run("flow", &format!("{p}.post"), &out, frames)?;
            for (zr, mr) in z.chunks_mut(inter).zip(m.chunks(half)) {
                zr[half..].iter_mut().zip(mr).for_each(|(a, b)| *a -= b);
            }
            self.host_ew("flow adds", frames * half);
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
        let (mut x, mut n) = self.run("decoder", "dec.conv_pre", z, frames)?;
        let nk = self.hp.resblock_kernels.len();
        for (s, _) in self.hp.ups.iter().enumerate() {
            let xl = leaky(&x, 0.1);
            self.host_ew("decoder leaky relu", xl.len());
            let (y, n2) = self.run("decoder", &format!("dec.ups.{s}"), &xl, n)?;
            n = n2;
            let mut acc = vec![0.0f32; y.len()];
            for j in 0..nk {
                let rb = s * nk + j;
                let mut r = y.clone();
                for ci in 0..self.hp.resblock_dilations[j].len() {
                    let rl = leaky(&r, 0.1);
                    let (d, _) =
                        self.run("decoder", &format!("dec.resblocks.{rb}.convs.{ci}"), &rl, n)?;
                    r.iter_mut().zip(&d).for_each(|(a, b)| *a += b);
                    self.host_ew("decoder leaky relu", rl.len());
                    self.host_ew("decoder residual adds", d.len());
                }
                acc.iter_mut().zip(&r).for_each(|(a, b)| *a += b);
                self.host_ew("decoder resblock mean", r.len());
            }
            x = acc.iter().map(|v| v / nk as f32).collect();
        }
        let xl = leaky(&x, 0.01);
        self.host_ew("decoder leaky relu", xl.len());
        let (y, _) = self.run("decoder", "dec.conv_post", &xl, n)?;
        Ok(y)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
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

    fn flow_reverse(&self, z_p: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        self.as_ref().flow_reverse(z_p, frames, speaker)
    }

    fn decode(&self, z: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>> {
        self.as_ref().decode(z, frames, speaker)
    }
}
