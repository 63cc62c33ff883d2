//! Block-float tiles (`Bfp8_b`, `Bfp4_b`, `Bfp2_b`).
//!
//! # Page layout (one 32x32 tile)
//! - 64 shared-exponent bytes: one per 16-value row of a face, face 0 rows 0-15, then faces 1, 2, 3
//!   (exactly the tile-order index divided by 16);
//! - then the sign|magnitude elements in tile order, packed LSB-first: Bfp8_b one byte each, Bfp4_b
//!   two per byte (element `2k` in the low nibble of byte `k`), Bfp2_b four per byte (element `4k+j`
//!   in bits `2j..2j+1`). The sign is the top bit of each element.
//!
//! A magnitude `m` with shared exponent `E` means `m / 2^(bits-1) * 2^(E-127)` (Bfp8_b: `m/64`).
//!
//! # Three codecs
//! - [`encode_bfp_tile_host`]: TT-Metal host (`blockfloat_common.cpp`, `convert_u32_to_bfp`):
//!   `E` = max raw exponent field of the 16 values (NaN/Inf count as 255, denormals as 0); every
//!   non-zero value gets its hidden 1 (denormals too), is shifted right by `E - e` (no sticky bit),
//!   then rounded to the magnitude width with round-half-to-even and saturated; a magnitude of 0
//!   clears the sign; +-0 encode as 0.
//! - [`encode_bfp_tile_device`]: the Tensix packer (ttsim `PACR`): each DEST value is first reduced
//!   according to the packer's source format ([`PackSrc`]), NaN becomes a same-sign infinity and a
//!   zero exponent field becomes +0; `E` = max exponent; the 8-bit magnitude (hidden bit + 7) is
//!   shifted by `E - e` with round-half-up (`(m + (1 << s)) >> (s + 1)`, 0 when `s >= 8`), clamped
//!   to 127; Bfp4_b/Bfp2_b keep the top 3/1 bits of that Bfp8 magnitude (truncation); the sign is
//!   set only for a non-zero magnitude.
//! - [`decode_bfp_tile`]: the unpacker (ttsim `UNPACR`, `bfp8_to_bf16`), which the device uses and
//!   which is lossless into bf16: Bfp4/Bfp2 magnitudes are widened to Bfp8 (`m << 4`, `m << 6`),
//!   normalised by leading-zero count (the 8-bit exponent wraps if it underflows); a zero magnitude
//!   decodes to +0, or to -inf when its sign bit is set. [`decode_bfp_tile_host`] is TT-Metal's
//!   host decoder (`convert_bfp_to_u32`), identical on everything the encoders produce, but a signed
//!   zero magnitude gives -0.0 and exponent underflow wraps differently.

use crate::format::{DataFormat, FormatError};
use crate::tile::TILE_HW;

/// Shared exponents per tile.
pub const EXPONENTS_PER_TILE: usize = TILE_HW / 16;

/// Which format the packer converts DEST values through before building the BFP block (TT-Metal's
/// `pack_src_format`, chosen by `get_pack_src_formats` from `fp32_dest_acc_en` and
/// `bfp8_pack_precise`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackSrc {
    /// `Bfp8_b` (TT-Metal default, `bfp8_pack_precise = false`): the value is truncated to bf16,
    /// then its 7-bit mantissa rounded half-up to 6 bits, before the block alignment.
    Bfp8B,
    /// `Float16_b` (`bfp8_pack_precise = true` without fp32 DEST): the value is rounded to bf16 half
    /// away from zero (a no-op for a 16-bit DEST), then aligned from its full 7-bit mantissa.
    Float16B,
    /// `Float32` (`bfp8_pack_precise = true` with fp32 DEST): the value is truncated to bf16 (the
    /// packer's "late conversion"), then aligned from its full 7-bit mantissa.
    Float32,
}

impl PackSrc {
    /// The pack source TT-Metal chooses for a BFP output.
    pub const fn for_config(fp32_dest_acc_en: bool, bfp8_pack_precise: bool) -> PackSrc {
        match (bfp8_pack_precise, fp32_dest_acc_en) {
            (false, _) => PackSrc::Bfp8B,
            (true, false) => PackSrc::Float16B,
            (true, true) => PackSrc::Float32,
        }
    }
}

