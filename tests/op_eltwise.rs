//! Eltwise ops (`tt_kernels::ops::eltwise`) against f64 on the values the device unpacks
//! (inputs host-encoded and decoded back), on the simulator (or hardware with
//! `TT_DEVICE=metal`). Inputs are random and never zero; shapes are tile-aligned and not.
//!
//! Bounds (per element; `u` the DEST unit roundoff, 2^-8 for a 16-bit DEST, 2^-24 for fp32;
//! `al` the adder's alignment/rounding loss: the FPU adder works on 11-bit significands (the
//! SrcA/SrcB width), so operands and, even with an fp32 DEST, an ELWADD sum can round to 11
//! significant bits (half an ulp = 2^-11; 2^-10 relative to the operands with margin); tt-sim
//! `fpu/core.rs` `accum` documents the operand rounding):
//! - add/sub: `al (|a| + |b|) + u |y|`;
//! - mul (HiFi4, exact bf16 products, one DEST rounding per phase): `4.4 u |y| + al |y|`;
//! - SFPU functions (copy to DEST is exact): `tolerance::sfpu_error` (ideal function rounded
//!   into DEST, plus the hardware approximation allowance);
//! - gate: tanh in DEST (`e_t`), sigmoid packed to the intermediate CB (`e_s`: SFPU + packing),
//!   DEST moved to SrcA (fp32 DEST truncated to TF32: 2^-10), product with 4 DEST roundings:
//!   `|s| e_t + |t| e_s + e_t e_s + (2^-10 + 4.4 u) |t s|`;
//! - scaled sum: each further input adds a DEST->SrcA move (fp32: TF32 truncation 2^-10 of the
//!   partial), the add's `al` and `u` terms; the scalar multiply one more `u`;
//! - then packing to the output format (`tolerance::pack_error_rel`: bf16 relative to |y|, bfp8
//!   to the 16-value block max).
//!
//! Precisions: fp32 DEST + bf16 out (`Precision::hifi`), 16-bit DEST + bf16 out
//! (`bfp8_hifi2`), 16-bit DEST + bfp8_b out; for eltwise ops the weight format and fidelity do
//! not apply (products run at HiFi4).

use tt_kernels::ops::common::{DeviceTensor, OpError, Precision, reference, tolerance};
use tt_kernels::ops::eltwise::{BinaryOp, Broadcast, Eltwise, EltwiseOp, MAX_SUM_INPUTS, UnaryOp};
use tt_safe::DataFormat;

#[path = "support/common.rs"]
mod common;
use common::{Rng, default_device as device, quantise};

