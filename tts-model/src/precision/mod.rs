//! Precision plans: per-layer weight format (bf16x2, bf16, bfp8_b, bfp4_b), math fidelity
//! (LoFi..HiFi4), fp32 accumulation and activation format (bf16, fp32, fp32x2; fp32 and fp32x2
//! need fp32 accumulation; a plan without the `activations` key means bf16) for a voice, and the
//! report of what share of the model runs how. [`search`] finds a plan automatically under
//! quality gates (the `auto` plan).
//!
//! The split formats trade a second matmul pass for precision (tt-kernels' `Precision::weights_lo`
//! and `Precision::activations_lo`; ops that do not implement them run without the split, see
//! `tt::without_split`):
//! - `bf16x2` weights: each weight stored as a bf16 pair `hi + lo` (`hi = bf16(w)`,
//!   `lo = bf16(w - hi)`: 16 significant bits), both multiplied; 4 bytes per parameter.
//! - `fp32x2` activations: Float32 tensors whose matmul input is split on the device into the TF32
//!   part the FPU reads and the rest, both multiplied (about 21 significant bits instead of 11).
//!
//! `isolate_products = true` (a separate key, default false; needs fp32 accumulation) sets
//! tt-kernels' `Precision::isolate_products` on the layer's convs: the FPU sums the products of
//! each output in groups of 8 consecutive K and rounds every product of a group at about `2^-12`
//! of the group's largest one (MVMUL alignment), a floor no operand split lowers. With the key
//! the main term is computed as 8 weight-masked passes so each group holds one non-zero product;
//! it costs about 8x the main term's FPU work (and its in0 / weight L1). The attention cores
//! ignore it (`tt::attention_precision`), ops without split operands drop it
//! (`tt::without_split`).
//!
//! A plan is a small TOML file (see `tts-model/plans/`): a `[default]` setting and an ordered list
//! of `[[layer]]` rules whose `match` glob selects layers by name; later rules override earlier ones
//! field by field. The presets are embedded ([`PRESETS`], [`Plan::preset`]): `hifi` (bf16x2
//! weights, HiFi4, fp32 accumulation, fp32x2 activations: the reference configuration),
//! `bfp8-lofi`, `hifi-bf16` (plain bf16 weights and fp32 activations with HiFi4 and fp32
//! accumulation: one matmul pass, the previous `hifi`) and `auto` (the auto planner's output);
//! any other file is loaded with [`Plan::load`]. [`Plan::resolve`] applies a plan to a voice's
//! layers.
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
    /// A bfloat16 pair `hi + lo` per weight (`hi = bf16(w)`, `lo = bf16(w - hi)`: 16 significant
    /// bits), both multiplied (a second matmul pass; tt-kernels `Precision::weights_lo`).
    #[serde(rename = "bf16x2")]
    Bf16x2,
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
    pub const ALL: [WeightFormat; 4] = [
        WeightFormat::Bf16x2,
        WeightFormat::Bf16,
        WeightFormat::Bfp8,
        WeightFormat::Bfp4,
    ];

    /// Bytes per element in tiles (bf16x2: two bf16 tiles; bfp: one exponent byte per 16
    /// elements: 1088 / 576 bytes per 32x32 tile).
    pub fn bytes_per_element(self) -> f64 {
        match self {
            WeightFormat::Bf16x2 => 4.0,
            WeightFormat::Bf16 => 2.0,
            WeightFormat::Bfp8 => 1088.0 / 1024.0,
            WeightFormat::Bfp4 => 576.0 / 1024.0,
        }
    }

    /// Whether the format is BFP8 or smaller.
    pub fn is_bfp8_or_smaller(self) -> bool {
        !matches!(self, WeightFormat::Bf16 | WeightFormat::Bf16x2)
    }

    /// Whether the weights are stored as a hi + lo pair (a second matmul pass).
    pub fn is_split(self) -> bool {
        self == WeightFormat::Bf16x2
    }
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WeightFormat::Bf16x2 => "bf16x2",
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
    /// IEEE float32 (needs `fp32_acc = true`: a bf16 DEST would round the result anyway). The
    /// matmul reads it as TF32 (11 significant bits).
    #[serde(rename = "fp32")]
    Fp32,
    /// IEEE float32 tensors whose matmul input is split on the device into the TF32 part and the
    /// rest, both multiplied (a second matmul pass: about 21 significant bits; tt-kernels
    /// `Precision::activations_lo`). Needs `fp32_acc = true` like `fp32`.
    #[serde(rename = "fp32x2")]
    Fp32x2,
}

