//! conv1d on the simulator (Wormhole n150 grid) against the f64 reference.
//!
//! Every case runs two checks per output element:
//! 1. against f64 on the **original f32 inputs** with the full derived bound
//!    ([`conv_error_bound`]: input/weight quantisation + fidelity + DEST rounding + bias add +
//!    activation + bf16 packing), the accuracy a user gets;
//! 2. against f64 on the **values the device holds** (inputs rounded to bf16, weights encoded to
//!    their format and decoded by the host codec, bias rounded to bf16) with the compute-only
//!    bound (`inputs_quantised = true`, `wq = 0`). This one is tight enough that a wrong tap,
//!    shift, padding row or channel group fails it under every precision.
//!
//! The bound's terms per element (`s_abs`, `wq`, the number of DEST tile matmuls `kt = taps x
//! input tiles read`) come from the reference loop below. Inputs are random and never zero
//! (magnitudes in [0.1, 1), random signs).
//!
//! Float32 activations (`float32_*` tests) use the same two checks with
//! `conv_error_bound_formats` (TF32 input truncation 2^-10 instead of bf16 rounding, exact
//! Float32 bias and output); `float32_conv_is_more_accurate_than_bf16` compares the two paths
//! on the same data.
//!
//! The Piper decoder shapes of a 4-second utterance (345 frames) are `#[ignore]`d (expensive):
//! `cargo test --release --test op_conv -- --ignored --nocapture` prints max/mean errors.

use proptest::prelude::*;
use tt_kernels::ops::common::{Activation, DeviceTensor, OpError, Precision, tolerance};
use tt_kernels::ops::conv::{
    Conv1d, Conv1dParams, ConvFormats, ConvTerms, conv_error_bound, conv_error_bound_formats,
    conv_error_bound_fused,
};
use tt_safe::{Arch, DataFormat, Device, RunStats};

#[path = "support/conv_common.rs"]
mod conv_common;
use conv_common::{
    Errors, References, Rng, bias_format, check_both_bounds, check_both_bounds_formats,
    piper_device, round_trip, sim, utilisation,
};

/// The weight matrix as the device stores it, one row per (tap j, input channel ci), one column
/// per output channel, zero where a group does not connect: BFP blocks are 16 consecutive output
/// channels of one such row. Returns (dense, torch-layout values decoded from `format`).
fn dense_rows(p: &Conv1dParams, w: &[f32], format: DataFormat) -> (Vec<f32>, Vec<f32>) {
    let (cin_g, cout_g, k) = (p.cin / p.groups, p.cout / p.groups, p.kernel);
    let mut dense = vec![0f32; k * p.cin * p.cout];
    for co in 0..p.cout {
        let g = co / cout_g;
        for ci in 0..cin_g {
            for j in 0..k {
                dense[(j * p.cin + g * cin_g + ci) * p.cout + co] = w[(co * cin_g + ci) * k + j];
            }
        }
    }
    let q = round_trip(k * p.cin, p.cout, &dense, format);
    let mut wq = vec![0f32; w.len()];
    for co in 0..p.cout {
        let g = co / cout_g;
        for ci in 0..cin_g {
            for j in 0..k {
                wq[(co * cin_g + ci) * k + j] = q[(j * p.cin + g * cin_g + ci) * p.cout + co];
            }
        }
    }
    (dense, wq)
}

/// Per-weight quantisation bound e(w) in torch layout (see [`conv_error_bound`]).
fn weight_quant_err(p: &Conv1dParams, dense: &[f32], format: DataFormat) -> Vec<f64> {
    weight_err_rel(p, dense, format, tolerance::quant_rel(format))
}

/// [`weight_quant_err`] with the relative error `rel` (of the weight, or of its BFP block max).
fn weight_err_rel(p: &Conv1dParams, dense: &[f32], format: DataFormat, rel: f64) -> Vec<f64> {
    let (cin_g, cout_g, k) = (p.cin / p.groups, p.cout / p.groups, p.kernel);
    let mut e = vec![0f64; p.cout * cin_g * k];
    for co in 0..p.cout {
        let g = co / cout_g;
        for ci in 0..cin_g {
            for j in 0..k {
                let row = (j * p.cin + g * cin_g + ci) * p.cout;
                let m = if format == DataFormat::Float16_b {
                    f64::from(dense[row + co].abs())
                } else {
                    let c0 = co / 16 * 16;
                    (c0..(c0 + 16).min(p.cout))
                        .map(|c| f64::from(dense[row + c].abs()))
                        .fold(0.0, f64::max)
                };
                e[(co * cin_g + ci) * k + j] = rel * m;
            }
        }
    }
    e
}

/// Reference with error terms: (y after activation, s_abs, wq) per element, [t_out, cout].
fn reference(
    p: &Conv1dParams,
    x: &[f32],
    t_in: usize,
    w: &[f32],
    e_w: &[f64],
    bias: Option<&[f32]>,
    act: Activation,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let t_out = p.output_len(t_in).expect("output length");
    let (cin_g, cout_g) = (p.cin / p.groups, p.cout / p.groups);
    let n = t_out * p.cout;
    let (mut y, mut s, mut q) = (vec![0f64; n], vec![0f64; n], vec![0f64; n]);
    for t in 0..t_out {
        for co in 0..p.cout {
            let g = co / cout_g;
            let mut acc = bias.map_or(0.0, |b| f64::from(b[co]));
            let (mut sa, mut qa) = (0.0, 0.0);
            for j in 0..p.kernel {
                let pos = (t * p.stride + j * p.dilation) as i64 - p.pad_left as i64;
                if pos < 0 || pos >= t_in as i64 {
                    continue;
                }
                for ci in 0..cin_g {
                    let a = f64::from(x[pos as usize * p.cin + g * cin_g + ci]);
                    let wi = (co * cin_g + ci) * p.kernel + j;
                    acc += a * f64::from(w[wi]);
                    sa += (a * f64::from(w[wi])).abs();
                    qa += a.abs() * e_w[wi];
                }
            }
            let i = t * p.cout + co;
            y[i] = act.apply(acc);
            s[i] = sa;
            q[i] = qa;
        }
    }
    (y, s, q)
}

/// DEST tile matmuls per output tile: taps x input-channel tiles the output tile's groups read.
fn kt_of(p: &Conv1dParams) -> usize {
    let (cin_g, cout_g) = (p.cin / p.groups, p.cout / p.groups);
    (0..p.cout.div_ceil(32))
        .map(|n| {
            let lo = (n * 32 / cout_g) * cin_g;
            let hi = ((((n + 1) * 32).min(p.cout) - 1) / cout_g + 1) * cin_g;
            p.kernel * (hi.div_ceil(32) - lo / 32)
        })
        .max()
        .unwrap_or(1)
}

/// Runs one conv and checks both bounds; returns the errors against the original inputs.
#[allow(clippy::too_many_arguments)]
fn check(
    device: &Device,
    p: Conv1dParams,
    t_in: usize,
    precision: Precision,
    act: Activation,
    with_bias: bool,
    seed: u64,
    what: &str,
) -> (Errors, RunStats) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * (p.cin / p.groups) * p.kernel);
    let b = rng.vec(p.cout);
    let bias = with_bias.then_some(b.as_slice());

    let conv = Conv1d::new(device, p, &w, bias, precision, act)
        .unwrap_or_else(|e| panic!("{what}: Conv1d::new: {e}"));
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, DataFormat::Float16_b)
        .unwrap_or_else(|e| panic!("{what}: upload: {e}"));
    let (out, stats) = conv
        .run(&xin)
        .unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let t_out = p.output_len(t_in).expect("t_out");
    assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
    let got = out.to_host().expect("download");

    let kt = kt_of(&p);
    let (dense, wq_vals) = dense_rows(&p, &w, precision.weights);
    let e_w = weight_quant_err(&p, &dense, precision.weights);
    let zeros = vec![0f64; e_w.len()];
    // 1. Original inputs, full bound.
    let (y, s, q) = reference(&p, &x, t_in, &w, &e_w, bias, act);
    // 2. Device-held inputs, compute-only bound.
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

/// [`check`] with an `input` format (bf16 or Float32) and the output in
/// `precision.activations`, against `conv_error_bound_formats` (see `float32_convs`).
#[allow(clippy::too_many_arguments)]
fn check_fmt(
    device: &Device,
    p: Conv1dParams,
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
    let w = rng.vec(p.cout * (p.cin / p.groups) * p.kernel);
    let b = rng.vec(p.cout);
    let bias = with_bias.then_some(b.as_slice());
    let conv = Conv1d::new(device, p, &w, bias, precision, act)
        .unwrap_or_else(|e| panic!("{what}: Conv1d::new: {e}"));
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, input)
        .unwrap_or_else(|e| panic!("{what}: upload: {e}"));
    let (out, _) = conv
        .run(&xin)
        .unwrap_or_else(|e| panic!("{what}: run: {e}"));
    let t_out = p.output_len(t_in).expect("t_out");
    assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
    assert_eq!(out.format(), precision.activations, "{what}: output format");
    let got = out.to_host().expect("download");

    let (dense, wq_vals) = dense_rows(&p, &w, precision.weights);
    let e_w = weight_quant_err(&p, &dense, precision.weights);
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
        &got,
        p.cout,
        kt_of(&p),
        &precision,
        act,
        &formats,
        bias_pair,
        &refs,
        what,
    )
}

fn params(
    cin: usize,
    cout: usize,
    k: usize,
    stride: usize,
    pad: (usize, usize),
    dilation: usize,
    groups: usize,
) -> Conv1dParams {
    Conv1dParams {
        cin,
        cout,
        kernel: k,
        stride,
        pad_left: pad.0,
        pad_right: pad.1,
        dilation,
        groups,
    }
}

/// The shapes every precision runs: tile-aligned and not, stride, asymmetric padding, dilation,
/// depthwise and grouped, with and without bias, fused activations.
fn suite() -> Vec<(&'static str, Conv1dParams, usize, Activation, bool)> {
    vec![
        (
            "aligned 64->32 k3 p1",
            params(64, 32, 3, 1, (1, 1), 1, 1),
            64,
            Activation::None,
            true,
        ),
        (
            "40->50 k5 s2 pad(3,1) d2 leaky0.1",
            params(40, 50, 5, 2, (3, 1), 2, 1),
            70,
            Activation::LeakyRelu(0.1),
            true,
        ),
        (
            "depthwise 48 k7 d3 pad 9 tanh",
            params(48, 48, 7, 1, (9, 9), 3, 48),
            45,
            Activation::Tanh,
            true,
        ),
        (
            "grouped 4: 64->40 k3 no bias",
            params(64, 40, 3, 1, (2, 0), 1, 4),
            33,
            Activation::None,
            false,
        ),
        (
            "20->36 k3 gelu (the accurate gelu_tile<false>)",
            params(20, 36, 3, 1, (1, 1), 1, 1),
            37,
            Activation::Gelu,
            true,
        ),
    ]
}

