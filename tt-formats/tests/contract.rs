//! Cross-module contract tests: shapes that are not multiples of 32, random data, every page
//! placed exactly once.

use proptest::prelude::*;
use std::collections::HashSet;
use tt_formats::placement::align_up;
use tt_formats::{
    CoreCoord, CoreRange, CoreRangeSet, DataFormat, ShardLayout, ShardOrientation, ShardSpec,
    ShardedPageMap, TILE_HW, decode_tile, encode_tile_host, tilize, untilize,
};

fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed | 1;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
    }
}

/// Row-major matrix -> tiles -> pages in `fmt` -> tiles -> matrix; compared with the input in
/// f64. Tolerances: Float32 exact; Float16_b half an ULP of 8 significant bits (2^-8 relative);
/// Bfp8_b one block step, at most 2^-6 of the row's largest magnitude x2 (shared exponent).
fn round_trip(rows: usize, cols: usize, fmt: DataFormat, seed: u64) {
    let mut rnd = lcg(seed);
    let data: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
    let tiles = tilize(rows, cols, &data).unwrap();
    let mut back_tiles = Vec::with_capacity(tiles.len());
    for t in tiles.chunks_exact(TILE_HW) {
        let arr: [f32; TILE_HW] = t.try_into().unwrap();
        let page = encode_tile_host(fmt, &arr).unwrap();
        back_tiles.extend_from_slice(&decode_tile(fmt, &page).unwrap());
    }
    let back = untilize(&back_tiles, rows, cols).unwrap();
    for (i, (&x, &y)) in data.iter().zip(&back).enumerate() {
        let tol = match fmt {
            DataFormat::Float32 => 0.0,
            DataFormat::Float16_b => x.abs() as f64 / 256.0,
            // |x| < 4 so the shared exponent is at most 2^1: one step is 2^(1-6).
            DataFormat::Bfp8_b => 2f64.powi(-5),
            _ => unreachable!(),
        };
        assert!(
            ((x as f64) - (y as f64)).abs() <= tol,
            "{fmt} {rows}x{cols} i={i}: {x} -> {y}"
        );
    }
}

#[test]
fn tilize_codec_untilize_non_multiple_shapes() {
    for (rows, cols) in [(1, 1), (31, 33), (45, 70), (64, 32), (100, 7)] {
        for fmt in [
            DataFormat::Float32,
            DataFormat::Float16_b,
            DataFormat::Bfp8_b,
        ] {
            round_trip(rows, cols, fmt, (rows * 1000 + cols) as u64);
        }
    }
}

fn layout_strategy() -> impl Strategy<Value = (ShardLayout, ShardOrientation, u32, u32, u32, u32)> {
    (
        prop_oneof![
            Just(ShardLayout::Height),
            Just(ShardLayout::Width),
            Just(ShardLayout::Block)
        ],
        prop_oneof![
            Just(ShardOrientation::RowMajor),
            Just(ShardOrientation::ColMajor)
        ],
        1u32..12,
        1u32..12,
        1u32..5,
        1u32..5,
    )
}

proptest! {
    #[test]
    fn sharding_places_every_page_exactly_once((layout, orient, th, tw, sh, sw) in layout_strategy(), extra in 0u32..3) {
        let (sh, sw) = match layout {
            ShardLayout::Height => (sh, tw),
            ShardLayout::Width => (th, sw),
            ShardLayout::Block => (sh, sw),
        };
        let rows = th.div_ceil(sh);
        let cols = tw.div_ceil(sw);
        // A core grid big enough (plus spare cores that stay empty).
        let (gx, gy) = match layout {
            ShardLayout::Height => (1, rows * cols + extra),
            ShardLayout::Width => (rows * cols + extra, 1),
            ShardLayout::Block => (cols + extra, rows),
        };
        let cores = CoreRangeSet::from_range(CoreRange::new(CoreCoord::new(0, 0), CoreCoord::new(gx - 1, gy - 1)).unwrap());
        let spec = ShardSpec {
            cores,
            shard_shape: [sh * 32, sw * 16],
            page_shape: [32, 16],
            tensor_shape_in_pages: [th, tw],
            orientation: orient,
        };
        let m = ShardedPageMap::new(layout, &spec).unwrap();
        let mut seen = HashSet::new();
        for p in 0..(th * tw) as usize {
            let (c, l) = m.locate(p).unwrap();
            prop_assert!(l < m.pages_per_shard());
            prop_assert!(seen.insert((c, l)));
            prop_assert_eq!(m.core_pages(c)[l as usize], Some(p));
            // Page (r, col) of the tensor is at shard-local (r % sh, col % sw).
            let (r, col) = (p as u32 / tw, p as u32 % tw);
            prop_assert_eq!(l, (r % sh) * sw + col % sw);
        }
        prop_assert!(m.locate((th * tw) as usize).is_none());
        let (core, addr) = m.page_address(0, 0x2_0000, 1000, 16).unwrap();
        prop_assert_eq!(core, m.cores()[0]);
        prop_assert_eq!(addr, 0x2_0000);
        prop_assert_eq!(align_up(1000, 16), 1008);
    }
}
