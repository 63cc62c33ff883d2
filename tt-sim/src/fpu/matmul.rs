//! Tile matmul (`matmul_tiles`): DEST += in0 x in1, issued as the Wormhole B0 LLK issues it
//! (`llk_math_matmul.h`): for each fidelity phase, 16 MVMULs covering the four DEST faces, each
//! DEST face getting the product over K = 0..15 first and K = 16..31 second. Each MVMUL output
//! datum sums 16 products in two groups of eight (see [`super::core::mvmul_ref`]) and is rounded
//! into DEST. So, per output datum, the DEST update sequence is
//! `(phase 0, K 0..15), (phase 0, K 16..31), (phase 1, K 0..15), ...`.
//!
//! The fast path works one output row at a time with the 32 output columns as SIMD lanes, in
//! fixed-size arrays and branch-free lane code that LLVM vectorises:
//! - both operands are decomposed once per call into exponents, sign masks and signed mantissa
//!   slices (i16, SrcA as `[k][n]`, SrcB as `[m][k]` broadcast over the lanes);
//! - per row and group of 8 K, the phase-independent alignment (group maximum exponent, and per
//!   product an i16 scale and bias) is computed once for all phases;
//! - per phase, each product is aligned and rounded with one i16 multiply, one add and one
//!   high-half multiply (`pmulhw`), see `matmul_row`;
//! - the DEST rounding of each MVMUL is [`super::core::accum_normalize_encode`] rewritten
//!   without branches over 32-bit lanes (`accum_lane`).
//!
//! `tests::matmul_slow` is the straightforward MVMUL-by-MVMUL version (on the scalar reference
//! `core::mvmul_ref`) that the fast path is checked against bit for bit.

use super::core::exp_prod_adj;
use super::{DestTile, FpuConfig, SrcTile, face_index};

/// Exponent given to a zero (or denormal) operand. Any product with it has an exponent at least
/// 3841 below every real product, so its alignment distance saturates (it contributes 0), and a
/// group of only zero products has a maximum exponent far below 0 (the group is zero). Two of
/// them still fit in i16 with room for the differences taken below.
const ZERO_EXP: i16 = -4096;

/// Both operands of one tile matmul, decomposed once per call into the fields the multiplier
/// uses, laid out so that the output columns `n` are contiguous (the SIMD lanes).
///
/// SrcA holds in1 (the "weights", indexed `[k][n]`), SrcB holds in0 (indexed `[m][k]`, read as
/// scalars and broadcast over the lanes).
struct Operands {
    /// SrcA biased exponent (`ZERO_EXP` for zero/denormal operands), `[k][n]`.
    a_exp: [[i16; 32]; 32],
    /// SrcA sign as a mask (0 or -1), `[k][n]`.
    a_neg: [[i16; 32]; 32],
    /// SrcA 5-bit mantissa slice for even / odd phases (`core::a_slice`), with the operand's
    /// sign, `[phase & 1][k][n]`.
    a_man: [[[i16; 32]; 32]; 2],
    /// SrcB biased exponent, `[m][k]`.
    b_exp: [[i16; 32]; 32],
    /// SrcB sign mask, `[m][k]`.
    b_neg: [[i16; 32]; 32],
    /// 4 x SrcB's 7-bit mantissa slice for phases 0-1 / 2-3 (`core::b_slice`), with the
    /// operand's sign, `[phase >> 1][m][k]`.
    b_man4: [[[i16; 32]; 32]; 2],
}

/// Decomposes 16 consecutive source datums (one face row) into exponent (`ZERO_EXP` for
/// zeros and denormals, which the FPU flushes), sign mask and the two mantissa slices with the
/// operand's sign (zero for flushed operands); `is_a` picks SrcA's 5-bit slices (bits 10..6,
/// 5..1 of the 11-bit mantissa) or 4 x SrcB's 7-bit slices (bits 10..4, 3..0 << 3).
/// Branch-free so that it vectorises.
#[inline(always)]
fn split16(
    v: &[u32],
    is_a: bool,
    exp: &mut [i16],
    neg: &mut [i16],
    hi: &mut [i16],
    lo: &mut [i16],
) {
    for i in 0..16 {
        let x = v[i];
        let live = (x & super::core::SRC_MAG_MASK) >= 0x400;
        let m = (x & 0x3FF) | 0x400;
        let e = ((x >> 10) & 255) as i16;
        let s = -(((x >> 18) & 1) as i16);
        let (h, l) = if is_a {
            (m >> 6, (m >> 1) & 31)
        } else {
            (4 * (m >> 4), 4 * ((m & 15) << 3))
        };
        let (h, l) = if live { (h as i16, l as i16) } else { (0, 0) };
        exp[i] = if live { e } else { ZERO_EXP };
        neg[i] = s;
        hi[i] = (h ^ s) - s;
        lo[i] = (l ^ s) - s;
    }
}

