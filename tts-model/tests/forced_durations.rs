//! Teacher-forced durations (`Synthesizer::synthesize_ids_with_durations`, used by
//! `tts eval --durations-from-cpu`): with the cpu backend's own durations the audio is identical
//! to free-running synthesis; other durations change exactly the frames they say; bad durations
//! are refused. Needs the voice (`TTS_VOICE` or `<workspace>/voices/en_US-joe-medium.onnx`); prints
//! why it is skipped otherwise.

use std::path::{Path, PathBuf};

use tts_model::{SynthOptions, Synthesizer};

const HELLO: &[i64] = &[
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];

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

#[test]
fn forced_durations_reproduce_or_change_exactly_what_they_say() {
    let Some(v) = voice() else { return };
    let (synth, _) = Synthesizer::load(&v, 1).expect("voice loads");
    let hop = synth.backend().hparams().hop();
    for length_scale in [1.0f32, 1.3] {
        let opts = SynthOptions {
            length_scale,
            ..SynthOptions::deterministic()
        };
        let free = synth.synthesize_ids(HELLO, &opts).expect("free run");
        let durations = free.durations.clone();
        assert_eq!(
            durations.iter().map(|&d| d as usize).sum::<usize>(),
            free.frames
        );
        let same = synth
            .synthesize_ids_with_durations(HELLO, &opts, &durations)
            .expect("forced run");
        assert_eq!(free.samples, same.samples, "length_scale {length_scale}");

        let mut longer = durations.clone();
        longer[5] += 2;
        let l = synth
            .synthesize_ids_with_durations(HELLO, &opts, &longer)
            .expect("forced run, longer");
        assert_eq!(l.frames, free.frames + 2);
        assert_eq!(l.samples.len(), free.samples.len() + 2 * hop);
    }
    let opts = SynthOptions::deterministic();
    let mut zero = vec![2u32; HELLO.len()];
    zero[3] = 0;
    assert!(
        synth
            .synthesize_ids_with_durations(HELLO, &opts, &zero)
            .is_err()
    );
    assert!(
        synth
            .synthesize_ids_with_durations(HELLO, &opts, &[2; 5])
            .is_err()
    );
}
