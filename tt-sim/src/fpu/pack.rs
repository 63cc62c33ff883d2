//! The unpacker (L1 tile bytes -> SrcA/SrcB or DEST) and the packer (DEST -> L1 tile bytes),
//! bit-exact with ttsim's `UNPACR` / `PACR` for the 8-bit-exponent formats, with the formats
//! TT-Metal programs into them (`data_format.cpp` `get_single_unpack_dst_format`,
//! `get_single_pack_src_format`).

use super::{DestTile, Fp32SrcFormat, FpuConfig, FpuError, SrcTile, TILE_DATUMS};
use tt_formats::DataFormat;

fn check_len(what: &'static str, fmt: DataFormat, len: usize) -> Result<(), FpuError> {
    let expected = fmt.tile_size_bytes();
    if len != expected {
        return Err(FpuError::WrongLength {
            what,
            format: fmt,
            expected,
            actual: len,
        });
    }
    Ok(())
}

fn unsupported(fmt: DataFormat, op: &str) -> FpuError {
    FpuError::Unsupported {
        what: format!("{op} of {fmt:?}"),
        hint: "use Float32, Float16_b, Bfp8_b, Bfp4_b or Bfp2_b tiles (5-bit-exponent and integer formats are not modelled)",
    }
}

/// Float32 bits -> 19-bit source datum, as the unpacker converts Float32 to `fmt`.
pub(crate) fn fp32_to_src(x: u32, fmt: Fp32SrcFormat) -> Result<u32, FpuError> {
    match fmt {
        // Low 13 mantissa bits dropped, no rounding, no denormal flush (the FPU flushes later).
        Fp32SrcFormat::Tf32 => Ok(x >> 13),
        Fp32SrcFormat::Bf16 => {
            let x = if x & 0x7FFF_FFFF < 0x80_0000 {
                x & 0x8000_0000
            } else {
                x
            };
            Ok((x & 0xFFFF_0000) >> 13)
        }
        Fp32SrcFormat::Fp16 => Err(FpuError::Unsupported {
            what: "Float32 unpacked to fp16 (an all-Float32 program without fp32_dest_acc_en)"
                .into(),
            hint: "enable fp32_dest_acc_en, or give the program a bf16/BFP*_b circular buffer",
        }),
    }
}

/// One BFP8 datum (sign + 7-bit magnitude) with its shared exponent -> bf16 bits, as the
/// unpacker expands it (ttsim `bfp8_to_bf16`): normalise by the leading zeros of the magnitude,
/// keep 6 mantissa bits. A zero magnitude gives +0, or -inf when the sign bit is set; a small
/// shared exponent wraps around (as silicon does). The straightforward form, the reference for
/// the branch-free [`bfp8_lane`] that [`unpack`] uses.
#[cfg(test)]
pub(crate) fn bfp8_to_bf16(x: u8, exp: u8) -> u16 {
    let sign = (x >> 7) as u16;
    let mag = x << 1;
    if mag == 0 {
        return if sign != 0 { 0xFF80 } else { 0 };
    }
    let lz = mag.leading_zeros();
    let mag = mag << lz;
    let e = exp.wrapping_sub(lz as u8);
    (sign << 15) | ((e as u16) << 7) | (mag as u16 & 0x7E)
}

/// One BFP8 datum (sign + 7-bit magnitude, `x < 256`) with its shared exponent (`exp < 256`)
/// -> bf16 bits, as the unpacker expands it (ttsim `bfp8_to_bf16`): normalise by the leading
/// zeros of the magnitude, keep 6 mantissa bits. A zero magnitude gives +0, or -inf when the
/// sign bit is set; a small shared exponent wraps around (as silicon does). Branch-free, so
/// that a row of 16 vectorises.
#[inline(always)]
fn bfp8_lane(x: u32, exp: u32) -> u32 {
    let sign = x >> 7;
    let mag = (x << 1) & 0xFF;
    // Leading zeros of the 8-bit magnitude through an exact int -> float conversion (mag > 0).
    let lz = 134u32.wrapping_sub((mag as f32).to_bits() >> 23) & 15;
    let m = (mag << lz) & 0x7E;
    let e = exp.wrapping_sub(lz) & 0xFF;
    let val = (sign << 15) | (e << 7) | m;
    if mag == 0 { sign * 0xFF80 } else { val }
}

