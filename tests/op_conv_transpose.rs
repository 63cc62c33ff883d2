//! conv_transpose1d (polyphase) on the simulator (Wormhole n150 grid) against the f64 reference
//! (PyTorch's scatter definition `y[i s + j - p] += x[i] W[:, :, j]`, written independently of
//! the polyphase decomposition the device uses).
//!
//! As in `op_conv.rs`, every element is checked twice: against f64 on the original f32 inputs
//! with the full derived bound (`conv_error_bound`), and against f64 on the values the device
//! holds (bf16 inputs, host-decoded weight format, bf16 bias) with the compute-only bound. The
//! number of DEST tile matmuls per output tile is `kt = ceil(k / s) x input-channel tiles`.
//! Inputs are random, never zero. The Piper upsampling layers of a 4-second utterance are
//! `#[ignore]`d: `cargo test --release --test op_conv_transpose -- --ignored --nocapture`.

use proptest::prelude::*;
use tt_kernels::ops::common::{Activation, DeviceTensor, OpError, Precision, tolerance};
use tt_kernels::ops::conv::{ConvFormats, ConvTerms, conv_error_bound_formats};
use tt_kernels::ops::conv_transpose::{ConvTranspose1d, ConvTranspose1dParams};
use tt_safe::{Arch, DataFormat, Device, RunStats};

#[path = "support/conv_common.rs"]
mod conv_common;
use conv_common::{
    Errors, References, Rng, bias_format, check_both_bounds, check_both_bounds_formats,
    piper_device, round_trip, sim, utilisation,
};

/// Weights as the device stores them: one row per (tap j, input channel ci), one column per
/// output channel (BFP blocks: 16 consecutive output channels of a row). Returns the decoded
/// values in PyTorch layout `[cin, cout, k]` and the per-weight quantisation bound e(w).
fn quantised_weights(
    p: &ConvTranspose1dParams,
    w: &[f32],
    format: DataFormat,
) -> (Vec<f32>, Vec<f64>) {
    let (cin, cout, k) = (p.cin, p.cout, p.kernel);
    let mut rows = vec![0f32; k * cin * cout];
    for ci in 0..cin {
        for co in 0..cout {
            for j in 0..k {
                rows[(j * cin + ci) * cout + co] = w[(ci * cout + co) * k + j];
            }
        }
    }
    let q = round_trip(k * cin, cout, &rows, format);
    let rel = tolerance::quant_rel(format);
    let mut wq = vec![0f32; w.len()];
    let mut e = vec![0f64; w.len()];
    for ci in 0..cin {
        for co in 0..cout {
            for j in 0..k {
                let r = (j * cin + ci) * cout;
                let i = (ci * cout + co) * k + j;
                wq[i] = q[r + co];
                let m = if format == DataFormat::Float16_b {
                    f64::from(rows[r + co].abs())
                } else {
                    let c0 = co / 16 * 16;
                    (c0..(c0 + 16).min(cout))
                        .map(|c| f64::from(rows[r + c].abs()))
                        .fold(0.0, f64::max)
                };
                e[i] = rel * m;
            }
        }
    }
    (wq, e)
}

/// Scatter-form reference with error terms: (y after activation, s_abs, wq).
fn reference(
    p: &ConvTranspose1dParams,
    x: &[f32],
    t_in: usize,
    w: &[f32],
    e_w: &[f64],
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let t_out = p.output_len(t_in).expect("output length");
    let n = t_out * p.cout;
    let (mut y, mut s, mut q) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    for i in 0..t_in {
        for j in 0..p.kernel {
            let o = (i * p.stride + j) as i64 - p.padding as i64;
            if o < 0 || o >= t_out as i64 {
                continue;
            }
            let o = o as usize;
            for ci in 0..p.cin {
                let a = f64::from(x[i * p.cin + ci]);
                for co in 0..p.cout {
                    let wi = (ci * p.cout + co) * p.kernel + j;
                    let prod = a * f64::from(w[wi]);
                    y[o * p.cout + co] += prod;
                    s[o * p.cout + co] += prod.abs();
                    q[o * p.cout + co] += a.abs() * e_w[wi];
                }
            }
        }
    }
    for o in 0..t_out {
        for co in 0..p.cout {
            let i = o * p.cout + co;
            y[i] = act.apply(y[i] + bias.map_or(0.0, |b| f64::from(b[co])));
        }
    }
    (y, s, q)
}

