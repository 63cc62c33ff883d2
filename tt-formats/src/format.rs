//! TT-Metal data formats ([`DataFormat`]) and their tile page sizes.

use thiserror::Error;

/// Errors about data formats and encoded tiles.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormatError {
    /// A raw value that is not one of the `tt_data_format` values this crate knows.
    #[error(
        "unknown data format value {0}: use one of the tt_data_format values (Float32=0, Float16=1, Bfp8=2, Bfp4=3, \
         Float16_b=5, Bfp8_b=6, Bfp4_b=7, Int32=8, UInt16=9, Bfp2_b=15, UInt32=24, UInt8=30)"
    )]
    UnknownFormat(u32),
    /// The format exists but the requested operation is not implemented for it.
    #[error("data format {format} is not supported by {operation}; {hint}")]
    Unsupported {
        /// The format.
        format: &'static str,
        /// What was attempted.
        operation: &'static str,
        /// What to use instead.
        hint: &'static str,
    },
    /// A buffer had the wrong number of bytes or elements.
    #[error("{what}: expected {expected} {unit}, got {actual}")]
    WrongLength {
        /// What the buffer is.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Actual length.
        actual: usize,
        /// "bytes" or "elements".
        unit: &'static str,
    },
    /// Matrix dimensions that cannot be tilized.
    #[error("bad matrix shape {rows}x{cols}: {reason}")]
    BadShape {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
        /// Why.
        reason: &'static str,
    },
}

/// A TT-Metal data format, with the numeric values of `tt_metal/hw/inc/.../tensix_types.h`
/// (mirrored by `tt_shim.h` `tt_data_format`).
///
/// The `_b` formats use an 8-bit (bfloat16-style) exponent; the plain `Float16`, `Bfp8` and `Bfp4`
/// use a 5-bit exponent ("exp A"). Only the formats listed here exist in the ABI.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum DataFormat {
    /// IEEE binary32.
    Float32 = 0,
    /// IEEE binary16 (5-bit exponent).
    Float16 = 1,
    /// Block float, 5-bit shared exponent, sign + 7-bit magnitude.
    Bfp8 = 2,
    /// Block float, 5-bit shared exponent, sign + 3-bit magnitude.
    Bfp4 = 3,
    /// bfloat16.
    Float16_b = 5,
    /// Block float, 8-bit shared exponent, sign + 7-bit magnitude.
    Bfp8_b = 6,
    /// Block float, 8-bit shared exponent, sign + 3-bit magnitude.
    Bfp4_b = 7,
    /// Signed 32-bit integer.
    Int32 = 8,
    /// Unsigned 16-bit integer.
    UInt16 = 9,
    /// Block float, 8-bit shared exponent, sign + 1-bit magnitude.
    Bfp2_b = 15,
    /// Unsigned 32-bit integer.
    UInt32 = 24,
    /// Unsigned 8-bit integer.
    UInt8 = 30,
}

impl DataFormat {
    /// Every format, in numeric order.
    pub const ALL: [DataFormat; 12] = [
        DataFormat::Float32,
        DataFormat::Float16,
        DataFormat::Bfp8,
        DataFormat::Bfp4,
        DataFormat::Float16_b,
        DataFormat::Bfp8_b,
        DataFormat::Bfp4_b,
        DataFormat::Int32,
        DataFormat::UInt16,
        DataFormat::Bfp2_b,
        DataFormat::UInt32,
        DataFormat::UInt8,
    ];

    /// The format with TT-Metal numeric value `raw`.
    pub fn from_raw(raw: u32) -> Result<Self, FormatError> {
        Self::ALL
            .iter()
            .copied()
            .find(|f| f.as_raw() == raw)
            .ok_or(FormatError::UnknownFormat(raw))
    }

    /// TT-Metal numeric value.
    pub const fn as_raw(self) -> u32 {
        self as u32
    }

