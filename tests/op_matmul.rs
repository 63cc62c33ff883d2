//! Matmul op (`tt_kernels::ops::matmul`) against f64 references, on the simulator (or hardware
//! with `TT_DEVICE=metal`).
//!
//! Two comparisons per run, both with bounds from `ops::common::tolerance` (derivation in its
//! module doc; nothing here is tuned):
//! 1. **Compute** (catches kernel bugs, tight): `ops::common::device_model::matmul` on exactly
//!    the values the device unpacks (inputs encoded by the host and decoded back, bias rounded
//!    to bf16): the fidelity-truncated products summed in f64, with a per-element bound for
//!    alignment, DEST and spill rounding along the kernel's accumulation order. Per element
//!    `|err| <= L * model_bound + sfpu + pack`, `L` the activation's Lipschitz constant,
//!    `sfpu` the SFPU allowance and `pack` the output rounding (bf16: 2^-8 |y|; bfp8: of the
//!    16-value block max).
//! 2. **Accuracy** (what a user gets): f64 on the original f32 inputs with the uniform bound
//!    `matmul_error_bound(K, precision, max|x|, max|W|)` (input quantisation included), carried
//!    through the activation. These errors are what docs/ops.md reports.
//!
//! Inputs are random, never zero (uniform magnitude in [0.25, 1], random sign), and shapes are
//! both tile-aligned and not. The Piper shapes (T = 300) are `#[ignore]`d:
//! `cargo test --release --test op_matmul -- --ignored --nocapture` prints the docs table rows.

use proptest::prelude::*;
use tt_kernels::ops::common::{
    Activation, DeviceTensor, OpError, Precision, device_model, reference, tolerance,
};
use tt_kernels::ops::matmul::Matmul;
use tt_safe::{DataFormat, Device, Tensor2d};

#[path = "support/common.rs"]
mod common;
use common::{Rng, default_device as device, quantise};

/// The matmul stores its bias as Float32 with Float32 activations, else bf16.
fn bias_format(p: &Precision) -> DataFormat {
    if p.activations == DataFormat::Float32 {
        DataFormat::Float32
    } else {
        DataFormat::Float16_b
    }
}

/// The values the device sees after the host encodes `data` to `format`.
/// Output packing bound for element (i, j) of `y` ([rows, cols] row-major) in `format`.
fn pack_bound(format: DataFormat, y: &[f64], cols: usize, i: usize, j: usize, extra: f64) -> f64 {
    let rel = tolerance::pack_error_rel(format);
    if format.is_bfp() {
        let c0 = j / 16 * 16;
        let c1 = (c0 + 16).min(cols);
        let m = (c0..c1).map(|c| y[i * cols + c].abs()).fold(0.0, f64::max);
        rel * (m + extra)
    } else {
        rel * (y[i * cols + j].abs() + extra)
    }
}

/// Errors of one comparison.
#[derive(Debug, Clone, Copy)]
struct Stats {
    max_err: f64,
    mean_err: f64,
    worst_ratio: f64,
    max_ref: f64,
}

fn compare(what: &str, got: &[f32], want: &[f64], bound: impl Fn(usize) -> f64) -> Stats {
    assert_eq!(got.len(), want.len());
    let (mut max_err, mut sum, mut worst, mut max_ref) = (0f64, 0f64, 0f64, 0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (f64::from(g) - w).abs();
        let b = bound(i);
        assert!(
            err <= b,
            "{what}: element {i}: got {g}, want {w}, |err| {err:.3e} > bound {b:.3e}"
        );
        max_err = max_err.max(err);
        sum += err;
        worst = worst.max(err / b);
        max_ref = max_ref.max(w.abs());
    }
    Stats {
        max_err,
        mean_err: sum / got.len() as f64,
        worst_ratio: worst,
        max_ref,
    }
}

struct Case {
    m: usize,
    k: usize,
    n: usize,
    precision: Precision,
    act: Activation,
    bias: bool,
    seed: u64,
    grid: Option<(u32, u32)>,
    budget: Option<u64>,
    input_format: DataFormat,
}

impl Case {
    fn new(m: usize, k: usize, n: usize, precision: Precision) -> Case {
        Case {
            m,
            k,
            n,
            precision,
            act: Activation::None,
            bias: true,
            seed: (m * 1_000_003 + k * 1009 + n) as u64,
            grid: None,
            budget: None,
            input_format: precision.activations,
        }
    }
}

