//! [`Synthesizer`]: phoneme ids to audio on any [`Backend`], whole-utterance or streamed in chunks.
//!
//! Pipeline (MODEL.md section 2): encoder -> stochastic duration predictor (noise `noise_w`) ->
//! integer durations `ceil(exp(logw) * length_scale)` and a gather-based alignment (no float
//! cumulative sum) -> prior sample `m_p + N(0,1) * exp(logs_p) * noise_scale` -> reverse flow and
//! decoder, run in windows of frames with exact context (the flow's and the decoder's receptive
//! radius) so memory stays bounded and the first chunk of audio is ready early.
//! Noise comes from a seeded ChaCha20 generator: the same seed gives the same audio.
#![deny(unsafe_code)]

use std::path::Path;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::backend::{Backend, Encoded};
use crate::cpu::{CpuBackend, CpuOptions};
use crate::error::{Result, TtsError};
use crate::voice::{Voice, VoiceConfig};

/// Per-utterance synthesis settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthOptions {
    /// Prior noise scale (voice default 0.667; 0 = deterministic).
    pub noise_scale: f32,
    /// Duration multiplier (1.0 normal; > 1 slower).
    pub length_scale: f32,
    /// Duration noise scale (voice default 0.8; 0 = deterministic).
    pub noise_w: f32,
    /// Speaker id for multi-speaker voices (`None` = speaker 0).
    pub speaker: Option<usize>,
    /// Seed of the noise generator.
    pub seed: u64,
}

impl SynthOptions {
    /// The voice's default scales, speaker 0, seed 0.
    pub fn from_config(c: &VoiceConfig) -> Self {
        Self {
            noise_scale: c.inference.noise_scale,
            length_scale: c.inference.length_scale,
            noise_w: c.inference.noise_w,
            speaker: None,
            seed: 0,
        }
    }

    /// No noise at all (the setting for exact comparisons with onnxruntime).
    pub fn deterministic() -> Self {
        Self {
            noise_scale: 0.0,
            length_scale: 1.0,
            noise_w: 0.0,
            speaker: None,
            seed: 0,
        }
    }

    fn check(&self) -> Result<()> {
        let ok = |v: f32| v.is_finite() && v >= 0.0;
        if !(ok(self.noise_scale)
            && ok(self.noise_w)
            && self.length_scale.is_finite()
            && self.length_scale > 0.0)
        {
            return Err(TtsError::Input(format!(
                "scales must be finite, noise >= 0 and length_scale > 0 (got noise_scale {}, length_scale {}, noise_w {})",
                self.noise_scale, self.length_scale, self.noise_w
            )));
        }
        Ok(())
    }
}

/// Synthesized audio of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Raw model output (tanh, in [-1, 1]; Piper peak-normalises before writing int16).
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Number of frames (`samples.len() == frames * hop`).
    pub frames: usize,
    /// Integer durations: frames per id (they add up to `frames`).
    pub durations: Vec<u32>,
}

/// Frames-per-window settings of the chunked flow + decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    /// Frames of output per chunk (the first chunk is `first` frames, to start audio early).
    pub frames: usize,
    /// Frames in the first chunk.
    pub first: usize,
    /// Context frames per side for the flow (default: its exact receptive radius, 32 for Piper).
    pub flow_context: Option<usize>,
    /// Context frames per side for the decoder (default: its receptive radius, rounded up).
    pub decoder_context: Option<usize>,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            frames: 384,
            first: 96,
            flow_context: None,
            decoder_context: None,
        }
    }
}

/// Phoneme ids to audio with a [`Backend`].
pub struct Synthesizer {
    backend: Box<dyn Backend>,
    config: VoiceConfig,
    chunk: ChunkOptions,
}

/// Timings of the last [`Synthesizer::load`].
#[derive(Debug, Clone, Copy)]
pub struct LoadStats {
    /// Seconds spent decoding the `.onnx` file and config.
    pub parse_s: f64,
    /// Seconds spent converting weights for the backend.
    pub convert_s: f64,
}

impl Synthesizer {
    /// Wrap a backend (built from a voice with that config).
    pub fn new(backend: Box<dyn Backend>, config: VoiceConfig) -> Self {
        Self {
            backend,
            config,
            chunk: ChunkOptions::default(),
        }
    }

    /// Load a voice onto the CPU backend with `threads` worker threads (0 = all cores).
    pub fn load(onnx_path: impl AsRef<Path>, threads: usize) -> Result<(Self, LoadStats)> {
        let t0 = Instant::now();
        let voice = Voice::load(onnx_path)?;
        let t1 = Instant::now();
        let backend = CpuBackend::new(&voice, CpuOptions { threads })?;
        let stats = LoadStats {
            parse_s: (t1 - t0).as_secs_f64(),
            convert_s: t1.elapsed().as_secs_f64(),
        };
        Ok((Self::new(Box::new(backend), voice.config), stats))
    }

