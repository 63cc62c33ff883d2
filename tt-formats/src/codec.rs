//! Whole-tile codecs for every supported format: 1024 values in tile order <-> one tile page.
//!
//! - Float formats: `Float32` (little-endian IEEE bits), `Float16_b` (little-endian bf16),
//!   `Float16` (IEEE half, host encode/decode only), `Bfp8_b`/`Bfp4_b`/`Bfp2_b` (see [`crate::bfp`]).
//! - Integer formats (`Int32`, `UInt32`, `UInt16`, `UInt8`): the f32 interface carries integer
//!   *values*: encoding converts with Rust's saturating `as` cast (toward zero, NaN -> 0), decoding
//!   gives the integer as f32 (exact below 2^24). Code that needs every integer bit should use
//!   [`encode_tile_u32`]/[`decode_tile_u32`], which move raw 32-bit words.
//! - `Bfp8`/`Bfp4` (5-bit exponent) are not implemented and return [`FormatError::Unsupported`].
//!
//! "Host" encoding is what TT-Metal's host library writes into a buffer; "device" encoding is what
//! the Tensix packer writes from DEST (see [`crate::scalar`] and [`crate::bfp`]).

use crate::bfp::{self, PackSrc};
use crate::format::{DataFormat, FormatError};
use crate::scalar::{bf16_to_f32, f32_to_bf16_device, f32_to_bf16_host};
use crate::tile::TILE_HW;

/// Packer configuration that affects the bits written (TT-Metal `ComputeConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PackerConfig {
    /// DEST holds fp32 (`fp32_dest_acc_en`). With `false` the DEST values handed to the packer must
    /// be bf16-exact (a 16-bit DEST cannot hold anything else).
    pub fp32_dest_acc_en: bool,
    /// `bfp8_pack_precise`.
    pub bfp8_pack_precise: bool,
}

fn unsupported(fmt: DataFormat, operation: &'static str, hint: &'static str) -> FormatError {
    FormatError::Unsupported {
        format: fmt.name(),
        operation,
        hint,
    }
}

fn put_words<const N: usize>(values: &[f32; TILE_HW], f: impl Fn(f32) -> [u8; N]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TILE_HW * N);
    for &v in values {
        out.extend_from_slice(&f(v));
    }
    out
}

/// Host encoding of one tile (TT-Metal host library rules: bf16 round-to-nearest-even, BFP per
/// `blockfloat_common.cpp`).
pub fn encode_tile_host(fmt: DataFormat, values: &[f32; TILE_HW]) -> Result<Vec<u8>, FormatError> {
    Ok(match fmt {
        DataFormat::Float32 => put_words(values, |v| v.to_bits().to_le_bytes()),
        DataFormat::Float16_b => put_words(values, |v| f32_to_bf16_host(v).to_le_bytes()),
        DataFormat::Float16 => {
            put_words(values, |v| half::f16::from_f32(v).to_bits().to_le_bytes())
        }
        DataFormat::Bfp8_b | DataFormat::Bfp4_b | DataFormat::Bfp2_b => {
            bfp::encode_bfp_tile_host(fmt, values)?
        }
        DataFormat::Int32 => put_words(values, |v| (v as i32).to_le_bytes()),
        DataFormat::UInt32 => put_words(values, |v| (v as u32).to_le_bytes()),
        DataFormat::UInt16 => put_words(values, |v| (v as u16).to_le_bytes()),
        DataFormat::UInt8 => put_words(values, |v| [v as u8]),
        DataFormat::Bfp8 | DataFormat::Bfp4 => {
            return Err(unsupported(fmt, "encode_tile_host", "use Bfp8_b or Bfp4_b"));
        }
    })
}

