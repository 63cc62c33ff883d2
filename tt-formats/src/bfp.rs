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
