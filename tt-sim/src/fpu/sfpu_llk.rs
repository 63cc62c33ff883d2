//! The `llk` SFPU model: the programs TT-Metal's LLK runs on the SFPU for the transcendental ops
//! our kernels use, executed instruction by instruction in the SFPU's own fp32 arithmetic.
//!
//! Sources read (facts only, rewritten here): tenstorrent/tt-metal as of the 2026-02-03 snapshot
//! `caryzoumvp/tt-metal-sim@9231910` (compute API `compute_kernel_api/eltwise_unary/*.h`,
//! `compute_kernel_api.h`, `hw/ckernels/{wormhole_b0,blackhole}/metal/llk_api/llk_sfpu/
//! ckernel_sfpu_{exp,recip,rsqrt,sigmoid,tanh,softplus,gelu}.h`), its pinned tt-llk
//! `tenstorrent/tt-llk@8859c55` (`tt_llk_*/common/inc/sfpu/ckernel_sfpu_{exp,recip,rsqrt,
//! rsqrt_compat,sqrt,polyval}.h`) and the instruction semantics of `tenstorrent/ttsim@56694c8`
//! (`src/fma.cpp`, `src/tensix.cpp`: SFPMAD, SFPSTORE, SFP_STOCH_RND, SFPCAST, SFPSWAP,
//! SFPARECIP, SFPSETEXP/SETMAN/EXEXP/EXMAN/SHFT/DIVP2).
//!
//! Flags modelled: `math_approx_mode = false` (APPROX), `exp_tile<false>`, `recip_tile` with its
//! default `legacy_compat = true`, `rsqrt_tile` defaults (`legacy_compat = false`,
//! `FAST_APPROX = false`), `sigmoid_tile`/`tanh_tile` with `fast_and_approx = false`,
//! `gelu_tile<false>` and `softplus_tile(beta 1, 1/beta 1, threshold 20)`.
//! Calls with other flags are refused before they get here (`sfpu.rs`, `SfpuFlags`): the
//! emulation header passes the compute API's template flags through.
//!
//! Arithmetic: every `a * b + c` written in the LLK source is one SFPMAD (a single rounding of
//! a partially fused product, ttsim's per-arch model in [`mad`]); `a * b` is SFPMAD with `c = +0`,
//! `a + b` is SFPMAD with `a = 1.0`. Denormal operands read as zero and denormal results flush
//! (Wormhole drops the sign of a flushed result). Integer steps are the bit operations of the
//! instructions. `float_to_fp16b` (SFP_STOCH_RND mode 1) rounds half away from zero on the 16
//! dropped bits, sends inf/NaN to inf of the same sign and denormals to +0. SFPSTORE into a
//! 16-bit DEST flushes denormals and then TRUNCATES to the top 16 bits, so ops whose LLK code
//! does not round explicitly (gelu, softplus) lose up to 1 bf16 ulp there.
//!
//! Not modelled bit for bit: NaN inputs (the result is a NaN or an infinity; we return the
//! canonical NaN for NaN inputs) and the choice between equivalent instruction forms the
//! compiler may make (they round identically wherever the product is exact, which is every
//! case here except where noted).

// The constants are written with the digits the LLK source gives them; like the C++ compiler,
// Rust rounds them to the nearest f32 (1.442695 is the LLK's 7-digit 1/ln2, not LOG2_E).
#![allow(clippy::excessive_precision, clippy::approx_constant)]

use tt_formats::Arch;

const SIGN: u32 = 0x8000_0000;
const ONE: u32 = 0x3F80_0000;

#[inline(always)]
fn b(x: f32) -> u32 {
    x.to_bits()
}

#[inline(always)]
fn f(x: u32) -> f32 {
    f32::from_bits(x)
}

/// Shift right by `s`, OR-ing a sticky 1 into bit 0 when bits are lost and something remains
/// (both ttsim SFPU FMA models use this "semi-sticky" alignment).
#[inline(always)]
fn semi_sticky(v: u64, s: i32) -> u64 {
    if s >= 64 {
        return 0;
    }
    let r = v >> s;
    if r != 0 && (r << s) != v { r | 1 } else { r }
}

