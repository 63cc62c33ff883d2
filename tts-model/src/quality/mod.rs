//! Quality metrics for comparing a backend's audio against the cpu reference (noise off).
//!
//! Definitions (all fixed so numbers are comparable across runs and documents):
//! - **SNR** `10 log10(sum ref^2 / sum (ref - test)^2)` in dB; `+inf` when identical.
//! - **log-mel**: frames of `n_fft` = 1024 samples every `hop` = 256 samples, the signal zero-padded
//!   by `n_fft / 2` at both ends (frame `j` is centred on sample `j * hop`; `len / hop + 1` frames),
//!   periodic Hann window, magnitude spectrum, 80 triangular mel filters (HTK mel scale
//!   `2595 log10(1 + f / 700)`, 0 Hz .. Nyquist, peak 1, no area normalisation), natural log of
//!   `max(mel, 1e-5)` (HiFi-GAN's clamp).
//! - **log-mel L1** the mean absolute difference of the two log-mels over all frames and bins
//!   (natural-log units; a gain `g` on the test signal shifts every unclamped bin by `|ln g|`).
//! - **MCD** mel-cepstral distortion in dB: per frame, cepstra `c = DCT-II(log-mel)` (orthonormal),
//!   `10 / ln 10 * sqrt(2 * sum_{k=1}^{24} (c_ref[k] - c_test[k])^2)`, averaged over frames.
//!   Coefficient 0 (overall level) is excluded, as is standard. Frames are aligned one to one:
//!   MCD is only defined when the two signals have the same frame count (no DTW).
//! - **PCC** Pearson correlation of the raw samples.
//! - **frames** `len / hop` of each signal (model output is `frames * hop` samples); the metrics
//!   that need aligned signals are `None` when the counts differ.
#![deny(unsafe_code)]

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

/// Errors of the metric functions.
#[derive(Debug, thiserror::Error)]
pub enum QualityError {
    /// The two signals must have the same length for this metric.
    #[error(
        "signals differ in length ({reference} vs {test} samples): {metric} needs aligned signals; compare frame counts first"
    )]
    LengthMismatch {
        /// Metric name.
        metric: &'static str,
        /// Length of the reference.
        reference: usize,
        /// Length of the test signal.
        test: usize,
    },
    /// Nothing to compare.
    #[error("empty signal: {0} needs at least one sample")]
    Empty(&'static str),
}

/// Mel analysis settings (defaults: 22.05 kHz, n_fft 1024, hop 256, 80 mels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MelConfig {
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// FFT size (and window length).
    pub n_fft: usize,
    /// Hop in samples.
    pub hop: usize,
    /// Number of mel bands.
    pub n_mels: usize,
}

impl Default for MelConfig {
    fn default() -> Self {
        Self {
            sample_rate: 22_050,
            n_fft: 1024,
            hop: 256,
            n_mels: 80,
        }
    }
}

/// Cepstral coefficients used by [`mcd`] (1..=24).
pub const MCD_COEFFS: usize = 24;

/// Floor of the mel magnitudes before the log.
pub const LOG_FLOOR: f32 = 1e-5;

/// HTK mel scale.
pub fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

/// Inverse of [`hz_to_mel`].
pub fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

/// A log-mel analyser (plans the FFT and the filterbank once).
pub struct MelAnalyzer {
    cfg: MelConfig,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// `[n_mels][n_fft/2 + 1]` filter weights.
    filters: Vec<Vec<f32>>,
}