fn precisions() -> [(&'static str, Precision); 3] {
    [
        ("fp32 DEST, bf16 out", Precision::hifi()),
        ("bf16 DEST, bf16 out", Precision::bfp8_hifi2()),
        (
            "bf16 DEST, bfp8_b out",
            Precision::bfp8_hifi2().with_activations(DataFormat::Bfp8_b),
        ),
    ]
}

fn al(_p: &Precision) -> f64 {
    // The adder works on 11-bit significands (SrcA/SrcB width) in both DEST modes.
    2f64.powi(-10)
}

/// Checks `got` against `want` with `bound(i)` before packing; returns (max, mean) error.
fn check(
    what: &str,
    p: &Precision,
    cols: usize,
    got: &[f32],
    want: &[f64],
    bound: impl Fn(usize) -> f64,
) -> (f64, f64) {
    let rel = tolerance::pack_error_rel(p.activations);
    let (mut max, mut sum) = (0f64, 0f64);
    for i in 0..want.len() {
        let e = bound(i);
        let pack = if p.activations.is_bfp() {
            let (r, c) = (i / cols, i % cols);
            let c0 = c / 16 * 16;
            let m = (c0..(c0 + 16).min(cols))
                .map(|cc| want[r * cols + cc].abs())
                .fold(0.0, f64::max);
            rel * (m + e)
        } else {
            rel * (want[i].abs() + e)
        };
        let err = (f64::from(got[i]) - want[i]).abs();
        assert!(
            err <= e + pack,
            "{what}: element {i}: got {}, want {}, |err| {err:.3e} > {:.3e}",
            got[i],
            want[i],
            e + pack
        );
        max = max.max(err);
        sum += err;
    }
    (max, sum / want.len() as f64)
}

#[test]
fn binary_with_broadcasts() {
    let dev = device();
    for (name, p) in precisions() {
        let el = Eltwise::new(&dev, p).unwrap();
        for (rows, cols) in [(64, 96), (45, 70)] {
            let mut rng = Rng::new((rows * cols) as u64);
            let a = rng.signed_vec(rows * cols, 0.25, 2.0);
            let ta = DeviceTensor::from_host(&dev, rows, cols, &a, DataFormat::Float16_b).unwrap();
            let aq = quantise(&a, rows, cols, DataFormat::Float16_b);
            for bcast in [
                Broadcast::None,
                Broadcast::Row,
                Broadcast::Col,
                Broadcast::Scalar,
            ] {
                let (br, bc) = match bcast {
                    Broadcast::None => (rows, cols),
                    Broadcast::Row => (1, cols),
                    Broadcast::Col => (rows, 1),
                    Broadcast::Scalar => (1, 1),
                };
                let b = rng.signed_vec(br * bc, 0.25, 2.0);
                let tb = DeviceTensor::from_host(&dev, br, bc, &b, DataFormat::Float16_b).unwrap();
                let bq = quantise(&b, br, bc, DataFormat::Float16_b);
                let bv = |i: usize| {
                    let (r, c) = (i / cols, i % cols);
                    f64::from(bq[(r % br) * bc + c % bc])
                };
                for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
                    let y = el.binary(op, &ta, &tb, bcast).unwrap();
                    assert_eq!(y.shape(), [rows, cols]);
                    let got = y.to_host().unwrap();
                    let want: Vec<f64> = (0..rows * cols)
                        .map(|i| {
                            let (x, z) = (f64::from(aq[i]), bv(i));
                            match op {
                                BinaryOp::Add => x + z,
                                BinaryOp::Sub => x - z,
                                BinaryOp::Mul => x * z,
                            }
                        })
                        .collect();
                    let u = tolerance::dest_u(p.fp32_acc);
                    let what = format!("{name} {op:?} {bcast:?} {rows}x{cols}");
                    check(&what, &p, cols, &got, &want, |i| match op {
                        BinaryOp::Mul => (4.4 * u + al(&p)) * want[i].abs(),
                        _ => al(&p) * (f64::from(aq[i]).abs() + bv(i).abs()) + u * want[i].abs(),
                    });
                }
            }
        }
    }
}

#[test]
fn mixed_input_formats() {
    // bf16 + bfp8_b (e.g. a residual stream in bf16 and a layer output in bfp8_b).
    let dev = device();
    let p = Precision::hifi();
    let el = Eltwise::new(&dev, p).unwrap().with_max_cores(3);
    let (rows, cols) = (70, 100);
    let mut rng = Rng::new(21);
    let a = rng.signed_vec(rows * cols, 0.25, 2.0);
    let b = rng.signed_vec(rows * cols, 0.25, 2.0);
    let ta = DeviceTensor::from_host(&dev, rows, cols, &a, DataFormat::Float16_b).unwrap();
    let tb = DeviceTensor::from_host(&dev, rows, cols, &b, DataFormat::Bfp8_b).unwrap();
    let aq = quantise(&a, rows, cols, DataFormat::Float16_b);
    let bq = quantise(&b, rows, cols, DataFormat::Bfp8_b);
    let got = el
        .binary(BinaryOp::Add, &ta, &tb, Broadcast::None)
        .unwrap()
        .to_host()
        .unwrap();
    let want: Vec<f64> = aq
        .iter()
        .zip(&bq)
        .map(|(&x, &y)| f64::from(x) + f64::from(y))
        .collect();
    let u = tolerance::dest_u(p.fp32_acc);
    check("bf16 + bfp8_b", &p, cols, &got, &want, |i| {
        al(&p) * (f64::from(aq[i]).abs() + f64::from(bq[i]).abs()) + u * want[i].abs()
    });
}

