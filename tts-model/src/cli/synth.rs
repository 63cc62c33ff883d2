//! `tts synth`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use tts_model::precision::Plan;
use tts_model::tt::{Arch, DeviceKind, TtBackend, TtOptions};
use tts_model::{SynthOptions, Synthesizer, Voice, VoiceConfig};

use super::args::{ArchKind, BackendKind, SynthArgs, VoiceArgs};
use super::input::{self, SentenceIds, describe_chars};
use super::output::AudioSink;

/// Options from the voice's defaults and the command line.
pub fn options(v: &VoiceArgs, config: &VoiceConfig) -> Result<SynthOptions> {
    let mut o = SynthOptions::from_config(config);
    if let Some(x) = v.noise_scale {
        o.noise_scale = x;
    }
    if let Some(x) = v.length_scale {
        o.length_scale = x;
    }
    if let Some(x) = v.noise_w {
        o.noise_w = x;
    }
    o.seed = v.seed;
    for (name, x) in [("--noise-scale", o.noise_scale), ("--noise-w", o.noise_w)] {
        if !(x.is_finite() && x >= 0.0) {
            bail!("{name} must be a finite number >= 0 (got {x})");
        }
    }
    if !(o.length_scale.is_finite() && o.length_scale > 0.0) {
        bail!(
            "--length-scale must be a finite number > 0 (got {})",
            o.length_scale
        );
    }
    o.speaker = match &v.speaker {
        None => None,
        Some(s) => Some(speaker_id(s, config)?),
    };
    Ok(o)
}

fn speaker_id(s: &str, config: &VoiceConfig) -> Result<usize> {
    let id = match s.parse::<i64>() {
        Ok(n) => n,
        Err(_) => *config.speaker_id_map.get(s).ok_or_else(|| {
            let mut names: Vec<&String> = config.speaker_id_map.keys().collect();
            names.sort();
            anyhow::anyhow!(
                "unknown speaker {s:?}; the voice has {}",
                if names.is_empty() {
                    "no named speakers".to_string()
                } else {
                    format!("{names:?}")
                }
            )
        })?,
    };
    if id < 0 || id as usize >= config.num_speakers {
        bail!(
            "speaker {id} out of range: the voice has {} speaker(s) (0..{})",
            config.num_speakers,
            config.num_speakers
        );
    }
    Ok(id as usize)
}

/// Loads the voice on the chosen backend.
pub fn load(v: &VoiceArgs) -> Result<(Synthesizer, tts_model::synth::LoadStats)> {
    match v.backend {
        BackendKind::Cpu => Synthesizer::load(&v.voice, v.threads)
            .with_context(|| format!("cannot load voice {}", v.voice.display())),
        BackendKind::Sim | BackendKind::Metal => {
            let (tt, stats, config) = load_tt(v)?;
            Ok((Synthesizer::new(Box::new(tt), config), stats))
        }
    }
}

/// Loads the voice on the `tt` backend (`--backend sim|metal`).
pub fn load_tt(
    v: &VoiceArgs,
) -> Result<(
    std::sync::Arc<TtBackend>,
    tts_model::synth::LoadStats,
    VoiceConfig,
)> {
    let plan = Plan::from_arg(&v.precision)?;
    let device = match v.backend {
        BackendKind::Metal => DeviceKind::Metal(v.device_id),
        _ => DeviceKind::Sim(match v.arch {
            ArchKind::Wormhole => Arch::WormholeB0,
            ArchKind::Blackhole => Arch::Blackhole,
        }),
    };
    let t0 = Instant::now();
    let voice = Voice::load(&v.voice)
        .with_context(|| format!("cannot load voice {}", v.voice.display()))?;
    let t1 = Instant::now();
    let tt = TtBackend::new(
        &voice,
        TtOptions {
            device,
            plan,
            host_threads: v.threads,
            emulate: false,
        },
    )
    .with_context(|| {
        format!(
            "cannot prepare voice {} on the tt backend",
            v.voice.display()
        )
    })?;
    let stats = tts_model::synth::LoadStats {
        parse_s: (t1 - t0).as_secs_f64(),
        convert_s: t1.elapsed().as_secs_f64(),
    };
    Ok((std::sync::Arc::new(tt), stats, voice.config))
}

/// Prints the dropped-symbol warning of one sentence.
pub fn warn_unknown(s: &SentenceIds, index: usize) {
    if !s.unknown.is_empty() {
        let mut u = s.unknown.clone();
        u.sort_unstable();
        u.dedup();
        eprintln!(
            "tts: warning: sentence {}: dropped {} phoneme(s) missing from the voice's phoneme_id_map: {}",
            index + 1,
            s.unknown.len(),
            describe_chars(&u)
        );
    }
}

pub fn run(a: &SynthArgs) -> Result<()> {
    let t_start = Instant::now();
    // Cheap checks first: input, config, output paths; then espeak-ng; then the weights.
    let inp = input::read_input(&a.input)?;
    let config = input::load_config(&a.voice.voice)?;
    let opts = options(&a.voice, &config)?;
    let mut sink = AudioSink::create(&a.out, a.out_f32.as_deref(), config.audio.sample_rate)?;
    let sentences = input::sentences(inp, &config, &a.input)?;
    let (synth, _) = load(&a.voice)?;
    if synth.sample_rate() != config.audio.sample_rate {
        bail!("internal: sample rate changed between config reads");
    }
    let t_synth = Instant::now();
    let mut first_audio = None;
    let mut n_sentences = 0usize;
    for (k, s) in sentences.enumerate() {
        let s = s?;
        warn_unknown(&s, k);
        if s.ids.len() <= 3 && s.phonemes.is_some() {
            // Only ^ _ $: every phoneme was unknown; nothing to say.
            continue;
        }
        let stream = synth
            .stream_ids(&s.ids, &opts)
            .with_context(|| format!("sentence {}", k + 1))?;
        let mut buf = Vec::with_capacity(stream.frames() * 256);
        for chunk in stream {
            let chunk = chunk.with_context(|| format!("sentence {}", k + 1))?;
            first_audio.get_or_insert_with(|| t_start.elapsed());
            sink.raw_chunk(&chunk)?;
            buf.extend_from_slice(&chunk);
        }
        sink.sentence(&buf)?;
        n_sentences += 1;
    }
    if n_sentences == 0 {
        bail!("nothing to synthesize: no sentence had a phoneme the voice knows");
    }
    let samples = sink.samples();
    sink.finish()?;
    if !a.quiet {
        let audio_s = samples as f64 / f64::from(config.audio.sample_rate);
        let synth_s = t_synth.elapsed().as_secs_f64();
        eprintln!(
            "tts: wrote {} ({samples} samples, {audio_s:.2} s at {} Hz, {n_sentences} sentence(s)); synthesis {synth_s:.2} s \
             (real-time factor {:.3}), first audio after {:.2} s",
            a.out.display(),
            config.audio.sample_rate,
            synth_s / audio_s.max(1e-9),
            first_audio.unwrap_or_default().as_secs_f64()
        );
    }
    Ok(())
}
