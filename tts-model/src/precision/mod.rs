//! Precision plans: per-layer weight format (bf16, bfp8_b, bfp4_b), math fidelity (LoFi..HiFi4),
//! fp32 accumulation and activation format (bf16, fp32; fp32 needs fp32 accumulation; a plan
//! without the `activations` key means bf16) for a voice, and the report of what share of the
//! model runs how. [`search`] finds a plan automatically under quality gates (the `auto` plan).
//!
//! A plan is a small TOML file (see `tts-model/plans/`): a `[default]` setting and an ordered list
//! of `[[layer]]` rules whose `match` glob selects layers by name; later rules override earlier ones
//! field by field. The presets `hifi`, `bfp8-lofi` and `auto` are embedded ([`Plan::preset`]); any other
//! file is loaded with [`Plan::load`]. [`Plan::resolve`] applies a plan to a voice's layers.
//!
//! Layers are the voice's weight tensors that multiply activations, named by module path without
//! `.weight` (`dec.ups.0`, `flow.flows.6.enc.in_layers.2`, `enc_p.emb`), plus the attention
//! cores `enc_p.encoder.attn_layers.N.emb_rel_k` (scores q.k and q.rel_k) and `...emb_rel_v`
//! (p.v and p.rel_v). Bias and norm vectors are always bf16 and are counted as such in the report.
//! FLOPs are counted for an utterance of `ids` phoneme ids and `frames` frames (2 per MAC).
#![deny(unsafe_code)]

pub mod search;

use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::voice::{Hparams, Voice};

/// Weight storage format on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum WeightFormat {
    /// bfloat16.
    #[serde(rename = "bf16")]
    Bf16,
    /// BlockFloat8: 16 values share an 8-bit exponent, 7-bit mantissa + sign.
    #[serde(rename = "bfp8_b")]
    Bfp8,
    /// BlockFloat4: 16 values share an 8-bit exponent, 3-bit mantissa + sign.
    #[serde(rename = "bfp4_b")]
    Bfp4,
}

impl WeightFormat {
    /// All formats, widest first.
    pub const ALL: [WeightFormat; 3] = [WeightFormat::Bf16, WeightFormat::Bfp8, WeightFormat::Bfp4];

    /// Bytes per element in tiles (bfp: one exponent byte per 16 elements: 1088 / 576 bytes per
    /// 32x32 tile).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            WeightFormat::Bf16 => 2.0,
            WeightFormat::Bfp8 => 1088.0 / 1024.0,
            WeightFormat::Bfp4 => 576.0 / 1024.0,
        }
    }

    /// Whether the format is BFP8 or smaller.
    pub fn is_bfp8_or_smaller(self) -> bool {
        !matches!(self, WeightFormat::Bf16)
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightFormat::Bf16 => "bf16",
            WeightFormat::Bfp8 => "bfp8_b",
            WeightFormat::Bfp4 => "bfp4_b",
        })
    }
}

/// Matmul math fidelity (number of multiplier phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub enum Fidelity {
    /// One phase (5 x 7 mantissa bits).
    LoFi,
    /// Two phases.
    HiFi2,
    /// Three phases.
    HiFi3,
    /// Four phases (exact bf16 products).
    HiFi4,
}

impl Fidelity {
    /// All fidelities, lowest first.
    pub const ALL: [Fidelity; 4] = [
        Fidelity::LoFi,
        Fidelity::HiFi2,
        Fidelity::HiFi3,
        Fidelity::HiFi4,
    ];
}

impl fmt::Display for Fidelity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Format of a layer's activations (its input and output tensors on the device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Deserialize)]
pub enum ActivationFormat {
    /// bfloat16 (the default: what every plan without an `activations` key means).
    #[default]
    #[serde(rename = "bf16")]
    Bf16,
    /// IEEE float32 (needs `fp32_acc = true`: a bf16 DEST would round the result anyway).
    #[serde(rename = "fp32")]
    Fp32,
}

impl ActivationFormat {
    /// Both formats, narrowest first.
    pub const ALL: [ActivationFormat; 2] = [ActivationFormat::Bf16, ActivationFormat::Fp32];
}

impl fmt::Display for ActivationFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActivationFormat::Bf16 => "bf16",
            ActivationFormat::Fp32 => "fp32",
        })
    }
}

/// The setting of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LayerPrecision {
    /// Weight format.
    pub weights: WeightFormat,
    /// Math fidelity.
    pub fidelity: Fidelity,
    /// FP32 accumulation in DEST.
    pub fp32_acc: bool,
    /// Activation (input/output tensor) format; `Fp32` requires `fp32_acc`.
    pub activations: ActivationFormat,
}

