//! What rounding the *weights* to a storage format costs, measured on the cpu backend alone
//! (f32 arithmetic; only the weight values change): the floor under which no device plan with
//! those weights can go, whatever its arithmetic. A measurement, not a pass/fail bound:
//!
//! ```sh
//! cargo test --release -p tts-model --test precision_floor -- --ignored --nocapture
//! ```
//!
//! Each variant synthesises with the reference (f32 weights) durations, so frames match and MCD,
//! log-mel L1 and SNR are defined; it also reports how many durations the rounded weights
//! would change in free-running synthesis.

use std::path::PathBuf;

use tts_model::Voice;
use tts_model::cpu::{CpuBackend, CpuOptions};
use tts_model::quality::{Comparison, MelAnalyzer, MelConfig, compare};
use tts_model::synth::{Audio, SynthOptions, Synthesizer};

const HELLO: &[i64] = &[
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];

/// Nearest bf16 (round to nearest even), as the device's host-side weight conversion does.
fn bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let r = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    f32::from_bits(r)
}

/// Nearest value with 5 significant bits (hidden + 4 mantissa bits): all of a weight that
/// LoFi's single phase multiplies (SrcA hidden + top 4 bits), with the host rounding the
/// weights to nearest beforehand so that LoFi's truncation drops nothing more; the best a LoFi
/// plan can do for its weights (its activations lose bits too: SrcB hidden + top 6).
fn lofi5(x: f32) -> f32 {
    let b = x.to_bits();
    let r = b.wrapping_add(0x3_ffff + ((b >> 19) & 1)) & 0xfff8_0000;
    f32::from_bits(r)
}

/// bf16 hi + bf16 lo (16 significant bits): what a two-term weight split represents.
fn bf16x2(x: f32) -> f32 {
    let hi = bf16(x);
    hi + bf16(x - hi)
}

/// A conv weight rounded to a BFP format: blocks of 16 consecutive entries along `axis` of the
/// PyTorch tensor share an exponent, `bits` mantissa bits each (host TT-Metal encoder and
/// decoder). With `axis` = the output-channel axis (0 for Conv1d, 1 for ConvTranspose1d) this is
/// how the device stores it (a tile face row of the dense `[taps x cin, cout]` matrix); the
/// input-channel axis instead is what a transposed weight layout (`matmul_tiles` with
/// `transpose`) would store: blocks within one output channel, sharing its weight-norm scale.
/// 1-D tensors (biases, norms) and the embedding table are left alone.
fn bfp(dims: &[usize], vals: Vec<f32>, axis: usize, bits: u32) -> Vec<f32> {
    use tt_formats::bfp::{decode_value_host, encode_row_host};
    if dims.len() < 2 {
        return vals;
    }
    let n_axis = dims[axis];
    let inner: usize = dims[axis + 1..].iter().product();
    let outer: usize = dims[..axis].iter().product();
    let mut out = vals.clone();
    for o in 0..outer {
        for i in 0..inner {
            for c0 in (0..n_axis).step_by(16) {
                let idx: Vec<usize> = (c0..(c0 + 16).min(n_axis))
                    .map(|c| (o * n_axis + c) * inner + i)
                    .collect();
                let mut row = [0u32; 16];
                for (r, &j) in row.iter_mut().zip(&idx) {
                    *r = vals[j].to_bits();
                }
                let (exp, q) = encode_row_host(&row, bits);
                for (k, &j) in idx.iter().enumerate() {
                    out[j] = f32::from_bits(decode_value_host(q[k], exp, bits));
                }
            }
        }
    }
    out
}

fn synth(v: &Voice) -> Synthesizer {
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    Synthesizer::new(Box::new(cpu), v.config.clone())
}

/// The voice (`TTS_VOICE`, else the repository's), or `None` with the reason printed.
fn load_voice() -> Option<Voice> {
    let path = std::env::var_os("TTS_VOICE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
        });
    if !path.exists() {
        eprintln!(
            "skipped: voice {} not found (run scripts/setup.sh)",
            path.display()
        );
        return None;
    }
    Some(Voice::load(&path).expect("voice loads"))
}

/// The f32 voice's synthesis of `ids` (noise off) and the analyzer every comparison uses.
struct Reference {
    ids: Vec<i64>,
    opts: SynthOptions,
    out: Audio,
    an: MelAnalyzer,
}

impl Reference {
    fn new(v: &Voice, ids: Vec<i64>) -> Self {
        let opts = SynthOptions::deterministic();
        let out = synth(v).synthesize_ids(&ids, &opts).expect("reference");
        let an = MelAnalyzer::new(MelConfig {
            sample_rate: v.sample_rate(),
            hop: v.hparams.hop(),
            ..MelConfig::default()
        });
        Self { ids, opts, out, an }
    }

