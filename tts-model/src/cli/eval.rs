//! `tts eval` (a backend against the cpu reference, noise off) and `tts plan`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use tts_model::precision::{self, Plan};
use tts_model::quality::{Comparison, MelAnalyzer, MelConfig, compare};
use tts_model::tt::HOST_STEPS;
use tts_model::{SynthOptions, Synthesizer, Voice};

use super::args::{ArchKind, BackendKind, EvalArgs, PlanArgs};
use super::input;
use super::synth::{load, load_tt, warn_unknown};

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.digits$}"))
}

pub fn run(a: &EvalArgs) -> Result<()> {
    let mut inp_args = a.input.clone();
    if let Some(path) = &a.sentences {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sentence file {}", path.display()))?;
        inp_args.text = Some(text);
        inp_args.phonemes = None;
        inp_args.ids = None;
    }
    let inp = input::read_input(&inp_args)?;
    let config = input::load_config(&a.voice.voice)?;
    let sentences: Vec<_> = input::sentences(inp, &config, &inp_args)?.collect::<Result<_>>()?;
    if sentences.is_empty() {
        bail!("no sentences to evaluate");
    }
    let opts = SynthOptions::deterministic();
    let (reference, _) = Synthesizer::load(&a.voice.voice, a.voice.threads)
        .with_context(|| format!("cannot load voice {}", a.voice.voice.display()))?;
    let (tt, test) = match a.voice.backend {
        BackendKind::Cpu => (None, load(&a.voice)?.0),
        BackendKind::Sim | BackendKind::Metal => {
            let (tt, _, cfg) = load_tt(&a.voice)?;
            (Some(tt.clone()), Synthesizer::new(Box::new(tt), cfg))
        }
    };
    let sr = config.audio.sample_rate;
    let analyzer = MelAnalyzer::new(MelConfig {
        sample_rate: sr,
        hop: test.backend().hparams().hop(),
        ..MelConfig::default()
    });
    println!(
        "eval: backend {:?} (precision {}) vs cpu, noise off, {} sentence(s)",
        a.voice.backend,
        if tt.is_some() {
            a.voice.precision.as_str()
        } else {
            "f32"
        },
        sentences.len()
    );
    println!(
        "{:>3} {:>5} {:>13} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "#", "ids", "frames cpu/tt", "MCD dB", "logmel L1", "SNR dB", "PCC", "host s", "audio s"
    );
    let (mut ids_total, mut frames_total, mut audio_total, mut host_total) = (0, 0, 0.0, 0.0);
    let mut worst_mcd: f64 = 0.0;
    let mut worst_l1: f64 = 0.0;
    let mut all_match = true;
    for (k, s) in sentences.iter().enumerate() {
        warn_unknown(s, k);
        let want = reference
            .synthesize_ids(&s.ids, &opts)
            .with_context(|| format!("sentence {} on cpu", k + 1))?;
        let t0 = Instant::now();
        let got = test
            .synthesize_ids(&s.ids, &opts)
            .with_context(|| format!("sentence {} on {:?}", k + 1, a.voice.backend))?;
        let host = t0.elapsed().as_secs_f64();
        let mut c = compare(&analyzer, &want.samples, &got.samples);
        all_match &= c.frames_match();
        if a.durations_from_cpu {
            // The diagnostic run stays out of the device accounting printed below.
            let saved = tt.as_ref().map(|t| t.ledger());
            let forced = test
                .synthesize_ids_with_durations(&s.ids, &opts, &want.durations)
                .with_context(|| {
                    format!(
                        "sentence {} on {:?} (cpu durations)",
                        k + 1,
                        a.voice.backend
                    )
                })?;
            if let (Some(t), Some(l)) = (&tt, saved) {
                t.set_ledger(l);
            }
            let f = compare(&analyzer, &want.samples, &forced.samples);
            // Free-running frame counts, metrics of the run with the cpu's durations.
            c = Comparison {
                ref_frames: c.ref_frames,
                test_frames: c.test_frames,
                ..f
            };
        }
        worst_mcd = worst_mcd.max(c.mcd_db.unwrap_or(f64::INFINITY));
        worst_l1 = worst_l1.max(c.log_mel_l1.unwrap_or(f64::INFINITY));
        let audio = got.samples.len() as f64 / f64::from(sr);
        ids_total += s.ids.len();
        frames_total += got.frames;
        audio_total += audio;
        host_total += host;
        println!(
            "{:>3} {:>5} {:>13} {:>8} {:>10} {:>9} {:>9} {:>9.2} {:>8.2}",
            k + 1,
            s.ids.len(),
            format!("{}/{}", c.ref_frames, c.test_frames),
            fmt_opt(c.mcd_db, 4),
            fmt_opt(c.log_mel_l1, 5),
            fmt_opt(c.snr_db, 2),
            fmt_opt(c.pcc, 6),
            host,
            audio
        );
    }
    println!(
        "frame counts identical: {}; worst MCD {worst_mcd:.4} dB; worst log-mel L1 {worst_l1:.5}",
        if all_match { "yes" } else { "NO" }
    );
    if a.durations_from_cpu {
        println!(
            "(MCD, log-mel L1, SNR, PCC from a second run of the tested backend with the cpu's durations \
             (--durations-from-cpu, a diagnostic); frame counts and host time from the free-running run)"
        );
    }
    println!(
        "host time {host_total:.2} s for {audio_total:.2} s of audio (host real-time factor {:.2})",
        host_total / audio_total.max(1e-9)
    );
    if let Some(tt) = tt {
        print!(
            "{}",
            tt.plan().report(ids_total, frames_total, vector_params(a)?)
        );
        let l = tt.ledger();
        println!(
            "on-device share of matmul/conv FLOPs: {:.1}% ({:.3} GFLOP on device, {:.3} GFLOP on host, {} device launches)",
            100.0 * l.on_device_share(),
            l.device_flops / 1e9,
            // `+ 0.0`: an empty f64 sum is -0.0, which would print as "-0.000".
            (l.host_flops.values().sum::<f64>() + 0.0) / 1e9,
            l.launches
        );
        println!("host steps (explicit, not on device):");
        for h in HOST_STEPS {
            println!("  - {h}");
        }
        let mut ew: Vec<_> = l.host_elementwise.iter().collect();
        ew.sort();
        for (step, n) in ew {
            println!("  host elementwise {step}: {n} elements");
        }
        let chip = match (a.voice.backend, a.voice.arch) {
            (BackendKind::Metal, _) => "device (measured)",
            (_, ArchKind::Wormhole) => "n150 (Wormhole B0)",
            (_, ArchKind::Blackhole) => "p150 (Blackhole)",
        };
        let label = if l.estimate {
            "ESTIMATE from the simulator's timing model"
        } else {
            "measured"
        };
        let mut stages: Vec<_> = l.device_ns.iter().collect();
        stages.sort();
        for (stage, ns) in stages {
            println!(
                "device time {chip}, {stage}: {:.3} ms [{label}]",
                *ns as f64 / 1e6
            );
        }
        let dev_s = l.device_ns_total() as f64 / 1e9;
        println!(
            "device time {chip}, on-device ops total: {:.3} ms for {audio_total:.2} s of audio, device-only real-time factor {:.5} [{label}; host steps and transfers excluded]",
            dev_s * 1e3,
            dev_s / audio_total.max(1e-9)
        );
    }
    Ok(())
}

fn vector_params(a: &EvalArgs) -> Result<usize> {
    let v = Voice::load(&a.voice.voice)
        .with_context(|| format!("cannot load voice {}", a.voice.voice.display()))?;
    let layers = precision::layers(&v);
    Ok(precision::vector_params(&v, &layers))
}

/// `tts plan`: the plan applied to a voice (shares for one second of audio at ~5 frames per id).
pub fn plan(a: &PlanArgs) -> Result<()> {
    let plan = Plan::from_arg(&a.precision)?;
    let v = Voice::load(&a.voice)
        .with_context(|| format!("cannot load voice {}", a.voice.display()))?;
    let layers = precision::layers(&v);
    let r = plan.resolve(&layers)?;
    if a.layers {
        for (l, s) in &r.layers {
            println!("{:<48} {s}", l.name);
        }
    }
    let frames = (v.config.audio.sample_rate as usize).div_ceil(v.hparams.hop().max(1));
    println!(
        "shares for one second of audio ({frames} frames, {} ids):",
        frames.div_ceil(5)
    );
    print!(
        "{}",
        r.report(
            frames.div_ceil(5),
            frames,
            precision::vector_params(&v, &layers)
        )
    );
    Ok(())
}