/// SFPMAD `x * y + z` on Wormhole B0 (`wh`) or Blackhole: denormal inputs read as zero, the
/// product is truncated to 26 bits below its leading bit plus a sticky bit, aligned with `z`
/// (semi-sticky), added, normalised, rounded to nearest even once, denormals flushed.
pub(crate) fn mad(wh: bool, x: u32, y: u32, z: u32) -> u32 {
    let unpack = |v: u32| {
        let e = ((v >> 23) & 255) as i32;
        let m = if e == 0 {
            0
        } else {
            (v & 0x7F_FFFF) | 0x80_0000
        };
        (e, m as u64)
    };
    let (xe, xm) = unpack(x);
    let (ye, ym) = unpack(y);
    let (ze, zm0) = unpack(z);
    let z_sign = z & SIGN;
    let p_sign = (x ^ y) & SIGN;
    let mut pm = (xm * ym) << 3;
    let mut pe = xe + ye - 23 - 127;
    let mut zm = zm0 << 3;
    pm = (pm >> 23) | u64::from(pm & 0x7F_FFFF != 0);
    pe += 23;
    let inf_z = ze == 255 && zm == 0x400_0000;
    let mut nan_result = 0u32;
    if xe == 255 || ye == 255 || pe >= 255 || ze == 255 {
        let bad_prod = (xe == 255 && (xm != 0x80_0000 || ym == 0))
            || (ye == 255 && (ym != 0x80_0000 || xm == 0));
        let prod_inf = xe == 255 || ye == 255 || pe >= 255;
        if wh {
            if bad_prod || (inf_z && prod_inf && z_sign != p_sign) {
                nan_result = p_sign | 0x7F80_0001;
            } else if ze == 255 && !inf_z {
                nan_result = z_sign | 0x7F80_0001;
            } else if ze == 255 {
                return z;
            } else {
                return p_sign | 0x7F80_0000;
            }
            pe = pe.min(255);
        } else if bad_prod
            || (ze == 255 && !inf_z)
            || (ze == 255 && (xe == 255 || ye == 255) && z_sign != p_sign)
        {
            return 0x7FC0_0000;
        } else if ze == 255 {
            return z;
        } else {
            return p_sign | 0x7F80_0000;
        }
    }
    if pm == 0 || pe < 0 {
        if wh && nan_result != 0 {
            pm = 0;
            pe = 0;
        } else if wh {
            return if zm != 0 { z } else { 0 };
        } else {
            return if zm != 0 { z } else { z_sign & p_sign };
        }
    }
    let mut re = pe.max(ze);
    if pe < re {
        pm = semi_sticky(pm, re - pe);
    }
    if ze < re {
        zm = semi_sticky(zm, re - ze);
    }
    let r_sign = if pm >= zm { p_sign } else { z_sign };
    let (mut p32, mut z32) = (pm as u32, zm as u32);
    if z_sign != r_sign {
        z32 = !z32;
    }
    if p_sign != r_sign {
        p32 = !p32;
    }
    let mut rm = z32
        .wrapping_add(p32)
        .wrapping_add(u32::from(p_sign != z_sign));
    if rm == 0 {
        return if wh { nan_result } else { z_sign & p_sign };
    }
    let mut n = 5 - rm.leading_zeros() as i32;
    re += n;
    if re >= 255 {
        return if wh && nan_result != 0 {
            nan_result
        } else {
            r_sign | 0x7F80_0000
        };
    }
    if wh {
        if re < 0 {
            return nan_result;
        }
        if n <= 0 {
            rm <<= -n;
        } else {
            rm = (rm >> n) | (rm & 1);
        }
    } else {
        if re <= 0 {
            n += 1;
            re = 0;
        }
        if n <= 0 {
            rm <<= -n;
        } else {
            rm = (rm >> n) | u32::from(rm & ((n as u32) | 1) != 0);
        }
    }
    let mut r = ((re as u32) << 23).wrapping_add((rm >> 3) & 0x7F_FFFF);
    r += u32::from((rm & 7) + (r & 1) > 4);
    if r >> 23 == 0 {
        return if wh { nan_result } else { r_sign };
    }
    (if wh && nan_result != 0 {
        nan_result
    } else {
        r_sign
    }) | r
}

/// The SFPU of one architecture.
#[derive(Clone, Copy)]
struct Sfpu {
    wh: bool,
}

impl Sfpu {
    fn mad(self, a: u32, b: u32, c: u32) -> u32 {
        mad(self.wh, a, b, c)
    }
    fn mul(self, a: u32, b: u32) -> u32 {
        mad(self.wh, a, b, 0)
    }
    fn add(self, a: u32, c: u32) -> u32 {
        mad(self.wh, ONE, a, c)
    }
    /// Horner: c[0] + x (c[1] + x (c[2] + ...)), one SFPMAD per step.
    fn poly(self, x: u32, c: &[f32]) -> u32 {
        let mut acc = b(c[c.len() - 1]);
        for &k in c[..c.len() - 1].iter().rev() {
            acc = self.mad(x, acc, b(k));
        }
        acc
    }
}

/// SFPEXEXP with the bias removed: the unbiased exponent as an integer.
fn exexp(v: u32) -> i32 {
    ((v >> 23) & 255) as i32 - 127
}

/// SFPSETEXP: the exponent field replaced by the low 8 bits of `e`.
fn setexp(v: u32, e: i32) -> u32 {
    (v & 0x807F_FFFF) | (((e as u32) & 0xFF) << 23)
}

/// sign-magnitude total order used by SFPSWAP's min/max (-0 < +0).
fn order(v: u32) -> i32 {
    if v & SIGN != 0 {
        (v ^ 0x7FFF_FFFF) as i32
    } else {
        v as i32
    }
}

fn vmin(a: u32, c: u32) -> u32 {
    if order(a) <= order(c) { a } else { c }
}

fn vmax(a: u32, c: u32) -> u32 {
    if order(a) >= order(c) { a } else { c }
}