    /// A voice with rounded weights: its free-running synthesis, and its audio with the
    /// reference durations compared with the reference.
    fn measure(&self, vr: &Voice) -> (Audio, Comparison) {
        let s = synth(vr);
        let free = s
            .synthesize_ids(&self.ids, &self.opts)
            .expect("free-running");
        let forced = s
            .synthesize_ids_with_durations(&self.ids, &self.opts, &self.out.durations)
            .expect("forced");
        let c = compare(&self.an, &self.out.samples, &forced.samples);
        (free, c)
    }
}

#[test]
#[ignore = "measurement (prints a table): cargo test --release -p tts-model --test precision_floor -- --ignored --nocapture"]
fn weight_rounding_floor() {
    let Some(v) = load_voice() else { return };
    let ids: Vec<i64> = std::env::var("TTS_IDS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("TTS_IDS: integers"))
                .collect()
        })
        .unwrap_or_else(|| HELLO.to_vec());
    let r = Reference::new(&v, ids);
    let reference = &r.out;
    type Round = fn(f32) -> f32;
    let id: Round = |x| x;
    let variants: [(&str, &str, Round); 15] = [
        ("all tensors", "", bf16),
        ("matrices (>= 2 dims) only", "", bf16),
        ("enc_p.* only", "enc_p.", bf16),
        ("dp.* only", "dp.", bf16),
        ("flow.* only", "flow.", bf16),
        ("dec.* only", "dec.", bf16),
        ("all tensors, bf16x2", "", bf16x2),
        ("dec.* only, bf16x2", "dec.", bf16x2),
        ("conv weights bfp8_b", "", id),
        ("dec.* conv weights bfp8_b", "dec.", id),
        ("conv weights bfp4_b", "", id),
        (
            "matrices (>= 2 dims, not the embedding) rounded to LoFi's 5 bits",
            "",
            lofi5,
        ),
        ("dec.* matrices rounded to LoFi's 5 bits", "dec.", lofi5),
        ("dec.* conv weights bfp8_b along cin", "dec.", id),
        ("conv weights bfp8_b along cin", "", id),
    ];
    eprintln!(
        "weights rounded | frames free-running | changed durations | MCD dB | log-mel L1 | SNR dB (forced durations)"
    );
    for (label, prefix, round) in variants {
        let matrices_only = label.starts_with("matrices") || label.contains("matrices rounded");
        let along_cin = label.ends_with("along cin");
        let label_fmt = label.trim_end_matches(" along cin");
        let bfp_bits = if label_fmt.ends_with("bfp8_b") {
            Some(7)
        } else if label_fmt.ends_with("bfp4_b") {
            Some(3)
        } else {
            None
        };
        let w = v
            .weights
            .map_f32(|name, dims, vals| {
                if let Some(bits) = bfp_bits {
                    if !name.starts_with(prefix) || name.starts_with("enc_p.emb") {
                        return vals;
                    }
                    let mut axis = usize::from(name.starts_with("dec.ups."));
                    if along_cin && dims.len() >= 2 {
                        axis = 1 - axis;
                    }
                    bfp(dims, vals, axis, bits)
                } else if name.starts_with(prefix)
                    && (!matrices_only || dims.len() >= 2)
                    && !(label.contains("LoFi") && name.starts_with("enc_p.emb"))
                {
                    vals.into_iter().map(round).collect()
                } else {
                    vals
                }
            })
            .expect("map weights");
        let vr = Voice::from_parts(&v.path, v.config.clone(), w).expect("voice");
        let (free, c) = r.measure(&vr);
        let changed = free
            .durations
            .iter()
            .zip(&reference.durations)
            .filter(|(a, b)| a != b)
            .count();
        eprintln!(
            "{label} | {}/{} | {changed}/{} | {:.4} | {:.5} | {:.1}",
            reference.frames,
            free.frames,
            r.ids.len(),
            c.mcd_db.unwrap_or(f64::NAN),
            c.log_mel_l1.unwrap_or(f64::NAN),
            c.snr_db.unwrap_or(f64::NAN),
        );
    }
}

/// A rounding of one weight tensor (dims, values).
type RoundTensor = fn(&[usize], Vec<f32>) -> Vec<f32>;

/// LoFi's 5 significant bits on every value of the tensor.
fn lofi_tensor(_: &[usize], vals: Vec<f32>) -> Vec<f32> {
    vals.into_iter().map(lofi5).collect()
}

/// bfp8_b as the device stores a layer's weight: blocks along the output channels, axis 0 of a
/// Conv1d weight and 1 of a ConvTranspose1d's (`dec.ups.*`).
fn bfp8_for(name: &str) -> RoundTensor {
    if name.starts_with("dec.ups.") {
        |dims, vals| bfp(dims, vals, 1, 7)
    } else {
        |dims, vals| bfp(dims, vals, 0, 7)
    }
}