impl MelAnalyzer {
    /// Builds the window, the FFT plan and the filterbank.
    pub fn new(cfg: MelConfig) -> Self {
        let n_fft = cfg.n_fft.max(2);
        let cfg = MelConfig { n_fft, ..cfg };
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
        let window = (0..n_fft)
            .map(|i| {
                (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n_fft as f64).cos()) as f32
            })
            .collect();
        Self {
            filters: mel_filters(&cfg),
            cfg,
            fft,
            window,
        }
    }

    /// The settings.
    pub fn config(&self) -> &MelConfig {
        &self.cfg
    }

    /// Centre frequency (Hz) of each mel band.
    pub fn centres_hz(&self) -> Vec<f64> {
        let (lo, hi) = (0.0, hz_to_mel(f64::from(self.cfg.sample_rate) / 2.0));
        (1..=self.cfg.n_mels)
            .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (self.cfg.n_mels + 1) as f64))
            .collect()
    }

    /// Log-mel of a signal: `[frames][n_mels]` with `frames = len / hop + 1`.
    pub fn log_mel(&self, x: &[f32]) -> Vec<Vec<f32>> {
        let MelConfig { n_fft, hop, .. } = self.cfg;
        let hop = hop.max(1);
        let half = n_fft / 2;
        let frames = x.len() / hop + 1;
        let mut input = self.fft.make_input_vec();
        let mut spec = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut mag = vec![0.0f32; spec.len()];
        let mut out = Vec::with_capacity(frames);
        for j in 0..frames {
            for (i, v) in input.iter_mut().enumerate() {
                let s = (j * hop + i) as isize - half as isize;
                let sample = if s >= 0 && (s as usize) < x.len() {
                    x[s as usize]
                } else {
                    0.0
                };
                *v = sample * self.window[i];
            }
            // Lengths come from the plan itself, so this cannot fail.
            if self
                .fft
                .process_with_scratch(&mut input, &mut spec, &mut scratch)
                .is_err()
            {
                unreachable!("realfft buffers are sized by the plan");
            }
            for (m, c) in mag.iter_mut().zip(&spec) {
                *m = c.norm();
            }
            out.push(
                self.filters
                    .iter()
                    .map(|f| {
                        let e: f32 = f.iter().zip(&mag).map(|(w, m)| w * m).sum();
                        e.max(LOG_FLOOR).ln()
                    })
                    .collect(),
            );
        }
        out
    }
}

/// Triangular filters on the HTK mel scale, 0 Hz to Nyquist, peak 1.
fn mel_filters(cfg: &MelConfig) -> Vec<Vec<f32>> {
    let bins = cfg.n_fft / 2 + 1;
    let nyq = f64::from(cfg.sample_rate) / 2.0;
    let hi = hz_to_mel(nyq);
    let edges: Vec<f64> = (0..cfg.n_mels + 2)
        .map(|i| mel_to_hz(hi * i as f64 / (cfg.n_mels + 1) as f64))
        .collect();
    (0..cfg.n_mels)
        .map(|m| {
            let (l, c, r) = (edges[m], edges[m + 1], edges[m + 2]);
            (0..bins)
                .map(|b| {
                    let f = b as f64 * f64::from(cfg.sample_rate) / cfg.n_fft as f64;
                    let w = if f <= l || f >= r {
                        0.0
                    } else if f <= c {
                        (f - l) / (c - l)
                    } else {
                        (r - f) / (r - c)
                    };
                    w as f32
                })
                .collect()
        })
        .collect()
}

fn check_pair(metric: &'static str, a: &[f32], b: &[f32]) -> Result<(), QualityError> {
    if a.len() != b.len() {
        return Err(QualityError::LengthMismatch {
            metric,
            reference: a.len(),
            test: b.len(),
        });
    }
    if a.is_empty() {
        return Err(QualityError::Empty(metric));
    }
    Ok(())
}

/// SNR of `test` against `reference` in dB (`+inf` when identical).
pub fn snr_db(reference: &[f32], test: &[f32]) -> Result<f64, QualityError> {
    check_pair("SNR", reference, test)?;
    let (mut s, mut n) = (0.0f64, 0.0f64);
    for (&r, &t) in reference.iter().zip(test) {
        s += f64::from(r) * f64::from(r);
        let d = f64::from(r) - f64::from(t);
        n += d * d;
    }
    Ok(if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    })
}