impl LayerPrecision {
    /// A setting with bf16 activations (what plans without an `activations` key mean).
    pub const fn new(weights: WeightFormat, fidelity: Fidelity, fp32_acc: bool) -> Self {
        Self {
            weights,
            fidelity,
            fp32_acc,
            activations: ActivationFormat::Bf16,
        }
    }

    /// The same setting with other activations.
    pub const fn with_activations(self, activations: ActivationFormat) -> Self {
        Self {
            activations,
            ..self
        }
    }

    /// Whether the combination is allowed: fp32 activations need fp32 accumulation.
    pub fn is_valid(&self) -> bool {
        self.activations == ActivationFormat::Bf16 || self.fp32_acc
    }
}

impl fmt::Display for LayerPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}{}{}",
            self.weights,
            self.fidelity,
            if self.fp32_acc { "/fp32acc" } else { "" },
            if self.activations == ActivationFormat::Fp32 {
                "/fp32act"
            } else {
                ""
            }
        )
    }
}

/// Errors of plan loading and resolution.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plan file could not be read.
    #[error(
        "cannot read precision plan {path}: {source} (pass a preset name: {presets}, or a .toml path)"
    )]
    Io {
        /// The file.
        path: String,
        /// OS error.
        #[source]
        source: std::io::Error,
        /// Preset names.
        presets: String,
    },
    /// The TOML is malformed or has unknown fields/values.
    #[error(
        "invalid precision plan {origin}: {detail} (weights: bf16, bfp8_b, bfp4_b; fidelities: LoFi, HiFi2, HiFi3, HiFi4; activations: bf16, fp32)"
    )]
    Parse {
        /// Preset name or path.
        origin: String,
        /// What the parser said.
        detail: String,
    },
    /// A rule's glob matches no layer of the voice.
    #[error(
        "precision plan {plan}: rule `{pattern}` matches no layer of this voice (layer names look like `dec.resblocks.0.convs.1`; run `tts plan --voice V` to list them)"
    )]
    NoMatch {
        /// Plan name.
        plan: String,
        /// The glob.
        pattern: String,
    },
    /// A layer ends up with fp32 activations but bf16 accumulation.
    #[error(
        "precision plan {plan}: layer `{layer}` has activations = \"fp32\" but fp32_acc = false ({origin}); fp32 activations need fp32 accumulation in DEST: set fp32_acc = true there or use activations = \"bf16\""
    )]
    Fp32ActivationsNeedFp32Acc {
        /// Plan name.
        plan: String,
        /// The layer (or `[default]`).
        layer: String,
        /// Where the conflicting setting comes from.
        origin: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetting {
    weights: WeightFormat,
    fidelity: Fidelity,
    fp32_acc: bool,
    #[serde(default)]
    activations: ActivationFormat,
}

/// One `[[layer]]` rule: a glob and the fields it overrides.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Glob over layer names.
    #[serde(rename = "match")]
    pub pattern: String,
    /// Weight format override.
    pub weights: Option<WeightFormat>,
    /// Fidelity override.
    pub fidelity: Option<Fidelity>,
    /// Accumulation override.
    pub fp32_acc: Option<bool>,
    /// Activation format override.
    pub activations: Option<ActivationFormat>,
    /// Why this exception exists (shown in the report).
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    name: String,
    description: Option<String>,
    default: RawSetting,
    #[serde(default)]
    layer: Vec<Rule>,
}

/// A precision plan (not yet applied to a voice).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Plan name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Setting of layers no rule touches.
    pub default: LayerPrecision,
    /// Ordered overrides.
    pub rules: Vec<Rule>,
}

/// Embedded preset plans: (name, TOML). `auto` is the output of the auto planner
/// (`tts plan --search auto --out tts-model/plans/auto.toml`; its header says whether it met the
/// quality gates).
pub const PRESETS: [(&str, &str); 3] = [
    ("hifi", include_str!("../../plans/hifi.toml")),
    ("bfp8-lofi", include_str!("../../plans/bfp8-lofi.toml")),
    ("auto", include_str!("../../plans/auto.toml")),
];

