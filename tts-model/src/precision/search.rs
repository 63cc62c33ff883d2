//! The `auto` precision planner: a search over per-group settings under quality gates.
//!
//! Layers are partitioned into [`Group`]s (encoder attention/FFN per layer, the duration
//! predictor, each flow coupling's `pre` / `in_layers` / `res_skip_layers` / `post`, the decoder's
//! `conv_pre`, each `ups.i`, the resblocks of each upsampling stage, `conv_post`; see [`groups`]),
//! each expressed by glob patterns, so every plan the search visits is an ordinary [`Plan`]. A group
//! takes one level of a ladder of settings, cheapest first ([`default_ladder`]: bfp4_b/LoFi up to
//! bf16x2/HiFi4 with fp32x2 activations and isolated products, all with fp32 accumulation).
//!
//! The search ([`search`]), with an [`Evaluator`] that measures a plan against the reference on
//! calibration sentences:
//! 1. the floor plan (every group at level 0); if it meets the [`Gates`] it is the answer;
//! 2. the top plan (every group at the highest level); if it misses the gates, no plan of the
//!    ladder can be expected to meet them: the search stops and says so;
//! 3. sensitivities: for each group, the top plan with only that group at the floor; the larger
//!    its gate violation, the more sensitive the group;
//! 4. promotion: from the floor plan, the most sensitive groups are raised to the top level one by
//!    one until the gates hold;
//! 5. demotion: each promoted group, least sensitive first, is lowered to the lowest level that
//!    still meets the gates (bisection over the ladder, assuming quality is monotone in the level).
//!
//! The result ([`Outcome`]) is the plan, its measured metrics and whether it met the gates; when
//! nothing met them it is the best plan found (fewest frame-count mismatches, then smallest gate
//! violation, then cheapest) and [`Outcome::misses`] says by how much. Identical plans are evaluated
//! once, and an evaluation budget bounds the run.
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::fmt;

use super::{
    ActivationFormat, Fidelity, Layer, LayerPrecision, Plan, Rule, WeightFormat, glob_match,
};
use crate::quality::Comparison;

/// Quality gates against the reference, applied to the worst calibration sentence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gates {
    /// Largest mel-cepstral distortion in dB.
    pub max_mcd_db: f64,
    /// Largest log-mel L1 (natural-log units).
    pub max_log_mel_l1: f64,
}

impl Default for Gates {
    /// The acceptance of issue #6: MCD <= 0.3 dB, log-mel L1 <= 0.02 (frame counts always equal).
    fn default() -> Self {
        Self {
            max_mcd_db: 0.3,
            max_log_mel_l1: 0.02,
        }
    }
}

/// What one evaluation measured: one comparison per calibration sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// Per sentence, the test audio against the reference.
    pub comparisons: Vec<Comparison>,
    /// Why the plan could not be evaluated (e.g. a setting an op does not support); such a plan
    /// misses the gates with an infinite violation.
    pub error: Option<String>,
}

impl Measured {
    /// A measurement of `comparisons`.
    pub fn new(comparisons: Vec<Comparison>) -> Self {
        Self {
            comparisons,
            error: None,
        }
    }

    /// Ranking key, smaller is better: failed evaluations last, then frame-count mismatches,
    /// then the gate violation.
    fn rank(&self, g: &Gates) -> (bool, usize, f64) {
        (
            self.error.is_some(),
            self.frame_mismatches(),
            self.violation(g),
        )
    }

    /// Sentences whose frame counts differ.
    pub fn frame_mismatches(&self) -> usize {
        self.comparisons
            .iter()
            .filter(|c| !c.frames_match())
            .count()
    }

    /// Worst MCD over sentences (None when some sentence has no MCD, e.g. frame counts differ).
    pub fn worst_mcd_db(&self) -> Option<f64> {
        worst(self.comparisons.iter().map(|c| c.mcd_db))
    }

    /// Worst log-mel L1 over sentences (None as for [`Measured::worst_mcd_db`]).
    pub fn worst_log_mel_l1(&self) -> Option<f64> {
        worst(self.comparisons.iter().map(|c| c.log_mel_l1))
    }

    /// `ref/test` frame counts of every sentence, e.g. `72/72 307/310`.
    pub fn frames(&self) -> String {
        self.comparisons
            .iter()
            .map(|c| format!("{}/{}", c.ref_frames, c.test_frames))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Gate violation: `max(MCD / max MCD, L1 / max L1)` over sentences (<= 1 passes the metric
    /// gates); with frame-count mismatches, 1000 per mismatching sentence plus the total frame
    /// difference (always worse than any aligned result short of 1000x the gate).
    pub fn violation(&self, g: &Gates) -> f64 {
        if self.error.is_some() {
            return f64::INFINITY;
        }
        let mismatches = self.frame_mismatches();
        if mismatches > 0 || self.comparisons.is_empty() {
            let diff: usize = self
                .comparisons
                .iter()
                .map(|c| c.ref_frames.abs_diff(c.test_frames))
                .sum();
            return 1000.0 * mismatches.max(1) as f64 + diff as f64;
        }
        match (self.worst_mcd_db(), self.worst_log_mel_l1()) {
            (Some(m), Some(l)) => (m / g.max_mcd_db).max(l / g.max_log_mel_l1),
            _ => 1000.0,
        }
    }

    /// Whether every sentence has the reference's frame count and the worst metrics are within
    /// the gates.
    pub fn passes(&self, g: &Gates) -> bool {
        self.misses(g).is_empty()
    }

    /// The gates missed, in words (empty when it passes).
    pub fn misses(&self, g: &Gates) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.error {
            out.push(format!("evaluation failed: {e}"));
            return out;
        }
        if self.comparisons.is_empty() {
            out.push("no calibration sentence was evaluated".into());
            return out;
        }
        for (k, c) in self.comparisons.iter().enumerate() {
            if !c.frames_match() {
                out.push(format!(
                    "sentence {}: frame count {} differs from the reference's {}",
                    k + 1,
                    c.test_frames,
                    c.ref_frames
                ));
            }
        }
        if !out.is_empty() {
            return out;
        }
        match self.worst_mcd_db() {
            Some(m) if m <= g.max_mcd_db => {}
            Some(m) => out.push(format!("MCD {m:.4} dB > {} dB", g.max_mcd_db)),
            None => out.push("MCD undefined".into()),
        }
        match self.worst_log_mel_l1() {
            Some(l) if l <= g.max_log_mel_l1 => {}
            Some(l) => out.push(format!("log-mel L1 {l:.5} > {}", g.max_log_mel_l1)),
            None => out.push("log-mel L1 undefined".into()),
        }
        out
    }
}

fn worst(it: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut w: Option<f64> = None;
    for v in it {
        let v = v?;
        if v.is_nan() {
            return None;
        }
        w = Some(w.map_or(v, |x| x.max(v)));
    }
    w
}

/// Measures a plan (normally: synthesize the calibration sentences with the plan on the `tt`
/// backend and compare against the cpu backend, noise off).
pub trait Evaluator {
    /// One comparison per calibration sentence, in a fixed order. An error does not stop the
    /// search: the plan counts as missing the gates and the error is reported with the step.
    fn evaluate(
        &mut self,
        plan: &Plan,
    ) -> Result<Vec<Comparison>, Box<dyn std::error::Error + Send + Sync>>;
}

/// A set of layers that always share one setting, selected by glob patterns.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Short name (`flow.0.in_layers`, `dec.resblocks.stage1`).
    pub name: String,
    /// Globs that select exactly this group's layers (one `[[layer]]` rule each).
    pub patterns: Vec<String>,
    /// The layers.
    pub layers: Vec<String>,
    /// How many of them are matmul/conv layers (fidelity applies).
    pub compute_layers: usize,
    /// Weight parameters.
    pub params: usize,
}

