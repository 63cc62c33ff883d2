//! Bit-exact scalar primitives of the Wormhole B0 FPU datapath, as modelled by Tenstorrent's
//! functional simulator `ttsim` (`src/tensix.cpp`: `fpu_accum_normalize_encode`, `mvmul`,
//! `elwmul`, `elwadd`). Written from a reading of that code; only the 8-bit-exponent
//! ("`fp_exponent_8b`", bf16 / TF32 / BFP*_b operands) variant is modelled.
//!
//! The datapath functions here (`accum_normalize_encode`, `group_sop`, `mvmul_ref`, `elwadd`,
//! `elwmul`) are the straightforward scalar statement of the hardware and are compiled for tests
//! only: the operations run branch-free lane versions of them (`matmul`, `eltwise`), which the
//! tests check against these bit for bit.
//!
//! Encodings used here:
//! - a *source datum* is the 19-bit SrcA/SrcB value: sign in bit 18, biased 8-bit exponent in
//!   bits 17..10, 10 explicit mantissa bits in 9..0 (an fp32 bit pattern shifted right by 13);
//! - a *DEST value* is a plain fp32 bit pattern (in 16-bit mode only the upper 16 bits, the bf16,
//!   are ever non-zero).

/// Mask of the magnitude (exponent + mantissa) bits of a source datum.
pub(crate) const SRC_MAG_MASK: u32 = 0x3FFFF;

/// True when a source datum counts as zero for the multiplier and adder: a zero exponent field
/// (zeros and denormals; the FPU flushes denormals).
#[inline(always)]
pub(crate) fn src_is_zero(v: u32) -> bool {
    (v & SRC_MAG_MASK) < 0x400
}

/// Exponent re-bias applied to a product `exp_a + exp_b` in fidelity phase `phase` (8-bit
/// exponent operands): -127, minus 5 when A contributes its low mantissa slice (odd phases),
/// minus 7 when B contributes its low slice (phases 2 and 3).
#[inline(always)]
pub(crate) fn exp_prod_adj(phase: u32) -> i32 {
    let mut adj = -127;
    if phase & 1 != 0 {
        adj -= 5;
    }
    if phase & 2 != 0 {
        adj -= 7;
    }
    adj
}

/// The 5-bit slice of SrcA's 11-bit mantissa (hidden bit included) that fidelity phase `phase`
/// multiplies: bits 10..6 in even phases, bits 5..1 in odd phases (bit 0 is never used).
#[inline(always)]
pub(crate) fn a_slice(man11: u32, phase: u32) -> u32 {
    if phase & 1 != 0 {
        (man11 >> 1) & 31
    } else {
        man11 >> 6
    }
}

/// The 7-bit slice of SrcB's 11-bit mantissa that fidelity phase `phase` multiplies: bits 10..4
/// in phases 0-1, bits 3..0 shifted up by 3 in phases 2-3.
#[inline(always)]
pub(crate) fn b_slice(man11: u32, phase: u32) -> u32 {
    if phase & 2 != 0 {
        (man11 & 15) << 3
    } else {
        man11 >> 4
    }
}

/// 11-bit mantissa (hidden one included) of a source datum.
#[inline(always)]
pub(crate) fn man11(v: u32) -> u32 {
    (v & 0x3FF) | 0x400
}

/// 8-bit biased exponent of a source datum.
#[inline(always)]
pub(crate) fn exp8(v: u32) -> i32 {
    ((v >> 10) & 255) as i32
}

/// One aligned partial term: sign bit, biased exponent, magnitude (hidden one at bit 23 when
/// normalised).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Term {
    pub sign: u32,
    pub exp: i32,
    pub man: u32,
}