impl ActivationFormat {
    /// All formats, narrowest first.
    pub const ALL: [ActivationFormat; 3] = [
        ActivationFormat::Bf16,
        ActivationFormat::Fp32,
        ActivationFormat::Fp32x2,
    ];

    /// Whether the tensors are Float32 (`fp32` or `fp32x2`), which needs fp32 accumulation.
    pub fn is_fp32(self) -> bool {
        matches!(self, ActivationFormat::Fp32 | ActivationFormat::Fp32x2)
    }

    /// Whether the matmul input is split into hi + lo (a second matmul pass).
    pub fn is_split(self) -> bool {
        self == ActivationFormat::Fp32x2
    }
}

impl fmt::Display for ActivationFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ActivationFormat::Bf16 => "bf16",
            ActivationFormat::Fp32 => "fp32",
            ActivationFormat::Fp32x2 => "fp32x2",
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
    /// Activation (input/output tensor) format; `Fp32` and `Fp32x2` require `fp32_acc`.
    pub activations: ActivationFormat,
    /// The main matmul term as 8 weight-masked passes, one non-zero product per MVMUL group of 8
    /// (tt-kernels `Precision::isolate_products`; about 8x the main term's FPU work). Requires
    /// `fp32_acc`. Plan key `isolate_products` (absent: false).
    pub isolate_products: bool,
}

impl LayerPrecision {
    /// A setting with bf16 activations (what plans without an `activations` key mean).
    pub const fn new(weights: WeightFormat, fidelity: Fidelity, fp32_acc: bool) -> Self {
        Self {
            weights,
            fidelity,
            fp32_acc,
            activations: ActivationFormat::Bf16,
            isolate_products: false,
        }
    }

    /// The same setting with other activations.
    pub const fn with_activations(self, activations: ActivationFormat) -> Self {
        Self {
            activations,
            ..self
        }
    }

    /// The same setting with `isolate_products` set to `on`.
    pub const fn with_isolated_products(self, on: bool) -> Self {
        Self {
            isolate_products: on,
            ..self
        }
    }

    /// Whether the combination is allowed: fp32 / fp32x2 activations, bf16x2 weights and
    /// isolated products need fp32 accumulation (see [`PlanError::Fp32ActivationsNeedFp32Acc`],
    /// [`PlanError::SplitWeightsNeedFp32Acc`], [`PlanError::IsolatedProductsNeedFp32Acc`]).
    pub fn is_valid(&self) -> bool {
        self.fp32_acc
            || !(self.activations.is_fp32() || self.weights.is_split() || self.isolate_products)
    }
}