/// `float_to_fp16b` (SFP_STOCH_RND, round-to-nearest mode) as ttsim models it.
pub(crate) fn to_bf16_half_away(v: u32) -> u32 {
    let e = (v >> 23) & 255;
    if e == 0 {
        0
    } else if e == 255 {
        v & 0xFF80_0000
    } else {
        (v & 0xFFFF_0000) + if v & 0x8000 != 0 { 0x1_0000 } else { 0 }
    }
}

/// SFPSTORE to DEST: denormals flushed (sign kept); 16-bit DEST keeps the top 16 bits.
fn store(v: u32, fp32: bool) -> u32 {
    let v = if v & 0x7FFF_FFFF < 0x80_0000 {
        v & SIGN
    } else {
        v
    };
    if fp32 { v } else { v & 0xFFFF_0000 }
}

/// exp via Moroz et al.'s `exp_21f`: 2^(x/ln2) with the integer part of x/ln2 + 127 moved into
/// the exponent by a shift and 2^frac approximated by a quadratic in the 23-bit fraction; with
/// `round` the result is rounded to bf16 (the template flag `is_fp32_dest_acc_en = false`).
fn exp_21f(s: Sfpu, x: u32, round: bool) -> u32 {
    // 1/ln2 as the LLK spells it (1.4426950216..., not the nearest f32 to 1/ln2).
    let xlog2 = s.mad(x, b(1.442_695_021_629_333_5_f32), b(127.0));
    let xlog2 = vmin(vmax(0, xlog2), b(255.0));
    // (x/ln2 + 127) as a fixed-point number with 23 fraction bits: mantissa << exponent.
    let e = exexp(xlog2);
    let man = (xlog2 & 0x7F_FFFF) | 0x80_0000;
    let z = if e >= 0 {
        man << (e as u32 & 31)
    } else {
        man >> ((-e) as u32 & 31)
    };
    let int_part = ((z >> 23) & 255) as i32;
    let frac = b((z & 0x7F_FFFF) as f32); // SFPCAST of a value < 2^23: exact
    // 2^(frac / 2^23) ~ 1.0017248 + 7.8396e-8 frac + 4.7918e-15 frac^2 (the quadratic's
    // constant is above 1 to centre its error).
    let p = s.poly(
        frac,
        &[
            1.001_724_8,
            7.839_635_491_371_155e-8,
            4.791_750_143_340_323e-15,
        ],
    );
    let y = setexp(p, int_part);
    if round { to_bf16_half_away(y) } else { y }
}

/// exp for fp32 DEST: k = round(x/ln2) by the 1.5*2^23 trick, r = x - k ln2 in two Cody-Waite
/// steps (ln2 = 0.693115234375 + 3.19461833e-5), e^r by its degree-7 Taylor polynomial, 2^k
/// added to the exponent. x/ln2 >= 128 gives +inf, <= -127 gives 0.
fn exp_accurate(s: Sfpu, x: u32) -> u32 {
    let z = s.mul(x, b(std::f32::consts::LOG2_E));
    if f(z) >= 128.0 {
        return 0x7F80_0000;
    }
    if f(z) <= -127.0 {
        return 0;
    }
    let c = 0x4B40_0000u32; // 1.5 * 2^23
    let tmp = s.add(z, c);
    let k = s.add(tmp, c | SIGN);
    let k_int = tmp.wrapping_sub(c) as i32;
    let r_hi = s.mad(k, b(-0.693_115_234_375), x);
    let r = s.mad(k, b(-3.194_618_329_87e-5), r_hi);
    let p = s.poly(
        r,
        &[
            1.0,
            1.0,
            0.5,
            1.0 / 6.0,
            1.0 / 24.0,
            1.0 / 120.0,
            1.0 / 720.0,
            1.0 / 5040.0,
        ],
    );
    setexp(p, ((p >> 23) & 255) as i32 + k_int)
}

/// Wormhole's `_sfpu_reciprocal_<iters>`: the mantissa m of |x| mapped to -m in (-2, -1], a
/// quadratic initial estimate of 1/m (0.3232325 (-m)^2 ... with 1.4545460 and 2.1212125), then
/// `iters` Newton steps y += y (1 - m y); the exponent comes from the bitwise NOT of x (2^(127-E)
/// after halving) and the sign from x.
fn recip_wh(s: Sfpu, x: u32, iters: u32) -> u32 {
    let neg_m = 0xBF80_0000 | (x & 0x7F_FFFF);
    let mut y = s.mad(b(0.323_232_5), neg_m, b(1.454_545_9));
    let scale_bits = !x;
    y = s.mad(y, neg_m, b(2.121_212_5));
    let mut scale = scale_bits & 0xFF80_0000;
    let mut t = s.mad(neg_m, y, ONE);
    scale = s.mul(scale, b(0.5));
    y = s.mad(y, t, y);
    if iters > 1 {
        t = s.mad(neg_m, y, ONE);
        y = s.mad(y, t, y);
    }
    y = s.mul(y, scale);
    (y & 0x7FFF_FFFF) | (x & SIGN)
}