    /// Bytes of one 32x32 tile (one page of a tiled buffer) in this format. BFP formats include the
    /// 64 shared-exponent bytes.
    pub const fn tile_size_bytes(self) -> usize {
        match self {
            DataFormat::Float32 | DataFormat::Int32 | DataFormat::UInt32 => 4096,
            DataFormat::Float16 | DataFormat::Float16_b | DataFormat::UInt16 => 2048,
            DataFormat::Bfp8 | DataFormat::Bfp8_b => 64 + 1024,
            DataFormat::Bfp4 | DataFormat::Bfp4_b => 64 + 512,
            DataFormat::Bfp2_b => 64 + 256,
            DataFormat::UInt8 => 1024,
        }
    }

    /// True for the block-float formats (shared exponent per 16 values).
    pub const fn is_bfp(self) -> bool {
        matches!(
            self,
            DataFormat::Bfp8
                | DataFormat::Bfp4
                | DataFormat::Bfp8_b
                | DataFormat::Bfp4_b
                | DataFormat::Bfp2_b
        )
    }

    /// True for the integer formats.
    pub const fn is_integer(self) -> bool {
        matches!(
            self,
            DataFormat::Int32 | DataFormat::UInt16 | DataFormat::UInt32 | DataFormat::UInt8
        )
    }

    /// Magnitude bits per element of a BFP format (7, 3 or 1), `None` for other formats.
    pub const fn bfp_mantissa_bits(self) -> Option<u32> {
        match self {
            DataFormat::Bfp8 | DataFormat::Bfp8_b => Some(7),
            DataFormat::Bfp4 | DataFormat::Bfp4_b => Some(3),
            DataFormat::Bfp2_b => Some(1),
            _ => None,
        }
    }

    /// The TT-Metal spelling of the format name (`"Float16_b"`, `"Bfp8_b"`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DataFormat::Float32 => "Float32",
            DataFormat::Float16 => "Float16",
            DataFormat::Bfp8 => "Bfp8",
            DataFormat::Bfp4 => "Bfp4",
            DataFormat::Float16_b => "Float16_b",
            DataFormat::Bfp8_b => "Bfp8_b",
            DataFormat::Bfp4_b => "Bfp4_b",
            DataFormat::Int32 => "Int32",
            DataFormat::UInt16 => "UInt16",
            DataFormat::Bfp2_b => "Bfp2_b",
            DataFormat::UInt32 => "UInt32",
            DataFormat::UInt8 => "UInt8",
        }
    }
}

impl std::fmt::Display for DataFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u32> for DataFormat {
    type Error = FormatError;
    fn try_from(raw: u32) -> Result<Self, FormatError> {
        Self::from_raw(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_values_match_tt_shim_h() {
        let expected = [
            (0, "Float32"),
            (1, "Float16"),
            (2, "Bfp8"),
            (3, "Bfp4"),
            (5, "Float16_b"),
            (6, "Bfp8_b"),
            (7, "Bfp4_b"),
            (8, "Int32"),
            (9, "UInt16"),
            (15, "Bfp2_b"),
            (24, "UInt32"),
            (30, "UInt8"),
        ];
        for (raw, name) in expected {
            let f = DataFormat::from_raw(raw).unwrap();
            assert_eq!(f.name(), name);
            assert_eq!(f.as_raw(), raw);
        }
        for bad in [4, 10, 14, 16, 0xff] {
            assert_eq!(
                DataFormat::from_raw(bad),
                Err(FormatError::UnknownFormat(bad))
            );
        }
    }

    #[test]
    fn tile_sizes() {
        use DataFormat::*;
        let expected = [
            (Float32, 4096),
            (Float16_b, 2048),
            (Float16, 2048),
            (Bfp8_b, 1088),
            (Bfp4_b, 576),
            (Bfp2_b, 320),
            (UInt32, 4096),
            (Int32, 4096),
            (UInt16, 2048),
            (UInt8, 1024),
        ];
        for (f, n) in expected {
            assert_eq!(f.tile_size_bytes(), n, "{f}");
        }
        assert!(Bfp8_b.is_bfp() && Bfp2_b.is_bfp() && !Float16_b.is_bfp());
    }
}