/// The weights of the compute layers `names` rounded (`round` picks the rounding by layer name),
/// everything else exact.
fn round_layers(v: &Voice, names: &[&str], round: &dyn Fn(&str) -> RoundTensor) -> Voice {
    let w = v
        .weights
        .map_f32(|name, dims, vals| match name.strip_suffix(".weight") {
            Some(m) if names.contains(&m) => round(m)(dims, vals),
            _ => vals,
        })
        .expect("map weights");
    Voice::from_parts(&v.path, v.config.clone(), w).expect("voice")
}

/// The share gates of issue #6 against the weight-rounding floor, layer by layer: >= 95% of the
/// compute layers in LoFi and >= 80% of the weight bytes in BFP8, under MCD <= 0.3 dB and
/// log-mel L1 <= 0.02. Each compute layer's weights alone are rounded (LoFi's 5 significant
/// bits; bfp8_b as the device stores it) and its audio error power (from the forced-duration
/// SNR) measured on the f32 cpu; then the most favourable selections are measured as a whole:
/// LoFi on every layer except the 5% with the largest error, and bfp8_b on the layers with the
/// least error per weight byte until 80% of the bytes. Those are floors (exact arithmetic
/// otherwise; LoFi also truncates the activations), so if they miss the gates no device plan
/// meets them with this voice.
#[test]
#[ignore = "measurement (~2 min): cargo test --release -p tts-model --test precision_floor -- --ignored --nocapture share_gates"]
fn share_gates_against_the_floor() {
    let Some(v) = load_voice() else { return };
    let r = Reference::new(&v, HELLO.to_vec());
    let layers: Vec<_> = tts_model::precision::layers(&v)
        .into_iter()
        .filter(|l| l.is_compute())
        .collect();
    let lofi = |_: &str| -> RoundTensor { lofi_tensor };
    // Per layer: (name, weight bytes as bf16, LoFi error power, BFP8 error power).
    let mut per: Vec<(String, usize, f64, f64)> = Vec::new();
    for l in &layers {
        let e = |vr: Voice| {
            let (_, c) = r.measure(&vr);
            10f64.powf(-c.snr_db.unwrap_or(f64::INFINITY) / 10.0)
        };
        let el = e(round_layers(&v, &[l.name.as_str()], &lofi));
        let eb = e(round_layers(&v, &[l.name.as_str()], &bfp8_for));
        per.push((l.name.clone(), 2 * l.params, el, eb));
    }
    let total_bytes: usize = per.iter().map(|p| p.1).sum();
    eprintln!(
        "{} compute layers, {:.2} MB of weights (bf16)",
        per.len(),
        total_bytes as f64 / 1e6
    );
    let report = |label: &str, vr: Voice| {
        let (free, c) = r.measure(&vr);
        eprintln!(
            "{label}: frames {}/{}, MCD {:.3} dB, log-mel L1 {:.4}, SNR {:.1} dB",
            r.out.frames,
            free.frames,
            c.mcd_db.unwrap_or(f64::NAN),
            c.log_mel_l1.unwrap_or(f64::NAN),
            c.snr_db.unwrap_or(f64::NAN)
        );
    };
    // LoFi: exempt the 5% (rounded down) of layers with the largest error.
    let mut by_lofi: Vec<usize> = (0..per.len()).collect();
    by_lofi.sort_by(|&a, &b| per[b].2.total_cmp(&per[a].2));
    let exempt = per.len() * 5 / 100;
    let lofi_names: Vec<&str> = by_lofi[exempt..]
        .iter()
        .map(|&i| per[i].0.as_str())
        .collect();
    eprintln!(
        "LoFi exceptions (largest error alone): {}",
        by_lofi[..exempt]
            .iter()
            .map(|&i| format!("{} ({:.1} dB)", per[i].0, -10.0 * per[i].2.log10()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    report(
        &format!(
            "{} of {} layers at LoFi's 5 weight bits",
            lofi_names.len(),
            per.len()
        ),
        round_layers(&v, &lofi_names, &lofi),
    );
    // BFP8: least error per byte first, until 80% of the bytes.
    let mut by_b: Vec<usize> = (0..per.len()).collect();
    by_b.sort_by(|&a, &b| (per[a].3 / per[a].1 as f64).total_cmp(&(per[b].3 / per[b].1 as f64)));
    let (mut bytes, mut chosen) = (0usize, Vec::new());
    for &i in &by_b {
        if bytes * 5 >= total_bytes * 4 {
            break;
        }
        bytes += per[i].1;
        chosen.push(i);
    }
    let chosen_names: Vec<&str> = chosen.iter().map(|&i| per[i].0.as_str()).collect();
    report(
        &format!(
            "bfp8_b on {} layers, {:.1}% of the weight bytes (least error per byte first)",
            chosen.len(),
            100.0 * bytes as f64 / total_bytes as f64
        ),
        round_layers(&v, &chosen_names, &bfp8_for),
    );
}