/// SFPARECIP (Blackhole): a 7-bit reciprocal estimate. The mantissa byte for the 128 buckets of
/// x's top 7 mantissa bits is round(2^15 / (128 + i + 1/2)) - 128, i.e. 2/m at the bucket's
/// midpoint (this formula reproduces ttsim's table entry for entry); the exponent is
/// 253 - E; zero/denormal give inf, |x| >= 2^126 gives 0; the sign is kept.
fn approx_recip(x: u32) -> u32 {
    let a = x & 0x7FFF_FFFF;
    let r = if a < 0x80_0000 {
        0x7F80_0000
    } else if a < 0x7E80_0000 {
        let i = ((a >> 16) & 0x7F) as f64;
        let lut = ((32768.0 / (128.5 + i)) - 128.0).round() as u32;
        ((253 - (a >> 23)) << 23) | (lut << 16)
    } else {
        0
    };
    (x & SIGN) | r
}

/// Blackhole's `_sfpu_reciprocal_<iters>`: SFPARECIP, then Newton steps y' = -y (x y - 2) taken
/// only while x y - 2 < 0 (constant 2 from `_init_sfpu_reciprocal_`).
fn recip_bh(s: Sfpu, x: u32, iters: u32) -> u32 {
    let two_neg = b(-2.0);
    let mut y = approx_recip(x);
    let mut t = s.mad(x, y, two_neg);
    if iters > 1 {
        let y1 = s.mad(y, t ^ SIGN, SIGN);
        if t & SIGN != 0 {
            t = s.mad(x, y1, two_neg);
            y = s.mad(y1, t ^ SIGN, SIGN);
        }
    } else if t & SIGN != 0 {
        y = s.mad(y, t ^ SIGN, SIGN);
    }
    y
}

fn recip_arch(s: Sfpu, x: u32, iters: u32) -> u32 {
    if s.wh {
        recip_wh(s, x, iters)
    } else {
        recip_bh(s, x, iters)
    }
}

/// `recip_tile` (legacy_compat): |mantissa| mapped into [0.5, 1) as v = -m/2, y0 = 1.442695
/// (1.442695 v + 2), three Newton steps in total (y = y (v y + 2)), then the exponent
/// E_y - E_x + 126 written back (0 when negative) and the sign of x applied.
fn recip_compat(s: Sfpu, x: u32) -> u32 {
    let v = setexp(x | SIGN, 126);
    let l = b(1.442_695);
    let two = b(2.0);
    let mut r = s.mul(l, s.mad(v, l, two));
    for _ in 0..2 {
        r = s.mul(r, s.mad(v, r, two));
    }
    let mut e = exexp(r) - exexp(x) + 126;
    if e < 0 {
        r = 0;
        e = 0;
    }
    let out = setexp(r, e);
    if x & SIGN != 0 { out ^ SIGN } else { out }
}

/// `rsqrt_tile`: magic-constant estimate y0 = 0x5f1110a0 - (x >> 1), one step of the cubic
/// y (2.2825186 + c (2.2533049 + c)) with c = -x y^2, one Newton step y += y/2 (1 - x y^2);
/// x = +inf gives 0, x = +0 gives +inf, negative x (and -0) NaN.
fn rsqrt(s: Sfpu, x: u32) -> u32 {
    let mut y = 0x5F11_10A0u32.wrapping_sub(x >> 1);
    let xy = s.mul(x, y);
    let c = s.mul(y ^ SIGN, xy);
    y = s.mul(y, s.mad(c, s.add(c, b(2.253_304_9)), b(2.282_518_6)));
    let xy = s.mul(x, y);
    let one_minus = s.mad(y ^ SIGN, xy, ONE);
    let half_y = {
        let e = (y >> 23) & 255;
        if e == 255 {
            y
        } else {
            (y & 0x807F_FFFF) | (((e + 255) & 255) << 23)
        }
    };
    let inf_minus_x = 0x7F80_0000u32.wrapping_sub(x);
    y = if inf_minus_x != 0 && x != 0 {
        s.mad(one_minus, half_y, y)
    } else {
        inf_minus_x
    };
    // `x < 0` against the literal 0 is SFPSETCC's sign test: -0 counts as negative.
    if x & SIGN != 0 { 0x7FC0_0000 } else { y }
}

/// `sigmoid_tile`: 1 / (1 + e^-x) with exp_21f (unrounded) and a 1-step reciprocal for 16-bit
/// DEST, the accurate exp and a 2-step reciprocal for fp32 DEST.
fn sigmoid(s: Sfpu, x: u32, fp32: bool) -> u32 {
    let e = if fp32 {
        exp_accurate(s, x ^ SIGN)
    } else {
        exp_21f(s, x ^ SIGN, false)
    };
    let den = s.add(ONE, e);
    recip_arch(s, den, if fp32 { 2 } else { 1 })
}