impl Plan {
    /// Parses a plan from TOML (`origin` names it in errors).
    pub fn from_toml(text: &str, origin: &str) -> Result<Plan, PlanError> {
        let raw: RawPlan = toml::from_str(text).map_err(|e| PlanError::Parse {
            origin: origin.into(),
            detail: e.to_string(),
        })?;
        let plan = Plan {
            name: raw.name,
            description: raw.description.unwrap_or_default(),
            default: LayerPrecision {
                weights: raw.default.weights,
                fidelity: raw.default.fidelity,
                fp32_acc: raw.default.fp32_acc,
                activations: raw.default.activations,
            },
            rules: raw.layer,
        };
        plan.validate(origin)?;
        Ok(plan)
    }

    /// Checks what can be checked without a voice: the default setting, and rules that set both
    /// `activations = "fp32"` and `fp32_acc = false`. [`Plan::resolve`] checks every layer.
    pub fn validate(&self, origin: &str) -> Result<(), PlanError> {
        if !self.default.is_valid() {
            return Err(PlanError::Fp32ActivationsNeedFp32Acc {
                plan: self.name.clone(),
                layer: "[default]".into(),
                origin: origin.into(),
            });
        }
        for r in &self.rules {
            if r.activations == Some(ActivationFormat::Fp32) && r.fp32_acc == Some(false) {
                return Err(PlanError::Fp32ActivationsNeedFp32Acc {
                    plan: self.name.clone(),
                    layer: r.pattern.clone(),
                    origin: format!("rule `{}` in {origin}", r.pattern),
                });
            }
        }
        Ok(())
    }

    /// The plan as TOML that [`Plan::from_toml`] reads back to an equal plan; `header` lines are
    /// written first as `#` comments.
    pub fn to_toml(&self, header: &[String]) -> String {
        let q = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        for h in header {
            for line in h.lines() {
                out.push_str(if line.is_empty() { "#" } else { "# " });
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str(&format!("name = {}\n", q(&self.name)));
        out.push_str(&format!(
            "description = {}\n\n[default]\n",
            q(&self.description)
        ));
        let d = &self.default;
        out.push_str(&format!(
            "weights = \"{}\"\nfidelity = \"{}\"\nfp32_acc = {}\nactivations = \"{}\"\n",
            d.weights, d.fidelity, d.fp32_acc, d.activations
        ));
        for r in &self.rules {
            out.push_str(&format!("\n[[layer]]\nmatch = {}\n", q(&r.pattern)));
            if let Some(w) = r.weights {
                out.push_str(&format!("weights = \"{w}\"\n"));
            }
            if let Some(f) = r.fidelity {
                out.push_str(&format!("fidelity = \"{f}\"\n"));
            }
            if let Some(a) = r.fp32_acc {
                out.push_str(&format!("fp32_acc = {a}\n"));
            }
            if let Some(a) = r.activations {
                out.push_str(&format!("activations = \"{a}\"\n"));
            }
            if let Some(why) = &r.reason {
                out.push_str(&format!("reason = {}\n", q(why)));
            }
        }
        out
    }

    /// An embedded preset by name.
    pub fn preset(name: &str) -> Option<Plan> {
        PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(n, text)| Plan::from_toml(text, n).ok())
    }

    /// Loads a plan file.
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = std::fs::read_to_string(path).map_err(|source| PlanError::Io {
            path: path.display().to_string(),
            source,
            presets: preset_names(),
        })?;
        Plan::from_toml(&text, &path.display().to_string())
    }

    /// A preset name, or else a path to a TOML file.
    pub fn from_arg(arg: &str) -> Result<Plan, PlanError> {
        match Plan::preset(arg) {
            Some(p) => Ok(p),
            None => Plan::load(Path::new(arg)),
        }
    }

    /// The setting of one layer name (default, then each matching rule in order).
    pub fn setting_for(&self, layer: &str) -> LayerPrecision {
        let mut s = self.default;
        for r in self.rules.iter().filter(|r| glob_match(&r.pattern, layer)) {
            if let Some(w) = r.weights {
                s.weights = w;
            }
            if let Some(f) = r.fidelity {
                s.fidelity = f;
            }
            if let Some(a) = r.fp32_acc {
                s.fp32_acc = a;
            }
            if let Some(a) = r.activations {
                s.activations = a;
            }
        }
        s
    }

    /// Applies the plan to a list of layers; every rule must match at least one layer.
    pub fn resolve(&self, layers: &[Layer]) -> Result<ResolvedPlan, PlanError> {
        for r in &self.rules {
            if !layers.iter().any(|l| glob_match(&r.pattern, &l.name)) {
                return Err(PlanError::NoMatch {
                    plan: self.name.clone(),
                    pattern: r.pattern.clone(),
                });
            }
        }
        let resolved: Vec<(Layer, LayerPrecision)> = layers
            .iter()
            .map(|l| (l.clone(), self.setting_for(&l.name)))
            .collect();
        if let Some((l, _)) = resolved.iter().find(|(_, s)| !s.is_valid()) {
            return Err(PlanError::Fp32ActivationsNeedFp32Acc {
                plan: self.name.clone(),
                layer: l.name.clone(),
                origin: "after applying the rules in order".into(),
            });
        }
        Ok(ResolvedPlan {
            name: self.name.clone(),
            layers: resolved,
        })
    }
}

