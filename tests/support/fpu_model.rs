//! Independent, bit-exact software model of the Tensix FPU matrix-multiply numerics (Wormhole B0
//! `MVMUL` with bf16-family operands), used by acceptance tests as the reference the simulator
//! must match bit for bit. Plain Rust, no dependency on `tt-sim`; written from
//! `/work/shared/TENSTORRENT.md` section 4, tt-isa-documentation (`MVMUL.md`, `SrcASrcB.md`,
//! `Dst.md`) and a reading of Tenstorrent's bit-exact simulator `ttsim` (`src/tensix.cpp`:
//! `mvmul`, `fpu_accum_normalize_encode`, DEST encode/decode) and of tt-llk's
//! `llk_math_matmul.h` (the MVMUL issue order).
//!
//! # What is modelled
//! `matmul_tiles(in0, in1, ..)` on one 32x32 tile: `DEST += in0 @ in1`, where in0 (activations)
//! sits in SrcB and in1 (weights) in SrcA.
//! - Operands are 19-bit source values: sign, 8-bit exponent, 10-bit mantissa (the f32 bits >> 13).
//!   bf16 operands have the low 3 mantissa bits zero; TF32 operands (fp32 CBs unpacked with
//!   `fp32_dest_acc_en`) use all 10. An operand whose exponent field is 0 counts as zero.
//! - Fidelity phase `p` multiplies a 5-bit slice of SrcA (in1) by a 7-bit slice of SrcB (in0):
//!   SrcA bits 10..6 (hidden 1 + top 4) for even `p`, bits 5..1 for odd `p` (bit 0 is never
//!   used); SrcB bits 10..4 (hidden + top 6) for `p < 2`, bits 3..0 (times 8) for `p >= 2`.
//!   LoFi runs phase 0, HiFi2 phases 0-1, HiFi3 0-2, HiFi4 0-3.
//! - One MVMUL adds, to each DEST element, the 16 products of one K-face (16 values of K). The
//!   products form two groups of 8 (K 0-7 and 8-15 of the face). Inside a group each product is
//!   aligned to the group's largest exponent with round-half-up of the shifted-out bits and the
//!   group is summed exactly; the two group sums and the old DEST value are then aligned to the
//!   largest of the three exponents (group sums: round half toward +inf in signed terms, DEST:
//!   half away from zero), with a 16-bit DEST the three terms are first rounded to 10 mantissa
//!   bits, then summed, normalised, and rounded (half away from zero) to 7 mantissa bits (bf16
//!   DEST) or kept at 23 bits (fp32 DEST). Results with a biased exponent <= 0 become +0;
//!   exponents >= 255 become infinity. NaN is not special.
//! - Order (tt-llk): for each fidelity phase, every MVMUL of the tile (K-face 0 then K-face 1 for
//!   every output face); the K-tile loop of a kernel is outside that.
//! - Wormhole B0 quirk: when the accumulated magnitude is exactly 1 (in units of 2^-23 of the
//!   largest exponent) and negative, renormalisation mis-counts leading zeros (result exponent 4
//!   too high, mantissa rounded away). Only reachable with an fp32 DEST. Blackhole does not have
//!   it: use [`model_matmul_tile_arch`] with `wormhole = false`.

#![allow(dead_code)]

/// Elements per 32x32 tile.
pub const TILE_ELEMS: usize = 1024;

/// Tile-order index of element (r, c): four 16x16 faces, row-major inside a face.
pub const fn tile_index(r: usize, c: usize) -> usize {
    ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16
}

/// A source-register operand.
#[derive(Clone, Copy, Debug)]
struct Operand {
    negative: bool,
    biased_exp: i32,
    /// Mantissa with the hidden bit: 11 bits.
    mant11: u32,
}

impl Operand {
    fn from_f32(x: f32) -> Option<Operand> {
        let v19 = x.to_bits() >> 13;
        let biased_exp = ((v19 >> 10) & 0xFF) as i32;
        if biased_exp == 0 {
            return None; // zero or denormal: the multiplier sees zero
        }
        Some(Operand {
            negative: v19 >> 18 != 0,
            biased_exp,
            mant11: (v19 & 0x3FF) | 0x400,
        })
    }
}

