//! The device duration predictor (`tts_model::tt::dp::DevDurationPredictor`, simulator) against
//! the cpu backend and an independent f64 reference on real voice input: the cpu encoder's
//! output of two golden sentences ("Hello world.", 31 ids; "The quick brown fox ...", 109 ids),
//! noise off and with a seeded noise (`noise_w` 0.8, the voice default, drawn as `Synthesizer`
//! draws it), bf16 and Float32 activations (plan `hifi`: bf16 weights, HiFi4, fp32 DEST).
//! Needs the voice: env `TTS_VOICE` or `<workspace>/voices/en_US-joe-medium.onnx`
//! (tts-model/scripts/fetch-voice.sh); skipped otherwise.
//!
//! What is asserted:
//! - Every `dp.*` conv the reverse pass uses runs on the device: the device FLOPs equal the
//!   plan's FLOPs of those layers.
//! - The f64 reference (`RefDp`, written from the VITS module definitions) agrees with the cpu
//!   backend to 1e-4 in logw (measured ~1e-5), so it is a valid independent reference.
//! - logw of the device against the f64 reference run with **bf16-rounded weights** (the
//!   weights the device holds): max <= 0.5, mean <= 0.05. These are regression bounds, ~1.5x
//!   the measured worst case, not format-derived: the measured error (max 0.36, mean ~0.02-0.03
//!   with either activation format) is dominated by the device LayerNorm, whose output error on
//!   this data is 4.7e-3 relative to its largest output with Float32 activations (`diag_ops`,
//!   ignored diagnostic; convs 7-8e-4, GELU 3e-8): its FPU steps re-read x, x - mean, the
//!   normalised and the scaled values as TF32 (truncated toward zero, 2^-10 relative, a biased
//!   error that does not average out), and the normalisation amplifies the input's share by
//!   max|x| / std (4.9 here). An f64 emulation that only truncates op outputs to TF32 stays at
//!   mean 3e-3 (bf16-rounded outputs: 8e-3); 24 LayerNorms are chained. A wrong flip order
//!   gives logw errors near 1 (checked once by removing the flip: exp(logw) off by ~2x, the
//!   durations wrong throughout "Hello world.").
//! - Integer durations `ceil(exp(logw))` against the cpu backend: reported (how many differ);
//!   every differing duration must differ by exactly one frame.

use std::path::PathBuf;
use std::sync::OnceLock;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_distr::{Distribution, StandardNormal};
use tt_kernels::ops::spline::{SplineParams, spline_inverse_reference};
use tt_safe::{Arch, DataFormat, Device};
use tts_model::cpu::{CpuBackend, CpuOptions};
use tts_model::precision::{self, Plan};
use tts_model::synth::durations;
use tts_model::tt::dp::DevDurationPredictor;
use tts_model::{Backend, Voice};

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

/// Ids of a golden sentence (tests/fixtures/goldens/<name>.json, piper-tts 1.8.0).
fn golden_ids(name: &str) -> Vec<i64> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/goldens")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&p).expect("golden json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("golden json parses");
    v["ids"]
        .as_array()
        .expect("ids array")
        .iter()
        .map(|x| x.as_i64().expect("integer id"))
        .collect()
}

/// Noise as `Synthesizer` draws it: channel-major N(0,1) * noise_w, stored time-major.
fn noise(t: usize, noise_w: f32, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut n = vec![0.0f32; 2 * t];
    if noise_w > 0.0 {
        for ch in 0..2 {
            for i in 0..t {
                let v: f32 = StandardNormal.sample(&mut rng);
                n[2 * i + ch] = v * noise_w;
            }
        }
    }
    n
}

/// Independent f64 reference of the reverse duration predictor (VITS `StochasticDurationPredictor`
/// with `reverse=True`), straight from the module definitions, with every weight passed through
/// `wq` (identity, or bf16 rounding to isolate the effect of the device's weight format) and
/// every stored activation through `aq`. The spline is tt-kernels' f64
/// `spline_inverse_reference`.
struct RefDp<'a> {
    v: &'a Voice,
    wq: fn(f32) -> f32,
    aq: fn(f64) -> f64,
}