impl fmt::Display for LayerPrecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}{}{}{}",
            self.weights,
            self.fidelity,
            if self.fp32_acc { "/fp32acc" } else { "" },
            match self.activations {
                ActivationFormat::Bf16 => "",
                ActivationFormat::Fp32 => "/fp32act",
                ActivationFormat::Fp32x2 => "/fp32x2act",
            },
            if self.isolate_products { "/iso" } else { "" }
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
        "invalid precision plan {origin}: {detail} (weights: bf16x2, bf16, bfp8_b, bfp4_b; fidelities: LoFi, HiFi2, HiFi3, HiFi4; activations: bf16, fp32, fp32x2; isolate_products: true, false)"
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
    /// A layer ends up with fp32 / fp32x2 activations but bf16 accumulation.
    #[error(
        "precision plan {plan}: layer `{layer}` has activations = \"{format}\" but fp32_acc = false ({origin}); fp32 and fp32x2 activations need fp32 accumulation in DEST: set fp32_acc = true there or use activations = \"bf16\""
    )]
    Fp32ActivationsNeedFp32Acc {
        /// Plan name.
        plan: String,
        /// The layer (or `[default]`).
        layer: String,
        /// The activation format (`fp32` or `fp32x2`).
        format: ActivationFormat,
        /// Where the conflicting setting comes from.
        origin: String,
    },
    /// A layer ends up with bf16x2 weights but bf16 accumulation (the split conv's input is
    /// Float32, and a bf16 DEST would round each partial sum to 8 bits, losing what the second
    /// weight term adds; tt-kernels refuses it).
    #[error(
        "precision plan {plan}: layer `{layer}` has weights = \"bf16x2\" but fp32_acc = false ({origin}); bf16x2 weights need fp32 accumulation in DEST (a bf16 DEST would round away the lo term): set fp32_acc = true there or use weights = \"bf16\""
    )]
    SplitWeightsNeedFp32Acc {
        /// Plan name.
        plan: String,
        /// The layer (or `[default]`).
        layer: String,
        /// Where the conflicting setting comes from.
        origin: String,
    },
    /// A layer ends up with `isolate_products = true` but bf16 accumulation (the 8 masked passes
    /// are summed in DEST: a bf16 DEST would round each partial sum to 8 bits, far above the
    /// alignment error the passes remove; tt-kernels refuses it).
    #[error(
        "precision plan {plan}: layer `{layer}` has isolate_products = true but fp32_acc = false ({origin}); isolated products need fp32 accumulation in DEST (a bf16 DEST would round each of the 8 partial sums to 8 bits): set fp32_acc = true there or isolate_products = false"
    )]
    IsolatedProductsNeedFp32Acc {
        /// Plan name.
        plan: String,
        /// The layer (or `[default]`).
        layer: String,
        /// Where the conflicting setting comes from.
        origin: String,
    },
}

/// The fields of a setting that need fp32 accumulation (`None`: not given).
#[derive(Debug, Clone, Copy, Default)]
struct Fp32Needs {
    weights: Option<WeightFormat>,
    activations: Option<ActivationFormat>,
    isolate_products: Option<bool>,
}

impl Fp32Needs {
    fn of(s: &LayerPrecision) -> Self {
        Self {
            weights: Some(s.weights),
            activations: Some(s.activations),
            isolate_products: Some(s.isolate_products),
        }
    }
}