/// Runs one case and checks both comparisons; returns (compute stats, accuracy stats).
fn run_case(dev: &Device, c: &Case) -> (Stats, Stats) {
    let (a, b, _) = run_case_stats(dev, c);
    (a, b)
}

/// [`run_case`] plus the device's run statistics.
fn run_case_stats(dev: &Device, c: &Case) -> (Stats, Stats, tt_safe::RunStats) {
    let mut rng = Rng::new(c.seed);
    let x = rng.signed_vec(c.m * c.k, 0.25, 1.0);
    let w = rng.signed_vec(c.k * c.n, 0.25, 1.0);
    let bias = rng.signed_vec(c.n, 0.25, 1.0);
    let p = c.precision;
    let w_t = Tensor2d::new(c.k, c.n, w.clone()).unwrap();
    let mut mm = Matmul::new(dev, &w_t, c.bias.then_some(&bias[..]), p, c.act).unwrap();
    if let Some((gx, gy)) = c.grid {
        mm = mm.with_max_grid(gx, gy);
    }
    if let Some(b) = c.budget {
        mm = mm.with_l1_budget(b);
    }
    let xt = DeviceTensor::from_host(dev, c.m, c.k, &x, c.input_format).unwrap();
    let (y, run_stats) = mm.run_with_stats(&xt).unwrap();
    assert_eq!(y.shape(), [c.m, c.n]);
    assert_eq!(y.format(), p.activations);
    let got = y.to_host().unwrap();
    let what = format!(
        "matmul {}x{}x{} {p:?} act {:?} bias {} input {:?}",
        c.m, c.k, c.n, c.act, c.bias, c.input_format
    );

    let lip = c.act.lipschitz();
    let out_fmt = p.activations;
    // 1. Compute: exact f64 on the device-format operands.
    // Float32 inputs reach SrcB as TF32 (11 significant bits, truncated); a Float32 bias
    // (Float32 activations) goes to DEST unchanged.
    let xq: Vec<f32> = quantise(&x, c.m, c.k, c.input_format)
        .into_iter()
        .map(|v| {
            if c.input_format == DataFormat::Float32 {
                device_model::truncate_bits(v, 11)
            } else {
                v
            }
        })
        .collect();
    let wq = quantise(&w, c.k, c.n, p.weights);
    let bias_fmt = bias_format(&p);
    let bq = quantise(&bias, 1, c.n, bias_fmt);
    let plan = mm.plan(c.m, c.input_format).unwrap();
    let (pre, pre_bound) = device_model::matmul(
        &xq,
        &wq,
        c.m,
        c.k,
        c.n,
        c.bias.then_some(&bq[..]),
        &p,
        plan.in0_block_w as usize,
    );
    let want_q: Vec<f64> = pre.iter().map(|&v| c.act.apply(v)).collect();
    let compute = compare(&format!("{what} [compute]"), &got, &want_q, |i| {
        let (r, col) = (i / c.n, i % c.n);
        let e = lip * pre_bound[i];
        let fy = want_q[i].abs() + e;
        let sf = if c.act == Activation::None {
            0.0
        } else {
            tolerance::sfpu_error(p.fp32_acc, fy)
        };
        e + sf + pack_bound(out_fmt, &want_q, c.n, r, col, e + sf)
    });

    // 2. Accuracy: f64 on the original inputs.
    let (y0, _) = reference::matmul(&x, &w, c.m, c.k, c.n);
    let want: Vec<f64> = (0..c.m * c.n)
        .map(|i| {
            c.act.apply(
                y0[i]
                    + if c.bias {
                        f64::from(bias[i % c.n])
                    } else {
                        0.0
                    },
            )
        })
        .collect();
    let max_x = x.iter().fold(0f64, |a, &v| a.max(f64::from(v).abs()));
    let max_w = w.iter().fold(0f64, |a, &v| a.max(f64::from(v).abs()));
    let max_b = bias.iter().fold(0f64, |a, &v| a.max(f64::from(v).abs()));
    // The bias adds its rounding (bf16 2^-8 |b|, Float32 2^-24 |b|) and one more term to the
    // sums. `matmul_error_bound` quantises the input and packs the output in the same format;
    // when they differ, the sum of the bounds for each covers input quantisation in one and
    // output packing in the other.
    let bound_for = |acts: DataFormat| {
        tolerance::matmul_error_bound(
            c.k + 1,
            &p.with_activations(acts),
            max_x.max(1.0),
            max_w.max(max_b),
        )
    };
    let uniform = if c.input_format == out_fmt {
        bound_for(out_fmt)
    } else {
        bound_for(c.input_format) + bound_for(out_fmt)
    } + if c.bias {
        tolerance::quant_rel(bias_fmt) * max_b
    } else {
        0.0
    };
    let y_max = want.iter().fold(0f64, |a, v| a.max(v.abs()));
    let sf = if c.act == Activation::None {
        0.0
    } else {
        tolerance::sfpu_error(p.fp32_acc, y_max + lip * uniform)
            * (1.0 + tolerance::pack_error_rel(out_fmt))
            + tolerance::pack_error_rel(out_fmt) * (y_max + lip * uniform)
    };
    let accuracy = compare(&format!("{what} [accuracy]"), &got, &want, |_| {
        lip * uniform + sf
    });
    (compute, accuracy, run_stats)
}