/// UNPACR of one tile to SrcA/SrcB: Float16_b as is, BFP expanded losslessly to bf16 (see
/// `bfp8_lane`; Bfp4_b/Bfp2_b magnitudes are widened to 7 bits first), Float32 to
/// `cfg.fp32_src` (TF32 or bf16, truncating).
pub fn unpack(fmt: DataFormat, bytes: &[u8], cfg: &FpuConfig) -> Result<SrcTile, FpuError> {
    check_len("unpack", fmt, bytes.len())?;
    match fmt {
        // Checks the conversion (fp16 is unsupported) once, not per datum.
        DataFormat::Float32 => {
            fp32_to_src(0, cfg.fp32_src)?;
        }
        DataFormat::Float16_b | DataFormat::Bfp8_b | DataFormat::Bfp4_b | DataFormat::Bfp2_b => {}
        _ => return Err(unsupported(fmt, "unpack")),
    }
    let tf32 = fmt == DataFormat::Float32 && cfg.fp32_src == Fp32SrcFormat::Tf32;
    let mut v = super::zeroed_tile();
    unpack_into(fmt, bytes, tf32, &mut v);
    Ok(SrcTile { v, tf32 })
}

/// The conversion loops of [`unpack`] (format and length already checked), compiled per SIMD
/// level like the matmul.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+sse4.1",
))]
fn unpack_into(fmt: DataFormat, bytes: &[u8], tf32: bool, v: &mut [u32; TILE_DATUMS]) {
    match fmt {
        DataFormat::Float32 => {
            for (o, c) in v.iter_mut().zip(bytes.chunks_exact(4)) {
                let x = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                *o = if tf32 {
                    x >> 13
                } else {
                    // bf16: denormals flush to signed zero, low 16 bits dropped.
                    let x = if x & 0x7FFF_FFFF < 0x80_0000 {
                        x & 0x8000_0000
                    } else {
                        x
                    };
                    (x & 0xFFFF_0000) >> 13
                };
            }
        }
        DataFormat::Float16_b => {
            for (o, c) in v.iter_mut().zip(bytes.chunks_exact(2)) {
                *o = (u16::from_le_bytes([c[0], c[1]]) as u32) << 3;
            }
        }
        _ => {
            let (exps, data) = bytes.split_at(64);
            for (row, out) in v.chunks_exact_mut(16).enumerate() {
                let e = exps[row] as u32;
                let mut x = [0u32; 16];
                match fmt {
                    DataFormat::Bfp8_b => {
                        for j in 0..16 {
                            x[j] = data[row * 16 + j] as u32;
                        }
                    }
                    // Element i sits in nibble i%2 (low nibble first); widened to bfp8.
                    DataFormat::Bfp4_b => {
                        for j in 0..16 {
                            x[j] = ((data[row * 8 + j / 2] as u32 >> ((j & 1) * 4)) & 15) << 4;
                        }
                    }
                    _ => {
                        for j in 0..16 {
                            x[j] = ((data[row * 4 + j / 4] as u32 >> ((j & 3) * 2)) & 3) << 6;
                        }
                    }
                }
                for j in 0..16 {
                    out[j] = bfp8_lane(x[j], e) << 3;
                }
            }
        }
    }
}

