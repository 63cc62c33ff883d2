//! `tts plan` and `tts eval` from the command line, and their error paths. The sim backend is
//! exercised on a short id sequence only by the ignored tests (~1-2 min each on 2 cores).
//! Needs the voice (env `TTS_VOICE` or `<workspace>/voices/en_US-joe-medium.onnx`); skipped
//! without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TTS: &str = env!("CARGO_BIN_EXE_tts");
const HELLO: &str =
    "1,0,20,0,59,0,24,0,120,0,27,0,100,0,3,0,35,0,120,0,62,0,122,0,24,0,17,0,10,0,2";

fn voice() -> Option<String> {
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if p.is_file() {
        Some(p.display().to_string())
    } else {
        eprintln!("SKIPPED: no voice (set TTS_VOICE or run tts-model/scripts/fetch-voice.sh)");
        None
    }
}

fn run(args: &[&str]) -> Output {
    Command::new(TTS).args(args).output().expect("run tts")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn plan_prints_shares_and_rejects_bad_plans() {
    let Some(v) = voice() else { return };
    let o = run(&["plan", "--voice", &v, "--precision", "bfp8-lofi"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("LoFi  144/144 compute layers (100.0%)"), "{t}");
    assert!(
        t.contains("exceptions (compute layers not in LoFi): none"),
        "{t}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("p.toml");
    std::fs::write(
        &bad,
        "name='x'\n[default]\nweights='bf16'\nfidelity='LoFi'\nfp32_acc=false\n[[layer]]\nmatch='dec.nothing.*'\nfidelity='HiFi4'\n",
    )
    .expect("write plan");
    let o = run(&[
        "plan",
        "--voice",
        &v,
        "--precision",
        &bad.display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("matches no layer"), "{}", text(&o));
    let o = run(&["plan", "--voice", &v, "--precision", "no-such-plan"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("hifi, bfp8-lofi"), "{}", text(&o));
}

#[test]
fn eval_cpu_against_cpu_is_exact() {
    let Some(v) = voice() else { return };
    let o = run(&["eval", "--voice", &v, "--backend", "cpu", "--ids", HELLO]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("72/72"), "{t}");
    assert!(t.contains("frame counts identical: yes"), "{t}");
    assert!(t.contains("inf"), "{t}");
}

#[test]
fn synth_rejects_a_bad_precision_plan_for_sim() {
    let Some(v) = voice() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("o.wav");
    let o = run(&[
        "synth",
        "--voice",
        &v,
        "--backend",
        "sim",
        "--precision",
        "/nonexistent.toml",
        "--ids",
        HELLO,
        "--out",
        &out.display().to_string(),
    ]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("cannot read precision plan"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());
}

/// Columns of the first sentence row of `tts eval`: (frames, MCD dB, log-mel L1, SNR dB, PCC).
fn eval_row(t: &str) -> Option<(String, f64, f64, f64, f64)> {
    let row = t.lines().find(|l| l.trim_start().starts_with("1 "))?;
    let c: Vec<&str> = row.split_whitespace().collect();
    // "-" (metrics undefined when the frame counts differ) reads as NaN.
    let num = |i: usize| {
        c.get(i).and_then(|v| {
            if *v == "-" {
                Some(f64::NAN)
            } else {
                v.parse::<f64>().ok()
            }
        })
    };
    Some((c.get(2)?.to_string(), num(3)?, num(4)?, num(5)?, num(6)?))
}

fn eval_sim(v: &str, plan: &str) -> String {
    let o = run(&[
        "eval",
        "--voice",
        v,
        "--backend",
        "sim",
        "--precision",
        plan,
        "--threads",
        "1",
        "--ids",
        HELLO,
    ]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t
}

/// The sim backend end to end on "Hello world." under `hifi-bf16` (one pass per conv, so the
/// test stays short; `hifi` is checked by the acceptance test below): every matmul/conv FLOP on
/// the device (encoder, duration predictor, flow, decoder), no host elementwise step, the only
/// host step listed is the prior noise of noisy synthesis (none here: noise off), durations
/// within one frame per id of cpu's, ESTIMATE-labelled device times including the duration
/// predictor and the alignment.
#[test]
#[ignore = "expensive: ~1 min on 2 cores; run with `cargo test -p tts-model --test cli_eval -- --ignored`"]
fn eval_sim_reports_quality_shares_and_estimates() {
    let Some(v) = voice() else { return };
    let t = eval_sim(&v, "hifi-bf16");
    assert!(
        t.contains("on-device share of matmul/conv FLOPs: 100.0%"),
        "{t}"
    );
    assert!(t.contains("ESTIMATE"), "{t}");
    for stage in ["duration predictor", "alignment"] {
        assert!(
            t.lines()
                .any(|l| l.starts_with("device time") && l.contains(&format!("), {stage}:"))),
            "no device time for {stage}:\n{t}"
        );
    }
    assert!(
        !t.contains("host elementwise"),
        "glue ran on the host:\n{t}"
    );
    let steps: Vec<&str> = t
        .lines()
        .skip_while(|l| !l.starts_with("host steps"))
        .skip(1)
        .take_while(|l| l.starts_with("  - "))
        .collect();
    assert!(
        steps.iter().all(|l| l.contains("prior noise")),
        "host steps: {steps:?}"
    );
    let (frames, _mcd, _l1, _snr, _pcc) = eval_row(&t).expect("a result row");
    let (a, b) = frames.split_once('/').expect("frames cpu/tt");
    let (a, b): (i64, i64) = (
        a.parse().expect("cpu frames"),
        b.parse().expect("tt frames"),
    );
    // 31 ids; a flipped `ceil` moves one id by one frame; allow two flips.
    assert!((a - b).abs() <= 2, "frames {frames}\n{t}");
}

/// Issue #6's first acceptance bound on "Hello world.": `hifi` gives the same frame count as
/// cpu (free-running, everything on the device) and MCD < 0.1 dB.
#[test]
#[ignore = "expensive: ~1-2 min on 2 cores (hifi runs each conv as 2 x 10 passes); run with `cargo test --release -p tts-model --test cli_eval -- --ignored hifi_meets`"]
fn eval_sim_hifi_meets_the_acceptance_bounds() {
    let Some(v) = voice() else { return };
    let t = eval_sim(&v, "hifi");
    let (frames, mcd, _, _, _) = eval_row(&t).unwrap_or_else(|| panic!("hifi: no row\n{t}"));
    assert_eq!(frames, "72/72", "hifi\n{t}");
    assert!(mcd < 0.1, "hifi: MCD {mcd} dB\n{t}");
}

/// Issue #6's second acceptance bound on "Hello world.": `bfp8-lofi` with MCD <= 0.3 dB,
/// log-mel L1 <= 0.02 and the same frame count. Known failing and out of reach for this voice:
/// bfp8_b decoder weights alone, on the f32 cpu backend, give log-mel L1 0.071 and MCD 8.8 dB
/// (tests/precision_floor.rs; docs/pipeline-on-tensix.md "Floors").
#[test]
#[ignore = "known failing (bfp8_b weights alone exceed the gates on the cpu: tests/precision_floor.rs); run with `cargo test --release -p tts-model --test cli_eval -- --ignored bfp8_lofi_meets`"]
fn eval_sim_bfp8_lofi_meets_the_acceptance_bounds() {
    let Some(v) = voice() else { return };
    let t = eval_sim(&v, "bfp8-lofi");
    let (frames, mcd, l1, _, _) = eval_row(&t).unwrap_or_else(|| panic!("bfp8-lofi: no row\n{t}"));
    assert_eq!(frames, "72/72", "bfp8-lofi\n{t}");
    assert!(mcd <= 0.3 && l1 <= 0.02, "bfp8-lofi: MCD {mcd} dB, L1 {l1}");
}