    /// Change the chunking of the flow + decoder.
    pub fn with_chunks(mut self, chunk: ChunkOptions) -> Self {
        self.chunk = ChunkOptions {
            frames: chunk.frames.max(1),
            first: chunk.first.max(1),
            ..chunk
        };
        self
    }

    /// The voice config.
    pub fn config(&self) -> &VoiceConfig {
        &self.config
    }

    /// The backend.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }

    /// Output sample rate.
    pub fn sample_rate(&self) -> u32 {
        self.config.audio.sample_rate
    }

    /// The voice's default options.
    pub fn default_options(&self) -> SynthOptions {
        SynthOptions::from_config(&self.config)
    }

    /// Whole utterance: all chunks concatenated.
    pub fn synthesize_ids(&self, ids: &[i64], opts: &SynthOptions) -> Result<Audio> {
        self.collect(self.stream_ids(ids, opts)?)
    }

    /// Whole utterance with given durations (teacher forcing, a diagnostic: e.g. another
    /// backend's durations, so that frame-aligned quality metrics stay defined when a `ceil`
    /// flips). The duration predictor still runs (and is accounted); its output is replaced by
    /// `logw = ln((d - 0.5) / length_scale)`, which the backend's alignment turns back into
    /// exactly `d` (each `d >= 1`, as the model's `ceil(exp(..))` always gives).
    pub fn synthesize_ids_with_durations(
        &self,
        ids: &[i64],
        opts: &SynthOptions,
        durations: &[u32],
    ) -> Result<Audio> {
        if durations.len() != ids.len() || durations.contains(&0) {
            return Err(TtsError::Input(format!(
                "forced durations: {} values (each >= 1) for {} ids",
                durations.len(),
                ids.len()
            )));
        }
        self.collect(self.stream_inner(ids, opts, Some(durations))?)
    }

    fn collect(&self, mut stream: AudioStream<'_>) -> Result<Audio> {
        let frames = stream.frames();
        let durations = stream.durations().to_vec();
        let mut samples = Vec::with_capacity(frames * self.backend.hparams().hop());
        for chunk in &mut stream {
            samples.extend_from_slice(&chunk?);
        }
        Ok(Audio {
            samples,
            sample_rate: self.sample_rate(),
            frames,
            durations,
        })
    }

    /// Run encoder, duration predictor and alignment now; flow + decoder run chunk by chunk as the
    /// returned iterator is consumed.
    pub fn stream_ids(&self, ids: &[i64], opts: &SynthOptions) -> Result<AudioStream<'_>> {
        self.stream_inner(ids, opts, None)
    }

    fn stream_inner(
        &self,
        ids: &[i64],
        opts: &SynthOptions,
        forced: Option<&[u32]>,
    ) -> Result<AudioStream<'_>> {
        opts.check()?;
        if ids.is_empty() {
            return Err(TtsError::Input("empty id sequence".into()));
        }
        let hp = self.backend.hparams();
        if let Some(bad) = ids.iter().find(|&&i| i < 0 || i as usize >= hp.n_vocab) {
            return Err(TtsError::Input(format!(
                "phoneme id {bad} outside 0..{}",
                hp.n_vocab
            )));
        }
        if let Some(s) = opts.speaker
            && s >= hp.n_speakers
        {
            return Err(TtsError::Input(format!(
                "speaker {s} out of range (voice has {})",
                hp.n_speakers
            )));
        }
        let mut rng = ChaCha20Rng::seed_from_u64(opts.seed);
        let enc = self.backend.encode(ids)?;
        let t = enc.t;
        let mut noise = vec![0.0f32; 2 * t];
        if opts.noise_w > 0.0 {
            // Drawn channel-major ([2, T], as VITS' randn), stored time-major.
            for ch in 0..2 {
                for i in 0..t {
                    let v: f32 = StandardNormal.sample(&mut rng);
                    noise[2 * i + ch] = v * opts.noise_w;
                }
            }
        }
        let mut logw = self.backend.log_durations(&enc, &noise, opts.speaker)?;
        if let Some(d) = forced {
            logw = d
                .iter()
                .map(|&d| ((d as f32 - 0.5) / opts.length_scale).ln())
                .collect();
        }
        let (durations, mut z_p) = self.backend.align(&enc, &logw, opts.length_scale)?;
        if durations.len() != t
            || z_p.len() != durations.iter().map(|&d| d as usize).sum::<usize>() * hp.inter
        {
            return Err(TtsError::Unsupported(format!(
                "backend {} aligned {} durations / {} prior values for {t} ids",
                self.backend.name(),
                durations.len(),
                z_p.len()
            )));
        }
        if let Some(d) = forced
            && durations != d
        {
            return Err(TtsError::Unsupported(format!(
                "backend {} did not reproduce the forced durations in its alignment",
                self.backend.name()
            )));
        }
        add_prior_noise(
            &mut z_p,
            &enc,
            &durations,
            hp.inter,
            opts.noise_scale,
            &mut rng,
        );
        let frames: usize = durations.iter().map(|&d| d as usize).sum();
        let fctx = self.chunk.flow_context.unwrap_or_else(|| hp.flow_context());
        let dctx = self
            .chunk
            .decoder_context
            .unwrap_or_else(|| hp.decoder_context());
        Ok(AudioStream {
            synth: self,
            speaker: opts.speaker,
            z_p,
            z: vec![0.0; frames * hp.inter],
            flow_done: 0,
            next: 0,
            frames,
            fctx,
            dctx,
            durations,
            logw,
        })
    }
}

