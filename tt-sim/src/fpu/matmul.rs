//! Tile matmul (`matmul_tiles`): DEST += in0 x in1, issued as the Wormhole B0 LLK issues it
//! (`llk_math_matmul.h`): for each fidelity phase, 16 MVMULs covering the four DEST faces, each
//! DEST face getting the product over K = 0..15 first and K = 16..31 second. Each MVMUL output
//! datum sums 16 products in two groups of eight (see [`super::core::mvmul_ref`]) and is rounded
//! into DEST. So, per output datum, the DEST update sequence is
//! `(phase 0, K 0..15), (phase 0, K 16..31), (phase 1, K 0..15), ...`.
//!
//! The fast path decomposes both operands once per call (exponents, mantissa slices, signs, in
//! K-contiguous arrays) and runs branch-light integer loops; `tests::matmul_slow` is the
//! straightforward MVMUL-by-MVMUL version it is checked against bit for bit.

use super::core::{self, Term, accum_normalize_encode, exp_prod_adj};
use super::{DestTile, FpuConfig, SrcTile, dest_store, face_index};

/// Exponent given to a zero operand so that every product with it is far below any real
/// product (and the group maximum stays <= 0 when all products are zero).
const ZERO_EXP: i32 = -(1 << 20);

/// One operand decomposed along K: for each of 32 rows (in0) or columns (in1), 4 groups of 8 K
/// entries (the MVMUL product groups: K 0..7, 8..15, 16..23, 24..31).
struct Decomp {
    exp: [[[i32; 8]; 4]; 32],
    sign: [[[u32; 8]; 4]; 32],
    /// Mantissa slice for this operand's "high" and "low" phase.
    hi: [[[u32; 8]; 4]; 32],
    lo: [[[u32; 8]; 4]; 32],
}

impl Decomp {
    fn new() -> Box<Self> {
        Box::new(Self {
            exp: [[[0; 8]; 4]; 32],
            sign: [[[0; 8]; 4]; 32],
            hi: [[[0; 8]; 4]; 32],
            lo: [[[0; 8]; 4]; 32],
        })
    }

    fn set(&mut self, line: usize, k: usize, v: u32, is_a: bool) {
        let (g, i) = (k / 8, k % 8);
        if core::src_is_zero(v) {
            self.exp[line][g][i] = ZERO_EXP;
            self.sign[line][g][i] = 0;
            self.hi[line][g][i] = 0;
            self.lo[line][g][i] = 0;
        } else {
            let m = core::man11(v);
            self.exp[line][g][i] = core::exp8(v);
            self.sign[line][g][i] = (v >> 18) & 1;
            if is_a {
                self.hi[line][g][i] = core::a_slice(m, 0);
                self.lo[line][g][i] = core::a_slice(m, 1);
            } else {
                self.hi[line][g][i] = core::b_slice(m, 0);
                self.lo[line][g][i] = core::b_slice(m, 2);
            }
        }
    }
}

/// Phase-independent part of one product group: the largest product exponent (without the
/// phase re-bias), per-product alignment factors 2^(30 - d) (d = distance to the largest
/// exponent, clamped to 30) and per-product sign masks (0 or -1).
#[derive(Clone, Copy)]
struct GroupAlign {
    emax: i32,
    scale: [u64; 8],
    neg: [i32; 8],
}

#[inline(always)]
fn group_align(ea: &[i32; 8], eb: &[i32; 8], sa: &[u32; 8], sb: &[u32; 8]) -> GroupAlign {
    let mut e = [0i32; 8];
    let mut emax = i32::MIN;
    for i in 0..8 {
        e[i] = ea[i] + eb[i];
        emax = emax.max(e[i]);
    }
    let mut scale = [0u64; 8];
    let mut neg = [0i32; 8];
    for i in 0..8 {
        let d = ((emax - e[i]) as u32).min(30);
        scale[i] = 1u64 << (30 - d);
        neg[i] = -((sa[i] ^ sb[i]) as i32);
    }
    GroupAlign { emax, scale, neg }
}

