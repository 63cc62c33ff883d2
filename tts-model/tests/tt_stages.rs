//! The `tt` backend stage by stage against the cpu backend (noise off), on the simulator.
//! Needs the voice: env `TTS_VOICE` or `<workspace>/voices/en_US-joe-medium.onnx`
//! (tts-model/scripts/fetch-voice.sh); skipped otherwise.
//!
//! What is asserted:
//! - Every op of the encoder, flow and decoder stages runs on the device, glue included (the
//!   ledger records no host FLOPs or host elementwise steps for them).
//! - The backend's emulation mode runs the same op graph on the host: f64 reference convs of
//!   tt-kernels on the stored (bf16-rounded) inputs, bf16-rounded weights and bias, the fused
//!   input activation, output activation and residual in f64, one rounding to the output format;
//!   the glue (gate, mean, leaky ReLU) in f64, rounded once. Under `hifi` (bf16 weights, HiFi4,
//!   fp32 accumulation) the device computes each op exactly up to accumulation order, so its
//!   error against cpu may exceed the emulation's only by accumulation order and the packer's
//!   tie rule. The device cannot match the emulation bit for bit through a chained stage: a
//!   one-ulp difference in one op then propagates exactly like the rounding itself (measured:
//!   device vs emulation of the same order as emulation vs cpu). So the stage check is: the
//!   device's error against cpu is at most twice the amplitude (6 dB) of the emulation's.
//! - The emulation itself is checked against cpu with a floor far above what a wrong channel
//!   permutation, sign or split in the folded flow weights gives (~0 dB), and below the
//!   measured bf16 result (flow ~40 dB, decoder ~40 dB): 25 dB.
//! - `bfp8-lofi` is only checked for sanity here; its quality is what `tts eval` reports
//!   (docs/pipeline-on-tensix.md).

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use tts_model::backend::host_expand_means;
use tts_model::cpu::{CpuBackend, CpuOptions};
use tts_model::precision::Plan;
use tts_model::quality::snr_db;
use tts_model::synth::durations;
use tts_model::tt::{DeviceKind, TtBackend, TtOptions};
use tts_model::{Backend, Voice};

const HELLO: &[i64] = &[
    1, 0, 20, 0, 59, 0, 24, 0, 120, 0, 27, 0, 100, 0, 3, 0, 35, 0, 120, 0, 62, 0, 122, 0, 24, 0,
    17, 0, 10, 0, 2,
];

fn voice() -> Option<&'static Voice> {
    static V: OnceLock<Option<Voice>> = OnceLock::new();
    V.get_or_init(|| {
        let p = std::env::var_os("TTS_VOICE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../voices/en_US-joe-medium.onnx")
            });
        p.exists().then(|| Voice::load(&p).expect("voice loads"))
    })
    .as_ref()
}

/// Ids from env `TTS_IDS` (comma-separated), default "Hello world.".
fn env_ids() -> Vec<i64> {
    std::env::var("TTS_IDS")
        .ok()
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().parse().expect("TTS_IDS: integers"))
                .collect()
        })
        .unwrap_or_else(|| HELLO.to_vec())
}

/// z_p of "Hello world." with noise off (72 frames), from the cpu backend.
fn z_p(cpu: &CpuBackend) -> (Vec<f32>, usize) {
    let enc = cpu.encode(HELLO).expect("encode");
    let logw = cpu
        .log_durations(&enc, &vec![0.0; 2 * enc.t], None)
        .expect("durations");
    let d = durations(&logw, 1.0);
    let inter = cpu.hparams().inter;
    let z = host_expand_means(&enc, &d, inter);
    let frames = z.len() / inter;
    (z, frames)
}