#[test]
fn every_precision_aligned_and_unaligned() {
    let dev = device();
    for (name, p) in Precision::presets() {
        for (m, k, n) in [(64, 96, 64), (50, 70, 45), (1, 33, 7)] {
            let (c, a) = run_case(&dev, &Case::new(m, k, n, p));
            eprintln!(
                "{name} {m}x{k}x{n}: compute max {:.3e} (worst/bound {:.2}), accuracy max {:.3e} mean {:.3e}",
                c.max_err, c.worst_ratio, a.max_err, a.mean_err
            );
        }
    }
}

#[test]
fn fused_activations() {
    let dev = device();
    let acts = [
        Activation::Relu,
        Activation::LeakyRelu(0.1),
        Activation::Gelu,
        Activation::Tanh,
        Activation::Sigmoid,
    ];
    for act in acts {
        for p in [Precision::hifi(), Precision::bfp8_lofi()] {
            let mut c = Case::new(40, 48, 72, p);
            c.act = act;
            // Scale so the pre-activations straddle the interesting range of the function.
            run_case(&dev, &c);
        }
    }
}

#[test]
fn no_bias_and_bfp8_activations_in_and_out() {
    let dev = device();
    let mut c = Case::new(
        70,
        64,
        40,
        Precision::bfp8_hifi2().with_activations(DataFormat::Bfp8_b),
    );
    c.bias = false;
    run_case(&dev, &c);
    // The fidelities between the presets: HiFi3 (bf16 DEST) and HiFi2 with bf16 weights.
    for fidelity in [tt_safe::MathFidelity::HiFi3, tt_safe::MathFidelity::HiFi2] {
        let p = Precision {
            fidelity,
            fp32_acc: false,
            ..Precision::hifi()
        };
        run_case(&dev, &Case::new(50, 100, 60, p));
    }
    // bf16 output from a bfp8 input.
    let mut c = Case::new(70, 64, 40, Precision::hifi());
    c.input_format = DataFormat::Bfp8_b;
    run_case(&dev, &c);
}