#[allow(clippy::too_many_arguments)]
fn check(
    device: &Device,
    p: ConvTranspose1dParams,
    t_in: usize,
    precision: Precision,
    act: Activation,
    with_bias: bool,
    seed: u64,
    what: &str,
) -> (Errors, RunStats) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cin * p.cout * p.kernel);
    let b = rng.vec(p.cout);
    let bias = with_bias.then_some(b.as_slice());
    let op = ConvTranspose1d::new(device, p, &w, bias, precision, act)
        .unwrap_or_else(|e| panic!("{what}: ConvTranspose1d::new: {e}"));
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, DataFormat::Float16_b)
        .unwrap_or_else(|e| panic!("{what}: upload: {e}"));
    let (out, stats) = op.run(&xin).unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let t_out = p.output_len(t_in).expect("t_out");
    assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
    let got = out.to_host().expect("download");

    let kt = p.kernel.div_ceil(p.stride) * p.cin.div_ceil(32);
    let (wq_vals, e_w) = quantised_weights(&p, &w, precision.weights);
    let zeros = vec![0f64; e_w.len()];
    let (y, s, q) = reference(&p, &x, t_in, &w, &e_w, bias, act);
    let xq = round_trip(t_in, p.cin, &x, DataFormat::Float16_b);
    let bq = round_trip(1, p.cout, &b, DataFormat::Float16_b);
    let (yq, sq, _) = reference(
        &p,
        &xq,
        t_in,
        &wq_vals,
        &zeros,
        with_bias.then_some(bq.as_slice()),
        act,
    );
    let refs = References {
        y: &y,
        s: &s,
        q: &q,
        yq: &yq,
        sq: &sq,
    };
    let bias_pair = with_bias.then_some((b.as_slice(), bq.as_slice()));
    let e = check_both_bounds(&got, p.cout, kt, &precision, act, bias_pair, &refs, what);
    (e, stats)
}

/// [`check`] with an `input` format (bf16 or Float32), the output in `precision.activations`,
/// against `conv_error_bound_formats` (see `float32_conv_transposes`).
#[allow(clippy::too_many_arguments)]
fn check_fmt(
    device: &Device,
    p: ConvTranspose1dParams,
    t_in: usize,
    precision: Precision,
    input: DataFormat,
    act: Activation,
    with_bias: bool,
    seed: u64,
    what: &str,
) -> Errors {
    let mut rng = Rng::new(seed);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cin * p.cout * p.kernel);
    let b = rng.vec(p.cout);
    let bias = with_bias.then_some(b.as_slice());
    let op = ConvTranspose1d::new(device, p, &w, bias, precision, act)
        .unwrap_or_else(|e| panic!("{what}: ConvTranspose1d::new: {e}"));
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, input)
        .unwrap_or_else(|e| panic!("{what}: upload: {e}"));
    let (out, _) = op.run(&xin).unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let t_out = p.output_len(t_in).expect("t_out");
    assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
    assert_eq!(out.format(), precision.activations, "{what}: output format");
    let got = out.to_host().expect("download");

    let kt = p.kernel.div_ceil(p.stride) * p.cin.div_ceil(32);
    let (wq_vals, e_w) = quantised_weights(&p, &w, precision.weights);
    let zeros = vec![0f64; e_w.len()];
    let (y, s, q) = reference(&p, &x, t_in, &w, &e_w, bias, act);
    let xq = round_trip(t_in, p.cin, &x, input);
    let bq = round_trip(1, p.cout, &b, bias_format(&precision));
    let (yq, sq, _) = reference(
        &p,
        &xq,
        t_in,
        &wq_vals,
        &zeros,
        with_bias.then_some(bq.as_slice()),
        act,
    );
    let refs = References {
        y: &y,
        s: &s,
        q: &q,
        yq: &yq,
        sq: &sq,
    };
    let formats = ConvFormats {
        input,
        output: precision.activations,
        residual: DataFormat::Float16_b,
    };
    let bias_pair = with_bias.then_some((b.as_slice(), bq.as_slice()));
    check_both_bounds_formats(
        &got, p.cout, kt, &precision, act, &formats, bias_pair, &refs, what,
    )
}