impl Operands {
    fn new(in0_srcb: &SrcTile, in1_srca: &SrcTile, transpose_in1: bool) -> Box<Self> {
        let mut o = Box::new(Self {
            a_exp: [[0; 32]; 32],
            a_neg: [[0; 32]; 32],
            a_man: [[[0; 32]; 32]; 2],
            b_exp: [[0; 32]; 32],
            b_neg: [[0; 32]; 32],
            b_man4: [[[0; 32]; 32]; 2],
        });
        // Tile row r, columns 16h..16h+15 are contiguous in face order.
        for r in 0..32 {
            for h in 0..2 {
                let base = face_index(r, 16 * h);
                let (c0, c1) = (16 * h, 16 * h + 16);
                let [hi, lo] = &mut o.b_man4;
                split16(
                    &in0_srcb.v[base..base + 16],
                    false,
                    &mut o.b_exp[r][c0..c1],
                    &mut o.b_neg[r][c0..c1],
                    &mut hi[r][c0..c1],
                    &mut lo[r][c0..c1],
                );
                let [hi, lo] = &mut o.a_man;
                split16(
                    &in1_srca.v[base..base + 16],
                    true,
                    &mut o.a_exp[r][c0..c1],
                    &mut o.a_neg[r][c0..c1],
                    &mut hi[r][c0..c1],
                    &mut lo[r][c0..c1],
                );
            }
        }
        if transpose_in1 {
            // SrcA was decomposed as in1[k][n]; the product needs in1^T.
            transpose32(&mut o.a_exp);
            transpose32(&mut o.a_neg);
            transpose32(&mut o.a_man[0]);
            transpose32(&mut o.a_man[1]);
        }
        o
    }
}

/// In-place transpose of a 32x32 array.
fn transpose32(x: &mut [[i16; 32]; 32]) {
    for r in 0..32 {
        for c in r + 1..32 {
            let t = x[r][c];
            x[r][c] = x[c][r];
            x[c][r] = t;
        }
    }
}

/// `(x * y) >> 16` on i16 lanes (x86 `pmulhw`).
#[inline(always)]
fn mulhi(x: i16, y: i16) -> i16 {
    (((x as i32) * (y as i32)) >> 16) as i16
}

/// Leading zeros of `x < 2^31` (32 for 0), through an exact int -> float conversion: clearing
/// every 1 bit that has a 1 above it leaves no run of ones, so rounding to 24 bits cannot carry
/// into a new top bit. Vectorises on any SIMD level, unlike `leading_zeros`.
#[inline(always)]
fn lz31(x: u32) -> i32 {
    let y = x & !(x >> 1);
    let f = (y as i32) as f32;
    (158 - (f.to_bits() >> 23) as i32).min(32)
}

