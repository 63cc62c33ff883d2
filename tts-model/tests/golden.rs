//! The CPU backend against onnxruntime goldens (tests/fixtures/goldens, made by
//! scripts/goldens/make_goldens.py with noise off). Each stage is fed the *reference* input of that
//! stage, so a failure points at one stage. Needs the voice: env `TTS_VOICE` or
//! `<workspace>/voices/en_US-joe-medium.onnx` (tts-model/scripts/fetch-voice.sh); skipped otherwise.
//!
//! Tolerances: onnxruntime and we both compute in f32 but in different summation orders and with
//! different exp/erf/tanh implementations, so intermediate tensors differ by f32 rounding that grows
//! through the layers; we require SNR >= 60 dB (error power 1e-6 of signal power) for every tensor and
//! identical integer durations (the smallest distance of a golden duration from an integer is 1.5e-3,
//! far above the ~1e-5 relative error of logw).

use std::path::PathBuf;
use std::sync::OnceLock;

use tts_model::backend::Encoded;
use tts_model::cpu::{CpuBackend, CpuOptions};
use tts_model::synth::durations;
use tts_model::{ChunkOptions, SynthOptions, Synthesizer, Voice};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn voice_path() -> Option<PathBuf> {
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("voices/en_US-joe-medium.onnx"));
    p.exists().then_some(p)
}

fn synth() -> Option<&'static Synthesizer> {
    static S: OnceLock<Option<Synthesizer>> = OnceLock::new();
    S.get_or_init(|| {
        let p = voice_path()?;
        let v = Voice::load(&p).expect("voice loads");
        let b = CpuBackend::new(&v, CpuOptions { threads: 2 }).expect("backend");
        Some(Synthesizer::new(Box::new(b), v.config))
    })
    .as_ref()
}

macro_rules! need_voice {
    () => {
        match synth() {
            Some(s) => s,
            None => {
                eprintln!("skipped: voice not found, run tts-model/scripts/fetch-voice.sh (or set TTS_VOICE)");
                return;
            }
        }
    };
}

struct Golden {
    ids: Vec<i64>,
    w_ceil: Vec<u32>,
    frames: usize,
    samples: usize,
    json: serde_json::Value,
    dir: PathBuf,
}

impl Golden {
    fn load(name: &str) -> Self {
        let dir = root().join("tts-model/tests/fixtures/goldens");
        let text = std::fs::read_to_string(dir.join(format!("{name}.json"))).expect("golden json");
        let json: serde_json::Value = serde_json::from_str(&text).expect("golden json parses");
        let ints = |k: &str| {
            json[k]
                .as_array()
                .expect(k)
                .iter()
                .map(|v| v.as_i64().expect("int"))
                .collect::<Vec<_>>()
        };
        Golden {
            ids: ints("ids"),
            w_ceil: ints("w_ceil").iter().map(|&v| v as u32).collect(),
            frames: json["frames"].as_u64().expect("frames") as usize,
            samples: json["samples"].as_u64().expect("samples") as usize,
            json,
            dir,
        }
    }

    fn has(&self, key: &str) -> bool {
        self.json["files"].get(key).is_some()
    }