/// Names of the embedded presets, comma separated.
pub fn preset_names() -> String {
    PRESETS
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Glob match: `*` any run of characters (dots included), `?` exactly one character.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// What a layer computes (for FLOP counting and for the backend).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// Table lookup (no FLOPs).
    Embedding,
    /// Conv1d (a 1x1 conv is a matmul): `[cout, cin/groups, k]`.
    Conv {
        /// Output channels.
        cout: usize,
        /// Input channels per group.
        cin_per_group: usize,
        /// Taps.
        k: usize,
    },
    /// ConvTranspose1d `[cin, cout, k]`, `stride`.
    ConvTranspose {
        /// Input channels.
        cin: usize,
        /// Output channels.
        cout: usize,
        /// Taps.
        k: usize,
    },
    /// Attention core over `hidden` channels: a `[t, t]` product with banded relative terms.
    AttentionCore {
        /// Model width.
        hidden: usize,
        /// Relative positions (2 window + 1).
        rel: usize,
    },
}

/// Rows a layer runs over, in units of the utterance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Once per phoneme id.
    Ids,
    /// Once per frame times an upsampling factor (1 = frames).
    Frames(usize),
}

/// One layer of a voice.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Module path without `.weight`.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Rows it runs over (output rows for convs, input rows for conv-transposes).
    pub rate: Rate,
    /// Parameters of the weight tensor.
    pub params: usize,
}

impl Layer {
    /// Whether it is a matmul/conv layer (fidelity applies).
    pub fn is_compute(&self) -> bool {
        !matches!(self.kind, LayerKind::Embedding)
    }

    /// FLOPs for an utterance of `ids` ids and `frames` frames (2 per multiply-accumulate).
    pub fn flops(&self, ids: usize, frames: usize) -> f64 {
        let rows = match self.rate {
            Rate::Ids => ids,
            Rate::Frames(f) => frames * f,
        } as f64;
        match self.kind {
            LayerKind::Embedding => 0.0,
            LayerKind::Conv {
                cout,
                cin_per_group,
                k,
            } => 2.0 * rows * (cout * cin_per_group * k) as f64,
            LayerKind::ConvTranspose { cin, cout, k } => 2.0 * rows * (cin * cout * k) as f64,
            LayerKind::AttentionCore { hidden, rel } => {
                2.0 * rows * (ids + rel) as f64 * hidden as f64
            }
        }
    }
}

/// The layers of a voice, in weight-name order.
pub fn layers(voice: &Voice) -> Vec<Layer> {
    let hp = &voice.hparams;
    let mut out = Vec::new();
    for name in voice.weights.names() {
        let Ok(dims) = voice.weights.dims(name) else {
            continue;
        };
        let params: usize = dims.iter().product();
        let (module, kind) = if let Some(m) = name.strip_suffix(".weight") {
            match dims {
                [_, _] if m.ends_with(".emb") => (m, LayerKind::Embedding),
                [a, b, k] if m.starts_with("dec.ups.") => (
                    m,
                    LayerKind::ConvTranspose {
                        cin: *a,
                        cout: *b,
                        k: *k,
                    },
                ),
                [a, b, k] => (
                    m,
                    LayerKind::Conv {
                        cout: *a,
                        cin_per_group: *b,
                        k: *k,
                    },
                ),
                _ => continue,
            }
        } else if name.ends_with(".emb_rel_k") || name.ends_with(".emb_rel_v") {
            (
                name,
                LayerKind::AttentionCore {
                    hidden: hp.hidden,
                    rel: 2 * hp.window + 1,
                },
            )
        } else {
            continue;
        };
        out.push(Layer {
            name: module.to_string(),
            kind,
            rate: rate_of(module, hp),
            params,
        });
    }
    out
}

