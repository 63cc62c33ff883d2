//! Scalar conversions between f32, bfloat16 and TF32.
//!
//! Two families, because host and device round differently:
//! - **host** ([`f32_to_bf16_host`]): what TT-Metal's host library does when it converts a
//!   float tensor to bfloat16 (`bfloat16.hpp`, `fp32_to_bf16_bits_round_to_nearest_even`): round to
//!   nearest, ties to even; every NaN becomes the canonical quiet NaN 0x7FC0.
//! - **device** ([`f32_to_bf16_device`]): what the Tensix packer does when it writes a DEST value
//!   to a `Float16_b` buffer. Read from Tenstorrent's bit-exact model (`ttsim` `src/tensix.cpp`,
//!   `PACR`, DEST read with `intermediate_format == Float16_b`): any NaN becomes an infinity of the
//!   same sign; the magnitude is rounded by adding half an ULP (`(bits + 0x8000) >> 16`, so ties go
//!   away from zero; overflow rounds to infinity); a result whose exponent field is zero (zero or
//!   denormal, either sign) is written as +0.
//! - The unpacker reading `Float32` data into SrcA/SrcB (TF32) drops the low 13 mantissa bits
//!   without rounding ([`tf32_truncate`]; ttsim `UNPACR`, `out_data_format == Tf32`). It does not
//!   flush denormals itself: the FPU treats an operand with a zero exponent field as zero.
//!   Reading `Float32` into a bf16 source register ([`unpack_fp32_to_bf16`]) first flushes
//!   denormals to a signed zero, then drops the low 16 bits (no rounding).
//!   Which one applies follows TT-Metal's `get_unpack_dst_formats`: a `Float32` CB is unpacked as
//!   TF32 when `fp32_dest_acc_en` is set (and all inputs are fp32 or 8-bit-exponent formats),
//!   otherwise as `Float16_b`. ttsim agrees with TENSTORRENT.md section 3 here (no rounding).

/// bfloat16 bits to f32 (exact).
pub const fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// Host conversion f32 -> bfloat16: round to nearest, ties to even; NaN -> canonical 0x7FC0;
/// infinities stay infinities; overflow rounds to infinity; denormals are kept (rounded).
pub const fn f32_to_bf16_host(x: f32) -> u16 {
    let u = x.to_bits();
    if (u & 0x7FFF_FFFF) > 0x7F80_0000 {
        return 0x7FC0;
    }
    let lsb = (u >> 16) & 1;
    let rounded = u.wrapping_add(0x7FFF + lsb);
    (rounded >> 16) as u16
}

/// Truncating conversion f32 -> bfloat16 (drop the low 16 bits).
pub const fn f32_to_bf16_trunc(x: f32) -> u16 {
    (x.to_bits() >> 16) as u16
}

/// Device packer conversion of a DEST value to bfloat16 (see the module docs): NaN -> same-sign
/// infinity, round half away from zero, zero/denormal results -> +0.
pub const fn f32_to_bf16_device(x: f32) -> u16 {
    let mut u = x.to_bits();
    if (u & 0x7FFF_FFFF) > 0x7F80_0000 {
        u = (u & 0x8000_0000) | 0x7F80_0000;
    }
    let v = (u + 0x8000) >> 16;
    if (v & 0x7FFF) < 0x80 { 0 } else { v as u16 }
}

/// The unpacker's Float32 -> TF32 (19-bit) conversion: the low 13 mantissa bits are dropped (no
/// rounding, no denormal flush).
pub const fn tf32_truncate(x: f32) -> f32 {
    f32::from_bits(x.to_bits() & 0xFFFF_E000)
}

/// The unpacker's Float32 -> bf16 source conversion: denormals become a zero of the same sign, then
/// the low 16 bits are dropped (no rounding).
pub const fn unpack_fp32_to_bf16(x: f32) -> f32 {
    let mut u = x.to_bits();
    if (u & 0x7FFF_FFFF) < 0x0080_0000 {
        u &= 0x8000_0000;
    }
    f32::from_bits(u & 0xFFFF_0000)
}

/// Rounds `x` to bfloat16 with the host rule and returns it as f32.
pub const fn round_bf16_host(x: f32) -> f32 {
    bf16_to_f32(f32_to_bf16_host(x))
}