#[test]
fn conv1d_every_precision_matches_reference() {
    let device = sim();
    for (pname, precision) in Precision::presets() {
        for (i, (name, p, t, act, bias)) in suite().into_iter().enumerate() {
            let what = format!("{name} [{pname}]");
            let (e, _) = check(&device, p, t, precision, act, bias, 100 + i as u64, &what);
            eprintln!(
                "{what}: max {:.3e} mean {:.3e} (worst error/bound {:.2})",
                e.max, e.mean, e.worst_ratio
            );
        }
    }
}

/// Float32 activations (`Precision::hifi_fp32`, bf16 weights, HiFi4, fp32 DEST) on every shape
/// of the suite (stride, asymmetric padding, dilation, depthwise, groups, bias, fused
/// activations, T not a multiple of 32), and the mixed cases Float32 in / bf16 out and bf16 in
/// / Float32 out. Bound (`conv_error_bound_formats`, per element): the TF32 truncation of the
/// input by the unpacker (`2^-10` relative per activation, summed over the K = taps x channels
/// products: `2^-10 (s_abs + wq)`), the bf16 weight quantisation `wq` (`2^-8 |w|` per weight),
/// exact HiFi4 products of 11 x 8 significant bits, the MVMUL alignment `16 * 2^-12 s_abs` and
/// fp32 DEST roundings `(2 * 4 * Kt + Kt) 2^-24 s_abs`, the bias loaded into DEST first (Float32:
/// `2^-24 |b|`), the activation's Lipschitz constant and SFPU allowance, and the output packing
/// (Float32: 0; bf16: `2^-8 |y|`). The second check (device-held values) drops the host
/// quantisation but keeps the TF32 truncation.
#[test]
fn float32_convs() {
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
            300 + i as u64,
            &what,
        );
        eprintln!(
            "{what}: max {:.3e} (worst error/bound {:.2})",
            e.max, e.worst_ratio
        );
    }
    // A long sequence: many 32-row time blocks per core, each with its halo re-read (the
    // time slicing that keeps L1 independent of T).
    let p = params(64, 64, 5, 1, (2, 2), 1, 1);
    let what = "64->64 k5 T 1500 [Float32 in/out]";
    let plan = Conv1d::new(
        &device,
        p,
        &vec![0.5; 64 * 64 * 5],
        None,
        fp32,
        Activation::None,
    )
    .unwrap()
    .plan(1500)
    .unwrap();
    assert!(plan.time_blocks > plan.time_groups, "{what}: {plan:?}");
    check_fmt(
        &device,
        p,
        1500,
        fp32,
        DataFormat::Float32,
        Activation::None,
        true,
        312,
        what,
    );
    let (name, p, t, act, bias) = suite().swap_remove(1);
    let what = format!("{name} [Float32 in, bf16 out]");
    check_fmt(
        &device,
        p,
        t,
        Precision::hifi(),
        DataFormat::Float32,
        act,
        bias,
        310,
        &what,
    );
    let what = format!("{name} [bf16 in, Float32 out]");
    check_fmt(
        &device,
        p,
        t,
        fp32,
        DataFormat::Float16_b,
        act,
        bias,
        311,
        &what,
    );
}

/// The point of Float32 activations: on the same data (one dense and one dilated Piper-like
/// conv, inputs with full f32 mantissas), the Float32 conv's largest error against f64 is at
/// least 4x smaller than the bf16 conv's. Derivation: bf16 rounds every input (RNE, up to
/// `2^-9` relative) and the output (`2^-9 |y|`), Float32 only truncates the input to TF32 (up
/// to `2^-10`, on average a quarter of the bf16 input error per term) and packs unrounded, so
/// the expected ratio is about 4-8 on random data; the bf16 weights' error is common to both and
/// is removed by giving both runs weights that bf16 holds exactly.
#[test]
fn float32_conv_is_more_accurate_than_bf16() {
    let device = sim();
    for (name, p, t_in) in [
        ("192->192 k5 p2", params(192, 192, 5, 1, (2, 2), 1, 1), 70),
        ("96->96 k7 d3 p9", params(96, 96, 7, 1, (9, 9), 3, 1), 45),
    ] {
        let mut rng = Rng::new(77);
        let x = rng.vec(t_in * p.cin);
        // Weights exactly representable in bf16, so both runs use the same weights.
        let w = round_trip(
            1,
            p.cout * p.cin * p.kernel,
            &rng.vec(p.cout * p.cin * p.kernel),
            DataFormat::Float16_b,
        );
        let b = round_trip(1, p.cout, &rng.vec(p.cout), DataFormat::Float16_b);
        let (y, _) = tt_kernels::ops::conv::conv1d_reference(&p, &x, t_in, &w, Some(&b));
        let mut max_err = [0f64; 2];
        for (k, (precision, fmt)) in [
            (Precision::hifi(), DataFormat::Float16_b),
            (Precision::hifi_fp32(), DataFormat::Float32),
        ]
        .into_iter()
        .enumerate()
        {
            let conv = Conv1d::new(&device, p, &w, Some(&b), precision, Activation::None).unwrap();
            let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, fmt).unwrap();
            let got = conv.run(&xin).unwrap().0.to_host().unwrap();
            max_err[k] = got
                .iter()
                .zip(&y)
                .map(|(&g, &r)| (f64::from(g) - r).abs())
                .fold(0.0, f64::max);
        }
        eprintln!(
            "{name}: max |err| bf16 {:.3e}, Float32 {:.3e} (ratio {:.1})",
            max_err[0],
            max_err[1],
            max_err[0] / max_err[1]
        );
        assert!(
            max_err[1] * 4.0 < max_err[0],
            "{name}: Float32 conv error {:.3e} is not 4x below bf16's {:.3e}",
            max_err[1],
            max_err[0]
        );
    }
}

/// Every Piper (en_US medium) decoder and flow conv / conv-transpose shape plans within L1 with
/// Float32 activations (in0, window and output tiles are twice the bf16 size). Plans only.
#[test]
fn float32_piper_shapes_fit_l1() {
    use tt_kernels::ops::conv_transpose::{ConvTranspose1d, ConvTranspose1dParams};
    let device = sim();
    let fp32 = Precision::hifi_fp32();
    let mut convs = vec![
        (params(192, 256, 7, 1, (3, 3), 1, 1), 345),
        (params(192, 384, 5, 1, (2, 2), 1, 1), 345),
        (params(32, 1, 7, 1, (3, 3), 1, 1), 88_320),
    ];
    for (c, t) in [(128usize, 2760usize), (64, 22_080), (32, 88_320)] {
        for (k, d) in [(3usize, 1usize), (3, 2), (5, 2), (5, 6), (7, 3), (7, 12)] {
            let pad = (k * d - d) / 2;
            convs.push((params(c, c, k, 1, (pad, pad), d, 1), t));
        }
    }
    for (p, t) in convs {
        let w = vec![0.25f32; p.cout * p.cin / p.groups * p.kernel];
        let conv = Conv1d::new(&device, p, &w, None, fp32, Activation::None).unwrap();
        let plan = conv
            .plan(t)
            .unwrap_or_else(|e| panic!("{p:?} T {t} with Float32: {e}"));
        assert!(plan.l1_bytes <= plan.l1_budget, "{p:?}: {plan:?}");
    }
    for (cin, cout, k, s, pad, t) in [
        (256, 128, 16, 8, 4, 345),
        (128, 64, 16, 8, 4, 2760),
        (64, 32, 8, 4, 2, 22_080),
    ] {
        let p = ConvTranspose1dParams {
            cin,
            cout,
            kernel: k,
            stride: s,
            padding: pad,
            output_padding: 0,
        };
        let w = vec![0.25f32; cin * cout * k];
        let op = ConvTranspose1d::new(&device, p, &w, None, fp32, Activation::None).unwrap();
        op.plan(t)
            .unwrap_or_else(|e| panic!("{p:?} T {t} with Float32: {e}"));
    }
}

/// Piper's flow WaveNet in_layer and conv_pre (T = 345) with Float32 activations next to the
/// bf16 preset: prints docs/ops.md rows (max / mean error vs f64 on the f32 inputs, device time
/// estimate). Bounds as in `float32_convs`.
#[test]
#[ignore = "expensive: cargo test -p tt-kernels --test op_conv piper_float32 -- --ignored --nocapture"]
fn piper_float32_convs() {
    let device = piper_device();
    for (name, p) in [
        (
            "flow WN in_layer 192->384 k5 (T 345)",
            params(192, 384, 5, 1, (2, 2), 1, 1),
        ),
        (
            "conv_pre 192->256 k7 (T 345)",
            params(192, 256, 7, 1, (3, 3), 1, 1),
        ),
    ] {
        for (pname, precision, fmt) in [
            (
                "bf16/HiFi4/fp32acc",
                Precision::hifi(),
                DataFormat::Float16_b,
            ),
            (
                "Float32/HiFi4 (hifi_fp32)",
                Precision::hifi_fp32(),
                DataFormat::Float32,
            ),
        ] {
            let mut rng = Rng::new(11);
            let x = rng.vec(345 * p.cin);
            let w = rng.vec(p.cout * p.cin * p.kernel);
            let b = rng.vec(p.cout);
            let conv = Conv1d::new(&device, p, &w, Some(&b), precision, Activation::None).unwrap();
            let xin = DeviceTensor::from_host(&device, 345, p.cin, &x, fmt).unwrap();
            let (out, stats) = conv.run(&xin).unwrap();
            let got = out.to_host().unwrap();
            let (y, _) = tt_kernels::ops::conv::conv1d_reference(&p, &x, 345, &w, Some(&b));
            let errs: Vec<f64> = got
                .iter()
                .zip(&y)
                .map(|(&g, &r)| (f64::from(g) - r).abs())
                .collect();
            let max = errs.iter().fold(0f64, |a, &e| a.max(e));
            let mean = errs.iter().sum::<f64>() / errs.len() as f64;
            let ref_max = y.iter().fold(0f64, |a, &v| a.max(v.abs()));
            check_fmt(
                &device,
                p,
                345,
                precision,
                fmt,
                Activation::None,
                true,
                11,
                name,
            );
            println!(
                "| {name} | {} | {pname} | {max:.3e} | {mean:.3e} | {ref_max:.3e} | {} |",
                device.arch().name(),
                stats
                    .device_ns
                    .map_or("-".to_string(), |ns| format!("{:.1}", ns as f64 / 1000.0))
            );
        }
    }
}

