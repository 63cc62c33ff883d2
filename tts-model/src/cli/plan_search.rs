//! `tts plan --search auto`: the auto precision planner on the `tt` backend.
//!
//! Each evaluation prepares the voice on the `tt` backend with a candidate plan, synthesizes the
//! calibration sentences with noise off and compares them with the cpu backend
//! ([`tts_model::quality::compare`]), exactly as `tts eval` does; the search itself is
//! [`tts_model::precision::search`]. The plan is written atomically with its provenance.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use tts_model::precision::search::{
    self, Evaluator, Gates, Granularity, Measured, SearchConfig, Step, default_ladder,
};
use tts_model::precision::{self, Plan, Rule};
use tts_model::quality::{Comparison, MelAnalyzer, MelConfig, compare};
use tts_model::tt::{Arch, DeviceKind, TtBackend, TtOptions};
use tts_model::{SynthOptions, Synthesizer, Voice, VoiceConfig};

use super::args::{ArchKind, BackendKind, GranularityArg, InputArgs, PlanArgs};
use super::input::{self, Input};
use super::output::AtomicFile;

/// Calibration sentences used without `--calibration`.
pub const DEFAULT_CALIBRATION: &[&str] = &["Hello world.", "How are you?"];

/// One calibration sentence.
struct Calib {
    text: String,
    ids: Vec<i64>,
    reference: Vec<f32>,
}

/// Synthesizes the calibration set on the `tt` backend with a plan; compares with the cpu audio.
struct TtEvaluator {
    voice: Voice,
    config: VoiceConfig,
    device: DeviceKind,
    threads: usize,
    calib: Vec<Calib>,
    analyzer: MelAnalyzer,
}

impl Evaluator for TtEvaluator {
    fn evaluate(
        &mut self,
        plan: &Plan,
    ) -> Result<Vec<Comparison>, Box<dyn std::error::Error + Send + Sync>> {
        let tt = TtBackend::new(
            &self.voice,
            TtOptions {
                device: self.device,
                plan: plan.clone(),
                host_threads: self.threads,
                emulate: false,
            },
        )?;
        let synth = Synthesizer::new(Box::new(tt), self.config.clone());
        let opts = SynthOptions::deterministic();
        let mut out = Vec::with_capacity(self.calib.len());
        for c in &self.calib {
            let got = synth.synthesize_ids(&c.ids, &opts)?;
            out.push(compare(&self.analyzer, &c.reference, &got.samples));
        }
        Ok(out)
    }
}

fn calibration_lines(path: Option<&Path>) -> Result<Vec<String>> {
    let lines: Vec<String> = match path {
        None => DEFAULT_CALIBRATION.iter().map(|s| s.to_string()).collect(),
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read calibration file {}", p.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect(),
    };
    if lines.is_empty() {
        bail!("the calibration set is empty: give at least one sentence per line");
    }
    Ok(lines)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

fn print_step(s: &Step, secs: f64) {
    let what = match (&s.group, s.setting) {
        (Some(g), Some(set)) => format!("{g} = {set}"),
        _ => "all groups".to_string(),
    };
    println!(
        "[{:>3}] {:<11} {:<58} frames {:<16} MCD {:>9} L1 {:>8} viol {:>9.3} {}{}",
        s.number,
        s.phase.to_string(),
        what,
        s.measured.frames(),
        fmt_opt(s.measured.worst_mcd_db(), 4),
        fmt_opt(s.measured.worst_log_mel_l1(), 5),
        s.violation,
        if s.passed { "PASS" } else { "miss" },
        if s.cached {
            " (cached)".to_string()
        } else {
            format!(" ({secs:.1} s)")
        }
    );
    if let Some(e) = &s.measured.error {
        println!("      evaluation failed: {e}");
    }
    // Progress is the point of a long search: show it even when stdout is a pipe.
    let _ = std::io::stdout().flush();
}

/// Today's date and time in UTC, `YYYY-MM-DD HH:MM UTC` (civil-from-days).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// The commit of the working tree the binary runs in, if git can tell.
fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown (git not available)".into())
}