/// Magnitude bits (7, 3, 1) for the supported BFP formats (`_b` variants).
pub fn bfp_magnitude_bits(fmt: DataFormat) -> Result<u32, FormatError> {
    match fmt {
        DataFormat::Bfp8_b => Ok(7),
        DataFormat::Bfp4_b => Ok(3),
        DataFormat::Bfp2_b => Ok(1),
        DataFormat::Bfp8 | DataFormat::Bfp4 => Err(FormatError::Unsupported {
            format: fmt.name(),
            operation: "the BFP codecs",
            hint: "only the 8-bit-exponent variants Bfp8_b, Bfp4_b and Bfp2_b are implemented",
        }),
        _ => Err(FormatError::Unsupported {
            format: fmt.name(),
            operation: "the BFP codecs",
            hint: "use a Bfp*_b format or the generic tile codec",
        }),
    }
}

/// Host (TT-Metal) encoding of one value against shared exponent `shared_exp`, returning the
/// sign|magnitude element of width `bits + 1`.
pub fn encode_value_host(input: u32, shared_exp: u32, bits: u32) -> u8 {
    if input & 0x7FFF_FFFF == 0 {
        return 0;
    }
    let exp = (input >> 23) & 0xFF;
    let sign = input >> 31;
    let mut mantissa = (1u32 << 23) | (input & 0x007F_FFFF);
    if shared_exp > exp {
        let diff = shared_exp - exp;
        mantissa = if diff >= 32 { 0 } else { mantissa >> diff };
    }
    let shift = 24 - bits;
    let round_mask = (1u32 << shift) - 1;
    let tie = 1u32 << (shift - 1);
    let round_value = mantissa & round_mask;
    mantissa >>= shift;
    let guard = mantissa & 1;
    if round_value > tie || (round_value == tie && guard == 1) {
        mantissa += 1;
    }
    let max = (1u32 << bits) - 1;
    mantissa = mantissa.min(max);
    let sign = if mantissa == 0 { 0 } else { sign };
    ((sign << bits) | mantissa) as u8
}

/// Reduces a DEST value (f32 bits) to the 16-bit sign|exp8|mant7 word the packer's BFP stage
/// sees, for pack source `src`.
pub fn device_pack_word(value: u32, src: PackSrc) -> u16 {
    let mut v = value;
    if (v & 0x7FFF_FFFF) > 0x7F80_0000 {
        v = (v & 0x8000_0000) | 0x7F80_0000;
    }
    let w = match src {
        PackSrc::Float16B => (v + 0x8000) >> 16,
        PackSrc::Float32 => v >> 16,
        PackSrc::Bfp8B => ((v >> 16) + 1) & !1,
    };
    if (w & 0x7FFF) < 0x80 { 0 } else { w as u16 }
}

/// Device packer: BFP block stage for 16 packer words (see [`device_pack_word`]); returns the shared
/// exponent and the sign|magnitude elements for a magnitude width of `bits`.
pub fn encode_row_device(words: &[u16; 16], bits: u32) -> (u8, [u8; 16]) {
    let max_exp = words.iter().map(|w| (w >> 7) & 0xFF).max().unwrap_or(0) as u32;
    let mut out = [0u8; 16];
    for (o, &w) in out.iter_mut().zip(words) {
        let s = (w >> 15) as u32;
        let e = ((w >> 7) & 0xFF) as u32;
        let mut m = (w & 0x7F) as u32;
        if e != 0 {
            m |= 0x80;
        }
        let shift = max_exp - e;
        if shift >= 8 {
            m = 0;
        } else {
            m = (m + (1 << shift)) >> (shift + 1);
            if m == 0x80 {
                m = 0x7F;
            }
        }
        m >>= 7 - bits;
        if m != 0 {
            m |= s << bits;
        }
        *o = m as u8;
    }
    (max_exp as u8, out)
}

/// Host (TT-Metal) BFP block for 16 f32 bit patterns: shared exponent and elements.
pub fn encode_row_host(values: &[u32; 16], bits: u32) -> (u8, [u8; 16]) {
    let shared = values.iter().map(|v| (v >> 23) & 0xFF).max().unwrap_or(0);
    let mut out = [0u8; 16];
    for (o, &v) in out.iter_mut().zip(values) {
        *o = encode_value_host(v, shared, bits);
    }
    (shared as u8, out)
}

