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
//!   without branches over 32-bit lanes (`accum_step`), with the DEST row kept decoded (sign,
//!   exponent, mantissa) from the first MVMUL of the tile to the last;
//! - zero operands are skipped where that is exact (see `matmul_row`): each decomposed tile
//!   records which datums are live, a group of 8 K takes only the K whose SrcA row and SrcB
//!   datum are live, a group with none is zero and a group with one takes its product as is
//!   (no alignment), and an MVMUL of two zero groups is skipped after the tile's first one (it
//!   would only renormalise DEST). This is what makes the `hifi` plan's isolated-products
//!   passes (weight tiles with one live K row per group of 8) cheap: about 0.6x the time of a
//!   dense tile, all of it in the DEST updates;
//! - the whole block is compiled once per x86-64 SIMD level (AVX-512BW/CD, AVX2, SSE4.1,
//!   baseline) and picked at run time (`multiversion`); buffers are per thread and reused.
//!
//! [`matmul_block`] takes a column of in0 tiles and a row of in1 tiles (the LLK's `rt_dim` x
//! `ct_dim` block for one K tile) and decomposes each operand tile once for the whole block.
//!
//! `tests::matmul_slow` is the straightforward MVMUL-by-MVMUL version (on the scalar reference
//! `core::mvmul_ref`) that the fast path is checked against bit for bit, on random tiles with
//! every fidelity, both DEST widths, transposed in1, zeros, denormals, signed zeros, infinities,
//! NaNs, flushed and overflowing sums and exact cancellations, sparse operands (zero K rows
//! and columns in the isolated-products pattern and random ones, groups at every phase's flush
//! limit) and the fp32-DEST -1 quirk in a one-product group.

use super::core::exp_prod_adj;
use super::{DestTile, FpuConfig, FpuError, SrcTile, face_index};

/// Exponent given to a zero (or denormal) operand. Any product with it has an exponent at least
/// 3841 below every real product, so its alignment distance saturates (it contributes 0), and a
/// group of only zero products has a maximum exponent far below 0 (the group is zero). Two of
/// them still fit in i16 with room for the differences taken below.
const ZERO_EXP: i16 = -4096;

/// One operand tile decomposed into the fields the multiplier uses, as i16 arrays laid out so
/// that the output columns `n` are contiguous (the SIMD lanes): SrcA (in1, the "weights") is
/// indexed `[k][n]`; SrcB (in0) is indexed `[m][k]` and read as scalars broadcast over lanes.
struct Decomposed {
    /// Biased exponent (`ZERO_EXP` for zero/denormal operands).
    exp: [[i16; 32]; 32],
    /// Sign as a mask (0 or -1).
    neg: [[i16; 32]; 32],
    /// Mantissa slices with the operand's sign (0 for flushed operands). SrcA: the 5-bit slice
    /// of even / odd phases (`core::a_slice`), `[phase & 1]`. SrcB: 4 x the 7-bit slice of
    /// phases 0-1 / 2-3 (`core::b_slice`), `[phase >> 1]`.
    man: [[[i16; 32]; 32]; 2],
    /// Per first index `r` (SrcA: K row, SrcB: output row `m`), bit `c` set when datum
    /// `[r][c]` is live (not flushed to zero).
    nz: [u32; 32],
    /// Bit `r` set when `nz[r] != 0` (SrcA: K rows holding any live weight).
    rows: u32,
    /// The smallest biased exponent of a live datum (above 255 when there is none).
    min_exp: u16,
}