/// The UnpackToDestFp32 path (`unpack_to_dest_mode`, used by copy_tile / SFPU kernels on Float32
/// tiles with `fp32_dest_acc_en`): the fp32 bits go to DEST unchanged.
pub fn unpack_to_dest(
    fmt: DataFormat,
    bytes: &[u8],
    cfg: &FpuConfig,
) -> Result<DestTile, FpuError> {
    check_len("unpack_to_dest", fmt, bytes.len())?;
    if fmt != DataFormat::Float32 {
        return Err(FpuError::Unsupported {
            what: format!("unpack to DEST of {fmt:?}"),
            hint: "UnpackToDestFp32 applies to Float32 tiles only; unpack other formats to SrcA and datacopy",
        });
    }
    if !cfg.fp32_dest_acc {
        return Err(FpuError::Unsupported {
            what: "unpack to DEST without fp32_dest_acc_en".into(),
            hint: "UnpackToDestFp32 needs a 32-bit DEST: enable fp32_dest_acc_en",
        });
    }
    let mut t = DestTile::zero();
    for (o, c) in t.v.iter_mut().zip(bytes.chunks_exact(4)) {
        *o = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    t.set_all_valid();
    Ok(t)
}

/// Packer source format (TT-Metal `pack_src_format`, ttsim `intermediate_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PackSrc {
    Fp32,
    Bf16,
    Bfp8,
}

fn pack_src(fmt: DataFormat, cfg: &FpuConfig) -> Result<PackSrc, FpuError> {
    let bfp = matches!(
        fmt,
        DataFormat::Bfp8_b | DataFormat::Bfp4_b | DataFormat::Bfp2_b
    );
    match (fmt, cfg.fp32_dest_acc) {
        (DataFormat::Float32, true) => Ok(PackSrc::Fp32),
        (DataFormat::Float32, false) => match cfg.fp32_src {
            Fp32SrcFormat::Fp16 => Err(unsupported(fmt, "pack (fp16 packer source)")),
            _ => Ok(PackSrc::Bf16),
        },
        (DataFormat::Float16_b, _) => Ok(PackSrc::Bf16),
        (_, true) if bfp => Ok(if cfg.bfp8_pack_precise {
            PackSrc::Fp32
        } else {
            PackSrc::Bfp8
        }),
        (_, false) if bfp => Ok(if cfg.bfp8_pack_precise {
            PackSrc::Bf16
        } else {
            PackSrc::Bfp8
        }),
        _ => Err(unsupported(fmt, "pack")),
    }
}

/// Reads one DEST datum through the packer's format converter: returns fp32 bits for an fp32
/// packer source, else 16-bit bf16 bits.
#[inline(always)]
fn packer_read(x: u32, src: PackSrc, fp32_dest: bool) -> u32 {
    if fp32_dest {
        match src {
            PackSrc::Fp32 => x,
            PackSrc::Bf16 | PackSrc::Bfp8 => {
                let x = if x & 0x7FFF_FFFF > 0x7F80_0000 {
                    (x & 0x8000_0000) | 0x7F80_0000
                } else {
                    x
                };
                let v = if src == PackSrc::Bf16 {
                    // Round half away from zero on the magnitude.
                    (x + 0x8000) >> 16
                } else {
                    // Truncate to bf16, then round to 6 mantissa bits.
                    ((x >> 16) + 1) & !1
                };
                if v & 0x7FFF < 0x80 { 0 } else { v }
            }
        }
    } else {
        let mut v = x >> 16;
        if v & 0x7FFF > 0x7F80 {
            v = (v & 0x8000) | 0x7F80;
        } else if v & 0x7FFF < 0x80 {
            v = 0;
        }
        match src {
            PackSrc::Bfp8 => (v + 1) & !1,
            PackSrc::Bf16 => v,
            // Not produced by pack_src for 16-bit DEST.
            PackSrc::Fp32 => v << 16,
        }
    }
}

