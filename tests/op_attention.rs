//! Attention on the simulator vs the f64 reference `tt_kernels::ops::attention::reference`.
//!
//! # Error bound (per output element, derived; see `bound_row`)
//! Inputs q, k, v, rel_k, rel_v are bf16-exact here (the reference sees the same values), so all
//! error comes from the device arithmetic. `u_d` = DEST unit roundoff (2^-24 fp32 / 2^-8 bf16),
//! `u_s` = operand rounding into the source registers (TF32 2^-11 for fp32 intermediates, 0 for
//! bf16 data already exact, counted as 2^-8 when DEST is bf16), `pk` = packing to the
//! intermediate format (`pack_error_rel`), `mm(K)` = `matmul_compute_bound` relative factor,
//! `sfpu(y) = (u_d + 2^-6) y + 2^-12` (`tolerance::sfpu_error`).
//! 1. qs = q / sqrt(d) packed to bf16: relative `e_q = 2^-8 + u_d + 2^-23`.
//! 2. score s_j = qs.k_j (+ qs.rel_k[m] in the band, R packed to the intermediate format, then
//!    added in DEST and packed): `ds_j = (e_q + mm(d)) S_j + pk |R| + (2 u_s + u_d) S_j
//!    + pk |s_j|` with `S_j = sum |qs k| (+ sum |qs rel_k|)`.
//! 3. P_j = exp(s_j - m): the max m cancels in the normalisation, so only the subtraction
//!    (`(2 u_s + u_d)(|s_j| + |m|)`) and the score error matter: with `X = max_j (ds_j + sub_j)`
//!    and `gamma = u_d + 2^-6 + pk` (exp and packing, multiplicative), `P~_j / P_j` (up to the
//!    common factor) lies in `[e^-X (1 - gamma), e^X (1 + gamma)]`, plus the SFPU's absolute
//!    `2^-12` per weight.
//! 4. normalised weights: `|p~_j - p_j| <= (e^{2X} (1 + gamma) / (1 - gamma) - 1) p_j =: eps p_j`;
//!    the absolute terms add at most `T 2^-12 max|v| e^X / (1 - gamma)` (the row sum is at least
//!    `e^-X (1 - gamma)`: the largest weight is exp(0) = 1).
//! 5. row sum by reduce (2 roundings per key tile + MVMUL alignment `16 * 2^-12`), reciprocal
//!    (SFPU `u_d + 2^-6`, packed `pk`), read back `u_s`: relative `sigma`.
//! 6. P V (+ Pband rel_v): `mm(T)` relative to `A = sum_j p_j (|v_j| + |rel_v|)`, O packed `pk`,
//!    multiplied by the reciprocal (fidelity of the multiply `f`, `2 u_s + u_d`), packed to bf16
//!    `2^-8 |out|`.
//!
//! Total: `|out~ - out| <= (eps + sigma + mm(T) + pk + f + 2 u_s + u_d) (1 + 2^-6) A
//!        + T 2^-12 max|v| e^X / (1 - gamma) + 2^-8 (|out| + ...)`.
//! The bound is exponential in the score error X, which is what softmax does: with LoFi
//! (a 2^-4 relative product error) scores of magnitude ~4 move the weights by tens of percent.
//! The test data use q, k in +-1 (as after a LayerNorm and a 1x1 conv) so the scores are O(1).

#[path = "support/common.rs"]
mod common;

use common::{Rng, sim};
use proptest::prelude::*;
use tt_kernels::ops::attention::{AttentionKind, attention, attention_with_stats, reference};
use tt_kernels::ops::common::tolerance::{fidelity_rel, matmul_compute_bound, pack_error_rel};
use tt_kernels::ops::common::{DeviceTensor, OpError, Precision};
use tt_safe::{Arch, DataFormat, Device};

struct Data {
    t: usize,
    heads: usize,
    d: usize,
    w: usize,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    rk: Vec<f32>,
    rv: Vec<f32>,
}

fn data(t: usize, heads: usize, d: usize, w: usize, seed: u64) -> Data {
    let mut rng = Rng::new(seed);
    let c = heads * d;
    let mut g = |n: usize, a: f64| {
        (0..n)
            .map(|_| common::pack_bf16_ties_away(rng.nonzero(0.02 * a, a)))
            .collect::<Vec<f32>>()
    };
    Data {
        t,
        heads,
        d,
        w,
        q: g(t * c, 1.0),
        k: g(t * c, 1.0),
        v: g(t * c, 1.0),
        rk: g((2 * w + 1) * d, 1.0),
        rv: g((2 * w + 1) * d, 1.0),
    }
}

fn kind_of<'a>(x: &'a Data, which: u8) -> AttentionKind<'a> {
    match which {
        0 => AttentionKind::Plain { causal: false },
        1 => AttentionKind::Plain { causal: true },
        _ => AttentionKind::VitsRelative {
            rel_k: &x.rk,
            rel_v: &x.rv,
            window: x.w,
        },
    }
}

/// The format-dependent terms of the bound: `e_q` the relative error of the scaled q (and of
/// k) as the score matmul sees them, `in_rel` the relative error of v (and rel_v) as the PV
/// matmul sees them, `out_pack` the output packing.
#[derive(Clone, Copy)]
struct Io {
    e_q: f64,
    in_rel: f64,
    out_pack: f64,
}