/// How finely [`groups`] partitions the layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// Per encoder layer (attention, FFN), per flow coupling part, per decoder upsampling layer.
    Fine,
    /// Encoder attention / FFN as one group each, each flow part across couplings, all `ups`.
    Coarse,
}

/// Errors of the search (evaluation errors do not stop it: see [`Evaluator`]).
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The configuration cannot be searched.
    #[error("invalid precision search: {0}")]
    Config(String),
}

/// Partitions `layers` into groups (see [`Granularity`]); `resblocks_per_stage` is the number of
/// decoder resblocks per upsampling stage (the voice's resblock kernel count). Every layer lands in
/// exactly one group and each group's patterns match only its own layers (checked).
pub fn groups(
    layers: &[Layer],
    resblocks_per_stage: usize,
    granularity: Granularity,
) -> Result<Vec<Group>, SearchError> {
    let fine = granularity == Granularity::Fine;
    let per_stage = resblocks_per_stage.max(1);
    let mut out: Vec<Group> = Vec::new();
    for l in layers {
        let (group, pattern) = group_key(&l.name, per_stage, fine);
        let idx = match out.iter().position(|g| g.name == group) {
            Some(i) => i,
            None => {
                out.push(Group {
                    name: group,
                    patterns: Vec::new(),
                    layers: Vec::new(),
                    compute_layers: 0,
                    params: 0,
                });
                out.len() - 1
            }
        };
        let g = &mut out[idx];
        if !g.patterns.contains(&pattern) {
            g.patterns.push(pattern);
        }
        g.layers.push(l.name.clone());
        g.compute_layers += usize::from(l.is_compute());
        g.params += l.params;
    }
    for l in layers {
        let owners: Vec<&str> = out
            .iter()
            .filter(|g| g.patterns.iter().any(|p| glob_match(p, &l.name)))
            .map(|g| g.name.as_str())
            .collect();
        if owners.len() != 1 {
            return Err(SearchError::Config(format!(
                "layer {} is matched by the patterns of {} groups ({owners:?}); the grouping must be a partition",
                l.name,
                owners.len()
            )));
        }
    }
    Ok(out)
}

/// Group name and glob of one layer.
fn group_key(name: &str, per_stage: usize, fine: bool) -> (String, String) {
    let first = |rest: &str| rest.split('.').next().unwrap_or("").to_string();
    let exact = || (name.to_string(), name.to_string());
    for (prefix, short) in [
        ("enc_p.encoder.attn_layers.", "enc.attn"),
        ("enc_p.encoder.ffn_layers.", "enc.ffn"),
    ] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let i = first(rest);
            return if fine {
                (format!("{short}.{i}"), format!("{prefix}{i}.*"))
            } else {
                (short.to_string(), format!("{prefix}*"))
            };
        }
    }
    if name.starts_with("dp.") {
        return ("dp".into(), "dp.*".into());
    }
    if let Some(rest) = name.strip_prefix("flow.flows.") {
        let c = first(rest);
        let tail = &rest[c.len()..];
        for (part, short, glob) in [
            (".pre", "pre", ".pre"),
            (".post", "post", ".post"),
            (".enc.in_layers.", "in_layers", ".enc.in_layers.*"),
            (
                ".enc.res_skip_layers.",
                "res_skip",
                ".enc.res_skip_layers.*",
            ),
        ] {
            let hit = if part.ends_with('.') {
                tail.starts_with(part)
            } else {
                tail == part
            };
            if hit {
                return if fine {
                    (format!("flow.{c}.{short}"), format!("flow.flows.{c}{glob}"))
                } else {
                    (format!("flow.{short}"), format!("flow.flows.*{glob}"))
                };
            }
        }
        return exact();
    }
    if let Some(rest) = name.strip_prefix("dec.ups.") {
        return if fine || rest.contains('.') {
            exact()
        } else {
            ("dec.ups".into(), "dec.ups.*".into())
        };
    }
    if let Some(rest) = name.strip_prefix("dec.resblocks.") {
        let r = first(rest);
        if let Ok(ri) = r.parse::<usize>() {
            return (
                format!("dec.resblocks.stage{}", ri / per_stage),
                format!("dec.resblocks.{r}.*"),
            );
        }
    }
    exact()
}

/// The default ladder, cheapest first: LoFi levels (bfp4_b, bfp8_b, + fp32 activations, bf16
/// weights), then HiFi2 and HiFi4 with bf16 weights (the `hifi-bf16` preset), then bf16x2
/// weights with fp32x2 activations at HiFi4 (each operand a hi + lo pair, a second matmul pass
/// each; bf16 weights alone cost MCD 2.2-2.4 dB even on the f32 cpu backend), and at the top the
/// same with isolated products (the `hifi` preset: the main term as 8 masked passes, about 8x its
/// FPU work, removing the MVMUL alignment floor that no split lowers).
///
/// The isolated rung is an 8th rung above the split one rather than a replacement: the split
/// without isolation stays available to the demotion (8x cheaper in FPU work for the main term,
/// and enough for groups whose error the alignment floor does not dominate), the top plan is
/// still the best the ladder can do, and quality stays monotone in the level (isolation only
/// removes a rounding), which the bisection assumes. It costs at most one more demotion
/// evaluation per promoted group.
///
/// Every level accumulates in fp32: a layer that reads another layer's fp32 activations needs
/// fp32 accumulation itself (tt ops), so a bf16-accumulation level next to an fp32-activation one
/// would be an invalid combination.
pub fn default_ladder() -> Vec<LayerPrecision> {
    use ActivationFormat::{Fp32, Fp32x2};
    use Fidelity::{HiFi2, HiFi4, LoFi};
    use WeightFormat::{Bf16, Bf16x2, Bfp4, Bfp8};
    vec![
        LayerPrecision::new(Bfp4, LoFi, true),
        LayerPrecision::new(Bfp8, LoFi, true),
        LayerPrecision::new(Bfp8, LoFi, true).with_activations(Fp32),
        LayerPrecision::new(Bf16, LoFi, true).with_activations(Fp32),
        LayerPrecision::new(Bf16, HiFi2, true).with_activations(Fp32),
        LayerPrecision::new(Bf16, HiFi4, true).with_activations(Fp32),
        LayerPrecision::new(Bf16x2, HiFi4, true).with_activations(Fp32x2),
        LayerPrecision::new(Bf16x2, HiFi4, true)
            .with_activations(Fp32x2)
            .with_isolated_products(true),
    ]
}