/// Adds up to two product terms to a DEST value and rounds the sum into DEST's precision
/// (ttsim `fpu_accum_normalize_encode`, 8-bit exponent variant).
///
/// All three operands are aligned to the largest exponent; a shifted operand is rounded half-up
/// (products: half toward +inf on the signed value, DEST: half away from zero). Without
/// `fp32_acc` every operand is first rounded to 11 significant bits and the sum is rounded to a
/// bf16 mantissa (half away from zero). Results with a biased exponent <= 0 flush to +0; with an
/// exponent >= 255 they become infinity.
#[cfg(test)]
#[inline]
pub(crate) fn accum_normalize_encode(t0: Term, t1: Term, dst: u32, fp32_acc: bool) -> u32 {
    let sign_dst = dst >> 31;
    let exp_dst = ((dst >> 23) & 255) as i32;
    let mut man_dst = if exp_dst == 0 {
        0
    } else {
        (dst & 0x7F_FFFF) | 0x80_0000
    };

    let exp = t0.exp.max(t1.exp).max(exp_dst);
    if exp <= 0 {
        return 0;
    }
    let align_signed = |t: Term| -> u32 {
        if t.exp < exp {
            let d = (exp - t.exp) as u32;
            if d < 31 {
                (t.man + (1u32 << (d - 1)) - t.sign) >> d
            } else {
                0
            }
        } else {
            t.man
        }
    };
    let mut m0 = align_signed(t0);
    let mut m1 = align_signed(t1);
    if exp_dst < exp {
        let d = (exp - exp_dst) as u32;
        man_dst = if d < 31 {
            (man_dst + (1u32 << (d - 1))) >> d
        } else {
            0
        };
    }
    if !fp32_acc {
        m0 = (m0 + (1 << 12) - t0.sign) & !0x1FFF;
        m1 = (m1 + (1 << 12) - t1.sign) & !0x1FFF;
        man_dst = (man_dst + (1 << 12)) & !0x1FFF;
    }

    let mut sign = sign_dst;
    let mut man = man_dst as i32;
    if t0.sign == sign {
        man += m0 as i32;
    } else {
        man -= m0 as i32;
    }
    if t1.sign == sign {
        man += m1 as i32;
    } else {
        man -= m1 as i32;
    }
    if man < 0 {
        man = -man;
        sign ^= 1;
    }
    if man == 0 {
        return 0;
    }

    let mut shift = man.leading_zeros() as i32 - 8;
    // Wormhole B0 renormalisation bug (modelled by ttsim for WH): -1 counts one leading sign bit
    // too many, handled as a shift of -4.
    if sign != 0 && man == 1 {
        shift -= 27;
    }
    let mut exp = exp - shift;
    if !fp32_acc {
        shift -= 16;
    }
    if shift < 0 {
        let s = -shift;
        man = (man + (1 << (s - 1))) >> s;
    } else {
        man <<= shift;
    }
    if !fp32_acc {
        man <<= 16;
    }
    if man & 0x100_0000 != 0 {
        exp += 1;
    }
    let man = (man as u32) & 0x7F_FFFF;
    if exp <= 0 {
        0
    } else if exp >= 255 {
        (sign << 31) | (255 << 23)
    } else {
        (sign << 31) | ((exp as u32) << 23) | man
    }
}