/// The error of a setting whose fields (those given) need fp32 accumulation but set
/// `fp32_acc = false`.
fn check_fp32_acc(
    plan: &str,
    layer: &str,
    origin: &str,
    needs: Fp32Needs,
    fp32_acc: Option<bool>,
) -> Result<(), PlanError> {
    if fp32_acc != Some(false) {
        return Ok(());
    }
    let Fp32Needs {
        weights,
        activations,
        isolate_products,
    } = needs;
    if let Some(a) = activations.filter(|a| a.is_fp32()) {
        return Err(PlanError::Fp32ActivationsNeedFp32Acc {
            plan: plan.into(),
            layer: layer.into(),
            format: a,
            origin: origin.into(),
        });
    }
    if weights.is_some_and(|w| w.is_split()) {
        return Err(PlanError::SplitWeightsNeedFp32Acc {
            plan: plan.into(),
            layer: layer.into(),
            origin: origin.into(),
        });
    }
    if isolate_products == Some(true) {
        return Err(PlanError::IsolatedProductsNeedFp32Acc {
            plan: plan.into(),
            layer: layer.into(),
            origin: origin.into(),
        });
    }
    Ok(())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetting {
    weights: WeightFormat,
    fidelity: Fidelity,
    fp32_acc: bool,
    #[serde(default)]
    activations: ActivationFormat,
    #[serde(default)]
    isolate_products: bool,
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
    /// Isolated-products override (plan key `isolate_products`).
    pub isolate_products: Option<bool>,
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
pub const PRESETS: [(&str, &str); 4] = [
    ("hifi", include_str!("../../plans/hifi.toml")),
    ("bfp8-lofi", include_str!("../../plans/bfp8-lofi.toml")),
    ("hifi-bf16", include_str!("../../plans/hifi-bf16.toml")),
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
                isolate_products: raw.default.isolate_products,
            },
            rules: raw.layer,
        };
        plan.validate(origin)?;
        Ok(plan)
    }

    /// Checks what can be checked without a voice: the default setting, and rules that set
    /// `fp32_acc = false` together with `activations = "fp32"` / `"fp32x2"`,
    /// `weights = "bf16x2"` or `isolate_products = true`. [`Plan::resolve`] checks every layer.
    pub fn validate(&self, origin: &str) -> Result<(), PlanError> {
        let d = &self.default;
        check_fp32_acc(
            &self.name,
            "[default]",
            origin,
            Fp32Needs::of(d),
            Some(d.fp32_acc),
        )?;
        for r in &self.rules {
            check_fp32_acc(
                &self.name,
                &r.pattern,
                &format!("rule `{}` in {origin}", r.pattern),
                Fp32Needs {
                    weights: r.weights,
                    activations: r.activations,
                    isolate_products: r.isolate_products,
                },
                r.fp32_acc,
            )?;
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
            "weights = \"{}\"\nfidelity = \"{}\"\nfp32_acc = {}\nactivations = \"{}\"\nisolate_products = {}\n",
            d.weights, d.fidelity, d.fp32_acc, d.activations, d.isolate_products
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
            if let Some(i) = r.isolate_products {
                out.push_str(&format!("isolate_products = {i}\n"));
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
            if let Some(i) = r.isolate_products {
                s.isolate_products = i;
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
        for (l, s) in &resolved {
            check_fp32_acc(
                &self.name,
                &l.name,
                "after applying the rules in order",
                Fp32Needs::of(s),
                Some(s.fp32_acc),
            )?;
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
    /// Per weight format ([`WeightFormat::ALL`] order): (parameters, bytes) over all weights
    /// (`bf16x2` at 4 bytes per parameter); bias/norm vectors as bf16.
    pub by_format: Vec<(WeightFormat, usize, f64)>,
    /// Total FLOPs of the utterance.
    pub total_flops: f64,
    /// Parameters in bias/norm vectors (always bf16, included in `by_format`).
    pub vector_params: usize,
    /// Compute layers not in LoFi, with their setting.
    pub exceptions: Vec<(String, LayerPrecision)>,
    /// Per activation format ([`ActivationFormat::ALL`] order): compute layers.
    pub by_activations: Vec<(ActivationFormat, usize)>,
    /// Compute layers whose setting has `isolate_products` (the main term as 8 masked passes),
    /// as the plan sets it: the attention cores count when set although the backend ignores the
    /// key there (their `fp32x2` split path isolates its products itself).
    pub isolated_products: usize,
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
            by_activations: ActivationFormat::ALL
                .iter()
                .map(|&a| {
                    (
                        a,
                        compute.iter().filter(|(_, s)| s.activations == a).count(),
                    )
                })
                .collect(),
            isolated_products: compute.iter().filter(|(_, s)| s.isolate_products).count(),
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

    /// Compute layers with activations `a`.
    pub fn activation_layers(&self, a: ActivationFormat) -> usize {
        self.by_activations
            .iter()
            .find(|e| e.0 == a)
            .map_or(0, |e| e.1)
    }

    /// Share of weight bytes in format `w` (bias/norm vectors count as bf16).
    pub fn byte_share(&self, w: WeightFormat) -> f64 {
        let total: f64 = self.by_format.iter().map(|e| e.2).sum();
        let part: f64 = self
            .by_format
            .iter()
            .filter(|e| e.0 == w)
            .map(|e| e.2)
            .sum();
        if total > 0.0 { part / total } else { 0.0 }
    }

    /// Share of weight bytes in BFP8 or smaller (`bf16x2` counts 4 bytes per parameter in the
    /// total).
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
            "  ({} bias/norm parameters, counted above as bf16; the device keeps them in Float32 \
             where a layer's activations are fp32 or fp32x2)",
            self.vector_params
        )?;
        let acts: Vec<String> = self
            .by_activations
            .iter()
            .rev()
            .map(|(a, n)| format!("{n} {a}"))
            .collect();
        writeln!(f, "  activations (compute layers): {}", acts.join(", "))?;
        writeln!(
            f,
            "  isolated products (8 masked passes of the main term, ~8x its FPU work): {}/{} compute layers",
            self.isolated_products, self.compute_layers
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
        let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["hifi", "bfp8-lofi", "hifi-bf16", "auto"]);
        assert_eq!(preset_names(), "hifi, bfp8-lofi, hifi-bf16, auto");
        for (n, text) in PRESETS {
            let p = Plan::from_toml(text, n).expect("every embedded preset parses");
            assert_eq!(p.name, n, "a preset's name is its key");
        }
        // hifi: the split formats (bf16 weights alone cost 2.2-2.4 dB MCD on the cpu) and the
        // isolated products (the MVMUL alignment floor).
        let hifi = Plan::preset("hifi").expect("embedded preset hifi parses");
        assert_eq!(
            hifi.default,
            LayerPrecision {
                weights: WeightFormat::Bf16x2,
                fidelity: Fidelity::HiFi4,
                fp32_acc: true,
                activations: ActivationFormat::Fp32x2,
                isolate_products: true,
            }
        );
        assert!(hifi.rules.is_empty());
        // hifi-bf16: the issue's literal definition, bf16 + HiFi4 + fp32 accumulation.
        let bf16 = Plan::preset("hifi-bf16").expect("embedded preset hifi-bf16 parses");
        assert_eq!(
            bf16.default,
            LayerPrecision {
                weights: WeightFormat::Bf16,
                fidelity: Fidelity::HiFi4,
                fp32_acc: true,
                activations: ActivationFormat::Fp32,
                isolate_products: false,
            }
        );
        assert!(bf16.rules.is_empty());
        let lofi = Plan::preset("bfp8-lofi").expect("embedded preset bfp8-lofi parses");
        assert_eq!(lofi.default.weights, WeightFormat::Bfp8);
        assert_eq!(lofi.default.fidelity, Fidelity::LoFi);
        assert!(Plan::preset("nope").is_none());
        let auto = Plan::preset("auto").expect("embedded plans/auto.toml parses");
        assert_eq!(auto.name, "auto");
        // The planner writes its verdict into the header: a reader can tell without running it.
        let auto_text = PRESETS
            .iter()
            .find(|(n, _)| *n == "auto")
            .map_or("", |(_, t)| *t);
        assert!(
            auto_text.contains("# GATES "),
            "auto.toml lacks its gate verdict"
        );
        // Plan arguments resolve preset names before paths.
        assert_eq!(Plan::from_arg("hifi-bf16").ok(), Some(bf16));
    }

    #[test]
    fn split_formats_parse_print_and_read_back() {
        let text = format!(
            "{BASE}[[layer]]\nmatch='dec.*'\nweights='bf16x2'\nfidelity='HiFi4'\nfp32_acc=true\nactivations='fp32x2'\n[[layer]]\nmatch='dec.ups.?'\nactivations='fp32'"
        );
        let p = Plan::from_toml(&text, "t").expect("valid");
        let r = p.resolve(&toy()).expect("rules match");
        let pre = r.get("dec.conv_pre").expect("layer");
        assert_eq!(
            pre,
            LayerPrecision::new(WeightFormat::Bf16x2, Fidelity::HiFi4, true)
                .with_activations(ActivationFormat::Fp32x2)
        );
        assert_eq!(pre.to_string(), "bf16x2/HiFi4/fp32acc/fp32x2act");
        let ups = r.get("dec.ups.0").expect("layer");
        assert_eq!(ups.to_string(), "bf16x2/HiFi4/fp32acc/fp32act");
        assert_eq!(
            r.get("enc_p.proj").map(|s| s.to_string()).as_deref(),
            Some("bfp8_b/LoFi")
        );
        // Written by the planner's serializer, read back equal, with the formats spelled out.
        let back = p.to_toml(&[]);
        assert!(
            back.contains("weights = \"bf16x2\"") && back.contains("activations = \"fp32x2\""),
            "{back}"
        );
        assert_eq!(Plan::from_toml(&back, "back").expect("reads back"), p);
        // A default of the split formats round-trips too.
        let hifi = Plan::preset("hifi").expect("preset");
        let back = hifi.to_toml(&["hifi".into()]);
        assert_eq!(Plan::from_toml(&back, "back").expect("reads back"), hifi);
        // Display and the serialized spelling agree for every format (what `tts plan --layers`
        // prints is what a plan file accepts).
        for w in WeightFormat::ALL {
            let t = format!("name='x'\n[default]\nweights='{w}'\nfidelity='HiFi4'\nfp32_acc=true");
            assert_eq!(
                Plan::from_toml(&t, "t").map(|p| p.default.weights).ok(),
                Some(w)
            );
        }
        for a in ActivationFormat::ALL {
            let t = format!(
                "name='x'\n[default]\nweights='bf16'\nfidelity='HiFi4'\nfp32_acc=true\nactivations='{a}'"
            );
            assert_eq!(
                Plan::from_toml(&t, "t").map(|p| p.default.activations).ok(),
                Some(a)
            );
        }
    }

    #[test]
    fn fp32x2_activations_need_fp32_acc_like_fp32() {
        let e = Plan::from_toml(&format!("{BASE}activations='fp32x2'"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[default]") && e.contains("\"fp32x2\"") && e.contains("fp32_acc = true"),
            "{e}"
        );
        let e = Plan::from_toml(
            &format!("{BASE}[[layer]]\nmatch='dec.*'\nactivations='fp32x2'\nfp32_acc=false"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("dec.*") && e.contains("fp32x2"), "{e}");
        // After resolution: fp32x2 on every dec layer, fp32 acc on conv_pre only.
        let p = Plan::from_toml(
            &format!(
                "{BASE}[[layer]]\nmatch='dec.*'\nactivations='fp32x2'\n[[layer]]\nmatch='dec.conv_pre'\nfp32_acc=true"
            ),
            "t",
        )
        .expect("parses: the conflict needs the layers");
        match p.resolve(&toy()) {
            Err(PlanError::Fp32ActivationsNeedFp32Acc { layer, format, .. }) => {
                assert_eq!(
                    (layer.as_str(), format),
                    ("dec.ups.0", ActivationFormat::Fp32x2)
                )
            }
            other => panic!("expected the fp32x2 activation error, got {other:?}"),
        }
        // bf16x2 weights need fp32 accumulation too (any fidelity): in [default], in a rule, or
        // only after resolution.
        let e = Plan::from_toml(&BASE.replace("'bfp8_b'", "'bf16x2'"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[default]") && e.contains("\"bf16x2\"") && e.contains("fp32_acc = true"),
            "{e}"
        );
        let e = Plan::from_toml(
            &format!("{BASE}[[layer]]\nmatch='dec.*'\nweights='bf16x2'\nfp32_acc=false"),
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("rule `dec.*`") && e.contains("bf16x2"), "{e}");
        let p = Plan::from_toml(
            &format!("{BASE}[[layer]]\nmatch='dec.*'\nweights='bf16x2'"),
            "t",
        )
        .expect("parses: the conflict needs the layers");
        match p.resolve(&toy()) {
            Err(PlanError::SplitWeightsNeedFp32Acc { layer, .. }) => {
                assert_eq!(layer, "dec.conv_pre")
            }
            other => panic!("expected the bf16x2 accumulation error, got {other:?}"),
        }
        let ok = format!(
            "{BASE}[[layer]]\nmatch='dec.*'\nweights='bf16x2'\nfidelity='LoFi'\nfp32_acc=true"
        );
        assert!(
            Plan::from_toml(&ok, "t")
                .and_then(|p| p.resolve(&toy()))
                .is_ok()
        );
        // Misspellings name the accepted values.
        let e = Plan::from_toml(&format!("{BASE}activations='fp64'"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("activations: bf16, fp32, fp32x2"), "{e}");
        let e = Plan::from_toml(
            "name='x'\n[default]\nweights='bf16x3'\nfidelity='LoFi'\nfp32_acc=false",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("weights: bf16x2, bf16"), "{e}");
    }

    #[test]
    fn isolate_products_parses_overrides_prints_and_reads_back() {
        // Absent means false, in [default] and in every rule.
        let p = Plan::from_toml(BASE, "t").expect("valid");
        assert!(!p.default.isolate_products);
        // In [default] (with fp32 accumulation) and overridden per rule, field by field.
        let text = "name='x'\n[default]\nweights='bf16'\nfidelity='HiFi4'\nfp32_acc=true\nisolate_products=true\n[[layer]]\nmatch='dec.ups.?'\nisolate_products=false\n[[layer]]\nmatch='dec.ups.0'\nweights='bfp8_b'";
        let p = Plan::from_toml(text, "t").expect("valid");
        assert!(p.default.isolate_products);
        assert_eq!(p.rules[0].isolate_products, Some(false));
        assert_eq!(p.rules[1].isolate_products, None);
        let r = p.resolve(&toy()).expect("rules match");
        let pre = r.get("dec.conv_pre").expect("layer");
        assert_eq!(
            pre,
            LayerPrecision::new(WeightFormat::Bf16, Fidelity::HiFi4, true)
                .with_isolated_products(true)
        );
        // `tts plan --layers` prints the setting's Display: `/iso` last.
        assert_eq!(pre.to_string(), "bf16/HiFi4/fp32acc/iso");
        let ups = r.get("dec.ups.0").expect("layer");
        assert!(!ups.isolate_products && ups.weights == WeightFormat::Bfp8);
        assert_eq!(ups.to_string(), "bfp8_b/HiFi4/fp32acc");
        // With the split formats: after the activation suffix.
        let hifi = Plan::preset("hifi").expect("preset").default;
        assert_eq!(hifi.to_string(), "bf16x2/HiFi4/fp32acc/fp32x2act/iso");
        // Written and read back equal, the key spelled out in [default] and in the rule.
        let back = p.to_toml(&[]);
        assert!(
            back.contains("[default]\nweights = \"bf16\"\nfidelity = \"HiFi4\"\nfp32_acc = true\nactivations = \"bf16\"\nisolate_products = true\n"),
            "{back}"
        );
        assert!(
            back.contains("match = \"dec.ups.?\"\nisolate_products = false\n"),
            "{back}"
        );
        assert_eq!(Plan::from_toml(&back, "back").expect("reads back"), p);
        // The report counts the compute layers with isolated products (5 of 5 compute layers
        // of the toy but dec.ups.0).
        let rep = r.report(10, 20, 0);
        assert_eq!(rep.isolated_products, 4);
        assert!(
            rep.to_string()
                .contains("isolated products (8 masked passes of the main term, ~8x its FPU work): 4/5 compute layers"),
            "{rep}"
        );
        // Not a bool: the parser says so and lists the values.
        let e = Plan::from_toml(&format!("{BASE}isolate_products='yes'"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("isolate_products: true, false"), "{e}");
        // Misspelled key: unknown field.
        assert!(Plan::from_toml(&format!("{BASE}isolated_products=true"), "t").is_err());
    }

    #[test]
    fn isolate_products_needs_fp32_acc() {
        // In [default].
        let e = Plan::from_toml(&format!("{BASE}isolate_products=true"), "t")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[default]")
                && e.contains("isolate_products = true but fp32_acc = false")
                && e.contains("set fp32_acc = true there or isolate_products = false"),
            "{e}"
        );
        // In one rule that sets both.
        let e = Plan::from_toml(
            &format!("{BASE}[[layer]]\nmatch='dec.*'\nisolate_products=true\nfp32_acc=false"),
            "t",
        )
        .unwrap_err();
        assert!(
            matches!(&e, PlanError::IsolatedProductsNeedFp32Acc { layer, .. } if layer == "dec.*"),
            "{e}"
        );
        // Only after resolution: isolation on every dec layer, fp32 acc on conv_pre only.
        let p = Plan::from_toml(
            &format!(
                "{BASE}[[layer]]\nmatch='dec.*'\nisolate_products=true\n[[layer]]\nmatch='dec.conv_pre'\nfp32_acc=true"
            ),
            "t",
        )
        .expect("parses: the conflict needs the layers");
        match p.resolve(&toy()) {
            Err(PlanError::IsolatedProductsNeedFp32Acc { layer, origin, .. }) => {
                assert_eq!(layer, "dec.ups.0");
                assert!(origin.contains("after applying the rules"), "{origin}");
            }
            other => panic!("expected the isolated-products error, got {other:?}"),
        }
        // Any weight format and fidelity with fp32 accumulation is accepted.
        let ok = format!("{BASE}[[layer]]\nmatch='dec.*'\nisolate_products=true\nfp32_acc=true");
        let r = Plan::from_toml(&ok, "t")
            .and_then(|p| p.resolve(&toy()))
            .expect("valid");
        assert_eq!(
            r.get("dec.ups.0").map(|s| s.to_string()).as_deref(),
            Some("bfp8_b/LoFi/fp32acc/iso")
        );
        assert!(
            !LayerPrecision::new(WeightFormat::Bfp8, Fidelity::LoFi, false)
                .with_isolated_products(true)
                .is_valid()
        );
        assert!(
            LayerPrecision::new(WeightFormat::Bfp8, Fidelity::LoFi, true)
                .with_isolated_products(true)
                .is_valid()
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
        assert!(e.contains("activations: bf16, fp32, fp32x2"), "{e}");
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
        assert_eq!(rep.activation_layers(ActivationFormat::Bf16), 5);
        assert_eq!(rep.activation_layers(ActivationFormat::Fp32), 0);
        assert_eq!(rep.activation_layers(ActivationFormat::Fp32x2), 0);
        // Bytes: bf16 = (524288 + 1000 vectors) * 2; bfp8 = the rest * 1088/1024.
        let bf16 = (256 * 128 * 16 + 1000) as f64 * 2.0;
        let bfp8 = (256 * 192 + 384 * 192 + 256 * 192 * 7 + 128 * 128 * 3 + 32 * 32 * 5) as f64
            * 1088.0
            / 1024.0;
        assert!((rep.bfp8_or_smaller_byte_share() - bfp8 / (bf16 + bfp8)).abs() < 1e-12);
        let shown = rep.to_string();
        assert!(shown.contains("dec.ups.0: bf16/HiFi4"), "{shown}");
    }
    #[test]
    fn report_counts_bf16x2_at_4_bytes_as_its_own_format() {
        // dec.ups.0 in bf16x2 with fp32x2 activations, dec.conv_pre in bf16 with fp32, the rest
        // bfp8_b with bf16 activations; 1000 vector parameters (bf16). By hand:
        //   bf16x2: 256*128*16 = 524_288 params * 4 bytes
        //   bf16:   256*192*7 + 1000 = 345_064 params * 2 bytes
        //   bfp8_b: 256*192 + 384*192 + 128*128*3 + 32*32*5 = 177_152 params * 1088/1024 bytes
        let text = "name='t'\n[default]\nweights='bfp8_b'\nfidelity='LoFi'\nfp32_acc=true\n[[layer]]\nmatch='dec.ups.*'\nweights='bf16x2'\nfidelity='HiFi4'\nactivations='fp32x2'\n[[layer]]\nmatch='dec.conv_pre'\nweights='bf16'\nactivations='fp32'";
        let r = Plan::from_toml(text, "t")
            .and_then(|p| p.resolve(&toy()))
            .expect("valid");
        let rep = r.report(10, 20, 1000);
        let params = |w: WeightFormat| rep.by_format.iter().find(|e| e.0 == w).map(|e| (e.1, e.2));
        let (x2, bf, b8) = (
            524_288.0 * 4.0,
            345_064.0 * 2.0,
            177_152.0 * 1088.0 / 1024.0,
        );
        assert_eq!(params(WeightFormat::Bf16x2), Some((524_288, x2)));
        assert_eq!(params(WeightFormat::Bf16), Some((345_064, bf)));
        assert_eq!(params(WeightFormat::Bfp8), Some((177_152, b8)));
        assert_eq!(params(WeightFormat::Bfp4), Some((0, 0.0)));
        let total = x2 + bf + b8;
        assert!((rep.byte_share(WeightFormat::Bf16x2) - x2 / total).abs() < 1e-12);
        // bf16x2 is not "BFP8 or smaller".
        assert!((rep.bfp8_or_smaller_byte_share() - b8 / total).abs() < 1e-12);
        assert_eq!(rep.activation_layers(ActivationFormat::Fp32x2), 1);
        assert_eq!(rep.activation_layers(ActivationFormat::Fp32), 1);
        assert_eq!(rep.activation_layers(ActivationFormat::Bf16), 3);
        let shown = rep.to_string();
        assert!(shown.contains("  bf16x2 "), "{shown}");
        assert!(
            shown.contains("dec.ups.0: bf16x2/HiFi4/fp32acc/fp32x2act"),
            "{shown}"
        );
        assert!(
            shown.contains("activations (compute layers): 1 fp32x2, 1 fp32, 3 bf16"),
            "{shown}"
        );
    }
}