/// [`encode_tile_host`] into a caller's buffer of exactly `fmt.tile_size_bytes()` bytes (no
/// allocation for the word formats; same bytes as [`encode_tile_host`]).
pub fn encode_tile_host_into(
    fmt: DataFormat,
    values: &[f32; TILE_HW],
    out: &mut [u8],
) -> Result<(), FormatError> {
    fn words<const N: usize>(values: &[f32; TILE_HW], out: &mut [u8], f: impl Fn(f32) -> [u8; N]) {
        for (o, &v) in out.chunks_exact_mut(N).zip(values) {
            o.copy_from_slice(&f(v));
        }
    }
    if matches!(fmt, DataFormat::Bfp8 | DataFormat::Bfp4) {
        return Err(unsupported(fmt, "encode_tile_host", "use Bfp8_b or Bfp4_b"));
    }
    check_len(fmt, out)?;
    match fmt {
        DataFormat::Float32 => words(values, out, |v| v.to_bits().to_le_bytes()),
        DataFormat::Float16_b => words(values, out, |v| f32_to_bf16_host(v).to_le_bytes()),
        _ => out.copy_from_slice(&encode_tile_host(fmt, values)?),
    }
    Ok(())
}

/// Device (packer) encoding of one tile of DEST values with TT-Metal's default packer
/// configuration (`bfp8_pack_precise = false`; the DEST width does not change the bits for
/// bf16-exact inputs). See [`encode_tile_device_with`].
pub fn encode_tile_device(
    fmt: DataFormat,
    values: &[f32; TILE_HW],
) -> Result<Vec<u8>, FormatError> {
    encode_tile_device_with(fmt, PackerConfig::default(), values)
}

/// Device (packer) encoding of one tile of DEST values (tile order):
/// - `Float32`, `Int32`, `UInt32`: the DEST bits unchanged;
/// - `Float16_b`: [`f32_to_bf16_device`];
/// - BFP: [`bfp::encode_bfp_tile_device`] with [`PackSrc::for_config`];
/// - `UInt16`, `UInt8`: the integer value, as in [`encode_tile_host`];
/// - `Float16`, `Bfp8`, `Bfp4`: unsupported.
pub fn encode_tile_device_with(
    fmt: DataFormat,
    config: PackerConfig,
    values: &[f32; TILE_HW],
) -> Result<Vec<u8>, FormatError> {
    Ok(match fmt {
        DataFormat::Float32 => put_words(values, |v| v.to_bits().to_le_bytes()),
        DataFormat::Float16_b => put_words(values, |v| f32_to_bf16_device(v).to_le_bytes()),
        DataFormat::Bfp8_b | DataFormat::Bfp4_b | DataFormat::Bfp2_b => {
            bfp::encode_bfp_tile_device(
                fmt,
                PackSrc::for_config(config.fp32_dest_acc_en, config.bfp8_pack_precise),
                values,
            )?
        }
        DataFormat::Int32 | DataFormat::UInt32 | DataFormat::UInt16 | DataFormat::UInt8 => {
            encode_tile_host(fmt, values)?
        }
        DataFormat::Float16 | DataFormat::Bfp8 | DataFormat::Bfp4 => {
            return Err(unsupported(
                fmt,
                "encode_tile_device",
                "the packer model covers Float32, Float16_b, Bfp8_b, Bfp4_b, Bfp2_b and the integer formats",
            ));
        }
    })
}

fn check_len(fmt: DataFormat, bytes: &[u8]) -> Result<(), FormatError> {
    if bytes.len() != fmt.tile_size_bytes() {
        return Err(FormatError::WrongLength {
            what: "encoded tile",
            expected: fmt.tile_size_bytes(),
            actual: bytes.len(),
            unit: "bytes",
        });
    }
    Ok(())
}

fn map_words<const N: usize>(bytes: &[u8], f: impl Fn([u8; N]) -> f32) -> [f32; TILE_HW] {
    let mut out = [0f32; TILE_HW];
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(N)) {
        let mut w = [0u8; N];
        w.copy_from_slice(c);
        *o = f(w);
    }
    out
}

