//! Time the CPU backend on phoneme ids (used by scripts/bench_vs_onnxruntime.py).
//!
//! `cargo run --release -p tts-model --example synth_bench -- VOICE.onnx THREADS REPS IDS`
//! where IDS is a comma-separated id list or `@file` holding one. Prints one JSON line:
//! load time, best synthesis time over REPS runs (noise off), frames, samples and peak RSS (VmHWM).

use std::time::Instant;

use tts_model::{SynthOptions, Synthesizer};

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        anyhow::bail!("usage: synth_bench VOICE.onnx THREADS REPS IDS|@FILE");
    }
    let threads: usize = args[2].parse()?;
    let reps: usize = args[3].parse()?;
    let text = match args[4].strip_prefix('@') {
        Some(f) => std::fs::read_to_string(f)?,
        None => args[4].clone(),
    };
    let ids: Vec<i64> = text
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let t0 = Instant::now();
    let (synth, _) = Synthesizer::load(&args[1], threads)?;
    let load_s = t0.elapsed().as_secs_f64();
    let opts = SynthOptions::deterministic();
    if std::env::var_os("STAGES").is_some() {
        // Per-stage timings over the whole utterance (no chunking).
        let b = synth.backend();
        let t = Instant::now();
        let enc = b.encode(&ids)?;
        let t_enc = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let logw = b.log_durations(&enc, &vec![0.0; 2 * ids.len()], None)?;
        let t_dp = t.elapsed().as_secs_f64();
        let d = tts_model::synth::durations(&logw, 1.0);
        let inter = b.hparams().inter;
        let mut z_p = Vec::new();
        for (i, &n) in d.iter().enumerate() {
            for _ in 0..n {
                z_p.extend_from_slice(&enc.stats[i * 2 * inter..i * 2 * inter + inter]);
            }
        }
        let f = z_p.len() / inter;
        let t = Instant::now();
        let z = b.flow_reverse(&z_p, f, None)?;
        let t_flow = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let _ = b.decode(&z, f, None)?;
        let t_dec = t.elapsed().as_secs_f64();
        eprintln!(
            "stages: encoder {t_enc:.3} s, dp {t_dp:.3} s, flow {t_flow:.3} s, decoder {t_dec:.3} s ({f} frames)"
        );
    }
    let mut best = f64::INFINITY;
    let mut first_chunk = f64::INFINITY;
    let mut frames = 0;
    let mut samples = 0;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let mut stream = synth.stream_ids(&ids, &opts)?;
        frames = stream.frames();
        let mut n = 0;
        let mut first = None;
        for chunk in &mut stream {
            n += chunk?.len();
            first.get_or_insert(t.elapsed().as_secs_f64());
        }
        samples = n;
        best = best.min(t.elapsed().as_secs_f64());
        first_chunk = first_chunk.min(first.unwrap_or(f64::NAN));
    }
    println!(
        "{{\"threads\": {threads}, \"load_s\": {load_s:.4}, \"synth_s\": {best:.4}, \"first_audio_s\": {first_chunk:.4}, \
         \"frames\": {frames}, \"samples\": {samples}, \"audio_s\": {:.3}, \"peak_rss_mib\": {:.1}}}",
        samples as f64 / synth.sample_rate() as f64,
        vm_hwm_kib().unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}