/// Float32 fused layer: `residual + leaky(conv(leaky(x)) + b)` with a Float32 input, residual
/// and output (the input activation runs on fp32 DEST values unpacked straight to DEST, the
/// residual is added on the SFPU in fp32), and with a bf16 residual. Bound:
/// `conv_error_bound_formats` with the input activation's fp32 rounding, the residual's host
/// quantisation and one fp32 addition.
#[test]
fn float32_fused_input_activation_and_residual() {
    let device = sim();
    let fp32 = Precision::hifi_fp32();
    let p = params(48, 40, 3, 1, (2, 2), 2, 1);
    let t_in = 50;
    let t_out = p.output_len(t_in).unwrap();
    let (pre, act) = (Activation::LeakyRelu(0.1), Activation::LeakyRelu(0.2));
    let mut rng = Rng::new(99);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * p.cin * p.kernel);
    let b = rng.vec(p.cout);
    let r = rng.vec(t_out * p.cout);
    let conv = Conv1d::new(&device, p, &w, Some(&b), fp32, act)
        .unwrap()
        .with_input_activation(pre)
        .unwrap();
    let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let (dense, _) = dense_rows(&p, &w, fp32.weights);
    let e_w = weight_quant_err(&p, &dense, fp32.weights);
    let xa: Vec<f32> = x.iter().map(|&v| pre.apply(f64::from(v)) as f32).collect();
    let (ypost, s, q) = reference(&p, &xa, t_in, &w, &e_w, Some(&b), act);
    for res_fmt in [DataFormat::Float32, DataFormat::Float16_b] {
        let rin = DeviceTensor::from_host(&device, t_out, p.cout, &r, res_fmt).unwrap();
        let (out, _) = conv.run_with_residual(&xin, &rin).unwrap();
        assert_eq!(out.format(), DataFormat::Float32);
        let got = out.to_host().unwrap();
        let formats = ConvFormats {
            input: DataFormat::Float32,
            output: DataFormat::Float32,
            residual: res_fmt,
        };
        for i in 0..got.len() {
            let want = ypost[i] + f64::from(r[i]);
            let terms = ConvTerms {
                kt: kt_of(&p),
                s_abs: s[i],
                wq: q[i],
                bias: Some(f64::from(b[i % p.cout])),
                residual: Some(f64::from(r[i])),
                y_post_abs: ypost[i].abs(),
                y_abs: want.abs(),
                inputs_quantised: false,
            };
            // The reference rounds leaky(x) to f32 once: 2^-24 relative, inside the bound's
            // fp32 rounding of the input activation.
            let bound = conv_error_bound_formats(&fp32, pre, act, &terms, &formats);
            let err = (f64::from(got[i]) - want).abs();
            assert!(
                err <= bound,
                "residual {res_fmt:?}: y[{i}] = {}, want {want} (|err| {err:e} > {bound:e})",
                got[i]
            );
        }
    }
}

/// A fused layer `residual + post(conv(pre(x)) + bias)`; with `residual_is_input` the residual is
/// the input tensor itself (a HiFi-GAN ResBlock2 layer `x + conv(leaky(x))`).
#[allow(clippy::too_many_arguments)]
fn check_fused(
    device: &Device,
    p: Conv1dParams,
    t_in: usize,
    precision: Precision,
    pre: Activation,
    post: Activation,
    residual_is_input: bool,
    seed: u64,
    what: &str,
) -> Errors {
    let mut rng = Rng::new(seed);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * (p.cin / p.groups) * p.kernel);
    let b = rng.vec(p.cout);
    let t_out = p.output_len(t_in).expect("t_out");
    let r = if residual_is_input {
        assert_eq!(
            (t_out, p.cout),
            (t_in, p.cin),
            "{what}: residual = input needs equal shapes"
        );
        x.clone()
    } else {
        rng.vec(t_out * p.cout)
    };
    let conv = Conv1d::new(device, p, &w, Some(&b), precision, post)
        .and_then(|c| c.with_input_activation(pre))
        .unwrap_or_else(|e| panic!("{what}: Conv1d::new: {e}"));
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, DataFormat::Float16_b).unwrap();
    let rin = if residual_is_input {
        None
    } else {
        Some(DeviceTensor::from_host(device, t_out, p.cout, &r, DataFormat::Float16_b).unwrap())
    };
    let (out, _) = conv
        .run_with_residual(&xin, rin.as_ref().unwrap_or(&xin))
        .unwrap_or_else(|e| panic!("{what}: run: {e}"));
    assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
    let got = out.to_host().unwrap();

    let kt = kt_of(&p);
    let (dense, wq_vals) = dense_rows(&p, &w, precision.weights);
    let e_w = weight_quant_err(&p, &dense, precision.weights);
    let zeros = vec![0f64; e_w.len()];
    let pre_f32 =
        |v: &[f32]| -> Vec<f32> { v.iter().map(|&a| pre.apply(f64::from(a)) as f32).collect() };
    let (y, s, q) = reference(&p, &pre_f32(&x), t_in, &w, &e_w, Some(&b), post);
    let xq = round_trip(t_in, p.cin, &x, DataFormat::Float16_b);
    let bq = round_trip(1, p.cout, &b, DataFormat::Float16_b);
    let rq = round_trip(t_out, p.cout, &r, DataFormat::Float16_b);
    let (yq, sq, _) = reference(&p, &pre_f32(&xq), t_in, &wq_vals, &zeros, Some(&bq), post);
    let mut e = Errors::default();
    for i in 0..y.len() {
        let g = f64::from(got[i]);
        let c = i % p.cout;
        let full = y[i] + f64::from(r[i]);
        let bound = conv_error_bound_fused(
            &precision,
            pre,
            post,
            &ConvTerms {
                kt,
                s_abs: s[i],
                wq: q[i],
                bias: Some(f64::from(b[c])),
                residual: Some(f64::from(r[i])),
                y_post_abs: y[i].abs(),
                y_abs: full.abs(),
                inputs_quantised: false,
            },
        );
        let err = (g - full).abs();
        assert!(
            err <= bound,
            "{what}: element {i}: device {g}, f64 {full} (|err| {err:e} > bound {bound:e})"
        );
        let full_q = yq[i] + f64::from(rq[i]);
        let bound_q = conv_error_bound_fused(
            &precision,
            pre,
            post,
            &ConvTerms {
                kt,
                s_abs: sq[i],
                wq: 0.0,
                bias: Some(f64::from(bq[c])),
                residual: Some(f64::from(rq[i])),
                y_post_abs: yq[i].abs(),
                y_abs: full_q.abs(),
                inputs_quantised: true,
            },
        );
        let err_q = (g - full_q).abs();
        assert!(
            err_q <= bound_q,
            "{what}: element {i}: device {g}, f64 on device inputs {full_q} (|err| {err_q:e} > compute bound {bound_q:e})"
        );
        e.max = e.max.max(err);
        e.mean += err;
        e.worst_ratio = e.worst_ratio.max(err / bound);
        e.ref_max = e.ref_max.max(full.abs());
    }
    e.mean /= y.len() as f64;
    e
}

/// HiFi-GAN ResBlock2 layer fused into one op, `x + conv_{k5,d2}(leaky_relu(x, 0.1)) + b`, and a
/// general `r + tanh(conv(relu(x)) + b)` with a separate residual, under every precision.
#[test]
fn conv1d_fused_input_activation_and_residual() {
    let device = sim();
    for (pname, precision) in Precision::presets() {
        let p = params(40, 40, 5, 1, (4, 4), 2, 1);
        let what = format!("resblock layer 40 k5 d2 [{pname}]");
        let e = check_fused(
            &device,
            p,
            70,
            precision,
            Activation::LeakyRelu(0.1),
            Activation::None,
            true,
            300,
            &what,
        );
        eprintln!("{what}: {e:?}");
        let p = params(33, 50, 3, 2, (1, 2), 1, 1);
        let what = format!("relu -> conv s2 -> tanh + residual [{pname}]");
        let e = check_fused(
            &device,
            p,
            45,
            precision,
            Activation::Relu,
            Activation::Tanh,
            false,
            301,
            &what,
        );
        eprintln!("{what}: {e:?}");
    }
    // Only ReLU-like input activations fuse; a wrong residual shape is named.
    let w = Rng::new(3).vec(8 * 8 * 3);
    let e = Conv1d::new(
        &device,
        params(8, 8, 3, 1, (1, 1), 1, 1),
        &w,
        None,
        Precision::hifi(),
        Activation::None,
    )
    .unwrap()
    .with_input_activation(Activation::Gelu)
    .unwrap_err();
    assert!(e.to_string().contains("input activation"), "{e}");
    let conv = Conv1d::new(
        &device,
        params(8, 8, 3, 1, (1, 1), 1, 1),
        &w,
        None,
        Precision::hifi(),
        Activation::None,
    )
    .unwrap();
    let x = DeviceTensor::from_host(&device, 40, 8, &[0.5; 320], DataFormat::Float16_b).unwrap();
    let r = DeviceTensor::from_host(&device, 39, 8, &[0.5; 312], DataFormat::Float16_b).unwrap();
    let e = conv.run_with_residual(&x, &r).unwrap_err();
    assert!(e.to_string().contains("residual"), "{e}");
}

/// The same kernels on the Blackhole p150 grid (11x10, 64-byte DRAM alignment): one strided,
/// dilated, unaligned case under bf16/HiFi4 and bfp8_b/LoFi.
#[test]
fn conv1d_on_blackhole() {
    let device = Device::open_sim(Arch::Blackhole)
        .unwrap_or_else(|e| panic!("cannot open the Blackhole simulator: {e}"));
    for (pname, precision) in [
        ("bf16/HiFi4/fp32acc", Precision::hifi()),
        ("bfp8_b/LoFi", Precision::bfp8_lofi()),
    ] {
        let p = params(40, 70, 5, 2, (3, 1), 2, 1);
        let what = format!("Blackhole 40->70 k5 s2 d2 [{pname}]");
        check(
            &device,
            p,
            150,
            precision,
            Activation::LeakyRelu(0.1),
            true,
            31,
            &what,
        );
    }
}