/// Lane version of [`super::core::accum_normalize_encode`] for two group terms given as signed
/// group sums `s` (the term's magnitude is `|s| << 13`) with maximum product exponent `x + adj`
/// (a group with exponent <= 0 is zero), accumulated onto the DEST value `dst`. Branch-free so
/// that it vectorises. The aligned signed terms use `(2v + 2^d) >> (d + 1)`, which is the
/// reference's magnitude rounding with the sign subtracted (half toward +inf on the signed
/// value); DEST keeps sign-magnitude rounding (half away from zero).
#[inline(always)]
fn accum_lane<const FP32: bool>(s0: i16, x0: i16, s1: i16, x1: i16, adj: i32, dst: u32) -> u32 {
    let e0 = x0 as i32 + adj;
    let e1 = x1 as i32 + adj;
    let (e0, v0) = if e0 > 0 {
        (e0, (s0 as i32) << 14)
    } else {
        (0, 0)
    };
    let (e1, v1) = if e1 > 0 {
        (e1, (s1 as i32) << 14)
    } else {
        (0, 0)
    };
    let ed = ((dst >> 23) & 255) as i32;
    let md = if ed == 0 {
        0
    } else {
        ((dst & 0x7F_FFFF) | 0x80_0000) as i32
    };
    let e = e0.max(e1).max(ed);
    let d0 = (e - e0).min(30) as u32;
    let d1 = (e - e1).min(30) as u32;
    let dd = (e - ed).min(30) as u32;
    let mut a0 = (v0 + (1 << d0)) >> (d0 + 1);
    let mut a1 = (v1 + (1 << d1)) >> (d1 + 1);
    let mut ad = ((md << 1) + (1 << dd)) >> (dd + 1);
    if !FP32 {
        a0 = (a0 + (1 << 12)) & !0x1FFF;
        a1 = (a1 + (1 << 12)) & !0x1FFF;
        ad = (ad + (1 << 12)) & !0x1FFF;
    }
    let neg_d = -((dst >> 31) as i32);
    let t = ((ad ^ neg_d) - neg_d) + a0 + a1;
    let sign = (t < 0) as u32;
    let mag = t.unsigned_abs();
    let mut shift = lz31(mag) - 8;
    if sign != 0 && mag == 1 {
        // Wormhole B0 renormalisation bug, as in `accum_normalize_encode`.
        shift -= 27;
    }
    let mut expo = e - shift;
    let sh = if FP32 { shift } else { shift - 16 };
    let rs = (-sh).max(0) as u32;
    let ls = sh.max(0) as u32;
    let mut r = if sh < 0 {
        ((mag << 1) + (1 << rs)) >> (rs + 1)
    } else {
        mag << ls
    };
    if !FP32 {
        r <<= 16;
    }
    expo += ((r >> 24) & 1) as i32;
    let out = if expo >= 255 {
        (sign << 31) | 0x7F80_0000
    } else {
        (sign << 31) | ((expo as u32) << 23) | (r & 0x7F_FFFF)
    };
    if e <= 0 || mag == 0 || expo <= 0 {
        0
    } else {
        out
    }
}

/// One output row `m` (all 32 columns as lanes) of the tile matmul, all phases, onto `row`.
/// Per-row work arrays, allocated once per call (every entry is rewritten for each row).
struct Scratch {
    scale: [[[i16; 32]; 8]; 4],
    bias: [[[i16; 32]; 8]; 4],
    e: [[i16; 32]; 8],
}