#[test]
fn unary_functions() {
    let dev = device();
    let ops = [
        (UnaryOp::Relu, 4.0),
        (UnaryOp::LeakyRelu(0.2), 4.0),
        (UnaryOp::Gelu, 4.0),
        (UnaryOp::Tanh, 4.0),
        (UnaryOp::Sigmoid, 6.0),
        (UnaryOp::Exp, 3.0),
        (UnaryOp::Softplus, 6.0),
    ];
    for (name, p) in precisions() {
        let el = Eltwise::new(&dev, p).unwrap().with_max_cores(5);
        for (op, range) in ops {
            let (rows, cols) = (50, 77);
            let mut rng = Rng::new(7);
            let a = rng.signed_vec(rows * cols, 0.01, range);
            let ta = DeviceTensor::from_host(&dev, rows, cols, &a, DataFormat::Float16_b).unwrap();
            let aq = quantise(&a, rows, cols, DataFormat::Float16_b);
            let got = el.unary(op, &ta).unwrap().to_host().unwrap();
            let want: Vec<f64> = aq.iter().map(|&x| op.apply(f64::from(x))).collect();
            check(&format!("{name} {op:?}"), &p, cols, &got, &want, |i| {
                tolerance::sfpu_error(p.fp32_acc, want[i].abs())
            });
        }
    }
}

#[test]
fn wavenet_gate_and_scaled_sums() {
    let dev = device();
    for (name, p) in precisions() {
        let el = Eltwise::new(&dev, p).unwrap();
        let (rows, cols) = (70, 192);
        let mut rng = Rng::new(11);
        let a = rng.signed_vec(rows * cols, 0.05, 3.0);
        let b = rng.signed_vec(rows * cols, 0.05, 3.0);
        let c = rng.signed_vec(rows * cols, 0.05, 3.0);
        let t = |v: &[f32]| {
            DeviceTensor::from_host(&dev, rows, cols, v, DataFormat::Float16_b).unwrap()
        };
        let (ta, tb, tc) = (t(&a), t(&b), t(&c));
        let q = |v: &[f32]| quantise(v, rows, cols, DataFormat::Float16_b);
        let (aq, bq, cq) = (q(&a), q(&b), q(&c));
        let u = tolerance::dest_u(p.fp32_acc);
        let tmp_rel = if p.fp32_acc {
            0.0
        } else {
            tolerance::pack_error_rel(DataFormat::Float16_b)
        };
        let trunc = if p.fp32_acc { 2f64.powi(-10) } else { 0.0 };

        // Gate.
        let got = el.gate(&ta, &tb).unwrap().to_host().unwrap();
        let tv: Vec<f64> = aq.iter().map(|&x| f64::from(x).tanh()).collect();
        let sv: Vec<f64> = bq
            .iter()
            .map(|&x| reference::sigmoid(f64::from(x)))
            .collect();
        let want: Vec<f64> = tv.iter().zip(&sv).map(|(x, y)| x * y).collect();
        check(&format!("{name} gate"), &p, cols, &got, &want, |i| {
            let (tt, ss) = (tv[i].abs(), sv[i].abs());
            let et = tolerance::sfpu_error(p.fp32_acc, tt);
            let es0 = tolerance::sfpu_error(p.fp32_acc, ss);
            let es = es0 + tmp_rel * (ss + es0);
            ss * et + tt * es + et * es + (trunc + 4.4 * u) * (tt + et) * (ss + es)
        });

        // Sums of 2, 3 (mean) and 4 with a scale.
        let inputs = [&ta, &tb, &tc, &ta];
        let vals = [&aq, &bq, &cq, &aq];
        for n in 2..=MAX_SUM_INPUTS {
            let scale = if n == 3 { 1.0 / 3.0 } else { 0.7 };
            let got = if n == 3 {
                el.mean(&inputs[..3]).unwrap()
            } else {
                el.scaled_sum(&inputs[..n], scale).unwrap()
            }
            .to_host()
            .unwrap();
            let scale = f64::from(scale);
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| scale * vals[..n].iter().map(|v| f64::from(v[i])).sum::<f64>())
                .collect();
            check(&format!("{name} sum of {n}"), &p, cols, &got, &want, |i| {
                let mut part = f64::from(vals[0][i]);
                let mut e = 0f64;
                for v in &vals[1..n] {
                    let x = f64::from(v[i]);
                    e += trunc * (part.abs() + e) + al(&p) * (part.abs() + e + x.abs());
                    part += x;
                    e += u * (part.abs() + e);
                }
                scale.abs() * e + u * (scale * part).abs() * 1.01
            });
        }
    }
}