/// Float32 activations (`Precision::hifi_fp32`: bf16 weights, HiFi4, fp32 DEST, Float32 bias
/// and output) and the mixes Float32 in / bf16 out, bf16 in / Float32 out, on aligned and
/// unaligned shapes, a fused activation, multi-core tails and K streaming (partials spilled as
/// Float32). Bounds as for every case (module doc): the compute check models the device's
/// TF32 view of a Float32 input exactly (`truncate_bits(x, 11)`), so only alignment and fp32
/// DEST rounding remain; the accuracy check's `matmul_error_bound` adds the TF32 truncation
/// (`tolerance::unpack_rel`, 2^-10 relative per activation) to the input quantisation.
#[test]
fn float32_activations() {
    let dev = device();
    let fp32 = Precision::hifi_fp32();
    for (m, k, n) in [(64, 96, 64), (50, 70, 45), (1, 33, 7)] {
        let (c, a) = run_case(&dev, &Case::new(m, k, n, fp32));
        eprintln!(
            "Float32 {m}x{k}x{n}: compute max {:.3e} (worst/bound {:.2}), accuracy max {:.3e}",
            c.max_err, c.worst_ratio, a.max_err
        );
    }
    let mut c = Case::new(40, 48, 72, fp32);
    c.act = Activation::LeakyRelu(0.1);
    run_case(&dev, &c);
    let mut c = Case::new(200, 96, 150, fp32);
    c.grid = Some((3, 2));
    run_case(&dev, &c);
    let mut c = Case::new(70, 256, 96, fp32);
    c.budget = Some(48 * 1024);
    c.grid = Some((2, 2));
    let plan = Matmul::new(
        &dev,
        &Tensor2d::from_fn(256, 96, |_, _| 0.5),
        Some(&[0.1; 96]),
        fp32,
        Activation::None,
    )
    .unwrap()
    .with_max_grid(2, 2)
    .with_l1_budget(48 * 1024)
    .plan(70, DataFormat::Float32)
    .unwrap();
    assert!(plan.num_blocks > 1, "K must stream: {plan:?}");
    run_case(&dev, &c);
    // Mixed formats.
    let mut c = Case::new(50, 70, 45, Precision::hifi());
    c.input_format = DataFormat::Float32;
    run_case(&dev, &c);
    let mut c = Case::new(50, 70, 45, fp32);
    c.input_format = DataFormat::Float16_b;
    run_case(&dev, &c);
}

#[test]
fn multicore_tails_streaming_and_chunks() {
    let dev = device();
    // 7 x 5 output tiles on at most 3 x 2 cores: tails in both directions, multicast both ways.
    let mut c = Case::new(200, 96, 150, Precision::hifi());
    c.grid = Some((3, 2));
    run_case(&dev, &c);
    // A tight L1 budget forces K streaming (partials spilled in fp32) and row chunks.
    let w = Tensor2d::from_fn(160, 64, |r, c| ((r * 7 + c * 3) % 11) as f32 * 0.1 - 0.5);
    let mm = Matmul::new(&dev, &w, None, Precision::hifi(), Activation::None)
        .unwrap()
        .with_max_grid(2, 2)
        .with_l1_budget(24 * 1024);
    let plan = mm.plan(300, DataFormat::Float16_b).unwrap();
    assert!(
        !plan.resident && plan.num_blocks > 1 && plan.num_chunks > 1,
        "{plan:?}"
    );
    let mut c = Case::new(300, 160, 64, Precision::hifi());
    c.grid = Some((2, 2));
    c.budget = Some(24 * 1024);
    run_case(&dev, &c);
    let mut c = Case::new(300, 160, 64, Precision::bfp8_lofi());
    c.grid = Some((2, 2));
    c.budget = Some(24 * 1024);
    run_case(&dev, &c);
    // Tall and narrow: M split over every core (94 tile rows in 47 blocks of 2 on the 8x8
    // grid: the last core idles but takes part in the weight multicast).
    let mut c = Case::new(3000, 64, 40, Precision::bfp8_hifi2());
    c.act = Activation::Relu;
    run_case(&dev, &c);
    // One core.
    let mut c = Case::new(45, 40, 35, Precision::bfp4_lofi());
    c.grid = Some((1, 1));
    run_case(&dev, &c);
}

