//! Host tile conversions: a row-major `f32` matrix <-> tile pages in a [`DataFormat`], using
//! tt-formats' tile layout and **host** codecs (what TT-Metal's host library writes: bf16 round
//! to nearest even; BFP with a shared exponent per 16-value face row, mantissas rounded half to
//! even). Shapes that are not multiples of 32 are zero-padded on the way in and cropped on the
//! way out. Tiles are in row-major tile order, the page order of an interleaved buffer.

use tt_formats::tile::{TILE_HW, tiles_for};
use tt_formats::{DataFormat, decode_tile, encode_tile_host, tilize, untilize};

use crate::error::TileError;

/// Formats the f32 conversions support.
pub const FLOAT_FORMATS: [DataFormat; 4] = [
    DataFormat::Float32,
    DataFormat::Float16_b,
    DataFormat::Bfp8_b,
    DataFormat::Bfp4_b,
];

fn check_format(format: DataFormat) -> Result<(), TileError> {
    if FLOAT_FORMATS.contains(&format) {
        Ok(())
    } else {
        Err(TileError::UnsupportedFormat(format))
    }
}

/// A row-major `rows` x `cols` matrix of `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor2d {
    rows: usize,
    cols: usize,
    data: Vec<f32>,
}

impl Tensor2d {
    /// Wraps row-major data; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f32>) -> Result<Tensor2d, TileError> {
        let expected = rows.saturating_mul(cols);
        if data.len() != expected || rows == 0 || cols == 0 {
            return Err(TileError::Length {
                what: "Tensor2d data",
                rows,
                cols,
                expected,
                actual: data.len(),
            });
        }
        Ok(Tensor2d { rows, cols, data })
    }

    /// A matrix filled by `f(row, col)`.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f32) -> Tensor2d {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Tensor2d { rows, cols, data }
    }

    /// Rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Row-major data.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Row-major data, owned.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Element (r, c).
    pub fn get(&self, r: usize, c: usize) -> Option<f32> {
        (r < self.rows && c < self.cols).then(|| self.data[r * self.cols + c])
    }

    /// Tiles `(rows, cols)` covering the matrix.
    pub fn tile_shape(&self) -> (usize, usize) {
        tiles_for(self.rows, self.cols)
    }

    /// Encodes to tile pages of `format` (see [`to_tiles`]).
    pub fn to_tiles(&self, format: DataFormat) -> Result<Vec<u8>, TileError> {
        to_tiles(&self.data, self.rows, self.cols, format)
    }

    /// Decodes tile pages of `format` into a `rows` x `cols` matrix (see [`from_tiles`]).
    pub fn from_tiles(
        bytes: &[u8],
        rows: usize,
        cols: usize,
        format: DataFormat,
    ) -> Result<Tensor2d, TileError> {
        Ok(Tensor2d {
            rows,
            cols,
            data: from_tiles(bytes, rows, cols, format)?,
        })
    }
}

/// Bytes of the tile pages of a `rows` x `cols` matrix in `format`.
pub fn tiled_size(rows: usize, cols: usize, format: DataFormat) -> usize {
    let (tr, tc) = tiles_for(rows, cols);
    tr * tc * format.tile_size_bytes()
}

/// Row-major `rows` x `cols` `f32` -> tile pages in `format` (Float32, Float16_b, Bfp8_b,
/// Bfp4_b), zero-padded to whole tiles, tiles in row-major tile order.
pub fn to_tiles(
    data: &[f32],
    rows: usize,
    cols: usize,
    format: DataFormat,
) -> Result<Vec<u8>, TileError> {
    check_format(format)?;
    let expected = rows.saturating_mul(cols);
    if data.len() != expected {
        return Err(TileError::Length {
            what: "row-major input",
            rows,
            cols,
            expected,
            actual: data.len(),
        });
    }
    let tiled = tilize(rows, cols, data)?;
    let mut out = Vec::with_capacity(tiled_size(rows, cols, format));
    for tile in tiled.chunks_exact(TILE_HW) {
        let tile: &[f32; TILE_HW] = tile
            .try_into()
            .map_err(|_| TileError::UnsupportedFormat(format))?;
        out.extend_from_slice(&encode_tile_host(format, tile)?);
    }
    Ok(out)
}

/// Tile pages in `format` -> row-major `rows` x `cols` `f32` (padding dropped).
pub fn from_tiles(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    format: DataFormat,
) -> Result<Vec<f32>, TileError> {
    check_format(format)?;
    let (tr, tc) = tiles_for(rows, cols);
    let tile_bytes = format.tile_size_bytes();
    let expected = tr * tc * tile_bytes;
    if bytes.len() != expected || rows == 0 || cols == 0 {
        return Err(TileError::Bytes {
            rows,
            cols,
            format,
            tiles: tr * tc,
            tile_bytes,
            expected,
            actual: bytes.len(),
        });
    }
    let mut tiled = Vec::with_capacity(tr * tc * TILE_HW);
    for page in bytes.chunks_exact(tile_bytes) {
        tiled.extend_from_slice(&decode_tile(format, page)?);
    }
    Ok(untilize(&tiled, rows, cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_errors() {
        assert_eq!(tiled_size(33, 64, DataFormat::Bfp8_b), 4 * 1088);
        assert_eq!(tiled_size(1, 1, DataFormat::Float16_b), 2048);
        assert!(matches!(
            to_tiles(&[0.0; 5], 2, 3, DataFormat::Float32),
            Err(TileError::Length { .. })
        ));
        assert!(matches!(
            to_tiles(&[0.0; 6], 2, 3, DataFormat::UInt32),
            Err(TileError::UnsupportedFormat(_))
        ));
        let msg = from_tiles(&[0u8; 100], 2, 3, DataFormat::Bfp4_b)
            .unwrap_err()
            .to_string();
        assert!(msg.contains("576") && msg.contains("100"), "{msg}");
    }

    #[test]
    fn float32_round_trip_is_exact_and_pads_with_zero() {
        let t = Tensor2d::from_fn(37, 45, |r, c| (r * 1000 + c) as f32 * 0.37 - 11.0);
        let bytes = t.to_tiles(DataFormat::Float32).unwrap();
        assert_eq!(bytes.len(), 4 * 4096);
        let back = Tensor2d::from_tiles(&bytes, 37, 45, DataFormat::Float32).unwrap();
        assert_eq!(back, t);
        // Element (0, 45) of tile (0, 1) is padding: face 0 row 0 col 13 of the second tile.
        let f = |i: usize| f32::from_le_bytes(bytes[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!(f(1024 + 13), 0.0);
        // Element (0, 33) sits at tile 1 index 1.
        assert_eq!(f(1024 + 1), t.get(0, 33).unwrap());
    }
}
