//! `tts synth` / `tts phonemize` / `tts bench` with a real voice: `TTS_VOICE` or
//! `<workspace>/voices/en_US-joe-medium.onnx` (tts-model/scripts/fetch-voice.sh). Without a
//! voice the tests print why they are skipped and return; the phonemizer parts also need
//! espeak-ng (`apt-get install libespeak-ng1 espeak-ng-data`).
//!
//! Expected values are independent of this code: 18,432 samples (72 frames x 256) for
//! "Hello world." with noise off and the ids are from piper-tts 1.8.0 (MODEL.md section 4).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const TTS: &str = env!("CARGO_BIN_EXE_tts");
const HELLO_IDS: &str =
    "1,0,20,0,59,0,24,0,120,0,27,0,100,0,3,0,35,0,120,0,62,0,122,0,24,0,17,0,10,0,2";

fn voice() -> Option<PathBuf> {
    let p = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: no voice at {} (set TTS_VOICE or run tts-model/scripts/fetch-voice.sh)",
            p.display()
        );
        None
    }
}

fn espeak_available() -> bool {
    match tts_model::phonemize::Phonemizer::new("en-us") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED (text input): {e}");
            false
        }
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut c = Command::new(TTS);
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn().expect("run tts");
    if let Some(t) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(t.as_bytes()).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(
        o.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks the canonical 44-byte PCM header by hand and returns the samples.
fn read_wav(path: &Path) -> Vec<i16> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[0..4], b"RIFF");
    assert_eq!(u32le(&b, 4) as usize, b.len() - 8, "RIFF size");
    assert_eq!(&b[8..12], b"WAVE");
    assert_eq!(&b[12..16], b"fmt ");
    assert_eq!(u32le(&b, 16), 16, "fmt chunk size");
    assert_eq!(u16le(&b, 20), 1, "PCM");
    assert_eq!(u16le(&b, 22), 1, "mono");
    assert_eq!(u32le(&b, 24), 22050, "sample rate");
    assert_eq!(u32le(&b, 28), 22050 * 2, "byte rate");
    assert_eq!(u16le(&b, 32), 2, "block align");
    assert_eq!(u16le(&b, 34), 16, "bits per sample");
    assert_eq!(&b[36..40], b"data");
    let n = u32le(&b, 40) as usize;
    assert_eq!(n, b.len() - 44, "data size");
    b[44..]
        .chunks(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect()
}

fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(b.len() % 4, 0);
    b.chunks(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn hello_world_ids_noise_off() {
    let Some(v) = voice() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (wav, raw) = (dir.path().join("a.wav"), dir.path().join("a.f32"));
    let o = run(
        &[
            "synth",
            "--voice",
            s(&v),
            "--ids",
            HELLO_IDS,
            "--noise-scale",
            "0",
            "--noise-w",
            "0",
            "--out",
            s(&wav),
            "--out-f32",
            s(&raw),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("18432 samples"));
    let pcm = read_wav(&wav);
    assert_eq!(pcm.len(), 18_432);
    let f = read_f32(&raw);
    assert_eq!(f.len(), 18_432);
    // Piper's peak normalisation: the loudest sample is full scale, and every sample is the raw
    // output divided by the peak, times 32767, truncated.
    let peak = f.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    assert!(peak > 0.05 && peak <= 1.0, "peak {peak}");
    assert_eq!(pcm.iter().map(|x| x.unsigned_abs()).max(), Some(32767));
    for (p, x) in pcm.iter().zip(&f) {
        let expect = ((x / peak).clamp(-1.0, 1.0) * 32767.0) as i16;
        assert_eq!(*p, expect);
    }
    // Only the two outputs are in the directory (no temporary files).
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["a.f32", "a.wav"]);
}

#[test]
fn hello_world_text_equals_ids_and_phonemes() {
    let Some(v) = voice() else { return };
    if !espeak_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let noise = ["--noise-scale", "0", "--noise-w", "0"];
    let mut outs = Vec::new();
    for (k, input) in [
        vec!["--text", "Hello world."],
        vec!["--phonemes", "həlˈoʊ wˈɜːld."],
        vec!["--ids", HELLO_IDS],
    ]
    .iter()
    .enumerate()
    {
        let out = dir.path().join(format!("{k}.wav"));
        run(
            &[
                &["synth", "--voice", s(&v), "--out", s(&out)],
                &noise[..],
                &input[..],
            ]
            .concat(),
            None,
        );
        outs.push(read_wav(&out));
    }
    // From stdin.
    let out = dir.path().join("stdin.wav");
    run(
        &[
            &["synth", "-q", "--voice", s(&v), "--out", s(&out)],
            &noise[..],
        ]
        .concat(),
        Some("Hello world.\n"),
    );
    outs.push(read_wav(&out));
    assert_eq!(outs[0].len(), 18_432);
    for o in &outs[1..] {
        assert_eq!(o, &outs[0]);
    }
}

#[test]
fn sentences_are_normalised_separately_and_concatenated() {
    let Some(v) = voice() else { return };
    if !espeak_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let noise = ["--noise-scale", "0", "--noise-w", "0"];
    let both = dir.path().join("both.wav");
    run(
        &[
            &[
                "synth",
                "--voice",
                s(&v),
                "--text",
                "Hello world. How are you?",
                "--out",
                s(&both),
            ],
            &noise[..],
        ]
        .concat(),
        None,
    );
    let one = dir.path().join("one.wav");
    run(
        &[
            &[
                "synth",
                "--voice",
                s(&v),
                "--text",
                "Hello world.",
                "--out",
                s(&one),
            ],
            &noise[..],
        ]
        .concat(),
        None,
    );
    let two = dir.path().join("two.wav");
    run(
        &[
            &[
                "synth",
                "--voice",
                s(&v),
                "--text",
                "How are you?",
                "--out",
                s(&two),
            ],
            &noise[..],
        ]
        .concat(),
        None,
    );
    let (b, o, t) = (read_wav(&both), read_wav(&one), read_wav(&two));
    assert_eq!(b.len(), o.len() + t.len());
    assert_eq!(&b[..o.len()], &o[..]);
    assert_eq!(&b[o.len()..], &t[..]);
}

#[test]
fn seeded_noise_is_reproducible() {
    let Some(v) = voice() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (k, seed) in ["7", "7", "8"].iter().enumerate() {
        let out = dir.path().join(format!("{k}.f32"));
        let wav = dir.path().join(format!("{k}.wav"));
        run(
            &[
                "synth",
                "-q",
                "--voice",
                s(&v),
                "--ids",
                HELLO_IDS,
                "--seed",
                seed,
                "--out",
                s(&wav),
                "--out-f32",
                s(&out),
            ],
            None,
        );
        outs.push(read_f32(&out));
    }
    assert_eq!(outs[0], outs[1]);
    assert_ne!(outs[0], outs[2]);
}

#[test]
fn phonemize_prints_phonemes_and_ids() {
    let Some(v) = voice() else { return };
    if !espeak_available() {
        return;
    }
    let o = run(
        &["phonemize", "--voice", s(&v), "--text", "Hello world."],
        None,
    );
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(out, format!("phonemes: həlˈoʊ wˈɜːld.\nids: {HELLO_IDS}\n"));
}

#[test]
fn bench_reports_its_measurements() {
    let Some(v) = voice() else { return };
    let o = run(
        &["bench", "--voice", s(&v), "--ids", HELLO_IDS, "--runs", "1"],
        None,
    );
    let out = String::from_utf8(o.stdout).unwrap();
    for needle in ["load:", "real-time factor", "first audio", "peak memory"] {
        assert!(out.contains(needle), "{needle:?} missing in {out}");
    }
}