fn rate_of(module: &str, hp: &Hparams) -> Rate {
    let strides: Vec<usize> = hp.ups.iter().map(|u| u.stride).collect();
    let up_to = |n: usize| strides.iter().take(n).product::<usize>();
    let index = |prefix: &str| -> Option<usize> {
        module.strip_prefix(prefix)?.split('.').next()?.parse().ok()
    };
    if module.starts_with("enc_p.") || module.starts_with("dp.") {
        Rate::Ids
    } else if let Some(i) = index("dec.ups.") {
        Rate::Frames(up_to(i))
    } else if let Some(r) = index("dec.resblocks.") {
        let per_stage = hp.resblock_kernels.len().max(1);
        Rate::Frames(up_to(r / per_stage + 1))
    } else if module.starts_with("dec.conv_post") {
        Rate::Frames(up_to(strides.len()))
    } else {
        Rate::Frames(1)
    }
}

/// A plan applied to a voice's layers.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedPlan {
    /// Plan name.
    pub name: String,
    /// Each layer and its setting.
    pub layers: Vec<(Layer, LayerPrecision)>,
}

/// Shares of a resolved plan.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanReport {
    /// Plan name.
    pub name: String,
    /// Compute layers (matmul/conv/attention).
    pub compute_layers: usize,
    /// Per fidelity: (layers, FLOPs) over compute layers.
    pub by_fidelity: Vec<(Fidelity, usize, f64)>,
    /// Per weight format: (parameters, bytes) over all weights; bias/norm vectors as bf16.
    pub by_format: Vec<(WeightFormat, usize, f64)>,
    /// Total FLOPs of the utterance.
    pub total_flops: f64,
    /// Parameters in bias/norm vectors (always bf16, included in `by_format`).
    pub vector_params: usize,
    /// Compute layers not in LoFi, with their setting.
    pub exceptions: Vec<(String, LayerPrecision)>,
    /// Compute layers with fp32 activations.
    pub fp32_activation_layers: usize,
}

impl ResolvedPlan {
    /// The setting of a layer (None if the voice has no such layer).
    pub fn get(&self, name: &str) -> Option<LayerPrecision> {
        self.layers
            .iter()
            .find(|(l, _)| l.name == name)
            .map(|(_, s)| *s)
    }

    /// Shares for an utterance of `ids` ids and `frames` frames; `vector_params` are the voice's
    /// bias/norm parameters (see [`vector_params`]).
    pub fn report(&self, ids: usize, frames: usize, vector_params: usize) -> PlanReport {
        let compute: Vec<_> = self.layers.iter().filter(|(l, _)| l.is_compute()).collect();
        let total_flops: f64 = compute.iter().map(|(l, _)| l.flops(ids, frames)).sum();
        let by_fidelity = Fidelity::ALL
            .iter()
            .map(|&f| {
                let sel = compute.iter().filter(|(_, s)| s.fidelity == f);
                let n = sel.clone().count();
                // `+ 0.0`: an empty f64 sum is -0.0.
                (
                    f,
                    n,
                    sel.map(|(l, _)| l.flops(ids, frames)).sum::<f64>() + 0.0,
                )
            })
            .collect();
        let by_format = WeightFormat::ALL
            .iter()
            .map(|&w| {
                let mut p: usize = self
                    .layers
                    .iter()
                    .filter(|(_, s)| s.weights == w)
                    .map(|(l, _)| l.params)
                    .sum();
                if w == WeightFormat::Bf16 {
                    p += vector_params;
                }
                (w, p, p as f64 * w.bytes_per_element())
            })
            .collect();
        PlanReport {
            name: self.name.clone(),
            compute_layers: compute.len(),
            by_fidelity,
            by_format,
            total_flops,
            vector_params,
            exceptions: compute
                .iter()
                .filter(|(_, s)| s.fidelity != Fidelity::LoFi)
                .map(|(l, s)| (l.name.clone(), *s))
                .collect(),
            fp32_activation_layers: compute
                .iter()
                .filter(|(_, s)| s.activations == ActivationFormat::Fp32)
                .count(),
        }
    }
}

/// Parameters of the voice's weights that are not layers (biases, norms, flow constants).
pub fn vector_params(voice: &Voice, layers: &[Layer]) -> usize {
    let total: usize = voice
        .weights
        .names()
        .filter_map(|n| voice.weights.dims(n).ok())
        .map(|d| d.iter().product::<usize>())
        .sum();
    total - layers.iter().map(|l| l.params).sum::<usize>()
}

impl PlanReport {
    /// Share of compute layers in `f`.
    pub fn layer_share(&self, f: Fidelity) -> f64 {
        let n = self
            .by_fidelity
            .iter()
            .find(|e| e.0 == f)
            .map_or(0, |e| e.1);
        n as f64 / self.compute_layers.max(1) as f64
    }