/// Float32 activations (`Precision::hifi_fp32`) on every shape of the suite (strides 2-8,
/// padding, output padding, bias, fused activations, odd lengths; the writer interleaves the
/// phases with Float32 row copies), plus Float32 in / bf16 out and bf16 in / Float32 out.
/// Bound: `conv_error_bound_formats` as in `op_conv.rs` `float32_convs` (TF32 input truncation
/// `2^-10` per activation, bf16 weight quantisation, exact HiFi4 products, fp32 DEST, bias first
/// in DEST, Float32 packing exact / bf16 packing `2^-8 |y|`).
#[test]
fn float32_conv_transposes() {
    let device = sim();
    let fp32 = Precision::hifi_fp32();
    for (i, (name, p, t, act, bias)) in suite().into_iter().enumerate() {
        let what = format!("{name} [Float32 in/out]");
        let e = check_fmt(
            &device,
            p,
            t,
            fp32,
            DataFormat::Float32,
            act,
            bias,
            400 + i as u64,
            &what,
        );
        eprintln!(
            "{what}: max {:.3e} (worst error/bound {:.2})",
            e.max, e.worst_ratio
        );
    }
    let (name, p, t, act, bias) = suite().swap_remove(1);
    check_fmt(
        &device,
        p,
        t,
        Precision::hifi(),
        DataFormat::Float32,
        act,
        bias,
        410,
        &format!("{name} [Float32 in, bf16 out]"),
    );
    check_fmt(
        &device,
        p,
        t,
        fp32,
        DataFormat::Float16_b,
        act,
        bias,
        411,
        &format!("{name} [bf16 in, Float32 out]"),
    );
}

fn params(
    cin: usize,
    cout: usize,
    k: usize,
    s: usize,
    pad: usize,
    out_pad: usize,
) -> ConvTranspose1dParams {
    ConvTranspose1dParams {
        cin,
        cout,
        kernel: k,
        stride: s,
        padding: pad,
        output_padding: out_pad,
    }
}

fn suite() -> Vec<(&'static str, ConvTranspose1dParams, usize, Activation, bool)> {
    vec![
        (
            "HiFi-GAN k16 s8 p4 64->32",
            params(64, 32, 16, 8, 4, 0),
            20,
            Activation::None,
            true,
        ),
        (
            "HiFi-GAN k8 s4 p2 40->50 leaky0.1",
            params(40, 50, 8, 4, 2, 0),
            23,
            Activation::LeakyRelu(0.1),
            true,
        ),
        (
            "HiFi-GAN k4 s2 p1 33->16",
            params(33, 16, 4, 2, 1, 0),
            37,
            Activation::None,
            false,
        ),
        (
            "k5 s3 p2 output_padding 2 20->10 tanh",
            params(20, 10, 5, 3, 2, 2),
            17,
            Activation::Tanh,
            true,
        ),
        (
            "stride above kernel k2 s3 p0 8->40",
            params(8, 40, 2, 3, 0, 1),
            30,
            Activation::None,
            true,
        ),
    ]
}

#[test]
fn conv_transpose1d_every_precision_matches_reference() {
    let device = sim();
    for (pname, precision) in Precision::presets() {
        for (i, (name, p, t, act, bias)) in suite().into_iter().enumerate() {
            let what = format!("{name} [{pname}]");
            let (e, _) = check(&device, p, t, precision, act, bias, 200 + i as u64, &what);
            eprintln!(
                "{what}: max {:.3e} mean {:.3e} (worst error/bound {:.2})",
                e.max, e.mean, e.worst_ratio
            );
        }
    }
}