/// A sequence whose [T, C] input (24,000 x 32 bf16 = 1.5 MB) and output exceed one core's L1
/// (1.36 MB usable on Wormhole): the plan slices it into 750 time blocks with halos over the
/// grid, and each core's L1 use stays far below the budget.
#[test]
fn conv1d_longer_than_l1_is_sliced() {
    let device = sim();
    let p = params(32, 32, 7, 1, (36, 36), 12, 1);
    let t = 24_000;
    let conv = Conv1d::new(
        &device,
        p,
        &Rng::new(1).vec(32 * 32 * 7),
        None,
        Precision::hifi(),
        Activation::None,
    )
    .expect("conv");
    let plan = conv.plan(t).expect("plan");
    let input_bytes = (t * 32 * 2) as u64;
    assert!(
        input_bytes > device.info().l1_user_bytes(),
        "not a >L1 case"
    );
    assert!(
        plan.time_blocks >= 750 && plan.l1_bytes < plan.l1_budget / 4,
        "{plan:?}"
    );
    let e = check(
        &device,
        p,
        t,
        Precision::hifi(),
        Activation::LeakyRelu(0.1),
        true,
        5,
        "T 24000 32->32 k7 d12",
    );
    eprintln!("long sequence: {e:?}");
}

/// 100k samples through a HiFi-GAN last-stage conv (32 channels, k7 dilation 12).
#[test]
#[ignore = "expensive: cargo test --release --test op_conv -- --ignored"]
fn conv1d_100k_samples() {
    let device = sim();
    let p = params(32, 32, 7, 1, (36, 36), 12, 1);
    let e = check(
        &device,
        p,
        100_000,
        Precision::hifi(),
        Activation::LeakyRelu(0.1),
        true,
        6,
        "T 100000 32->32 k7 d12",
    );
    eprintln!("100k samples: {e:?}");
}

/// The compute-only check can fail: the device output of a conv compared with the reference of
/// the same conv shifted by one input row (pad_left + 1) breaks the bound for most elements at
/// bf16/HiFi4 and for a good share even under the loosest precision (bfp4_b/LoFi with a bf16
/// DEST, whose worst-case rounding term dominates).
#[test]
fn the_bound_detects_a_one_row_shift() {
    let device = sim();
    for (precision, min_share) in [(Precision::hifi(), 0.9), (Precision::bfp4_lofi(), 0.1)] {
        let p = params(40, 50, 5, 1, (2, 2), 2, 1);
        let t = 50;
        let mut rng = Rng::new(77);
        let x = rng.vec(t * p.cin);
        let w = rng.vec(p.cout * p.cin * p.kernel);
        let conv = Conv1d::new(&device, p, &w, None, precision, Activation::None).unwrap();
        let xin = DeviceTensor::from_host(&device, t, p.cin, &x, DataFormat::Float16_b).unwrap();
        let got = conv.run(&xin).unwrap().0.to_host().unwrap();
        let (_, wq) = dense_rows(&p, &w, precision.weights);
        let xq = round_trip(t, p.cin, &x, DataFormat::Float16_b);
        let zeros = vec![0f64; wq.len()];
        let mut shifted = p;
        shifted.pad_left += 1;
        shifted.pad_right -= 1;
        let (y, s, _) = reference(&shifted, &xq, t, &wq, &zeros, None, Activation::None);
        let violations = (0..y.len())
            .filter(|&i| {
                let bound = conv_error_bound(
                    &precision,
                    Activation::None,
                    kt_of(&p),
                    s[i],
                    0.0,
                    None,
                    y[i].abs(),
                    true,
                );
                (f64::from(got[i]) - y[i]).abs() > bound
            })
            .count();
        eprintln!("{precision:?}: {violations} of {} flagged", y.len());
        assert!(
            violations as f64 > min_share * y.len() as f64,
            "{precision:?}: only {violations} of {} elements flagged",
            y.len()
        );
    }
}

#[test]
fn conv1d_errors_name_the_problem() {
    let device = sim();
    let w = Rng::new(2).vec(8 * 4 * 3);
    // Bad groups.
    let mut p = params(8, 8, 3, 1, (1, 1), 1, 3);
    let e = Conv1d::new(&device, p, &w, None, Precision::hifi(), Activation::None).unwrap_err();
    assert!(e.to_string().contains("groups 3"), "{e}");
    // Wrong weight size.
    p.groups = 1;
    let e = Conv1d::new(&device, p, &w, None, Precision::hifi(), Activation::None).unwrap_err();
    assert!(matches!(e, OpError::ShapeMismatch { .. }), "{e}");
    // Input shorter than the kernel.
    let p = params(8, 8, 3, 1, (0, 0), 4, 2);
    let conv = Conv1d::new(&device, p, &w, None, Precision::hifi(), Activation::None).unwrap();
    let x = DeviceTensor::from_host(&device, 5, 8, &[0.5; 40], DataFormat::Float16_b).unwrap();
    let e = conv.run(&x).unwrap_err();
    assert!(
        e.to_string().contains("shorter than the dilated kernel"),
        "{e}"
    );
    // bfp8 activations are refused with what to do.
    let x = DeviceTensor::from_host(&device, 40, 8, &[0.5; 320], DataFormat::Bfp8_b).unwrap();
    let e = conv.run(&x).unwrap_err();
    assert!(e.to_string().contains("Float16_b"), "{e}");
    // Float32 needs an fp32 DEST: as the input and as the output format.
    let w8 = Rng::new(3).vec(8 * 4 * 3);
    let p8 = params(8, 8, 3, 1, (1, 1), 1, 2);
    let no_acc = Precision::bfp8_hifi2();
    let conv = Conv1d::new(&device, p8, &w8, None, no_acc, Activation::None).unwrap();
    let x = DeviceTensor::from_host(&device, 40, 8, &[0.5; 320], DataFormat::Float32).unwrap();
    let e = conv.run(&x).unwrap_err();
    assert!(
        matches!(e, OpError::FormatUnsupported { .. }) && e.to_string().contains("fp32_acc"),
        "{e}"
    );
    let e = Conv1d::new(
        &device,
        p8,
        &w8,
        None,
        no_acc.with_activations(DataFormat::Float32),
        Activation::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("fp32_acc"), "{e}");
    let e = Conv1d::new(
        &device,
        p8,
        &w8,
        None,
        Precision::hifi().with_activations(DataFormat::Bfp8_b),
        Activation::None,
    )
    .unwrap_err();
    assert!(matches!(e, OpError::FormatUnsupported { .. }), "{e}");
    // Split operands: weights_lo needs bf16 weights, and the conv's split needs fp32_acc.
    let e = Conv1d::new(
        &device,
        p8,
        &w8,
        None,
        Precision {
            weights_lo: true,
            ..Precision::bfp8_hifi2()
        },
        Activation::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("weights_lo"), "{e}");
    let e = Conv1d::new(
        &device,
        p8,
        &w8,
        None,
        Precision {
            weights_lo: true,
            fp32_acc: false,
            ..Precision::hifi()
        },
        Activation::None,
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("fp32_acc"),
        "{e}"
    );
    // Weights that cannot fit L1 for even one output tile: the limit is named.
    let p = params(4096, 32, 15, 1, (7, 7), 1, 1);
    let w = vec![0.25f32; 32 * 4096 * 15];
    let conv = Conv1d::new(&device, p, &w, None, Precision::hifi(), Activation::None).unwrap();
    let e = conv.plan(100).unwrap_err();
    assert!(
        matches!(e, OpError::ShapeUnsupported { .. }) && e.to_string().contains("L1"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn conv1d_small_shapes(
        cin in 1usize..40,
        cout in 1usize..40,
        k in 1usize..6,
        stride in 1usize..4,
        pl in 0usize..4,
        pr in 0usize..4,
        dil in 1usize..4,
        extra in 0usize..40,
        depthwise in any::<bool>(),
        seed in 0u64..1000,
    ) {
        let device = sim();
        let (cout, groups) = if depthwise { (cin, cin) } else { (cout, 1) };
        let p = params(cin, cout, k, stride, (pl, pr), dil, groups);
        // Shortest input that gives an output, plus `extra`.
        let t = (dil * (k - 1) + 1).saturating_sub(pl + pr).max(1) + extra;
        check(&device, p, t, Precision::hifi(), Activation::None, seed % 2 == 0, seed,
              &format!("proptest {p:?} T {t}"));
    }
}

/// The Piper (en_US medium) decoder convolutions of a 4-second utterance (345 frames), each
/// under every precision; prints max/mean error and the simulator's device-time estimate.
/// By default conv_pre, conv_post and two ResBlock2 convs (stage 1 k3 d1, stage 3 k7 d12) run;
/// `PIPER_ALL=1` runs all 18 ResBlock2 convs. The flow's WaveNet `in_layers` (k5, 192->384,
/// "same" padding 2, dilation 1 in the medium voice's flow WN, on the 345 frames) always run.
/// `PIPER_ONLY=<substring>` keeps only the shapes whose name contains it.
#[test]
#[ignore = "expensive: cargo test --release --test op_conv -- --ignored"]
fn piper_decoder_convs() {
    let device = piper_device();
    let frames = 345;
    // (name, params, T_in)
    let mut shapes = vec![(
        "conv_pre 192->256 k7".to_string(),
        params(192, 256, 7, 1, (3, 3), 1, 1),
        frames,
    )];
    shapes.push((
        "flow WN in_layer 192->384 k5 d1 (T 345)".to_string(),
        params(192, 384, 5, 1, (2, 2), 1, 1),
        frames,
    ));
    for (stage, (c, t)) in [
        (128usize, frames * 8),
        (64, frames * 64),
        (32, frames * 256),
    ]
    .into_iter()
    .enumerate()
    {
        for (k, dils) in [(3usize, [1usize, 2]), (5, [2, 6]), (7, [3, 12])] {
            for d in dils {
                if std::env::var("PIPER_ALL").is_err()
                    && !(stage == 2 && k == 7 && d == 12)
                    && !(stage == 0 && k == 3 && d == 1)
                {
                    continue;
                }
                let pad = (k * d - d) / 2;
                shapes.push((
                    format!("resblock{} {c}->{c} k{k} d{d} (T {t})", stage + 1),
                    params(c, c, k, 1, (pad, pad), d, 1),
                    t,
                ));
            }
        }
    }
    shapes.push((
        "conv_post 32->1 k7 (T 88320)".into(),
        params(32, 1, 7, 1, (3, 3), 1, 1),
        frames * 256,
    ));
    let only = std::env::var("PIPER_ONLY").ok();
    for (name, p, t) in shapes {
        if only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        for (pname, precision) in Precision::presets() {
            let started = std::time::Instant::now();
            let (e, stats) = check(
                &device,
                p,
                t,
                precision,
                Activation::None,
                name.starts_with("conv_pre") || name.starts_with("res") || name.starts_with("flow"),
                11,
                &name,
            );
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
                        2.0 * (p.output_len(t).unwrap_or(0)
                            * p.cout
                            * (p.cin / p.groups)
                            * p.kernel) as f64,
                        &stats
                    ),
                started.elapsed().as_secs_f64()
            );
        }
    }
}