#[inline(always)]
fn matmul_row<const FP32: bool>(
    o: &Operands,
    w: &mut Scratch,
    m: usize,
    phases: u32,
    row: &mut [u32; 32],
) {
    let Scratch { scale, bias, e } = w;
    // Phase-independent alignment. Per group g of 8 K: the largest product exponent per column,
    // and per product, with d = distance to that maximum clamped to 13 (every product then
    // rounds to 0): `scale` = 2^(14 - d) and `bias` = 2^(d + 1) + sign (+-1).
    //
    // A product p = a * b (a < 2^5, b < 2^7 mantissa slices) aligned by d and rounded half away
    // from zero on its magnitude, with its sign s, is then `mulhi(s * 4p + bias, scale)`:
    // floor((s (4p + 1) 2^(14-d) + 2^15) / 2^16) = floor(s (4p + 1) / 2^(d+2) + 1/2). For s = +1
    // the +1 cannot reach the next integer (4p + 2^(d+1) is even); for s = -1 it turns the
    // rounding of the negated value from half-up into half-down, i.e. -floor(p / 2^d + 1/2).
    // Ranges: |s (4p + 1)| <= 15749, bias <= 2^14 + 1, so all i16. With d = 13 the result is 0
    // for every p < 2^12, as the unclamped distance requires.
    let mut emax = [[0i16; 32]; 4];
    for g in 0..4 {
        let mut mx = [i16::MIN; 32];
        for kk in 0..8 {
            let k = 8 * g + kk;
            let eb = o.b_exp[m][k];
            for n in 0..32 {
                e[kk][n] = o.a_exp[k][n] + eb;
                mx[n] = mx[n].max(e[kk][n]);
            }
        }
        for kk in 0..8 {
            let k = 8 * g + kk;
            let nb = o.b_neg[m][k];
            for n in 0..32 {
                let d = (mx[n] - e[kk][n]).min(13) as u16;
                let neg = o.a_neg[k][n] ^ nb;
                scale[g][kk][n] = (16384u16 >> d) as i16;
                bias[g][kk][n] = ((2u16 << d) as i16) + (1 | neg);
            }
        }
        emax[g] = mx;
    }
    for p in 0..phases {
        let am = &o.a_man[(p & 1) as usize];
        let bm = &o.b_man4[(p >> 1) as usize][m];
        // Signed group sums (|sum| <= 8 * 31 * 127 fits i16).
        let mut s = [[0i16; 32]; 4];
        for g in 0..4 {
            for kk in 0..8 {
                let k = 8 * g + kk;
                let b = bm[k];
                for n in 0..32 {
                    s[g][n] += mulhi(am[k][n] * b + bias[g][kk][n], scale[g][kk][n]);
                }
            }
        }
        let adj = exp_prod_adj(p);
        // K 0..15 (groups 0, 1) then K 16..31 (groups 2, 3): two MVMULs, each rounded into DEST.
        for h in 0..2 {
            for n in 0..32 {
                row[n] = accum_lane::<FP32>(
                    s[2 * h][n],
                    emax[2 * h][n],
                    s[2 * h + 1][n],
                    emax[2 * h + 1][n],
                    adj,
                    row[n],
                );
            }
        }
    }
}