fn bf16(v: f32) -> f32 {
    let b = v.to_bits();
    f32::from_bits(b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

impl RefDp<'_> {
    fn w(&self, name: &str) -> Vec<f64> {
        self.v
            .weights
            .get(name)
            .expect("weight")
            .to_f32()
            .into_iter()
            .map(|x| f64::from((self.wq)(x)))
            .collect()
    }

    /// Conv1d over `x [t, cin]` with weight `[cout, cin/groups, k]`, symmetric "same" padding
    /// `dil (k - 1) / 2`.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &self,
        name: &str,
        x: &[f64],
        t: usize,
        cin: usize,
        cout: usize,
        groups: usize,
        dil: usize,
    ) -> Vec<f64> {
        let w = self.w(&format!("{name}.weight"));
        let b = self.w(&format!("{name}.bias"));
        let cg = cin / groups;
        let og = cout / groups;
        let k = w.len() / (cout * cg);
        let pad = dil * (k - 1) / 2;
        let mut y = vec![0f64; t * cout];
        for i in 0..t {
            for co in 0..cout {
                let g = co / og;
                let mut acc = b[co];
                for j in 0..k {
                    let src = i as i64 + (j * dil) as i64 - pad as i64;
                    if src < 0 || src >= t as i64 {
                        continue;
                    }
                    let row = &x[src as usize * cin..];
                    for c in 0..cg {
                        acc += w[(co * cg + c) * k + j] * row[g * cg + c];
                    }
                }
                y[i * cout + co] = (self.aq)(acc);
            }
        }
        y
    }

    fn ln_gelu(&self, name: &str, x: &mut [f64], c: usize) {
        let g = self.w(&format!("{name}.gamma"));
        let b = self.w(&format!("{name}.beta"));
        for row in x.chunks_mut(c) {
            let mean = row.iter().sum::<f64>() / c as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + 1e-5).sqrt();
            for (i, v) in row.iter_mut().enumerate() {
                let n = (self.aq)((*v - mean) * inv * g[i] + b[i]);
                *v = (self.aq)(tt_kernels::ops::common::reference::gelu(n));
            }
        }
    }

    fn dds(&self, prefix: &str, x: &mut [f64], t: usize, f: usize) {
        let hp = &self.v.hparams;
        for i in 0..hp.dp_layers {
            let dil = hp.dp_kernel.pow(i as u32);
            let mut y = self.conv(&format!("{prefix}.convs_sep.{i}"), x, t, f, f, f, dil);
            self.ln_gelu(&format!("{prefix}.norms_1.{i}"), &mut y, f);
            let mut y = self.conv(&format!("{prefix}.convs_1x1.{i}"), &y, t, f, f, 1, 1);
            self.ln_gelu(&format!("{prefix}.norms_2.{i}"), &mut y, f);
            for (a, b) in x.iter_mut().zip(&y) {
                *a = (self.aq)(*a + b);
            }
        }
    }

    fn logw(&self, enc_x: &[f32], noise: &[f32]) -> Vec<f64> {
        let hp = &self.v.hparams;
        let (h, f, t) = (hp.hidden, hp.dp_filter, enc_x.len() / hp.hidden);
        let x: Vec<f64> = enc_x.iter().map(|&v| (self.aq)(f64::from(v))).collect();
        let mut hx = self.conv("dp.pre", &x, t, h, f, 1, 1);
        self.dds("dp.convs", &mut hx, t, f);
        let hc = self.conv("dp.proj", &hx, t, f, f, 1, 1);
        let mut z0: Vec<f64> = (0..t).map(|i| f64::from(noise[2 * i])).collect();
        let mut z1: Vec<f64> = (0..t).map(|i| f64::from(noise[2 * i + 1])).collect();
        let sp = SplineParams::vits(hp.dp_bins, f);
        let np = sp.num_params();
        for &fl in &hp.dp_flows {
            std::mem::swap(&mut z0, &mut z1);
            let p = format!("dp.flows.{fl}");
            let x0: Vec<f64> = z0.iter().map(|&v| (self.aq)(v)).collect();
            let mut u = self.conv(&format!("{p}.pre"), &x0, t, 1, f, 1, 1);
            for (a, b) in u.iter_mut().zip(&hc) {
                *a = (self.aq)(*a + b);
            }
            self.dds(&format!("{p}.convs"), &mut u, t, f);
            let pr = self.conv(&format!("{p}.proj"), &u, t, f, np, 1, 1);
            for i in 0..t {
                let row: Vec<f32> = pr[i * np..(i + 1) * np].iter().map(|&v| v as f32).collect();
                z1[i] = spline_inverse_reference(z1[i], &row, &sp);
            }
        }
        std::mem::swap(&mut z0, &mut z1);
        let m = self.v.weights.get("dp.flows.0.m").expect("m").to_f32();
        let e = self
            .v
            .weights
            .get("dp.flows.0.exp_neg_logs")
            .expect("exp(-logs)")
            .to_f32();
        z0.iter()
            .map(|&z| (z - f64::from(m[0])) * f64::from(e[0]))
            .collect()
    }
}