/// Slice of the SrcA (in1) mantissa used in `phase` (5 bits).
fn srca_slice(m: u32, phase: u32) -> u32 {
    if phase & 1 == 0 {
        m >> 6
    } else {
        (m >> 1) & 0x1F
    }
}

/// Slice of the SrcB (in0) mantissa used in `phase` (7 bits).
fn srcb_slice(m: u32, phase: u32) -> u32 {
    if phase & 2 == 0 {
        m >> 4
    } else {
        (m & 0xF) << 3
    }
}

/// A signed partial sum: magnitude with 23 fraction bits below the bit for 2^(exp - 127).
#[derive(Clone, Copy, Debug, Default)]
struct Term {
    negative: bool,
    exp: i32,
    mag: i64,
}

/// Sum of 8 products of one group, as the multiplier array produces it.
fn group_sum(srcb: &[Option<Operand>], srca: &[Option<Operand>], phase: u32) -> Term {
    let exp_adjust = -127 - if phase & 1 != 0 { 5 } else { 0 } - if phase & 2 != 0 { 7 } else { 0 };
    // (negative, exponent, 12-bit product); a zero product has exponent 0.
    let mut prods = [(false, 0i32, 0i64); 8];
    for (i, p) in prods.iter_mut().enumerate() {
        if let (Some(b), Some(a)) = (srcb[i], srca[i]) {
            let mag = (srca_slice(a.mant11, phase) * srcb_slice(b.mant11, phase)) as i64;
            *p = (
                a.negative != b.negative,
                a.biased_exp + b.biased_exp + exp_adjust,
                mag,
            );
        }
    }
    let top = prods.iter().map(|p| p.1).max().unwrap_or(0);
    if top <= 0 {
        return Term::default();
    }
    let mut sum = 0i64;
    for &(neg, e, mag) in &prods {
        let d = (top - e).min(30) as u32;
        // Round half up at the alignment point.
        let aligned = ((mag << 1) + (1i64 << d)) >> (d + 1);
        sum += if neg { -aligned } else { aligned };
    }
    Term {
        negative: sum < 0,
        exp: top,
        mag: sum.abs() << 13,
    }
}

/// Adds two group sums to a DEST value (f32 bits) and encodes the result (f32 bits).
fn accumulate(dest_bits: u32, g0: Term, g1: Term, fp32_dest: bool, wormhole: bool) -> u32 {
    let dest_neg = dest_bits >> 31 != 0;
    let dest_exp = ((dest_bits >> 23) & 0xFF) as i32;
    let mut dest_mag = if dest_exp == 0 {
        0
    } else {
        ((dest_bits & 0x7F_FFFF) | 0x80_0000) as i64
    };
    let mut exp = g0.exp.max(g1.exp).max(dest_exp);
    if exp <= 0 {
        return 0;
    }
    let align_sum = |t: Term| -> i64 {
        if t.exp >= exp {
            return t.mag;
        }
        let d = exp - t.exp;
        if d >= 31 {
            return 0;
        }
        // Half rounds up for positive sums and toward zero for negative ones.
        (t.mag + (1i64 << (d - 1)) - t.negative as i64) >> d
    };
    let mut m0 = align_sum(g0);
    let mut m1 = align_sum(g1);
    if dest_exp < exp {
        let d = exp - dest_exp;
        dest_mag = if d >= 31 {
            0
        } else {
            (dest_mag + (1i64 << (d - 1))) >> d
        };
    }
    if !fp32_dest {
        let round10 = |m: i64, neg: bool| (m + (1 << 12) - neg as i64) & !0x1FFF;
        m0 = round10(m0, g0.negative);
        m1 = round10(m1, g1.negative);
        dest_mag = round10(dest_mag, false);
    }
    let signed = |m: i64, neg: bool| if neg != dest_neg { -m } else { m };
    let mut total = dest_mag + signed(m0, g0.negative) + signed(m1, g1.negative);
    let mut negative = dest_neg;
    if total < 0 {
        total = -total;
        negative = !negative;
    }
    if total == 0 {
        return 0;
    }
    // Bring the leading one to bit 23.
    let mut shift = (total as u32).leading_zeros() as i32 - 8;
    if wormhole && negative && total == 1 {
        shift -= 27;
    }
    exp -= shift;
    let kept_shift = if fp32_dest { shift } else { shift - 16 };
    let mut mag = if kept_shift < 0 {
        let s = -kept_shift;
        (total + (1i64 << (s - 1))) >> s
    } else {
        total << kept_shift
    };
    if !fp32_dest {
        mag <<= 16;
    }
    if mag & 0x100_0000 != 0 {
        exp += 1;
    }
    let mant = (mag & 0x7F_FFFF) as u32;
    let sign = (negative as u32) << 31;
    if exp <= 0 {
        0
    } else if exp >= 255 {
        sign | 0x7F80_0000
    } else {
        sign | ((exp as u32) << 23) | mant
    }
}