/// One group of eight products in one phase -> aligned term. Rounding a product m shifted right
/// by d half-up, `((m << 1) + (1 << d)) >> (d + 1)`, equals `(m * 2^(30-d) + 2^29) >> 30` for
/// m < 2^12 and d <= 30 (both are floor(m / 2^d + 1/2)).
#[inline(always)]
fn group_term(al: &GroupAlign, ma: &[u32; 8], mb: &[u32; 8], adj: i32) -> Term {
    let exp_sop = al.emax + adj;
    if exp_sop <= 0 {
        return Term::default();
    }
    let mut sum = 0i32;
    for i in 0..8 {
        let m = (ma[i] * mb[i]) as u64;
        let r = ((m * al.scale[i] + (1 << 29)) >> 30) as i32;
        sum += (r ^ al.neg[i]) - al.neg[i];
    }
    let (sign, mag) = if sum < 0 {
        (1, (-sum) as u32)
    } else {
        (0, sum as u32)
    };
    Term {
        sign,
        exp: exp_sop,
        man: mag << 13,
    }
}

/// `matmul_tiles`: DEST += in0 x in1 (in1^T when `transpose_in1`), where in0 (activations) sits
/// in SrcB and in1 (weights) in SrcA, with `cfg.fidelity` phases and DEST rounding per MVMUL.
pub fn matmul(
    dst: &mut DestTile,
    in0_srcb: &SrcTile,
    in1_srca: &SrcTile,
    transpose_in1: bool,
    cfg: &FpuConfig,
) {
    let fp32 = cfg.fp32_dest_acc;
    // B: rows m of in0 along K. A: columns n of in1 along K.
    let mut b = Decomp::new();
    let mut a = Decomp::new();
    for m in 0..32 {
        for k in 0..32 {
            b.set(m, k, in0_srcb.v[face_index(m, k)], false);
        }
    }
    for n in 0..32 {
        for k in 0..32 {
            let v = if transpose_in1 {
                in1_srca.v[face_index(n, k)]
            } else {
                in1_srca.v[face_index(k, n)]
            };
            a.set(n, k, v, true);
        }
    }
    let phases = cfg.fidelity.phases();
    for m in 0..32 {
        for n in 0..32 {
            let idx = face_index(m, n);
            let mut d = dst.read(idx);
            let mut al = [GroupAlign {
                emax: 0,
                scale: [0; 8],
                neg: [0; 8],
            }; 4];
            for g in 0..4 {
                al[g] = group_align(&a.exp[n][g], &b.exp[m][g], &a.sign[n][g], &b.sign[m][g]);
            }
            for p in 0..phases {
                let adj = exp_prod_adj(p);
                let ma = if p & 1 != 0 { &a.lo[n] } else { &a.hi[n] };
                let mb = if p & 2 != 0 { &b.lo[m] } else { &b.hi[m] };
                for h in 0..2 {
                    let g0 = group_term(&al[2 * h], &ma[2 * h], &mb[2 * h], adj);
                    let g1 = group_term(&al[2 * h + 1], &ma[2 * h + 1], &mb[2 * h + 1], adj);
                    d = dest_store(accum_normalize_encode(g0, g1, d, fp32), fp32);
                }
            }
            dst.write(idx, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::{Fidelity, Fp32SrcFormat, TILE_DATUMS};

    /// The straightforward model: one MVMUL (8 DEST rows x 16 columns, 16 K) at a time, in the
    /// LLK's order, using the reference datum function.
    pub(crate) fn matmul_slow(
        dst: &mut DestTile,
        in0: &SrcTile,
        in1: &SrcTile,
        transpose_in1: bool,
        cfg: &FpuConfig,
    ) {
        let in1 = if transpose_in1 {
            in1.transposed()
        } else {
            in1.clone()
        };
        // DEST face (fr, fc) += in0 face (fr, kf) x in1 face (kf, fc); LLK order per phase:
        // B0A0 B0A1 B2A0 B2A1 (kf = 0) then B1A2 B1A3 B3A2 B3A3 (kf = 1).
        let order = [
            (0, 0, 0),
            (0, 1, 0),
            (1, 0, 0),
            (1, 1, 0),
            (0, 0, 1),
            (0, 1, 1),
            (1, 0, 1),
            (1, 1, 1),
        ];
        for p in 0..cfg.fidelity.phases() {
            for &(fr, fc, kf) in &order {
                for half in 0..2 {
                    for rr in 0..8 {
                        let m = fr * 16 + half * 8 + rr;
                        for cc in 0..16 {
                            let n = fc * 16 + cc;
                            let mut av = [0u32; 16];
                            let mut bv = [0u32; 16];
                            for i in 0..16 {
                                let k = kf * 16 + i;
                                av[i] = in1.v[face_index(k, n)];
                                bv[i] = in0.v[face_index(m, k)];
                            }
                            let idx = face_index(m, n);
                            let r = core::mvmul_ref(&av, &bv, dst.read(idx), cfg.fp32_dest_acc, p);
                            dst.write(idx, dest_store(r, cfg.fp32_dest_acc));
                        }
                    }
                }
            }
        }
    }

    /// Small deterministic PRNG (xorshift64*), so tests need no extra dependency.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform in [-1, 1).
        pub(crate) fn unit(&mut self) -> f32 {
            ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
    }

    fn rand_tile(rng: &mut Rng, scale: f32, fmt: Fp32SrcFormat) -> (SrcTile, [f32; TILE_DATUMS]) {
        let mut v = [0f32; TILE_DATUMS];
        for x in v.iter_mut() {
            *x = rng.unit() * scale;
        }
        let t = SrcTile::from_f32(&v, fmt).unwrap();
        let exact = t.to_f32();
        (t, exact)
    }

    #[test]
    fn fast_equals_slow_on_random_tiles() {
        let mut rng = Rng::new(7);
        for (case, fid) in [
            Fidelity::LoFi,
            Fidelity::HiFi2,
            Fidelity::HiFi3,
            Fidelity::HiFi4,
        ]
        .into_iter()
        .enumerate()
        {
            for fp32 in [false, true] {
                for tr in [false, true] {
                    let cfg = FpuConfig::new(fid, fp32, false);
                    let fmt = cfg.fp32_src;
                    // Mixed magnitudes (wide exponent spread) and some exact zeros / denormals.
                    let (a, _) = rand_tile(&mut rng, 4.0, fmt);
                    let (mut b, _) = rand_tile(&mut rng, 1000.0, fmt);
                    b.v[5] = 0;
                    b.v[77] = 1; // denormal
                    b.v[300] ^= 1 << 18;
                    let mut d0 = DestTile::zero();
                    let mut d1 = DestTile::zero();
                    // Two accumulations, starting from a non-zero DEST the second time.
                    for _ in 0..2 {
                        matmul(&mut d0, &a, &b, tr, &cfg);
                        matmul_slow(&mut d1, &a, &b, tr, &cfg);
                    }
                    assert_eq!(
                        d0.v, d1.v,
                        "case {case} fid {fid:?} fp32 {fp32} transpose {tr}"
                    );
                }
            }
        }
    }

    fn ref_matmul(a: &[f32; TILE_DATUMS], b: &[f32; TILE_DATUMS], tr: bool) -> Vec<f64> {
        let mut o = vec![0f64; TILE_DATUMS];
        for m in 0..32 {
            for n in 0..32 {
                let mut s = 0f64;
                for k in 0..32 {
                    let bv = if tr {
                        b[face_index(n, k)]
                    } else {
                        b[face_index(k, n)]
                    };
                    s += a[face_index(m, k)] as f64 * bv as f64;
                }
                o[face_index(m, n)] = s;
            }
        }
        o
    }

    #[test]
    fn hifi4_fp32_small_integers_are_exact() {
        // |a|,|b| <= 16 integers: products <= 256, sums <= 8192: all exact in fp32 and in every
        // intermediate (24-bit) alignment.
        let mut rng = Rng::new(11);
        let cfg = FpuConfig::new(Fidelity::HiFi4, true, false);
        let mut va = [0f32; TILE_DATUMS];
        let mut vb = [0f32; TILE_DATUMS];
        for i in 0..TILE_DATUMS {
            va[i] = ((rng.next_u64() % 33) as i32 - 16) as f32;
            vb[i] = ((rng.next_u64() % 33) as i32 - 16) as f32;
        }
        let a = SrcTile::from_f32(&va, cfg.fp32_src).unwrap();
        let b = SrcTile::from_f32(&vb, cfg.fp32_src).unwrap();
        for tr in [false, true] {
            let mut d = DestTile::zero();
            matmul(&mut d, &a, &b, tr, &cfg);
            let want = ref_matmul(&va, &vb, tr);
            for i in 0..TILE_DATUMS {
                assert_eq!(d.v[i], (want[i] as f32).to_bits(), "datum {i}");
            }
        }
    }

    #[test]
    fn lofi_vs_hifi_on_crafted_values() {
        // in0 (SrcB) = 1 + 2^-7: bit 3 of the 11-bit mantissa, only in B's low slice (phases 2-3).
        // in1 (SrcA) = 1 + 2^-6: bit 4, only in A's low slice (odd phases).
        let a = SrcTile::from_bf16_bits(&[0x3F81; TILE_DATUMS]); // in0 (SrcB): 1 + 2^-7
        let b = SrcTile::from_bf16_bits(&[0x3F82; TILE_DATUMS]); // in1 (SrcA): 1 + 2^-6
        let run = |fid| {
            let cfg = FpuConfig::new(fid, true, false);
            let mut d = DestTile::zero();
            matmul(&mut d, &a, &b, false, &cfg);
            d.get(0, 0) as f64
        };
        assert_eq!(run(Fidelity::LoFi), 32.0);
        assert_eq!(run(Fidelity::HiFi2), 32.0 * (1.0 + 1.0 / 64.0));
        assert_eq!(
            run(Fidelity::HiFi3),
            32.0 * (1.0 + 1.0 / 64.0 + 1.0 / 128.0)
        );
        assert_eq!(
            run(Fidelity::HiFi4),
            32.0 * (1.0 + 1.0 / 64.0) * (1.0 + 1.0 / 128.0)
        );
    }

    #[test]
    fn bf16_dest_rounds_every_mvmul() {
        // DEST starts at 256 (bf16 spacing 2); each of the two MVMULs (K halves) adds 0.75.
        let cfg16 = FpuConfig::new(Fidelity::HiFi4, false, false);
        let cfg32 = FpuConfig::new(Fidelity::HiFi4, true, false);
        let mut ones = [0u16; TILE_DATUMS];
        let mut w = [0u16; TILE_DATUMS];
        for r in 0..32 {
            for c in 0..32 {
                ones[face_index(r, c)] = if c == 0 || c == 16 { 0x3F80 } else { 0 };
                w[face_index(r, c)] = if r == 0 || r == 16 { 0x3F40 } else { 0 }; // 0.75
            }
        }
        let a = SrcTile::from_bf16_bits(&ones);
        let b = SrcTile::from_bf16_bits(&w);
        let mut d16 = DestTile::from_f32(&[256.0; TILE_DATUMS], &cfg16);
        let mut d32 = DestTile::from_f32(&[256.0; TILE_DATUMS], &cfg32);
        matmul(&mut d16, &a, &b, false, &cfg16);
        matmul(&mut d32, &a, &b, false, &cfg32);
        assert_eq!(d32.get(0, 0), 257.5);
        // bf16: 256 + 0.75 -> 256.75 rounds (half away) to 256 (spacing 2: 256.75 is below 257),
        // twice: 256. Exact would round 257.5 to 258.
        assert_eq!(d16.get(0, 0), 256.0);
    }

    /// Random tiles against an f64 reference, tolerance from the fidelity.
    ///
    /// Derivation: an output is sum_k a_k b_k over K = 32. With LoFi each product uses A's
    /// mantissa truncated to 5 significant bits (relative error < 2^-4) and B's to 7 (< 2^-6),
    /// so |p~ - p| < (2^-4 + 2^-6 + 2^-10) |p|  ~= 0.079 |p|. HiFi2 restores A's bits 5..1
    /// (A truncated to 10 bits: bf16 needs 8, so A exact for bf16), leaving B's error < 2^-6:
    /// 0.0157 |p|. HiFi3 adds A_top x B_low: B exact, A's low slice x B_low missing, error
    /// < 2^-4 * 2^-6 = 2^-10 relative per product; HiFi4 is exact per product. On top, each
    /// product is rounded when aligned to its group's largest exponent (half an ulp of 2^-11
    /// relative to the group max, i.e. 2^-12 * max|p| per product) and each MVMUL result is
    /// rounded into DEST (bf16: 2^-9 relative; fp32: 2^-24) 2 * phases times. Truncation errors
    /// are one-sided (toward zero), so bound with sum_k |a_k b_k|:
    ///   err <= (trunc_rel + 16 * 2^-12) * S + n_round * ulp_rel * (|result| + S)
    /// where S = sum |a_k b_k|. bf16 inputs (8 significant bits) are used so HiFi2+ keep A exact.
    #[test]
    fn random_tiles_within_fidelity_tolerance() {
        let mut rng = Rng::new(3);
        for fid in [
            Fidelity::LoFi,
            Fidelity::HiFi2,
            Fidelity::HiFi3,
            Fidelity::HiFi4,
        ] {
            for fp32 in [false, true] {
                let cfg = FpuConfig::new(fid, fp32, false);
                let (a, va) = rand_tile(&mut rng, 2.0, Fp32SrcFormat::Bf16);
                let (b, vb) = rand_tile(&mut rng, 3.0, Fp32SrcFormat::Bf16);
                let mut d = DestTile::zero();
                matmul(&mut d, &a, &b, false, &cfg);
                let want = ref_matmul(&va, &vb, false);
                let trunc_rel: f64 = match fid {
                    Fidelity::LoFi => 2f64.powi(-4) + 2f64.powi(-6) + 2f64.powi(-10),
                    Fidelity::HiFi2 => 2f64.powi(-6),
                    Fidelity::HiFi3 => 2f64.powi(-10),
                    Fidelity::HiFi4 => 0.0,
                };
                let ulp_rel = if fp32 { 2f64.powi(-23) } else { 2f64.powi(-8) };
                let n_round = 2.0 * fid.phases() as f64;
                let mut worst = 0f64;
                for m in 0..32 {
                    for n in 0..32 {
                        let s: f64 = (0..32)
                            .map(|k| {
                                (va[face_index(m, k)] as f64 * vb[face_index(k, n)] as f64).abs()
                            })
                            .sum();
                        let i = face_index(m, n);
                        let got = d.v[i];
                        let got = f32::from_bits(got) as f64;
                        let tol = (trunc_rel + 16.0 * 2f64.powi(-12)) * s
                            + n_round * ulp_rel * (want[i].abs() + s);
                        let err = (got - want[i]).abs();
                        worst = worst.max(err / tol);
                        assert!(
                            err <= tol,
                            "{fid:?} fp32={fp32} ({m},{n}): got {got} want {} tol {tol}",
                            want[i]
                        );
                    }
                }
                // The bound must not be vacuous: LoFi errors are a visible fraction of it.
                if fid == Fidelity::LoFi {
                    assert!(worst > 0.05, "LoFi worst err/tol {worst}");
                }
            }
        }
    }
}