    /// Share of weight bytes in BFP8 or smaller.
    pub fn bfp8_or_smaller_byte_share(&self) -> f64 {
        let total: f64 = self.by_format.iter().map(|e| e.2).sum();
        let small: f64 = self
            .by_format
            .iter()
            .filter(|e| e.0.is_bfp8_or_smaller())
            .map(|e| e.2)
            .sum();
        if total > 0.0 { small / total } else { 0.0 }
    }
}

impl fmt::Display for PlanReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "precision plan `{}`", self.name)?;
        let flops = self.total_flops.max(f64::MIN_POSITIVE);
        for (fid, n, fl) in &self.by_fidelity {
            writeln!(
                f,
                "  {fid:<6} {n:>4}/{} compute layers ({:5.1}%), {:5.1}% of FLOPs",
                self.compute_layers,
                100.0 * *n as f64 / self.compute_layers.max(1) as f64,
                100.0 * fl / flops
            )?;
        }
        let params: usize = self.by_format.iter().map(|e| e.1).sum();
        let bytes: f64 = self.by_format.iter().map(|e| e.2).sum();
        for (w, p, b) in &self.by_format {
            writeln!(
                f,
                "  {w:<6} {:5.1}% of parameters, {:5.1}% of weight bytes ({:.2} MB)",
                100.0 * *p as f64 / params.max(1) as f64,
                100.0 * b / bytes.max(f64::MIN_POSITIVE),
                b / 1e6
            )?;
        }
        writeln!(
            f,
            "  ({} bias/norm parameters are kept in bf16; included above)",
            self.vector_params
        )?;
        writeln!(
            f,
            "  activations: {} compute layers fp32, {} bf16",
            self.fp32_activation_layers,
            self.compute_layers - self.fp32_activation_layers.min(self.compute_layers)
        )?;
        if self.exceptions.is_empty() {
            writeln!(f, "  exceptions (compute layers not in LoFi): none")
        } else {
            writeln!(
                f,
                "  exceptions (compute layers not in LoFi): {}",
                self.exceptions.len()
            )?;
            for (n, s) in self.exceptions.iter().take(12) {
                writeln!(f, "    {n}: {s}")?;
            }
            if self.exceptions.len() > 12 {
                writeln!(
                    f,
                    "    ... and {} more (`tts plan --layers` lists every layer)",
                    self.exceptions.len() - 12
                )?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &str, kind: LayerKind, rate: Rate, params: usize) -> Layer {
        Layer {
            name: name.into(),
            kind,
            rate,
            params,
        }
    }

    fn toy() -> Vec<Layer> {
        let conv = |cout, cin, k| LayerKind::Conv {
            cout,
            cin_per_group: cin,
            k,
        };
        vec![
            layer("enc_p.emb", LayerKind::Embedding, Rate::Ids, 256 * 192),
            layer("enc_p.proj", conv(384, 192, 1), Rate::Ids, 384 * 192),
            layer(
                "dec.conv_pre",
                conv(256, 192, 7),
                Rate::Frames(1),
                256 * 192 * 7,
            ),
            layer(
                "dec.ups.0",
                LayerKind::ConvTranspose {
                    cin: 256,
                    cout: 128,
                    k: 16,
                },
                Rate::Frames(1),
                256 * 128 * 16,
            ),
            layer(
                "dec.resblocks.0.convs.0",
                conv(128, 128, 3),
                Rate::Frames(8),
                128 * 128 * 3,
            ),
            layer(
                "dec.resblocks.11.convs.1",
                conv(32, 32, 5),
                Rate::Frames(256),
                32 * 32 * 5,
            ),
        ]
    }

    #[test]
    fn glob() {
        assert!(glob_match("dec.resblocks.*", "dec.resblocks.0.convs.1"));
        assert!(glob_match("*", "x"));
        assert!(glob_match(
            "enc_p.*.conv_?",
            "enc_p.encoder.attn_layers.3.conv_q"
        ));
        assert!(!glob_match("dec.resblocks.*", "dec.ups.0"));
        assert!(!glob_match("dec.ups.?", "dec.ups.10"));
        assert!(glob_match("*.convs.1", "dec.resblocks.11.convs.1"));
        assert!(!glob_match("dec", "dec.ups.0"));
        assert!(glob_match("a*b*c", "a.x.b.y.c"));
        assert!(!glob_match("a*b*c", "a.x.b.y.d"));
    }

    #[test]
    fn presets_parse_and_say_what_the_issue_says() {
        let hifi = Plan::preset("hifi").expect("embedded preset hifi parses");
        assert_eq!(
            hifi.default,
            LayerPrecision {
                weights: WeightFormat::Bf16,
                fidelity: Fidelity::HiFi4,
                fp32_acc: true,
                activations: ActivationFormat::Fp32,
            }
        );
        let lofi = Plan::preset("bfp8-lofi").expect("embedded preset bfp8-lofi parses");
        assert_eq!(lofi.default.weights, WeightFormat::Bfp8);
        assert_eq!(lofi.default.fidelity, Fidelity::LoFi);
        assert!(Plan::preset("nope").is_none());
        assert_eq!(PRESETS.len(), 3);
        let auto = Plan::preset("auto").expect("embedded plans/auto.toml parses");
        assert_eq!(auto.name, "auto");
        // The planner writes its verdict into the header: a reader can tell without running it.
        assert!(
            PRESETS[2].1.contains("# GATES "),
            "auto.toml lacks its gate verdict"
        );
    }

    #[test]
    fn rules_override_in_order_field_by_field() {
        let text = r#"
            name = "t"
            [default]
            weights = "bfp8_b"
            fidelity = "LoFi"
            fp32_acc = false
            [[layer]]
            match = "dec.*"
            weights = "bfp4_b"
            [[layer]]
            match = "dec.conv_pre"
            fidelity = "HiFi2"
            fp32_acc = true
            reason = "first decoder layer sees the flow output"
        "#;
        let p = Plan::from_toml(text, "inline").expect("valid plan");
        let r = p.resolve(&toy()).expect("rules match");
        assert_eq!(
            r.get("dec.conv_pre"),
            Some(LayerPrecision::new(
                WeightFormat::Bfp4,
                Fidelity::HiFi2,
                true
            ))
        );
        assert_eq!(
            r.get("dec.ups.0").map(|s| s.weights),
            Some(WeightFormat::Bfp4)
        );
        assert_eq!(
            r.get("enc_p.proj").map(|s| s.weights),
            Some(WeightFormat::Bfp8)
        );
    }

    #[test]
    fn bad_plans_are_rejected_with_a_reason() {
        let bad_format = "name='x'\n[default]\nweights='fp8'\nfidelity='LoFi'\nfp32_acc=false";
        let e = Plan::from_toml(bad_format, "x").unwrap_err().to_string();
        assert!(e.contains("bfp8_b"), "{e}");
        let unknown = "name='x'\n[default]\nweights='bf16'\nfidelity='LoFi'\nfp32_acc=false\nfoo=1";
        assert!(Plan::from_toml(unknown, "x").is_err());
        let typo = "name='x'\n[default]\nweights='bf16'\nfidelity='LoFi'\nfp32_acc=false\n[[layer]]\nmatch='dec.resblock.*'\nfidelity='HiFi4'";
        let p = Plan::from_toml(typo, "x").expect("parses");
        assert!(matches!(p.resolve(&toy()), Err(PlanError::NoMatch { .. })));
        let missing = Plan::from_arg("/nonexistent/plan.toml")
            .unwrap_err()
            .to_string();
        assert!(missing.contains("hifi, bfp8-lofi"), "{missing}");
    }

    const BASE: &str = "name='x'\n[default]\nweights='bfp8_b'\nfidelity='LoFi'\nfp32_acc=false\n";

    #[test]
    fn activations_absent_means_bf16_and_parse_per_rule() {
        // bfp8-lofi has no `activations` key: bf16.
        let p = Plan::preset("bfp8-lofi").expect("preset parses");
        assert_eq!(p.default.activations, ActivationFormat::Bf16);
        let text = format!(
            "{BASE}[[layer]]\nmatch='dec.*'\nfp32_acc=true\nactivations='fp32'\n[[layer]]\nmatch='dec.ups.?'\nactivations='bf16'"
        );
        let r = Plan::from_toml(&text, "t")
            .and_then(|p| p.resolve(&toy()))
            .expect("valid");
        let conv_pre = r.get("dec.conv_pre").expect("layer");
        assert_eq!(conv_pre.activations, ActivationFormat::Fp32);
        assert_eq!(conv_pre.to_string(), "bfp8_b/LoFi/fp32acc/fp32act");
        assert_eq!(
            r.get("dec.ups.0").map(|s| s.activations),
            Some(ActivationFormat::Bf16)
        );
        assert_eq!(
            r.get("enc_p.proj").map(|s| s.activations),
            Some(ActivationFormat::Bf16)
        );
        let fp32_default = "name='x'\n[default]\nweights='bf16'\nfidelity='HiFi4'\nfp32_acc=true\nactivations='fp32'";
        let p = Plan::from_toml(fp32_default, "t").expect("valid");
        assert_eq!(p.default.activations, ActivationFormat::Fp32);
        let bad = format!("{BASE}activations='fp16'");
        let e = Plan::from_toml(&bad, "t").unwrap_err().to_string();
        assert!(e.contains("activations: bf16, fp32"), "{e}");
    }

    #[test]
    fn fp32_activations_without_fp32_acc_are_rejected() {
        // In [default].
        let e = Plan::from_toml(&format!("{BASE}activations='fp32'"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[default]") && e.contains("fp32_acc = true"),
            "{e}"
        );
        // In one rule that sets both.
        let e = Plan::from_toml(
            &format!("{BASE}[[layer]]\nmatch='dec.*'\nactivations='fp32'\nfp32_acc=false"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dec.*"), "{e}");
        // Only after resolution: fp32 activations on every dec layer, fp32 acc on conv_pre only.
        let p = Plan::from_toml(
            &format!(
                "{BASE}[[layer]]\nmatch='dec.*'\nactivations='fp32'\n[[layer]]\nmatch='dec.conv_pre'\nfp32_acc=true"
            ),
            "t",
        )
        .expect("parses: the conflict needs the layers");
        match p.resolve(&toy()) {
            Err(PlanError::Fp32ActivationsNeedFp32Acc { layer, .. }) => {
                assert_eq!(layer, "dec.ups.0")
            }
            other => panic!("expected the fp32 activation error, got {other:?}"),
        }
    }

    #[test]
    fn to_toml_reads_back() {
        let text = format!(
            "{BASE}[[layer]]\nmatch='dec.*'\nweights='bfp4_b'\nreason='says \"why\"'\n[[layer]]\nmatch='dec.conv_pre'\nfidelity='HiFi2'\nfp32_acc=true\nactivations='fp32'"
        );
        let p = Plan::from_toml(&text, "t").expect("valid");
        let back = p.to_toml(&["line one".into(), "two\n\nthree".into()]);
        assert!(
            back.starts_with("# line one\n# two\n#\n# three\nname = "),
            "{back}"
        );
        assert_eq!(Plan::from_toml(&back, "back").expect("reads back"), p);
    }

    #[test]
    fn report_shares_by_hand() {
        // FLOPs for ids = 10, frames = 20, computed by hand:
        //   enc_p.proj    2*10*384*192       =  1_474_560
        //   dec.conv_pre  2*20*256*192*7     = 13_762_560
        //   dec.ups.0     2*20*256*128*16    = 20_971_520
        //   resblock 0    2*160*128*128*3    = 15_728_640
        //   resblock 11   2*5120*32*32*5     = 52_428_800
        let text = "name='t'\n[default]\nweights='bfp8_b'\nfidelity='LoFi'\nfp32_acc=false\n[[layer]]\nmatch='dec.ups.*'\nweights='bf16'\nfidelity='HiFi4'";
        let r = Plan::from_toml(text, "t")
            .and_then(|p| p.resolve(&toy()))
            .expect("valid");
        let rep = r.report(10, 20, 1000);
        let total = 1_474_560.0 + 13_762_560.0 + 20_971_520.0 + 15_728_640.0 + 52_428_800.0;
        assert_eq!(rep.total_flops, total);
        assert_eq!(rep.compute_layers, 5);
        assert!((rep.layer_share(Fidelity::LoFi) - 0.8).abs() < 1e-12);
        let hifi4 = rep
            .by_fidelity
            .iter()
            .find(|e| e.0 == Fidelity::HiFi4)
            .map(|e| e.2);
        assert_eq!(hifi4, Some(20_971_520.0));
        assert_eq!(rep.exceptions.len(), 1);
        assert_eq!(rep.fp32_activation_layers, 0);
        // Bytes: bf16 = (524288 + 1000 vectors) * 2; bfp8 = the rest * 1088/1024.
        let bf16 = (256 * 128 * 16 + 1000) as f64 * 2.0;
        let bfp8 = (256 * 192 + 384 * 192 + 256 * 192 * 7 + 128 * 128 * 3 + 32 * 32 * 5) as f64
            * 1088.0
            / 1024.0;
        assert!((rep.bfp8_or_smaller_byte_share() - bfp8 / (bf16 + bfp8)).abs() < 1e-12);
        let shown = rep.to_string();
        assert!(shown.contains("dec.ups.0: bf16/HiFi4"), "{shown}");
    }
}