/// One split-operand conv (`weights_lo` / `activations_lo` in `precision`) with an `input`
/// (Float32 or bf16) tensor, an optional input activation, bias, output activation and Float32 residual, checked
/// per element against f64 on the ORIGINAL f32 inputs and weights (the reference never sees the
/// split parts) with `conv_error_bound_formats` (which derives the split's terms from the
/// precision: `2^-20` activation and `2^-16` weight error, `P` x the tile matmuls). The same conv
/// without the split (flags cleared, same input) runs on the same data; returns the max errors
/// `(split, unsplit)` and the run statistics of both.
#[allow(clippy::too_many_arguments)]
fn check_split(
    device: &Device,
    p: Conv1dParams,
    t_in: usize,
    precision: Precision,
    input: DataFormat,
    pre: Activation,
    act: Activation,
    residual: bool,
    seed: u64,
    what: &str,
) -> ((f64, f64), (RunStats, RunStats)) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * (p.cin / p.groups) * p.kernel);
    let b = rng.vec(p.cout);
    let t_out = p.output_len(t_in).expect("t_out");
    let r = rng.vec(t_out * p.cout);
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, input).unwrap();
    let rin = DeviceTensor::from_host(device, t_out, p.cout, &r, DataFormat::Float32).unwrap();
    let unsplit = Precision {
        weights_lo: false,
        activations_lo: false,
        isolate_products: false,
        guard_dest_quirk: false,
        ..precision
    };
    let mut max = [0f64; 2];
    let mut stats = Vec::new();
    for (k, prec) in [precision, unsplit].into_iter().enumerate() {
        let conv = Conv1d::new(device, p, &w, Some(&b), prec, act)
            .and_then(|c| c.with_input_activation(pre))
            .unwrap_or_else(|e| panic!("{what}: Conv1d::new: {e}"));
        let (out, st) = if residual {
            conv.run_with_residual(&xin, &rin)
        } else {
            conv.run(&xin)
        }
        .unwrap_or_else(|e| panic!("{what}: run: {e}"));
        assert_eq!(out.shape(), [t_out, p.cout], "{what}: output shape");
        assert_eq!(out.format(), prec.activations, "{what}: output format");
        let got = out.to_host().unwrap();
        let (dense, _) = dense_rows(&p, &w, prec.weights);
        let e_w = weight_err_rel(&p, &dense, prec.weights, tolerance::weight_rel(&prec));
        let xa: Vec<f32> = x.iter().map(|&v| pre.apply(f64::from(v)) as f32).collect();
        let (ypost, s_abs, q) = reference(&p, &xa, t_in, &w, &e_w, Some(&b), act);
        let formats = ConvFormats {
            input,
            output: prec.activations,
            residual: DataFormat::Float32,
        };
        for i in 0..got.len() {
            let res = residual.then(|| f64::from(r[i]));
            let want = ypost[i] + res.unwrap_or(0.0);
            let terms = ConvTerms {
                kt: kt_of(&p),
                s_abs: s_abs[i],
                wq: q[i],
                bias: Some(f64::from(b[i % p.cout])),
                residual: res,
                y_post_abs: ypost[i].abs(),
                y_abs: want.abs(),
                inputs_quantised: false,
            };
            // The reference rounds pre(x) to f32 once (2^-24, inside the bound's fp32
            // rounding of the input activation).
            let bound = conv_error_bound_formats(&prec, pre, act, &terms, &formats);
            let err = (f64::from(got[i]) - want).abs();
            assert!(
                err <= bound,
                "{what} [{}]: y[{}, {}] = {}, f64 {want} (|err| {err:e} > bound {bound:e})",
                if k == 0 { "split" } else { "unsplit" },
                i / p.cout,
                i % p.cout,
                got[i]
            );
            max[k] = max[k].max(err);
        }
        stats.push(st);
    }
    ((max[0], max[1]), (stats[0], stats[1]))
}

/// The three split precisions: `hifi_fp32` with `weights_lo`, with `activations_lo`, with both.
fn split_precisions() -> [(&'static str, Precision); 3] {
    let f = Precision::hifi_fp32();
    [
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
    ]
}

/// Split operands on shapes that are not tile multiples (T 45, Cin 70, Cout 50), kernel 3/5/7,
/// stride, dilation, groups and depthwise, fused input leaky / ReLU, bias, tanh, a Float32
/// residual and a bf16 input, each flag alone and both: every element within the derived bound
/// against f64 on the original f32 weights, and the split compared with the unsplit conv on the
/// same data. With `weights_lo` (Float32 input) the unsplit error's main part, the bf16 weight
/// rounding (2^-9 relative, RNE), is gone: asserted at least 2x smaller (measured 2.8-8x). What
/// stays is the MVMUL alignment (each product of a group of 8 rounded to about 2^-12 of the
/// group's largest, unbiased; `split_operands_reach_the_fpu_floor` shows it is the floor), so a
/// larger factor is asserted only where the alignment loses nothing: depthwise, 50x (below).
/// `activations_lo` alone removes the TF32 truncation (below 2^-10), which the bf16 weight
/// error hides here; it is checked against the bound only.
#[test]
fn split_operand_convs() {
    let device = sim();
    let cases = [
        (
            "70->50 k5 d2 pad(4,4) leaky-in bias tanh T 45",
            params(70, 50, 5, 1, (4, 4), 2, 1),
            45,
            Activation::LeakyRelu(0.1),
            Activation::Tanh,
            false,
            DataFormat::Float32,
        ),
        (
            "70->50 k3 s2 pad(2,1) groups 5 T 45",
            params(70, 50, 3, 2, (2, 1), 1, 5),
            45,
            Activation::None,
            Activation::None,
            false,
            DataFormat::Float32,
        ),
        (
            "depthwise 70 k7 d3 pad 9 T 45",
            params(70, 70, 7, 1, (9, 9), 3, 70),
            45,
            Activation::None,
            Activation::None,
            false,
            DataFormat::Float32,
        ),
        (
            "resblock 70 k3 leaky-in + residual T 45",
            params(70, 70, 3, 1, (1, 1), 1, 1),
            45,
            Activation::LeakyRelu(0.1),
            Activation::None,
            true,
            DataFormat::Float32,
        ),
        (
            "bf16 input 70->50 k3 relu-in T 45",
            params(70, 50, 3, 1, (1, 1), 1, 1),
            45,
            Activation::Relu,
            Activation::None,
            false,
            DataFormat::Float16_b,
        ),
    ];
    for (i, (name, p, t, pre, act, res, input)) in cases.into_iter().enumerate() {
        for (pname, precision) in split_precisions() {
            let what = format!("{name} [{pname}]");
            let ((split, unsplit), _) = check_split(
                &device,
                p,
                t,
                precision,
                input,
                pre,
                act,
                res,
                500 + i as u64,
                &what,
            );
            eprintln!(
                "{what}: max |err| split {split:.3e}, unsplit {unsplit:.3e} (ratio {:.1})",
                unsplit / split
            );
            if precision.weights_lo
                && precision.activations_lo
                && p.groups == p.cin
                && p.groups == p.cout
            {
                // Depthwise: the weight tiles are diagonal, so each group of 8 products of an
                // MVMUL holds one non-zero product and the alignment rounds nothing. What is
                // left is 2^-16 |w| (weights), 2^-20 |a| (activations) and fp32 DEST roundings,
                // against the unsplit conv's bf16 weight rounding (up to 2^-9 |w|) and TF32
                // input truncation (up to 2^-10 |a|): about 2^7 = 128x in the worst case of
                // each; measured 630x. Asserted 50x.
                assert!(
                    split * 50.0 < unsplit,
                    "{what}: depthwise split error {split:.3e} not 50x below unsplit {unsplit:.3e}"
                );
            }
            if precision.weights_lo && input == DataFormat::Float32 {
                // The bf16 weight rounding (2^-9 relative) dominates the unsplit error (with a
                // bf16 input, the input's own rounding stays in both).
                assert!(
                    split * 2.0 < unsplit,
                    "{what}: split error {split:.3e} not 2x below unsplit {unsplit:.3e}"
                );
            }
        }
    }
}

/// What the split buys, and where it stops: on a Piper-like dense conv (192->192 k5, T 70,
/// random f32 data), the max error against f64 of
/// - the unsplit Float32 conv (`hifi_fp32`): bf16 weight rounding (RNE, up to 2^-9 relative),
///   TF32 input truncation (up to 2^-10, biased toward zero), MVMUL alignment;
/// - the same conv with `weights_lo` and `activations_lo`: weight and activation errors fall to
///   2^-16 / 2^-20, which leaves the MVMUL alignment (each product of a group of 8 rounded at
///   about 2^-12 of the group's largest product, `shared/TENSTORRENT.md` section 4) and fp32
///   DEST roundings;
/// - the FPU's floor: the unsplit conv on operands it holds exactly (the input truncated to
///   TF32, the weights rounded to bf16) against f64 on those operands: only the alignment and
///   DEST roundings remain.
///
/// Asserted: the split error is at least 3x below the unsplit one (measured 11x), and within
/// 1.5x of the floor (measured 1.01x; both are maxima of sums of the same unbiased
/// per-product roundings over K = 960 terms, so they differ only by sampling). A larger gain is
/// not available from operand splitting: the alignment error does not depend on the operands'
/// bits.
#[test]
fn split_operands_reach_the_fpu_floor() {
    let device = sim();
    let p = params(192, 192, 5, 1, (2, 2), 1, 1);
    let t_in = 70;
    let mut rng = Rng::new(1234);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * p.cin * p.kernel);
    let b = rng.vec(p.cout);
    let max_err = |prec: Precision, x: &[f32], w: &[f32]| -> (f64, RunStats) {
        let (y, _) = tt_kernels::ops::conv::conv1d_reference(&p, x, t_in, w, Some(&b));
        let conv = Conv1d::new(&device, p, w, Some(&b), prec, Activation::None).unwrap();
        let xin = DeviceTensor::from_host(&device, t_in, p.cin, x, DataFormat::Float32).unwrap();
        let (out, st) = conv.run(&xin).unwrap();
        let got = out.to_host().unwrap();
        let e = got
            .iter()
            .zip(&y)
            .map(|(&g, &r)| (f64::from(g) - r).abs())
            .fold(0.0, f64::max);
        (e, st)
    };
    let fp32 = Precision::hifi_fp32();
    let both = Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: false,
        guard_dest_quirk: false,
        ..fp32
    };
    let (unsplit, st_unsplit) = max_err(fp32, &x, &w);
    let (split, st_split) = max_err(both, &x, &w);
    let x_tf32: Vec<f32> = x.iter().map(|&v| tt_formats::tf32_truncate(v)).collect();
    let w_bf16 = round_trip(1, w.len(), &w, DataFormat::Float16_b);
    let (floor, _) = max_err(fp32, &x_tf32, &w_bf16);
    eprintln!(
        "192->192 k5 T 70: max |err| unsplit {unsplit:.3e}, split (both) {split:.3e}, FPU floor \
         {floor:.3e}; unsplit/split {:.1}, split/floor {:.2}; device time unsplit {}, split {}",
        unsplit / split,
        split / floor,
        st_unsplit,
        st_split
    );
    assert!(
        split * 3.0 < unsplit,
        "split error {split:.3e} not 3x below unsplit {unsplit:.3e}"
    );
    assert!(
        split < 1.5 * floor,
        "split error {split:.3e} above 1.5x the FPU floor {floor:.3e}"
    );
    // Each flag alone removes its own operand's error: activations_lo with weights bf16 holds
    // exactly (only the TF32 truncation is left to remove), weights_lo with an input TF32
    // holds exactly (only the bf16 weight rounding). Both then sit on the floor as well; the
    // unsplit conv on the same operands keeps the one error (measured 2.4x and 11x larger).
    for (name, prec, xs, ws) in [
        (
            "activations_lo, bf16-exact weights",
            Precision {
                activations_lo: true,
                isolate_products: false,
                guard_dest_quirk: false,
                ..fp32
            },
            &x,
            &w_bf16,
        ),
        (
            "weights_lo, TF32-exact input",
            Precision {
                weights_lo: true,
                ..fp32
            },
            &x_tf32,
            &w,
        ),
    ] {
        let (one, _) = max_err(prec, xs, ws);
        let (none, _) = max_err(fp32, xs, ws);
        eprintln!(
            "{name}: max |err| split {one:.3e}, unsplit {none:.3e} (ratio {:.1}), split/floor {:.2}",
            none / one,
            one / floor
        );
        assert!(
            one * 2.0 < none && one < 1.5 * floor,
            "{name}: split {one:.3e}, unsplit {none:.3e}, floor {floor:.3e}"
        );
    }
}