#[test]
fn blackhole_grid_and_nonzero_input_padding() {
    // The p150 grid (11x10) with tails.
    let bh = Device::open_sim(tt_safe::Arch::Blackhole)
        .unwrap_or_else(|e| panic!("cannot open the Blackhole simulator: {e}"));
    run_case(&bh, &Case::new(100, 70, 400, Precision::bfp8_hifi2()));

    // An input whose padding is not zero (the output of an eltwise op with a scalar
    // broadcast): the prepared weights' padded K rows are zero, so the result is unchanged.
    let dev = device();
    let (m, k, n) = (40, 45, 30);
    let mut rng = Rng::new(99);
    let x = rng.signed_vec(m * k, 0.25, 1.0);
    let w = Tensor2d::new(k, n, rng.signed_vec(k * n, 0.25, 1.0)).unwrap();
    let bf = DataFormat::Float16_b;
    let el = tt_kernels::ops::eltwise::Eltwise::new(&dev, Precision::hifi()).unwrap();
    let x0: Vec<f32> = x.iter().map(|v| v - 0.5).collect();
    let t0 = DeviceTensor::from_host(&dev, m, k, &x0, bf).unwrap();
    let half = DeviceTensor::from_host(&dev, 1, 1, &[0.5], bf).unwrap();
    let xg = el
        .binary(
            tt_kernels::ops::eltwise::BinaryOp::Add,
            &t0,
            &half,
            tt_kernels::ops::eltwise::Broadcast::Scalar,
        )
        .unwrap();
    assert!(!xg.pad_is_zero());
    let xz = DeviceTensor::from_host(&dev, m, k, &xg.to_host().unwrap(), bf).unwrap();
    let mm = Matmul::new(&dev, &w, None, Precision::hifi(), Activation::None).unwrap();
    let a = mm.run(&xg).unwrap().to_host().unwrap();
    let b = mm.run(&xz).unwrap().to_host().unwrap();
    assert_eq!(a, b, "input padding leaked into the matmul");

    // pad_is_zero is truthful: no bias and f(0) = 0 on a zero-padded input -> zero padding.
    let mm = Matmul::new(&dev, &w, None, Precision::hifi(), Activation::Tanh).unwrap();
    let y = mm.run(&xz).unwrap();
    assert!(y.pad_is_zero());
    let (pr, pc) = (y.tile_rows() * 32, y.tile_cols() * 32);
    let full = tt_safe::tiles::from_tiles(&y.buffer().read().unwrap(), pr, pc, y.format()).unwrap();
    for r in 0..pr {
        for c in 0..pc {
            if r >= m || c >= n {
                assert_eq!(full[r * pc + c], 0.0, "padding ({r}, {c}) is not zero");
            }
        }
    }
    let with_bias = Matmul::new(
        &dev,
        &w,
        Some(&[0.5; 30]),
        Precision::hifi(),
        Activation::None,
    )
    .unwrap();
    assert!(!with_bias.run(&xz).unwrap().pad_is_zero());
}