/// Pearson correlation coefficient (NaN-free: 0 when either signal is constant, 1 if both are
/// constant and equal).
pub fn pcc(a: &[f32], b: &[f32]) -> Result<f64, QualityError> {
    check_pair("PCC", a, b)?;
    let n = a.len() as f64;
    let ma = a.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let mb = b.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (dx, dy) = (f64::from(x) - ma, f64::from(y) - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    Ok(if saa == 0.0 || sbb == 0.0 {
        if a == b { 1.0 } else { 0.0 }
    } else {
        sab / (saa * sbb).sqrt()
    })
}

/// Mean absolute difference of two log-mels with the same shape.
pub fn log_mel_l1_of(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for (fa, fb) in a.iter().zip(b) {
        for (&x, &y) in fa.iter().zip(fb) {
            sum += (f64::from(x) - f64::from(y)).abs();
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Orthonormal DCT-II of one frame, coefficients `0..count`.
pub fn dct2(x: &[f32], count: usize) -> Vec<f64> {
    let n = x.len() as f64;
    (0..count)
        .map(|k| {
            let s: f64 = x
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    f64::from(v) * (std::f64::consts::PI * k as f64 * (i as f64 + 0.5) / n).cos()
                })
                .sum();
            let norm = if k == 0 {
                (1.0 / n).sqrt()
            } else {
                (2.0 / n).sqrt()
            };
            s * norm
        })
        .collect()
}

/// MCD in dB between two aligned log-mels (frame-averaged; coefficients 1..=24).
pub fn mcd_of(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let k = 10.0 / std::f64::consts::LN_10;
    let frames = a.len().min(b.len());
    if frames == 0 {
        return 0.0;
    }
    let total: f64 = a
        .iter()
        .zip(b)
        .map(|(fa, fb)| {
            let count = (MCD_COEFFS + 1).min(fa.len());
            let (ca, cb) = (dct2(fa, count), dct2(fb, count));
            let d2: f64 = (1..count).map(|i| (ca[i] - cb[i]).powi(2)).sum();
            k * (2.0 * d2).sqrt()
        })
        .sum();
    total / frames as f64
}

/// All metrics of one comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Frames of the reference (`len / hop`).
    pub ref_frames: usize,
    /// Frames of the test signal.
    pub test_frames: usize,
    /// SNR in dB (None when lengths differ).
    pub snr_db: Option<f64>,
    /// Pearson correlation of the samples.
    pub pcc: Option<f64>,
    /// Mel-cepstral distortion in dB.
    pub mcd_db: Option<f64>,
    /// Mean |log-mel difference| (natural log).
    pub log_mel_l1: Option<f64>,
}

impl Comparison {
    /// Whether the frame counts agree.
    pub fn frames_match(&self) -> bool {
        self.ref_frames == self.test_frames
    }
}

/// Compares `test` against `reference` with every metric.
pub fn compare(analyzer: &MelAnalyzer, reference: &[f32], test: &[f32]) -> Comparison {
    let hop = analyzer.config().hop.max(1);
    let mut c = Comparison {
        ref_frames: reference.len() / hop,
        test_frames: test.len() / hop,
        snr_db: None,
        pcc: None,
        mcd_db: None,
        log_mel_l1: None,
    };
    if reference.len() == test.len() && !reference.is_empty() {
        let (ma, mb) = (analyzer.log_mel(reference), analyzer.log_mel(test));
        c.snr_db = snr_db(reference, test).ok();
        c.pcc = pcc(reference, test).ok();
        c.mcd_db = Some(mcd_of(&ma, &mb));
        c.log_mel_l1 = Some(log_mel_l1_of(&ma, &mb));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic uniform noise in [-1, 1) (xorshift), independent of the code under test.
    fn noise(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                ((s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
            })
            .collect()
    }

    fn sine(n: usize, f: f64, amp: f64) -> Vec<f32> {
        (0..n)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * f * i as f64 / 22050.0).sin()) as f32)
            .collect()
    }

    #[test]
    fn identical_signals() {
        let a = MelAnalyzer::new(MelConfig::default());
        let x: Vec<f32> = noise(256 * 40, 1).iter().map(|v| v * 0.3).collect();
        let c = compare(&a, &x, &x);
        assert_eq!((c.ref_frames, c.test_frames), (40, 40));
        assert!(c.frames_match());
        assert_eq!(c.snr_db, Some(f64::INFINITY));
        assert_eq!(c.mcd_db, Some(0.0));
        assert_eq!(c.log_mel_l1, Some(0.0));
        assert!((c.pcc.unwrap_or(0.0) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn known_noise_level() {
        // Sine of amplitude 0.5 (power 0.125) plus uniform noise of amplitude b (power b^2/3):
        // SNR = 10 log10(0.125 / (b^2/3)). With 200k samples the realised noise power deviates
        // from b^2/3 by ~sqrt(0.8/N) relative (uniform: var(u^2)/E(u^2)^2 = 0.8) = 0.2% = 0.009 dB.
        let n = 200_000;
        let x = sine(n, 441.0, 0.5);
        for b in [0.5f64, 0.05, 0.005] {
            let y: Vec<f32> = x
                .iter()
                .zip(noise(n, 7))
                .map(|(&s, e)| s + (b * f64::from(e)) as f32)
                .collect();
            let expect = 10.0 * (0.125 / (b * b / 3.0)).log10();
            let got = snr_db(&x, &y).unwrap_or(f64::NAN);
            assert!((got - expect).abs() < 0.1, "b {b}: SNR {got} vs {expect}");
        }
    }

    #[test]
    fn gain_shifts_log_mel_by_ln_g_and_leaves_mcd_zero() {
        // Magnitudes scale by g, so every unclamped log-mel bin moves by ln g: L1 = |ln g|. A
        // constant offset of the log-mel only reaches DCT coefficient 0, so MCD(1..24) = 0.
        // SNR of g x against x is -20 log10 |1 - g|; PCC is 1.
        let a = MelAnalyzer::new(MelConfig::default());
        let x: Vec<f32> = noise(256 * 60, 3).iter().map(|v| v * 0.4).collect();
        let g = 0.5f32;
        let y: Vec<f32> = x.iter().map(|v| v * g).collect();
        let c = compare(&a, &x, &y);
        let l1 = c.log_mel_l1.unwrap_or(f64::NAN);
        assert!((l1 - f64::from(g).ln().abs()).abs() < 1e-4, "L1 {l1}");
        assert!(c.mcd_db.unwrap_or(f64::NAN) < 1e-3, "MCD {:?}", c.mcd_db);
        let snr = c.snr_db.unwrap_or(f64::NAN);
        assert!((snr - (-20.0 * (1.0 - f64::from(g)).log10())).abs() < 1e-6);
        assert!((c.pcc.unwrap_or(0.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn mcd_of_one_cepstral_component() {
        // b = a + eps * (orthonormal DCT basis vector k): only c[k] differs, by eps, so
        // MCD = 10/ln10 * sqrt(2) * eps for k in 1..=24 and 0 for k = 0 or k > 24.
        let n = 80usize;
        let base: Vec<f32> = noise(n, 11).iter().map(|v| v * 3.0 - 2.0).collect();
        let eps = 0.05f64;
        for k in [0usize, 1, 7, 24, 25, 40] {
            let norm = if k == 0 {
                (1.0 / n as f64).sqrt()
            } else {
                (2.0 / n as f64).sqrt()
            };
            let b: Vec<f32> = base
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    let basis = norm
                        * (std::f64::consts::PI * k as f64 * (i as f64 + 0.5) / n as f64).cos();
                    (f64::from(v) + eps * basis) as f32
                })
                .collect();
            let got = mcd_of(&[base.clone(), base.clone()], &[b.clone(), b]);
            let expect = if (1..=24).contains(&k) {
                10.0 / std::f64::consts::LN_10 * 2f64.sqrt() * eps
            } else {
                0.0
            };
            // f32 storage of b: each element rounds by <= 2^-24 * 5; the cepstral error is at most
            // sqrt(n) times that, far below 1e-4 dB.
            assert!((got - expect).abs() < 1e-4, "k {k}: {got} vs {expect}");
        }
    }

    #[test]
    fn pure_tone_lands_in_nearest_band() {
        let a = MelAnalyzer::new(MelConfig::default());
        let centres = a.centres_hz();
        for band in [5usize, 30, 60] {
            let f = centres[band];
            let mel = a.log_mel(&sine(256 * 30, f, 0.5));
            let mid = &mel[15];
            let best = (0..mid.len())
                .max_by(|&i, &j| mid[i].total_cmp(&mid[j]))
                .unwrap_or(usize::MAX);
            assert_eq!(best, band, "tone at {f:.1} Hz");
        }
    }

    #[test]
    fn pcc_sign_and_orthogonality() {
        let n = 22050; // 441 Hz and its quadrature over exactly 441 periods
        let s = sine(n, 441.0, 1.0);
        let c: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * 441.0 * i as f64 / 22050.0).cos() as f32)
            .collect();
        let neg: Vec<f32> = s.iter().map(|v| -v).collect();
        assert!((pcc(&s, &neg).unwrap_or(0.0) + 1.0).abs() < 1e-9);
        assert!(pcc(&s, &c).unwrap_or(1.0).abs() < 1e-4);
    }

    #[test]
    fn frame_mismatch_is_reported_not_compared() {
        let a = MelAnalyzer::new(MelConfig::default());
        let x = noise(256 * 10, 5);
        let y = noise(256 * 11, 5);
        let c = compare(&a, &x, &y);
        assert_eq!((c.ref_frames, c.test_frames), (10, 11));
        assert!(!c.frames_match());
        assert!(c.snr_db.is_none() && c.mcd_db.is_none());
        assert!(matches!(
            snr_db(&x, &y),
            Err(QualityError::LengthMismatch { .. })
        ));
    }
}