struct Outcome {
    max_err: f64,
    mean_err: f64,
    differ: usize,
    t: usize,
}

fn compare(
    label: &str,
    cpu: &CpuBackend,
    dev: &DevDurationPredictor,
    ids: &[i64],
    noise_w: f32,
    seed: u64,
) -> Outcome {
    let enc = cpu.encode(ids).expect("cpu encode");
    let t = enc.t;
    let nz = noise(t, noise_w, seed);
    let want = cpu.log_durations(&enc, &nz, None).expect("cpu logw");
    let t0 = std::time::Instant::now();
    let (got, st) = dev.log_durations(&enc, &nz).expect("device logw");
    let host_s = t0.elapsed().as_secs_f64();
    assert_eq!(got.len(), t);
    let v = voice().expect("voice");
    let exact = RefDp {
        v,
        wq: |x| x,
        aq: |x| x,
    }
    .logw(&enc.x, &nz);
    let wbf = RefDp {
        v,
        wq: bf16,
        aq: |x| x,
    }
    .logw(&enc.x, &nz);
    let maxd = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max)
    };
    let meand = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
    };
    let abf = RefDp {
        v,
        wq: bf16,
        aq: |x| f64::from(bf16(x as f32)),
    }
    .logw(&enc.x, &nz);
    let atf = RefDp {
        v,
        wq: bf16,
        aq: |x| f64::from(f32::from_bits((x as f32).to_bits() & 0xffff_e000)),
    }
    .logw(&enc.x, &nz);
    eprintln!(
        "{label}: f64 emulation vs bf16-weight ref: bf16 activations max {:.3e} mean {:.3e}; TF32 activations max {:.3e} mean {:.3e}",
        maxd(&abf, &wbf),
        meand(&abf, &wbf),
        maxd(&atf, &wbf),
        meand(&atf, &wbf)
    );
    let cpu64: Vec<f64> = want.iter().map(|&x| f64::from(x)).collect();
    let dev64: Vec<f64> = got.iter().map(|&x| f64::from(x)).collect();
    eprintln!(
        "{label}: cpu vs f64 ref max {:.2e}; bf16-weight ref vs f64 ref max {:.3e} mean {:.3e}; device vs bf16-weight ref max {:.3e} mean {:.3e}",
        maxd(&cpu64, &exact),
        maxd(&wbf, &exact),
        meand(&wbf, &exact),
        maxd(&dev64, &wbf),
        meand(&dev64, &wbf)
    );
    assert!(
        maxd(&cpu64, &exact) <= 1e-4,
        "{label}: the f64 reference disagrees with the cpu backend (max {:.3e}): reference bug",
        maxd(&cpu64, &exact)
    );
    let errs: Vec<f64> = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
        .collect();
    let cpu_max = errs.iter().copied().fold(0.0, f64::max);
    let cpu_mean = errs.iter().sum::<f64>() / t as f64;
    let max_err = maxd(&dev64, &wbf);
    let mean_err = meand(&dev64, &wbf);
    let dw = durations(&want, 1.0);
    let dg = durations(&got, 1.0);
    let mut differ = 0;
    for i in 0..t {
        if dw[i] != dg[i] {
            differ += 1;
            let w = f64::from(want[i]).exp();
            eprintln!(
                "  {label}: id {i}: duration cpu {} device {} (cpu exp(logw) {w:.4}, device {:.4})",
                dw[i],
                dg[i],
                f64::from(got[i]).exp()
            );
            assert_eq!(
                dw[i].abs_diff(dg[i]),
                1,
                "{label}: id {i} differs by more than 1"
            );
        }
    }
    let fw: u32 = dw.iter().sum();
    let fg: u32 = dg.iter().sum();
    eprintln!(
        "{label}: T {t}: logw vs cpu |err| max {cpu_max:.4e} mean {cpu_mean:.4e}, vs bf16-weight f64 ref max {max_err:.4e} mean {mean_err:.4e}; durations differing {differ}/{t}; frames cpu {fw} device {fg}; device FLOPs {:.3e}, {} launches, device {:.1} us (ESTIMATE, spline arithmetic excluded, {} spline rows); host {host_s:.1} s",
        st.device_flops,
        st.launches,
        st.device_ns as f64 / 1e3,
        st.spline_rows
    );
    assert!(st.is_estimate && st.device_ns > 0);
    Outcome {
        max_err,
        mean_err,
        differ,
        t,
    }
}