    fn tensor(&self, key: &str) -> Vec<f32> {
        let f = self.json["files"][key].as_str().expect("file");
        let b = std::fs::read(self.dir.join(f)).expect("golden tensor");
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// Channels-first `[c, t]` file as time-major `[t, c]`.
    fn time_major(&self, key: &str) -> (Vec<f32>, usize) {
        let v = self.tensor(key);
        let shape = &self.json["shapes"][key];
        let (c, t) = (
            shape[0].as_u64().expect("c") as usize,
            shape[1].as_u64().expect("t") as usize,
        );
        let mut o = vec![0.0; v.len()];
        for ci in 0..c {
            for ti in 0..t {
                o[ti * c + ci] = v[ci * t + ti];
            }
        }
        (o, c)
    }
}

fn snr_db(want: &[f32], got: &[f32]) -> f64 {
    assert_eq!(want.len(), got.len(), "length");
    let s: f64 = want.iter().map(|&v| (v as f64).powi(2)).sum();
    let e: f64 = want
        .iter()
        .zip(got)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    10.0 * (s / e.max(1e-30)).log10()
}

const SNR_GATE: f64 = 60.0;
const FULL: &[&str] = &["hello", "raining", "fox"];
const ALL: &[&str] = &["hello", "raining", "fox", "commas", "long"];

#[test]
fn encoder_matches_onnxruntime() {
    let s = need_voice!();
    for name in FULL {
        let g = Golden::load(name);
        let enc = s.backend().encode(&g.ids).expect("encode");
        let (x, _) = g.time_major("enc_x");
        let (stats, _) = g.time_major("stats");
        let (a, b) = (snr_db(&x, &enc.x), snr_db(&stats, &enc.stats));
        eprintln!("{name}: encoder x SNR {a:.1} dB, stats SNR {b:.1} dB");
        assert!(
            a >= SNR_GATE && b >= SNR_GATE,
            "{name}: encoder SNR {a:.1} / {b:.1} dB"
        );
    }
}

#[test]
fn duration_predictor_matches_onnxruntime() {
    let s = need_voice!();
    for name in FULL {
        let g = Golden::load(name);
        let (x, _) = g.time_major("enc_x");
        let enc = Encoded {
            t: g.ids.len(),
            x,
            stats: Vec::new(),
        };
        let logw = s
            .backend()
            .log_durations(&enc, &vec![0.0; 2 * g.ids.len()], None)
            .expect("dp");
        let want = g.tensor("logw");
        let snr = snr_db(&want, &logw);
        let maxerr = want
            .iter()
            .zip(&logw)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{name}: logw SNR {snr:.1} dB, max |err| {maxerr:.2e}");
        assert!(snr >= SNR_GATE, "{name}: logw SNR {snr:.1} dB");
        assert_eq!(durations(&logw, 1.0), g.w_ceil, "{name}: durations");
    }
}

#[test]
fn durations_and_frame_counts_identical_end_to_end() {
    let s = need_voice!();
    for name in ALL {
        let g = Golden::load(name);
        let stream = s
            .stream_ids(&g.ids, &SynthOptions::deterministic())
            .expect("stream");
        assert_eq!(stream.durations(), g.w_ceil.as_slice(), "{name}: durations");
        assert_eq!(stream.frames(), g.frames, "{name}: frames");
        let snr = snr_db(&g.tensor("logw"), stream.logw());
        eprintln!(
            "{name}: {} ids, {} frames, logw SNR {snr:.1} dB",
            g.ids.len(),
            g.frames
        );
        assert!(snr >= SNR_GATE);
    }
}

#[test]
fn flow_matches_onnxruntime() {
    let s = need_voice!();
    let inter = s.backend().hparams().inter;
    for name in FULL {
        let g = Golden::load(name);
        let (stats, _) = g.time_major("stats");
        let mut z_p = Vec::with_capacity(g.frames * inter);
        for (i, &d) in g.w_ceil.iter().enumerate() {
            for _ in 0..d {
                z_p.extend_from_slice(&stats[i * 2 * inter..i * 2 * inter + inter]);
            }
        }
        let z = s
            .backend()
            .flow_reverse(&z_p, g.frames, None)
            .expect("flow");
        let (want, _) = g.time_major("z");
        let snr = snr_db(&want, &z);
        eprintln!("{name}: flow SNR {snr:.1} dB");
        assert!(snr >= SNR_GATE, "{name}: flow SNR {snr:.1} dB");
    }
}

#[test]
fn decoder_matches_onnxruntime() {
    let s = need_voice!();
    for name in FULL {
        let g = Golden::load(name);
        let (z, _) = g.time_major("z");
        let audio = s.backend().decode(&z, g.frames, None).expect("decode");
        let snr = snr_db(&g.tensor("audio"), &audio);
        eprintln!("{name}: decoder SNR {snr:.1} dB");
        assert!(snr >= SNR_GATE, "{name}: decoder SNR {snr:.1} dB");
    }
}

#[test]
fn whole_pipeline_matches_onnxruntime() {
    let s = need_voice!();
    for name in FULL {
        let g = Golden::load(name);
        assert!(g.has("audio"));
        let a = s
            .synthesize_ids(&g.ids, &SynthOptions::deterministic())
            .expect("synth");
        assert_eq!(a.frames, g.frames);
        assert_eq!(a.samples.len(), g.samples);
        let snr = snr_db(&g.tensor("audio"), &a.samples);
        eprintln!(
            "{name}: end-to-end SNR {snr:.1} dB ({} samples)",
            a.samples.len()
        );
        assert!(snr >= SNR_GATE, "{name}: end-to-end SNR {snr:.1} dB");
    }
}

#[test]
fn chunked_equals_unchunked() {
    let s = need_voice!();
    let g = Golden::load("fox");
    let opts = SynthOptions {
        seed: 7,
        ..s.default_options()
    };
    let whole = {
        let b = s.backend();
        let stream = s.stream_ids(&g.ids, &opts).expect("stream");
        // Un-chunked reference: same noise (same seed), flow and decoder over all frames at once.
        let frames = stream.frames();
        drop(stream);
        let big = Synthesizer::new(
            Box::new(
                CpuBackend::new(
                    &Voice::load(voice_path().expect("voice")).expect("voice"),
                    CpuOptions { threads: 1 },
                )
                .expect("cpu"),
            ),
            s.config().clone(),
        )
        .with_chunks(ChunkOptions {
            frames: 1 << 20,
            first: 1 << 20,
            ..Default::default()
        });
        let a = big.synthesize_ids(&g.ids, &opts).expect("whole");
        assert_eq!(a.frames, frames);
        let _ = b;
        a.samples
    };
    let chunked = s.synthesize_ids(&g.ids, &opts).expect("chunked");
    let small = Synthesizer::new(
        Box::new(
            CpuBackend::new(
                &Voice::load(voice_path().expect("voice")).expect("voice"),
                CpuOptions { threads: 2 },
            )
            .expect("cpu"),
        ),
        s.config().clone(),
    )
    .with_chunks(ChunkOptions {
        frames: 40,
        first: 17,
        ..Default::default()
    });
    let tiny = small.synthesize_ids(&g.ids, &opts).expect("tiny chunks");
    for (label, v) in [
        ("default chunks", &chunked.samples),
        ("40-frame chunks", &tiny.samples),
    ] {
        let maxerr = whole
            .iter()
            .zip(v.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{label}: max |chunked - whole| = {maxerr:.2e}");
        // Exact context: only f32 summation-order differences remain (audio is in [-1, 1]).
        assert!(maxerr < 1e-5, "{label}: {maxerr}");
    }
    // Control: with too little context the seams show, so the comparison above can fail.
    let short = small.with_chunks(ChunkOptions {
        frames: 40,
        first: 17,
        flow_context: Some(2),
        decoder_context: Some(1),
    });
    let bad = short.synthesize_ids(&g.ids, &opts).expect("short context");
    let maxerr = whole
        .iter()
        .zip(&bad.samples)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("2/1-frame context: max |chunked - whole| = {maxerr:.2e}");
    assert!(
        maxerr > 1e-4,
        "too-short context should be visible, got {maxerr}"
    );
}

/// Noise on (voice default scales), with onnxruntime's normal draws replaced by stored ones:
/// exercises the spline away from the noise-free path (tails included) and the prior sampling
/// `m_p + eps * exp(logs_p) * noise_scale`, which noise-off runs never reach.
#[test]
fn noise_on_matches_onnxruntime_with_the_same_draws() {
    let s = need_voice!();
    let b = s.backend();
    let inter = b.hparams().inter;
    for name in ["hello_noisy", "raining_noisy"] {
        let g = Golden::load(name);
        let sc: Vec<f32> = g.json["scales"]
            .as_array()
            .expect("scales")
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let (noise_scale, length_scale, noise_w) = (sc[0], sc[1], sc[2]);
        let t = g.ids.len();
        let (ndp, _) = g.time_major("noise_dp");
        let noise: Vec<f32> = ndp.iter().map(|v| v * noise_w).collect();
        let enc = b.encode(&g.ids).expect("encode");
        let logw = b.log_durations(&enc, &noise, None).expect("dp");
        let lsnr = snr_db(&g.tensor("logw"), &logw);
        let d = durations(&logw, length_scale);
        assert_eq!(d, g.w_ceil, "{name}: durations with noise");
        let (nz, _) = g.time_major("noise_z");
        let mut z_p = Vec::with_capacity(g.frames * inter);
        let mut j = 0;
        for (i, &di) in d.iter().enumerate().take(t) {
            for _ in 0..di {
                for c in 0..inter {
                    let (m, logs) = (
                        enc.stats[i * 2 * inter + c],
                        enc.stats[i * 2 * inter + inter + c],
                    );
                    z_p.push(m + nz[j * inter + c] * logs.exp() * noise_scale);
                }
                j += 1;
            }
        }
        let z = b.flow_reverse(&z_p, g.frames, None).expect("flow");
        let audio = b.decode(&z, g.frames, None).expect("decode");
        let snr = snr_db(&g.tensor("audio"), &audio);
        eprintln!("{name}: logw SNR {lsnr:.1} dB, end-to-end SNR {snr:.1} dB (noise on)");
        assert!(
            lsnr >= SNR_GATE && snr >= SNR_GATE,
            "{name}: {lsnr:.1} / {snr:.1} dB"
        );
    }
}