/// What to search.
#[derive(Debug, Clone)]
pub struct SearchConfig {
    /// Name of the resulting plan.
    pub name: String,
    /// Quality gates.
    pub gates: Gates,
    /// Settings a group can take, cheapest first (at least one; all valid).
    pub ladder: Vec<LayerPrecision>,
    /// The partition of the layers.
    pub groups: Vec<Group>,
    /// Stop after this many evaluations (the best plan so far is returned).
    pub max_evaluations: usize,
    /// When the top plan misses the gates but keeps every frame count: continue with the gates
    /// relaxed to the top plan's worst MCD and L1 times `1 + slack`, to find the cheapest plan
    /// about as good as the best the ladder can do. The outcome still reports the original gates
    /// as missed. `None`: stop at the top plan.
    pub fallback_slack: Option<f64>,
    /// Rules appended to every plan after the group rules (constraints of the backend, e.g.
    /// `activations = "bf16"` for ops without fp32 activations); they must keep settings valid.
    pub fixed: Vec<Rule>,
}

/// Phase of the search an evaluation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Every group at the floor.
    Floor,
    /// Every group at the top.
    Top,
    /// The top plan with one group at the floor.
    Sensitivity,
    /// A group raised to the top.
    Promote,
    /// A promoted group tried at a lower level.
    Demote,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Floor => "floor",
            Phase::Top => "top",
            Phase::Sensitivity => "sensitivity",
            Phase::Promote => "promote",
            Phase::Demote => "demote",
        })
    }
}

/// One evaluation of the search.
#[derive(Debug, Clone)]
pub struct Step {
    /// 1-based evaluation number (cached repeats reuse the number of the first).
    pub number: usize,
    /// Phase.
    pub phase: Phase,
    /// The group changed (None for the floor and top plans).
    pub group: Option<String>,
    /// The changed group's setting.
    pub setting: Option<LayerPrecision>,
    /// Level of every group.
    pub levels: Vec<usize>,
    /// What was measured.
    pub measured: Measured,
    /// Its gate violation ([`Measured::violation`]).
    pub violation: f64,
    /// Whether it met the gates.
    pub passed: bool,
    /// Whether the result came from an earlier identical evaluation.
    pub cached: bool,
}

/// The result of a search.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The plan found (rules carry reasons).
    pub plan: Plan,
    /// Level of every group in the plan.
    pub levels: Vec<usize>,
    /// Its measurement.
    pub measured: Measured,
    /// Whether it met the gates (the configured ones, never the relaxed fallback gates).
    pub passed: bool,
    /// The configured gates it missed (empty when passed).
    pub misses: Vec<String>,
    /// The relaxed gates of the fallback search, when it ran (see
    /// [`SearchConfig::fallback_slack`]); the plan meets these if `fallback_met`.
    pub relaxed_gates: Option<Gates>,
    /// Whether the plan meets the relaxed gates.
    pub fallback_met: bool,
    /// Why the search ended where it did.
    pub note: String,
    /// Every evaluation in order.
    pub steps: Vec<Step>,
    /// Per group: the violation of the top plan with only that group at the floor (measured
    /// groups only), most sensitive first.
    pub sensitivities: Vec<(String, f64)>,
    /// Evaluations actually run (cache hits excluded).
    pub evaluations: usize,
}

struct Runner<'a, E: Evaluator, F: FnMut(&Step)> {
    cfg: &'a SearchConfig,
    eval: &'a mut E,
    on_step: F,
    cache: HashMap<Vec<usize>, Measured>,
    steps: Vec<Step>,
    evaluations: usize,
    /// The gates in force (the configured ones, or the relaxed fallback gates).
    gates: Gates,
}

/// Raised internally when the evaluation budget is spent.
struct OutOfBudget;

impl<E: Evaluator, F: FnMut(&Step)> Runner<'_, E, F> {
    fn measure(
        &mut self,
        levels: &[usize],
        phase: Phase,
        group: Option<usize>,
    ) -> Result<Measured, OutOfBudget> {
        let cached = self.cache.get(levels).cloned();
        let (measured, cached, number) = match cached {
            Some(m) => {
                let n = self
                    .steps
                    .iter()
                    .find(|s| s.levels == levels && !s.cached)
                    .map_or(0, |s| s.number);
                (m, true, n)
            }
            None => {
                if self.evaluations >= self.cfg.max_evaluations {
                    return Err(OutOfBudget);
                }
                let plan = plan_of(self.cfg, levels, &HashMap::new(), "search candidate");
                let m = match self.eval.evaluate(&plan) {
                    Ok(c) => Measured::new(c),
                    Err(e) => Measured {
                        comparisons: Vec::new(),
                        error: Some(format!("{} ({e})", describe(self.cfg, levels))),
                    },
                };
                self.evaluations += 1;
                self.cache.insert(levels.to_vec(), m.clone());
                (m, false, self.evaluations)
            }
        };
        let step = Step {
            number,
            phase,
            group: group.map(|g| self.cfg.groups[g].name.clone()),
            setting: group.map(|g| self.cfg.ladder[levels[g]]),
            levels: levels.to_vec(),
            violation: measured.violation(&self.gates),
            passed: measured.passes(&self.gates),
            measured: measured.clone(),
            cached,
        };
        (self.on_step)(&step);
        self.steps.push(step);
        Ok(measured)
    }
}

/// FPU passes of a layer's main matmul term with isolated products: the 8 weight-masked passes
/// (tt-kernels `Precision::isolate_products`, measured by its tests at about 8x the main term's
/// FPU work).
const ISOLATED_MAIN_TERM_PASSES: usize = 8;

/// Cost of an assignment, compared lexicographically: compute layers not in LoFi, main-term FPU
/// passes added by isolated products (7 more per isolated compute layer, 8 instead of 1: the costliest
/// switch of the ladder, so it ranks right after fidelity), weight parameters in bf16 (bf16x2
/// counts twice: two tiles and two matmul passes), fp32-activation layers (fp32x2 counts twice:
/// two passes), fp32-accumulation layers, sum of levels.
/// The cost tuple of [`cost`] (see there for the order).
type Cost = (usize, usize, usize, usize, usize, usize);