/// Which Piper (en_US medium) conv shapes plan within L1 with split operands (both flags: 3
/// Float32 in0 tiles and 3 bf16 weight tiles per original tile; the reader builds every phase,
/// tap and part of a 32-row block at once). Plans only. Every conv1d fits in one launch; of the
/// three upsamplers only the first (256->128 k16 s8) does not, and runs as input-channel chunks.
#[test]
fn split_piper_shapes_plan() {
    use tt_kernels::ops::conv_transpose::{ConvTranspose1d, ConvTranspose1dParams};
    let device = sim();
    let both = Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: false,
        guard_dest_quirk: false,
        ..Precision::hifi_fp32()
    };
    let mut convs = vec![
        ("conv_pre", params(192, 256, 7, 1, (3, 3), 1, 1), 345),
        (
            "flow WN in_layer",
            params(192, 384, 5, 1, (2, 2), 1, 1),
            345,
        ),
        ("dp conv", params(192, 256, 3, 1, (1, 1), 1, 1), 345),
        ("conv_post", params(32, 1, 7, 1, (3, 3), 1, 1), 88_320),
    ];
    for (c, t) in [(128usize, 2760usize), (64, 22_080), (32, 88_320)] {
        for (k, d) in [(3usize, 1usize), (5, 2), (7, 12)] {
            let pad = (k * d - d) / 2;
            convs.push(("resblock", params(c, c, k, 1, (pad, pad), d, 1), t));
        }
    }
    for (name, p, t) in convs {
        let w = vec![0.25f32; p.cout * p.cin / p.groups * p.kernel];
        let conv = Conv1d::new(&device, p, &w, None, both, Activation::None).unwrap();
        match conv.plan(t) {
            Ok(plan) => eprintln!("{name} {p:?}: fits, {plan:?}"),
            Err(e) => panic!("{name} {p:?} T {t} with split operands: {e}"),
        }
    }
    for (cin, cout, k, s, pad, t) in [
        (256, 128, 16, 8, 4, 345),
        (128, 64, 16, 8, 4, 2760),
        (64, 32, 8, 4, 2, 22_080),
    ] {
        let p = ConvTranspose1dParams {
            cin,
            cout,
            kernel: k,
            stride: s,
            padding: pad,
            output_padding: 0,
        };
        let w = vec![0.25f32; cin * cout * k];
        for (pname, prec) in [
            ("both", both),
            (
                "weights_lo",
                Precision {
                    activations_lo: false,
                    isolate_products: false,
                    guard_dest_quirk: false,
                    ..both
                },
            ),
        ] {
            let op = ConvTranspose1d::new(&device, p, &w, None, prec, Activation::None).unwrap();
            let plan = op
                .plan(t)
                .unwrap_or_else(|e| panic!("{p:?} [{pname}] must plan: {e}"));
            eprintln!(
                "conv_transpose {p:?} [{pname}]: {} chunk(s), {plan:?}",
                op.chunks()
            );
            // The first upsampler: 8 phases x 2 taps x 8 Cin tiles x P parts of Float32 in0
            // tiles per block (1.0 MB for P = 2, 1.5 MB for P = 3) plus the resident weights
            // exceed the 1.36 MB of L1 in one launch, so it runs as input-channel chunks.
            assert_eq!(op.chunks() > 1, cin == 256, "{p:?} [{pname}]");
        }
    }
}

/// Split operands on realistic shapes: a 192->192 k5 conv at T 300 and the Piper flow WN
/// in_layer / conv_pre at T 345, Float32 in / out, each unsplit (`hifi_fp32`), with
/// `weights_lo`, with `activations_lo`, with both and with both plus `isolate_products`
/// (input-channel chunks: the number of gather launches is printed). Prints docs/ops.md rows: max / mean error
/// against f64 on the original f32 weights and inputs, the number of outliers (error above
/// 0.5: on Wormhole an fp32 DEST accumulation that cancels to exactly -1 unit in the last place
/// is renormalised 27 binary places too high, ttsim's model of a hardware quirk; conv_pre with
/// `weights_lo` hits it once on this data, see docs/ops.md), and the device time (split launch
/// plus conv launch, simulator ESTIMATE) with its ratio to the unsplit conv.
#[test]
#[ignore = "expensive: cargo test -p tt-kernels --release --test op_conv piper_split -- --ignored --nocapture"]
fn piper_split_convs() {
    let device = piper_device();
    let fp32 = Precision::hifi_fp32();
    let variants = [
        ("unsplit (hifi_fp32)", fp32),
        (
            "weights_lo",
            Precision {
                weights_lo: true,
                ..fp32
            },
        ),
        (
            "activations_lo",
            Precision {
                activations_lo: true,
                isolate_products: false,
                guard_dest_quirk: false,
                ..fp32
            },
        ),
        (
            "both",
            Precision {
                weights_lo: true,
                activations_lo: true,
                isolate_products: false,
                guard_dest_quirk: false,
                ..fp32
            },
        ),
        (
            "both + isolate_products",
            Precision {
                weights_lo: true,
                activations_lo: true,
                isolate_products: true,
                guard_dest_quirk: false,
                ..fp32
            },
        ),
    ];
    for (name, p, t) in [
        (
            "192->192 k5 (T 300)",
            params(192, 192, 5, 1, (2, 2), 1, 1),
            300,
        ),
        (
            "flow WN in_layer 192->384 k5 (T 345)",
            params(192, 384, 5, 1, (2, 2), 1, 1),
            345,
        ),
        (
            "conv_pre 192->256 k7 (T 345)",
            params(192, 256, 7, 1, (3, 3), 1, 1),
            345,
        ),
    ] {
        let mut rng = Rng::new(11);
        let x = rng.vec(t * p.cin);
        let w = rng.vec(p.cout * p.cin * p.kernel);
        let b = rng.vec(p.cout);
        let (y, _) = tt_kernels::ops::conv::conv1d_reference(&p, &x, t, &w, Some(&b));
        let xin = DeviceTensor::from_host(&device, t, p.cin, &x, DataFormat::Float32).unwrap();
        // The split launch alone (the part of the split rows' device time that is not the conv).
        {
            use tt_kernels::ops::split::{Part, split_operand};
            for parts in [
                &[Part::Full, Part::Full][..],
                &[Part::Full, Part::Lo, Part::Full],
            ] {
                let (_, st) = split_operand(&device, &xin, Activation::None, parts).unwrap();
                println!("{name}: split_operand {parts:?}: {st}");
            }
        }
        let mut base_ns = None;
        for (pname, prec) in variants {
            let conv = Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
            let (out, stats) = conv.run(&xin).unwrap();
            let got = out.to_host().unwrap();
            let errs: Vec<f64> = got
                .iter()
                .zip(&y)
                .map(|(&g, &r)| (f64::from(g) - r).abs())
                .collect();
            let max = errs.iter().fold(0f64, |a, &e| a.max(e));
            let mean = errs.iter().sum::<f64>() / errs.len() as f64;
            let ref_max = y.iter().fold(0f64, |a, &v| a.max(v.abs()));
            let outliers = errs.iter().filter(|&&e| e > 0.5).count();
            let ns = stats.device_ns.map(|n| n as f64);
            base_ns = base_ns.or(ns);
            println!(
                "| {name} | {} | {pname} ({} launch(es)) | {max:.3e} | {mean:.3e} | {outliers} | {ref_max:.3e} | {} | {} |",
                device.arch().name(),
                conv.chunks(),
                ns.map_or("-".to_string(), |n| format!("{:.1}", n / 1000.0)),
                ns.zip(base_ns)
                    .map_or("-".to_string(), |(n, b)| format!("{:.2}", n / b))
            );
        }
    }
}