#[test]
fn errors_name_the_problem() {
    let dev = device();
    let el = Eltwise::new(&dev, Precision::hifi()).unwrap();
    let a = DeviceTensor::from_host(&dev, 10, 20, &[0.5; 200], DataFormat::Float16_b).unwrap();
    let b = DeviceTensor::from_host(&dev, 10, 21, &[0.5; 210], DataFormat::Float16_b).unwrap();
    let e = el
        .binary(BinaryOp::Add, &a, &b, Broadcast::Row)
        .unwrap_err();
    assert!(
        matches!(e, OpError::ShapeMismatch { .. }) && e.to_string().contains("[1, 20]"),
        "{e}"
    );
    let e = el.gate(&a, &b).unwrap_err();
    assert!(matches!(e, OpError::ShapeMismatch { .. }), "{e}");
    let e = el.scaled_sum(&[&a, &a, &a, &a, &a], 0.2).unwrap_err();
    assert!(
        matches!(e, OpError::ShapeUnsupported { .. }) && e.to_string().contains("2..=4"),
        "{e}"
    );
    let e = el.unary(UnaryOp::LeakyRelu(f32::NAN), &a).unwrap_err();
    assert!(matches!(e, OpError::InvalidArgument { .. }), "{e}");
    // Float32 needs an fp32 DEST: as an input and as the output format.
    let f = DeviceTensor::from_host(&dev, 10, 20, &[0.5; 200], DataFormat::Float32).unwrap();
    let bf16_dest = Eltwise::new(&dev, Precision::bfp8_hifi2()).unwrap();
    let e = bf16_dest.unary(UnaryOp::Tanh, &f).unwrap_err();
    assert!(
        matches!(e, OpError::FormatUnsupported { .. }) && e.to_string().contains("fp32_acc"),
        "{e}"
    );
    let e = Eltwise::new(
        &dev,
        Precision::bfp8_hifi2().with_activations(DataFormat::Float32),
    )
    .unwrap_err();
    assert!(e.to_string().contains("fp32_acc"), "{e}");
    // The fp32 path expands broadcast operands itself: bfp8_b ones are refused.
    let row8 = DeviceTensor::from_host(&dev, 1, 20, &[0.5; 20], DataFormat::Bfp8_b).unwrap();
    let e = el
        .binary(BinaryOp::Add, &f, &row8, Broadcast::Row)
        .unwrap_err();
    assert!(
        matches!(e, OpError::FormatUnsupported { .. }) && e.to_string().contains("Float32"),
        "{e}"
    );
    assert!(Eltwise::new(&dev, Precision::hifi().with_activations(DataFormat::Bfp4_b)).is_err());
}