impl Io {
    /// bf16 q, k, v and output (module doc): qs packed to bf16, output packed to bf16.
    fn bf16(p: &Precision) -> Io {
        let u_d = tolerance_u_d(p);
        Io {
            e_q: 2f64.powi(-8) + u_d + 2f64.powi(-23),
            in_rel: 0.0,
            out_pack: 2f64.powi(-8),
        }
    }

    /// The Float32 path (a Float32 input or output with fp32 DEST): qs and K^T are Float32
    /// (scaling one fp32 rounding `u_d`, the scale's own f32 rounding 2^-23), read as TF32 by
    /// the score matmul (qs and k each truncated, `2 * 2^-10`); v and rel_v are read as TF32
    /// (`2^-10`); the output packs with `pack_error_rel(out)` (Float32: 0).
    fn fp32(p: &Precision, out: DataFormat) -> Io {
        let u_d = tolerance_u_d(p);
        Io {
            e_q: u_d + 2f64.powi(-23) + 2.0 * 2f64.powi(-10),
            in_rel: 2f64.powi(-10),
            out_pack: pack_error_rel(out),
        }
    }
}

fn tolerance_u_d(p: &Precision) -> f64 {
    if p.fp32_acc {
        2f64.powi(-24)
    } else {
        2f64.powi(-8)
    }
}

/// The derived bound for every element of row `i` of head `h` (see the module doc).
fn bound_row(
    x: &Data,
    kind: AttentionKind<'_>,
    valid: usize,
    p: &Precision,
    h: usize,
    i: usize,
) -> Vec<f64> {
    bound_row_io(x, kind, valid, p, h, i, Io::bf16(p))
}

/// [`bound_row`] with the format-dependent terms `io`.
#[allow(clippy::too_many_arguments)]
fn bound_row_io(
    x: &Data,
    kind: AttentionKind<'_>,
    valid: usize,
    p: &Precision,
    h: usize,
    i: usize,
    io: Io,
) -> Vec<f64> {
    let (d, c, t) = (x.d, x.heads * x.d, x.t);
    let fp32 = p.fp32_acc;
    let u_d = if fp32 { 2f64.powi(-24) } else { 2f64.powi(-8) };
    let u_s = if fp32 { 2f64.powi(-11) } else { 2f64.powi(-8) };
    let im = p.intermediate_format();
    let pk = pack_error_rel(im);
    let add = 2.0 * u_s + u_d;
    let p16 = Precision {
        weights: DataFormat::Float16_b,
        ..*p
    };
    let e_q = io.e_q;
    let mm_d = matmul_compute_bound(d, &p16, DataFormat::Float16_b, 1.0);
    let scale = 1.0 / (d as f64).sqrt();
    let qs: Vec<f64> = (0..d)
        .map(|e| f64::from(x.q[i * c + h * d + e]) * scale)
        .collect();
    let (rel, causal, w) = match kind {
        AttentionKind::Plain { causal } => (false, causal, 0),
        AttentionKind::VitsRelative { window, .. } => (true, false, window),
    };
    let mut s = vec![f64::NEG_INFINITY; t];
    let mut ds = vec![0f64; t];
    for j in 0..t {
        if j >= valid || (causal && j > i) {
            continue;
        }
        let mut val: f64 = (0..d)
            .map(|e| qs[e] * f64::from(x.k[j * c + h * d + e]))
            .sum();
        let mut sabs: f64 = (0..d)
            .map(|e| (qs[e] * f64::from(x.k[j * c + h * d + e])).abs())
            .sum();
        let mut r_abs = 0.0;
        if rel && j + w >= i && j <= i + w {
            let m = j + w - i;
            let r: f64 = (0..d).map(|e| qs[e] * f64::from(x.rk[m * d + e])).sum();
            let ra: f64 = (0..d)
                .map(|e| (qs[e] * f64::from(x.rk[m * d + e])).abs())
                .sum();
            val += r;
            sabs += ra;
            r_abs = r.abs() + (e_q + mm_d) * ra;
        }
        s[j] = val;
        ds[j] =
            (e_q + mm_d) * sabs + pk * r_abs + add * sabs + pk * (val.abs() + sabs * (e_q + mm_d));
    }
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    // X bounds |(s~_j - m~) - (s_j - m)| up to the common shift; gamma the SFPU exp's and the
    // packer's multiplicative error; the weights' ratios P~_j / P_j then lie within
    // [e^-X (1 - gamma), e^X (1 + gamma)], so the normalised weights satisfy
    // |p~_j - p_j| <= (e^{2X} (1 + gamma) / (1 - gamma) - 1) p_j for any X.
    let mut big_x = 0f64;
    for j in 0..t {
        if s[j].is_finite() {
            big_x = big_x.max(ds[j] + add * (s[j].abs() + m.abs() + ds[j]));
        }
    }
    let gamma = u_d + 2f64.powi(-6) + pk;
    let eps_w = (2.0 * big_x).exp() * (1.0 + gamma) / (1.0 - gamma) - 1.0;
    let tk = t.div_ceil(32);
    let sigma = 16.0 * 2f64.powi(-12) + (2 * tk + 2) as f64 * u_d + u_d + 2f64.powi(-6) + pk + u_s;
    let mm_t = matmul_compute_bound(tk * 32, &p16, im, 1.0);
    let f = fidelity_rel(p.fidelity, im, im);
    let rel_fac = eps_w + sigma + mm_t + pk + f + add + io.in_rel;
    // Exact weights and output.
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    let vmax = x.v.iter().fold(0f64, |a, v| a.max(f64::from(v.abs())));
    let abs_term = t as f64 * 2f64.powi(-12) * vmax * big_x.exp() / (1.0 - gamma);
    (0..d)
        .map(|col| {
            let mut a = 0f64;
            let mut out = 0f64;
            for (j, ej) in e.iter().enumerate() {
                let pj = ej / sum;
                if pj == 0.0 {
                    continue;
                }
                let vj = f64::from(x.v[j * c + h * d + col]);
                let mut aj = vj.abs();
                out += pj * vj;
                if rel && j + w >= i && j <= i + w {
                    let rv = f64::from(x.rv[(j + w - i) * d + col]);
                    aj += rv.abs();
                    out += pj * rv;
                }
                a += pj * aj;
            }
            rel_fac * (1.0 + 2f64.powi(-6)) * a
                + abs_term
                + io.out_pack * (out.abs() + rel_fac * a + abs_term)
        })
        .collect()
}

