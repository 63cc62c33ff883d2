//! The rational-quadratic spline inverse on the simulator against the f64 reference
//! (`spline_inverse_reference`, itself checked against an independent forward spline in the
//! unit tests): random inputs inside and outside the tail bound, lengths that are not multiples
//! of 32, Float32 and bf16 parameters, the dual output and the fused output affine.
//!
//! # Tolerance (derived, per element)
//! The device evaluates the VITS formula in fp32 (unit roundoff u = 2^-24) with Newton-refined
//! reciprocals / square roots and polynomial exp / log1p (each within a few ulp). Every knot is
//! a running sum of at most K = 10 softmax terms scaled to [-5, 5], so each knot, the bin
//! width/height and `x - knot` carry an absolute error of at most ~`(K + 8) u * 2B` (~1.1e-5
//! with margin: `E_y = 64 u * B`). The inverse maps an error `E_y` in y-space to `E_y * s` in
//! x-space, where `s = dx/dy` is the local slope of the inverse (up to 1 / min_derivative =
//! 1e3), plus a direct error `E_x = 64 u * B` in the x-knots and the final `root * w + cumw`.
//! The bound per element is `E_x + E_y * (1 + s)` with `s` measured from the f64 reference by a
//! central difference at `y +- 1e-4 * max(1, |y|)` over the two neighbouring points (so a bin
//! edge between them is covered). Outside the tail bound the result must be bit exact. A bf16
//! output adds half a bf16 ulp of the value (at most `2^-8 |y|`).

use tt_kernels::ops::common::DeviceTensor;
use tt_kernels::ops::embed::{expand_durations, expand_reference};
use tt_kernels::ops::spline::{
    SplineParams, durations_from_logw, spline_forward_reference, spline_inverse,
    spline_inverse_reference,
};
use tt_safe::{Arch, DataFormat, Device};

#[path = "support/common.rs"]
mod common;

use common::Rng;

const U: f64 = 1.0 / (1u64 << 24) as f64;