fn setup(arch: Arch, acts: DataFormat) -> Option<(CpuBackend, DevDurationPredictor, f64)> {
    let Some(v) = voice() else {
        eprintln!(
            "skipped: voice not found, run tts-model/scripts/fetch-voice.sh (or set TTS_VOICE)"
        );
        return None;
    };
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).expect("cpu backend");
    let device = Device::open_sim(arch).expect("simulator");
    let plan = Plan::preset("hifi").expect("hifi preset");
    let layers = precision::layers(v);
    let resolved = plan.resolve(&layers).expect("plan resolves");
    let dev = DevDurationPredictor::new_with_activations(&device, v, &resolved, plan.default, acts)
        .expect("device duration predictor");
    // FLOPs per id of the dp layers the reverse pass runs (pre, convs, proj and the used flows).
    let used: Vec<String> = v
        .hparams
        .dp_flows
        .iter()
        .map(|i| format!("dp.flows.{i}."))
        .collect();
    let per_id: f64 = layers
        .iter()
        .filter(|l| l.is_compute() && l.name.starts_with("dp."))
        .filter(|l| !l.name.starts_with("dp.flows.") || used.iter().any(|u| l.name.starts_with(u)))
        .map(|l| l.flops(1, 0))
        .sum();
    Some((cpu, dev, per_id))
}

fn check_flops(cpu: &CpuBackend, dev: &DevDurationPredictor, per_id: f64) {
    let ids = golden_ids("hello");
    let enc = cpu.encode(&ids).expect("encode");
    let (_, st) = dev
        .log_durations(&enc, &vec![0.0; 2 * enc.t])
        .expect("device logw");
    let want = per_id * enc.t as f64;
    assert!(
        (st.device_flops - want).abs() <= 1e-9 * want,
        "device FLOPs {} vs the plan's dp FLOPs {want}",
        st.device_flops
    );
}