fn cost(cfg: &SearchConfig, levels: &[usize]) -> Cost {
    let mut c = (0, 0, 0, 0, 0, 0);
    for (g, &l) in cfg.groups.iter().zip(levels) {
        let s = cfg.ladder[l];
        if s.fidelity != Fidelity::LoFi {
            c.0 += g.compute_layers;
        }
        if s.isolate_products {
            c.1 += (ISOLATED_MAIN_TERM_PASSES - 1) * g.compute_layers;
        }
        match s.weights {
            WeightFormat::Bf16x2 => c.2 += 2 * g.params,
            WeightFormat::Bf16 => c.2 += g.params,
            WeightFormat::Bfp8 | WeightFormat::Bfp4 => {}
        }
        match s.activations {
            ActivationFormat::Fp32x2 => c.3 += 2 * g.compute_layers,
            ActivationFormat::Fp32 => c.3 += g.compute_layers,
            ActivationFormat::Bf16 => {}
        }
        if s.fp32_acc {
            c.4 += g.compute_layers;
        }
        c.5 += l;
    }
    c
}

/// `level: groups` for every level above the floor in use (or `floor`), at most 4 names per level.
fn describe(cfg: &SearchConfig, levels: &[usize]) -> String {
    let mut parts = Vec::new();
    for (l, s) in cfg.ladder.iter().enumerate().skip(1) {
        let names: Vec<&str> = cfg
            .groups
            .iter()
            .zip(levels)
            .filter(|(_, x)| **x == l)
            .map(|(g, _)| g.name.as_str())
            .collect();
        match names.len() {
            0 => {}
            n if n == cfg.groups.len() => parts.push(format!("every group at {s}")),
            n if n > 4 => parts.push(format!("{s}: {} and {} more", names[..4].join(", "), n - 4)),
            _ => parts.push(format!("{s}: {}", names.join(", "))),
        }
    }
    if parts.is_empty() {
        format!("floor ({})", cfg.ladder[0])
    } else {
        parts.join("; ")
    }
}

/// The plan of an assignment: one full rule per pattern of every group at its level, with
/// `reasons[group]` (or `fallback`) as the reason, and the ladder's **top** setting as
/// `[default]`. The default is what the backend gives everything no group names: the layer
/// norms and the eltwise glue of the encoder and the duration predictor, which are not compute
/// layers (no share counts them) but whose precision matters as much as a layer's (with the
/// floor there, every candidate ran its layer norms in bf16 / LoFi and missed the gates even
/// with every group at the top).
pub fn plan_of(
    cfg: &SearchConfig,
    levels: &[usize],
    reasons: &HashMap<usize, String>,
    fallback: &str,
) -> Plan {
    let mut rules = Vec::new();
    for (gi, (g, &l)) in cfg.groups.iter().zip(levels).enumerate() {
        let s = cfg.ladder[l];
        for p in &g.patterns {
            rules.push(Rule {
                pattern: p.clone(),
                weights: Some(s.weights),
                fidelity: Some(s.fidelity),
                fp32_acc: Some(s.fp32_acc),
                activations: Some(s.activations),
                isolate_products: Some(s.isolate_products),
                reason: Some(
                    reasons
                        .get(&gi)
                        .cloned()
                        .unwrap_or_else(|| fallback.to_string()),
                ),
            });
        }
    }
    rules.extend(cfg.fixed.iter().cloned());
    Plan {
        name: cfg.name.clone(),
        description: format!(
            "auto: searched per-group settings under gates MCD <= {} dB, log-mel L1 <= {}",
            cfg.gates.max_mcd_db, cfg.gates.max_log_mel_l1
        ),
        default: cfg.ladder[cfg.ladder.len() - 1],
        rules,
    }
}