fn bf16(v: f32) -> f32 {
    let b = v.to_bits();
    f32::from_bits(b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

/// `(x, p)`: `rows` inputs (about 1/4 outside the tail bound, some exactly on it, most made by
/// the forward spline from uniform points so the bins are hit evenly) and `[rows, 3K-1]`
/// parameters uniform in [-6, 6] (softmax logits after the 1/sqrt(192) scale stay within
/// [-0.44, 0.44], derivative logits give slopes 2.5e-3 .. 6).
fn data(rng: &mut Rng, rows: usize, sp: &SplineParams) -> (Vec<f32>, Vec<f32>) {
    let np = sp.num_params();
    let p: Vec<f32> = (0..rows * np)
        .map(|_| (rng.unit() * 12.0 - 6.0) as f32)
        .collect();
    let x = (0..rows)
        .map(|t| match t % 8 {
            0 => rng.nonzero(5.0001, 9.0),
            1 if t % 16 == 1 => 5.0,
            1 => -5.0,
            2 => rng.nonzero(5.5, 40.0),
            _ => {
                let u = rng.unit() * 10.0 - 5.0;
                spline_forward_reference(u, &p[t * np..(t + 1) * np], sp) as f32
            }
        })
        .collect();
    (x, p)
}

/// Checks `got` against the f64 reference on the (possibly bf16-rounded) parameters `p`.
fn check(label: &str, x: &[f32], p: &[f32], sp: &SplineParams, got: &[f32], out_bf16: bool) -> f64 {
    let np = sp.num_params();
    let b = f64::from(sp.tail_bound);
    let e = 64.0 * U * b;
    let mut worst_ratio = 0f64;
    for (t, (&xv, &g)) in x.iter().zip(got).enumerate() {
        let row = &p[t * np..(t + 1) * np];
        let xf = f64::from(xv);
        let want = spline_inverse_reference(xf, row, sp);
        if !(-b..=b).contains(&xf) {
            let expect = match sp.output_affine {
                None => xv,
                Some((m, s)) => (xv - m) * s,
            };
            let expect = if out_bf16 { bf16(expect) } else { expect };
            if sp.output_affine.is_none() {
                assert_eq!(
                    g, expect,
                    "{label}: row {t}: tail x = {xv} must map to itself"
                );
            } else {
                let tol = 4.0 * U * f64::from(expect).abs()
                    + if out_bf16 {
                        2f64.powi(-8) * f64::from(expect).abs()
                    } else {
                        0.0
                    };
                assert!(
                    (f64::from(g) - want).abs() <= tol,
                    "{label}: row {t}: tail {xv} -> {g}, want {want}"
                );
            }
            continue;
        }
        let h = 1e-4 * xf.abs().max(1.0);
        let lo = spline_inverse_reference((xf - h).max(-b), row, sp);
        let hi = spline_inverse_reference((xf + h).min(b), row, sp);
        let slope = ((hi - lo) / ((xf + h).min(b) - (xf - h).max(-b))).abs();
        let aff = sp.output_affine.map_or(1.0, |(_, s)| f64::from(s).abs());
        let mut tol = (e + e * (1.0 + slope)) * aff;
        if let Some((m, s)) = sp.output_affine {
            tol += 4.0 * U * (want.abs() + f64::from(m).abs() * f64::from(s).abs());
        }
        if out_bf16 {
            tol += 2f64.powi(-8) * want.abs() * 1.01;
        }
        let err = (f64::from(g) - want).abs();
        assert!(
            err <= tol,
            "{label}: row {t}: x = {xv}: device {g}, f64 {want}, error {err:.3e} > bound {tol:.3e} (slope {slope:.3e})"
        );
        worst_ratio = worst_ratio.max(err / tol);
    }
    eprintln!(
        "{label}: {} rows, worst error / bound = {worst_ratio:.3}",
        x.len()
    );
    worst_ratio
}

fn run_case(device: &Device, rows: usize, seed: u64, p_fmt: DataFormat, sp: &SplineParams) {
    let mut rng = Rng::new(seed);
    let (x, p) = data(&mut rng, rows, sp);
    let np = sp.num_params();
    let xd = DeviceTensor::from_host(device, rows, 1, &x, DataFormat::Float32).unwrap();
    let pd = DeviceTensor::from_host(device, rows, np, &p, p_fmt).unwrap();
    let out = spline_inverse(
        device,
        &xd,
        &pd,
        sp,
        DataFormat::Float32,
        Some(DataFormat::Float16_b),
    )
    .unwrap();
    // The reference sees the parameters as the device does (bf16-rounded when stored so).
    let p_dev: Vec<f32> = if p_fmt == DataFormat::Float16_b {
        p.iter().map(|&v| bf16(v)).collect()
    } else {
        p.clone()
    };
    let label = format!("T {rows} p {p_fmt:?} affine {:?}", sp.output_affine);
    let y = out.y.to_host().unwrap();
    assert!(out.y.pad_is_zero());
    // Every padding element (columns 1.., rows >= T) was written as zero.
    for t in [&out.y, out.y2.as_ref().unwrap()] {
        let padded_rows = t.tile_rows() * 32;
        let bytes = t.buffer().read().unwrap();
        let all = tt_safe::tiles::from_tiles(&bytes, padded_rows, 32, t.format()).unwrap();
        for r in 0..padded_rows {
            for c in 0..32 {
                if r >= rows || c > 0 {
                    assert_eq!(all[r * 32 + c], 0.0, "{label}: padding ({r}, {c})");
                }
            }
        }
    }
    check(&label, &x, &p_dev, sp, &y, false);
    let y2 = out.y2.as_ref().unwrap().to_host().unwrap();
    check(&format!("{label} (bf16 copy)"), &x, &p_dev, sp, &y2, true);
    // The bf16 copy is exactly the rounded fp32 result.
    for (a, b) in y.iter().zip(&y2) {
        assert_eq!(bf16(*a), *b);
    }
    assert!(out.stats.device_ns.is_some());
}

#[test]
fn spline_inverse_matches_f64_reference() {
    let device = common::sim(Arch::WormholeB0);
    let sp = SplineParams::vits(10, 192);
    for (rows, seed) in [(1usize, 1u64), (45, 2), (149, 3)] {
        run_case(&device, rows, seed, DataFormat::Float32, &sp);
    }
    run_case(&device, 77, 4, DataFormat::Float16_b, &sp);
    // Reverse ElementwiseAffine fused: (y - m) * exp(-logs).
    let mut aff = sp;
    aff.output_affine = Some((0.3125, 1.7));
    run_case(&device, 70, 5, DataFormat::Float32, &aff);
    // Other bin counts and a wider tail bound.
    let mut other = SplineParams::vits(4, 64);
    other.tail_bound = 3.0;
    run_case(&device, 33, 6, DataFormat::Float32, &other);
}

#[test]
fn spline_inverse_on_blackhole() {
    let device = common::sim(Arch::Blackhole);
    run_case(
        &device,
        100,
        7,
        DataFormat::Float32,
        &SplineParams::vits(10, 192),
    );
}

#[test]
fn spline_inverse_rejects_bad_shapes_and_formats() {
    let device = common::sim(Arch::WormholeB0);
    let sp = SplineParams::vits(10, 192);
    let x = DeviceTensor::from_host(&device, 40, 1, &[0.5; 40], DataFormat::Float32).unwrap();
    let p_bad =
        DeviceTensor::from_host(&device, 40, 28, &[0.1; 40 * 28], DataFormat::Float32).unwrap();
    let e = spline_inverse(&device, &x, &p_bad, &sp, DataFormat::Float32, None).unwrap_err();
    assert!(e.to_string().contains("3 bins - 1"), "{e}");
    let p = DeviceTensor::from_host(&device, 40, 29, &[0.1; 40 * 29], DataFormat::Bfp8_b).unwrap();
    let e = spline_inverse(&device, &x, &p, &sp, DataFormat::Float32, None).unwrap_err();
    assert!(e.to_string().contains("Float32 or Float16_b"), "{e}");
    let p = DeviceTensor::from_host(&device, 40, 29, &[0.1; 40 * 29], DataFormat::Float32).unwrap();
    let e = spline_inverse(&device, &x, &p, &sp, DataFormat::Bfp8_b, None).unwrap_err();
    assert!(e.to_string().contains("output"), "{e}");
}

/// Device durations `ceil(exp(logw) * length_scale)` against f64, then fed unchanged to the
/// duration expansion of tt-kernels (the index layout must match). Exact except where the f64
/// value lies within 1e-5 relative of an integer (the device exp is within a few fp32 ulp, and
/// the f32 input product rounds once more), where either neighbour is accepted.
#[test]
fn durations_from_logw_match_f64_and_feed_the_expansion() {
    let device = common::sim(Arch::WormholeB0);
    for (rows, seed, ls) in [(1usize, 21u64, 1.0f32), (77, 22, 1.0), (300, 23, 1.37)] {
        let mut rng = Rng::new(seed);
        let logw: Vec<f32> = (0..rows)
            .map(|i| match i % 10 {
                // exactly integer exp values and tiny ones (duration 1, or 0 when underflowing)
                0 => 2f32.ln(),
                1 => -30.0,
                2 => -120.0,
                _ => (rng.unit() * 6.0 - 3.0) as f32,
            })
            .collect();
        let lt = DeviceTensor::from_host(&device, rows, 1, &logw, DataFormat::Float32).unwrap();
        let (buf, total, stats) = durations_from_logw(&device, &lt, ls).unwrap();
        assert!(stats.device_ns.is_some());
        let bytes = buf.read().unwrap();
        let got: Vec<u32> = (0..rows)
            .map(|i| u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap()))
            .collect();
        let mut want_total = 0u64;
        for (i, (&l, &g)) in logw.iter().zip(&got).enumerate() {
            let v = f64::from(l).exp() * f64::from(ls);
            let c = v.ceil();
            let near = (v - v.round()).abs() <= 1e-5 * v.max(1.0);
            let ok = f64::from(g) == c || (near && (f64::from(g) - c).abs() <= 1.0);
            assert!(ok, "T {rows}: id {i}: logw {l}: device {g}, f64 ceil {c}");
            want_total += u64::from(g);
        }
        assert_eq!(total, want_total, "T {rows}: device total");
        let channels = 40;
        let x: Vec<f32> = (0..rows * channels)
            .map(|_| rng.nonzero(0.1, 2.0))
            .collect();
        let xd =
            DeviceTensor::from_host(&device, rows, channels, &x, DataFormat::Float16_b).unwrap();
        let cap = total as usize + 5;
        let (out, n) = expand_durations(&device, &xd, &buf, rows, cap).unwrap();
        assert_eq!(n as u64, total);
        let xb: Vec<f32> = x.iter().map(|&v| bf16(v)).collect();
        let (want, _) = expand_reference(&xb, channels, &got, cap);
        let out = out.to_host().unwrap();
        for (j, (a, b)) in out.iter().zip(&want).enumerate() {
            assert_eq!(f64::from(*a), *b, "T {rows}: expanded element {j}");
        }
        eprintln!("durations T {rows} (length scale {ls}): total {total} frames, exact");
    }
}