/// `tanh_tile`, 16-bit DEST: a degree-6 polynomial in |x| (no constant term), clamped to <= 1,
/// sign of x restored.
fn tanh_bf16(s: Sfpu, x: u32) -> u32 {
    let a = if x <= 0xFF80_0000 { x & 0x7FFF_FFFF } else { x };
    let p = s.poly(
        a,
        &[
            0.0,
            0.999_004_364_013_671_9,
            3.089_743_852_615_356_4e-2,
            -0.489_065_974_950_790_4,
            0.281_917_631_626_129_15,
            -6.664_901_971_817_017e-2,
            5.876_733_921_468_258e-3,
        ],
    );
    (vmin(p, ONE) & 0x7FFF_FFFF) | (x & SIGN)
}

/// `tanh_tile`, fp32 DEST: |x| < 0.6: x P(x^2) with a degree-4 minimax P; else
/// 2 sigmoid(2x) - 1 with the fp32 sigmoid.
fn tanh_fp32(s: Sfpu, x: u32) -> u32 {
    if f(x).abs() < 0.6 {
        let x2 = s.mul(x, x);
        let p = s.poly(
            x2,
            &[
                0.999_999_940_395_355_2,
                -0.333_323_597_908_020_02,
                0.133_106_693_625_450_13,
                -5.211_976_543_068_885_8e-2,
                1.549_792_755_395_174e-2,
            ],
        );
        s.mul(x, p)
    } else {
        let sig = sigmoid(s, s.mul(b(2.0), x), true);
        s.mad(b(2.0), sig, b(-1.0))
    }
}

/// `softplus_tile(beta = 1, 1/beta = 1, threshold = 20)`: x < -5: exp_21f (rounded to bf16:
/// the LLK calls it with its default template flag); -5 <= x < 4: a degree-8 polynomial;
/// 4 <= x < 20: x; x >= 20: DEST left as it was. `None` = not written.
fn softplus(s: Sfpu, v: u32) -> Option<u32> {
    let x = s.mul(ONE, v);
    if f(x) >= 20.0 {
        return None;
    }
    let r = if f(x) < -5.0 {
        exp_21f(s, x, true)
    } else if f(x) < 4.0 {
        s.poly(
            x,
            &[
                0.692_435_443_401_336_7,
                0.492_757_081_985_473_63,
                0.121_423_818_171_024_32,
                0.003_110_280_958_935_618_4,
                -0.003_308_072_453_364_73,
                -0.000_287_940_667_476_505,
                5.318_540_934_240_445_5e-5,
                7.185_354_661_487_509e-6,
                7.496_111_464_888_6e-8,
            ],
        )
    } else {
        x
    };
    Some(s.mul(ONE, r))
}

/// `gelu_tile<false>`: 0 at +0; x >= 3: x; -5.5 <= x < 3: a degree-15 Chebyshev-fitted
/// polynomial in x with the sign of x forced onto it; x < -5.5: 0.
fn gelu(s: Sfpu, x: u32) -> u32 {
    // `in == 0` is SFPSETCC's integer zero test: +0 only (-0 goes on to the polynomial).
    if x == 0 {
        return 0;
    }
    if f(x) >= 3.0 {
        return x;
    }
    if f(x) < -5.5 {
        return 0;
    }
    let c: [f64; 16] = [
        2.983_257_684_82e-5,
        0.499_174_645_395,
        0.398_579_460_781,
        0.002_445_427_391_74,
        -0.065_636_947_651_3,
        -0.002_084_780_376_14,
        0.009_207_433_160_1,
        0.000_768_340_223_025,
        -0.000_862_052_441_087,
        -0.000_138_391_838_381,
        4.251_164_662_15e-5,
        1.190_767_829_13e-5,
        -2.297_541_338_25e-7,
        -3.745_406_176_93e-7,
        -4.590_551_192_76e-8,
        -1.812_052_281_63e-9,
    ];
    let c32: Vec<f32> = c.iter().map(|&v| v as f32).collect();
    let p = s.poly(x, &c32);
    (p & 0x7FFF_FFFF) | (x & SIGN)
}

/// The transcendental ops the `llk` model knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LlkOp {
    Exp,
    Recip,
    Rsqrt,
    Sigmoid,
    Tanh,
    Softplus,
    Gelu,
}

impl LlkOp {
    pub(crate) const ALL: [LlkOp; 7] = [
        LlkOp::Exp,
        LlkOp::Recip,
        LlkOp::Rsqrt,
        LlkOp::Sigmoid,
        LlkOp::Tanh,
        LlkOp::Softplus,
        LlkOp::Gelu,
    ];

    /// The name in `TT_SIM_SFPU=llk:<names>` (the compute API's `<name>_tile`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            LlkOp::Exp => "exp",
            LlkOp::Recip => "recip",
            LlkOp::Rsqrt => "rsqrt",
            LlkOp::Sigmoid => "sigmoid",
            LlkOp::Tanh => "tanh",
            LlkOp::Softplus => "softplus",
            LlkOp::Gelu => "gelu",
        }
    }
}