/// Rounds `x` to bfloat16 with the device packer rule and returns it as f32.
pub const fn round_bf16_device(x: f32) -> f32 {
    bf16_to_f32(f32_to_bf16_device(x))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn host_known_values() {
        assert_eq!(f32_to_bf16_host(1.0), 0x3F80);
        assert_eq!(f32_to_bf16_host(-2.5), 0xC020);
        // 0.1 = 0x3DCCCCCD -> upper 0x3DCC, lower 0xCCCD > 0x8000 -> round up.
        assert_eq!(f32_to_bf16_host(0.1), 0x3DCD);
        // Tie, even upper half: 0x3F808000 -> 0x3F80 (stays), odd: 0x3F818000 -> 0x3F82.
        assert_eq!(f32_to_bf16_host(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(f32_to_bf16_host(f32::from_bits(0x3F81_8000)), 0x3F82);
        assert_eq!(f32_to_bf16_host(f32::MAX), 0x7F80); // overflow to +inf
        assert_eq!(f32_to_bf16_host(f32::INFINITY), 0x7F80);
        assert_eq!(f32_to_bf16_host(-0.0), 0x8000);
        // Denormal kept (host does not flush): 0x00010000 -> 0x0001.
        assert_eq!(f32_to_bf16_host(f32::from_bits(0x0001_0000)), 0x0001);
        let nan = f32_to_bf16_host(f32::from_bits(0x7F80_0001));
        assert!(bf16_to_f32(nan).is_nan());
        assert_eq!(nan, 0x7FC0);
        assert_eq!(f32_to_bf16_host(-f32::NAN), 0x7FC0);
    }

    #[test]
    fn device_known_values() {
        assert_eq!(f32_to_bf16_device(1.0), 0x3F80);
        assert_eq!(f32_to_bf16_device(-2.5), 0xC020);
        assert_eq!(f32_to_bf16_device(0.1), 0x3DCD);
        // Ties go away from zero on both signs.
        assert_eq!(f32_to_bf16_device(f32::from_bits(0x3F80_8000)), 0x3F81);
        assert_eq!(f32_to_bf16_device(f32::from_bits(0xBF80_8000)), 0xBF81);
        assert_eq!(f32_to_bf16_device(-0.0), 0x0000);
        assert_eq!(f32_to_bf16_device(f32::from_bits(0x8000_0001)), 0x0000);
        assert_eq!(f32_to_bf16_device(f32::from_bits(0x0040_0000)), 0x0000);
        // Largest denormal rounds up into the smallest normal and is kept.
        assert_eq!(f32_to_bf16_device(f32::from_bits(0x007F_FFFF)), 0x0080);
        assert_eq!(f32_to_bf16_device(f32::NAN), 0x7F80);
        assert_eq!(f32_to_bf16_device(-f32::NAN), 0xFF80);
        assert_eq!(f32_to_bf16_device(f32::MAX), 0x7F80);
        assert_eq!(f32_to_bf16_device(f32::NEG_INFINITY), 0xFF80);
    }

    #[test]
    fn tf32_and_unpack() {
        assert_eq!(
            tf32_truncate(f32::from_bits(0x3F80_1FFF)).to_bits(),
            0x3F80_0000
        );
        assert_eq!(
            tf32_truncate(f32::from_bits(0xBF80_3FFF)).to_bits(),
            0xBF80_2000
        );
        assert_eq!(
            unpack_fp32_to_bf16(f32::from_bits(0x8001_0000)).to_bits(),
            0x8000_0000
        );
        assert_eq!(
            unpack_fp32_to_bf16(f32::from_bits(0x3F80_FFFF)).to_bits(),
            0x3F80_0000
        );
    }

    proptest! {
        #[test]
        fn host_rne_matches_f64_nearest(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(x.is_finite() && x.abs() < 3.0e38);
            let r = round_bf16_host(x) as f64;
            let err = (r - x as f64).abs();
            // Neighbours of r in bf16 are at least as far from x.
            let b = f32_to_bf16_host(x);
            for nb in [b.wrapping_add(1), b.wrapping_sub(1)] {
                let n = bf16_to_f32(nb);
                if n.is_finite() && (n.to_bits() >> 31) == (r.to_bits() >> 63) as u32 {
                    prop_assert!((n as f64 - x as f64).abs() >= err);
                }
            }
        }

        #[test]
        fn host_and_device_differ_only_on_ties_and_special(bits in any::<u32>()) {
            let x = f32::from_bits(bits);
            prop_assume!(x.is_finite());
            let h = f32_to_bf16_host(x);
            let d = f32_to_bf16_device(x);
            let low = bits & 0xFFFF;
            let denormal_result = (d & 0x7FFF) < 0x80 || (h & 0x7FFF) < 0x80;
            if h != d && !denormal_result {
                // Only a tie with an even truncated value can differ, by one ULP away from zero.
                prop_assert_eq!(low, 0x8000);
                prop_assert_eq!((bits >> 16) & 1, 0);
                prop_assert_eq!(d, h + 1);
            }
        }

        #[test]
        fn bf16_round_trip_exact(b in any::<u16>()) {
            let x = bf16_to_f32(b);
            prop_assume!(!x.is_nan());
            prop_assert_eq!(f32_to_bf16_host(x), b);
        }
    }
}
