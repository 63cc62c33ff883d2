//! `tts bench`: load time, real-time factor, time to first audio, peak memory.

use std::time::Instant;

use anyhow::{Result, bail};

use super::args::BenchArgs;
use super::input;
use super::synth::{load, options};

/// Peak resident memory of this process (`VmHWM`, Linux), in bytes.
pub fn peak_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

struct Run {
    audio_s: f64,
    synth_s: f64,
    first_s: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(a: &BenchArgs) -> Result<()> {
    if a.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let inp = input::read_input(&a.input)?;
    let config = input::load_config(&a.voice.voice)?;
    let opts = options(&a.voice, &config)?;
    let t0 = Instant::now();
    let (synth, stats) = load(&a.voice)?;
    let load_s = t0.elapsed().as_secs_f64();
    println!(
        "voice {} | backend {:?} | threads {} | sample rate {}",
        a.voice.voice.display(),
        a.voice.backend,
        if a.voice.threads == 0 {
            "all".to_string()
        } else {
            a.voice.threads.to_string()
        },
        synth.sample_rate()
    );
    println!(
        "load: {load_s:.3} s (parse {:.3} s, convert {:.3} s)",
        stats.parse_s, stats.convert_s
    );
    let mut runs = Vec::new();
    for r in 0..a.runs {
        let t = Instant::now();
        let mut first = None;
        let mut samples = 0usize;
        // Phonemization is part of each run, as it is for a user.
        for (k, s) in input::sentences(inp.clone(), &config, &a.input)?.enumerate() {
            let s = s?;
            if r == 0 {
                super::synth::warn_unknown(&s, k);
            }
            for chunk in synth.stream_ids(&s.ids, &opts)? {
                let chunk = chunk?;
                first.get_or_insert_with(|| t.elapsed().as_secs_f64());
                samples += chunk.len();
            }
        }
        let synth_s = t.elapsed().as_secs_f64();
        let audio_s = samples as f64 / f64::from(synth.sample_rate());
        if audio_s == 0.0 {
            bail!("the input produced no audio");
        }
        println!(
            "run {}: audio {audio_s:.3} s, synthesis {synth_s:.3} s, real-time factor {:.4}, first audio {:.3} s",
            r + 1,
            synth_s / audio_s,
            first.unwrap_or(synth_s)
        );
        runs.push(Run {
            audio_s,
            synth_s,
            first_s: first.unwrap_or(synth_s),
        });
    }
    let rtf = median(runs.iter().map(|r| r.synth_s / r.audio_s).collect());
    let first = median(runs.iter().map(|r| r.first_s).collect());
    println!(
        "median: real-time factor {rtf:.4}, first audio {first:.3} s ({} runs, {:.3} s of audio each)",
        runs.len(),
        runs[0].audio_s
    );
    match peak_memory_bytes() {
        Some(b) => println!(
            "peak memory (VmHWM): {:.1} MiB",
            b as f64 / (1024.0 * 1024.0)
        ),
        None => println!("peak memory: not available on this system"),
    }
    Ok(())
}