#[test]
fn clear_errors_for_unsupported_shapes_and_arguments() {
    let dev = device();
    let w = Tensor2d::from_fn(64, 32, |r, c| (r + c) as f32 * 0.01 + 0.1);
    let mm = Matmul::new(&dev, &w, None, Precision::hifi(), Activation::None).unwrap();
    let x = DeviceTensor::from_host(&dev, 10, 60, &vec![0.5; 600], DataFormat::Float16_b).unwrap();
    let e = mm.run(&x).unwrap_err();
    assert!(matches!(e, OpError::ShapeMismatch { .. }), "{e}");
    assert!(e.to_string().contains("K = 64"), "{e}");

    let e = Matmul::new(
        &dev,
        &w,
        Some(&[1.0; 31]),
        Precision::hifi(),
        Activation::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("bias has 31"), "{e}");

    let bad = Precision {
        weights: DataFormat::Float32,
        ..Precision::hifi()
    };
    let e = Matmul::new(&dev, &w, None, bad, Activation::None).unwrap_err();
    assert!(
        matches!(
            e,
            OpError::FormatUnsupported {
                role: "weights",
                ..
            }
        ),
        "{e}"
    );

    // Float32 input or output needs fp32 accumulation.
    let no_acc = Precision::bfp8_hifi2();
    let mm16 = Matmul::new(&dev, &w, None, no_acc, Activation::None).unwrap();
    let x = DeviceTensor::from_host(&dev, 10, 64, &vec![0.5; 640], DataFormat::Float32).unwrap();
    let e = mm16.run(&x).unwrap_err();
    assert!(
        matches!(e, OpError::FormatUnsupported { role: "input", .. })
            && e.to_string().contains("fp32_acc"),
        "{e}"
    );
    let e = Matmul::new(
        &dev,
        &w,
        None,
        no_acc.with_activations(DataFormat::Float32),
        Activation::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("fp32_acc"), "{e}");
    let x4 = DeviceTensor::from_host(&dev, 10, 64, &vec![0.5; 640], DataFormat::Bfp4_b).unwrap();
    assert!(matches!(
        mm.run(&x4).unwrap_err(),
        OpError::FormatUnsupported { .. }
    ));

    // A weight band too wide for L1 on one core: the error names the L1 limit.
    let wide = Tensor2d::from_fn(32, 32 * 1000, |_, c| (c % 5) as f32 * 0.1 + 0.1);
    let mm = Matmul::new(&dev, &wide, None, Precision::hifi(), Activation::None)
        .unwrap()
        .with_max_grid(1, 1);
    let x = DeviceTensor::from_host(&dev, 1, 32, &[0.5; 32], DataFormat::Float16_b).unwrap();
    let e = mm.run(&x).unwrap_err();
    assert!(matches!(e, OpError::ShapeUnsupported { .. }), "{e}");
    assert!(e.to_string().contains("L1"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn proptest_small_shapes(m in 1usize..80, k in 1usize..80, n in 1usize..80, pi in 0usize..4, seed in 0u64..1000) {
        let dev = device();
        let mut c = Case::new(m, k, n, Precision::presets()[pi].1);
        c.seed = seed;
        c.grid = Some((2, 2));
        run_case(&dev, &c);
    }
}

/// The Piper encoder's 1x1 convs / FFN and WN layer 1x1s at T = 300, every precision, on the
/// Wormhole n150 (8x8) and Blackhole p150 (11x10) simulators; prints the rows of docs/ops.md:
/// max/mean error against f64 on the f32 inputs, the device time the simulator's timing model
/// estimates, and the FPU utilisation it implies (`2 M K N` FLOP over the whole grid's peak at
/// that fidelity: 4096 FLOP per cycle per core at LoFi, divided by the number of phases).
#[test]
#[ignore = "expensive: cargo test --release --test op_matmul -- --ignored --nocapture"]
fn piper_shapes() {
    let shapes = [
        ("encoder attn/1x1 192->192", 300, 192, 192),
        ("encoder FFN 192->768", 300, 192, 768),
        ("encoder FFN 768->192", 300, 768, 192),
        ("WN res/skip 1x1 192->384", 300, 192, 384),
    ];
    for arch in [tt_safe::Arch::WormholeB0, tt_safe::Arch::Blackhole] {
        let dev =
            Device::open_sim(arch).unwrap_or_else(|e| panic!("cannot open the simulator: {e}"));
        let cores = dev.grid().num_cores() as f64;
        for (label, m, k, n) in shapes {
            for (name, p) in Precision::presets() {
                let c = Case::new(m, k, n, p);
                let (cs, a, st) = run_case_stats(&dev, &c);
                let util = st.device_cycles.map_or("-".to_string(), |cy| {
                    let peak = cores * 4096.0 / f64::from(p.fidelity.phases());
                    format!(
                        "{:.1}%",
                        100.0 * 2.0 * (m * k * n) as f64 / (cy as f64 * peak)
                    )
                });
                let us = st
                    .device_ns
                    .map_or("-".to_string(), |ns| format!("{:.1}", ns as f64 / 1000.0));
                println!(
                    "| matmul {label} (M={m}) | {} | {name} | {:.3e} | {:.3e} | {:.3e} | {:.2} | {us} | {util} |",
                    arch.name(),
                    a.max_err,
                    a.mean_err,
                    a.max_ref,
                    cs.worst_ratio
                );
            }
        }
    }
}

/// A long sequence (100k time steps, like HiFi-GAN's last layers at 22 kHz x 4.5 s): the rows
/// run in chunks per core with the weights resident.
#[test]
#[ignore = "expensive: cargo test --release --test op_matmul -- --ignored --nocapture"]
fn long_sequence_rows_chunked() {
    let dev = device();
    let c = Case::new(100_000, 64, 32, Precision::bfp8_hifi2());
    let w = Tensor2d::from_fn(64, 32, |r, c| (r + c) as f32);
    let plan = Matmul::new(&dev, &w, None, c.precision, Activation::None)
        .unwrap()
        .plan(c.m, c.input_format)
        .unwrap();
    println!("{plan:?}");
    assert!(plan.resident && plan.m_split);
    let (cs, a, st) = run_case_stats(&dev, &c);
    println!(
        "long sequence 100000x64x32: worst/bound {:.2}, max err {:.3e}, {st}",
        cs.worst_ratio, a.max_err
    );
}
