//! Tile layout: a 32x32 tile is four 16x16 faces stored one after the other, in the order
//! (rows 0-15, cols 0-15), (0-15, 16-31), (16-31, 0-15), (16-31, 16-31); each face is row-major.
//! Element (r, c) of a tile sits at `((r/16)*2 + c/16)*256 + (r%16)*16 + c%16`.

use crate::format::FormatError;

/// Tile height in elements.
pub const TILE_H: usize = 32;
/// Tile width in elements.
pub const TILE_W: usize = 32;
/// Elements per tile.
pub const TILE_HW: usize = TILE_H * TILE_W;
/// Face height.
pub const FACE_H: usize = 16;
/// Face width.
pub const FACE_W: usize = 16;
/// Elements per face.
pub const FACE_HW: usize = FACE_H * FACE_W;
/// Faces per tile.
pub const NUM_FACES: usize = 4;

/// Index in tile order of element (`r`, `c`) of a tile (`r`, `c` < 32; higher bits are ignored by
/// taking them modulo 32).
pub const fn tile_offset(r: usize, c: usize) -> usize {
    let r = r % TILE_H;
    let c = c % TILE_W;
    ((r / FACE_H) * 2 + c / FACE_W) * FACE_HW + (r % FACE_H) * FACE_W + c % FACE_W
}

/// Inverse of [`tile_offset`]: the (row, col) inside the tile of tile-order index `i` (< 1024).
pub const fn tile_coords(i: usize) -> (usize, usize) {
    let i = i % TILE_HW;
    let face = i / FACE_HW;
    let within = i % FACE_HW;
    (
        (face / 2) * FACE_H + within / FACE_W,
        (face % 2) * FACE_W + within % FACE_W,
    )
}

/// Number of tiles (rows, cols) that cover a `rows` x `cols` matrix (rounded up).
pub const fn tiles_for(rows: usize, cols: usize) -> (usize, usize) {
    (rows.div_ceil(TILE_H), cols.div_ceil(TILE_W))
}

fn check_shape(rows: usize, cols: usize) -> Result<(), FormatError> {
    if rows == 0 || cols == 0 {
        return Err(FormatError::BadShape {
            rows,
            cols,
            reason: "both dimensions must be at least 1",
        });
    }
    let (tr, tc) = tiles_for(rows, cols);
    if tr
        .checked_mul(tc)
        .and_then(|n| n.checked_mul(TILE_HW))
        .is_none()
    {
        return Err(FormatError::BadShape {
            rows,
            cols,
            reason: "too large to address",
        });
    }
    Ok(())
}

/// Converts a row-major `rows` x `cols` matrix into tiles: tiles in row-major tile order, each in
/// tile (face) order, zero-padded (`T::default()`) up to multiples of 32 in both dimensions.
/// The result has `ceil(rows/32) * ceil(cols/32) * 1024` elements.
pub fn tilize<T: Copy + Default>(
    rows: usize,
    cols: usize,
    data: &[T],
) -> Result<Vec<T>, FormatError> {
    check_shape(rows, cols)?;
    if data.len() != rows * cols {
        return Err(FormatError::WrongLength {
            what: "tilize input (row-major rows*cols)",
            expected: rows * cols,
            actual: data.len(),
            unit: "elements",
        });
    }
    let (tr, tc) = tiles_for(rows, cols);
    let mut out = vec![T::default(); tr * tc * TILE_HW];
    for r in 0..rows {
        let tile_row_base = (r / TILE_H) * tc;
        for c in 0..cols {
            let t = tile_row_base + c / TILE_W;
            out[t * TILE_HW + tile_offset(r, c)] = data[r * cols + c];
        }
    }
    Ok(out)
}

/// Inverse of [`tilize`]: takes `ceil(rows/32) * ceil(cols/32)` tiles (tile order, row-major tile
/// order) and returns the row-major `rows` x `cols` matrix, dropping the padding.
pub fn untilize<T: Copy + Default>(
    tiles: &[T],
    rows: usize,
    cols: usize,
) -> Result<Vec<T>, FormatError> {
    check_shape(rows, cols)?;
    let (tr, tc) = tiles_for(rows, cols);
    if tiles.len() != tr * tc * TILE_HW {
        return Err(FormatError::WrongLength {
            what: "untilize input (whole tiles)",
            expected: tr * tc * TILE_HW,
            actual: tiles.len(),
            unit: "elements",
        });
    }
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        let tile_row_base = (r / TILE_H) * tc;
        for c in 0..cols {
            let t = tile_row_base + c / TILE_W;
            out.push(tiles[t * TILE_HW + tile_offset(r, c)]);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn face_order_matches_spec() {
        assert_eq!(tile_offset(0, 0), 0);
        assert_eq!(tile_offset(0, 15), 15);
        assert_eq!(tile_offset(1, 0), 16);
        assert_eq!(tile_offset(0, 16), 256);
        assert_eq!(tile_offset(15, 31), 256 + 255);
        assert_eq!(tile_offset(16, 0), 512);
        assert_eq!(tile_offset(16, 16), 768);
        assert_eq!(tile_offset(31, 31), 1023);
        let mut seen = [false; TILE_HW];
        for r in 0..32 {
            for c in 0..32 {
                let i = tile_offset(r, c);
                assert!(!seen[i]);
                seen[i] = true;
                assert_eq!(tile_coords(i), (r, c));
            }
        }
    }

    #[test]
    fn tilize_places_padding_and_second_tile() {
        // 33x2 matrix: two tile rows, one tile column.
        let data: Vec<u32> = (1..=66).collect();
        let t = tilize(33, 2, &data).unwrap();
        assert_eq!(t.len(), 2 * TILE_HW);
        assert_eq!(t[0], 1); // (0,0)
        assert_eq!(t[1], 2); // (0,1)
        assert_eq!(t[2], 0); // padding
        assert_eq!(t[16], 3); // (1,0)
        assert_eq!(t[TILE_HW], 65); // (32,0) is the first element of tile 1
        assert!(tilize(3, 3, &data).is_err());
        assert!(tilize::<u32>(0, 3, &[]).is_err());
    }

    proptest! {
        #[test]
        fn untilize_inverts_tilize(rows in 1usize..80, cols in 1usize..80, seed in any::<u32>()) {
            let data: Vec<f32> = (0..rows * cols).map(|i| (i as u32 ^ seed) as f32 * 0.5 + 1.0).collect();
            let t = tilize(rows, cols, &data).unwrap();
            prop_assert_eq!(untilize(&t, rows, cols).unwrap(), data);
        }
    }
}
