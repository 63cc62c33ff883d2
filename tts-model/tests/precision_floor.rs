//! What rounding the *weights* to a storage format costs, measured on the cpu backend alone
//! (f32 arithmetic; only the weight values change): the floor under which no device plan with
//! those weights can go, whatever its arithmetic. A measurement, not a pass/fail bound:
//!
//! ```sh
//! cargo test --release -p tts-model --test precision_floor -- --ignored --nocapture
//! ```
//!
//! Each variant synthesises with the reference (f32 weights) durations, so frames match and MCD,
//! log-mel L1 and SNR are defined; it also reports how many durations the rounded weights
//! would change in free-running synthesis.

use std::path::PathBuf;

use tts_model::Voice;
use tts_model::cpu::{CpuBackend, CpuOptions};
use tts_model::quality::{MelAnalyzer, MelConfig, compare};
use tts_model::synth::{SynthOptions, Synthesizer};

const HELLO: &[i64] = &[
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];

/// Nearest bf16 (round to nearest even), as the device's host-side weight conversion does.
fn bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(r)
}

/// bf16 hi + bf16 lo (16 significant bits): what a two-term weight split represents.
fn bf16x2(x: f32) -> f32 {
    let hi = bf16(x);
    hi + bf16(x - hi)
}

fn synth(v: &Voice) -> Synthesizer {
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    Synthesizer::new(Box::new(cpu), v.config.clone())
}

#[test]
#[ignore = "measurement (prints a table): cargo test --release -p tts-model --test precision_floor -- --ignored --nocapture"]
fn weight_rounding_floor() {
    let path = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if !path.exists() {
        eprintln!(
            "skipped: voice {} not found (run scripts/setup.sh)",
            path.display()
        );
        return;
    }
    let v = Voice::load(&path).expect("voice loads");
    let ids: Vec<i64> = std::env::var("TTS_IDS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("TTS_IDS: integers"))
                .collect()
        })
        .unwrap_or_else(|| HELLO.to_vec());
    let opts = SynthOptions::deterministic();
    let reference = synth(&v).synthesize_ids(&ids, &opts).expect("reference");
    let an = MelAnalyzer::new(MelConfig {
        sample_rate: v.sample_rate(),
        hop: v.hparams.hop(),
        ..MelConfig::default()
    });
    type Round = fn(f32) -> f32;
    let variants: [(&str, &str, Round); 8] = [
        ("all tensors", "", bf16),
        ("matrices (>= 2 dims) only", "", bf16),
        ("enc_p.* only", "enc_p.", bf16),
        ("dp.* only", "dp.", bf16),
        ("flow.* only", "flow.", bf16),
        ("dec.* only", "dec.", bf16),
        ("all tensors, bf16x2", "", bf16x2),
        ("dec.* only, bf16x2", "dec.", bf16x2),
    ];
    eprintln!(
        "weights rounded | frames free-running | changed durations | MCD dB | log-mel L1 | SNR dB (forced durations)"
    );
    for (label, prefix, round) in variants {
        let matrices_only = label.starts_with("matrices");
        let w = v
            .weights
            .map_f32(|name, dims, vals| {
                if name.starts_with(prefix) && (!matrices_only || dims.len() >= 2) {
                    vals.into_iter().map(round).collect()
                } else {
                    vals
                }
            })
            .expect("map weights");
        let vr = Voice::from_parts(&v.path, v.config.clone(), w).expect("voice");
        let s = synth(&vr);
        let free = s.synthesize_ids(&ids, &opts).expect("free-running");
        let changed = free
            .durations
            .iter()
            .zip(&reference.durations)
            .filter(|(a, b)| a != b)
            .count();
        let forced = s
            .synthesize_ids_with_durations(&ids, &opts, &reference.durations)
            .expect("forced");
        let c = compare(&an, &reference.samples, &forced.samples);
        eprintln!(
            "{label} | {}/{} | {changed}/{} | {:.4} | {:.5} | {:.1}",
            reference.frames,
            free.frames,
            ids.len(),
            c.mcd_db.unwrap_or(f64::NAN),
            c.log_mel_l1.unwrap_or(f64::NAN),
            c.snr_db.unwrap_or(f64::NAN),
        );
    }
}