/// Float32 (the exact-fp32 path, `Precision::hifi_fp32` and mixes). Float32 inputs hold the f32
/// test data exactly and reach DEST unchanged (UnpackToDestFp32); bf16 inputs are compared on
/// their decoded values. Bounds, per element, from fp32 arithmetic (`u32 = 2^-24`):
/// - add / sub / mul on the SFPU: one fp32 rounding, `u32 |y|`;
/// - relu exact, leaky ReLU one rounding of `s x`: `u32 |y|`; tanh / sigmoid / gelu:
///   `tolerance::sfpu_error(true, |y|)` (ideal function rounded to fp32 plus the hardware
///   approximation allowance);
/// - gate: `|s| e_t + |t| e_s + e_t e_s + u32 |t s|` (product on the SFPU in fp32);
/// - scaled sum of n: `(n - 1)` fp32 additions, each `u32` of the running sum of |x|, times
///   |scale|, plus the scalar multiply's `u32 |y|`;
/// - output packing: Float32 0, bf16 `2^-8 |y|` (`tolerance::pack_error_rel`).
///
/// These bounds are 2^14 times tighter than the TF32 truncation (2^-10) the FPU path would add,
/// so a kernel that routed a Float32 operand through SrcA/SrcB fails them.
#[test]
fn float32_exact_path() {
    let dev = device();
    let u32r = 2f64.powi(-24);
    let fp32 = Precision::hifi_fp32();
    let el = Eltwise::new(&dev, fp32).unwrap().with_max_cores(4);
    let (rows, cols) = (45, 70);
    let mut rng = Rng::new(32);
    let a = rng.signed_vec(rows * cols, 0.25, 2.0);
    let ta = DeviceTensor::from_host(&dev, rows, cols, &a, DataFormat::Float32).unwrap();
    let av = |i: usize| f64::from(a[i]);

    // Binary with every broadcast (Float32 b).
    for bcast in [
        Broadcast::None,
        Broadcast::Row,
        Broadcast::Col,
        Broadcast::Scalar,
    ] {
        let (br, bc) = match bcast {
            Broadcast::None => (rows, cols),
            Broadcast::Row => (1, cols),
            Broadcast::Col => (rows, 1),
            Broadcast::Scalar => (1, 1),
        };
        let b = rng.signed_vec(br * bc, 0.25, 2.0);
        let tb = DeviceTensor::from_host(&dev, br, bc, &b, DataFormat::Float32).unwrap();
        let bv = |i: usize| f64::from(b[(i / cols % br) * bc + i % cols % bc]);
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul] {
            let y = el.binary(op, &ta, &tb, bcast).unwrap();
            assert_eq!((y.format(), y.shape()), (DataFormat::Float32, [rows, cols]));
            let got = y.to_host().unwrap();
            let want: Vec<f64> = (0..rows * cols)
                .map(|i| match op {
                    BinaryOp::Add => av(i) + bv(i),
                    BinaryOp::Sub => av(i) - bv(i),
                    BinaryOp::Mul => av(i) * bv(i),
                })
                .collect();
            let what = format!("fp32 {op:?} {bcast:?}");
            let (max, _) = check(&what, &fp32, cols, &got, &want, |i| u32r * want[i].abs());
            assert!(
                max > 0.0 || op != BinaryOp::Mul,
                "{what}: products are never all exact"
            );
        }
    }

    // Unary functions.
    for op in [
        UnaryOp::Relu,
        UnaryOp::LeakyRelu(0.1),
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Gelu,
    ] {
        let got = el.unary(op, &ta).unwrap().to_host().unwrap();
        let want: Vec<f64> = (0..rows * cols).map(|i| op.apply(av(i))).collect();
        check(
            &format!("fp32 {op:?}"),
            &fp32,
            cols,
            &got,
            &want,
            |i| match op {
                UnaryOp::Relu | UnaryOp::LeakyRelu(_) => u32r * want[i].abs(),
                _ => tolerance::sfpu_error(true, want[i].abs()),
            },
        );
    }

    // Gate and scaled sums.
    let b = rng.signed_vec(rows * cols, 0.05, 3.0);
    let c = rng.signed_vec(rows * cols, 0.05, 3.0);
    let tb = DeviceTensor::from_host(&dev, rows, cols, &b, DataFormat::Float32).unwrap();
    let tc = DeviceTensor::from_host(&dev, rows, cols, &c, DataFormat::Float32).unwrap();
    let got = el.gate(&ta, &tb).unwrap().to_host().unwrap();
    let tv: Vec<f64> = a.iter().map(|&x| f64::from(x).tanh()).collect();
    let sv: Vec<f64> = b
        .iter()
        .map(|&x| reference::sigmoid(f64::from(x)))
        .collect();
    let want: Vec<f64> = tv.iter().zip(&sv).map(|(x, y)| x * y).collect();
    check("fp32 gate", &fp32, cols, &got, &want, |i| {
        let (t, s) = (tv[i].abs(), sv[i].abs());
        let (et, es) = (
            tolerance::sfpu_error(true, t),
            tolerance::sfpu_error(true, s),
        );
        s * et + t * es + et * es + u32r * (t + et) * (s + es)
    });
    let vals = [&a, &b, &c, &a];
    let inputs = [&ta, &tb, &tc, &ta];
    for n in 2..=MAX_SUM_INPUTS {
        let scale = 0.3f32;
        let got = el
            .scaled_sum(&inputs[..n], scale)
            .unwrap()
            .to_host()
            .unwrap();
        let want: Vec<f64> = (0..rows * cols)
            .map(|i| f64::from(scale) * vals[..n].iter().map(|v| f64::from(v[i])).sum::<f64>())
            .collect();
        check(&format!("fp32 sum of {n}"), &fp32, cols, &got, &want, |i| {
            let s_abs: f64 = vals[..n].iter().map(|v| f64::from(v[i]).abs()).sum();
            (n as f64 - 1.0) * u32r * s_abs * f64::from(scale) + 1.01 * u32r * want[i].abs()
        });
    }
}