/// Decomposes 16 consecutive source datums (one face row) into exponent (`ZERO_EXP` for
/// zeros and denormals, which the FPU flushes), sign mask and the two mantissa slices with the
/// operand's sign (zero for flushed operands); `is_a` picks SrcA's 5-bit slices (bits 10..6,
/// 5..1 of the 11-bit mantissa) or 4 x SrcB's 7-bit slices (bits 10..4, 3..0 << 3).
/// Branch-free so that it vectorises.
#[inline(always)]
pub(super) fn split16(
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

impl Decomposed {
    fn zeroed() -> Self {
        Self {
            exp: [[0; 32]; 32],
            neg: [[0; 32]; 32],
            man: [[[0; 32]; 32]; 2],
            nz: [0; 32],
            rows: 0,
            min_exp: 0,
        }
    }

    /// Decomposes `t` in tile row-major order (`[r][c]`), then transposes when `transpose`.
    /// SrcA (`is_a`) wants `[k][n]` = in1 as is, or in1^T's `[k][n]` = in1 `[n][k]`; SrcB wants
    /// in0 `[m][k]` as is.
    #[inline(always)]
    fn fill(&mut self, t: &SrcTile, is_a: bool, transpose: bool) {
        // Tile row r, columns 16h..16h+15 are contiguous in face order.
        for r in 0..32 {
            for h in 0..2 {
                let base = face_index(r, 16 * h);
                let (c0, c1) = (16 * h, 16 * h + 16);
                let [hi, lo] = &mut self.man;
                split16(
                    &t.v[base..base + 16],
                    is_a,
                    &mut self.exp[r][c0..c1],
                    &mut self.neg[r][c0..c1],
                    &mut hi[r][c0..c1],
                    &mut lo[r][c0..c1],
                );
            }
        }
        if transpose {
            transpose32(&mut self.exp);
            transpose32(&mut self.neg);
            transpose32(&mut self.man[0]);
            transpose32(&mut self.man[1]);
        }
        // Live datums have exponents 1..=255 (sign bit clear), flushed ones `ZERO_EXP` (sign
        // bit set; above 255 as u16).
        let (mut min_exp, mut all) = (u16::MAX, 0i16);
        for &x in self.exp.as_flattened() {
            min_exp = min_exp.min(x as u16);
            all |= x;
        }
        self.min_exp = min_exp;
        if all >= 0 {
            // Every datum live (the common case): no need to look at each.
            self.nz = [u32::MAX; 32];
            self.rows = u32::MAX;
            return;
        }
        self.rows = 0;
        for r in 0..32 {
            let mut bits = 0u32;
            for c in 0..32 {
                bits |= ((self.exp[r][c] != ZERO_EXP) as u32) << c;
            }
            self.nz[r] = bits;
            self.rows |= ((bits != 0) as u32) << r;
        }
    }
}

/// In-place transpose of a 32x32 array.
#[inline(always)]
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
pub(super) fn mulhi(x: i16, y: i16) -> i16 {
    (((x as i32) * (y as i32)) >> 16) as i16
}

/// Leading zeros of `x < 2^31` (32 for 0). With `LZCNT` this is `leading_zeros` (one
/// instruction with AVX-512CD); otherwise an exact int -> float conversion: clearing every 1 bit
/// that has a 1 above it leaves no run of ones, so rounding to 24 bits cannot carry into a new
/// top bit. Both vectorise.
#[inline(always)]
fn lz31<const LZCNT: bool>(x: u32) -> u32 {
    if LZCNT {
        x.leading_zeros()
    } else {
        let y = x & !(x >> 1);
        let f = (y as i32) as f32;
        (158 - (f.to_bits() >> 23)).min(32)
    }
}

/// One DEST datum between the MVMULs of a matmul, decoded: sign mask (0 or -1), biased
/// exponent (0 for zero) and 24-bit mantissa with the hidden bit (0 for zero). Infinity is
/// exponent 255 with mantissa 2^23, which is what decoding its encoding gives.
#[derive(Clone, Copy)]
pub(super) struct DestLanes {
    pub(super) neg: [i32; 32],
    pub(super) exp: [i32; 32],
    pub(super) man: [i32; 32],
}

impl DestLanes {
    /// Decodes DEST values as `accum_normalize_encode` reads them (zero exponent: zero).
    #[inline(always)]
    pub(super) fn decode(bits: &[u32; 32]) -> Self {
        let mut d = Self {
            neg: [0; 32],
            exp: [0; 32],
            man: [0; 32],
        };
        for n in 0..32 {
            let x = bits[n];
            let e = ((x >> 23) & 255) as i32;
            d.neg[n] = (x as i32) >> 31;
            d.exp[n] = e;
            d.man[n] = if e == 0 {
                0
            } else {
                ((x & 0x7F_FFFF) | 0x80_0000) as i32
            };
        }
        d
    }

    /// The fp32 bit patterns. Only valid for values produced by [`accum_step`] (zero is +0,
    /// infinity has a zero mantissa field).
    #[inline(always)]
    pub(super) fn encode(&self, bits: &mut [u32; 32]) {
        for n in 0..32 {
            let sign = if self.exp[n] == 0 {
                0
            } else {
                self.neg[n] as u32
            };
            bits[n] = (sign & 0x8000_0000)
                | ((self.exp[n] as u32) << 23)
                | ((self.man[n] as u32) & 0x7F_FFFF);
        }
    }
}

/// Lane version of [`super::core::accum_normalize_encode`]: adds two group terms to the decoded
/// DEST value `(nd, ed, md)` (see [`DestLanes`]) and rounds into DEST's precision, returning the
/// new decoded value; branch-free so that it vectorises. A term is its signed group sum `s`
/// (the reference's magnitude is `|s| << 13`) and its exponent `e` (`s == 0`, `e == 0` for a
/// flushed group, as `group_sop` returns).
///
/// Differences in formulation from the reference, all exact:
/// - a term aligned by `d` is `((2v >> d) + 1) >> 1` on the signed value `v`, i.e. rounded half
///   toward +inf, which is the reference's "add half, subtract the sign bit, shift" on the
///   magnitude; DEST keeps sign-magnitude rounding (half away from zero). Distances are clamped
///   to 31, where every operand has shifted out;
/// - normalising shifts the sum's leading one to bit 30 (exact: the sum is below 2^30) and then
///   rounds half-up at a fixed position (bit 7 for fp32, bit 23 for bf16), which covers both
///   the reference's left shift (exact) and its rounding right shift;
/// - the Wormhole -1 quirk (a sum of exactly -1 is normalised 27 places too far) only moves the
///   exponent: the mantissa of 1 shifted by -4 rounds to 0, and that of 2^23 is 0 too. It needs
///   a sum of magnitude 1, which 16-bit DEST (multiples of 2^13) never has.
#[inline(always)]
pub(super) fn accum_step<const FP32: bool, const LZCNT: bool>(
    s0: i32,
    e0: i32,
    s1: i32,
    e1: i32,
    nd: i32,
    ed: i32,
    md: i32,
) -> (i32, i32, i32) {
    let e = e0.max(e1).max(ed);
    let d0 = ((e - e0) as u32).min(31);
    let d1 = ((e - e1) as u32).min(31);
    let dd = (e - ed) as u32;
    // Rounded alignment: ceil(y / 2) = floor((y + 1) / 2) of y = 2v >> d.
    let y0 = s0 << 14 >> d0;
    let y1 = s1 << 14 >> d1;
    let yd = ((md as u32) << 1).checked_shr(dd).unwrap_or(0) as i32;
    let mut a0 = y0 - (y0 >> 1);
    let mut a1 = y1 - (y1 >> 1);
    let mut ad = yd - (yd >> 1);
    if !FP32 {
        a0 = (a0 + (1 << 12)) & !0x1FFF;
        a1 = (a1 + (1 << 12)) & !0x1FFF;
        ad = (ad + (1 << 12)) & !0x1FFF;
    }
    let t = ((ad ^ nd) - nd) + a0 + a1;
    let mag = t.unsigned_abs();
    // Leading zeros of 2 mag + 1 (mag < 2^30): one less than those of mag, in 1..=31.
    let lz1 = lz31::<LZCNT>((mag << 1) | 1);
    let mut expo = e + 7 - lz1 as i32;
    if FP32 && t == -1 {
        // Wormhole B0 renormalisation bug, as in `accum_normalize_encode`.
        expo += 27;
    }
    // Leading one at bit 30 (0 stays 0).
    let x = mag << lz1;
    let r = if FP32 {
        (x + (1 << 6)) >> 7
    } else {
        ((x + (1 << 22)) >> 23) << 16
    };
    // r is 0 (for a zero sum) or in [2^23, 2^24]; 2^24 is a carry into the exponent.
    let carry = r >> 24;
    let ef = expo + carry as i32;
    let zero = r == 0 || ef <= 0;
    // A zero keeps its sign mask: with a zero mantissa the sign never matters, and
    // `DestLanes::encode` writes +0.
    let exp = if zero { 0 } else { ef.min(255) };
    let man = if ef >= 255 { 0x80_0000 } else { r >> carry };
    let man = if zero { 0 } else { man as i32 };
    (t >> 31, exp, man)
}

/// The largest product exponent per column and the signed, aligned and rounded group sums per
/// phase of the products over the K in `ks` (one group's live K; see `matmul_row`).
#[inline(always)]
fn group_sums<const KEEP_E: bool, const P: usize>(
    a: &Decomposed,
    b: &Decomposed,
    m: usize,
    ks: &[usize],
) -> ([i16; 32], [[i16; 32]; P]) {
    let mut mx = [i16::MIN; 32];
    // The product exponents, kept from this pass when `KEEP_E` (fewer instructions), else
    // recomputed below (no stores: with AVX-512 the stack stores measured up to 35% slower
    // in some call contexts, consistent with 4 KiB aliasing against the operand loads).
    let mut e = [[0i16; 32]; 8];
    // (`k & 31`, `m & 31`: in range anyway; lets the compiler drop the bounds checks.)
    let m = m & 31;
    for (kk, &k) in ks.iter().enumerate() {
        let k = k & 31;
        let eb = b.exp[m][k];
        for n in 0..32 {
            let x = a.exp[k][n] + eb;
            if KEEP_E {
                e[kk][n] = x;
            }
            mx[n] = mx[n].max(x);
        }
    }
    let mut acc = [[0i16; 32]; P];
    for (kk, &k) in ks.iter().enumerate() {
        let k = k & 31;
        let (nb, eb) = (b.neg[m][k], b.exp[m][k]);
        let mut scale = [0i16; 32];
        let mut bias = [0i16; 32];
        for n in 0..32 {
            let x = if KEEP_E { e[kk][n] } else { a.exp[k][n] + eb };
            // mx >= the exponent: the distance is non-negative.
            let d = ((mx[n] - x) as u16).min(13);
            scale[n] = (16384u16 >> d) as i16;
            bias[n] = ((2u16 << d) as i16) + (a.neg[k][n] ^ nb);
        }
        for p in 0..P {
            let am = &a.man[p & 1][k];
            let bk = b.man[p >> 1][m][k];
            for n in 0..32 {
                acc[p][n] += mulhi(am[n] * bk + bias[n], scale[n]);
            }
        }
    }
    (mx, acc)
}

/// The DEST updates of one output row: for each phase, the two MVMULs (K 0..15: groups 0 and
/// 1, then K 16..31: groups 2 and 3) of the group sums `s` with group maximum exponents `em`.
///
/// With `FLUSH`, a group whose exponent in the phase is <= 0 is zero: it gets an exponent far
/// below DEST's (>= 0), so that it never sets the maximum and its sum is shifted out entirely
/// (`accum_step` clamps distances at 31), like the reference's zero term. Without `FLUSH` (for
/// rows where every group with such an exponent has sum 0, see `matmul_row`) the exponent is
/// used as is: a zero sum contributes 0 at any distance, and an exponent <= 0 never exceeds
/// DEST's, so the maximum is the same.
#[inline(always)]
fn accum_row<const FP32: bool, const LZCNT: bool, const P: usize, const FLUSH: bool>(
    s: &[[[i16; 32]; 4]; P],
    em: &[[i32; 32]; 4],
    live_k: u32,
    dl: &mut DestLanes,
) {
    let mut normalised = false;
    for p in 0..P {
        let adj = exp_prod_adj(p as u32);
        let live = |x: i32| {
            if !FLUSH || x > 0 { x } else { -64 }
        };
        for h in 0..2 {
            // An MVMUL whose two groups are zero only renormalises DEST (zero terms), which
            // changes nothing once DEST holds a value this function produced: skip it after the
            // first MVMUL.
            if normalised && (live_k >> (16 * h)) & 0xFFFF == 0 {
                continue;
            }
            normalised = true;
            for n in 0..32 {
                (dl.neg[n], dl.exp[n], dl.man[n]) = accum_step::<FP32, LZCNT>(
                    s[p][2 * h][n] as i32,
                    live(em[2 * h][n] + adj),
                    s[p][2 * h + 1][n] as i32,
                    live(em[2 * h + 1][n] + adj),
                    dl.neg[n],
                    dl.exp[n],
                    dl.man[n],
                );
            }
        }
    }
}

/// One output row `m` (all 32 columns as lanes) of the tile matmul with `P` fidelity phases,
/// accumulated onto `row` (fp32 bit patterns).
#[inline(always)]
fn matmul_row<const FP32: bool, const LZCNT: bool, const KEEP_E: bool, const P: usize>(
    a: &Decomposed,
    b: &Decomposed,
    m: usize,
    row: &mut [u32; 32],
) {
    // Per group g of 8 K: the largest product exponent per column, then per product, with
    // d = distance to that maximum clamped to 13 (every product then rounds to 0), `scale` =
    // 2^(14 - d) and `bias` = 2^(d + 1), minus 1 for a negative product. Both are phase
    // independent and used at once for the products of every phase (one pass over K).
    //
    // A product p = a * b (a < 2^5, b < 2^7 mantissa slices) aligned by d and rounded half away
    // from zero on its magnitude, with its sign s, is then `mulhi(s * 4p + bias, scale)`:
    // for s = +1, floor((4p 2^(14-d) + 2^15) / 2^16) = floor(p / 2^d + 1/2); for s = -1,
    // floor((-(4p + 1) 2^(14-d) + 2^15) / 2^16) = floor(-(4p + 1) / 2^(d+2) + 1/2), which is
    // -floor(p / 2^d + 1/2) (the -1 turns the half-up rounding of the negated value into
    // half-down, and cannot change a non-tie because 4p and 2^(d+2) are multiples of 4).
    // Ranges: |s (4p + 1)| <= 15749, bias <= 2^14, so all i16. With d = 13 the result is 0
    // for every p < 2^12, as the unclamped distance requires.
    //
    // Products with a zero (flushed) operand contribute 0 to a group's sum and never set its
    // maximum while a live product exists (their exponent is below every live one); a group
    // without live products is zero whatever its maximum. So only the K whose SrcA row and
    // SrcB datum are both live (`a.rows & b.nz[m]`) take part: a group with none gets sum 0
    // and exponent `i16::MIN` (flushed below, like any maximum <= 0), and a group with one
    // gets that product unrounded (distance 0: `mulhi(s 4p + 2 - (s < 0), 2^14)` is `s p`).
    let live_k = a.rows & b.nz[m];
    let mut emax = [[i16::MIN; 32]; 4];
    // Signed group sums per phase (|sum| <= 8 * 31 * 127 fits i16).
    let mut s = [[[0i16; 32]; 4]; P];
    for g in 0..4 {
        let mask = (live_k >> (8 * g)) & 0xFF;
        if mask == 0 {
            continue;
        }
        if mask.is_power_of_two() {
            let k = 8 * g + mask.trailing_zeros() as usize;
            let eb = b.exp[m][k];
            for n in 0..32 {
                emax[g][n] = a.exp[k][n] + eb;
            }
            for p in 0..P {
                let am = &a.man[p & 1][k];
                // SrcB's slices are 4 x the 7-bit slice: exact quarter.
                let bk = b.man[p >> 1][m][k] >> 2;
                for n in 0..32 {
                    s[p][g][n] = am[n] * bk;
                }
            }
            continue;
        }
        if mask == 0xFF {
            let mut mx = [i16::MIN; 32];
            let mut e = [[0i16; 32]; 8];
            for kk in 0..8 {
                let k = 8 * g + kk;
                let eb = b.exp[m][k];
                for n in 0..32 {
                    let x = a.exp[k][n] + eb;
                    if KEEP_E {
                        e[kk][n] = x;
                    }
                    mx[n] = mx[n].max(x);
                }
            }
            let mut acc = [[0i16; 32]; P];
            for kk in 0..8 {
                let k = 8 * g + kk;
                let (nb, eb) = (b.neg[m][k], b.exp[m][k]);
                let mut scale = [0i16; 32];
                let mut bias = [0i16; 32];
                for n in 0..32 {
                    let x = if KEEP_E { e[kk][n] } else { a.exp[k][n] + eb };
                    let d = ((mx[n] - x) as u16).min(13);
                    scale[n] = (16384u16 >> d) as i16;
                    bias[n] = ((2u16 << d) as i16) + (a.neg[k][n] ^ nb);
                }
                for p in 0..P {
                    let am = &a.man[p & 1][k];
                    let bk = b.man[p >> 1][m][k];
                    for n in 0..32 {
                        acc[p][n] += mulhi(am[n] * bk + bias[n], scale[n]);
                    }
                }
            }
            for p in 0..P {
                s[p][g] = acc[p];
            }
            emax[g] = mx;
            continue;
        }
        let (mx, acc) = {
            let mut ks = [0usize; 8];
            let mut cnt = 0;
            let mut bits = mask;
            while bits != 0 {
                ks[cnt] = 8 * g + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                cnt += 1;
            }
            group_sums::<KEEP_E, P>(a, b, m, &ks[..cnt])
        };
        for p in 0..P {
            s[p][g] = acc[p];
        }
        emax[g] = mx;
    }
    let mut em = [[0i32; 32]; 4];
    // A group with live products has a maximum exponent >= 2 (biased sum) and is flushed in
    // a phase when that plus the phase's re-bias (-127 .. -139) is <= 0; every other group has
    // sum 0. Rows without any such small maximum skip the flush test (see `accum_row`).
    for g in 0..4 {
        for n in 0..32 {
            em[g][n] = emax[g][n] as i32;
        }
    }
    // Such a maximum needs live operands whose exponents sum to <= 139: none in most tiles.
    let mut small = false;
    if a.min_exp as u32 + b.min_exp as u32 <= 139 {
        for g in 0..4 {
            for n in 0..32 {
                small |= ((em[g][n] - 2) as u32) < 138;
            }
        }
    }
    let mut dl = DestLanes::decode(row);
    if small {
        accum_row::<FP32, LZCNT, P, true>(&s, &em, live_k, &mut dl);
    } else {
        accum_row::<FP32, LZCNT, P, false>(&s, &em, live_k, &mut dl);
    }
    dl.encode(row);
}

/// [`matmul_row`] for operands without flushed datums (every group dense, nothing to skip):
/// the same arithmetic without the zero-K bookkeeping, which measurably slows the cheap
/// (LoFi) tiles.
#[inline(always)]
fn matmul_row_dense<const FP32: bool, const LZCNT: bool, const KEEP_E: bool, const P: usize>(
    a: &Decomposed,
    b: &Decomposed,
    m: usize,
    row: &mut [u32; 32],
) {
    // Per group g of 8 K: the largest product exponent per column, then per product, with
    // d = distance to that maximum clamped to 13 (every product then rounds to 0), `scale` =
    // 2^(14 - d) and `bias` = 2^(d + 1), minus 1 for a negative product. Both are phase
    // independent and used at once for the products of every phase (one pass over K).
    //
    // A product p = a * b (a < 2^5, b < 2^7 mantissa slices) aligned by d and rounded half away
    // from zero on its magnitude, with its sign s, is then `mulhi(s * 4p + bias, scale)`:
    // for s = +1, floor((4p 2^(14-d) + 2^15) / 2^16) = floor(p / 2^d + 1/2); for s = -1,
    // floor((-(4p + 1) 2^(14-d) + 2^15) / 2^16) = floor(-(4p + 1) / 2^(d+2) + 1/2), which is
    // -floor(p / 2^d + 1/2) (the -1 turns the half-up rounding of the negated value into
    // half-down, and cannot change a non-tie because 4p and 2^(d+2) are multiples of 4).
    // Ranges: |s (4p + 1)| <= 15749, bias <= 2^14, so all i16. With d = 13 the result is 0
    // for every p < 2^12, as the unclamped distance requires.
    let mut emax = [[0i16; 32]; 4];
    // Signed group sums per phase (|sum| <= 8 * 31 * 127 fits i16).
    let mut s = [[[0i16; 32]; 4]; P];
    for g in 0..4 {
        let mut mx = [i16::MIN; 32];
        // The product exponents, kept from this pass when `KEEP_E` (fewer instructions), else
        // recomputed below (no stores: with AVX-512 the stack stores measured up to 35% slower
        // in some call contexts, consistent with 4 KiB aliasing against the operand loads).
        let mut e = [[0i16; 32]; 8];
        for kk in 0..8 {
            let k = 8 * g + kk;
            let eb = b.exp[m][k];
            for n in 0..32 {
                let x = a.exp[k][n] + eb;
                if KEEP_E {
                    e[kk][n] = x;
                }
                mx[n] = mx[n].max(x);
            }
        }
        let mut acc = [[0i16; 32]; P];
        for kk in 0..8 {
            let k = 8 * g + kk;
            let (nb, eb) = (b.neg[m][k], b.exp[m][k]);
            let mut scale = [0i16; 32];
            let mut bias = [0i16; 32];
            for n in 0..32 {
                let x = if KEEP_E { e[kk][n] } else { a.exp[k][n] + eb };
                // mx >= the exponent: the distance is non-negative.
                let d = ((mx[n] - x) as u16).min(13);
                scale[n] = (16384u16 >> d) as i16;
                bias[n] = ((2u16 << d) as i16) + (a.neg[k][n] ^ nb);
            }
            for p in 0..P {
                let am = &a.man[p & 1][k];
                let bk = b.man[p >> 1][m][k];
                for n in 0..32 {
                    acc[p][n] += mulhi(am[n] * bk + bias[n], scale[n]);
                }
            }
        }
        for p in 0..P {
            s[p][g] = acc[p];
        }
        emax[g] = mx;
    }
    let mut em = [[0i32; 32]; 4];
    // A group with live products has a maximum exponent >= 2 (biased sum) and is flushed in
    // a phase when that plus the phase's re-bias (-127 .. -139) is <= 0; every other group has
    // sum 0. Rows without any such small maximum skip the flush test (see `accum_row`).
    for g in 0..4 {
        for n in 0..32 {
            em[g][n] = emax[g][n] as i32;
        }
    }
    // Such a maximum needs live operands whose exponents sum to <= 139: none in most tiles.
    let mut small = false;
    if a.min_exp as u32 + b.min_exp as u32 <= 139 {
        for g in 0..4 {
            for n in 0..32 {
                small |= ((em[g][n] - 2) as u32) < 138;
            }
        }
    }
    let mut dl = DestLanes::decode(row);
    if small {
        accum_row::<FP32, LZCNT, P, true>(&s, &em, u32::MAX, &mut dl);
    } else {
        accum_row::<FP32, LZCNT, P, false>(&s, &em, u32::MAX, &mut dl);
    }
    dl.encode(row);
}

/// DEST tile += the product of the decomposed operands.
#[inline(always)]
fn matmul_tile<const FP32: bool, const LZCNT: bool, const KEEP_E: bool, const P: usize>(
    dst: &mut DestTile,
    a: &Decomposed,
    b: &Decomposed,
) {
    for m in 0..32 {
        // Row m of the tile: columns 0..15 in face (m / 16) * 2, 16..31 in the next face.
        let base = (m / 16) * 512 + (m % 16) * 16;
        let mut row = [0u32; 32];
        row[..16].copy_from_slice(&dst.v[base..base + 16]);
        row[16..].copy_from_slice(&dst.v[base + 256..base + 272]);
        if a.rows & b.nz[m] == u32::MAX {
            matmul_row_dense::<FP32, LZCNT, KEEP_E, P>(a, b, m, &mut row);
        } else {
            matmul_row::<FP32, LZCNT, KEEP_E, P>(a, b, m, &mut row);
        }
        dst.v[base..base + 16].copy_from_slice(&row[..16]);
        dst.v[base + 256..base + 272].copy_from_slice(&row[16..]);
    }
    dst.set_all_valid();
}

/// Reusable buffers of the matmul (kept per thread so that a call allocates nothing).
struct Work {
    /// Decomposed in1 tiles (SrcA), one per output column of a block.
    a: Vec<Decomposed>,
    /// The decomposed in0 tile (SrcB) of the current output row.
    b: Decomposed,
}

impl Work {
    fn new() -> Box<Self> {
        Box::new(Self {
            a: Vec::new(),
            b: Decomposed::zeroed(),
        })
    }
}

thread_local! {
    static WORK: std::cell::RefCell<Box<Work>> = std::cell::RefCell::new(Work::new());
}

/// Runs `f` with this thread's [`Work`] (a fresh one if it is somehow already in use).
fn with_work(f: impl FnOnce(&mut Work)) {
    WORK.with(|w| match w.try_borrow_mut() {
        Ok(mut w) => f(&mut w),
        Err(_) => f(&mut Work::new()),
    })
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
    with_work(|w| {
        matmul_block_dispatch(
            std::slice::from_mut(dst),
            std::slice::from_ref(in0_srcb),
            std::slice::from_ref(in1_srca),
            transpose_in1,
            cfg.fp32_dest_acc,
            cfg.fidelity.phases(),
            w,
        )
    });
}

/// `matmul_block` (the LLK's `rt_dim` x `ct_dim` block for one K tile): for every output row
/// tile `r < in0.len()` and column tile `c < in1.len()`,
/// `dst[r * in1.len() + c] += in0[r] x in1[c]` (in1^T with `transpose_in1`), each tile exactly
/// as [`matmul`] computes it. Every operand tile is decomposed once, not once per use (a small
/// part of a tile matmul: measured equal to or up to ~10% faster per tile than calling
/// [`matmul`] per output tile).
///
/// # Errors
/// [`FpuError::BlockShape`] when `dst` does not hold `in0.len() * in1.len()` tiles.
pub fn matmul_block(
    dst: &mut [DestTile],
    in0_srcb: &[SrcTile],
    in1_srca: &[SrcTile],
    transpose_in1: bool,
    cfg: &FpuConfig,
) -> Result<(), FpuError> {
    if dst.len() != in0_srcb.len() * in1_srca.len() {
        return Err(FpuError::BlockShape {
            dst: dst.len(),
            rows: in0_srcb.len(),
            cols: in1_srca.len(),
        });
    }
    with_work(|w| {
        matmul_block_dispatch(
            dst,
            in0_srcb,
            in1_srca,
            transpose_in1,
            cfg.fp32_dest_acc,
            cfg.fidelity.phases(),
            w,
        )
    });
    Ok(())
}

/// The block matmul, compiled once per SIMD level and picked at run time by CPU feature
/// detection (the code is the same portable lane code; the wider instruction sets give LLVM
/// 16-bit variable shifts, `vplzcntd`, more and wider registers). Bit-exact on every level.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+sse4.1",
))]
fn matmul_block_dispatch(
    dst: &mut [DestTile],
    in0_srcb: &[SrcTile],
    in1_srca: &[SrcTile],
    transpose_in1: bool,
    fp32: bool,
    phases: u32,
    w: &mut Work,
) {
    const LZCNT: bool = multiversion::target::selected_target!().supports_feature_str("avx512cd");
    // Measured: AVX-512 faster recomputing product exponents, AVX2 faster keeping them.
    const KEEP_E: bool = !multiversion::target::selected_target!().supports_feature_str("avx512bw");
    let ct = in1_srca.len();
    while w.a.len() < ct {
        w.a.push(Decomposed::zeroed());
    }
    for (a, t) in w.a.iter_mut().zip(in1_srca) {
        a.fill(t, true, transpose_in1);
    }
    for (r, t0) in in0_srcb.iter().enumerate() {
        w.b.fill(t0, false, false);
        for c in 0..ct {
            let (d, a, b) = (&mut dst[r * ct + c], &w.a[c], &w.b);
            match (fp32, phases) {
                (true, 1) => matmul_tile::<true, LZCNT, KEEP_E, 1>(d, a, b),
                (true, 2) => matmul_tile::<true, LZCNT, KEEP_E, 2>(d, a, b),
                (true, 3) => matmul_tile::<true, LZCNT, KEEP_E, 3>(d, a, b),
                (true, _) => matmul_tile::<true, LZCNT, KEEP_E, 4>(d, a, b),
                (false, 1) => matmul_tile::<false, LZCNT, KEEP_E, 1>(d, a, b),
                (false, 2) => matmul_tile::<false, LZCNT, KEEP_E, 2>(d, a, b),
                (false, 3) => matmul_tile::<false, LZCNT, KEEP_E, 3>(d, a, b),
                (false, _) => matmul_tile::<false, LZCNT, KEEP_E, 4>(d, a, b),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
    /// (sums overflow to infinity), 4 near the flush limit (biased product exponent sums
    /// 124..142: groups flushed in some phases only), 5 at the last phase's flush limit
    /// (sums 138..140). One datum in 16 has a zero exponent field (signed zero or
    /// denormal with a random mantissa). bf16-family tiles keep the low 3 mantissa bits 0.
    pub(crate) fn rand_raw_tile(rng: &mut Rng, tf32: bool, kind: u32) -> SrcTile {
        let mut v = [0u32; TILE_DATUMS];
        for x in v.iter_mut() {
            let r = rng.next_u64();
            let sign = (r & 1) as u32;
            let mut man = ((r >> 1) & 0x3FF) as u32;
            if !tf32 {
                man &= !7;
            }
            let e = (r >> 16) as u32;
            let exp = if (r >> 40).is_multiple_of(16) {
                0
            } else if kind == 0 && (r >> 40) % 512 == 1 {
                255
            } else {
                match kind {
                    0 => 64 + e % 128,
                    1 => 112 + e % 32,
                    2 => 1 + e % 70,
                    3 => 140 + e % 50,
                    4 => 62 + e % 10,
                    _ => 69 + e % 2,
                }
            };
            *x = (sign << 18) | (exp << 10) | man;
        }
        SrcTile::from_raw19(v, tf32)
    }

    /// A DEST tile of random values around 2^(center - 127) (+-2^spread), signs random, some
    /// exact (signed) zeros and denormals; bf16 mode keeps only the upper 16 bits.
    pub(crate) fn rand_dest(rng: &mut Rng, fp32: bool, center: i32, spread: u32) -> DestTile {
        let mut d = DestTile::zero();
        for x in d.v.iter_mut() {
            let r = rng.next_u64();
            let exp = if (r >> 40).is_multiple_of(16) {
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

    /// A zero source datum for the tests: +-0 or a denormal (flushed like a zero), random.
    fn rand_zero(rng: &mut Rng) -> u32 {
        let r = rng.next_u64();
        (((r & 1) as u32) << 18) | ((r >> 1) as u32 & 0x3FF)
    }

    #[test]
    fn sparse_operands_equal_slow() {
        // The zero-K shortcuts of `matmul_row` (groups with no or one live product, MVMULs with
        // only zero groups) against the reference on tiles whose in1 (SrcA) has zero K rows and
        // whose in0 (SrcB) rows have zero K columns, in the patterns of tt-kernels' isolated
        // products (only K = j mod 8 live in in1) and random ones (per-K density 1/8 .. 7/8,
        // whole zero in0 rows and K halves), every fidelity, both DEST widths, transposed in1.
        let mut rng = Rng::new(808);
        // Groups (output row, group of 8 K) seen with 0, 1, 2..7 and 8 live products.
        let mut seen = [0usize; 4];
        for pattern in 0..6u32 {
            for fid in [
                Fidelity::LoFi,
                Fidelity::HiFi2,
                Fidelity::HiFi3,
                Fidelity::HiFi4,
            ] {
                for fp32 in [false, true] {
                    for tr in [false, true] {
                        let cfg = FpuConfig::new(fid, fp32, false);
                        let mut in0 = rand_raw_tile(&mut rng, fp32, 1);
                        let mut in1 = rand_raw_tile(&mut rng, fp32, 1);
                        let density = |rng: &mut Rng, num: u64| {
                            let mut bits = 0u32;
                            for k in 0..32 {
                                bits |= ((rng.next_u64() % 8 < num) as u32) << k;
                            }
                            bits
                        };
                        let k_rows = match pattern {
                            0 | 1 => 0x0101_0101u32 << (rng.next_u64() % 8),
                            2 => density(&mut rng, 1),
                            3 => density(&mut rng, 4) & 0xFF00_FF0F,
                            4 => density(&mut rng, 7),
                            _ => u32::MAX,
                        };
                        for k in 0..32 {
                            if k_rows >> k & 1 == 0 {
                                for n in 0..32 {
                                    let i = if tr {
                                        face_index(n, k)
                                    } else {
                                        face_index(k, n)
                                    };
                                    in1.v[i] = rand_zero(&mut rng);
                                }
                            }
                        }
                        let mut live0 = [0u32; 32];
                        for m in 0..32 {
                            let keep = match (pattern, m % 8) {
                                (1, _) => u32::MAX,
                                (_, 0) => 0,
                                (_, 1) => 0xFFFF_0000,
                                (_, 2) => 0x0000_FFFF,
                                _ => density(&mut rng, 6),
                            };
                            for k in 0..32 {
                                let i = face_index(m, k);
                                if keep >> k & 1 == 0 {
                                    in0.v[i] = rand_zero(&mut rng);
                                }
                                if in0.v[i] & core::SRC_MAG_MASK >= 0x400 {
                                    live0[m] |= 1 << k;
                                }
                            }
                        }
                        let mut rows1 = 0u32;
                        for k in 0..32 {
                            for n in 0..32 {
                                let i = if tr {
                                    face_index(n, k)
                                } else {
                                    face_index(k, n)
                                };
                                if in1.v[i] & core::SRC_MAG_MASK >= 0x400 {
                                    rows1 |= 1 << k;
                                }
                            }
                        }
                        for m in 0..32 {
                            for g in 0..4 {
                                let c = ((rows1 & live0[m]) >> (8 * g) & 0xFF).count_ones();
                                seen[match c {
                                    0 => 0,
                                    1 => 1,
                                    8 => 3,
                                    _ => 2,
                                }] += 1;
                            }
                        }
                        let mut d0 = rand_dest(&mut rng, fp32, 120, 12);
                        // Some DEST values that the first MVMUL changes even with zero
                        // products: NaN (becomes infinity), -0 and denormals (flushed to +0).
                        for i in (0..TILE_DATUMS).step_by(37) {
                            let special = [0x7FC0_0000, 0xFF81_0000, 0x8000_0000, 0x0001_0000];
                            d0.v[i] = special[(rng.next_u64() % 4) as usize];
                        }
                        let mut d1 = d0.clone();
                        for _ in 0..2 {
                            matmul(&mut d0, &in0, &in1, tr, &cfg);
                            matmul_slow(&mut d1, &in0, &in1, tr, &cfg);
                        }
                        let bad = (0..TILE_DATUMS).find(|&i| d0.v[i] != d1.v[i]);
                        assert!(
                            bad.is_none(),
                            "pattern {pattern} {fid:?} fp32 {fp32} transpose {tr}: datum \
                             {bad:?}: fast {:#x} slow {:#x}",
                            d0.v[bad.unwrap_or(0)],
                            d1.v[bad.unwrap_or(0)]
                        );
                    }
                }
            }
        }
        // Every kind of group occurred often.
        assert!(seen.iter().all(|&c| c > 200), "{seen:?}");
    }

    #[test]
    fn groups_at_the_flush_limit_equal_slow() {
        // Group maximum exponents around the phases' flush limits (a group is zero in a phase
        // when its exponent sum is <= 127 .. 139), DEST zero or tiny, so that flushed groups
        // would visibly change DEST if they were not flushed; dense and one-product groups.
        let mut rng = Rng::new(4711);
        for fid in [
            Fidelity::LoFi,
            Fidelity::HiFi2,
            Fidelity::HiFi3,
            Fidelity::HiFi4,
        ] {
            for (fp32, kind) in [(false, 4), (true, 4), (false, 5), (true, 5)] {
                for sparse in [false, true] {
                    let cfg = FpuConfig::new(fid, fp32, false);
                    let in0 = rand_raw_tile(&mut rng, fp32, kind);
                    let mut in1 = rand_raw_tile(&mut rng, fp32, kind);
                    if sparse {
                        for k in (0..32).filter(|k| k % 8 != 5) {
                            for n in 0..32 {
                                in1.v[face_index(k, n)] = rand_zero(&mut rng);
                            }
                        }
                    }
                    for start in [DestTile::zero(), rand_dest(&mut rng, fp32, 3, 3)] {
                        let (mut d0, mut d1) = (start.clone(), start);
                        matmul(&mut d0, &in0, &in1, false, &cfg);
                        matmul_slow(&mut d1, &in0, &in1, false, &cfg);
                        assert_eq!(
                            d0.v, d1.v,
                            "{fid:?} fp32 {fp32} kind {kind} sparse {sparse}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn one_product_groups_keep_the_minus_one_quirk() {
        // in0 row m has one live K (0), in1 only K row 0 (the isolated-products pattern), and
        // fp32 DEST holds minus the exact product, one ulp larger in magnitude: the first MVMUL's
        // aligned sum is -1 unit and the Wormhole renormalisation quirk fires (detected with the
        // reference datum function: the result exceeds the magnitudes that went in). Values have
        // short mantissas (A: 4 bits, B: 6 bits) so that phase 0 multiplies them exactly.
        let mut rng = Rng::new(31337);
        let mut fired = 0;
        for fid in [
            Fidelity::LoFi,
            Fidelity::HiFi2,
            Fidelity::HiFi3,
            Fidelity::HiFi4,
        ] {
            let cfg = FpuConfig::new(fid, true, false);
            let bf = |rng: &mut Rng, man_bits: u32| {
                let r = rng.next_u64();
                let man = (r as u32 & ((1 << man_bits) - 1)) << (7 - man_bits);
                let exp = 120 + (r >> 20) as u32 % 16;
                (((r >> 40) as u32 & 1) << 15) | (exp << 7) | man
            };
            let mut in0 = [0u32; TILE_DATUMS];
            let mut in1 = [0u32; TILE_DATUMS];
            for m in 0..32 {
                in0[face_index(m, 0)] = bf(&mut rng, 6) << 3;
                in1[face_index(0, m)] = bf(&mut rng, 4) << 3;
            }
            let mut d0 = DestTile::zero();
            for m in 0..32 {
                for n in 0..32 {
                    let x = f32::from_bits(in0[face_index(m, 0)] << 13);
                    let y = f32::from_bits(in1[face_index(0, n)] << 13);
                    d0.v[face_index(m, n)] = (-(x * y)).to_bits() + 1;
                }
            }
            d0.set_all_valid();
            for m in 0..32 {
                for n in 0..32 {
                    let (mut av, mut bv) = ([0u32; 16], [0u32; 16]);
                    av[0] = in1[face_index(0, n)];
                    bv[0] = in0[face_index(m, 0)];
                    let dst = d0.v[face_index(m, n)];
                    let r = core::mvmul_ref(&av, &bv, dst, true, 0);
                    let x = f32::from_bits(bv[0] << 13) as f64;
                    let y = f32::from_bits(av[0] << 13) as f64;
                    let bound = (f32::from_bits(dst) as f64).abs() + (x * y).abs();
                    if (f32::from_bits(r) as f64).abs() > 2.0 * bound {
                        fired += 1;
                    }
                }
            }
            let (in0, in1) = (
                SrcTile::from_raw19(in0, false),
                SrcTile::from_raw19(in1, false),
            );
            let mut d1 = d0.clone();
            matmul(&mut d0, &in0, &in1, false, &cfg);
            matmul_slow(&mut d1, &in0, &in1, false, &cfg);
            assert_eq!(d0.v, d1.v, "{fid:?}");
        }
        // Most datums (all four fidelities share the first MVMUL) hit the quirk.
        assert!(fired > 4 * 512, "{fired}");
    }

    #[test]
    fn every_code_variant_equals_slow() {
        // The dispatched clone only exercises one (LZCNT, KEEP_E) choice per machine; run the
        // generic kernel with every choice (compiled for the test's baseline target here).
        let mut rng = Rng::new(4242);
        for fid in [
            Fidelity::LoFi,
            Fidelity::HiFi2,
            Fidelity::HiFi3,
            Fidelity::HiFi4,
        ] {
            for fp32 in [false, true] {
                let cfg = FpuConfig::new(fid, fp32, false);
                let in0 = rand_raw_tile(&mut rng, fp32, 1);
                let in1 = rand_raw_tile(&mut rng, fp32, fid.phases() % 4);
                let start = rand_dest(&mut rng, fp32, 120, 12);
                let mut want = start.clone();
                matmul_slow(&mut want, &in0, &in1, true, &cfg);
                let (mut a, mut b) = (
                    Box::new(Decomposed::zeroed()),
                    Box::new(Decomposed::zeroed()),
                );
                a.fill(&in1, true, true);
                b.fill(&in0, false, false);
                for variant in 0..4 {
                    let mut d = start.clone();
                    macro_rules! run {
                        ($fp:literal, $p:literal) => {
                            match variant {
                                0 => matmul_tile::<$fp, false, false, $p>(&mut d, &a, &b),
                                1 => matmul_tile::<$fp, false, true, $p>(&mut d, &a, &b),
                                2 => matmul_tile::<$fp, true, false, $p>(&mut d, &a, &b),
                                _ => matmul_tile::<$fp, true, true, $p>(&mut d, &a, &b),
                            }
                        };
                    }
                    match (fp32, fid.phases()) {
                        (true, 1) => run!(true, 1),
                        (true, 2) => run!(true, 2),
                        (true, 3) => run!(true, 3),
                        (true, _) => run!(true, 4),
                        (false, 1) => run!(false, 1),
                        (false, 2) => run!(false, 2),
                        (false, 3) => run!(false, 3),
                        (false, _) => run!(false, 4),
                    }
                    assert_eq!(d.v, want.v, "{fid:?} fp32 {fp32} variant {variant}");
                }
            }
        }
    }

    #[test]
    fn block_equals_tile_by_tile() {
        let mut rng = Rng::new(21);
        for (fid, fp32, tr) in [
            (Fidelity::HiFi4, true, false),
            (Fidelity::LoFi, false, true),
            (Fidelity::HiFi2, false, false),
        ] {
            let cfg = FpuConfig::new(fid, fp32, false);
            let in0: Vec<SrcTile> = (0..2).map(|_| rand_raw_tile(&mut rng, fp32, 1)).collect();
            let in1: Vec<SrcTile> = (0..3).map(|_| rand_raw_tile(&mut rng, fp32, 1)).collect();
            let start: Vec<DestTile> = (0..6).map(|_| rand_dest(&mut rng, fp32, 120, 12)).collect();
            let mut block = start.clone();
            matmul_block(&mut block, &in0, &in1, tr, &cfg).unwrap();
            for r in 0..2 {
                for c in 0..3 {
                    let mut d = start[r * 3 + c].clone();
                    matmul_slow(&mut d, &in0[r], &in1[c], tr, &cfg);
                    assert_eq!(
                        block[r * 3 + c].v,
                        d.v,
                        "{fid:?} fp32 {fp32} tr {tr} ({r}, {c})"
                    );
                }
            }
        }
        let cfg = FpuConfig::default();
        let t = rand_raw_tile(&mut rng, false, 1);
        let mut dst = vec![DestTile::zero(); 3];
        let err = matmul_block(
            &mut dst,
            &[t.clone(), t.clone()],
            &[t.clone(), t],
            false,
            &cfg,
        );
        assert_eq!(
            err,
            Err(FpuError::BlockShape {
                dst: 3,
                rows: 2,
                cols: 2
            })
        );
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
            let small = r.is_multiple_of(4);
            let s0 = if small {
                ((r >> 8) % 7) as i16 - 3
            } else {
                (((r >> 8) % 63_001) as i32 - 31_500) as i16
            };
            let s1 = if (r >> 4).is_multiple_of(3) {
                0
            } else {
                (((r >> 24) % 63_001) as i32 - 31_500) as i16
            };
            let x0 = ((r >> 40) % 560) as i16 - 40;
            let x1 = if (r >> 50).is_multiple_of(8) {
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
            let mut dst = if r2.is_multiple_of(4) {
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
                let mut bits = [dst; 32];
                let mut d = DestLanes::decode(&bits);
                let (e0, e1) = (t0.exp, t1.exp);
                let (s0, s1) = (s0 as i32 * (e0 > 0) as i32, s1 as i32 * (e1 > 0) as i32);
                for (i, lz) in [false, true].into_iter().enumerate() {
                    let st = (d.neg[i], d.exp[i], d.man[i]);
                    (d.neg[i], d.exp[i], d.man[i]) = match (fp32, lz) {
                        (true, true) => accum_step::<true, true>(s0, e0, s1, e1, st.0, st.1, st.2),
                        (true, false) => {
                            accum_step::<true, false>(s0, e0, s1, e1, st.0, st.1, st.2)
                        }
                        (false, true) => {
                            accum_step::<false, true>(s0, e0, s1, e1, st.0, st.1, st.2)
                        }
                        (false, false) => {
                            accum_step::<false, false>(s0, e0, s1, e1, st.0, st.1, st.2)
                        }
                    };
                }
                d.encode(&mut bits);
                assert_eq!(
                    (bits[0], bits[1]),
                    (want, want),
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