/// Runs the search (see the module documentation); `on_step` sees every evaluation as it
/// completes.
pub fn search<E: Evaluator>(
    cfg: &SearchConfig,
    evaluator: &mut E,
    on_step: impl FnMut(&Step),
) -> Result<Outcome, SearchError> {
    if cfg.ladder.is_empty() {
        return Err(SearchError::Config(
            "the ladder of settings is empty".into(),
        ));
    }
    if let Some(s) = cfg.ladder.iter().find(|s| !s.is_valid()) {
        return Err(SearchError::Config(format!(
            "ladder setting {s} is invalid: fp32 / fp32x2 activations, bf16x2 weights and isolate_products need fp32 accumulation"
        )));
    }
    if cfg.groups.is_empty() {
        return Err(SearchError::Config("no layer groups to search".into()));
    }
    if let Some(r) = cfg.fixed.iter().find(|r| {
        r.activations.is_some_and(|a| a.is_fp32())
            || r.weights.is_some_and(|w| w.is_split())
            || r.isolate_products == Some(true)
            || r.fp32_acc == Some(false)
    }) {
        return Err(SearchError::Config(format!(
            "fixed rule `{}` could make a ladder setting invalid (fp32 / fp32x2 activations, bf16x2 weights and isolate_products need fp32 accumulation): fixed rules may only lower activations to bf16, clear isolate_products or raise settings",
            r.pattern
        )));
    }
    if cfg.max_evaluations == 0 {
        return Err(SearchError::Config(
            "the evaluation budget is 0: allow at least one evaluation".into(),
        ));
    }
    let n = cfg.groups.len();
    let top = cfg.ladder.len() - 1;
    let mut r = Runner {
        cfg,
        eval: evaluator,
        on_step,
        cache: HashMap::new(),
        steps: Vec::new(),
        evaluations: 0,
        gates: cfg.gates,
    };
    let mut gates = cfg.gates;
    let mut relaxed: Option<Gates> = None;
    let mut reasons: HashMap<usize, String> = HashMap::new();
    let mut sensitivities: Vec<(usize, f64)> = Vec::new();
    let floor = vec![0; n];
    let mut current = floor.clone();
    let note: String;
    'search: {
        let Ok(m) = r.measure(&floor, Phase::Floor, None) else {
            note = "evaluation budget spent before the first evaluation".into();
            break 'search;
        };
        if m.passes(&gates) {
            note = "the floor plan (every group at the cheapest setting) meets the gates".into();
            break 'search;
        }
        let all_top = vec![top; n];
        if top > 0 {
            let Ok(m) = r.measure(&all_top, Phase::Top, None) else {
                note = "evaluation budget spent".into();
                break 'search;
            };
            if !m.passes(&gates) {
                let miss = format!(
                    "the gates cannot be met: even every group at the top setting ({}) misses them ({})",
                    cfg.ladder[top],
                    m.misses(&gates).join("; ")
                );
                let top_metrics = (m.frame_mismatches(), m.worst_mcd_db(), m.worst_log_mel_l1());
                let (Some(slack), (0, Some(mcd), Some(l1))) = (cfg.fallback_slack, top_metrics)
                else {
                    note = miss;
                    break 'search;
                };
                gates = Gates {
                    max_mcd_db: mcd * (1.0 + slack),
                    max_log_mel_l1: l1 * (1.0 + slack),
                };
                relaxed = Some(gates);
                r.gates = gates;
                if r.cache.get(&floor).is_some_and(|f| f.passes(&gates)) {
                    note = format!(
                        "{miss}; fallback (gates relaxed to the top plan's quality + {:.0}%): the floor plan meets them",
                        100.0 * slack
                    );
                    break 'search;
                }
            }
        } else {
            note = "the gates cannot be met: the ladder has a single setting".into();
            break 'search;
        }
        for g in 0..n {
            let mut lv = all_top.clone();
            lv[g] = 0;
            let Ok(m) = r.measure(&lv, Phase::Sensitivity, Some(g)) else {
                note = "evaluation budget spent while measuring sensitivities".into();
                break 'search;
            };
            sensitivities.push((g, m.violation(&gates)));
        }
        // Most sensitive first; ties: more parameters first (then group order).
        let mut order: Vec<(usize, f64)> = sensitivities.clone();
        order.sort_by(|a, b| {
            b.1.total_cmp(&a.1)
                .then(cfg.groups[b.0].params.cmp(&cfg.groups[a.0].params))
                .then(a.0.cmp(&b.0))
        });
        let mut promoted = Vec::new();
        let mut passing = false;
        for &(g, sens) in &order {
            current[g] = top;
            promoted.push((g, sens));
            let Ok(m) = r.measure(&current, Phase::Promote, Some(g)) else {
                note = "evaluation budget spent while promoting".into();
                break 'search;
            };
            if m.passes(&gates) {
                passing = true;
                break;
            }
        }
        if !passing {
            // Every group promoted is the top plan, which passed: unreachable unless the
            // evaluator is not deterministic.
            note =
                "promotion ended without meeting the gates (non-deterministic evaluator?)".into();
            break 'search;
        }
        for &(g, sens) in promoted.iter().rev() {
            let (mut lo, mut hi) = (0usize, top);
            while lo < hi {
                let mid = (lo + hi) / 2;
                let mut lv = current.clone();
                lv[g] = mid;
                let Ok(m) = r.measure(&lv, Phase::Demote, Some(g)) else {
                    current[g] = hi;
                    note = "evaluation budget spent while demoting: the plan meets the gates but may not be the cheapest".into();
                    reasons.insert(g, reason(cfg, g, sens, hi, "partly demoted"));
                    break 'search;
                };
                if m.passes(&gates) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            current[g] = hi;
            if hi > 0 {
                reasons.insert(g, reason(cfg, g, sens, hi, "lowest passing level"));
            }
        }
        note = match relaxed {
            None => "the gates are met".into(),
            Some(g) => format!(
                "the gates cannot be met (not even with every group at the top setting); fallback: cheapest plan found within the top plan's quality + {:.0}% (MCD <= {:.4} dB, log-mel L1 <= {:.5})",
                100.0 * cfg.fallback_slack.unwrap_or(0.0),
                g.max_mcd_db,
                g.max_log_mel_l1
            ),
        };
    }
    // The answer: the cheapest passing plan measured (normally `current`), else the best one.
    let pick = best(cfg, &gates, &r.cache);
    if pick != current {
        reasons.clear();
    }
    let measured = r
        .cache
        .get(&pick)
        .cloned()
        .unwrap_or_else(|| Measured::new(Vec::new()));
    for (g, &l) in pick.iter().enumerate() {
        if l > 0 && !reasons.contains_key(&g) {
            let sens = sensitivities.iter().find(|s| s.0 == g).map(|s| s.1);
            reasons.insert(
                g,
                match sens {
                    Some(s) => reason(cfg, g, s, l, "best plan found"),
                    None => format!(
                        "auto: {} at level {l} ({}) in the best plan found; sensitivity not measured",
                        cfg.groups[g].name, cfg.ladder[l]
                    ),
                },
            );
        }
    }
    let mut sens_sorted: Vec<(String, f64)> = sensitivities
        .iter()
        .map(|(g, v)| (cfg.groups[*g].name.clone(), *v))
        .collect();
    sens_sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(Outcome {
        plan: plan_of(cfg, &pick, &reasons, "auto"),
        passed: measured.passes(&cfg.gates),
        misses: measured.misses(&cfg.gates),
        fallback_met: relaxed.is_some_and(|g| measured.passes(&g)),
        relaxed_gates: relaxed,
        measured,
        levels: pick,
        note,
        steps: r.steps,
        sensitivities: sens_sorted,
        evaluations: r.evaluations,
    })
}

fn reason(cfg: &SearchConfig, g: usize, sens: f64, level: usize, how: &str) -> String {
    format!(
        "auto: {} at level {level} ({}), {how}; sensitivity (gate violation of the top plan with only this group at the floor): {sens:.3}",
        cfg.groups[g].name, cfg.ladder[level]
    )
}