/// Runs the four cases; returns their outcomes.
fn cases(acts: DataFormat) -> Option<Vec<(String, Outcome)>> {
    cases_on(
        Arch::WormholeB0,
        acts,
        &[
            ("hello", 0.0, 0),
            ("fox", 0.0, 0),
            ("hello", 0.8, 11),
            ("fox", 0.8, 12),
        ],
    )
}

fn cases_on(
    arch: Arch,
    acts: DataFormat,
    list: &[(&str, f32, u64)],
) -> Option<Vec<(String, Outcome)>> {
    let (cpu, dev, per_id) = setup(arch, acts)?;
    check_flops(&cpu, &dev, per_id);
    let mut all = Vec::new();
    for &(name, noise_w, seed) in list {
        let label = format!("{} {acts:?} {name} noise_w {noise_w}", arch.name());
        let o = compare(&label, &cpu, &dev, &golden_ids(name), noise_w, seed);
        all.push((label, o));
    }
    Some(all)
}

#[test]
fn device_duration_predictor_matches_cpu_bf16() {
    let Some(all) = cases(DataFormat::Float16_b) else {
        return;
    };
    for (label, o) in &all {
        assert!(
            o.max_err <= 0.5 && o.mean_err <= 0.05,
            "{label}: logw error against the bf16-weight reference max {} mean {} over the bound (max 0.5, mean 0.05)",
            o.max_err,
            o.mean_err
        );
        assert!(o.differ <= o.t);
    }
}

fn assert_bounds(all: &[(String, Outcome)]) {
    for (label, o) in all {
        assert!(
            o.max_err <= 0.5 && o.mean_err <= 0.05,
            "{label}: logw error against the bf16-weight reference max {} mean {} over the bound (max 0.5, mean 0.05)",
            o.max_err,
            o.mean_err
        );
    }
}

#[test]
fn device_duration_predictor_on_blackhole() {
    if let Some(all) = cases_on(Arch::Blackhole, DataFormat::Float16_b, &[("fox", 0.8, 12)]) {
        assert_bounds(&all);
    }
}

#[test]
#[ignore = "expensive (513 ids, ~1 min): cargo test -p tts-model --test tt_dp -- --ignored long_sentence"]
fn long_sentence() {
    for acts in [DataFormat::Float16_b, DataFormat::Float32] {
        if let Some(all) = cases_on(
            Arch::WormholeB0,
            acts,
            &[("long", 0.0, 0), ("long", 0.8, 5)],
        ) {
            assert_bounds(&all);
        }
    }
}

#[test]
fn device_duration_predictor_matches_cpu_fp32() {
    let Some(all) = cases(DataFormat::Float32) else {
        return;
    };
    for (label, o) in &all {
        assert!(
            o.max_err <= 0.5 && o.mean_err <= 0.05,
            "{label}: logw error against the bf16-weight reference max {} mean {} over the bound (max 0.5, mean 0.05)",
            o.max_err,
            o.mean_err
        );
    }
}

