//! Host tile conversions: a row-major `f32` matrix <-> tile pages in a [`DataFormat`], using
//! tt-formats' tile layout and **host** codecs (what TT-Metal's host library writes: bf16 round
//! to nearest even; BFP with a shared exponent per 16-value face row, mantissas rounded half to
//! even). Shapes that are not multiples of 32 are zero-padded on the way in and cropped on the
//! way out. Tiles are in row-major tile order, the page order of an interleaved buffer.

use tt_formats::tile::{FACE_H, FACE_HW, FACE_W, TILE_H, TILE_HW, TILE_W, tiles_for};
use tt_formats::{DataFormat, decode_tile, encode_tile_host_into};

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

/// Copies tile (`tr`, `tc`) of a row-major `rows` x `cols` matrix into `tile` (tile order,
/// zero where the tile hangs over the matrix): two contiguous 16-value face-row copies per row.
fn gather_tile(
    data: &[f32],
    rows: usize,
    cols: usize,
    tr: usize,
    tc: usize,
    tile: &mut [f32; TILE_HW],
) {
    let c0 = tc * TILE_W;
    let width = (cols - c0).min(TILE_W);
    for r in 0..TILE_H {
        let row = tr * TILE_H + r;
        for half in 0..2 {
            let at = ((r / FACE_H) * 2 + half) * FACE_HW + (r % FACE_H) * FACE_W;
            let dst = &mut tile[at..at + FACE_W];
            let n = if row < rows {
                width.saturating_sub(half * FACE_W).min(FACE_W)
            } else {
                0
            };
            let src = row * cols + c0 + half * FACE_W;
            if n > 0 {
                dst[..n].copy_from_slice(&data[src..src + n]);
            }
            dst[n..].fill(0.0);
        }
    }
}

/// Inverse of [`gather_tile`]: writes the part of `tile` that lies inside the matrix.
fn scatter_tile(
    tile: &[f32; TILE_HW],
    rows: usize,
    cols: usize,
    tr: usize,
    tc: usize,
    out: &mut [f32],
) {
    let c0 = tc * TILE_W;
    let width = (cols - c0).min(TILE_W);
    for r in 0..TILE_H.min(rows - tr * TILE_H) {
        let row = tr * TILE_H + r;
        for half in 0..2 {
            let n = width.saturating_sub(half * FACE_W).min(FACE_W);
            if n == 0 {
                continue;
            }
            let at = ((r / FACE_H) * 2 + half) * FACE_HW + (r % FACE_H) * FACE_W;
            let dst = row * cols + c0 + half * FACE_W;
            out[dst..dst + n].copy_from_slice(&tile[at..at + n]);
        }
    }
}

/// Row-major `rows` x `cols` `f32` -> tile pages in `format` (Float32, Float16_b, Bfp8_b,
/// Bfp4_b), zero-padded to whole tiles, tiles in row-major tile order. One pass, tile by tile,
/// with the same bits as `tilize` followed by `encode_tile_host` per tile.
pub fn to_tiles(
    data: &[f32],
    rows: usize,
    cols: usize,
    format: DataFormat,
) -> Result<Vec<u8>, TileError> {
    check_format(format)?;
    let expected = rows.saturating_mul(cols);
    if rows == 0 || cols == 0 {
        // The layout's own shape error ("both dimensions must be at least 1").
        tt_formats::tilize(rows, cols, data)?;
    }
    if data.len() != expected || rows == 0 || cols == 0 {
        return Err(TileError::Length {
            what: "row-major input",
            rows,
            cols,
            expected,
            actual: data.len(),
        });
    }
    let (tr, tc) = tiles_for(rows, cols);
    let tile_bytes = format.tile_size_bytes();
    let mut out = vec![0u8; tr * tc * tile_bytes];
    let mut tile = [0f32; TILE_HW];
    for (t, page) in out.chunks_exact_mut(tile_bytes).enumerate() {
        gather_tile(data, rows, cols, t / tc, t % tc, &mut tile);
        encode_tile_host_into(format, &tile, page)?;
    }
    Ok(out)
}

/// Tile pages in `format` -> row-major `rows` x `cols` `f32` (padding dropped). One pass, tile
/// by tile, with the values of `decode_tile` per tile followed by `untilize`.
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
    let mut out = vec![0f32; rows * cols];
    for (t, page) in bytes.chunks_exact(tile_bytes).enumerate() {
        let tile = decode_tile(format, page)?;
        scatter_tile(&tile, rows, cols, t / tc, t % tc, &mut out);
    }
    Ok(out)
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

    /// The one-pass conversions give the bytes / values of the two-step composition of
    /// tt-formats' `tilize` + `encode_tile_host` (and `decode_tile` + `untilize`), for every
    /// format and shapes that are and are not multiples of 32.
    #[test]
    fn one_pass_matches_tilize_then_encode_and_decode_then_untilize() {
        use tt_formats::{encode_tile_host, tilize, untilize};
        let mut s = 0x2545_F491_4F6C_DD1Du64;
        for (rows, cols) in [(1, 1), (32, 32), (33, 17), (70, 96), (5, 130), (64, 31)] {
            let data: Vec<f32> = (0..rows * cols)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 300.0
                })
                .collect();
            for format in FLOAT_FORMATS {
                let tiled = tilize(rows, cols, &data).unwrap();
                let want: Vec<u8> = tiled
                    .chunks_exact(TILE_HW)
                    .flat_map(|t| encode_tile_host(format, t.try_into().unwrap()).unwrap())
                    .collect();
                let got = to_tiles(&data, rows, cols, format).unwrap();
                assert_eq!(got, want, "{rows}x{cols} {format:?}");
                let decoded: Vec<f32> = want
                    .chunks_exact(format.tile_size_bytes())
                    .flat_map(|p| decode_tile(format, p).unwrap())
                    .collect();
                let want_back = untilize(&decoded, rows, cols).unwrap();
                let back = from_tiles(&got, rows, cols, format).unwrap();
                assert_eq!(
                    back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want_back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{rows}x{cols} {format:?}"
                );
            }
        }
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