/// Reduces one group of up to eight products (sign, exponent, magnitude) to a single term: align
/// to the largest exponent, round each shifted product half-up on its magnitude, sum with signs.
/// A group whose largest exponent is <= 0 is zero. Zero products take part in the maximum with
/// exponent 0 (for 8-bit exponent operands) and magnitude 0.
#[cfg(test)]
#[inline]
pub(crate) fn group_sop(signs: &[u32], exps: &[i32], mans: &[u32]) -> Term {
    let mut exp_sop = exps[0];
    for &e in &exps[1..] {
        exp_sop = exp_sop.max(e);
    }
    if exp_sop <= 0 {
        return Term::default();
    }
    let mut sum: i32 = 0;
    for i in 0..exps.len() {
        let d = ((exp_sop - exps[i]) as u32).min(30);
        let m = (((mans[i] << 1) + (1u32 << d)) >> (d + 1)) as i32;
        sum += if signs[i] != 0 { -m } else { m };
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

/// One MVMUL output datum, straight from the hardware description (reference implementation):
/// `dst + sum_i a[i] * b[i]` over 16 source pairs in fidelity phase `phase`, products summed in
/// two groups of eight.
#[cfg(test)]
pub(crate) fn mvmul_ref(a: &[u32; 16], b: &[u32; 16], dst: u32, fp32_acc: bool, phase: u32) -> u32 {
    let adj = exp_prod_adj(phase);
    let zero_term_exp = adj.max(0);
    let mut signs = [0u32; 16];
    let mut exps = [0i32; 16];
    let mut mans = [0u32; 16];
    for i in 0..16 {
        let (x, y) = (a[i], b[i]);
        if src_is_zero(x) || src_is_zero(y) {
            signs[i] = 0;
            exps[i] = zero_term_exp;
            mans[i] = 0;
        } else {
            signs[i] = ((x >> 18) ^ (y >> 18)) & 1;
            exps[i] = exp8(x) + exp8(y) + adj;
            mans[i] = a_slice(man11(x), phase) * b_slice(man11(y), phase);
        }
    }
    let g0 = group_sop(&signs[..8], &exps[..8], &mans[..8]);
    let g1 = group_sop(&signs[8..], &exps[8..], &mans[8..]);
    accum_normalize_encode(g0, g1, dst, fp32_acc)
}

/// ELWMUL of one datum pair in fidelity phase `phase`, accumulated onto `dst` (ELWMUL always
/// accumulates). The scalar reference for the lane code in `eltwise`. Zero-exponent operands (zeros, denormals) give a zero product (the LLK keeps
/// SrcB's denormal flush enabled).
#[cfg(test)]
pub(crate) fn elwmul(a: u32, b: u32, dst: u32, fp32_acc: bool, phase: u32) -> u32 {
    let adj = exp_prod_adj(phase);
    let exp_sop = exp8(a) + exp8(b) + adj;
    let t = if src_is_zero(a) || src_is_zero(b) || exp_sop <= 0 {
        Term {
            sign: 0,
            exp: adj.max(0),
            man: 0,
        }
    } else {
        Term {
            sign: ((a >> 18) ^ (b >> 18)) & 1,
            exp: exp_sop,
            man: (a_slice(man11(a), phase) * b_slice(man11(b), phase)) << 13,
        }
    };
    accum_normalize_encode(t, Term::default(), dst, fp32_acc)
}

/// ELWADD of one datum pair (SrcB already sign-flipped for ELWSUB); `dst` is the DEST value to
/// accumulate onto, or 0 when accumulation is off.
/// The scalar reference for the lane code in `eltwise`.
#[cfg(test)]
pub(crate) fn elwadd(a: u32, b: u32, dst: u32, fp32_acc: bool) -> u32 {
    let mut a = if src_is_zero(a) { 0 } else { a };
    let mut b = if src_is_zero(b) { 0 } else { b };
    if (a & SRC_MAG_MASK) < (b & SRC_MAG_MASK) {
        std::mem::swap(&mut a, &mut b);
    }
    let sign_a = (a >> 18) & 1;
    let sign_b = (b >> 18) & 1;
    let exp_a = exp8(a);
    let exp_b = exp8(b);
    let man_a = if a != 0 { man11(a) } else { 0 };
    let mut man_b = if b != 0 { man11(b) } else { 0 };
    if exp_b < exp_a {
        let d = (exp_a - exp_b) as u32;
        man_b = if d < 12 {
            (man_b + (1 << (d - 1))) >> d
        } else {
            0
        };
    }
    let man_sop = if sign_a == sign_b {
        man_a + man_b
    } else {
        man_a - man_b
    };
    let t = Term {
        sign: sign_a,
        exp: exp_a,
        man: man_sop << 13,
    };
    accum_normalize_encode(t, Term::default(), dst, fp32_acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// bf16 bits -> 19-bit source datum.
    fn s(bf16: u16) -> u32 {
        (bf16 as u32) << 3
    }

    #[test]
    fn slices_hand_worked() {
        // 1.5 in bf16 = 0x3FC0: mantissa 1000000 (7 bits) -> 11-bit 1_1000000_000 = 0x600.
        let m = man11(s(0x3FC0));
        assert_eq!(m, 0x600);
        assert_eq!(a_slice(m, 0), 0b11000); // bits 10..6
        assert_eq!(a_slice(m, 1), 0); // bits 5..1
        assert_eq!(b_slice(m, 0), 0b1100000); // bits 10..4
        assert_eq!(b_slice(m, 2), 0); // bits 3..0 << 3
        // bf16 0x3F81 = 1 + 2^-7: mantissa bit 0 of bf16 is bit 3 of the 11-bit mantissa.
        let m = man11(s(0x3F81));
        assert_eq!(m, 0x408);
        assert_eq!(a_slice(m, 0), 0b10000);
        assert_eq!(a_slice(m, 1), 0b00100); // bit 3 lands in slice bits 5..1 as 0b00100
        assert_eq!(b_slice(m, 0), 0b1000000);
        assert_eq!(b_slice(m, 2), 0b100_0000); // bit 3 -> 8 << 3
        // bf16 0x3F8F: mantissa 0001111 -> 11-bit 1_0001111_000.
        let m = man11(s(0x3F8F));
        assert_eq!(a_slice(m, 0), 0b10001); // bits 10..6
        assert_eq!(a_slice(m, 1), 0b11100); // bits 5..1
        assert_eq!(b_slice(m, 0), 0b1000111); // bits 10..4
        assert_eq!(b_slice(m, 2), 0b1000 << 3); // bits 3..0 = 1000
    }

    #[test]
    fn elwmul_phases_sum_to_exact_bf16_product_in_fp32() {
        // 1.9921875 (0x3FFF) squared: exact product needs all four phases.
        let a = s(0x3FFF);
        let exact = f32::from_bits(0x3FFF_0000) * f32::from_bits(0x3FFF_0000);
        let mut d = 0;
        for p in 0..4 {
            d = elwmul(a, a, d, true, p);
        }
        assert_eq!(f32::from_bits(d), exact);
        // LoFi alone keeps only the top 5 x 7 bits: 1.9375 * 1.984375.
        let lofi = elwmul(a, a, 0, true, 0);
        assert_eq!(f32::from_bits(lofi), 1.9375 * 1.984375);
    }

    #[test]
    fn accum_rounds_to_bf16_half_away() {
        // 1 + 2^-8 is exactly halfway between two bf16 values: rounds up (away from zero).
        let t = Term {
            sign: 0,
            exp: 127,
            man: 0x80_0000 | (1 << 15),
        };
        assert_eq!(
            accum_normalize_encode(t, Term::default(), 0, false),
            0x3F81_0000
        );
        let t = Term {
            sign: 1,
            exp: 127,
            man: 0x80_0000 | (1 << 15),
        };
        // Negative: the 11-bit pre-round subtracts the sign, then the final round is on the
        // magnitude: -(1 + 2^-8) -> -(1 + 2^-7).
        assert_eq!(
            accum_normalize_encode(t, Term::default(), 0, false),
            0xBF81_0000
        );
        // fp32 accumulation keeps it.
        let t = Term {
            sign: 0,
            exp: 127,
            man: 0x80_0000 | (1 << 15),
        };
        assert_eq!(
            accum_normalize_encode(t, Term::default(), 0, true),
            0x3F80_8000
        );
    }

    #[test]
    fn elwadd_matches_simple_sums() {
        let one = s(0x3F80);
        let two = s(0x4000);
        let r = elwadd(one, two, 0, false);
        assert_eq!(f32::from_bits(r), 3.0);
        let r = elwadd(one, two ^ (1 << 18), 0, true);
        assert_eq!(f32::from_bits(r), -1.0);
        // x + (-x) is +0.
        assert_eq!(elwadd(two, two ^ (1 << 18), 0, false), 0);
        // Denormal inputs flush to zero.
        assert_eq!(elwadd(s(0x0001), 0, 0, true), 0);
    }
}