/// One datum: DEST bits in, DEST bits out (as SFPLOAD / the LLK program / SFPSTORE do).
pub(crate) fn eval_llk(op: LlkOp, arch: Arch, fp32: bool, x: u32) -> u32 {
    let s = Sfpu {
        wh: arch == Arch::WormholeB0,
    };
    if x & 0x7FFF_FFFF > 0x7F80_0000 {
        return 0x7FC0_0000;
    }
    // SFPLOAD: DEST already holds flushed values; flush again in case a caller did not.
    let x = if x & 0x7F80_0000 == 0 { x & SIGN } else { x };
    let round = |v: u32| if fp32 { v } else { to_bf16_half_away(v) };
    let y = match op {
        LlkOp::Exp => {
            if fp32 {
                exp_accurate(s, x)
            } else {
                exp_21f(s, x, true)
            }
        }
        LlkOp::Recip => round(recip_compat(s, x)),
        LlkOp::Rsqrt => round(rsqrt(s, x)),
        LlkOp::Sigmoid => round(sigmoid(s, x, fp32)),
        LlkOp::Tanh => {
            if fp32 {
                tanh_fp32(s, x)
            } else {
                to_bf16_half_away(tanh_bf16(s, x))
            }
        }
        LlkOp::Softplus => match softplus(s, x) {
            Some(v) => v,
            None => return x,
        },
        LlkOp::Gelu => gelu(s, x),
    };
    store(y, fp32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCHES: [Arch; 2] = [Arch::WormholeB0, Arch::Blackhole];

    fn reference(op: LlkOp, x: f64) -> f64 {
        match op {
            LlkOp::Exp => x.exp(),
            LlkOp::Recip => 1.0 / x,
            LlkOp::Rsqrt => 1.0 / x.sqrt(),
            LlkOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            LlkOp::Tanh => x.tanh(),
            LlkOp::Softplus => {
                if x > 30.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
            LlkOp::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
        }
    }

    /// erf by its Maclaurin series (|x| < 3) or 1 - erfc continued fraction; 1e-13 absolute.
    fn erf(x: f64) -> f64 {
        let a = x.abs();
        let r = if a < 3.0 {
            let (mut term, mut sum, mut n) = (a, a, 0.0);
            while term.abs() > 1e-17 * sum {
                n += 1.0;
                term *= -a * a / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * std::f64::consts::FRAC_2_SQRT_PI
        } else if a > 6.0 {
            1.0
        } else {
            let mut k = a;
            for n in (1..=80).rev() {
                k = a + (n as f64 / 2.0) / k;
            }
            1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * k)
        };
        r.copysign(x)
    }

    /// Inputs: a dense uniform sweep of `[lo, hi]`, xorshift-random points in it and the edges.
    fn inputs(lo: f32, hi: f32, fp32: bool) -> Vec<u32> {
        let mut v = Vec::new();
        let n = 20_000;
        for i in 0..=n {
            v.push(lo + (hi - lo) * i as f32 / n as f32);
        }
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.push(lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32));
        }
        v.extend([lo, hi, 0.5 * (lo + hi)]);
        v.into_iter()
            .map(|x| {
                let b = x.to_bits();
                if fp32 { b } else { to_bf16_half_away(b) }
            })
            .collect()
    }

    /// Max over the inputs of |y - ref| / (abs_floor + |ref|) (a relative error that turns
    /// absolute below `abs_floor`).
    fn max_err(op: LlkOp, arch: Arch, fp32: bool, xs: &[u32], abs_floor: f64) -> (f64, f32) {
        let mut worst = (0.0, 0.0);
        for &x in xs {
            let y = f32::from_bits(eval_llk(op, arch, fp32, x)) as f64;
            let r = reference(op, f32::from_bits(x) as f64);
            let e = if y == r {
                0.0
            } else {
                (y - r).abs() / (abs_floor + r.abs())
            };
            assert!(
                !e.is_nan(),
                "{op:?} {arch:?} fp32 {fp32} x {}",
                f32::from_bits(x)
            );
            if e > worst.0 {
                worst = (e, f32::from_bits(x));
            }
        }
        worst
    }

    /// (a) Max error of the llk model vs f64 over dense + random sweeps, per op, arch and DEST
    /// mode. Bounds (relative, `floor` turns them absolute near 0):
    /// - bf16 DEST results carry the final `float_to_fp16b` (<= 2^-8 relative) or the store's
    ///   truncation (< 2^-7) on top of the fp32 algorithm's error.
    /// - exp fp32: degree-7 Taylor on |r| <= ln2/2 leaves r^8/8! < 2^-27; ~9 roundings of 2^-24
    ///   damped by Horner (|r| < 0.35) sum to < 2.6 * 2^-24 -> 2^-22.5. exp bf16: the exp_21f
    ///   quadratic's error (~2^-9.6 measured) + 2^-8 -> 2^-7.4.
    /// - recip (legacy compat): y0 = L(Lv + 2) leaves e0 = 1 - |v| y0 <= 0.196 at |v| -> 1; two
    ///   Newton steps square it twice: e0^4 = 1.48e-3 (the LLK's own accuracy, ~9.4 bits); +2^-8
    ///   in bf16.
    /// - rsqrt: the cubic step leaves ~2^-15, Newton squares it (2^-30); ~2 ulp of rounding
    ///   -> 2^-22.5; bf16 2^-7.9.
    /// - sigmoid: fp32 exp (2^-22.5) + 2-step reciprocal (rounding dominated, 2^-23) + the add
    ///   -> 2^-21.5; bf16: exp_21f + 1-step reciprocal + 2^-8 -> 2^-7.4.
    /// - tanh fp32: the LLK targets < 5 ulp; 2 sigmoid(2x) - 1 amplifies the sigmoid's error by
    ///   ~3 near |x| = 0.6 -> 2^-20.5. bf16: degree-6 fit error (~2^-9) + 2^-8 -> 2^-7.5.
    /// - softplus: the degree-8 fit is off by up to 5.3e-3 absolute on [-5, 4) (1.02307 vs
    ///   1.02843 at 0.586), x on [4, 20) drops ln(1 + e^-x) <= 0.018 (4.5e-3 relative),
    ///   x < -5 uses a bf16-rounded exp (2^-7.4) -> 2^-6.9 relative; bf16 adds truncation -> 2^-6.2.
    /// - gelu: the degree-15 fit on [-5.5, 3) has up to 3.2e-4 absolute error at -5.5 (where
    ///   gelu is -1.9e-8): with a 1e-3 floor the bound is 0.5; x >= 3 returns x (gelu(3) =
    ///   2.996, 1.4e-3 relative).
    #[test]
    fn llk_error_vs_f64_within_the_algorithms_bounds() {
        let p = |e: f64| 2f64.powf(e);
        // (op, lo, hi, floor, bound bf16, bound fp32)
        let cases = [
            (LlkOp::Exp, -80.0, 80.0, 0.0, p(-7.4), p(-22.5)),
            (LlkOp::Recip, 0.01, 100.0, 0.0, 1.48e-3 + p(-8.0), 1.48e-3),
            (LlkOp::Recip, -100.0, -0.01, 0.0, 1.48e-3 + p(-8.0), 1.48e-3),
            (LlkOp::Rsqrt, 1e-4, 1e4, 0.0, p(-7.9), p(-22.5)),
            (LlkOp::Sigmoid, -30.0, 30.0, 0.0, p(-7.4), p(-21.5)),
            (LlkOp::Tanh, -10.0, 10.0, 0.0, p(-7.5), p(-20.5)),
            (LlkOp::Softplus, -30.0, 25.0, 0.0, p(-6.2), p(-6.9)),
            (LlkOp::Gelu, -8.0, 8.0, 1e-3, 0.5, 0.5),
        ];
        for (op, lo, hi, fl, b16, b32) in cases {
            for arch in ARCHES {
                for fp32 in [false, true] {
                    let xs = inputs(lo, hi, fp32);
                    let (e, x) = max_err(op, arch, fp32, &xs, fl);
                    let bound = if fp32 { b32 } else { b16 };
                    assert!(
                        e <= bound,
                        "{op:?} {arch:?} fp32 {fp32}: error {e:.3e} at x = {x} above {bound:.3e}"
                    );
                    // Not trivially loose: the worst case uses at least 1/8 of the bound.
                    assert!(
                        e > bound / 8.0,
                        "{op:?} {arch:?} fp32 {fp32}: {e:.3e} << {bound:.3e}"
                    );
                }
            }
        }
    }

    /// (b) Values followed step by step through the LLK programs (in f64, by hand).
    #[test]
    fn hand_checked_values() {
        let v = |op, arch, fp32, x: f32| f32::from_bits(eval_llk(op, arch, fp32, x.to_bits()));
        for arch in ARCHES {
            // recip(3): v = -0.75, y0 = 1.442695 (2 - 0.75 * 1.442695) = 1.3243659,
            // y1 = y0 (2 - 0.75 y0) = 1.3332725, y2 = 1.3333333; exponent 0 - 1 + 126 = 125
            // -> y2 / 4 = 0.33333333.
            assert!((v(LlkOp::Recip, arch, true, 3.0) as f64 - 1.0 / 3.0).abs() < 1e-7);
            // recip(1.99997): v = -0.999985, e0 = 1 - |v| y0 = 0.19559, after two Newton
            // steps e0^4 = 1.4636e-3: y = (1 - e0^4) / x.
            let x = 1.999_97f32;
            let got = v(LlkOp::Recip, arch, true, x) as f64;
            let vv = x as f64 / 2.0;
            let e0: f64 = 1.0 - vv * 1.442_695 * (2.0 - vv * 1.442_695);
            let want = (1.0 - e0.powi(4)) / x as f64;
            assert!((got - want).abs() < 2e-7, "{got} vs {want}");
            // softplus(0.5859375): the degree-8 polynomial = 0.69244 + 0.28873 + 0.04169
            // + 0.00063 - 0.00039 - 0.00002 = 1.02307 (true value 1.02843).
            assert!((v(LlkOp::Softplus, arch, true, 0.585_937_5) - 1.023_07).abs() < 2e-5);
            // softplus(7) = 7 (4 <= x < 20 returns x); softplus(25) leaves DEST as is.
            assert_eq!(v(LlkOp::Softplus, arch, true, 7.0), 7.0);
            assert_eq!(v(LlkOp::Softplus, arch, false, 25.0), 25.0);
            // gelu(4) = 4; gelu(-6) = 0.
            assert_eq!(v(LlkOp::Gelu, arch, true, 4.0), 4.0);
            assert_eq!(v(LlkOp::Gelu, arch, true, -6.0), 0.0);
            // exp fp32(1): k = 1, r = 1 - 0.693115234375 - 3.19461833e-5 = 0.30685282,
            // e^r = 1.35914091 by Taylor-7, * 2 = 2.7182817 (e to f32).
            assert!((v(LlkOp::Exp, arch, true, 1.0) as f64 - std::f64::consts::E).abs() < 3e-7);
            // exp bf16(0): 2^0 * q(0) = 1.0017248 -> bf16 1.0 (half away: 0x3F80_3877 -> 0x3F80).
            assert_eq!(v(LlkOp::Exp, arch, false, 0.0), 1.0);
            // rsqrt(4): 0x5f1110a0 - (0x40800000 >> 1) = 0x3ED110A0 = 0.40833; c = -4 y^2 =
            // -0.66695, y1 = y (2.2825186 + c (2.2533049 + c)) ~ 0.5; the Newton step lands on 0.5.
            assert_eq!(v(LlkOp::Rsqrt, arch, true, 4.0), 0.5);
            // rsqrt(0) = +inf, rsqrt(-1) = NaN (fp32) / inf (bf16: float_to_fp16b of NaN).
            assert_eq!(v(LlkOp::Rsqrt, arch, true, 0.0), f32::INFINITY);
            assert!(v(LlkOp::Rsqrt, arch, true, -1.0).is_nan());
            assert_eq!(v(LlkOp::Rsqrt, arch, false, -1.0), f32::INFINITY);
            // tanh bf16 of large x clamps to 1 (polynomial > 1, SFPSWAP min with 1.0).
            assert_eq!(v(LlkOp::Tanh, arch, false, 5.0), 1.0);
            assert_eq!(v(LlkOp::Tanh, arch, false, -5.0), -1.0);
        }
        // SFPARECIP estimate: 3.0 = 1.5 * 2^1: bucket 64, round(32768 / 192.5) - 128 = 42,
        // exponent 253 - 128 = 125 -> (1 + 42/128) / 4 = 0.33203125.
        assert_eq!(f32::from_bits(approx_recip(3f32.to_bits())), 0.332_031_25);
        assert_eq!(approx_recip(0), 0x7F80_0000);
        // Blackhole sigmoid(0) in fp32: 1 / (1 + 1) from the SFPARECIP estimate 0.5 exactly.
        assert_eq!(v(LlkOp::Sigmoid, Arch::Blackhole, true, 0.0), 0.5);
    }

    /// The SFPMAD models against exact arithmetic where one rounding is exact: products of
    /// 13-bit mantissas plus a small multiple of 1/8 fit in 24 bits, so both archs must return
    /// the exact result; ties-to-even on an exact sum; denormal handling.
    #[test]
    fn mad_matches_exact_arithmetic() {
        let mut s = 0x9E37_79B9u32;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            let sign = if s & 0x1000 != 0 { -1.0 } else { 1.0 };
            let a = ((s & 0xFFF) as f32 + 4096.0) / 4096.0 * sign;
            let bb = (((s >> 13) & 0xFFF) as f32 + 4096.0) / 1024.0;
            let c = ((s >> 25) as f32) / 8.0;
            let want = (a as f64 * bb as f64 + c as f64) as f32;
            for wh in [true, false] {
                let got = f32::from_bits(mad(wh, a.to_bits(), bb.to_bits(), c.to_bits()));
                assert_eq!(got, want, "{a} * {bb} + {c} (wh {wh})");
            }
        }
        for wh in [true, false] {
            assert_eq!(mad(wh, ONE, b(2f32.powi(-24)), ONE), ONE);
            assert_eq!(
                mad(wh, ONE, b(3.0 * 2f32.powi(-24)), ONE),
                b(1.0 + 2f32.powi(-22))
            );
            assert_eq!(mad(wh, 0x0000_1234, ONE, b(2.0)), b(2.0));
            assert_eq!(
                mad(wh, b(2f32.powi(-70)), b(2f32.powi(-70)), 0) & 0x7FFF_FFFF,
                0
            );
        }
    }

    /// Stores: 16-bit DEST truncates, fp32 DEST flushes denormals; float_to_fp16b rounds half
    /// away from zero.
    #[test]
    fn store_and_bf16_rounding() {
        assert_eq!(store(0x3F80_FFFF, false), 0x3F80_0000);
        assert_eq!(store(0x0000_1234, true), 0);
        assert_eq!(to_bf16_half_away(0x3F80_8000), 0x3F81_0000);
        assert_eq!(to_bf16_half_away(0x3F81_8000), 0x3F82_0000);
        assert_eq!(to_bf16_half_away(0x3F80_7FFF), 0x3F80_0000);
        assert_eq!(to_bf16_half_away(0x7FC0_0000), 0x7F80_0000);
    }
}