/// Mixed formats on the fp32 path: a Float32 residual stream plus a bf16 layer output written
/// as Float32, and Float32 inputs written as bf16 (bounds as in `float32_exact_path`, bf16
/// inputs compared on their decoded values, a bf16 output adds its packing `2^-8 |y|`).
#[test]
fn float32_mixed_formats() {
    let dev = device();
    let u32r = 2f64.powi(-24);
    let (rows, cols) = (40, 33);
    let mut rng = Rng::new(33);
    let a = rng.signed_vec(rows * cols, 0.25, 2.0);
    let b = rng.signed_vec(rows * cols, 0.25, 2.0);
    let ta = DeviceTensor::from_host(&dev, rows, cols, &a, DataFormat::Float32).unwrap();
    let tb16 = DeviceTensor::from_host(&dev, rows, cols, &b, DataFormat::Float16_b).unwrap();
    let tb32 = DeviceTensor::from_host(&dev, rows, cols, &b, DataFormat::Float32).unwrap();
    let bq = quantise(&b, rows, cols, DataFormat::Float16_b);

    // Float32 + bf16 -> Float32: exact add of the decoded bf16 value.
    let p = Precision::hifi_fp32();
    let got = Eltwise::new(&dev, p)
        .unwrap()
        .binary(BinaryOp::Add, &ta, &tb16, Broadcast::None)
        .unwrap()
        .to_host()
        .unwrap();
    let want: Vec<f64> = (0..rows * cols)
        .map(|i| f64::from(a[i]) + f64::from(bq[i]))
        .collect();
    check("Float32 + bf16 -> Float32", &p, cols, &got, &want, |i| {
        u32r * want[i].abs()
    });

    // Float32 - Float32 -> bf16 (Precision::hifi: bf16 output, fp32 DEST).
    let p = Precision::hifi();
    let y = Eltwise::new(&dev, p)
        .unwrap()
        .binary(BinaryOp::Sub, &ta, &tb32, Broadcast::None)
        .unwrap();
    assert_eq!(y.format(), DataFormat::Float16_b);
    let got = y.to_host().unwrap();
    let want: Vec<f64> = (0..rows * cols)
        .map(|i| f64::from(a[i]) - f64::from(b[i]))
        .collect();
    check("Float32 - Float32 -> bf16", &p, cols, &got, &want, |i| {
        u32r * want[i].abs()
    });

    // bfp8_b + Float32 -> Float32: the bfp8 tile is copied to DEST exactly (through SrcA).
    let tb8 = DeviceTensor::from_host(&dev, rows, cols, &b, DataFormat::Bfp8_b).unwrap();
    let b8 = quantise(&b, rows, cols, DataFormat::Bfp8_b);
    let p32 = Precision::hifi_fp32();
    let got = Eltwise::new(&dev, p32)
        .unwrap()
        .binary(BinaryOp::Mul, &ta, &tb8, Broadcast::None)
        .unwrap()
        .to_host()
        .unwrap();
    let want: Vec<f64> = (0..rows * cols)
        .map(|i| f64::from(a[i]) * f64::from(b8[i]))
        .collect();
    check(
        "Float32 * bfp8_b -> Float32",
        &p32,
        cols,
        &got,
        &want,
        |i| u32r * want[i].abs(),
    );

    // Format conversions: bf16 -> Float32 is exact; Float32 -> bf16 is the packer's rounding.
    let up = Eltwise::new(&dev, Precision::hifi_fp32()).unwrap();
    let y = up.convert(&tb16).unwrap();
    assert_eq!(y.format(), DataFormat::Float32);
    assert_eq!(y.to_host().unwrap(), bq, "bf16 -> Float32 must be exact");
    let down = Eltwise::new(&dev, Precision::hifi()).unwrap();
    let got = down.convert(&ta).unwrap().to_host().unwrap();
    let want: Vec<f64> = a.iter().map(|&v| f64::from(v)).collect();
    check("Float32 -> bf16", &p, cols, &got, &want, |_| 0.0);
}