/// Decodes one tile page into 1024 f32 values in tile order. BFP tiles are decoded the way the
/// unpacker reads them (bf16-exact results; see [`crate::bfp`]); use
/// [`bfp::decode_bfp_tile_host`] for TT-Metal's host decoder.
pub fn decode_tile(fmt: DataFormat, bytes: &[u8]) -> Result<[f32; TILE_HW], FormatError> {
    if matches!(fmt, DataFormat::Bfp8 | DataFormat::Bfp4) {
        return Err(unsupported(fmt, "decode_tile", "use Bfp8_b or Bfp4_b"));
    }
    check_len(fmt, bytes)?;
    Ok(match fmt {
        DataFormat::Float32 => map_words(bytes, |w: [u8; 4]| f32::from_le_bytes(w)),
        DataFormat::Float16_b => map_words(bytes, |w: [u8; 2]| bf16_to_f32(u16::from_le_bytes(w))),
        DataFormat::Float16 => map_words(bytes, |w: [u8; 2]| {
            half::f16::from_bits(u16::from_le_bytes(w)).to_f32()
        }),
        DataFormat::Int32 => map_words(bytes, |w: [u8; 4]| i32::from_le_bytes(w) as f32),
        DataFormat::UInt32 => map_words(bytes, |w: [u8; 4]| u32::from_le_bytes(w) as f32),
        DataFormat::UInt16 => map_words(bytes, |w: [u8; 2]| u16::from_le_bytes(w) as f32),
        DataFormat::UInt8 => map_words(bytes, |w: [u8; 1]| w[0] as f32),
        _ => bfp::decode_bfp_tile(fmt, bytes)?,
    })
}

/// Raw 32-bit words (little-endian) of a `Float32`/`Int32`/`UInt32` tile.
pub fn encode_tile_u32(fmt: DataFormat, words: &[u32; TILE_HW]) -> Result<Vec<u8>, FormatError> {
    match fmt {
        DataFormat::Float32 | DataFormat::Int32 | DataFormat::UInt32 => {
            Ok(words.iter().flat_map(|w| w.to_le_bytes()).collect())
        }
        _ => Err(unsupported(
            fmt,
            "encode_tile_u32",
            "only 32-bit formats carry raw words",
        )),
    }
}

