//! Two tt backends in one process must not influence each other: a plan's results are the same
//! whether or not another plan ran before it in the same process (the auto planner relies on
//! this: it prepares one backend per candidate plan).
//!
//! ```sh
//! cargo test --release -p tts-model --test plan_sequence -- --ignored --nocapture
//! ```

use std::path::PathBuf;

use tts_model::Voice;
use tts_model::precision::Plan;
use tts_model::synth::{SynthOptions, Synthesizer};
use tts_model::tt::{Arch, DeviceKind, TtBackend, TtOptions};

const HELLO: &[i64] = &[
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];

fn run(v: &Voice, plan: &str) -> (usize, Vec<f32>) {
    let tt = TtBackend::new(
        v,
        TtOptions {
            device: DeviceKind::Sim(Arch::WormholeB0),
            plan: Plan::preset(plan).expect("preset"),
            host_threads: 1,
            emulate: false,
        },
    )
    .expect("tt backend");
    let s = Synthesizer::new(Box::new(tt), v.config.clone());
    let out = s
        .synthesize_ids(HELLO, &SynthOptions::deterministic())
        .expect("synth");
    (out.frames, out.samples)
}

#[test]
#[ignore = "slow (simulator): cargo test --release -p tts-model --test plan_sequence -- --ignored --nocapture"]
fn a_plan_after_another_gives_the_same_audio() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx");
    let v = Voice::load(&path).expect("voice");
    let first = std::env::var("FIRST").unwrap_or_else(|_| "hifi".into());
    let second = std::env::var("SECOND").unwrap_or_else(|_| "hifi".into());
    let (f0, a0) = run(&v, &second);
    let _ = run(&v, &first);
    let (f1, a1) = run(&v, &second);
    eprintln!("{second} alone: {f0} frames; {second} after {first}: {f1} frames");
    let diff = a0
        .iter()
        .zip(&a1)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    eprintln!("samples differing: {diff} of {}", a0.len().min(a1.len()));
    assert_eq!(f0, f1);
    assert_eq!(diff, 0);
}