fn phases_for(fidelity: u32) -> u32 {
    match fidelity {
        0 => 1,
        2 => 2,
        3 => 3,
        4 => 4,
        other => panic!(
            "math fidelity {other} does not exist: use 0 (LoFi), 2 (HiFi2), 3 (HiFi3) or 4 (HiFi4)"
        ),
    }
}

/// `DEST += a_in0 @ b_in1` for one tile on Wormhole B0 (see the module docs). Inputs are in tile
/// order and already as unpacked (bf16-exact, or TF32 with `fp32_acc`); `dest_in` is the DEST
/// tile before the call (with `fp32_acc == false` DEST holds bf16: the low 16 bits of `dest_in`
/// are dropped). `fidelity` is 0, 2, 3 or 4.
pub fn model_matmul_tile(
    a_in0: &[f32; TILE_ELEMS],
    b_in1: &[f32; TILE_ELEMS],
    dest_in: &[f32; TILE_ELEMS],
    fidelity: u32,
    fp32_acc: bool,
) -> [f32; TILE_ELEMS] {
    model_matmul_tile_arch(a_in0, b_in1, dest_in, fidelity, fp32_acc, true)
}

/// [`model_matmul_tile`] with the architecture made explicit (`wormhole = false`: Blackhole).
pub fn model_matmul_tile_arch(
    a_in0: &[f32; TILE_ELEMS],
    b_in1: &[f32; TILE_ELEMS],
    dest_in: &[f32; TILE_ELEMS],
    fidelity: u32,
    fp32_acc: bool,
    wormhole: bool,
) -> [f32; TILE_ELEMS] {
    let phases = phases_for(fidelity);
    // Row-major operand matrices.
    let in0: Vec<Option<Operand>> = (0..TILE_ELEMS)
        .map(|i| Operand::from_f32(a_in0[tile_index(i / 32, i % 32)]))
        .collect();
    // in1 transposed so that one output column's K values are contiguous.
    let in1_t: Vec<Option<Operand>> = (0..TILE_ELEMS)
        .map(|i| Operand::from_f32(b_in1[tile_index(i % 32, i / 32)]))
        .collect();
    let mut dest = [0u32; TILE_ELEMS];
    for (d, &x) in dest.iter_mut().zip(dest_in.iter()) {
        *d = if fp32_acc {
            x.to_bits()
        } else {
            x.to_bits() & 0xFFFF_0000
        };
    }
    for phase in 0..phases {
        for kface in 0..2 {
            for r in 0..32 {
                for c in 0..32 {
                    let k0 = kface * 16;
                    let row = &in0[r * 32 + k0..r * 32 + k0 + 16];
                    let col = &in1_t[c * 32 + k0..c * 32 + k0 + 16];
                    let g0 = group_sum(&row[..8], &col[..8], phase);
                    let g1 = group_sum(&row[8..], &col[8..], phase);
                    let idx = tile_index(r, c);
                    dest[idx] = accumulate(dest[idx], g0, g1, fp32_acc, wormhole);
                }
            }
        }
    }
    dest.map(f32::from_bits)
}

