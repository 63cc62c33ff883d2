//! The [`Backend`] trait: the four stages of VITS inference that a compute backend implements
//! (`cpu` is the reference; `tt` and `cuda` implement the same trait). Alignment, noise and
//! chunking are done once, by the [`crate::synth::Synthesizer`], for every backend.
//!
//! All activations crossing this interface are **time-major**: a `[rows, channels]` row-major f32
//! buffer (row = one phoneme id or one frame). Golden files from onnxruntime are channels-first and
//! must be transposed before comparing.
#![deny(unsafe_code)]

use crate::error::Result;
use crate::voice::Hparams;

/// Output of the text encoder for one utterance of `t` ids.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// Number of ids.
    pub t: usize,
    /// Encoder output `[t, hidden]` (input of the duration predictor).
    pub x: Vec<f32>,
    /// Prior statistics `[t, 2 * inter]`: columns `0..inter` are `m_p`, `inter..` are `logs_p`.
    pub stats: Vec<f32>,
}

/// A compute backend for Piper/VITS voices.
pub trait Backend: Send + Sync {
    /// Short name (`cpu`, `tt`, `cuda`).
    fn name(&self) -> &str;

    /// Hyper-parameters of the loaded voice.
    fn hparams(&self) -> &Hparams;

    /// Text encoder: ids (each `< n_vocab`, checked by the caller) to [`Encoded`].
    fn encode(&self, ids: &[i64]) -> Result<Encoded>;

    /// Stochastic duration predictor in reverse: `logw` `[t]` from the encoder output and the noise
    /// `[t, 2]` (standard normal times `noise_w`; all zeros for deterministic output).
    fn log_durations(
        &self,
        enc: &Encoded,
        noise: &[f32],
        speaker: Option<usize>,
    ) -> Result<Vec<f32>>;

    /// Alignment: integer durations `ceil(exp(logw) * length_scale)` (f32 arithmetic, as the
    /// exported graph) and the prior means `m_p` expanded to frames (`[frames, inter]`, row `j`
    /// is `m_p` of the id that owns frame `j`; integer gather, no float cumulative sum). The
    /// default runs on the host; a device backend overrides it.
    fn align(
        &self,
        enc: &Encoded,
        logw: &[f32],
        length_scale: f32,
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let durations = host_durations(logw, length_scale);
        let m_p = host_expand_means(enc, &durations, self.hparams().inter);
        Ok((durations, m_p))
    }

    /// Flow in reverse: `z_p` `[frames, inter]` to `z` `[frames, inter]`. Zero padding at both ends,
    /// so a window of frames with [`Hparams::flow_context`] frames of context per side reproduces the
    /// un-windowed result in its interior.
    fn flow_reverse(&self, z_p: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>>;

    /// Decoder: `z` `[frames, inter]` to `frames * hop` raw samples (tanh output, not normalised).
    fn decode(&self, z: &[f32], frames: usize, speaker: Option<usize>) -> Result<Vec<f32>>;
}

impl Hparams {
    /// Receptive radius of the reverse flow in frames (exact: every WN conv widens it by
    /// `dilation * (kernel - 1) / 2`; 4 couplings x 4 layers x 2 = 32 for Piper voices).
    pub fn flow_context(&self) -> usize {
        self.flow_layers.len() * self.wn_layers * (self.wn_kernel - 1) / 2
    }

    /// Receptive radius of the decoder in frames, rounded up (each layer's exact radius in its own
    /// sample rate, summed).
    pub fn decoder_context(&self) -> usize {
        let mut radius = (self.dec_pre_kernel / 2) as f64;
        let mut rate = 1.0f64;
        for u in &self.ups {
            // Output q*s + r reads inputs q + (r + p - tap) / s for taps with tap = r + p (mod s).
            let mut ct = 0usize;
            for r in 0..u.stride {
                for tap in (0..u.kernel).filter(|t| t % u.stride == (r + u.pad) % u.stride) {
                    ct = ct.max(((r + u.pad) as isize - tap as isize).unsigned_abs() / u.stride);
                }
            }
            radius += ct as f64 / rate;
            rate *= u.stride as f64;
            let rb = self
                .resblock_kernels
                .iter()
                .zip(&self.resblock_dilations)
                .map(|(&k, ds)| {
                    let per: usize = ds.iter().map(|d| d * (k - 1) / 2).sum();
                    let second = if self.resblock == crate::voice::ResBlockKind::One {
                        ds.len() * (k - 1) / 2
                    } else {
                        0
                    };
                    per + second
                })
                .max()
                .unwrap_or(0);
            radius += rb as f64 / rate;
        }
        radius += (self.dec_post_kernel / 2) as f64 / rate;
        radius.ceil() as usize
    }
}

/// `ceil(exp(logw) * length_scale)` as integers (f32 arithmetic as the exported graph does it).
pub fn host_durations(logw: &[f32], length_scale: f32) -> Vec<u32> {
    logw.iter()
        .map(|&l| (l.exp() * length_scale).ceil().max(0.0) as u32)
        .collect()
}

/// `m_p` of `enc.stats` (`[t, 2 * inter]`, first `inter` columns) repeated `dur[i]` times per id.
pub fn host_expand_means(enc: &Encoded, dur: &[u32], inter: usize) -> Vec<f32> {
    let frames: usize = dur.iter().map(|&d| d as usize).sum();
    let mut z = Vec::with_capacity(frames * inter);
    for (i, &d) in dur.iter().enumerate() {
        let row = &enc.stats[i * 2 * inter..i * 2 * inter + inter];
        for _ in 0..d {
            z.extend_from_slice(row);
        }
    }
    z
}