/// The same kernels on the Blackhole p150 grid (11x10, 64-byte DRAM alignment).
#[test]
fn conv_transpose1d_on_blackhole() {
    let device = Device::open_sim(Arch::Blackhole)
        .unwrap_or_else(|e| panic!("cannot open the Blackhole simulator: {e}"));
    let p = params(40, 50, 16, 8, 4, 0);
    check(
        &device,
        p,
        30,
        Precision::bfp8_hifi2(),
        Activation::None,
        true,
        41,
        "Blackhole k16 s8 p4 40->50 [bfp8_b/HiFi2]",
    );
}

#[test]
fn conv_transpose1d_errors_name_the_problem() {
    let device = sim();
    let w = vec![0.5f32; 4 * 4 * 4];
    let e = ConvTranspose1d::new(
        &device,
        params(4, 4, 4, 2, 1, 2),
        &w,
        None,
        Precision::hifi(),
        Activation::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("output_padding"), "{e}");
    let e = ConvTranspose1d::new(
        &device,
        params(4, 4, 5, 2, 1, 0),
        &w,
        None,
        Precision::hifi(),
        Activation::None,
    )
    .unwrap_err();
    assert!(matches!(e, OpError::ShapeMismatch { .. }), "{e}");
    // Padding that eats the whole output.
    let op = ConvTranspose1d::new(
        &device,
        params(4, 4, 4, 1, 3, 0),
        &w,
        None,
        Precision::hifi(),
        Activation::None,
    )
    .unwrap();
    let x = DeviceTensor::from_host(&device, 1, 4, &[0.5; 4], DataFormat::Float16_b).unwrap();
    let e = op.run(&x).unwrap_err();
    assert!(e.to_string().contains("gives no output"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn conv_transpose1d_small_shapes(
        cin in 1usize..40,
        cout in 1usize..40,
        k in 1usize..10,
        s in 1usize..6,
        pad_frac in 0usize..4,
        out_pad_frac in 0usize..4,
        t in 1usize..30,
        seed in 0u64..1000,
    ) {
        let device = sim();
        let pad = pad_frac * (k - 1) / 3; // below k, as in practice
        let out_pad = out_pad_frac * (s - 1) / 3;
        let p = params(cin, cout, k, s, pad, out_pad);
        prop_assume!(p.output_len(t).is_some());
        check(&device, p, t, Precision::hifi(), Activation::None, seed % 2 == 0, seed,
              &format!("proptest {p:?} T {t}"));
    }
}

/// Piper (en_US medium) upsampling layers for a 4-second utterance (345 frames), every
/// precision; prints max/mean error and the simulator's device-time estimate.
#[test]
#[ignore = "expensive: cargo test --release --test op_conv_transpose -- --ignored"]
fn piper_decoder_upsampling() {
    let device = piper_device();
    let layers = [
        (
            "ups.0 256->128 k16 s8 p4 (T 345)",
            params(256, 128, 16, 8, 4, 0),
            345,
        ),
        (
            "ups.1 128->64 k16 s8 p4 (T 2760)",
            params(128, 64, 16, 8, 4, 0),
            2760,
        ),
        (
            "ups.2 64->32 k8 s4 p2 (T 22080)",
            params(64, 32, 8, 4, 2, 0),
            22080,
        ),
    ];
    for (name, p, t) in layers {
        for (pname, precision) in Precision::presets() {
            let started = std::time::Instant::now();
            let (e, stats) = check(&device, p, t, precision, Activation::None, true, 12, name);
            eprintln!(
                "| {name} | {} | {pname} | {:.3e} | {:.3e} | {:.3e} | {:.2} | {:.1} | {:.1}% | (host {:.1}s)",
                device.arch().name(),
                e.max,
                e.mean,
                e.ref_max,
                e.worst_ratio,
                stats.device_ns.map_or(f64::NAN, |ns| ns as f64 / 1000.0),
                100.0
                    * utilisation(
                        &device,
                        &precision,
                        2.0 * (t * p.cin * p.cout * p.kernel) as f64,
                        &stats
                    ),
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// Split operands (`weights_lo`, `activations_lo`, both; `hifi_fp32` otherwise) on the polyphase
/// conv-transpose: HiFi-GAN-like strides 4 and 8 with Cin / Cout not multiples of 32, odd T,
/// bias and tanh. Every element is checked against f64 on the ORIGINAL f32 inputs and weights
/// with `conv_error_bound_formats` (the split's terms derived from the precision: `2^-20`
/// activation and `2^-16` weight error, `P` x the tile matmuls), and the same op without the
/// split runs on the same data. With `weights_lo` the unsplit error's main part, the bf16
/// weight rounding (2^-9 relative, RNE), is gone, so its max error is asserted at least 2x
/// below the unsplit one; what stays is the MVMUL alignment (about 2^-12 of each group of 8
/// products' largest, see `op_conv.rs` `split_operands_reach_the_fpu_floor`).
/// `activations_lo` alone changes little here (the weights' bf16 error dominates) and is
/// checked against the bound only.
#[test]
fn split_operand_conv_transposes() {
    let device = sim();
    let f = Precision::hifi_fp32();
    let precisions = [
        (
            "weights_lo",
            Precision {
                weights_lo: true,
                ..f
            },
        ),
        (
            "activations_lo",
            Precision {
                activations_lo: true,
                isolate_products: false,
                guard_dest_quirk: false,
                ..f
            },
        ),
        (
            "weights_lo+activations_lo",
            Precision {
                weights_lo: true,
                activations_lo: true,
                isolate_products: false,
                guard_dest_quirk: false,
                ..f
            },
        ),
    ];
    let cases = [
        (
            "70->50 k8 s4 p2 T 45 tanh",
            params(70, 50, 8, 4, 2, 0),
            45,
            Activation::Tanh,
        ),
        (
            "40->30 k16 s8 p4 T 21",
            params(40, 30, 16, 8, 4, 0),
            21,
            Activation::None,
        ),
    ];
    for (i, (name, p, t_in, act)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(700 + i as u64);
        let x = rng.vec(t_in * p.cin);
        let w = rng.vec(p.cin * p.cout * p.kernel);
        let b = rng.vec(p.cout);
        let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
        let kt = p.kernel.div_ceil(p.stride) * p.cin.div_ceil(32);
        let formats = ConvFormats::uniform(DataFormat::Float32);
        let run = |prec: Precision| -> f64 {
            let what = format!("{name} [{prec:?}]");
            let op = ConvTranspose1d::new(&device, p, &w, Some(&b), prec, act)
                .unwrap_or_else(|e| panic!("{what}: new: {e}"));
            let (out, _) = op.run(&xin).unwrap_or_else(|e| panic!("{what}: run: {e}"));
            let got = out.to_host().unwrap();
            let rel = tolerance::weight_rel(&prec);
            let e_w: Vec<f64> = w.iter().map(|&v| rel * f64::from(v.abs())).collect();
            let (y, s, q) = reference(&p, &x, t_in, &w, &e_w, Some(&b), act);
            assert_eq!(got.len(), y.len(), "{what}: output length");
            let mut max = 0f64;
            for i in 0..y.len() {
                let terms = ConvTerms {
                    kt,
                    s_abs: s[i],
                    wq: q[i],
                    bias: Some(f64::from(b[i % p.cout])),
                    residual: None,
                    y_post_abs: y[i].abs(),
                    y_abs: y[i].abs(),
                    inputs_quantised: false,
                };
                let bound =
                    conv_error_bound_formats(&prec, Activation::None, act, &terms, &formats);
                let err = (f64::from(got[i]) - y[i]).abs();
                assert!(
                    err <= bound,
                    "{what}: y[{}, {}] = {}, f64 {} (|err| {err:e} > bound {bound:e})",
                    i / p.cout,
                    i % p.cout,
                    got[i],
                    y[i]
                );
                max = max.max(err);
            }
            max
        };
        let unsplit = run(f);
        for (pname, prec) in precisions {
            let split = run(prec);
            eprintln!(
                "{name} [{pname}]: max |err| split {split:.3e}, unsplit {unsplit:.3e} (ratio {:.1})",
                unsplit / split
            );
            if prec.weights_lo {
                assert!(
                    split * 2.0 < unsplit,
                    "{name} [{pname}]: split {split:.3e} not 2x below unsplit {unsplit:.3e}"
                );
            }
        }
    }
}

/// Piper's first upsampler (dec.ups.0: 256->128, k 16, s 8, p 4) with all three precision
/// flags (`weights_lo`, `activations_lo`, `isolate_products`): 8 phases x 2 taps x 8 input
/// tiles x 10 Float32 parts per block do not fit L1 in one launch, so the op runs as
/// input-channel chunks whose Float32 partial sums are added by exact fp32 eltwise launches,
/// then the output activation (a leaky ReLU here) runs on the sum. Random Float32 input (T 13,
/// 104 output rows), bias; reference f64 on the original f32 values. Bound per element:
/// `2^-15 sum|a w|` (the isolated split: bf16 weight pair `2^-16 |w|`, dropped `a_lo w_lo`
/// `2^-18`, fp32 accumulation) plus `2^-20 (|y| + |b| + sum|a w|)` for the fp32 adds of the
/// chunk sums and the activation's rounding. The same op with both flags but no isolation
/// (also chunked now) sits on the MVMUL alignment floor; the isolated error must be at least
/// 30x below it (measured 73x on this data).
#[test]
fn piper_first_upsampler_all_flags_runs_chunked() {
    let device = sim();
    let p = params(256, 128, 16, 8, 4, 0);
    let t_in = 13;
    let mut rng = Rng::new(4242);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cin * p.cout * p.kernel);
    let b = rng.vec(p.cout);
    let act = Activation::LeakyRelu(0.1);
    let (yc, s) =
        tt_kernels::ops::conv_transpose::conv_transpose1d_reference(&p, &x, t_in, &w, Some(&b));
    let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let all = Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: true,
        guard_dest_quirk: false,
        ..Precision::hifi_fp32()
    };
    let mut errs = Vec::new();
    for prec in [
        all,
        Precision {
            isolate_products: false,
            guard_dest_quirk: false,
            ..all
        },
    ] {
        let op = ConvTranspose1d::new(&device, p, &w, Some(&b), prec, act).unwrap();
        assert!(op.chunks() > 1, "dec.ups.0 was expected to need chunks");
        let (out, st) = op.run(&xin).unwrap();
        assert_eq!(out.shape(), [p.output_len(t_in).unwrap(), p.cout]);
        let got = out.to_host().unwrap();
        let mut max = 0f64;
        for (i, &g) in got.iter().enumerate() {
            let y = act.apply(yc[i]);
            let e = (f64::from(g) - y).abs();
            if prec.isolate_products {
                let bound = 2f64.powi(-15) * s[i]
                    + 2f64.powi(-20) * (y.abs() + f64::from(b[i % p.cout]).abs() + s[i]);
                assert!(
                    e <= bound,
                    "y[{i}] = {g}, f64 {y}: |err| {e:.3e} > {bound:.3e}"
                );
            }
            max = max.max(e);
        }
        eprintln!(
            "dec.ups.0 T {t_in} isolate {}: {} chunks, max |err| {max:.3e}, {st}",
            prec.isolate_products,
            op.chunks()
        );
        errs.push(max);
    }
    eprintln!(
        "dec.ups.0: both flags / all three = {:.0}x",
        errs[1] / errs[0]
    );
    assert!(
        errs[0] * 30.0 <= errs[1],
        "isolated {:.3e} not 30x below the two-flag floor {:.3e}",
        errs[0],
        errs[1]
    );
}

/// Device time (simulator ESTIMATE) and max error of Piper's upsamplers (Float32 in / out,
/// bias) with both split flags, with and without `isolate_products`. Prints one line per
/// shape; asserts only that the isolated op is the more accurate one.
#[test]
#[ignore = "expensive: cargo test -p tt-kernels --test op_conv_transpose piper_upsamplers_isolated -- --ignored --nocapture"]
fn piper_upsamplers_isolated() {
    let device = conv_common::piper_device();
    let all = Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: true,
        guard_dest_quirk: false,
        ..Precision::hifi_fp32()
    };
    for (name, p, t_in) in [
        (
            "ups.0 256->128 k16 s8 (T 345)",
            params(256, 128, 16, 8, 4, 0),
            345,
        ),
        (
            "ups.1 128->64 k16 s8 (T 2760)",
            params(128, 64, 16, 8, 4, 0),
            2760,
        ),
        (
            "ups.2 64->32 k8 s4 (T 5000 of 22080)",
            params(64, 32, 8, 4, 2, 0),
            5000,
        ),
    ] {
        let mut rng = Rng::new(9);
        let x = rng.vec(t_in * p.cin);
        let w = rng.vec(p.cin * p.cout * p.kernel);
        let b = rng.vec(p.cout);
        let (y, _) =
            tt_kernels::ops::conv_transpose::conv_transpose1d_reference(&p, &x, t_in, &w, Some(&b));
        let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
        let mut res = Vec::new();
        for prec in [
            Precision {
                isolate_products: false,
                guard_dest_quirk: false,
                ..all
            },
            all,
        ] {
            let op =
                ConvTranspose1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
            let (out, st) = op.run(&xin).unwrap();
            let got = out.to_host().unwrap();
            let max = got
                .iter()
                .zip(&y)
                .map(|(&g, &r)| (f64::from(g) - r).abs())
                .fold(0f64, f64::max);
            let us = st.device_ns.map_or(f64::NAN, |n| n as f64 / 1000.0);
            res.push((max, us));
            println!(
                "{name}: isolate {} ({} chunks): max |err| {max:.3e}, device {us:.1} us",
                prec.isolate_products,
                op.chunks()
            );
        }
        println!(
            "{name}: isolated / both: error {:.3}, device time {:.2}",
            res[1].0 / res[0].0,
            res[1].1 / res[0].1
        );
        assert!(res[1].0 < res[0].0, "{name}: isolation did not help");
    }
}

/// `Precision::guard_dest_quirk` on a conv-transpose whose shape is not tile multiples (70->50,
/// k 8, s 4, p 2, T 13), bias, output leaky ReLU, Float32 in / out, against f64 on the original
/// values: every element within the isolated bound of `piper_first_upsampler_all_flags_runs_chunked`
/// (`2^-15 sum|a w| + 2^-20 (|y| + |b| + sum|a w|)`; the guard returns, per element, the max of
/// two computations that each meet it, and the max's fp32 rounding is exact when they agree
/// within a factor 2). Also compares the device time with the unguarded isolated op.
#[test]
fn guarded_conv_transpose_matches_the_bound() {
    let device = sim();
    let p = params(70, 50, 8, 4, 2, 0);
    let t_in = 13;
    let mut rng = Rng::new(808);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cin * p.cout * p.kernel);
    let b = rng.vec(p.cout);
    let act = Activation::LeakyRelu(0.1);
    let (yc, s) =
        tt_kernels::ops::conv_transpose::conv_transpose1d_reference(&p, &x, t_in, &w, Some(&b));
    let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let iso = Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: true,
        guard_dest_quirk: false,
        ..Precision::hifi_fp32()
    };
    for prec in [
        Precision {
            guard_dest_quirk: true,
            ..iso
        },
        iso,
    ] {
        let op = ConvTranspose1d::new(&device, p, &w, Some(&b), prec, act).unwrap();
        let (out, st) = op.run(&xin).unwrap();
        assert_eq!(out.shape(), [p.output_len(t_in).unwrap(), p.cout]);
        assert_eq!(out.format(), DataFormat::Float32);
        let got = out.to_host().unwrap();
        let mut worst = 0f64;
        for (i, &g) in got.iter().enumerate() {
            let y = act.apply(yc[i]);
            let e = (f64::from(g) - y).abs();
            let bound = 2f64.powi(-15) * s[i]
                + 2f64.powi(-20) * (y.abs() + f64::from(b[i % p.cout]).abs() + s[i]);
            assert!(
                e <= bound,
                "guard {}: y[{i}] = {g}, f64 {y}: |err| {e:.3e} > {bound:.3e}",
                prec.guard_dest_quirk
            );
            worst = worst.max(e / bound);
        }
        eprintln!(
            "conv_transpose 70->50 k8 s4 T {t_in} guard {}: worst err/bound {worst:.3}, {st}",
            prec.guard_dest_quirk
        );
    }
}