/// Per-op error of the device ops (Float32 activations, `hifi_fp32`) on real duration-predictor
/// data against f64 on the same (bf16-rounded) weights, each op fed the reference's input so
/// errors do not chain. Bounds: convs 4e-3 relative to the largest output (TF32 activations
/// 2^-10 per product summed over |x w|), GELU 1e-6, LayerNorm 2e-2 (measured 4.7e-3; TF32
/// would give ~1e-3: this is the finding the module doc reports).
#[test]
#[ignore = "diagnostic: per-op errors on real dp data; run with --ignored --nocapture"]
fn diag_ops() {
    use tt_kernels::ops::common::{Activation, DeviceTensor, Precision};
    use tt_kernels::ops::conv::{Conv1d, Conv1dParams};
    use tt_kernels::ops::eltwise::{Eltwise, UnaryOp};
    use tt_kernels::ops::norm::LayerNorm;
    let v = voice().unwrap();
    let cpu = CpuBackend::new(v, CpuOptions { threads: 1 }).unwrap();
    let enc = cpu.encode(&golden_ids("hello")).unwrap();
    let t = enc.t;
    let device = Device::open_sim(Arch::WormholeB0).unwrap();
    let prec = Precision::hifi_fp32();
    let r = RefDp {
        v,
        wq: bf16,
        aq: |x| x,
    };
    let f32v = |x: &[f64]| x.iter().map(|&a| a as f32).collect::<Vec<f32>>();
    let cmp = |name: &str, dev: &[f32], re: &[f64]| {
        let mut m = 0f64;
        let mut s = 0f64;
        for (a, b) in dev.iter().zip(re) {
            m = m.max((f64::from(*a) - b).abs());
            s = s.max(b.abs());
        }
        eprintln!(
            "DIAG {name}: max abs err {m:.3e}, max |ref| {s:.3e}, rel {:.3e}",
            m / s
        );
        m / s
    };
    let x64: Vec<f64> = enc.x.iter().map(|&a| f64::from(a)).collect();
    let conv = |name: &str, cin: usize, cout: usize, groups: usize, dil: usize| {
        let w: Vec<f32> = v.weights.get(&format!("{name}.weight")).unwrap().to_f32();
        let b: Vec<f32> = v.weights.get(&format!("{name}.bias")).unwrap().to_f32();
        let k = w.len() / (cout * cin / groups);
        let p = Conv1dParams {
            cin,
            cout,
            kernel: k,
            stride: 1,
            pad_left: dil * (k - 1) / 2,
            pad_right: dil * (k - 1) / 2,
            dilation: dil,
            groups,
        };
        Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap()
    };
    let xd = DeviceTensor::from_host(&device, t, 192, &enc.x, DataFormat::Float32).unwrap();
    let h_ref = r.conv("dp.pre", &x64, t, 192, 192, 1, 1);
    let (hd, _) = conv("dp.pre", 192, 192, 1, 1).run(&xd).unwrap();
    assert!(4e-3 >= cmp("pre", &hd.to_host().unwrap(), &h_ref));
    // feed the reference's input to each op so errors do not chain
    let h_in =
        DeviceTensor::from_host(&device, t, 192, &f32v(&h_ref), DataFormat::Float32).unwrap();
    let s_ref = r.conv("dp.convs.convs_sep.1", &h_ref, t, 192, 192, 192, 3);
    let (sd, _) = conv("dp.convs.convs_sep.1", 192, 192, 192, 3)
        .run(&h_in)
        .unwrap();
    assert!(4e-3 >= cmp("sep.1 (d3)", &sd.to_host().unwrap(), &s_ref));
    let s_in =
        DeviceTensor::from_host(&device, t, 192, &f32v(&s_ref), DataFormat::Float32).unwrap();
    let g = v.weights.get("dp.convs.norms_1.1.gamma").unwrap().to_f32();
    let b = v.weights.get("dp.convs.norms_1.1.beta").unwrap().to_f32();
    let ln = LayerNorm::new(&device, &g, &b, 1e-5, prec).unwrap();
    let ld = ln.run(&s_in).unwrap();
    // Conditioning of the mean subtraction: max over rows of max|x| / std (an input read as
    // TF32, 2^-11 relative, gives a normalised error of about 2^-11 * max|x| / std).
    let cond = s_ref
        .chunks(192)
        .map(|row| {
            let mean = row.iter().sum::<f64>() / 192.0;
            let sd = (row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 192.0).sqrt();
            row.iter().fold(0f64, |m, v| m.max(v.abs())) / sd
        })
        .fold(0f64, f64::max);
    eprintln!(
        "DIAG norms_1.1 input: max |x| / std = {cond:.1} (TF32 input -> ~{:.1e} relative)",
        cond * 2f64.powi(-11)
    );
    let mut lref = s_ref.clone();
    // LN only
    for row in lref.chunks_mut(192) {
        let mean = row.iter().sum::<f64>() / 192.0;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 192.0;
        let inv = 1.0 / (var + 1e-5).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            *v = (*v - mean) * inv * f64::from(bf16(g[i])) + f64::from(bf16(b[i]));
        }
    }
    assert!(2e-2 >= cmp("norms_1.1", &ld.to_host().unwrap(), &lref));
    let l_in = DeviceTensor::from_host(&device, t, 192, &f32v(&lref), DataFormat::Float32).unwrap();
    let gd = Eltwise::new(&device, prec)
        .unwrap()
        .unary(UnaryOp::Gelu, &l_in)
        .unwrap();
    let gref: Vec<f64> = lref
        .iter()
        .map(|&x| tt_kernels::ops::common::reference::gelu(f64::from(x as f32)))
        .collect();
    assert!(1e-6 >= cmp("gelu", &gd.to_host().unwrap(), &gref));
    let pw_ref = r.conv("dp.convs.convs_1x1.1", &gref, t, 192, 192, 1, 1);
    let g_in = DeviceTensor::from_host(&device, t, 192, &f32v(&gref), DataFormat::Float32).unwrap();
    let (pd, _) = conv("dp.convs.convs_1x1.1", 192, 192, 1, 1)
        .run(&g_in)
        .unwrap();
    assert!(4e-3 >= cmp("1x1.1", &pd.to_host().unwrap(), &pw_ref));
    let pr_ref = r.conv("dp.flows.7.proj", &gref, t, 192, 29, 1, 1);
    let (prd, _) = conv("dp.flows.7.proj", 192, 29, 1, 1).run(&g_in).unwrap();
    assert!(4e-3 >= cmp("flows.7.proj", &prd.to_host().unwrap(), &pr_ref));
}