/// `ceil(exp(logw) * length_scale)` as integers (the host alignment's rule, defined once in
/// [`crate::backend`]).
pub use crate::backend::host_durations as durations;

/// Adds `N(0,1) * exp(logs_p[i]) * noise_scale` to the expanded prior means `z` (frame `j` of id
/// `i`), drawn channel-major (`[inter, F]`, as VITS' `randn_like(m_p)`). Nothing when
/// `noise_scale` is 0 (deterministic synthesis).
fn add_prior_noise(
    z: &mut [f32],
    enc: &Encoded,
    dur: &[u32],
    inter: usize,
    noise_scale: f32,
    rng: &mut ChaCha20Rng,
) {
    if noise_scale <= 0.0 {
        return;
    }
    let mut owner = Vec::with_capacity(z.len() / inter.max(1));
    for (i, &d) in dur.iter().enumerate() {
        owner.extend(std::iter::repeat_n(i, d as usize));
    }
    for c in 0..inter {
        for (j, &i) in owner.iter().enumerate() {
            let e: f32 = StandardNormal.sample(rng);
            z[j * inter + c] += e * enc.stats[i * 2 * inter + inter + c].exp() * noise_scale;
        }
    }
}

/// Chunks of audio of one utterance (iterator of sample blocks).
pub struct AudioStream<'a> {
    synth: &'a Synthesizer,
    speaker: Option<usize>,
    z_p: Vec<f32>,
    z: Vec<f32>,
    flow_done: usize,
    next: usize,
    frames: usize,
    fctx: usize,
    dctx: usize,
    durations: Vec<u32>,
    logw: Vec<f32>,
}

impl AudioStream<'_> {
    /// Total frames of the utterance.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Integer durations (frames per id).
    pub fn durations(&self) -> &[u32] {
        &self.durations
    }

    /// Log-durations from the duration predictor.
    pub fn logw(&self) -> &[f32] {
        &self.logw
    }

    /// Make sure flow output exists for frames `..upto`.
    fn flow_until(&mut self, upto: usize) -> Result<()> {
        let b = self.synth.backend.as_ref();
        let inter = b.hparams().inter;
        // The flow is cheap in memory (inter floats per frame), so after a first window of one decoder
        // chunk (early first audio) it runs in windows 4x the decoder's, to cut the relative cost of
        // its context.
        let step = if self.flow_done == 0 {
            self.synth.chunk.frames
        } else {
            4 * self.synth.chunk.frames
        }
        .max(1);
        while self.flow_done < upto {
            let a = self.flow_done;
            let mut e = (a + step).max(upto).min(self.frames);
            if self.frames - e < step / 2 {
                e = self.frames; // no small tail window: its context would cost more than it saves
            }
            let lo = a.saturating_sub(self.fctx);
            let hi = (e + self.fctx).min(self.frames);
            let win = b.flow_reverse(&self.z_p[lo * inter..hi * inter], hi - lo, self.speaker)?;
            self.z[a * inter..e * inter].copy_from_slice(&win[(a - lo) * inter..(e - lo) * inter]);
            self.flow_done = e;
        }
        Ok(())
    }

    fn next_chunk(&mut self) -> Result<Vec<f32>> {
        let b = self.synth.backend.as_ref();
        let inter = b.hparams().inter;
        let hop = b.hparams().hop();
        let size = if self.next == 0 {
            self.synth.chunk.first
        } else {
            self.synth.chunk.frames
        };
        let a = self.next;
        let mut e = (a + size).min(self.frames);
        if self.frames - e < self.synth.chunk.frames / 2 {
            e = self.frames; // fold a short tail into this chunk
        }
        let lo = a.saturating_sub(self.dctx);
        let hi = (e + self.dctx).min(self.frames);
        self.flow_until(hi)?;
        let audio = b.decode(&self.z[lo * inter..hi * inter], hi - lo, self.speaker)?;
        self.next = e;
        Ok(audio[(a - lo) * hop..(e - lo) * hop].to_vec())
    }
}

impl Iterator for AudioStream<'_> {
    type Item = Result<Vec<f32>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.frames {
            return None;
        }
        let r = self.next_chunk();
        if r.is_err() {
            self.next = self.frames;
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_integer_ceilings() {
        let logw = [0.0f32, (2.5f32).ln(), -10.0, (3.0f32).ln()];
        let d = durations(&logw, 1.0);
        assert_eq!(&d[..3], &[1, 3, 1]);
        assert!(d[3] == 3 || d[3] == 4, "exp(ln 3) is within an ulp of 3");
        assert_eq!(durations(&[0.0], 2.0), vec![2]);
    }
}