fn all_flags() -> Precision {
    Precision {
        weights_lo: true,
        activations_lo: true,
        isolate_products: true,
        guard_dest_quirk: false,
        ..Precision::hifi_fp32()
    }
}

/// `Precision::isolate_products` on a dense 192->192 k5 conv (T 70, Float32 in / out): with
/// both split flags the error sits on the MVMUL alignment floor (each product of a group of 8
/// consecutive K rounded at about 2^-12 of the group's largest product); isolating the main
/// term's products (one non-zero per group) removes that rounding, leaving the dropped
/// `a_lo w_lo` (< 2^-18 |a w|), the bf16 pair's `2^-16 |w|` and fp32 DEST accumulation. So the
/// isolated error must be far below the floor: at least 30x (measured: see the eprintln; the
/// margin is ~2.5x even at that ratio).
#[test]
fn isolated_products_pass_the_mvmul_floor() {
    let device = sim();
    let p = params(192, 192, 5, 1, (2, 2), 1, 1);
    let t_in = 70;
    let mut rng = Rng::new(1234);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * p.cin * p.kernel);
    let b = rng.vec(p.cout);
    let (y, s) = tt_kernels::ops::conv::conv1d_reference(&p, &x, t_in, &w, Some(&b));
    let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let run = |prec: Precision| -> (f64, f64, RunStats, usize) {
        let conv = Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
        let (out, st) = conv.run(&xin).unwrap();
        let got = out.to_host().unwrap();
        let (mut max, mut rel) = (0f64, 0f64);
        for ((&g, &r), &sa) in got.iter().zip(&y).zip(&s) {
            let e = (f64::from(g) - r).abs();
            max = max.max(e);
            rel = rel.max(e / sa);
        }
        (max, rel, st, conv.chunks())
    };
    let both = Precision {
        isolate_products: false,
        guard_dest_quirk: false,
        ..all_flags()
    };
    let (e_both, r_both, st_both, _) = run(both);
    let (e_iso, r_iso, st_iso, chunks) = run(all_flags());
    let (e_fp32, _, st_fp32, _) = run(Precision::hifi_fp32());
    eprintln!(
        "192->192 k5 T 70: max |err| unsplit {e_fp32:.3e}, both flags {e_both:.3e} (rel to \
         sum|a w| {r_both:.2e}), all three {e_iso:.3e} (rel {r_iso:.2e}, {chunks} chunk(s)); \
         both/isolated {:.0}x; device time unsplit {st_fp32}, both {st_both}, isolated {st_iso}",
        e_both / e_iso
    );
    assert!(
        e_iso * 30.0 <= e_both,
        "isolated error {e_iso:.3e} not 30x below the two-flag floor {e_both:.3e}"
    );
    // What is left, relative to sum |a w| of the element: the bf16 pair's 2^-16 |w| and the
    // dropped a_lo w_lo (2^-18) dominate; 2^-15 leaves room for the fp32 accumulations.
    assert!(r_iso < 2f64.powi(-15), "relative error {r_iso:.3e}");
}