/// Alignment on the device from the device logw: the durations equal `synth::durations` of the
/// same (downloaded) logw (the device exp is within a few fp32 ulp of libm's; a duration whose
/// `exp(logw)` lies within 1e-5 of an integer may differ by one, none did here), and the
/// expanded prior is exactly the host gather of the bf16-rounded statistics.
#[test]
fn device_alignment_matches_host_alignment() {
    let Some((cpu, dev, _)) = setup(Arch::WormholeB0, DataFormat::Float16_b) else {
        return;
    };
    let v = voice().expect("voice");
    let enc = cpu.encode(&golden_ids("fox")).expect("encode");
    let t = enc.t;
    let nz = noise(t, 0.8, 3);
    let (logw_d, mut st) = dev.log_durations_device(&enc, &nz).expect("device logw");
    let logw = logw_d.to_host().expect("download");
    let c = 2 * v.hparams.inter;
    let stats = tt_kernels::ops::common::DeviceTensor::from_host(
        dev.device(),
        t,
        c,
        &enc.stats,
        DataFormat::Float16_b,
    )
    .expect("upload stats");
    for ls in [1.0f32, 1.3] {
        let al = dev.align(&logw_d, &[&stats], ls, &mut st).expect("align");
        let want = durations(&logw, ls);
        let got = al.durations_host().expect("durations");
        for (i, (&a, &b)) in got.iter().zip(&want).enumerate() {
            let x = f64::from(logw[i]).exp() * f64::from(ls);
            let near = (x - x.round()).abs() <= 1e-5 * x.max(1.0);
            assert!(
                a == b || (near && a.abs_diff(b) == 1),
                "id {i}: device {a}, host {b}"
            );
        }
        let frames: u32 = want.iter().sum();
        assert_eq!(al.frames as u32, frames);
        let prior = al.priors[0].to_host().expect("prior");
        let mut j = 0;
        for (i, &d) in got.iter().enumerate() {
            for _ in 0..d {
                for k in 0..c {
                    assert_eq!(
                        prior[j * c + k],
                        bf16(enc.stats[i * c + k]),
                        "frame {j} ch {k}"
                    );
                }
                j += 1;
            }
        }
        eprintln!(
            "alignment (length scale {ls}): {t} ids -> {frames} frames, durations and prior exact"
        );
    }
}