/// The K-tile loop of a matmul kernel: `for k in 0..kt { matmul_tiles(in0[k], in1[k]) }` into one
/// DEST tile, starting from `dest_in`. `at[k]` is the in0 tile at (row block, k), `bt[k]` the in1
/// tile at (k, column block).
pub fn model_matmul(
    at: &[[f32; TILE_ELEMS]],
    bt: &[[f32; TILE_ELEMS]],
    kt: usize,
    dest_in: &[f32; TILE_ELEMS],
    fidelity: u32,
    fp32_acc: bool,
) -> [f32; TILE_ELEMS] {
    assert!(
        at.len() >= kt && bt.len() >= kt,
        "model_matmul: need {kt} tiles of each operand"
    );
    let mut dest = *dest_in;
    for k in 0..kt {
        dest = model_matmul_tile(&at[k], &bt[k], &dest, fidelity, fp32_acc);
    }
    dest
}

#[cfg(test)]
// The expected values are exact dyadic fractions written out in full on purpose.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    fn zeros() -> [f32; TILE_ELEMS] {
        [0.0; TILE_ELEMS]
    }

    /// in0 with (r, k) set, in1 with (k, c) set.
    fn single(
        a: &[(usize, usize, f32)],
        b: &[(usize, usize, f32)],
    ) -> ([f32; TILE_ELEMS], [f32; TILE_ELEMS]) {
        let (mut x, mut y) = (zeros(), zeros());
        for &(r, k, v) in a {
            x[tile_index(r, k)] = v;
        }
        for &(k, c, v) in b {
            y[tile_index(k, c)] = v;
        }
        (x, y)
    }

    // in0 = 1 + 2^-7 (its last bf16 mantissa bit is outside SrcB's top 7 bits),
    // in1 = 1 + 2^-5 (outside SrcA's top 5 bits). Phase contributions: p0 1*1, p1 1*2^-5,
    // p2 2^-7*1, p3 2^-7*2^-5.
    #[test]
    fn fidelity_phases_add_the_documented_bits() {
        let (a, b) = single(&[(3, 5, 1.0078125)], &[(5, 7, 1.03125)]);
        let expect_fp32 = [
            (0, 1.0),
            (2, 1.03125),
            (3, 1.0390625),
            (4, 1.039_306_640_625),
        ];
        for (fid, want) in expect_fp32 {
            let d = model_matmul_tile(&a, &b, &zeros(), fid, true);
            assert_eq!(d[tile_index(3, 7)], want, "fidelity {fid} fp32");
            assert_eq!(d.iter().filter(|v| **v != 0.0).count(), 1);
        }
        // HiFi4 with fp32 DEST is the exact product.
        assert_eq!(1.039_306_640_625f64, 1.0078125f64 * 1.03125f64);
        // bf16 DEST: the last phase's 2^-12 is below half an ULP of 1.0390625 and is rounded away.
        let d = model_matmul_tile(&a, &b, &zeros(), 4, false);
        assert_eq!(d[tile_index(3, 7)], 1.0390625);
    }

    #[test]
    fn lofi_drops_low_mantissa_bits() {
        // in1 = 1.9375 = 1.1111b: SrcA's top 5 bits hold all of it; 1.96875 = 1.11111b does not.
        let (a, b) = single(&[(0, 0, 1.0)], &[(0, 0, 1.96875)]);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 0, true)[0], 1.9375);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 2, true)[0], 1.96875);
        // in0 = 1.9921875 = 1.1111111b: SrcB keeps 6 mantissa bits under LoFi/HiFi2.
        let (a, b) = single(&[(0, 0, 1.9921875)], &[(0, 0, 1.0)]);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 2, true)[0], 1.984375);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 3, true)[0], 1.9921875);
    }

    #[test]
    fn bf16_dest_rounds_half_away_each_mvmul() {
        // DEST 1.0 plus 2^-8 (= 2^-4 * 2^-4): exactly half an ULP of bf16 at 1.0 -> 1 + 2^-7.
        let (a, b) = single(&[(1, 2, 0.0625)], &[(2, 1, 0.0625)]);
        let mut dest = zeros();
        dest[tile_index(1, 1)] = 1.0;
        assert_eq!(
            model_matmul_tile(&a, &b, &dest, 0, false)[tile_index(1, 1)],
            1.0078125
        );
        assert_eq!(
            model_matmul_tile(&a, &b, &dest, 0, true)[tile_index(1, 1)],
            1.00390625
        );
        dest[tile_index(1, 1)] = -1.0;
        let (a, b) = single(&[(1, 2, -0.0625)], &[(2, 1, 0.0625)]);
        assert_eq!(
            model_matmul_tile(&a, &b, &dest, 0, false)[tile_index(1, 1)],
            -1.0078125
        );
    }

    #[test]
    fn products_align_within_groups_of_eight() {
        // 1.0 at k=0 and 2^-12 at k=1 share a group: 2^-12 is shifted out entirely.
        let (a, b) = single(
            &[(0, 0, 1.0), (0, 1, 0.000244140625)],
            &[(0, 0, 1.0), (1, 0, 1.0)],
        );
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 4, true)[0], 1.0);
        // At k=9 it is in the other group and survives.
        let (a, b) = single(
            &[(0, 0, 1.0), (0, 9, 0.000244140625)],
            &[(0, 0, 1.0), (9, 0, 1.0)],
        );
        assert_eq!(
            model_matmul_tile(&a, &b, &zeros(), 4, true)[0],
            1.000244140625
        );
        // 2^-11 in the same group is exactly half of the last kept bit and rounds up to 2^-10.
        let (a, b) = single(
            &[(0, 0, 1.0), (0, 1, 0.00048828125)],
            &[(0, 0, 1.0), (1, 0, 1.0)],
        );
        assert_eq!(
            model_matmul_tile(&a, &b, &zeros(), 4, true)[0],
            1.0009765625
        );
    }

    #[test]
    fn denormal_operands_and_underflow_are_zero() {
        let tiny = f32::from_bits(0x0040_0000);
        let (a, b) = single(&[(0, 0, tiny)], &[(0, 0, 1.0)]);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 4, true)[0], 0.0);
        // 2^-70 * 2^-70 underflows the 8-bit exponent: +0 even for a negative product.
        let (a, b) = single(&[(0, 0, -(2f32.powi(-70)))], &[(0, 0, 2f32.powi(-70))]);
        assert_eq!(model_matmul_tile(&a, &b, &zeros(), 4, true)[0].to_bits(), 0);
    }

    struct Lcg(u64);
    impl Lcg {
        fn int(&mut self, range: i64) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((self.0 >> 33) % (2 * range as u64 + 1)) as i64 - range;
            if v == 0 { 1.0 } else { v as f32 } // never zero
        }
    }

    fn reference(at: &[[f32; TILE_ELEMS]], bt: &[[f32; TILE_ELEMS]], kt: usize) -> Vec<f64> {
        let mut out = vec![0f64; TILE_ELEMS];
        for r in 0..32 {
            for c in 0..32 {
                let mut s = 0f64;
                for k in 0..kt * 32 {
                    s += at[k / 32][tile_index(r, k % 32)] as f64
                        * bt[k / 32][tile_index(k % 32, c)] as f64;
                }
                out[tile_index(r, c)] = s;
            }
        }
        out
    }

    // Small integers have at most 4 significant bits: every phase-0 product is exact, every
    // group sum and every fp32 accumulation of values below 2^24 is exact. So HiFi4 (and even
    // LoFi) with fp32 DEST must equal the f64 reference exactly, over several K tiles.
    #[test]
    fn small_integers_are_exact_with_fp32_dest() {
        let mut rng = Lcg(7);
        let kt = 3;
        let at: Vec<[f32; TILE_ELEMS]> = (0..kt)
            .map(|_| std::array::from_fn(|_| rng.int(15)))
            .collect();
        let bt: Vec<[f32; TILE_ELEMS]> = (0..kt)
            .map(|_| std::array::from_fn(|_| rng.int(15)))
            .collect();
        let want = reference(&at, &bt, kt);
        for fid in [0, 4] {
            let got = model_matmul(&at, &bt, kt, &zeros(), fid, true);
            for i in 0..TILE_ELEMS {
                assert_eq!(got[i] as f64, want[i], "fidelity {fid} element {i}");
            }
        }
    }

    // With a bf16 DEST, sums stay exact while every partial sum fits in 8 significant bits:
    // values in [-2, 2] over one tile keep |partial sums| <= 128.
    #[test]
    fn small_integers_are_exact_with_bf16_dest() {
        let mut rng = Lcg(11);
        let a: [f32; TILE_ELEMS] = std::array::from_fn(|_| rng.int(2));
        let b: [f32; TILE_ELEMS] = std::array::from_fn(|_| rng.int(2));
        let want = reference(&[a], &[b], 1);
        let got = model_matmul_tile(&a, &b, &zeros(), 2, false);
        for i in 0..TILE_ELEMS {
            assert_eq!(got[i] as f64, want[i], "element {i}");
        }
    }

    // Random bf16 data against f64. HiFi4 + fp32 DEST: every phase product is exact (5x7 bits)
    // but is aligned to its group's largest product with only 12 bits kept (no sticky bit), so
    // each of the 8 lanes may lose half a unit of 2^-11 of the group maximum: at most
    // 8 * 2^-11 = 2^-8 of the group's absolute sum (later phases are smaller still, and the
    // 24-bit accumulation adds ~2^-24). LoFi additionally truncates in1 to 4 and in0 to 6
    // mantissa bits: below 2^-4 + 2^-6 relative per product, so 2^-3 of the absolute sum.
    #[test]
    fn random_bf16_error_bounds() {
        let mut s = 99u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let f = ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0;
            f32::from_bits((if f == 0.0 { 0.5 } else { f }).to_bits() & 0xFFFF_0000)
        };
        let a: [f32; TILE_ELEMS] = std::array::from_fn(|_| next());
        let b: [f32; TILE_ELEMS] = std::array::from_fn(|_| next());
        let want = reference(&[a], &[b], 1);
        let abs_sum: Vec<f64> = (0..TILE_ELEMS)
            .map(|i| {
                let (r, c) = (i / 32, i % 32);
                (0..32)
                    .map(|k| (a[tile_index(r, k)] as f64 * b[tile_index(k, c)] as f64).abs())
                    .sum()
            })
            .collect();
        let hifi4 = model_matmul_tile(&a, &b, &zeros(), 4, true);
        let lofi = model_matmul_tile(&a, &b, &zeros(), 0, true);
        for r in 0..32 {
            for c in 0..32 {
                let i = tile_index(r, c);
                let bound = abs_sum[r * 32 + c];
                assert!(
                    (hifi4[i] as f64 - want[i]).abs() <= bound * 2f64.powi(-8),
                    "hifi4 {i}"
                );
                assert!(
                    (lofi[i] as f64 - want[i]).abs() <= bound * 2f64.powi(-3),
                    "lofi {i}"
                );
            }
        }
    }

    #[test]
    fn wormhole_negative_one_ulp_quirk_only_on_wormhole() {
        // DEST = -(1 + 2^-23), product +1.0: the exact sum is -2^-23 (magnitude 1 in units of
        // 2^-23 at exponent 127). Blackhole gives -2^-23; Wormhole mis-normalises it.
        let (a, b) = single(&[(0, 0, 1.0)], &[(0, 0, 1.0)]);
        let mut dest = zeros();
        dest[0] = -f32::from_bits(0x3F80_0001);
        let bh = model_matmul_tile_arch(&a, &b, &dest, 0, true, false)[0];
        assert_eq!(bh, -(2f32.powi(-23)));
        let wh = model_matmul_tile_arch(&a, &b, &dest, 0, true, true)[0];
        // shift = 23 - 27 = -4: exponent 127 + 4, magnitude (1 + 8) >> 4 = 0 -> -2^4.
        assert_eq!(wh, -16.0);
    }
}