fn check(
    device: &Device,
    x: &Data,
    which: u8,
    valid: Option<usize>,
    p: &Precision,
) -> (f64, f64, f64) {
    let c = x.heads * x.d;
    let bf = DataFormat::Float16_b;
    let up = |v: &[f32]| DeviceTensor::from_host(device, x.t, c, v, bf).unwrap();
    let kind = kind_of(x, which);
    let (out, stats) = attention_with_stats(
        device,
        [&up(&x.q), &up(&x.k), &up(&x.v)],
        x.heads,
        kind,
        valid,
        p,
    )
    .unwrap();
    if x.t >= 300 {
        eprintln!("attention T={} heads={} d={}: {stats}", x.t, x.heads, x.d);
    }
    let got = out.to_host().unwrap();
    let want = reference(&x.q, &x.k, &x.v, x.t, x.heads, kind, valid);
    let vl = valid.unwrap_or(x.t);
    let (mut max, mut sum, mut ratio) = (0f64, 0f64, 0f64);
    for h in 0..x.heads {
        for i in 0..x.t {
            let b = bound_row(x, kind, vl, p, h, i);
            for (col, &bc) in b.iter().enumerate() {
                let idx = i * c + h * x.d + col;
                let e = (f64::from(got[idx]) - want[idx]).abs();
                assert!(
                    e <= bc,
                    "kind {which} valid {valid:?} head {h} row {i} col {col}: {} vs {} (err {e:e} > bound {:e})",
                    got[idx],
                    want[idx],
                    bc
                );
                max = max.max(e);
                sum += e;
                ratio = ratio.max(e / bc);
            }
        }
    }
    (max, sum / got.len() as f64, ratio)
}

/// Float32 q, k, v and/or output (`Precision::hifi_fp32`, and the mixes with bf16) on every
/// kind and mask, with full-mantissa f32 data (not bf16-exact), against the f64 reference on
/// the f32 values. Bound: the module doc's with the Float32 terms of [`Io::fp32`] (TF32 reads
/// of qs, k, v and the relative embeddings, fp32 scaling, Float32 output unrounded).
#[test]
fn float32_attention() {
    let device = sim(Arch::WormholeB0);
    let mut x = data(45, 2, 64, 4, 11);
    let mut rng = Rng::new(12);
    for v in [&mut x.q, &mut x.k, &mut x.v, &mut x.rk, &mut x.rv] {
        for e in v.iter_mut() {
            // Full f32 mantissas: the TF32 truncation is exercised.
            *e = rng.nonzero(0.02, 1.0);
        }
    }
    let c = x.heads * x.d;
    let cases = [
        (DataFormat::Float32, Precision::hifi_fp32()),
        (DataFormat::Float32, Precision::hifi()),
        (DataFormat::Float16_b, Precision::hifi_fp32()),
    ];
    for (input, p) in cases {
        let (q, k, v) = if input == DataFormat::Float16_b {
            let r = |v: &[f32]| {
                v.iter()
                    .map(|&e| common::pack_bf16_ties_away(e))
                    .collect::<Vec<f32>>()
            };
            (r(&x.q), r(&x.k), r(&x.v))
        } else {
            (x.q.clone(), x.k.clone(), x.v.clone())
        };
        let xi = Data {
            q,
            k,
            v,
            rk: x.rk.clone(),
            rv: x.rv.clone(),
            ..x
        };
        let up = |v: &[f32]| DeviceTensor::from_host(&device, xi.t, c, v, input).unwrap();
        let (tq, tk, tv) = (up(&xi.q), up(&xi.k), up(&xi.v));
        for which in 0..3 {
            for valid in [None, Some(37)] {
                let kind = kind_of(&xi, which);
                let out = attention(&device, [&tq, &tk, &tv], xi.heads, kind, valid, &p).unwrap();
                assert_eq!(out.format(), p.activations);
                let got = out.to_host().unwrap();
                let want = reference(&xi.q, &xi.k, &xi.v, xi.t, xi.heads, kind, valid);
                let io = Io::fp32(&p, p.activations);
                let vl = valid.unwrap_or(xi.t);
                let mut max = 0f64;
                for h in 0..xi.heads {
                    for i in 0..xi.t {
                        let b = bound_row_io(&xi, kind, vl, &p, h, i, io);
                        for (col, &bc) in b.iter().enumerate() {
                            let idx = i * c + h * xi.d + col;
                            let e = (f64::from(got[idx]) - want[idx]).abs();
                            assert!(
                                e <= bc,
                                "{input:?} in, {:?} out, kind {which} valid {valid:?} ({h}, {i}, {col}): {} vs {} (err {e:e} > {bc:e})",
                                p.activations,
                                got[idx],
                                want[idx]
                            );
                            max = max.max(e);
                        }
                    }
                }
                eprintln!(
                    "{input:?} in, {:?} out, kind {which} valid {valid:?}: max {max:.3e}",
                    p.activations
                );
            }
        }
    }
}