/// PACR of one DEST tile to `fmt` bytes, with the packer source format TT-Metal selects for
/// `fmt` and `cfg`:
/// - fp32 DEST -> Float32: bits unchanged; -> Float16_b: round half away from zero, NaN ->
///   infinity, denormals -> +0;
/// - bf16 DEST -> Float16_b / Float32: NaN -> infinity, denormals and -0 -> +0;
/// - BFP outputs (default, not `bfp8_pack_precise`): each value first rounded to a 6-bit
///   mantissa (half up on the bf16 pattern; fp32 DEST truncates to bf16 first), then per 16
///   datums (one face row) the shared exponent is the largest exponent and each magnitude is
///   shifted to it rounding half up, saturating at 127; Bfp4_b/Bfp2_b keep the top 3/1 bits of
///   that 7-bit magnitude (truncation). A zero magnitude never carries a sign.
/// - BFP with `bfp8_pack_precise`: as above without the 6-bit pre-rounding, from bf16 (16-bit
///   DEST) or from the truncated bf16 of the fp32 value (fp32 DEST).
pub fn pack(
    src: &DestTile,
    fmt: DataFormat,
    out: &mut [u8],
    cfg: &FpuConfig,
) -> Result<(), FpuError> {
    check_len("pack", fmt, out.len())?;
    let psrc = pack_src(fmt, cfg)?;
    pack_into(&src.v, fmt, psrc, cfg.fp32_dest_acc, out);
    Ok(())
}

/// The conversion loops of [`pack`] (format, length and packer source already checked),
/// compiled per SIMD level like the matmul.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512cd+avx512dq+avx512vl+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+avx2+fma+bmi1+bmi2+lzcnt+popcnt",
    "x86_64+sse4.1",
))]
fn pack_into(src: &[u32; TILE_DATUMS], fmt: DataFormat, psrc: PackSrc, fp32: bool, out: &mut [u8]) {
    // The packer source is fixed per (format, DEST mode) (see `pack_src`); spelling the pairs
    // out gives each loop constant arguments.
    match (fmt, fp32) {
        (DataFormat::Float32, true) => {
            for (i, o) in out.chunks_exact_mut(4).enumerate() {
                o.copy_from_slice(&packer_read(src[i], PackSrc::Fp32, true).to_le_bytes());
            }
        }
        (DataFormat::Float32, false) => {
            for (i, o) in out.chunks_exact_mut(4).enumerate() {
                let v = packer_read(src[i], PackSrc::Bf16, false) << 16;
                o.copy_from_slice(&v.to_le_bytes());
            }
        }
        (DataFormat::Float16_b, true) => {
            for (i, o) in out.chunks_exact_mut(2).enumerate() {
                let v = packer_read(src[i], PackSrc::Bf16, true);
                o.copy_from_slice(&(v as u16).to_le_bytes());
            }
        }
        (DataFormat::Float16_b, false) => {
            for (i, o) in out.chunks_exact_mut(2).enumerate() {
                let v = packer_read(src[i], PackSrc::Bf16, false);
                o.copy_from_slice(&(v as u16).to_le_bytes());
            }
        }
        _ => {
            let bits: u32 = match fmt {
                DataFormat::Bfp8_b => 8,
                DataFormat::Bfp4_b => 4,
                _ => 2,
            };
            match (psrc, fp32) {
                // fp32 -> BFP late conversion: truncate to bf16, flush denormals.
                (PackSrc::Fp32, _) => pack_bfp(src, bits, out, |x| {
                    let v = x >> 16;
                    if v & 0x7FFF < 0x80 { 0 } else { v }
                }),
                (PackSrc::Bf16, true) => {
                    pack_bfp(src, bits, out, |x| packer_read(x, PackSrc::Bf16, true))
                }
                (PackSrc::Bf16, false) => {
                    pack_bfp(src, bits, out, |x| packer_read(x, PackSrc::Bf16, false))
                }
                (PackSrc::Bfp8, true) => {
                    pack_bfp(src, bits, out, |x| packer_read(x, PackSrc::Bfp8, true))
                }
                (PackSrc::Bfp8, false) => {
                    pack_bfp(src, bits, out, |x| packer_read(x, PackSrc::Bfp8, false))
                }
            }
        }
    }
}