/// The best measured assignment: passing ones by cost; otherwise fewest frame mismatches, then
/// smallest violation, then cost.
fn best(cfg: &SearchConfig, g: &Gates, cache: &HashMap<Vec<usize>, Measured>) -> Vec<usize> {
    let mut all: Vec<(&Vec<usize>, &Measured)> = cache.iter().collect();
    all.sort_by(|a, b| {
        b.1.passes(g)
            .cmp(&a.1.passes(g))
            .then_with(|| {
                if a.1.passes(g) && b.1.passes(g) {
                    std::cmp::Ordering::Equal
                } else {
                    let (ra, rb) = (a.1.rank(g), b.1.rank(g));
                    ra.0.cmp(&rb.0)
                        .then(ra.1.cmp(&rb.1))
                        .then(ra.2.total_cmp(&rb.2))
                }
            })
            .then(cost(cfg, a.0).cmp(&cost(cfg, b.0)))
            .then(a.0.cmp(b.0))
    });
    all.first()
        .map_or_else(|| vec![0; cfg.groups.len()], |(lv, _)| (*lv).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::precision::{LayerKind, Rate};

    fn conv(name: &str, params: usize) -> Layer {
        Layer {
            name: name.into(),
            kind: LayerKind::Conv {
                cout: params,
                cin_per_group: 1,
                k: 1,
            },
            rate: Rate::Frames(1),
            params,
        }
    }

    fn voice_like() -> Vec<Layer> {
        let mut v = vec![Layer {
            name: "enc_p.emb".into(),
            kind: LayerKind::Embedding,
            rate: Rate::Ids,
            params: 100,
        }];
        for i in 0..2 {
            for p in ["conv_q", "conv_k", "conv_v", "conv_o"] {
                v.push(conv(&format!("enc_p.encoder.attn_layers.{i}.{p}"), 10));
            }
            v.push(conv(&format!("enc_p.encoder.ffn_layers.{i}.conv_1"), 20));
        }
        v.push(conv("enc_p.proj", 5));
        v.push(conv("dp.convs.0", 3));
        for c in [0, 2] {
            v.push(conv(&format!("flow.flows.{c}.pre"), 7));
            for j in 0..2 {
                v.push(conv(&format!("flow.flows.{c}.enc.in_layers.{j}"), 30));
                v.push(conv(&format!("flow.flows.{c}.enc.res_skip_layers.{j}"), 15));
            }
            v.push(conv(&format!("flow.flows.{c}.post"), 7));
        }
        v.push(conv("dec.conv_pre", 40));
        for i in 0..2 {
            v.push(conv(&format!("dec.ups.{i}"), 50));
        }
        for r in 0..12 {
            v.push(conv(&format!("dec.resblocks.{r}.convs.0"), 8));
        }
        v.push(conv("dec.conv_post", 2));
        v
    }

    #[test]
    fn groups_partition_the_layers() {
        let layers = voice_like();
        let fine = groups(&layers, 3, Granularity::Fine).expect("partition");
        let names: Vec<&str> = fine.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "enc_p.emb",
                "enc.attn.0",
                "enc.ffn.0",
                "enc.attn.1",
                "enc.ffn.1",
                "enc_p.proj",
                "dp",
                "flow.0.pre",
                "flow.0.in_layers",
                "flow.0.res_skip",
                "flow.0.post",
                "flow.2.pre",
                "flow.2.in_layers",
                "flow.2.res_skip",
                "flow.2.post",
                "dec.conv_pre",
                "dec.ups.0",
                "dec.ups.1",
                "dec.resblocks.stage0",
                "dec.resblocks.stage1",
                "dec.resblocks.stage2",
                "dec.resblocks.stage3",
                "dec.conv_post",
            ]
        );
        let stage1 = &fine[19];
        assert_eq!(
            stage1.patterns,
            [
                "dec.resblocks.3.*",
                "dec.resblocks.4.*",
                "dec.resblocks.5.*"
            ]
        );
        assert_eq!(stage1.params, 24);
        assert_eq!(fine[0].compute_layers, 0);
        assert_eq!(fine[1].compute_layers, 4);
        assert_eq!(fine[8].patterns, ["flow.flows.0.enc.in_layers.*"]);
        let total: usize = fine.iter().map(|g| g.layers.len()).sum();
        assert_eq!(total, layers.len());
        let coarse = groups(&layers, 3, Granularity::Coarse).expect("partition");
        let names: Vec<&str> = coarse.iter().map(|g| g.name.as_str()).collect();
        assert!(names.contains(&"enc.attn") && names.contains(&"flow.in_layers"));
        assert!(names.contains(&"dec.ups"));
        assert_eq!(coarse.len(), 16, "{names:?}");
    }

    /// Fake evaluator: a group at level `l` adds `weight * 0.5^l` to the MCD and a tenth of that to
    /// the L1; a frame count changes when the encoder's total error exceeds 1.
    struct Fake {
        weights: Vec<(String, f64)>,
        ladder: Vec<LayerPrecision>,
        calls: usize,
    }

    impl Evaluator for Fake {
        fn evaluate(
            &mut self,
            plan: &Plan,
        ) -> Result<Vec<Comparison>, Box<dyn std::error::Error + Send + Sync>> {
            self.calls += 1;
            let (mut mcd, mut enc) = (0.0, 0.0);
            for (layer, w) in &self.weights {
                let s = plan.setting_for(layer);
                if layer == "dec.ups.2" && s.activations.is_fp32() {
                    return Err("ups.2: fp32 activations are not supported".into());
                }
                // A fixed rule may lower the activations: the first level with the rest equal.
                let l = self
                    .ladder
                    .iter()
                    .position(|x| *x == s)
                    .or_else(|| {
                        self.ladder.iter().position(|x| {
                            x.with_activations(ActivationFormat::Bf16)
                                == s.with_activations(ActivationFormat::Bf16)
                        })
                    })
                    .ok_or("setting not on the ladder")?;
                let e = w * 0.5f64.powi(l as i32);
                mcd += e;
                if layer.starts_with("enc_p.") {
                    enc += e;
                }
            }
            let test_frames = if enc > 1.0 { 73 } else { 72 };
            Ok(vec![Comparison {
                ref_frames: 72,
                test_frames,
                snr_db: None,
                pcc: None,
                mcd_db: (test_frames == 72).then_some(mcd),
                log_mel_l1: (test_frames == 72).then_some(mcd / 10.0),
            }])
        }
    }

    fn setup(weights: &[(&str, f64)], budget: usize) -> (SearchConfig, Fake) {
        let layers: Vec<Layer> = weights.iter().map(|(n, _)| conv(n, 10)).collect();
        let ladder = default_ladder();
        let cfg = SearchConfig {
            name: "auto".into(),
            gates: Gates {
                max_mcd_db: 0.3,
                max_log_mel_l1: 0.03,
            },
            ladder: ladder.clone(),
            groups: groups(&layers, 3, Granularity::Fine).expect("partition"),
            max_evaluations: budget,
            fallback_slack: None,
            fixed: Vec::new(),
        };
        let fake = Fake {
            weights: weights.iter().map(|(n, w)| (n.to_string(), *w)).collect(),
            ladder,
            calls: 0,
        };
        (cfg, fake)
    }

    #[test]
    fn promotes_the_sensitive_groups_and_demotes_them_as_far_as_the_gates_allow() {
        // Floor MCD = 2.0 + 0.01 * 8 = 2.08 > 0.3. `dec.ups.0` (weight 2.0) must go to a level l
        // with 2.0 * 0.5^l + rest <= 0.3: the others at level 0 add 0.08, so 0.5^l <= 0.11:
        // level 3 gives 0.25 + 0.08 = 0.33 (fails), level 4 gives 0.125 + 0.08 = 0.205 (passes).
        // Every other group stays at the floor.
        let weights = [
            ("enc_p.proj", 0.01),
            ("dp.convs.0", 0.01),
            ("flow.flows.0.pre", 0.01),
            ("flow.flows.0.enc.in_layers.0", 0.01),
            ("dec.conv_pre", 0.01),
            ("dec.ups.0", 2.0),
            ("dec.ups.1", 0.01),
            ("dec.resblocks.0.convs.0", 0.01),
            ("dec.conv_post", 0.01),
        ];
        let (cfg, mut fake) = setup(&weights, 1000);
        let mut seen = Vec::new();
        let out = search(&cfg, &mut fake, |s| seen.push((s.phase, s.group.clone())))
            .expect("search runs");
        assert!(out.passed, "{:?} {}", out.misses, out.note);
        assert!(out.misses.is_empty());
        let ups = cfg
            .groups
            .iter()
            .position(|g| g.name == "dec.ups.0")
            .expect("group");
        let mut want = vec![0; cfg.groups.len()];
        want[ups] = 4;
        assert_eq!(out.levels, want);
        assert_eq!(out.sensitivities[0].0, "dec.ups.0");
        // Phases in order: floor, top, one sensitivity per group, promotion of ups.0, demotion.
        assert_eq!(seen[0].0, Phase::Floor);
        assert_eq!(seen[1].0, Phase::Top);
        assert!(
            seen[2..2 + cfg.groups.len()]
                .iter()
                .all(|s| s.0 == Phase::Sensitivity)
        );
        let promote = &seen[2 + cfg.groups.len()];
        assert_eq!(
            (promote.0, promote.1.as_deref()),
            (Phase::Promote, Some("dec.ups.0"))
        );
        assert!(seen.last().is_some_and(|s| s.0 == Phase::Demote));
        // Bisection over 8 levels: at most 3 demotion evaluations.
        let demotions = seen.iter().filter(|s| s.0 == Phase::Demote).count();
        assert!(demotions <= 3, "{demotions}");
        assert_eq!(fake.calls, out.evaluations);
        // The plan is a real plan: the top setting as default (for what no group names) and
        // one rule per group, each with a reason; ups.0's names its sensitivity.
        assert_eq!(out.plan.default, cfg.ladder[cfg.ladder.len() - 1]);
        assert_eq!(out.plan.rules.len(), cfg.groups.len());
        let ups_rule = out
            .plan
            .rules
            .iter()
            .find(|r| r.pattern == "dec.ups.0")
            .expect("rule for ups.0");
        assert_eq!(ups_rule.weights, Some(cfg.ladder[4].weights));
        assert_eq!(ups_rule.fidelity, Some(cfg.ladder[4].fidelity));
        assert!(
            ups_rule
                .reason
                .as_deref()
                .is_some_and(|r| r.contains("sensitivity"))
        );
        assert!(
            out.plan
                .rules
                .iter()
                .filter(|r| r.pattern != "dec.ups.0")
                .all(|r| r.weights == Some(cfg.ladder[0].weights)
                    && r.fidelity == Some(cfg.ladder[0].fidelity))
        );
        let text = out.plan.to_toml(&[]);
        assert_eq!(Plan::from_toml(&text, "t").expect("reads back"), out.plan);
    }

    #[test]
    fn frame_count_changes_force_a_promotion() {
        // The encoder's floor error 1.2 changes the frame count; at level 1 it is 0.6 (frames
        // match, MCD 0.6 + 0.02 > 0.3); level 2: 0.3 + 0.02 > 0.3; level 3: 0.15 + 0.02 passes.
        let weights = [
            ("enc_p.proj", 1.2),
            ("dec.conv_pre", 0.01),
            ("dec.conv_post", 0.01),
        ];
        let (cfg, mut fake) = setup(&weights, 1000);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.passed);
        assert_eq!(out.levels, vec![3, 0, 0]);
        assert!(out.steps[0].violation >= 1000.0, "floor changes frames");
    }

    #[test]
    fn floor_that_passes_needs_one_evaluation() {
        let (cfg, mut fake) = setup(&[("dec.conv_pre", 0.01), ("dec.conv_post", 0.01)], 1000);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.passed);
        assert_eq!(out.evaluations, 1);
        assert_eq!(out.levels, vec![0, 0]);
        // Both groups named at the floor; the default (the top) covers only the rest.
        assert_eq!(out.plan.rules.len(), 2);
        assert!(
            out.plan
                .rules
                .iter()
                .all(|r| r.weights == Some(cfg.ladder[0].weights))
        );
    }

    #[test]
    fn unreachable_gates_are_reported_never_claimed() {
        // Even at the top (0.5^7) the error is 64 / 128 = 0.5 > 0.3.
        let (cfg, mut fake) = setup(&[("dec.conv_pre", 64.0), ("dec.conv_post", 0.01)], 1000);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(!out.passed);
        assert!(out.note.contains("cannot be met"), "{}", out.note);
        assert!(
            out.misses.iter().any(|m| m.starts_with("MCD")),
            "{:?}",
            out.misses
        );
        // The best plan found is the top plan (smallest violation), with reasons.
        assert_eq!(out.levels, vec![7, 7]);
        assert_eq!(
            (
                out.plan.rules[0].weights,
                out.plan.rules[0].isolate_products
            ),
            (Some(WeightFormat::Bf16x2), Some(true)),
            "the top rung is bf16x2 with isolated products"
        );
        assert_eq!(out.evaluations, 2);
        assert!(out.relaxed_gates.is_none() && !out.fallback_met);
    }

    #[test]
    fn fallback_finds_the_cheapest_plan_near_the_top_quality_without_claiming_the_gates() {
        // Top: 64/128 + 0.01/128 = 0.50008 dB (misses 0.3); relaxed gate 1.25 x 0.50008 = 0.6251.
        // conv_post alone can stay at the floor (0.5 + 0.01 = 0.51 passes the relaxed gate);
        // conv_pre needs the top level (level 6: 1.0 + 0.01 = 1.01 fails).
        let (mut cfg, mut fake) = setup(&[("dec.conv_pre", 64.0), ("dec.conv_post", 0.01)], 1000);
        cfg.fallback_slack = Some(0.25);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(!out.passed, "the configured gates are still missed");
        assert!(
            out.misses.iter().any(|m| m.starts_with("MCD")),
            "{:?}",
            out.misses
        );
        let relaxed = out.relaxed_gates.expect("fallback ran");
        assert!((relaxed.max_mcd_db - 1.25 * (0.5 + 0.01 / 128.0)).abs() < 1e-12);
        assert!(out.fallback_met);
        assert_eq!(out.levels, vec![7, 0]);
        assert!(out.note.contains("fallback"), "{}", out.note);
        // No fallback when the top plan changes a frame count (encoder error 256 / 128 = 2 > 1).
        let (mut cfg, mut fake) = setup(&[("enc_p.proj", 256.0)], 1000);
        cfg.fallback_slack = Some(0.25);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.relaxed_gates.is_none() && !out.passed);
        assert_eq!(out.evaluations, 2);
    }

    #[test]
    fn budget_stops_the_search_with_the_best_plan_so_far() {
        let weights = [
            ("dec.conv_pre", 0.01),
            ("dec.ups.0", 2.0),
            ("dec.conv_post", 0.01),
        ];
        // Floor + top + 3 sensitivities = 5; budget 5 stops before any promotion: the best
        // plan is the top plan (the only passing one).
        let (cfg, mut fake) = setup(&weights, 5);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.note.contains("budget"), "{}", out.note);
        assert_eq!(out.evaluations, 5);
        assert!(out.passed);
        // Cheapest passing measured plan: top with conv_pre or conv_post at the floor (both
        // pass: 0.01 + 2/128 + 0.01/128); the tie is broken by group order.
        assert_eq!(out.levels, vec![0, 7, 7]);
    }

    #[test]
    fn identical_plans_are_evaluated_once() {
        // One group: the sensitivity plan equals the floor plan.
        let (cfg, mut fake) = setup(&[("dec.ups.0", 2.0)], 1000);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.passed);
        assert!(out.steps.iter().any(|s| s.cached));
        assert_eq!(fake.calls, out.evaluations);
        assert!(out.evaluations < out.steps.len());
    }

    #[test]
    fn failed_evaluations_miss_the_gates_and_fixed_rules_avoid_them() {
        // The fake rejects fp32 and fp32x2 activations on ups.2: every plan with ups.2 at level
        // >= 2 fails, so the top plan fails and the search says so without stopping on the error.
        let weights = [("dec.ups.2", 0.01), ("dec.ups.0", 2.0)];
        let (mut cfg, mut fake) = setup(&weights, 1000);
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(!out.passed);
        assert!(out.note.contains("not supported"), "{}", out.note);
        let top = &out.steps[1];
        assert!(top.measured.error.is_some() && top.violation.is_infinite());
        // The best plan found is the measured floor, not the failed top plan.
        assert_eq!(out.levels, vec![0, 0]);
        // With a fixed rule keeping ups.2's activations in bf16 the search succeeds.
        cfg.fixed = vec![Rule {
            pattern: "dec.ups.2".into(),
            weights: None,
            fidelity: None,
            fp32_acc: None,
            activations: Some(ActivationFormat::Bf16),
            isolate_products: None,
            reason: Some("no fp32 activations on this op".into()),
        }];
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.passed, "{:?}", out.misses);
        // ups.0 at level 3: 2.0 / 8 + 0.01 = 0.26 <= 0.3; level 2: 0.51 fails.
        assert_eq!(out.levels, vec![0, 3]);
        assert_eq!(
            out.plan.rules.last().map(|r| r.pattern.as_str()),
            Some("dec.ups.2")
        );
        // Fixed rules that could invalidate a setting are refused.
        cfg.fixed[0].fp32_acc = Some(false);
        assert!(matches!(
            search(&cfg, &mut fake, |_| {}),
            Err(SearchError::Config(_))
        ));
        cfg.fixed[0].fp32_acc = None;
        cfg.fixed[0].activations = Some(ActivationFormat::Fp32x2);
        assert!(matches!(
            search(&cfg, &mut fake, |_| {}),
            Err(SearchError::Config(_))
        ));
    }

    #[test]
    fn the_top_rung_is_the_isolated_split_hifi_and_costs_the_most() {
        let ladder = default_ladder();
        assert_eq!(ladder.len(), 8);
        let split = LayerPrecision::new(WeightFormat::Bf16x2, Fidelity::HiFi4, true)
            .with_activations(ActivationFormat::Fp32x2);
        let top = ladder[7];
        assert_eq!(top, split.with_isolated_products(true));
        assert_eq!(top.to_string(), "bf16x2/HiFi4/fp32acc/fp32x2act/iso");
        // Below it the same split without isolation, then plain bf16 (`hifi-bf16`); only the top
        // rung isolates.
        assert_eq!(ladder[6], split);
        assert_eq!(
            ladder.iter().filter(|s| s.isolate_products).count(),
            1,
            "{ladder:?}"
        );
        // The top rung is the `hifi` preset; the rung two below it is `hifi-bf16`.
        let preset = |n: &str| Plan::preset(n).map(|p| p.default);
        assert_eq!(preset("hifi"), Some(top));
        assert_eq!(preset("hifi-bf16"), Some(ladder[5]));
        assert!(ladder.iter().all(|s| s.is_valid()));
        // One group: the cost rises strictly with the level (the split rung above plain bf16,
        // the isolated rung above the split).
        let (mut cfg, _) = setup(&[("dec.ups.0", 1.0)], 1);
        cfg.ladder = ladder.clone();
        let costs: Vec<_> = (0..ladder.len()).map(|l| cost(&cfg, &[l])).collect();
        assert!(costs.windows(2).all(|w| w[0] < w[1]), "{costs:?}");
        // Isolation outranks parameter bytes: isolating a small group costs more than the split
        // (without isolation) on a group 100x larger.
        let layers = [conv("dec.ups.0", 1000), conv("dec.conv_pre", 10)];
        cfg.groups = groups(&layers, 3, Granularity::Fine).expect("partition");
        let small_isolated = cost(&cfg, &[5, 7]);
        let large_split = cost(&cfg, &[6, 6]);
        assert!(
            large_split < small_isolated,
            "{large_split:?} {small_isolated:?}"
        );
        // 7 extra main-term passes per isolated compute layer.
        assert_eq!(small_isolated.1, 7);
        assert_eq!(cost(&cfg, &[7, 7]).1, 14);
    }

    #[test]
    fn fixed_rules_may_clear_isolation_but_not_set_it() {
        let (mut cfg, mut fake) = setup(&[("dec.ups.0", 2.0), ("dec.conv_pre", 0.01)], 1000);
        let rule = |iso: bool| Rule {
            pattern: "dec.conv_pre".into(),
            weights: None,
            fidelity: None,
            fp32_acc: None,
            activations: None,
            isolate_products: Some(iso),
            reason: Some("test".into()),
        };
        cfg.fixed = vec![rule(true)];
        match search(&cfg, &mut fake, |_| {}) {
            Err(SearchError::Config(m)) => assert!(m.contains("isolate_products"), "{m}"),
            other => panic!("expected a config error, got {:?}", other.map(|o| o.levels)),
        }
        assert_eq!(fake.calls, 0);
        // Clearing it is allowed (conv_pre at the top then runs the split without isolation,
        // the rung below; ups.0 alone decides the search as without the rule).
        cfg.fixed = vec![rule(false)];
        let out = search(&cfg, &mut fake, |_| {}).expect("search runs");
        assert!(out.passed, "{:?}", out.misses);
        let plan = plan_of(&cfg, &[7, 7], &HashMap::new(), "t");
        assert!(!plan.setting_for("dec.conv_pre").isolate_products);
        assert!(plan.setting_for("dec.ups.0").isolate_products);
    }

    #[test]
    fn bad_configs_are_rejected() {
        let (mut cfg, mut fake) = setup(&[("dec.ups.0", 2.0)], 1000);
        cfg.ladder = vec![
            LayerPrecision::new(WeightFormat::Bf16, Fidelity::LoFi, false)
                .with_activations(ActivationFormat::Fp32),
        ];
        assert!(matches!(
            search(&cfg, &mut fake, |_| {}),
            Err(SearchError::Config(_))
        ));
        // bf16x2 weights without fp32 accumulation: refused like fp32 activations.
        cfg.ladder = vec![LayerPrecision::new(
            WeightFormat::Bf16x2,
            Fidelity::HiFi4,
            false,
        )];
        match search(&cfg, &mut fake, |_| {}) {
            Err(SearchError::Config(m)) => assert!(m.contains("bf16x2"), "{m}"),
            other => panic!("expected a config error, got {:?}", other.map(|o| o.levels)),
        }
        cfg.ladder.clear();
        assert!(search(&cfg, &mut fake, |_| {}).is_err());
        assert_eq!(fake.calls, 0);
    }
}