/// Float32 without an fp32 DEST is refused, as input and as output format.
#[test]
fn float32_needs_fp32_acc() {
    let device = sim(Arch::WormholeB0);
    let x = data(8, 1, 32, 0, 5);
    let plain = AttentionKind::Plain { causal: false };
    let up = |v: &[f32], f| DeviceTensor::from_host(&device, 8, 32, v, f).unwrap();
    let f32s = [
        up(&x.q, DataFormat::Float32),
        up(&x.k, DataFormat::Float32),
        up(&x.v, DataFormat::Float32),
    ];
    let no_acc = Precision::bfp8_hifi2();
    let e = attention(
        &device,
        [&f32s[0], &f32s[1], &f32s[2]],
        1,
        plain,
        None,
        &no_acc,
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::FormatUnsupported { .. }) && e.to_string().contains("fp32_acc"),
        "{e}"
    );
    let bf = DataFormat::Float16_b;
    let b16 = [up(&x.q, bf), up(&x.k, bf), up(&x.v, bf)];
    let e = attention(
        &device,
        [&b16[0], &b16[1], &b16[2]],
        1,
        plain,
        None,
        &no_acc.with_activations(DataFormat::Float32),
    )
    .unwrap_err();
    assert!(e.to_string().contains("fp32_acc"), "{e}");
}

#[test]
fn all_kinds_masks_and_precisions_unaligned() {
    let device = sim(Arch::WormholeB0);
    let x = data(45, 2, 64, 4, 1);
    for (name, p) in Precision::presets() {
        for which in 0..3 {
            for valid in [None, Some(37)] {
                let (max, mean, ratio) = check(&device, &x, which, valid, &p);
                eprintln!(
                    "T=45 {name} kind {which} valid {valid:?}: max {max:.3e} mean {mean:.3e} ({ratio:.2} of bound)"
                );
            }
        }
    }
}

#[test]
fn aligned_blackhole_vits() {
    let device = sim(Arch::Blackhole);
    let x = data(64, 1, 32, 2, 2);
    check(&device, &x, 2, None, &Precision::hifi());
    check(&device, &x, 1, Some(50), &Precision::bfp8_hifi2());
}

#[test]
// The Piper encoder's attention: T = 300, 2 heads of 96, window 4, 10 padded keys (~10 s).
fn piper_encoder_t300() {
    let device = sim(Arch::WormholeB0);
    let x = data(300, 2, 96, 4, 3);
    for (name, p) in Precision::presets() {
        let (max, mean, ratio) = check(&device, &x, 2, Some(290), &p);
        eprintln!("piper T=300 {name}: max {max:.3e} mean {mean:.3e} ({ratio:.2} of bound)");
    }
    let bh = sim(Arch::Blackhole);
    let (max, mean, ratio) = check(&bh, &x, 2, Some(290), &Precision::hifi());
    eprintln!(
        "piper T=300 blackhole bf16/HiFi4/fp32acc: max {max:.3e} mean {mean:.3e} ({ratio:.2} of bound)"
    );
}