/// The unpacker's BFP8 element -> bf16 conversion (ttsim `bfp8_to_bf16`). Bfp4/Bfp2 elements are
/// widened first (`x << 4`, `x << 6`).
pub const fn bfp8_to_bf16(x: u8, exp: u8) -> u16 {
    let sign = (x >> 7) as u16;
    let mag = x << 1;
    if mag == 0 {
        return if sign != 0 { 0xFF80 } else { 0 };
    }
    let lz = mag.leading_zeros();
    let mag = mag << lz;
    let e = exp.wrapping_sub(lz as u8);
    (sign << 15) | ((e as u16) << 7) | (mag & 0x7E) as u16
}

/// TT-Metal host decoding of one element (`convert_bfp_to_u32`), as f32 bits.
pub fn decode_value_host(x: u8, shared_exp: u8, bits: u32) -> u32 {
    let sign = (x as u32) >> bits;
    let mut man = (x as u32) & ((1 << bits) - 1);
    let mut exp = shared_exp as u32;
    if man == 0 {
        exp = 0;
    } else {
        let top = 1u32 << (bits - 1);
        let mut shift_cnt = 0u32;
        while man & top == 0 {
            man <<= 1;
            shift_cnt += 1;
        }
        man = (man << 1) & ((1 << bits) - 1);
        exp = exp.wrapping_sub(shift_cnt);
    }
    (sign << 31) | exp.wrapping_shl(23) | (man << (23 - bits))
}

fn check_len(fmt: DataFormat, bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() != fmt.tile_size_bytes() {
        return Err(FormatError::WrongLength {
            what: "encoded BFP tile",
            expected: fmt.tile_size_bytes(),
            actual: bytes.len(),
            unit: "bytes",
        });
    }
    Ok(())
}

fn write_tile(bits: u32, rows: impl Iterator<Item = (u8, [u8; 16])>) -> Vec<u8> {
    let elem_bits = (bits + 1) as usize;
    let mut out = vec![0u8; EXPONENTS_PER_TILE + TILE_HW * elem_bits / 8];
    for (r, (exp, elems)) in rows.enumerate() {
        out[r] = exp;
        for (j, &e) in elems.iter().enumerate() {
            let i = r * 16 + j;
            let bit = i * elem_bits;
            out[EXPONENTS_PER_TILE + bit / 8] |= e << (bit % 8);
        }
    }
    out
}

fn read_element(bytes: &[u8], bits: u32, i: usize) -> u8 {
    let elem_bits = (bits + 1) as usize;
    let bit = i * elem_bits;
    let mask = ((1u32 << elem_bits) - 1) as u8;
    (bytes[EXPONENTS_PER_TILE + bit / 8] >> (bit % 8)) & mask
}

/// TT-Metal host encoding of a whole tile (1024 values in tile order).
pub fn encode_bfp_tile_host(
    fmt: DataFormat,
    values: &[f32; TILE_HW],
) -> Result<Vec<u8>, FormatError> {
    let bits = bfp_magnitude_bits(fmt)?;
    Ok(write_tile(
        bits,
        values.chunks_exact(16).map(|row| {
            let mut u = [0u32; 16];
            for (d, s) in u.iter_mut().zip(row) {
                *d = s.to_bits();
            }
            encode_row_host(&u, bits)
        }),
    ))
}

/// Device packer encoding of a whole tile of DEST values (tile order) with pack source `src`.
pub fn encode_bfp_tile_device(
    fmt: DataFormat,
    src: PackSrc,
    values: &[f32; TILE_HW],
) -> Result<Vec<u8>, FormatError> {
    let bits = bfp_magnitude_bits(fmt)?;
    Ok(write_tile(
        bits,
        values.chunks_exact(16).map(|row| {
            let mut w = [0u16; 16];
            for (d, s) in w.iter_mut().zip(row) {
                *d = device_pack_word(s.to_bits(), src);
            }
            encode_row_device(&w, bits)
        }),
    ))
}