/// A conv whose isolated split operands need several input-channel chunks (cin 256, cout 64,
/// k 7, T 45: 7 taps x 8 input tiles x 10 Float32 parts per block do not fit L1), with every
/// fused op: bias, input leaky ReLU, a Float32 residual and an output leaky ReLU (which the
/// chain applies as an eltwise op on the fp32 sum, then adds the residual), and the same
/// without the output activation (the residual is then fused into the first chunk). Reference:
/// f64 `r + act(conv(leaky(x)) + b)` on the original f32 values. Bound per element: the
/// isolated split's `2^-15 sum |a w|` (see `isolated_products_pass_the_mvmul_floor`), the input
/// leaky ReLU's fp32 rounding (`2^-24 |x|` per input, inside that), the fp32 chain adds
/// (`2^-24` of the partial sums, one per chunk), the output activation's one rounding and the
/// residual add (`2^-24 |y|` each): `2^-15 sum|a w| + 2^-20 (|y| + |r| + |b| + sum|a w|)`.
/// Also with `guard_dest_quirk` (output leaky ReLU): the max of the two orders, each within
/// that bound, plus the max's rounding (exact when both agree within a factor 2), is too.
#[test]
fn chunked_isolated_conv_with_fused_ops() {
    let device = sim();
    let p = params(256, 64, 7, 1, (3, 3), 1, 1);
    let t_in = 45;
    let mut rng = Rng::new(77);
    let x = rng.vec(t_in * p.cin);
    let w = rng.vec(p.cout * p.cin * p.kernel);
    let b = rng.vec(p.cout);
    let res = rng.vec(t_in * p.cout);
    let (slope_in, slope_out) = (0.1f32, 0.2f32);
    let xa: Vec<f32> = x
        .iter()
        .map(|&v| if v >= 0.0 { v } else { v * slope_in })
        .collect();
    let (conv_ref, s) = tt_kernels::ops::conv::conv1d_reference(&p, &xa, t_in, &w, Some(&b));
    let xin = DeviceTensor::from_host(&device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let rin = DeviceTensor::from_host(&device, t_in, p.cout, &res, DataFormat::Float32).unwrap();
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    let cases = [
        (Activation::LeakyRelu(slope_out), all_flags()),
        (Activation::None, all_flags()),
        (Activation::LeakyRelu(slope_out), guarded),
    ];
    for (act, prec) in cases {
        let conv = Conv1d::new(&device, p, &w, Some(&b), prec, act)
            .unwrap()
            .with_input_activation(Activation::LeakyRelu(slope_in))
            .unwrap();
        assert!(conv.chunks() > 1, "expected a chunked conv");
        let (out, st) = conv.run_with_residual(&xin, &rin).unwrap();
        assert_eq!(out.shape(), [t_in, p.cout]);
        assert_eq!(out.format(), DataFormat::Float32);
        let got = out.to_host().unwrap();
        let mut worst = 0f64;
        for (i, &g) in got.iter().enumerate() {
            let yc = conv_ref[i];
            let y = f64::from(res[i]) + act.apply(yc);
            let bound = 2f64.powi(-15) * s[i]
                + 2f64.powi(-20)
                    * (y.abs() + f64::from(res[i]).abs() + f64::from(b[i % p.cout]).abs() + s[i]);
            let e = (f64::from(g) - y).abs();
            assert!(
                e <= bound,
                "{act:?} element {i}: got {g}, want {y}, |err| {e:.3e} > {bound:.3e}"
            );
            worst = worst.max(e / bound);
        }
        eprintln!(
            "cin 256 cout 64 k7 T 45, all flags (guard {}), {} chunks, output {act:?}: worst \
             err/bound {worst:.3}, {st}",
            prec.guard_dest_quirk,
            conv.chunks()
        );
    }
}

/// Device time (simulator ESTIMATE) and max error of Piper decoder resblock convs (Float32 in /
/// out, bias) with both split flags, with and without `isolate_products`. Prints one line per
/// shape; asserts only that the isolated conv is the more accurate one.
#[test]
#[ignore = "expensive: cargo test -p tt-kernels --test op_conv piper_decoder_isolated -- --ignored --nocapture"]
fn piper_decoder_isolated_convs() {
    let device = piper_device();
    let both = Precision {
        isolate_products: false,
        guard_dest_quirk: false,
        ..all_flags()
    };
    for (name, p, t) in [
        (
            "resblock 128 k3 d1 (T 2760)",
            params(128, 128, 3, 1, (1, 1), 1, 1),
            2760,
        ),
        (
            "resblock 128 k7 d5 (T 2760)",
            params(128, 128, 7, 1, (15, 15), 5, 1),
            2760,
        ),
        (
            "resblock 64 k11 d1 (T 5000 of 22080)",
            params(64, 64, 11, 1, (5, 5), 1, 1),
            5000,
        ),
    ] {
        let mut rng = Rng::new(5);
        let x = rng.vec(t * p.cin);
        let w = rng.vec(p.cout * p.cin * p.kernel);
        let b = rng.vec(p.cout);
        let (y, _) = tt_kernels::ops::conv::conv1d_reference(&p, &x, t, &w, Some(&b));
        let xin = DeviceTensor::from_host(&device, t, p.cin, &x, DataFormat::Float32).unwrap();
        let mut res = Vec::new();
        for prec in [both, all_flags()] {
            let conv = Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
            let (out, st) = conv.run(&xin).unwrap();
            let got = out.to_host().unwrap();
            let max = got
                .iter()
                .zip(&y)
                .map(|(&g, &r)| (f64::from(g) - r).abs())
                .fold(0f64, f64::max);
            let us = st.device_ns.map_or(f64::NAN, |n| n as f64 / 1000.0);
            res.push((max, us));
            println!(
                "{name}: isolate {} ({} launches): max |err| {max:.3e}, device {us:.1} us",
                prec.isolate_products,
                conv.chunks()
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

/// Runs a `k = 1`, `cin 8`, `cout 32` conv under `prec` on data built to hit the fp32-DEST
/// renormalisation quirk (an accumulation step whose aligned sum is exactly -1 unit: the
/// exponent comes out 27 too high, see `tt-sim` `accum_step`): every output channel's Float32
/// bias is `1 - 2^-23` (exponent -1, mantissa all ones but the last), loaded into DEST first,
/// and the first non-zero product of the isolated passes `r = 0..7` is `x[t, 0] w[., 0] =
/// 1 x -1` (mask 0), which aligns to exactly one unit below `-bias`. The only other product,
/// `x[t, 7] w[., 7] = 2^-10 x 1` (mask 7), comes first in the guard's reversed order, so that
/// order never sums to -1 unit. Channels 1..6 carry random inputs with zero weights (they add
/// exact zeros). Returns (output, exact f64 result `1 - 2^-23 - 1 + 2^-10`).
fn quirk_case(device: &Device, prec: Precision) -> (Vec<f32>, f64) {
    let p = params(8, 32, 1, 1, (0, 0), 1, 1);
    let t_in = 40;
    let mut rng = Rng::new(99);
    let mut x = rng.vec(t_in * p.cin);
    for t in 0..t_in {
        x[t * p.cin] = 1.0;
        x[t * p.cin + 7] = 2f32.powi(-10);
    }
    let mut w = vec![0f32; p.cout * p.cin];
    for co in 0..p.cout {
        w[co * p.cin] = -1.0;
        w[co * p.cin + 7] = 1.0;
    }
    let b = vec![1.0 - 2f32.powi(-23); p.cout];
    let xin = DeviceTensor::from_host(device, t_in, p.cin, &x, DataFormat::Float32).unwrap();
    let conv = Conv1d::new(device, p, &w, Some(&b), prec, Activation::None).unwrap();
    let (out, _) = conv.run(&xin).unwrap();
    let want = f64::from(1.0 - 2f32.powi(-23)) - 1.0 + 2f64.powi(-10);
    (out.to_host().unwrap(), want)
}

/// `Precision::guard_dest_quirk` removes a quirk event: on `quirk_case`'s data the unguarded
/// isolated conv is off by far more than its bound (the event makes the DEST value a large
/// negative power of two), the guarded one is within the isolated bound (`2^-15 sum |a w| +
/// 2^-20 (|y| + |b|)`, see `chunked_isolated_conv_with_fused_ops`; `sum |a w| = 1 + 2^-10`).
#[test]
fn guard_removes_a_dest_quirk_event() {
    let device = sim();
    let bound = 2f64.powi(-15) * (1.0 + 2f64.powi(-10)) + 2f64.powi(-20) * 2.0;
    let (plain, want) = quirk_case(&device, all_flags());
    let worst_plain = plain
        .iter()
        .map(|&g| (f64::from(g) - want).abs())
        .fold(0f64, f64::max);
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    let (got, _) = quirk_case(&device, guarded);
    let worst = got
        .iter()
        .map(|&g| (f64::from(g) - want).abs())
        .fold(0f64, f64::max);
    eprintln!(
        "quirk case: want {want:e}, unguarded y[0] {} (max |err| {worst_plain:.3e}), guarded y[0] \
         {} (max |err| {worst:.3e}), bound {bound:.3e}",
        plain[0], got[0]
    );
    assert!(
        worst_plain > 100.0 * bound,
        "the constructed data no longer triggers the quirk (unguarded max |err| \
         {worst_plain:.3e}, bound {bound:.3e})"
    );
    assert!(
        worst <= bound,
        "guarded max |err| {worst:.3e} > bound {bound:.3e}"
    );
}

/// `guard_dest_quirk` on shapes that are not tile multiples (T 45, Cin 70, Cout 50, k 5,
/// dilation 2), bias, input leaky ReLU, output tanh and a Float32 residual; and with a bf16
/// input and output (the max is taken in fp32, then rounded once). Each element within the
/// derived split bound (`check_split`: the same bound as the unguarded split conv; the guard
/// returns one of two results that each satisfy it, up to the max's fp32 rounding, which is
/// exact when they agree within a factor 2).
#[test]
fn guarded_isolated_conv_matches_the_bound() {
    let device = sim();
    let p = params(70, 50, 5, 1, (4, 4), 2, 1);
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    let ((e, _), (st, st_plain)) = check_split(
        &device,
        p,
        45,
        guarded,
        DataFormat::Float32,
        Activation::LeakyRelu(0.1),
        Activation::Tanh,
        true,
        31,
        "guarded fp32",
    );
    eprintln!("guarded 70->50 k5 d2 T 45: max |err| {e:.3e}, {st} (unsplit conv {st_plain})");
    let bf16 = guarded.with_activations(DataFormat::Float16_b);
    check_split(
        &device,
        p,
        45,
        bf16,
        DataFormat::Float16_b,
        Activation::None,
        Activation::None,
        false,
        32,
        "guarded bf16",
    );
}

/// The guard's validation: it needs `isolate_products` (its second order permutes the masked
/// passes), `fp32_acc` and a non-decreasing output activation (not GELU, not a negative leaky
/// slope); ops without split operands reject it.
#[test]
fn guard_needs_isolate_products_and_fp32_acc() {
    let device = sim();
    let p = params(16, 16, 3, 1, (1, 1), 1, 1);
    let w = vec![0.5f32; 16 * 16 * 3];
    let no_iso = Precision {
        guard_dest_quirk: true,
        isolate_products: false,
        ..all_flags()
    };
    let e = Conv1d::new(&device, p, &w, None, no_iso, Activation::None).unwrap_err();
    assert!(e.to_string().contains("isolate_products"), "{e}");
    let no_acc = Precision {
        guard_dest_quirk: true,
        isolate_products: true,
        ..Precision::bfp8_hifi2()
    };
    let e = Conv1d::new(&device, p, &w, None, no_acc, Activation::None).unwrap_err();
    assert!(e.to_string().contains("fp32_acc"), "{e}");
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    for act in [Activation::Gelu, Activation::LeakyRelu(-0.5)] {
        let e = Conv1d::new(&device, p, &w, None, guarded, act).unwrap_err();
        assert!(e.to_string().contains("non-decreasing"), "{act:?}: {e}");
    }
    let e = Precision {
        guard_dest_quirk: true,
        ..Precision::hifi()
    }
    .check_no_split("matmul")
    .unwrap_err();
    assert!(e.to_string().contains("guard_dest_quirk"), "{e}");
}

/// Searches realistic data for fp32-DEST quirk events: Piper-like dense convs (Float32 in /
/// out, bias, f32 weights and inputs ±[0.1, 1], all three split flags) with and without
/// `guard_dest_quirk`, counting the outputs whose error exceeds the isolated bound
/// `2^-15 sum|a w| + 2^-20 (|y| + |b| + sum|a w|)` (see `chunked_isolated_conv_with_fused_ops`).
/// Prints the counts per shape and seed; asserts the guarded conv has none. Seeds:
/// `GUARD_SEEDS` (default 3).
#[test]
#[ignore = "expensive: GUARD_SEEDS=3 cargo test -p tt-kernels --test op_conv piper_guard_outliers -- --ignored --nocapture"]
fn piper_guard_outliers() {
    let device = piper_device();
    let seeds: u64 = std::env::var("GUARD_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    for (name, p, t) in [
        (
            "192->192 k5 (T 300)",
            params(192, 192, 5, 1, (2, 2), 1, 1),
            300,
        ),
        (
            "resblock 128 k3 d1 (T 1000)",
            params(128, 128, 3, 1, (1, 1), 1, 1),
            1000,
        ),
    ] {
        for seed in 0..seeds {
            let mut rng = Rng::new(1000 + seed);
            let x = rng.vec(t * p.cin);
            let w = rng.vec(p.cout * p.cin * p.kernel);
            let b = rng.vec(p.cout);
            let (y, s) = tt_kernels::ops::conv::conv1d_reference(&p, &x, t, &w, Some(&b));
            let xin = DeviceTensor::from_host(&device, t, p.cin, &x, DataFormat::Float32).unwrap();
            let mut counts = Vec::new();
            for prec in [all_flags(), guarded] {
                let conv = Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
                let (out, st) = conv.run(&xin).unwrap();
                let got = out.to_host().unwrap();
                let (mut n, mut max) = (0usize, 0f64);
                for (i, &g) in got.iter().enumerate() {
                    let e = (f64::from(g) - y[i]).abs();
                    let bound = 2f64.powi(-15) * s[i]
                        + 2f64.powi(-20) * (y[i].abs() + f64::from(b[i % p.cout]).abs() + s[i]);
                    if e > bound {
                        n += 1;
                        println!(
                            "{name} seed {seed} guard {}: y[{}, {}] = {g}, f64 {} (|err| {e:.3e})",
                            prec.guard_dest_quirk,
                            i / p.cout,
                            i % p.cout,
                            y[i]
                        );
                    }
                    max = max.max(e);
                }
                let us = st.device_ns.map_or(f64::NAN, |v| v as f64 / 1000.0);
                println!(
                    "{name} seed {seed} guard {}: {n} outliers of {}, max |err| {max:.3e}, \
                     device {us:.1} us",
                    prec.guard_dest_quirk,
                    got.len()
                );
                counts.push(n);
            }
            assert_eq!(counts[1], 0, "{name} seed {seed}: guarded outliers");
        }
    }
}

/// A quirk event on realistic data, kept small: `piper_guard_outliers` found one in the
/// 192->192 k5 conv (T 300, seed 1009: output y[47, 103] = -14.33 instead of 1.67, off by
/// exactly 16). An output element's accumulation order depends only on K (taps x input tiles x
/// parts), not on its row, so the same event reappears on the slice of input rows 32..64 (T 32,
/// output row 15 = original row 47; the same weights, bias and inputs). The unguarded isolated
/// conv must show it (error far above the isolated bound `2^-15 sum|a w| + 2^-20 (|y| + |b| +
/// sum|a w|)`), the guarded conv must keep every element within that bound.
#[test]
fn guard_removes_a_realistic_quirk_event() {
    let device = sim();
    let p = params(192, 192, 5, 1, (2, 2), 1, 1);
    let (t_full, t0, t) = (300, 32, 32);
    let mut rng = Rng::new(1009);
    let x_full = rng.vec(t_full * p.cin);
    let w = rng.vec(p.cout * p.cin * p.kernel);
    let b = rng.vec(p.cout);
    let x = &x_full[t0 * p.cin..(t0 + t) * p.cin];
    let (y, s) = tt_kernels::ops::conv::conv1d_reference(&p, x, t, &w, Some(&b));
    let xin = DeviceTensor::from_host(&device, t, p.cin, x, DataFormat::Float32).unwrap();
    let guarded = Precision {
        guard_dest_quirk: true,
        ..all_flags()
    };
    let mut worst = Vec::new();
    for prec in [all_flags(), guarded] {
        let conv = Conv1d::new(&device, p, &w, Some(&b), prec, Activation::None).unwrap();
        let (out, st) = conv.run(&xin).unwrap();
        let got = out.to_host().unwrap();
        let mut w_ratio = 0f64;
        for (i, &g) in got.iter().enumerate() {
            // Rows 0..2 and 30..32 see the slice's zero padding: their reference is the slice's.
            let e = (f64::from(g) - y[i]).abs();
            let bound = 2f64.powi(-15) * s[i]
                + 2f64.powi(-20) * (y[i].abs() + f64::from(b[i % p.cout]).abs() + s[i]);
            w_ratio = w_ratio.max(e / bound);
        }
        eprintln!(
            "realistic quirk case, guard {}: y[15, 103] = {} (f64 {}), worst err/bound \
             {w_ratio:.3e}, {st}",
            prec.guard_dest_quirk,
            got[15 * p.cout + 103],
            y[15 * p.cout + 103]
        );
        worst.push(w_ratio);
    }
    assert!(
        worst[0] > 1000.0,
        "the sliced seed-1009 data no longer shows the quirk event (unguarded worst err/bound \
         {:.3e})",
        worst[0]
    );
    assert!(worst[1] <= 1.0, "guarded worst err/bound {:.3e}", worst[1]);
}