#[test]
fn clear_errors() {
    let device = sim(Arch::WormholeB0);
    let x = data(8, 2, 48, 20, 4);
    let bf = DataFormat::Float16_b;
    let up = |v: &[f32]| DeviceTensor::from_host(&device, 8, 96, v, bf).unwrap();
    let (q, k, v) = (up(&x.q), up(&x.k), up(&x.v));
    let p = Precision::hifi();
    let e = attention(
        &device,
        [&q, &k, &v],
        2,
        AttentionKind::Plain { causal: false },
        None,
        &p,
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::ShapeUnsupported { .. }) && e.to_string().contains("multiple of 32"),
        "{e}"
    );
    let kind = AttentionKind::VitsRelative {
        rel_k: &x.rk,
        rel_v: &x.rv,
        window: 20,
    };
    let x3 = data(8, 3, 32, 20, 5);
    let up3 = |v: &[f32]| DeviceTensor::from_host(&device, 8, 96, v, bf).unwrap();
    let e = attention(
        &device,
        [&up3(&x3.q), &up3(&x3.k), &up3(&x3.v)],
        3,
        kind,
        None,
        &p,
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("window 20") && e.to_string().contains("0..=15"),
        "{e}"
    );
    let e = attention(
        &device,
        [&q, &k, &v],
        3,
        AttentionKind::Plain { causal: true },
        Some(9),
        &p,
    )
    .unwrap_err();
    assert!(e.to_string().contains("valid_len 9"), "{e}");

    // A sequence whose K^T, V and score row do not fit one core's L1: the error names L1.
    let t = 6000;
    let long = vec![0.25f32; t * 96];
    let ul = DeviceTensor::from_host(&device, t, 96, &long, bf).unwrap();
    let e = attention(
        &device,
        [&ul, &ul, &ul],
        1,
        AttentionKind::Plain { causal: false },
        None,
        &p,
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::ShapeUnsupported { .. }) && e.to_string().contains("bytes of L1"),
        "{e}"
    );

    // The split path keeps 3 Float32 tiles per key tile: 2 heads of 96 fit up to T = 2560 on
    // Wormhole (80 key tiles); beyond that the error names L1 and the longest T that fits.
    let f = DataFormat::Float32;
    let t = 2600;
    let long = vec![0.25f32; t * 192];
    let ul = DeviceTensor::from_host(&device, t, 192, &long, f).unwrap();
    let e = attention(
        &device,
        [&ul, &ul, &ul],
        2,
        AttentionKind::Plain { causal: false },
        None,
        &split_precision(),
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::ShapeUnsupported { .. })
            && e.to_string().contains("bytes of L1")
            && e.to_string().contains("T <= 2560 with head size 96"),
        "{e}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]
    #[test]
    fn small_shapes(t in 1usize..70, heads in 1usize..3, dt in 1usize..3, w in 0usize..6,
                    which in 0u8..3, cut in 0usize..10, seed in any::<u64>()) {
        let device = sim(Arch::WormholeB0);
        let x = data(t, heads, 32 * dt, w, seed);
        let valid = if cut == 0 || cut >= t { None } else { Some(t - cut) };
        check(&device, &x, which, valid, &Precision::hifi());
    }
}

/// Full-mantissa f32 data (not bf16-exact): the TF32 truncation is exercised.
fn data_f32(t: usize, heads: usize, d: usize, w: usize, seed: u64) -> Data {
    let mut x = data(t, heads, d, w, seed);
    let mut rng = Rng::new(seed ^ 0x5EED);
    for v in [&mut x.q, &mut x.k, &mut x.v, &mut x.rk, &mut x.rv] {
        for e in v.iter_mut() {
            *e = rng.nonzero(0.02, 1.0);
        }
    }
    x
}

/// Runs attention (`kind_of(x, which)`) on Float32 q, k, v with `p`; returns the output, the f64 reference and
/// the run statistics.
fn run_f32(
    device: &Device,
    x: &Data,
    which: u8,
    valid: Option<usize>,
    p: &Precision,
) -> (Vec<f32>, Vec<f64>, tt_safe::RunStats) {
    let c = x.heads * x.d;
    let up = |v: &[f32]| DeviceTensor::from_host(device, x.t, c, v, DataFormat::Float32).unwrap();
    let kind = kind_of(x, which);
    let (out, stats) = attention_with_stats(
        device,
        [&up(&x.q), &up(&x.k), &up(&x.v)],
        x.heads,
        kind,
        valid,
        p,
    )
    .unwrap();
    let got = out.to_host().unwrap();
    let want = reference(&x.q, &x.k, &x.v, x.t, x.heads, kind, valid);
    (got, want, stats)
}

fn split_precision() -> Precision {
    Precision {
        activations_lo: true,
        ..Precision::hifi_fp32()
    }
}