pub fn run(a: &PlanArgs) -> Result<()> {
    let Some(out_path) = a.out.as_deref() else {
        bail!("--search needs --out PATH (where the plan is written)");
    };
    for (name, v) in [
        ("--max-mcd", a.max_mcd),
        ("--max-log-mel-l1", a.max_log_mel_l1),
    ] {
        if !(v.is_finite() && v > 0.0) {
            bail!("{name} must be a finite number > 0 (got {v})");
        }
    }
    if !(a.fallback_slack.is_finite() && a.fallback_slack >= 0.0) {
        bail!(
            "--fallback-slack must be a finite number >= 0 (got {})",
            a.fallback_slack
        );
    }
    let device = match a.backend {
        BackendKind::Cpu => bail!(
            "--search measures the tt backend against cpu: use --backend sim (simulator) or --backend metal"
        ),
        BackendKind::Metal => DeviceKind::Metal(a.device_id),
        BackendKind::Sim => DeviceKind::Sim(match a.arch {
            ArchKind::Wormhole => Arch::WormholeB0,
            ArchKind::Blackhole => Arch::Blackhole,
        }),
    };
    // Fail early on an unwritable destination (nothing is written until the end).
    let out_file = AtomicFile::create(out_path)?;
    let lines = calibration_lines(a.calibration.as_deref())?;
    let config = input::load_config(&a.voice)?;
    let inp_args = InputArgs {
        text: None,
        phonemes: None,
        ids: None,
        max_text_bytes: super::args::DEFAULT_MAX_TEXT_BYTES,
        drop_unknown: false,
        espeak_data: a.espeak_data.clone(),
    };
    let mut sentences = Vec::new();
    for line in &lines {
        input::check_text(line, inp_args.max_text_bytes)?;
        for s in input::sentences(Input::Text(line.clone()), &config, &inp_args)? {
            let s = s.with_context(|| format!("cannot phonemize calibration sentence {line:?}"))?;
            sentences.push((line.clone(), s.ids));
        }
    }
    let voice = Voice::load(&a.voice)
        .with_context(|| format!("cannot load voice {}", a.voice.display()))?;
    let (reference, _) = Synthesizer::load(&a.voice, a.threads)
        .with_context(|| format!("cannot load voice {}", a.voice.display()))?;
    let opts = SynthOptions::deterministic();
    let mut calib = Vec::new();
    for (text, ids) in sentences {
        let r = reference
            .synthesize_ids(&ids, &opts)
            .with_context(|| format!("calibration sentence {text:?} on cpu"))?;
        calib.push(Calib {
            text,
            ids,
            reference: r.samples,
        });
    }
    let layers = precision::layers(&voice);
    let groups = search::groups(
        &layers,
        voice.hparams.resblock_kernels.len(),
        match a.granularity {
            GranularityArg::Fine => Granularity::Fine,
            GranularityArg::Coarse => Granularity::Coarse,
        },
    )?;
    let gates = Gates {
        max_mcd_db: a.max_mcd,
        max_log_mel_l1: a.max_log_mel_l1,
    };
    let cfg = SearchConfig {
        name: "auto".into(),
        gates,
        ladder: default_ladder(),
        groups,
        max_evaluations: a.max_evals,
        fallback_slack: (!a.no_fallback).then_some(a.fallback_slack),
        fixed: a
            .bf16_activations
            .iter()
            .map(|g| Rule {
                pattern: g.clone(),
                weights: None,
                fidelity: None,
                fp32_acc: None,
                activations: Some(precision::ActivationFormat::Bf16),
                isolate_products: None,
                reason: Some(
                    "fixed by --bf16-activations: this backend's op takes no fp32 activations"
                        .into(),
                ),
            })
            .collect(),
    };
    println!(
        "plan search `auto` on {:?}: {} groups, ladder of {} settings (cheapest first):",
        a.backend,
        cfg.groups.len(),
        cfg.ladder.len()
    );
    for (i, s) in cfg.ladder.iter().enumerate() {
        println!("  level {i}: {s}");
    }
    println!(
        "gates (worst calibration sentence, vs cpu, noise off): identical frame counts, MCD <= {} dB, log-mel L1 <= {}",
        gates.max_mcd_db, gates.max_log_mel_l1
    );
    for (k, c) in calib.iter().enumerate() {
        println!(
            "calibration {}: {:?} ({} ids, {} samples on cpu)",
            k + 1,
            c.text,
            c.ids.len(),
            c.reference.len()
        );
    }
    let mut ev = TtEvaluator {
        analyzer: MelAnalyzer::new(MelConfig {
            sample_rate: config.audio.sample_rate,
            hop: voice.hparams.hop(),
            ..MelConfig::default()
        }),
        config: voice.config.clone(),
        voice,
        device,
        threads: a.threads,
        calib,
    };
    let t0 = Instant::now();
    let mut last = Instant::now();
    let outcome = search::search(&cfg, &mut ev, |s| {
        print_step(s, last.elapsed().as_secs_f64());
        last = Instant::now();
    })?;
    let elapsed = t0.elapsed().as_secs_f64();

    let resolved = outcome.plan.resolve(&layers)?;
    let ids_total: usize = ev.calib.iter().map(|c| c.ids.len()).sum();
    let frames_total: usize = outcome
        .measured
        .comparisons
        .iter()
        .map(|c| c.ref_frames)
        .sum();
    let report = resolved.report(
        ids_total,
        frames_total,
        precision::vector_params(&ev.voice, &layers),
    );
    let lofi = report.layer_share(precision::Fidelity::LoFi);
    let bfp8 = report.bfp8_or_smaller_byte_share();
    let status = if outcome.passed {
        "MET".to_string()
    } else {
        format!("NOT MET ({})", outcome.misses.join("; "))
    };

    let mut header = vec![
        "Precision plan `auto`: written by the auto planner; edit freely (rules are ordinary"
            .into(),
        "[[layer]] globs). Re-run the search to refresh it.".into(),
        String::new(),
        format!(
            "command: tts {}",
            std::env::args().skip(1).collect::<Vec<_>>().join(" ")
        ),
        format!("date: {}; git commit: {}", utc_now(), git_commit()),
        format!(
            "backend: {:?} ({:?}) vs cpu, noise off; {} evaluations in {elapsed:.0} s",
            a.backend, a.arch, outcome.evaluations
        ),
        format!(
            "gates (worst calibration sentence): identical frame counts, MCD <= {} dB, log-mel L1 <= {}",
            gates.max_mcd_db, gates.max_log_mel_l1
        ),
        format!("GATES {status}"),
        format!("search: {}", outcome.note),
    ];
    if let Some(g) = outcome.relaxed_gates {
        header.push(format!(
            "FALLBACK (not the gates above): relaxed gates MCD <= {:.4} dB, log-mel L1 <= {:.5} {}",
            g.max_mcd_db,
            g.max_log_mel_l1,
            if outcome.fallback_met {
                "met by this plan"
            } else {
                "NOT met by this plan"
            }
        ));
    }
    for (k, (c, cmp)) in ev
        .calib
        .iter()
        .zip(&outcome.measured.comparisons)
        .enumerate()
    {
        header.push(format!(
            "calibration {}: {:?}: frames cpu/tt {}/{}, MCD {} dB, log-mel L1 {}, SNR {} dB",
            k + 1,
            c.text,
            cmp.ref_frames,
            cmp.test_frames,
            fmt_opt(cmp.mcd_db, 4),
            fmt_opt(cmp.log_mel_l1, 5),
            fmt_opt(cmp.snr_db, 2)
        ));
    }
    header.push(format!(
        "shares: {:.1}% of compute layers in LoFi ({} exceptions), {:.1}% of weight bytes in BFP8 or smaller, {:.1}% in bf16x2, {} layers with fp32 activations, {} with fp32x2, {} with isolated products",
        100.0 * lofi,
        report.exceptions.len(),
        100.0 * bfp8,
        100.0 * report.byte_share(precision::WeightFormat::Bf16x2),
        report.activation_layers(precision::ActivationFormat::Fp32),
        report.activation_layers(precision::ActivationFormat::Fp32x2),
        report.isolated_products
    ));
    if !report.exceptions.is_empty() {
        // One line per setting, at most 16 names each.
        let mut by_setting: Vec<(precision::LayerPrecision, Vec<&str>)> = Vec::new();
        for (n, s) in &report.exceptions {
            match by_setting.iter_mut().find(|e| e.0 == *s) {
                Some(e) => e.1.push(n),
                None => by_setting.push((*s, vec![n])),
            }
        }
        header.push(format!(
            "exceptions (compute layers not in LoFi): {}",
            report.exceptions.len()
        ));
        for (s, names) in by_setting {
            let mut line = format!("  {s} ({}):", names.len());
            for n in names.iter().take(16) {
                let _ = write!(line, " {n}");
            }
            if names.len() > 16 {
                let _ = write!(line, " ... and {} more", names.len() - 16);
            }
            header.push(line);
        }
    }
    if !outcome.sensitivities.is_empty() {
        let mut sens = String::from("most sensitive groups (violation with only it at the floor):");
        for (g, v) in outcome.sensitivities.iter().take(8) {
            let _ = write!(sens, " {g} {v:.2};");
        }
        header.push(sens);
    }
    let text = outcome.plan.to_toml(&header);
    // The written plan must read back as itself.
    let back = Plan::from_toml(&text, &out_path.display().to_string())?;
    if back != outcome.plan {
        bail!("internal: the written plan does not read back as the searched plan");
    }
    out_file
        .handle()?
        .write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", out_path.display()))?;
    out_file.commit()?;

    println!();
    print!("{report}");
    let measured: &Measured = &outcome.measured;
    println!(
        "result: frames cpu/tt {}; worst MCD {} dB; worst log-mel L1 {}",
        measured.frames(),
        fmt_opt(measured.worst_mcd_db(), 4),
        fmt_opt(measured.worst_log_mel_l1(), 5)
    );
    println!(
        "LoFi share {:.1}% of compute layers; BFP8-or-smaller share {:.1}% of weight bytes",
        100.0 * lofi,
        100.0 * bfp8
    );
    println!(
        "search: {} ({} evaluations)",
        outcome.note, outcome.evaluations
    );
    println!("wrote {}", out_path.display());
    if outcome.passed {
        println!("gates MET");
        Ok(())
    } else {
        bail!(
            "gates NOT MET by any plan the search evaluated: {}; the best plan found was written to {} with the misses in its header",
            outcome.misses.join("; "),
            out_path.display()
        )
    }
}