/// BFP packing of one tile (`bits` = 8, 4 or 2), each DEST datum first read to bf16 bits by
/// `read`: per 16 datums (one face row) the shared exponent is the largest exponent and each
/// magnitude is shifted to it rounding half up, saturating at 127, then truncated to `bits - 1`
/// bits; a zero magnitude never carries a sign.
#[inline(always)]
fn pack_bfp(src: &[u32; TILE_DATUMS], bits: u32, out: &mut [u8], read: impl Fn(u32) -> u32) {
    let (exps, data) = out.split_at_mut(64);
    for row in 0..64 {
        let mut buf = [0u32; 16];
        for j in 0..16 {
            buf[j] = read(src[row * 16 + j]);
        }
        let mut max_exp = 0;
        for j in 0..16 {
            max_exp = max_exp.max((buf[j] >> 7) & 255);
        }
        exps[row] = max_exp as u8;
        let mut mag = [0u32; 16];
        for j in 0..16 {
            let b = buf[j];
            let s = (b >> 15) & 1;
            let e = (b >> 7) & 255;
            let m = (b & 127) | if e != 0 { 128 } else { 0 };
            let shift = (max_exp - e).min(8);
            // Shifted to the shared exponent rounding half up (at most 128), saturated.
            let m = if shift >= 8 {
                0
            } else {
                ((m + (1 << shift)) >> (shift + 1)).min(127)
            };
            let m = m >> (8 - bits);
            mag[j] = if m != 0 { m | (s << (bits - 1)) } else { 0 };
        }
        match bits {
            8 => {
                for j in 0..16 {
                    data[row * 16 + j] = mag[j] as u8;
                }
            }
            4 => {
                for j in 0..8 {
                    data[row * 8 + j] = (mag[2 * j] | (mag[2 * j + 1] << 4)) as u8;
                }
            }
            _ => {
                for j in 0..4 {
                    data[row * 4 + j] = (mag[4 * j]
                        | (mag[4 * j + 1] << 2)
                        | (mag[4 * j + 2] << 4)
                        | (mag[4 * j + 3] << 6)) as u8;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpu::Fidelity;

    fn cfg16() -> FpuConfig {
        FpuConfig::new(Fidelity::HiFi4, false, false)
    }
    fn cfg32() -> FpuConfig {
        FpuConfig::new(Fidelity::HiFi4, true, false)
    }

    fn dest_from_fp32_bits(bits: impl Fn(usize) -> u32) -> DestTile {
        let mut d = DestTile::zero();
        for i in 0..TILE_DATUMS {
            d.write(i, bits(i));
        }
        d
    }

    /// Host float -> bf16, round to nearest even (what TT-Metal's host library does).
    fn host_rne_bf16(x: f32) -> u16 {
        let b = x.to_bits();
        ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
    }

    #[test]
    fn bfp8_lane_equals_scalar_expansion_exhaustively() {
        for x in 0..=255u8 {
            for e in 0..=255u8 {
                assert_eq!(
                    bfp8_lane(x as u32, e as u32),
                    bfp8_to_bf16(x, e) as u32,
                    "x {x:#x} exp {e}"
                );
            }
        }
    }

    #[test]
    fn unpack_matches_per_datum_reference_on_random_bytes() {
        // The vectorised unpack against a datum-by-datum reading of the layouts: BFP shared
        // exponents in the first 64 bytes (one per face row of 16), then 8/4/2-bit elements,
        // low bits first; Float32/Float16_b little-endian words.
        let mut r = 0x9E37_79B9_7F4A_7C15u64;
        for fmt in [
            DataFormat::Float32,
            DataFormat::Float16_b,
            DataFormat::Bfp8_b,
            DataFormat::Bfp4_b,
            DataFormat::Bfp2_b,
        ] {
            for cfg in [cfg16(), cfg32()] {
                let bytes: Vec<u8> = (0..fmt.tile_size_bytes())
                    .map(|_| {
                        r ^= r << 13;
                        r ^= r >> 7;
                        r ^= r << 17;
                        (r >> 24) as u8
                    })
                    .collect();
                let got = unpack(fmt, &bytes, &cfg).unwrap();
                for i in 0..TILE_DATUMS {
                    let want = match fmt {
                        DataFormat::Float32 => {
                            let w = u32::from_le_bytes(bytes[4 * i..4 * i + 4].try_into().unwrap());
                            fp32_to_src(w, cfg.fp32_src).unwrap()
                        }
                        DataFormat::Float16_b => {
                            (u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]) as u32) << 3
                        }
                        _ => {
                            let e = bytes[i / 16];
                            let x = match fmt {
                                DataFormat::Bfp8_b => bytes[64 + i],
                                DataFormat::Bfp4_b => {
                                    ((bytes[64 + i / 2] >> (4 * (i % 2))) & 15) << 4
                                }
                                _ => ((bytes[64 + i / 4] >> (2 * (i % 4))) & 3) << 6,
                            };
                            (bfp8_to_bf16(x, e) as u32) << 3
                        }
                    };
                    assert_eq!(got.v[i], want, "{fmt:?} datum {i}");
                }
            }
        }
    }

    #[test]
    fn bfp8_unpack_is_lossless_and_has_the_minus_inf_quirk() {
        // 0x40 with exponent 127 = 1.0; 0x60 = 1.5; 0x01 = 2^-6; sign bit with zero magnitude = -inf.
        assert_eq!(bfp8_to_bf16(0x40, 127), 0x3F80);
        assert_eq!(bfp8_to_bf16(0x60, 127), 0x3FC0);
        assert_eq!(bfp8_to_bf16(0xE0, 127), 0xBFC0);
        assert_eq!(bfp8_to_bf16(0x01, 127), 0x3C80); // 2^-6
        assert_eq!(bfp8_to_bf16(0x7F, 130), 0x417E); // 127/64 * 8 = 15.875
        assert_eq!(bfp8_to_bf16(0x00, 100), 0);
        assert_eq!(bfp8_to_bf16(0x80, 100), 0xFF80);
    }

    #[test]
    fn pack_bf16_from_fp32_dest_rounds_ties_away_unlike_host_rne() {
        // 1 + 2^-8 (tie between 0x3F80 and 0x3F81): host RNE -> 0x3F80, device -> 0x3F81.
        // 1 + 3*2^-8 (tie between 0x3F81 and 0x3F82): both go to 0x3F82.
        // -(1 + 2^-8): device -> 0xBF81 (away from zero).
        let vals = [0x3F80_8000u32, 0x3F81_8000, 0xBF80_8000, 0x3F80_7FFF];
        let expect_dev = [0x3F81u16, 0x3F82, 0xBF81, 0x3F80];
        let d = dest_from_fp32_bits(|i| vals[i % 4]);
        let mut out = vec![0u8; 2048];
        pack(&d, DataFormat::Float16_b, &mut out, &cfg32()).unwrap();
        for i in 0..4 {
            let got = u16::from_le_bytes([out[2 * i], out[2 * i + 1]]);
            assert_eq!(got, expect_dev[i], "datum {i}");
        }
        assert_eq!(host_rne_bf16(f32::from_bits(vals[0])), 0x3F80);
        assert_ne!(host_rne_bf16(f32::from_bits(vals[0])), expect_dev[0]);
        assert_eq!(host_rne_bf16(f32::from_bits(vals[1])), 0x3F82);
    }

    #[test]
    fn pack_flushes_denormals_and_negative_zero() {
        let vals = [0x8000_0000u32, 0x0000_0001, 0x0040_0000, 0x3F80_0000];
        let d = dest_from_fp32_bits(|i| vals[i % 4]);
        let mut out = vec![0u8; 2048];
        pack(&d, DataFormat::Float16_b, &mut out, &cfg32()).unwrap();
        let got: Vec<u16> = (0..4)
            .map(|i| u16::from_le_bytes([out[2 * i], out[2 * i + 1]]))
            .collect();
        assert_eq!(got, vec![0, 0, 0, 0x3F80]);
        // Float32 output from fp32 DEST keeps the bits.
        let mut out = vec![0u8; 4096];
        pack(&d, DataFormat::Float32, &mut out, &cfg32()).unwrap();
        assert_eq!(u32::from_le_bytes([out[4], out[5], out[6], out[7]]), 1);
    }

    #[test]
    fn bfp8_pack_shared_exponent_hand_worked() {
        // One face row: 1.0, 0.5, 3.0 (max exponent 128), -0.25, 2^-10 (shifted out), 1.9921875.
        let row = [0x3F80u16, 0x3F00, 0x4040, 0xBE80, 0x3A80, 0x3FFF];
        let mut bits = [0u32; TILE_DATUMS];
        for (j, &b) in row.iter().enumerate() {
            bits[j] = (b as u32) << 16;
        }
        let d = dest_from_fp32_bits(|i| bits[i]);
        let mut out = vec![0u8; 1088];
        pack(&d, DataFormat::Bfp8_b, &mut out, &cfg16()).unwrap();
        assert_eq!(out[0], 128, "shared exponent of row 0 = exponent of 3.0");
        assert_eq!(out[1], 0, "row 1 is all zeros");
        let m = &out[64..64 + 6];
        // 1.0 = m 0x80 (8 bits incl. hidden), shift 1: (0x80 + 2) >> 2 = 0x20 -> 32/64 * 2 = 1.0.
        assert_eq!(m[0], 0x20);
        // 0.5: shift 2: (0x80 + 4) >> 3 = 0x10.
        assert_eq!(m[1], 0x10);
        // 3.0 = 1.1b: m 0xC0, shift 0: (0xC0 + 1) >> 1 = 0x60.
        assert_eq!(m[2], 0x60);
        // -0.25: shift 3: (0x80 + 8) >> 4 = 8, sign set.
        assert_eq!(m[3], 0x88);
        // 2^-10: shift 11 >= 8 -> 0, no sign.
        assert_eq!(m[4], 0);
        // 1.9921875 = 0x3FFF: 6-bit pre-round: 0x3FFF + 1 & !1 = 0x4000 (2.0!), then shift 0:
        // (0x80 + 1) >> 1 = 0x40 -> 2.0.
        assert_eq!(m[5], 0x40);
        // Decoding through the unpacker gives back the rounded values.
        let t = unpack(DataFormat::Bfp8_b, &out, &cfg16()).unwrap();
        let f = t.to_f32();
        assert_eq!(&f[..6], &[1.0, 0.5, 3.0, -0.25, 0.0, 2.0]);
    }

    #[test]
    fn bfp4_is_truncated_bfp8() {
        let row = [0x3F80u16, 0x3FE0, 0x4040, 0xBF00]; // 1.0, 1.75, 3.0, -0.5
        let mut bits = [0u32; TILE_DATUMS];
        for (j, &b) in row.iter().enumerate() {
            bits[j] = (b as u32) << 16;
        }
        let d = dest_from_fp32_bits(|i| bits[i]);
        let mut b8 = vec![0u8; 1088];
        let mut b4 = vec![0u8; 576];
        pack(&d, DataFormat::Bfp8_b, &mut b8, &cfg16()).unwrap();
        pack(&d, DataFormat::Bfp4_b, &mut b4, &cfg16()).unwrap();
        assert_eq!(&b8[..64], &b4[..64]);
        for i in 0..4 {
            let m8 = b8[64 + i];
            let nib = (b4[64 + i / 2] >> ((i & 1) * 4)) & 15;
            let expect = if m8 & 0x70 != 0 {
                ((m8 & 0x7F) >> 4) | ((m8 >> 7) << 3)
            } else {
                0
            };
            assert_eq!(nib, expect, "datum {i}: bfp8 {m8:#x}");
        }
        // 1.75 with shared exponent 128: bfp8 magnitude 0x38 -> bfp4 3 (0.75 * 2 = 1.5, truncated).
        let t = unpack(DataFormat::Bfp4_b, &b4, &cfg16()).unwrap();
        assert_eq!(&t.to_f32()[..4], &[1.0, 1.5, 3.0, -0.5]);
    }

    #[test]
    fn float32_unpack_truncates_to_tf32_or_bf16() {
        let x = f32::from_bits(0x3FAB_CDEF);
        let mut bytes = vec![0u8; 4096];
        bytes[..4].copy_from_slice(&x.to_le_bytes());
        let t = unpack(DataFormat::Float32, &bytes, &cfg32()).unwrap();
        assert_eq!(t.to_f32()[0].to_bits(), 0x3FAB_C000);
        let t = unpack(DataFormat::Float32, &bytes, &cfg16()).unwrap();
        assert_eq!(t.to_f32()[0].to_bits(), 0x3FAB_0000);
        let wrong = unpack(DataFormat::Float32, &bytes[..100], &cfg16());
        assert!(matches!(wrong, Err(FpuError::WrongLength { .. })));
    }

    #[test]
    fn bfp8_roundtrip_of_bfp8_representable_values_is_exact() {
        // Values with one exponent per row and 6 significant bits survive pack(unpack(x)).
        let mut bytes = vec![0u8; 1088];
        for r in 0..64 {
            bytes[r] = 120 + (r % 16) as u8;
        }
        for i in 0..1024 {
            // magnitudes with the top bit set (normalised) keep all bits through bfp8->bf16.
            bytes[64 + i] = (0x40 | (i as u8 & 0x3E)) | (((i / 7) as u8 & 1) << 7);
        }
        let cfg = cfg16();
        let t = unpack(DataFormat::Bfp8_b, &bytes, &cfg).unwrap();
        let mut d = DestTile::zero();
        crate::fpu::datacopy(&mut d, &t, &cfg);
        let mut out = vec![0u8; 1088];
        pack(&d, DataFormat::Bfp8_b, &mut out, &cfg).unwrap();
        assert_eq!(out, bytes);
    }

    /// Cross-check against tt-formats' independent packer model (`encode_tile_device_with`) on
    /// random normal DEST values (both DEST widths, default and precise BFP packing). Denormals
    /// are excluded: for a 16-bit DEST ttsim flushes them before the 6-bit rounding, which
    /// tt-formats does after (reported to its owner).
    #[test]
    fn pack_agrees_with_tt_formats_device_encoder() {
        use tt_formats::codec::{PackerConfig, encode_tile_device_with};
        let mut state = 0x1234_5678_9ABC_DEF0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for fp32 in [false, true] {
            for precise in [false, true] {
                let mut cfg = FpuConfig::new(Fidelity::LoFi, fp32, false);
                cfg.bfp8_pack_precise = precise;
                let mut vals = [0f32; TILE_DATUMS];
                for (i, v) in vals.iter_mut().enumerate() {
                    let r = next();
                    // exponents 100..150, random sign and mantissa; some rows share exponents.
                    let e = 100 + (r % 51) as u32;
                    let bits = ((r >> 8) as u32 & 0x807F_FFFF) | (e << 23);
                    let bits = if fp32 { bits } else { bits & 0xFFFF_0000 };
                    *v = if i % 97 == 0 {
                        0.0
                    } else {
                        f32::from_bits(bits)
                    };
                }
                let d = DestTile::from_bits(&vals.map(f32::to_bits), &cfg);
                for fmt in [
                    DataFormat::Float32,
                    DataFormat::Float16_b,
                    DataFormat::Bfp8_b,
                    DataFormat::Bfp4_b,
                    DataFormat::Bfp2_b,
                ] {
                    if fmt == DataFormat::Float32 && !fp32 {
                        continue; // identical for these values, but tt-formats keeps -0/denormals
                    }
                    let mut ours = vec![0u8; fmt.tile_size_bytes()];
                    pack(&d, fmt, &mut ours, &cfg).unwrap();
                    let theirs = encode_tile_device_with(
                        fmt,
                        PackerConfig {
                            fp32_dest_acc_en: fp32,
                            bfp8_pack_precise: precise,
                        },
                        &vals,
                    )
                    .unwrap();
                    assert_eq!(ours, theirs, "{fmt:?} fp32={fp32} precise={precise}");
                }
            }
        }
    }
}