/// Inverse of [`encode_tile_u32`].
pub fn decode_tile_u32(fmt: DataFormat, bytes: &[u8]) -> Result<[u32; TILE_HW], FormatError> {
    if !matches!(
        fmt,
        DataFormat::Float32 | DataFormat::Int32 | DataFormat::UInt32
    ) {
        return Err(unsupported(
            fmt,
            "decode_tile_u32",
            "only 32-bit formats carry raw words",
        ));
    }
    check_len(fmt, bytes)?;
    let mut out = [0u32; TILE_HW];
    for (o, c) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [f32; TILE_HW] {
        let mut t = [0f32; TILE_HW];
        for (i, v) in t.iter_mut().enumerate() {
            // Deterministic, non-zero, mixed signs and magnitudes.
            *v = ((i as f32 * 0.731).sin() * 37.0) + if i % 3 == 0 { -0.01 } else { 0.02 };
        }
        t
    }

    #[test]
    fn float32_round_trip_is_bit_exact() {
        let t = sample();
        let b = encode_tile_host(DataFormat::Float32, &t).unwrap();
        assert_eq!(b.len(), 4096);
        assert_eq!(&b[..4], &t[0].to_bits().to_le_bytes());
        assert_eq!(
            decode_tile(DataFormat::Float32, &b)
                .unwrap()
                .map(f32::to_bits),
            t.map(f32::to_bits)
        );
        assert_eq!(encode_tile_device(DataFormat::Float32, &t).unwrap(), b);
    }

    #[test]
    fn encode_into_gives_the_bytes_of_encode_tile_host() {
        let mut t = sample();
        t[5] = f32::NAN;
        t[6] = f32::INFINITY;
        t[7] = f32::from_bits(0x0000_0123); // denormal
        for fmt in [
            DataFormat::Float32,
            DataFormat::Float16_b,
            DataFormat::Bfp8_b,
            DataFormat::Bfp4_b,
            DataFormat::UInt16,
        ] {
            let mut out = vec![0xAAu8; fmt.tile_size_bytes()];
            encode_tile_host_into(fmt, &t, &mut out).unwrap();
            assert_eq!(out, encode_tile_host(fmt, &t).unwrap(), "{fmt:?}");
        }
        let mut short = vec![0u8; 100];
        assert!(encode_tile_host_into(DataFormat::Float16_b, &t, &mut short).is_err());
        assert!(encode_tile_host_into(DataFormat::Bfp8, &t, &mut short).is_err());
    }

    #[test]
    fn bf16_host_and_device_encodings() {
        let mut t = sample();
        t[0] = f32::from_bits(0x3F80_8000); // tie
        t[1] = -0.0;
        let h = encode_tile_host(DataFormat::Float16_b, &t).unwrap();
        let d = encode_tile_device(DataFormat::Float16_b, &t).unwrap();
        assert_eq!(h.len(), 2048);
        assert_eq!(&h[..4], &[0x80, 0x3F, 0x00, 0x80]);
        assert_eq!(&d[..4], &[0x81, 0x3F, 0x00, 0x00]);
        let back = decode_tile(DataFormat::Float16_b, &h).unwrap();
        for i in 2..TILE_HW {
            // RNE to 8 significant bits: relative error at most half an ULP = 2^-8.
            assert!((back[i] - t[i]).abs() <= t[i].abs() * (1.0 / 256.0), "{i}");
        }
    }

    #[test]
    fn integer_formats_carry_values() {
        let mut t = [0f32; TILE_HW];
        for (i, v) in t.iter_mut().enumerate() {
            *v = (i % 251) as f32;
        }
        for fmt in [
            DataFormat::UInt8,
            DataFormat::UInt16,
            DataFormat::UInt32,
            DataFormat::Int32,
        ] {
            let b = encode_tile_host(fmt, &t).unwrap();
            assert_eq!(b.len(), fmt.tile_size_bytes());
            assert_eq!(decode_tile(fmt, &b).unwrap(), t, "{fmt}");
        }
        t[0] = -5.0;
        let b = encode_tile_host(DataFormat::Int32, &t).unwrap();
        assert_eq!(&b[..4], &(-5i32).to_le_bytes());
        let words: [u32; TILE_HW] = std::array::from_fn(|i| (i as u32).wrapping_mul(0x9E37_79B9));
        let b = encode_tile_u32(DataFormat::UInt32, &words).unwrap();
        assert_eq!(decode_tile_u32(DataFormat::UInt32, &b).unwrap(), words);
    }

    #[test]
    fn every_format_has_a_defined_answer() {
        let t = sample();
        for fmt in DataFormat::ALL {
            match encode_tile_host(fmt, &t) {
                Ok(b) => {
                    assert_eq!(b.len(), fmt.tile_size_bytes(), "{fmt}");
                    assert!(decode_tile(fmt, &b).is_ok(), "{fmt}");
                }
                Err(e) => assert!(
                    matches!(fmt, DataFormat::Bfp8 | DataFormat::Bfp4),
                    "{fmt}: {e}"
                ),
            }
        }
        let err = decode_tile(DataFormat::Bfp8_b, &[0u8; 10]).unwrap_err();
        assert!(err.to_string().contains("expected 1088 bytes"), "{err}");
    }

    #[test]
    fn device_bfp_default_and_precise_differ_as_documented() {
        let mut t = [1.0f32; TILE_HW];
        t[1] = f32::from_bits(0x3F81_0000); // bf16 1 + 2^-7: m7 odd
        let def = encode_tile_device(DataFormat::Bfp8_b, &t).unwrap();
        let precise = encode_tile_device_with(
            DataFormat::Bfp8_b,
            PackerConfig {
                fp32_dest_acc_en: true,
                bfp8_pack_precise: true,
            },
            &t,
        )
        .unwrap();
        // Default: m7 -> m6 (0x82), then align shift 0: (0x82 + 1) >> 1 = 0x41.
        // Precise (fp32 DEST): truncate to bf16 0x3F81, (0x81 + 1) >> 1 = 0x41 as well (ties away).
        assert_eq!(def[65], 0x41);
        assert_eq!(precise[65], 0x41);
        // A value whose low 16 bits matter: 1 + 2^-7 + 2^-9 in fp32.
        t[1] = f32::from_bits(0x3F81_4000);
        let precise = encode_tile_device_with(
            DataFormat::Bfp8_b,
            PackerConfig {
                fp32_dest_acc_en: true,
                bfp8_pack_precise: true,
            },
            &t,
        )
        .unwrap();
        assert_eq!(precise[65], 0x41);
        let host = encode_tile_host(DataFormat::Bfp8_b, &t).unwrap();
        assert_eq!(host[65], 0x41); // above the tie: rounds up on the host as well
    }
}