/// Unpacker decoding of a whole tile into f32 (every result is bf16-exact), tile order.
pub fn decode_bfp_tile(fmt: DataFormat, bytes: &[u8]) -> Result<[f32; TILE_HW], FormatError> {
    let bits = bfp_magnitude_bits(fmt)?;
    check_len(fmt, bytes)?;
    let mut out = [0f32; TILE_HW];
    for (i, o) in out.iter_mut().enumerate() {
        let exp = bytes[i / 16];
        let x = read_element(bytes, bits, i) << (7 - bits);
        *o = crate::scalar::bf16_to_f32(bfp8_to_bf16(x, exp));
    }
    Ok(out)
}

/// TT-Metal host decoding of a whole tile into f32, tile order.
pub fn decode_bfp_tile_host(fmt: DataFormat, bytes: &[u8]) -> Result<[f32; TILE_HW], FormatError> {
    let bits = bfp_magnitude_bits(fmt)?;
    check_len(fmt, bytes)?;
    let mut out = [0f32; TILE_HW];
    for (i, o) in out.iter_mut().enumerate() {
        *o = f32::from_bits(decode_value_host(
            read_element(bytes, bits, i),
            bytes[i / 16],
            bits,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn row(vals: &[f32]) -> [u32; 16] {
        let mut r = [0u32; 16];
        for (d, v) in r.iter_mut().zip(vals) {
            *d = v.to_bits();
        }
        r
    }

    fn tile_with_row0(vals: &[f32]) -> [f32; TILE_HW] {
        let mut t = [0f32; TILE_HW];
        t[..vals.len()].copy_from_slice(vals);
        t
    }

    // Hand-derived (module docs): shared exponent 128 (from -2.5); 1.0 -> 0x800000>>1>>17 = 32;
    // -2.5 -> 0xA00000>>17 = 80 | sign; 0.1 -> 0xCCCCCD>>5 = 0x66666, >>17 = 3 (rest < tie).
    #[test]
    fn host_bfp8_known_row() {
        let (e, m) = encode_row_host(&row(&[1.0, -2.5, 0.1, 0.0, -0.0]), 7);
        assert_eq!(e, 128);
        assert_eq!(&m[..5], &[0x20, 0xD0, 0x03, 0x00, 0x00]);
        assert_eq!(bf16_f(bfp8_to_bf16(0x20, 128)), 1.0);
        assert_eq!(bf16_f(bfp8_to_bf16(0xD0, 128)), -2.5);
        assert_eq!(bf16_f(bfp8_to_bf16(0x03, 128)), 0.09375);
    }

    fn bf16_f(b: u16) -> f32 {
        crate::scalar::bf16_to_f32(b)
    }

    #[test]
    fn host_ties_to_even_device_away() {
        // 1 + 1/128: 24-bit mantissa 0x810000, kept 0x40, dropped exactly half -> even 0x40.
        // 1 + 3/128: kept 0x41 (odd), half dropped -> 0x42.
        let (_, m) = encode_row_host(&row(&[1.0078125, 1.0234375]), 7);
        assert_eq!(&m[..2], &[0x40, 0x42]);
        // Device (both pack sources): half goes away from zero: 0x41 and 0x42.
        for src in [PackSrc::Bfp8B, PackSrc::Float16B, PackSrc::Float32] {
            let w = [
                device_pack_word(1.0078125f32.to_bits(), src),
                device_pack_word(1.0234375f32.to_bits(), src),
            ];
            let mut words = [0u16; 16];
            words[..2].copy_from_slice(&w);
            let (e, m) = encode_row_device(&words, 7);
            assert_eq!(e, 127);
            assert_eq!(&m[..2], &[0x41, 0x42], "{src:?}");
        }
    }

    #[test]
    fn saturation_host_vs_device() {
        // 0x3FFFFFFF (just below 2): host rounds the magnitude up to 128 and saturates at 127;
        // device (Bfp8B) truncates to bf16 0x3FFF, rounds m7->m6 up to 2.0 = new exponent 128.
        let x = f32::from_bits(0x3FFF_FFFF);
        let (e, m) = encode_row_host(&row(&[x]), 7);
        assert_eq!((e, m[0]), (127, 0x7F));
        let mut w = [0u16; 16];
        w[0] = device_pack_word(x.to_bits(), PackSrc::Bfp8B);
        assert_eq!(w[0], 0x4000);
        let (e, m) = encode_row_device(&w, 7);
        assert_eq!((e, m[0]), (128, 0x40));
        // Float32 pack source truncates: 0x3FFF -> magnitude (0xFF + 1) >> 1 = 0x80 -> clamp 0x7F.
        w[0] = device_pack_word(x.to_bits(), PackSrc::Float32);
        assert_eq!(
            encode_row_device(&w, 7),
            (127, {
                let mut a = [0u8; 16];
                a[0] = 0x7F;
                a
            })
        );
    }

    #[test]
    fn device_flushes_and_nan_to_inf() {
        assert_eq!(
            device_pack_word(f32::from_bits(0x0000_0001).to_bits(), PackSrc::Float16B),
            0
        );
        assert_eq!(device_pack_word((-0.0f32).to_bits(), PackSrc::Bfp8B), 0);
        assert_eq!(
            device_pack_word(f32::NAN.to_bits(), PackSrc::Float32),
            0x7F80
        );
        // Values more than 7 binades below the block maximum vanish (shift >= 8).
        let mut w = [0u16; 16];
        w[0] = 0x4300; // 128.0
        w[1] = 0x3F80; // 1.0, shift 7: (0x80 + 0x80) >> 8 = 1
        w[2] = 0x3F00; // 0.5, shift 8 -> 0
        w[3] = 0xBF80; // -1.0 -> 1 | sign
        let (e, m) = encode_row_device(&w, 7);
        assert_eq!(e, 0x86);
        assert_eq!(&m[..4], &[0x40, 0x01, 0x00, 0x81]);
    }

    #[test]
    fn host_denormals_and_specials() {
        // A row of only denormals: shared exponent 0, the hidden 1 is still added.
        let (e, m) = encode_row_host(&row(&[f32::from_bits(1)]), 7);
        assert_eq!((e, m[0]), (0, 0x40));
        // Infinity takes exponent 255 and magnitude 64; it decodes back to infinity.
        let (e, m) = encode_row_host(&row(&[f32::NEG_INFINITY, 1.0]), 7);
        assert_eq!((e, m[0], m[1]), (255, 0xC0, 0x00));
        assert_eq!(bf16_f(bfp8_to_bf16(0xC0, 255)), f32::NEG_INFINITY);
    }

    #[test]
    fn unpacker_vs_host_decoder_on_signed_zero() {
        assert_eq!(bfp8_to_bf16(0x80, 130), 0xFF80); // -inf on the device
        assert_eq!(decode_value_host(0x80, 130, 7), 0x8000_0000); // -0.0 on the host
        assert_eq!(bfp8_to_bf16(0x00, 130), 0);
    }

    #[test]
    fn bfp4_and_bfp2_packing_order() {
        // Bfp4: 1.0 -> 0x800000>>21 = 4; -1.0 -> 0xC; element 0 in the low nibble.
        let t = tile_with_row0(&[1.0, -1.0, 0.5, 0.0]);
        let b = encode_bfp_tile_host(DataFormat::Bfp4_b, &t).unwrap();
        assert_eq!(b.len(), 576);
        assert_eq!(b[0], 127);
        assert_eq!(b[64], 0xC4);
        assert_eq!(b[65], 0x02); // 0.5 -> 0x800000>>1>>21 = 2
        let d = decode_bfp_tile(DataFormat::Bfp4_b, &b).unwrap();
        assert_eq!(&d[..4], &[1.0, -1.0, 0.5, 0.0]);
        // Bfp2: 1.0 -> 01, -1.0 -> 11, 0.4 -> 0 (below half), 0.75 -> 01 (above half).
        let t = tile_with_row0(&[1.0, -1.0, 0.4, 0.75]);
        let b = encode_bfp_tile_host(DataFormat::Bfp2_b, &t).unwrap();
        assert_eq!(b.len(), 320);
        assert_eq!(b[64], 0x4D);
        let d = decode_bfp_tile(DataFormat::Bfp2_b, &b).unwrap();
        assert_eq!(&d[..4], &[1.0, -1.0, 0.0, 1.0]);
    }

    #[test]
    fn device_bfp4_truncates_bfp8() {
        // 1.0 + 0.75 = 1.75: bfp8 magnitude 0x70; bfp4 keeps the top 3 bits 0b111 (no rounding).
        // 1.9375 (bfp8 0x7C) also gives 0b111; 1.125 (0x48) gives 0b100.
        let t = tile_with_row0(&[1.75, 1.9375, 1.125]);
        let b = encode_bfp_tile_device(DataFormat::Bfp4_b, PackSrc::Float16B, &t).unwrap();
        assert_eq!(b[64], 0x77);
        assert_eq!(b[65] & 0xF, 0x4);
        let b2 = encode_bfp_tile_device(DataFormat::Bfp2_b, PackSrc::Float16B, &t).unwrap();
        assert_eq!(b2[64] & 0x3F, 0b01_01_01);
    }

    #[test]
    fn exponent_section_order() {
        let mut t = [0f32; TILE_HW];
        for (r, v) in t.chunks_exact_mut(16).enumerate() {
            v[5] = f32::from_bits(((r as u32 + 60) << 23) | 0x12_3456);
        }
        let b = encode_bfp_tile_host(DataFormat::Bfp8_b, &t).unwrap();
        for r in 0..64 {
            assert_eq!(b[r] as usize, r + 60);
            assert_eq!(b[64 + r * 16 + 5], 0x40 | 0x09); // 1.0010010... -> 0x49
        }
        assert!(decode_bfp_tile(DataFormat::Bfp8_b, &b[..100]).is_err());
        assert!(encode_bfp_tile_host(DataFormat::Float16_b, &t).is_err());
    }

    fn finite_tile() -> impl Strategy<Value = Vec<f32>> {
        prop::collection::vec(
            prop_oneof![
                (-1.0e3f32..1.0e3f32),
                (-1.0f32..1.0f32),
                any::<u32>().prop_map(|b| f32::from_bits(b & 0xBFFF_FFFF)), // exponent <= 127+0x7f... finite
            ],
            TILE_HW,
        )
    }

    fn arr(v: &[f32]) -> [f32; TILE_HW] {
        let mut a = [0f32; TILE_HW];
        a.copy_from_slice(v);
        a
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn bfp8_host_error_within_one_block_ulp(v in finite_tile()) {
            let t = arr(&v);
            let b = encode_bfp_tile_host(DataFormat::Bfp8_b, &t).unwrap();
            let d = decode_bfp_tile(DataFormat::Bfp8_b, &b).unwrap();
            let h = decode_bfp_tile_host(DataFormat::Bfp8_b, &b).unwrap();
            for i in 0..TILE_HW {
                let e = b[i / 16] as i32;
                prop_assume!(e > 6); // keep block ULPs normal
                // Magnitude step of the block is 2^(E-127-6); rounding to nearest and no sticky
                // bit keep the error within one step (saturation at 127 too).
                let ulp = 2f64.powi(e - 127 - 6);
                prop_assert!((d[i] as f64 - t[i] as f64).abs() <= ulp, "i={} x={} got {}", i, t[i], d[i]);
                prop_assert_eq!(d[i].to_bits(), h[i].to_bits());
                // Decoded values are bf16-exact.
                prop_assert_eq!(d[i].to_bits() & 0xFFFF, 0);
            }
        }

        #[test]
        fn encoders_are_idempotent_on_decoded_tiles(v in finite_tile(), fmt in prop_oneof![Just(DataFormat::Bfp8_b), Just(DataFormat::Bfp4_b), Just(DataFormat::Bfp2_b)]) {
            let t = arr(&v);
            let b = encode_bfp_tile_host(fmt, &t).unwrap();
            let d = decode_bfp_tile(fmt, &b).unwrap();
            let d2 = decode_bfp_tile(fmt, &encode_bfp_tile_host(fmt, &d).unwrap()).unwrap();
            prop_assert_eq!(d.map(f32::to_bits), d2.map(f32::to_bits));
            if fmt == DataFormat::Bfp8_b {
                for src in [PackSrc::Bfp8B, PackSrc::Float16B, PackSrc::Float32] {
                    let dd = decode_bfp_tile(fmt, &encode_bfp_tile_device(fmt, src, &d).unwrap()).unwrap();
                    prop_assert_eq!(d.map(f32::to_bits), dd.map(f32::to_bits));
                }
            }
        }
    }
}