/// Piper shapes (T = 300 frames, 192 channels; WN gate over 2 x 192): prints the docs rows.
/// The device comes from `Device::open_default`: the n150 simulator by default,
/// `TT_SIM_ARCH=blackhole` for p150.
#[test]
#[ignore = "expensive: cargo test --release --test op_eltwise -- --ignored --nocapture"]
fn piper_shapes() {
    let dev = device();
    let (rows, cols) = (300, 192);
    let mut all: Vec<(&str, Precision)> = precisions().to_vec();
    all.push(("Float32 in/out (hifi_fp32)", Precision::hifi_fp32()));
    for (name, p) in all {
        let el = Eltwise::new(&dev, p).unwrap();
        let mut rng = Rng::new(5);
        let a = rng.signed_vec(rows * cols, 0.05, 3.0);
        let b = rng.signed_vec(rows * cols, 0.05, 3.0);
        // Inputs in the output's format when it is Float32, else bf16.
        let fmt = if p.activations == DataFormat::Float32 {
            DataFormat::Float32
        } else {
            DataFormat::Float16_b
        };
        let ta = DeviceTensor::from_host(&dev, rows, cols, &a, fmt).unwrap();
        let tb = DeviceTensor::from_host(&dev, rows, cols, &b, fmt).unwrap();
        // Errors against f64 on the original f32 inputs (input rounding included).
        let report = |label: &str, op: EltwiseOp, inputs: &[&DeviceTensor], want: Vec<f64>| {
            let (y, stats) = el.run_op(op, inputs).unwrap();
            let got = y.to_host().unwrap();
            let n = want.len() as f64;
            let errs: Vec<f64> = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (f64::from(*g) - w).abs())
                .collect();
            let max = errs.iter().fold(0f64, |a, &b| a.max(b));
            let mean = errs.iter().sum::<f64>() / n;
            let max_ref = want.iter().fold(0f64, |a, &b| a.max(b.abs()));
            let us = stats.device_ns.map_or("-".to_string(), |ns| {
                format!("{:.1} ({})", ns as f64 / 1000.0, dev.arch().name())
            });
            println!(
                "| {label} [300, 192] | {name} | {max:.3e} | {mean:.3e} | {max_ref:.3e} | {us} |"
            );
        };
        let want = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x).tanh() * reference::sigmoid(f64::from(y)))
            .collect();
        report(
            "WN gate tanh(a)*sigmoid(b)",
            EltwiseOp::Gate,
            &[&ta, &tb],
            want,
        );
        let want = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| f64::from(x) + f64::from(y))
            .collect();
        let add = EltwiseOp::Binary(BinaryOp::Add, Broadcast::None);
        report("add (residual)", add, &[&ta, &tb], want);
        let leaky = UnaryOp::LeakyRelu(0.1);
        let want = a.iter().map(|&x| leaky.apply(f64::from(x))).collect();
        report("leaky_relu(0.1)", EltwiseOp::Unary(leaky), &[&ta], want);
        let want = a
            .iter()
            .zip(&b)
            .map(|(&x, &y)| (2.0 * f64::from(x) + f64::from(y)) / 3.0)
            .collect();
        let mean = EltwiseOp::Sum(1.0 / 3.0);
        report("mean of 3 (resblocks)", mean, &[&ta, &tb, &ta], want);
    }
}