/// The derived bound of the split path (`Precision::activations_lo`, Float32 q, k, v, fp32 DEST,
/// HiFi4) for every element of row `i` of head `h`; VITS kind or plain, `valid` keys.
///
/// With `u = 2^-24` (fp32 rounding: DEST accumulation, SFPU add / sub / mul / exp / recip as the
/// simulator's SFPU rounds them once; hardware's exp / recip approximations are not modelled)
/// and every matmul operand split into `hi = x` with the low 14 mantissa bits cleared and
/// `lo = x - hi` (`|lo| < 2^-9 |x|`), a split matmul `sum_k a_k b_k` is computed with error at
/// most `e_p S + n u S`, `S = sum_k |a_k b_k|`, where `e_p` adds up:
/// - `2^-18` the dropped `lo lo` term; `2^-18` `b_lo` read by SrcA's 10 bits (`2^-9` of it);
///   `2^-19` `a_lo` read as TF32 through SrcB (`2^-10` of it);
/// - `2^-16`: the `hi hi` products are exact and alone in their MVMUL group (masked in0), so
///   they are never aligned; the two `lo` matmuls are aligned like any MVMUL, `16 * 2^-12` of
///   their absolute sums (`tolerance::matmul_compute_bound`), each at most `2^-9 S`;
///
/// and DEST rounds once per MVMUL (8 per tile matmul, 10 tile matmuls per split operand tile,
/// `n` in all), `u` of the running absolute sum each. Then (module doc steps 1-6 with these
/// terms): qs has `2u` (scale and product rounding); the score error is
/// `ds_j <= (e_p + 2u + n_s u) S_j + u |s_j|` (bias add), the shift adds `u |s_j - m|`, exp `u`:
/// with `X = max_j (ds_j + u (|s_j| + |m| + ds_j))` the normalised weights are within
/// `eps_w = e^{2X} (1 + u)^2 / (1 - u)^2 - 1` relative; the row sum (split matmul with ones)
/// `sigma = 2^-19 + 2^-16 + n_r u`, its reciprocal `u`; `P V` (+ band) `e_p + n_v u`; the final
/// multiply `u`; the Float32 output is not rounded.
fn split_bound_row(
    x: &Data,
    rel: bool,
    causal: bool,
    valid: usize,
    h: usize,
    i: usize,
) -> Vec<f64> {
    let (d, c, t, w) = (x.d, x.heads * x.d, x.t, x.w);
    let u = 2f64.powi(-24);
    let e_p = 2f64.powi(-18) + 2f64.powi(-18) + 2f64.powi(-19) + 2f64.powi(-16);
    let tk = t.div_ceil(32);
    let (dt, band) = (d / 32, if rel { 1 } else { 0 });
    let n_s = (80 * (dt + band)) as f64;
    let n_r = (8 * 9 * tk) as f64;
    let n_v = (80 * (tk + band)) as f64;
    let scale = 1.0 / (d as f64).sqrt();
    let qs: Vec<f64> = (0..d)
        .map(|e| f64::from(x.q[i * c + h * d + e]) * scale)
        .collect();
    let in_band = |j: usize| rel && j + w >= i && j <= i + w;
    let mut s = vec![f64::NEG_INFINITY; t];
    let mut ds = vec![0f64; t];
    for j in 0..t {
        if j >= valid || (causal && j > i) {
            continue;
        }
        let (mut val, mut sabs) = (0f64, 0f64);
        for (qe, ke) in qs.iter().zip(&x.k[j * c + h * d..j * c + h * d + d]) {
            let p = qe * f64::from(*ke);
            val += p;
            sabs += p.abs();
        }
        if in_band(j) {
            for (qe, re) in qs.iter().zip(&x.rk[(j + w - i) * d..(j + w - i + 1) * d]) {
                let p = qe * f64::from(*re);
                val += p;
                sabs += p.abs();
            }
        }
        s[j] = val;
        ds[j] = (e_p + 2.0 * u + n_s * u) * sabs + u * val.abs();
    }
    let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let big_x = (0..t)
        .filter(|&j| s[j].is_finite())
        .map(|j| ds[j] + u * (s[j].abs() + m.abs() + ds[j]))
        .fold(0f64, f64::max);
    let eps_w = (2.0 * big_x).exp() * (1.0 + u).powi(2) / (1.0 - u).powi(2) - 1.0;
    let sigma = 2f64.powi(-19) + 2f64.powi(-16) + n_r * u + u;
    let rel_fac = eps_w + sigma + e_p + n_v * u + u;
    let e: Vec<f64> = s.iter().map(|v| (v - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    (0..d)
        .map(|col| {
            let mut a = 0f64;
            for (j, ej) in e.iter().enumerate() {
                let pj = ej / sum;
                let mut aj = f64::from(x.v[j * c + h * d + col]).abs();
                if in_band(j) {
                    aj += f64::from(x.rv[(j + w - i) * d + col]).abs();
                }
                a += pj * aj;
            }
            rel_fac * (1.0 + 2.0 * rel_fac) * a
        })
        .collect()
}

/// Max |error| over the output, and the largest error / bound ratio of the split path.
fn split_errors(x: &Data, got: &[f32], want: &[f64], which: u8, valid: usize) -> (f64, f64) {
    let c = x.heads * x.d;
    let (rel, causal) = (which == 2, which == 1);
    let (mut max, mut ratio) = (0f64, 0f64);
    for h in 0..x.heads {
        for i in 0..x.t {
            let b = split_bound_row(x, rel, causal, valid, h, i);
            for (col, &bc) in b.iter().enumerate() {
                let idx = i * c + h * x.d + col;
                let e = (f64::from(got[idx]) - want[idx]).abs();
                assert!(
                    e <= bc,
                    "split T={} d={} kind {which} ({h}, {i}, {col}): {} vs {} (err {e:e} > bound {bc:e})",
                    x.t,
                    x.d,
                    got[idx],
                    want[idx]
                );
                max = max.max(e);
                ratio = ratio.max(e / bc);
            }
        }
    }
    (max, ratio)
}

/// `activations_lo` on Float32 q, k, v (full f32 mantissas) against the f64 reference on the
/// same values: within [`split_bound_row`] everywhere, and at least 100x below the unsplit
/// Float32 path's error on the same case (measured: about 2^-19 vs 2^-7 of the output scale).
/// VITS relative attention (window 4) with a key-padding mask, T = 45 (d = 96) and T = 70
/// (d = 64), 2 heads; plus a causal plain case.
#[test]
fn split_float32_attention() {
    let device = sim(Arch::WormholeB0);
    for (t, d, seed, which) in [
        (45usize, 96usize, 21u64, 2u8),
        (70, 64, 22, 2),
        (45, 64, 23, 1),
    ] {
        let x = data_f32(t, 2, d, 4, seed);
        let valid = t - 6;
        let (got_u, want, _) = run_f32(&device, &x, which, Some(valid), &Precision::hifi_fp32());
        let (got, want_s, _) = run_f32(&device, &x, which, Some(valid), &split_precision());
        assert_eq!(want, want_s);
        let unsplit = got_u
            .iter()
            .zip(&want)
            .fold(0f64, |a, (g, w)| a.max((f64::from(*g) - w).abs()));
        let (split, ratio) = split_errors(&x, &got, &want, which, valid);
        let scale = want.iter().fold(0f64, |a, w| a.max(w.abs()));
        eprintln!(
            "T={t} d={d} kind {which}: split max err {split:.3e} (2^{:.1} of the output scale \
             {scale:.3}, {ratio:.3} of the bound), unsplit {unsplit:.3e} (2^{:.1}), {:.0}x",
            (split / scale).log2(),
            (unsplit / scale).log2(),
            unsplit / split
        );
        assert!(
            split * 100.0 <= unsplit,
            "T={t} d={d}: split error {split:e} is not 100x below the unsplit {unsplit:e}"
        );
    }
    // Blackhole (another grid and L1): the same kernel, within the bound.
    let bh = sim(Arch::Blackhole);
    let x = data_f32(40, 1, 64, 3, 24);
    let (got, want, _) = run_f32(&bh, &x, 2, Some(35), &split_precision());
    let (split, ratio) = split_errors(&x, &got, &want, 2, 35);
    eprintln!("blackhole T=40 d=64: split max err {split:.3e} ({ratio:.3} of the bound)");
}

/// The split path at the size the report quotes (T = 150, 2 heads of 96, window 4, 6 padded
/// keys): bound, gain and the device-time ratio (simulator estimate) printed.
#[test]
fn split_t150_device_time() {
    let device = sim(Arch::WormholeB0);
    let x = data_f32(150, 2, 96, 4, 31);
    let valid = 144;
    let (got_u, want, su) = run_f32(&device, &x, 2, Some(valid), &Precision::hifi_fp32());
    let (got, _, ss) = run_f32(&device, &x, 2, Some(valid), &split_precision());
    let unsplit = got_u
        .iter()
        .zip(&want)
        .fold(0f64, |a, (g, w)| a.max((f64::from(*g) - w).abs()));
    let (split, ratio) = split_errors(&x, &got, &want, 2, valid);
    eprintln!(
        "T=150 d=96: split max err {split:.3e} ({ratio:.3} of the bound), unsplit {unsplit:.3e}; \
         split {ss}; unsplit {su}; device time ratio {:.2}",
        ss.device_ns.unwrap_or(0) as f64 / su.device_ns.unwrap_or(1) as f64
    );
    assert!(split * 100.0 <= unsplit, "{split:e} vs {unsplit:e}");
}

/// activations_lo needs Float32 inputs and HiFi4; weights_lo is ignored (no weights here): the
/// result is bit-identical to the same precision without it.
#[test]
fn split_flags() {
    let device = sim(Arch::WormholeB0);
    let x = data(40, 1, 32, 2, 41);
    let kind = kind_of(&x, 2);
    let up = |v: &[f32], f| DeviceTensor::from_host(&device, 40, 32, v, f).unwrap();
    let bf = DataFormat::Float16_b;
    let b16 = [up(&x.q, bf), up(&x.k, bf), up(&x.v, bf)];
    let e = attention(
        &device,
        [&b16[0], &b16[1], &b16[2]],
        1,
        kind,
        None,
        &split_precision(),
    )
    .unwrap_err();
    assert!(
        matches!(e, OpError::InvalidArgument { .. }) && e.to_string().contains("Float32 q, k, v"),
        "{e}"
    );
    let f = DataFormat::Float32;
    let f32s = [up(&x.q, f), up(&x.k, f), up(&x.v, f)];
    let hifi2 = Precision {
        fidelity: tt_safe::MathFidelity::HiFi2,
        ..split_precision()
    };
    let e = attention(
        &device,
        [&f32s[0], &f32s[1], &f32s[2]],
        1,
        kind,
        None,
        &hifi2,
    )
    .unwrap_err();
    assert!(e.to_string().contains("HiFi4"), "{e}");
    let run = |p: &Precision| {
        attention(&device, [&f32s[0], &f32s[1], &f32s[2]], 1, kind, None, p)
            .unwrap()
            .to_host()
            .unwrap()
    };
    for base in [Precision::hifi_fp32(), split_precision()] {
        let with_w = Precision {
            weights_lo: true,
            ..base
        };
        let (a, b) = (run(&base), run(&with_w));
        assert!(
            a.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
            "weights_lo changed the result"
        );
    }
}

/// The Piper encoder's size with split operands (T = 300, 2 heads of 96, window 4, 10 padded
/// keys): within the bound and 100x below the unsplit error. About 5 s of simulation.
#[test]
#[ignore = "expensive: cargo test -p tt-kernels --test op_attention -- --ignored split_piper_t300"]
fn split_piper_t300() {
    let device = sim(Arch::WormholeB0);
    let x = data_f32(300, 2, 96, 4, 32);
    let valid = 290;
    let (got_u, want, su) = run_f32(&device, &x, 2, Some(valid), &Precision::hifi_fp32());
    let (got, _, ss) = run_f32(&device, &x, 2, Some(valid), &split_precision());
    let unsplit = got_u
        .iter()
        .zip(&want)
        .fold(0f64, |a, (g, w)| a.max((f64::from(*g) - w).abs()));
    let (split, ratio) = split_errors(&x, &got, &want, 2, valid);
    eprintln!(
        "T=300 d=96: split max err {split:.3e} ({ratio:.3} of the bound), unsplit {unsplit:.3e}; \
         split {ss}; unsplit {su}"
    );
    assert!(split * 100.0 <= unsplit, "{split:e} vs {unsplit:e}");
}

/// Long sequences with split operands (the golden `long` sentence has 513 phoneme ids, a Piper
/// voice sees up to about 1000): only a row of scores and P_lo stay resident (3 Float32 tiles
/// per key tile), K^T, V and the split P are formed one key tile at a time. T = 650 (not a
/// multiple of 32; the former resident-K^T/V/P plan allowed T <= 640 with d = 32, 448 with
/// d = 96), one head of 32, causal: within [`split_bound_row`] against the f64 reference.
#[test]
fn split_long_causal_t650() {
    let device = sim(Arch::WormholeB0);
    let x = data_f32(650, 1, 32, 0, 51);
    let valid = 641;
    let (got, want, stats) = run_f32(&device, &x, 1, Some(valid), &split_precision());
    let (split, ratio) = split_errors(&x, &got, &want, 1, valid);
    eprintln!("T=650 d=32 causal: split max err {split:.3e} ({ratio:.3} of the bound); {stats}");
}

/// The longest Piper sentences with split operands: T = 1100 (not a multiple of 32), 2 heads of
/// 96, VITS window 4, 9 padded keys, on Wormhole and Blackhole: within [`split_bound_row`]
/// against the f64 reference, and 100x below the unsplit Float32 path's error (which still keeps
/// K^T and V resident: about 1.26 MB of L1 at this size).
#[test]
#[ignore = "expensive (~15 s in release, far longer in debug): cargo test --release -p tt-kernels --test op_attention -- --ignored split_piper_t1100"]
fn split_piper_t1100() {
    let x = data_f32(1100, 2, 96, 4, 52);
    let valid = 1091;
    for arch in [Arch::WormholeB0, Arch::Blackhole] {
        let device = sim(arch);
        let (got, want, ss) = run_f32(&device, &x, 2, Some(valid), &split_precision());
        let (split, ratio) = split_errors(&x, &got, &want, 2, valid);
        let scale = want.iter().fold(0f64, |a, w| a.max(w.abs()));
        eprintln!(
            "{arch:?} T=1100 d=96: split max err {split:.3e} (2^{:.1} of the output scale, \
             {ratio:.3} of the bound); {ss}",
            (split / scale).log2()
        );
        if arch == Arch::WormholeB0 {
            let (got_u, _, _) = run_f32(&device, &x, 2, Some(valid), &Precision::hifi_fp32());
            let unsplit = got_u
                .iter()
                .zip(&want)
                .fold(0f64, |a, (g, w)| a.max((f64::from(*g) - w).abs()));
            eprintln!("T=1100 unsplit max err {unsplit:.3e}");
            assert!(split * 100.0 <= unsplit, "{split:e} vs {unsplit:e}");
        }
    }
}

/// The split path (and the plain Float32 path) with the simulator's `llk` SFPU model: the
/// hardware's `recip_tile` algorithm (legacy_compat, ~9.4 bits) and exp, which the kernels'
/// Newton-Raphson steps must bring back to fp32 grade. The model is chosen once per process by
/// `TT_SIM_SFPU` (tt-sim has no programmatic override), so this test re-runs this test binary
/// for `split_float32_attention` (the split bound, unchanged) and `float32_attention` with
/// `TT_SIM_SFPU=llk` and asserts that both ran and passed. Without the refinement the split
/// bound fails under `llk` (the reciprocal alone is off by up to 1.5e-3 relative).
#[test]
fn split_and_float32_under_llk_sfpu_model() {
    let exe = std::env::current_exe().expect("the test binary's own path (std::env::current_exe)");
    let tests = ["split_float32_attention", "float32_attention"];
    let out = std::process::Command::new(exe)
        .args(tests)
        .args(["--exact", "--test-threads=1"])
        .env("TT_SIM_SFPU", "llk")
        .output()
        .expect("re-running the test binary with TT_SIM_SFPU=llk");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "under TT_SIM_SFPU=llk: {}\n{stdout}\n{stderr}",
        out.status
    );
    for t in tests {
        assert!(
            stdout.contains(&format!("test {t} ... ok")),
            "{t} did not run under TT_SIM_SFPU=llk:\n{stdout}"
        );
    }
}