fn backends(plan: &str, emulate: bool) -> Option<(CpuBackend, TtBackend)> {
    let Some(v) = voice() else {
        eprintln!(
            "skipped: voice not found, run tts-model/scripts/fetch-voice.sh (or set TTS_VOICE)"
        );
        return None;
    };
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    let t0 = Instant::now();
    let tt = TtBackend::new(
        v,
        TtOptions {
            device: DeviceKind::Sim(tts_model::tt::Arch::WormholeB0),
            plan: Plan::preset(plan).expect("preset"),
            host_threads: 1,
            emulate,
        },
    )
    .expect("tt backend on the simulator");
    eprintln!(
        "tt backend ({plan}) prepared in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    Some((cpu, tt))
}

/// Runs flow (24 frames) and decoder (6 frames of the cpu flow output) on cpu, tt and (for hifi)
/// the emulation; returns [(stage, snr tt vs cpu, snr emulation vs cpu, snr tt vs emulation)].
fn stages(plan: &str) -> Vec<(&'static str, f64, f64, f64)> {
    let Some((cpu, tt)) = backends(plan, false) else {
        return Vec::new();
    };
    let emu = plan
        .starts_with("hifi")
        .then(|| backends(plan, true))
        .flatten()
        .map(|b| b.1);
    let (z, frames) = z_p(&cpu);
    assert_eq!(frames, 72);
    let inter = cpu.hparams().inter;
    let (w, d) = (24, 6);
    let zw = &z[..w * inter];
    let flow_cpu = cpu.flow_reverse(zw, w, None).expect("cpu flow");
    let zc = &flow_cpu[..d * inter];
    let mut out = Vec::new();
    for stage in ["flow", "decoder"] {
        let run = |b: &dyn Backend| match stage {
            "flow" => b.flow_reverse(zw, w, None),
            _ => b.decode(zc, d, None),
        };
        let want = run(&cpu).expect("cpu");
        let t0 = Instant::now();
        let got = run(&tt).expect("tt on the simulator");
        let host = t0.elapsed().as_secs_f64();
        assert_eq!(got.len(), want.len());
        let (e_cpu, e_dev) = match &emu {
            Some(e) => {
                let em = run(e).expect("emulation");
                (
                    snr_db(&want, &em).expect("len"),
                    snr_db(&em, &got).expect("len"),
                )
            }
            None => (f64::NAN, f64::NAN),
        };
        let s = snr_db(&want, &got).expect("len");
        eprintln!(
            "{stage} {plan}: SNR tt vs cpu {s:.1} dB, emulation vs cpu {e_cpu:.1} dB, tt vs emulation {e_dev:.1} dB (host {host:.2} s)"
        );
        out.push((stage, s, e_cpu, e_dev));
    }
    let l = tt.ledger();
    eprintln!(
        "device ns: {:?} (estimate: {}), launches {}",
        l.device_ns, l.estimate, l.launches
    );
    assert!(l.device_flops > 0.0 && l.launches > 0);
    assert!(
        l.host_flops.is_empty() && l.host_elementwise.is_empty(),
        "flow/decoder work on the host: {:?} {:?}",
        l.host_flops,
        l.host_elementwise
    );
    out
}

/// `hifi-bf16` (bf16 weights, TF32 matmul operands): the device's error against cpu is at most
/// twice (6 dB) the amplitude of the error that the plan's roundings alone cause (the
/// emulation's: bf16 weights, TF32 operands, same op graph with folded flip/split, fused
/// residuals, device glue); the emulation is within 25 dB of cpu.
#[test]
fn flow_and_decoder_on_device_within_2x_of_emulated_rounding_error() {
    for (stage, s, e_cpu, _) in stages("hifi-bf16") {
        assert!(
            e_cpu >= 25.0,
            "{stage}: emulation vs cpu {e_cpu:.1} dB: the op graph itself is wrong"
        );
        assert!(
            s >= e_cpu - 6.0,
            "{stage}: tt vs cpu {s:.1} dB, emulation vs cpu {e_cpu:.1} dB"
        );
    }
}

/// `hifi` (bf16 hi+lo weights, TF32 hi+lo activations, isolated MVMUL products): the bounds
/// issue #6's MCD < 0.1 dB needs, from the cpu-only sensitivity table (`mcd_sensitivity`,
/// docs: white noise on the flow input `z_p` at 62.5 dB leaves MCD 0.13 dB, so the flow's own
/// error must sit above that: 63 dB at its output; noise on the decoder input at 60 dB gives
/// audio SNR 61.2 dB and MCD 0.043 dB: the decoder's audio must reach 61 dB). Each stage is fed
/// the cpu's input, so errors do not compound here.
#[test]
fn flow_and_decoder_on_device_meet_the_hifi_error_budget() {
    for (stage, s, e_cpu, _) in stages("hifi") {
        let need = if stage == "flow" { 63.0 } else { 61.0 };
        assert!(
            s >= need,
            "{stage}: tt vs cpu {s:.1} dB < {need} dB (emulation vs cpu {e_cpu:.1} dB)"
        );
    }
}
#[test]
fn flow_and_decoder_run_under_bfp8_lofi() {
    for (stage, s, _, _) in stages("bfp8-lofi") {
        // Only sanity here (finite, correlated output); the quality is measured by `tts eval`.
        assert!(s.is_finite() && s > 0.0, "{stage}: SNR {s} dB");
    }
}

/// Encoder on the device (`hifi`: split and isolated conv products, split attention, exact-fp32
/// layer norms): the prior statistics are the flow's input, whose budget for issue #6's
/// MCD < 0.1 dB is about 63 dB (`mcd_sensitivity`: white noise at 62.5 dB on `z_p` leaves MCD
/// 0.13 dB); the encoder output `x` feeds the duration predictor. The durations the cpu duration
/// predictor derives from the device encoder's output must equal the cpu encoder's. The device
/// duration predictor itself is checked in tests/tt_dp.rs.
#[test]
fn encoder_on_device_matches_cpu_hifi() {
    let Some((cpu, tt)) = backends("hifi", false) else {
        return;
    };
    let a = cpu.encode(HELLO).expect("cpu encoder");
    let b = tt.encode(HELLO).expect("tt encoder");
    let (sx, ss) = (
        snr_db(&a.x, &b.x).expect("len"),
        snr_db(&a.stats, &b.stats).expect("len"),
    );
    eprintln!("encoder hifi: x SNR {sx:.1} dB, stats SNR {ss:.1} dB");
    assert!(sx >= 63.0 && ss >= 63.0, "x {sx:.1} dB, stats {ss:.1} dB");
    let zero = vec![0.0; 2 * a.t];
    let da = durations(&cpu.log_durations(&a, &zero, None).expect("dp"), 1.0);
    let db = durations(&cpu.log_durations(&b, &zero, None).expect("dp"), 1.0);
    let flips = da.iter().zip(&db).filter(|(a, b)| a != b).count();
    assert!(
        da.len() == db.len() && flips == 0,
        "durations from the device encoder's output ({flips} differ): cpu {da:?}, tt {db:?}"
    );
    assert!(
        !tt.ledger().host_flops.contains_key("encoder"),
        "encoder ran on the host"
    );
}

/// Issue #6 acceptance, end to end on the device (encoder, duration predictor, alignment):
/// identical durations on "Hello world." under `hifi`.
#[test]
fn device_durations_match_cpu_hifi() {
    let Some((cpu, tt)) = backends("hifi", false) else {
        return;
    };
    let a = cpu.encode(HELLO).expect("cpu encoder");
    let b = tt.encode(HELLO).expect("tt encoder");
    let zero = vec![0.0; 2 * a.t];
    let la = cpu.log_durations(&a, &zero, None).expect("cpu dp");
    let lb = tt.log_durations(&b, &zero, None).expect("tt dp");
    let (da, ma) = cpu.align(&a, &la, 1.0).expect("cpu align");
    let (db, mb) = tt.align(&b, &lb, 1.0).expect("tt align");
    assert!(
        !tt.ledger().host_flops.contains_key("duration predictor"),
        "duration predictor ran on the host"
    );
    assert_eq!(da, db, "durations");
    assert_eq!(ma.len(), mb.len(), "expanded prior");
}

/// The device alignment (durations + expansion of m_p) reproduces the host's exactly on the
/// same `logw` and statistics: integer durations equal, m_p equal up to the bf16 hi + lo pair's
/// 2^-17 relative error.
#[test]
fn device_alignment_matches_host() {
    let Some((cpu, tt)) = backends("hifi", false) else {
        return;
    };
    let a = cpu.encode(HELLO).expect("cpu encoder");
    let zero = vec![0.0; 2 * a.t];
    let la = cpu.log_durations(&a, &zero, None).expect("cpu dp");
    for ls in [1.0f32, 1.37] {
        let (dh, mh) = cpu.align(&a, &la, ls).expect("host align");
        let (dd, md) = tt.align(&a, &la, ls).expect("device align");
        assert_eq!(dh, dd, "durations, length_scale {ls}");
        assert_eq!(mh.len(), md.len(), "frames x inter");
        for (i, (x, y)) in mh.iter().zip(&md).enumerate() {
            assert!(
                (x - y).abs() <= x.abs() * 2f32.powi(-17),
                "m_p[{i}]: host {x}, device {y}"
            );
        }
    }
    assert!(
        tt.ledger().device_ns.contains_key("alignment"),
        "alignment ran on the device"
    );
}

/// Where the error comes from, stage by stage (each stage fed the cpu backend's input, so
/// stage errors do not compound): encoder output and prior statistics, durations, flow output,
/// decoder audio, then the whole chain. Diagnostic: prints, asserts only that the stages ran.
/// Plans from env `TTS_PLANS` (comma-separated presets or plan files; default `hifi,bfp8-lofi`),
/// ids from env `TTS_IDS` (comma-separated; default "Hello world.").
#[test]
#[ignore = "expensive (minutes on 2 cores): cargo test -p tts-model --test tt_stages -- --ignored stage_breakdown --nocapture"]
fn stage_breakdown() {
    let Some(v) = voice() else {
        eprintln!("skipped: voice not found");
        return;
    };
    let ids = env_ids();
    let plans = std::env::var("TTS_PLANS").unwrap_or_else(|_| "hifi,bfp8-lofi".into());
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    let inter = cpu.hparams().inter;
    let enc = cpu.encode(&ids).expect("cpu encoder");
    let zero = vec![0.0; 2 * enc.t];
    let d = durations(&cpu.log_durations(&enc, &zero, None).expect("dp"), 1.0);
    let z_p = host_expand_means(&enc, &d, inter);
    let frames = z_p.len() / inter;
    let z = cpu.flow_reverse(&z_p, frames, None).expect("cpu flow");
    let audio = cpu.decode(&z, frames, None).expect("cpu decoder");
    for plan in plans.split(',') {
        let tt = TtBackend::new(
            v,
            TtOptions {
                device: DeviceKind::Sim(tts_model::tt::Arch::WormholeB0),
                plan: Plan::from_arg(plan).expect("plan"),
                host_threads: 1,
                emulate: false,
            },
        )
        .expect("tt backend");
        let t0 = Instant::now();
        let e = tt.encode(&ids).expect("tt encoder");
        let dt = durations(&tt.log_durations(&e, &zero, None).expect("dp"), 1.0);
        let t_enc = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let zt = tt.flow_reverse(&z_p, frames, None).expect("tt flow");
        let t_flow = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let at = tt.decode(&z, frames, None).expect("tt decoder");
        let t_dec = t0.elapsed().as_secs_f64();
        let chain = tt.decode(&zt, frames, None).expect("tt decoder on tt flow");
        let changed = d.iter().zip(&dt).filter(|(a, b)| a != b).count();
        // The encoder's error alone, through the cpu flow and decoder (cpu durations).
        let zp_tt = host_expand_means(&e, &d, inter);
        let z_enc = cpu.flow_reverse(&zp_tt, frames, None).expect("cpu flow");
        let a_enc = cpu.decode(&z_enc, frames, None).expect("cpu decoder");
        let mut worst: Vec<(f64, usize)> = (0..d.len())
            .map(|i| {
                let r = i * 2 * inter..i * 2 * inter + inter;
                (snr_db(&enc.stats[r.clone()], &e.stats[r]).expect("len"), i)
            })
            .collect();
        worst.sort_by(|a, b| a.0.total_cmp(&b.0));
        let worst_frames = |a: &[f32], b: &[f32], width: usize| {
            let mut w: Vec<(f64, usize)> = a
                .chunks(width)
                .zip(b.chunks(width))
                .enumerate()
                .map(|(f, (x, y))| (snr_db(x, y).unwrap_or(f64::NAN), f))
                .collect();
            w.sort_by(|a, b| a.0.total_cmp(&b.0));
            w.iter()
                .take(6)
                .map(|&(s, f)| format!("{f}:{s:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let hop = cpu.hparams().hop();
        if let Some(dir) = std::env::var_os("TTS_DUMP") {
            // Raw little-endian f32 dumps for offline analysis (cpu and tt per stage).
            let dir = PathBuf::from(dir);
            for (name, v) in [
                ("z_cpu", &z),
                ("z_tt", &zt),
                ("audio_cpu", &audio),
                ("audio_tt_dec", &at),
                ("audio_tt_chain", &chain),
            ] {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                std::fs::write(dir.join(format!("{plan}.{name}.f32")), bytes).expect("dump");
            }
        }
        eprintln!(
            "{plan}: worst frames (frame:SNR dB): flow output {}; decoder audio {}; flow+decoder audio {}",
            worst_frames(&z, &zt, inter),
            worst_frames(&audio, &at, hop),
            worst_frames(&audio, &chain, hop)
        );
        eprintln!(
            "{plan}: device encoder through the cpu flow + decoder: audio {:.1} dB; worst m_p per id (SNR dB, id index, frames): {:?}",
            snr_db(&audio, &a_enc).expect("len"),
            worst
                .iter()
                .take(4)
                .map(|&(s, i)| (format!("{s:.1}"), i, d[i]))
                .collect::<Vec<_>>()
        );
        eprintln!(
            "{plan}: encoder x {:.1} dB, stats {:.1} dB, durations changed {changed}/{} (frames {} vs {}) [{t_enc:.1} s]; \
             flow {:.1} dB [{t_flow:.1} s]; decoder {:.1} dB [{t_dec:.1} s]; flow+decoder {:.1} dB",
            snr_db(&enc.x, &e.x).expect("len"),
            snr_db(&enc.stats, &e.stats).expect("len"),
            d.len(),
            d.iter().sum::<u32>(),
            dt.iter().sum::<u32>(),
            snr_db(&z, &zt).expect("len"),
            snr_db(&audio, &at).expect("len"),
            snr_db(&audio, &chain).expect("len"),
        );
    }
}

/// How much error each stage's output may carry: white noise at a given SNR added to the cpu
/// flow's input `z_p` or to the decoder's input `z`, then the rest of the pipeline on cpu;
/// prints audio MCD / log-mel L1 / SNR against the clean cpu audio. Diagnostic (cpu only).
#[test]
#[ignore = "diagnostic (~1 min): cargo test -p tts-model --test tt_stages -- --ignored mcd_sensitivity --nocapture"]
fn mcd_sensitivity() {
    use tts_model::quality::{MelAnalyzer, MelConfig, compare};
    let Some(v) = voice() else {
        eprintln!("skipped: voice not found");
        return;
    };
    let ids = env_ids();
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    let inter = cpu.hparams().inter;
    let enc = cpu.encode(&ids).expect("cpu encoder");
    let d = durations(
        &cpu.log_durations(&enc, &vec![0.0; 2 * enc.t], None)
            .expect("dp"),
        1.0,
    );
    let z_p = host_expand_means(&enc, &d, inter);
    let frames = z_p.len() / inter;
    let z = cpu.flow_reverse(&z_p, frames, None).expect("cpu flow");
    let audio = cpu.decode(&z, frames, None).expect("cpu decoder");
    let an = MelAnalyzer::new(MelConfig {
        sample_rate: 22050,
        hop: cpu.hparams().hop(),
        ..MelConfig::default()
    });
    let noisy = |x: &[f32], snr: f64, seed: u64| -> Vec<f32> {
        let rms = (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
        // Uniform noise in [-a, a) has power a^2 / 3.
        let a = rms * 10f64.powf(-snr / 20.0) * 3f64.sqrt();
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        x.iter()
            .map(|&v| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
                (f64::from(v) + a * u) as f32
            })
            .collect()
    };
    for snr in [40.0, 50.0, 60.0, 70.0] {
        let zn = noisy(&z, snr, 1);
        let a1 = cpu.decode(&zn, frames, None).expect("decoder");
        let c1 = compare(&an, &audio, &a1);
        let zpn = noisy(&z_p, snr, 2);
        let zf = cpu.flow_reverse(&zpn, frames, None).expect("flow");
        let a2 = cpu.decode(&zf, frames, None).expect("decoder");
        let c2 = compare(&an, &audio, &a2);
        eprintln!(
            "noise at {snr} dB: on z (decoder input): MCD {:.4} dB, L1 {:.5}, audio SNR {:.1} dB; \
             on z_p (flow input): flow output SNR {:.1} dB, MCD {:.4} dB, L1 {:.5}, audio SNR {:.1} dB",
            c1.mcd_db.unwrap_or(f64::NAN),
            c1.log_mel_l1.unwrap_or(f64::NAN),
            c1.snr_db.unwrap_or(f64::NAN),
            snr_db(&z, &zf).expect("len"),
            c2.mcd_db.unwrap_or(f64::NAN),
            c2.log_mel_l1.unwrap_or(f64::NAN),
            c2.snr_db.unwrap_or(f64::NAN),
        );
    }
}

/// Which rounding the flow's and decoder's error comes from under `hifi`, by the emulation
/// (validated against the device by the stage test): all roundings, weights exact, TF32
/// truncation of Float32 matmul inputs off, both off (only bias/output/glue roundings left).
/// Diagnostic: prints SNR against cpu (flow 24 frames, decoder 6 frames of "Hello world.").
#[test]
#[ignore = "diagnostic (~1 min): cargo test -p tts-model --test tt_stages -- --ignored rounding_sources --nocapture"]
fn rounding_sources() {
    use tts_model::tt::EmulatedRounding;
    let Some((cpu, mut emu)) = backends("hifi", true) else {
        return;
    };
    let (z, _) = z_p(&cpu);
    let inter = cpu.hparams().inter;
    let (w, d) = (24, 6);
    let zw = &z[..w * inter];
    let flow_cpu = cpu.flow_reverse(zw, w, None).expect("cpu flow");
    let zc = &flow_cpu[..d * inter];
    let dec_cpu = cpu.decode(zc, d, None).expect("cpu decoder");
    for (label, weights, tf32_inputs) in [
        ("all roundings", true, true),
        ("exact weights", false, true),
        ("no TF32 truncation", true, false),
        ("neither", false, false),
    ] {
        emu.set_emulated_rounding(EmulatedRounding {
            weights,
            tf32_inputs,
        });
        let f = emu.flow_reverse(zw, w, None).expect("flow");
        let a = emu.decode(zc, d, None).expect("decoder");
        eprintln!(
            "{label}: flow {:.1} dB, decoder {:.1} dB",
            snr_db(&flow_cpu, &f).expect("len"),
            snr_db(&dec_cpu, &a).expect("len")
        );
    }
}