fn matmul_rows<const FP32: bool>(dst: &mut DestTile, o: &Operands, phases: u32) {
    let mut w = Box::new(Scratch {
        scale: [[[0; 32]; 8]; 4],
        bias: [[[0; 32]; 8]; 4],
        e: [[0; 32]; 8],
    });
    for m in 0..32 {
        // Row m of the tile: columns 0..15 in face (m / 16) * 2, 16..31 in the next face.
        let base = (m / 16) * 512 + (m % 16) * 16;
        let mut row = [0u32; 32];
        row[..16].copy_from_slice(&dst.v[base..base + 16]);
        row[16..].copy_from_slice(&dst.v[base + 256..base + 272]);
        matmul_row::<FP32>(o, &mut w, m, phases, &mut row);
        dst.v[base..base + 16].copy_from_slice(&row[..16]);
        dst.v[base + 256..base + 272].copy_from_slice(&row[16..]);
    }
    dst.set_all_valid();
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
    let o = Operands::new(in0_srcb, in1_srca, transpose_in1);
    let phases = cfg.fidelity.phases();
    if cfg.fp32_dest_acc {
        matmul_rows::<true>(dst, &o, phases);
    } else {
        matmul_rows::<false>(dst, &o, phases);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::core;
    use crate::fpu::dest_store;
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

    /// Random 19-bit source datums. `kind` picks the exponent distribution: 0 wide (half the
    /// exponent range, plus one datum in 512 with exponent 255: infinities and NaNs), 1 clustered (alignment distances 0..30,
    /// the common case), 2 tiny (products and group exponents at or below 0: flushes), 3 huge
    /// (sums overflow to infinity). One datum in 16 has a zero exponent field (signed zero or
    /// denormal with a random mantissa). bf16-family tiles keep the low 3 mantissa bits 0.
    fn rand_raw_tile(rng: &mut Rng, tf32: bool, kind: u32) -> SrcTile {
        let mut v = [0u32; TILE_DATUMS];
        for x in v.iter_mut() {
            let r = rng.next_u64();
            let sign = (r & 1) as u32;
            let mut man = ((r >> 1) & 0x3FF) as u32;
            if !tf32 {
                man &= !7;
            }
            let e = (r >> 16) as u32;
            let exp = if (r >> 40) % 16 == 0 {
                0
            } else if kind == 0 && (r >> 40) % 512 == 1 {
                255
            } else {
                match kind {
                    0 => 64 + e % 128,
                    1 => 112 + e % 32,
                    2 => 1 + e % 70,
                    _ => 140 + e % 50,
                }
            };
            *x = (sign << 18) | (exp << 10) | man;
        }
        SrcTile::from_raw19(v, tf32)
    }

    /// A DEST tile of random values around 2^(center - 127) (+-2^spread), signs random, some
    /// exact (signed) zeros and denormals; bf16 mode keeps only the upper 16 bits.
    fn rand_dest(rng: &mut Rng, fp32: bool, center: i32, spread: u32) -> DestTile {
        let mut d = DestTile::zero();
        for x in d.v.iter_mut() {
            let r = rng.next_u64();
            let exp = if (r >> 40) % 16 == 0 {
                0
            } else {
                (center - spread as i32 + ((r >> 16) % (2 * spread as u64 + 1)) as i32)
                    .clamp(1, 255) as u32
            };
            let bits = ((r & 1) as u32) << 31 | exp << 23 | ((r >> 1) as u32 & 0x7F_FFFF);
            *x = if fp32 { bits } else { bits & 0xFFFF_0000 };
        }
        d.set_all_valid();
        d
    }

    #[test]
    fn fast_equals_slow_on_raw_tiles_with_special_values() {
        let mut rng = Rng::new(0x5eed);
        for kind in 0..4 {
            let (mut infs, mut zeros) = (0, 0);
            for fid in [
                Fidelity::LoFi,
                Fidelity::HiFi2,
                Fidelity::HiFi3,
                Fidelity::HiFi4,
            ] {
                for fp32 in [false, true] {
                    for tr in [false, true] {
                        let cfg = FpuConfig::new(fid, fp32, false);
                        let a = rand_raw_tile(&mut rng, fp32, kind);
                        let b = rand_raw_tile(&mut rng, fp32, kind);
                        // DEST around the typical product size of this kind.
                        let (center, spread) = match kind {
                            0 => (127, 126),
                            1 => (120, 12),
                            2 => (3, 3),
                            _ => (245, 10),
                        };
                        let mut d0 = rand_dest(&mut rng, fp32, center, spread);
                        let mut d1 = d0.clone();
                        for _ in 0..2 {
                            matmul(&mut d0, &a, &b, tr, &cfg);
                            matmul_slow(&mut d1, &a, &b, tr, &cfg);
                        }
                        let bad = (0..TILE_DATUMS).find(|&i| d0.v[i] != d1.v[i]);
                        assert!(
                            bad.is_none(),
                            "kind {kind} {fid:?} fp32 {fp32} transpose {tr}: datum {bad:?}: \
                             fast {:#x} slow {:#x}",
                            d0.v[bad.unwrap_or(0)],
                            d1.v[bad.unwrap_or(0)]
                        );
                        assert_eq!(d0.valid, u64::MAX);
                        infs +=
                            d0.v.iter()
                                .filter(|&&x| x & 0x7FFF_FFFF == 0x7F80_0000)
                                .count();
                        zeros += d0.v.iter().filter(|&&x| x == 0).count();
                    }
                }
            }
            // The distributions do what they say: overflow (kinds 0, 3) and flushes (kind 2) occur,
            // and nothing is entirely flushed or overflowed.
            let total = 4 * 2 * 2 * TILE_DATUMS;
            match kind {
                0 | 3 => assert!(infs > 100 && infs < total / 4, "kind {kind}: {infs} inf"),
                2 => assert!(zeros > 100 && zeros < total / 4, "kind 2: {zeros} zeros"),
                _ => assert_eq!(infs + zeros, 0, "kind 1"),
            }
        }
    }

    #[test]
    fn fast_equals_slow_with_cancellation() {
        // in1's columns are pairs of opposite values and in0 holds equal pairs, so many group
        // sums cancel exactly (zero sum with a non-zero group exponent) and DEST often ends up
        // within an ulp of the negated sum (the Wormhole -1 renormalisation case).
        let mut rng = Rng::new(99);
        for fid in [Fidelity::LoFi, Fidelity::HiFi4] {
            for fp32 in [false, true] {
                let cfg = FpuConfig::new(fid, fp32, false);
                let mut a = rand_raw_tile(&mut rng, fp32, 1);
                let mut b = rand_raw_tile(&mut rng, fp32, 1);
                for r in 0..32 {
                    for c in (0..32).step_by(2) {
                        b.v[face_index(r, c + 1)] = b.v[face_index(r, c)] ^ (1 << 18);
                        a.v[face_index(r, c + 1)] = a.v[face_index(r, c)];
                    }
                }
                let mut d0 = DestTile::zero();
                let mut d1 = DestTile::zero();
                matmul(&mut d0, &a, &b, false, &cfg);
                matmul_slow(&mut d1, &a, &b, false, &cfg);
                assert_eq!(d0.v, d1.v, "{fid:?} fp32 {fp32}");
                // Now subtract (almost) the same again from a DEST that holds the result.
                let mut d0n = d0.clone();
                let mut d1n = d1.clone();
                for x in d0n.v.iter_mut().chain(d1n.v.iter_mut()) {
                    *x ^= 1 << 31;
                }
                matmul(&mut d0n, &a, &b, false, &cfg);
                matmul_slow(&mut d1n, &a, &b, false, &cfg);
                assert_eq!(d0n.v, d1n.v, "{fid:?} fp32 {fp32} negated DEST");
            }
        }
    }

    #[test]
    fn accum_lane_equals_reference_normalisation() {
        // The lane normalisation against `core::accum_normalize_encode` on random group sums,
        // group exponents (including flushed groups) and DEST values, a quarter of them within
        // a few ulps of minus the first term (exact cancellation and the -1 case).
        let mut rng = Rng::new(1234);
        let mut hits_minus_one = 0;
        for i in 0..200_000u32 {
            let r = rng.next_u64();
            let small = r % 4 == 0;
            let s0 = if small {
                ((r >> 8) % 7) as i16 - 3
            } else {
                (((r >> 8) % 63_001) as i32 - 31_500) as i16
            };
            let s1 = if (r >> 4) % 3 == 0 {
                0
            } else {
                (((r >> 24) % 63_001) as i32 - 31_500) as i16
            };
            let x0 = ((r >> 40) % 560) as i16 - 40;
            let x1 = if (r >> 50) % 8 == 0 {
                2 * ZERO_EXP
            } else {
                ((r >> 52) % 560) as i16 - 40
            };
            let p = i % 4;
            let adj = exp_prod_adj(p);
            let term = |s: i16, x: i16| {
                let e = x as i32 + adj;
                if e <= 0 {
                    core::Term::default()
                } else {
                    core::Term {
                        sign: (s < 0) as u32,
                        exp: e,
                        man: (s.unsigned_abs() as u32) << 13,
                    }
                }
            };
            let (t0, t1) = (term(s0, x0), term(s1, x1));
            let r2 = rng.next_u64();
            let mut dst = if r2 % 4 == 0 {
                // Minus t0's value, nudged by a few ulps.
                let v = -(s0 as f64) * 2f64.powi(13 + t0.exp - 127 - 23);
                let bits = (v as f32).to_bits();
                bits.wrapping_add(((r2 >> 8) % 5) as u32).wrapping_sub(2)
            } else {
                (r2 >> 16) as u32
            };
            for fp32 in [false, true] {
                if !fp32 {
                    dst &= 0xFFFF_0000;
                }
                let want = dest_store(core::accum_normalize_encode(t0, t1, dst, fp32), fp32);
                let got = if fp32 {
                    accum_lane::<true>(s0, x0, s1, x1, adj, dst)
                } else {
                    accum_lane::<false>(s0, x0, s1, x1, adj, dst)
                };
                assert_eq!(
                    got, want,
                    "s0 {s0} x0 {x0} s1 {s1} x1 {x1} phase {p} dst {dst:#x} fp32 {fp32}"
                );
                if fp32 && t1.man == 0 && want != 0 && (want & 0x7F_FFFF) == 0 && dst >> 31 == 0 {
                    hits_minus_one += 1;
                }
            }
        }
        // Not vacuous: the nudged DEST values produce many power-of-two results.
        assert!(hits_minus_one > 100, "{hits_minus_one}");
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
