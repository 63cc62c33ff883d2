//! Buffer page placement: interleaved across banks, or sharded across cores.
//!
//! # Interleaved
//! Page `i` goes to bank `i % n` at `base + (i / n) * align(page_size, alignment)`
//! ([`interleaved_page_location`]).
//!
//! # Sharded (TT-Metal legacy `BufferPageMapping`, `tt_metal/impl/buffers/buffer.cpp`)
//! The tensor is a 2D grid of `tensor_shape_in_pages = [H, W]` pages, page `p` at row `p / W`,
//! column `p % W`. A shard is `[sh, sw] = shard_shape / page_shape` pages. Every core of the core
//! set holds one shard slot of `sh * sw` pages (even when the tensor needs fewer shards); cores are
//! ordered like `corerange_to_cores(grid, n, row_major)`: ranges in the order given, each range
//! x-fastest for [`ShardOrientation::RowMajor`] and y-fastest for [`ShardOrientation::ColMajor`].
//! Shard `k` lives on core `k` of that order.
//! - Height: shard `k` holds the consecutive pages `k*sh*sw ..` (requires `sw == W`).
//! - Width / block: shards tile the page grid in row-major shard order (`ceil(W/sw)` shards per
//!   shard row); width sharding requires `sh == H`.
//!
//! Inside a shard, page (r, c) of the shard sits at local index `r * sw + c` whatever the shard's
//! real extent: a partial last shard (at the bottom or right edge) keeps the full stride and simply
//! leaves the slots outside the tensor empty. Local page `j` of a core is at
//! `base + j * align(page_size, alignment)` in that core's L1 (or that bank).

use crate::coords::{CoreCoord, CoreRangeSet};
use thiserror::Error;

/// Errors about page placement.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlacementError {
    /// A zero dimension.
    #[error("{what} is {value:?}: every dimension must be at least 1")]
    ZeroDim {
        /// Which shape.
        what: &'static str,
        /// Its value.
        value: [u32; 2],
    },
    /// Shard shape not a multiple of the page shape.
    #[error(
        "shard shape {shard:?} is not a multiple of page shape {page:?}: make each shard dimension a whole number of pages"
    )]
    ShardNotPageMultiple {
        /// Shard shape (elements).
        shard: [u32; 2],
        /// Page shape (elements).
        page: [u32; 2],
    },
    /// Height sharding with a shard narrower/wider than the tensor.
    #[error(
        "height sharding needs shards as wide as the tensor: shard is {shard_w} pages wide, tensor {tensor_w}; use block sharding otherwise"
    )]
    HeightShardWidth {
        /// Shard width in pages.
        shard_w: u32,
        /// Tensor width in pages.
        tensor_w: u32,
    },
    /// Width sharding with a shard shorter/taller than the tensor.
    #[error(
        "width sharding needs shards as tall as the tensor: shard is {shard_h} pages tall, tensor {tensor_h}; use block sharding otherwise"
    )]
    WidthShardHeight {
        /// Shard height in pages.
        shard_h: u32,
        /// Tensor height in pages.
        tensor_h: u32,
    },
    /// More shards needed than cores given.
    #[error(
        "the tensor needs {needed} shards but the core set has only {cores} cores: add cores or enlarge the shard"
    )]
    TooFewCores {
        /// Shards needed.
        needed: u64,
        /// Cores available.
        cores: usize,
    },
    /// The tensor has too many pages to map.
    #[error("tensor of {0} pages is too large to map")]
    TooLarge(u64),
    /// A zero bank count.
    #[error("number of banks must be at least 1")]
    NoBanks,
}

/// Sharding scheme (`tt_buffer_layout` without interleaved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardLayout {
    /// Shards are bands of whole rows.
    Height,
    /// Shards are bands of whole columns.
    Width,
    /// Shards are 2D blocks.
    Block,
}

/// Core order for shards (`tt_shard_orientation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardOrientation {
    /// x fastest.
    RowMajor,
    /// y fastest.
    ColMajor,
}

/// Shard description (`tt_shard_spec`). Shapes are `[height, width]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    /// Cores holding shards.
    pub cores: CoreRangeSet,
    /// Shard shape in elements.
    pub shard_shape: [u32; 2],
    /// Page shape in elements (e.g. `[32, 32]` for tiles).
    pub page_shape: [u32; 2],
    /// Whole tensor in pages.
    pub tensor_shape_in_pages: [u32; 2],
    /// Core order.
    pub orientation: ShardOrientation,
}

/// Rounds `x` up to a multiple of `a` (`a >= 1`; 0 treated as 1).
pub const fn align_up(x: u64, a: u64) -> u64 {
    let a = if a == 0 { 1 } else { a };
    x.div_ceil(a) * a
}

/// Interleaved placement of page `page`: (bank, byte offset inside the bank).
pub fn interleaved_page_location(
    page: u64,
    num_banks: u32,
    page_size: u64,
    alignment: u64,
    base: u64,
) -> Result<(u32, u64), PlacementError> {
    if num_banks == 0 {
        return Err(PlacementError::NoBanks);
    }
    let n = num_banks as u64;
    Ok((
        (page % n) as u32,
        base + (page / n) * align_up(page_size, alignment),
    ))
}

/// Cores in `corerange_to_cores` order.
pub fn cores_in_order(cores: &CoreRangeSet, orientation: ShardOrientation) -> Vec<CoreCoord> {
    let mut out = Vec::with_capacity(cores.num_cores());
    for r in cores.ranges() {
        match orientation {
            ShardOrientation::RowMajor => out.extend(r.iter()),
            ShardOrientation::ColMajor => {
                for x in r.start.x..=r.end.x {
                    for y in r.start.y..=r.end.y {
                        out.push(CoreCoord { x, y });
                    }
                }
            }
        }
    }
    out
}

/// The page map of a sharded buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardedPageMap {
    layout: ShardLayout,
    cores: Vec<CoreCoord>,
    shard_pages: [u32; 2],
    tensor_pages: [u32; 2],
    /// Per host page: (core index, local page index).
    host_to_dev: Vec<(u32, u32)>,
}

impl ShardedPageMap {
    /// Builds and validates the map.
    pub fn new(layout: ShardLayout, spec: &ShardSpec) -> Result<Self, PlacementError> {
        for (what, v) in [
            ("shard_shape", spec.shard_shape),
            ("page_shape", spec.page_shape),
            ("tensor_shape_in_pages", spec.tensor_shape_in_pages),
        ] {
            if v[0] == 0 || v[1] == 0 {
                return Err(PlacementError::ZeroDim { what, value: v });
            }
        }
        let [sh_e, sw_e] = spec.shard_shape;
        let [ph, pw] = spec.page_shape;
        if sh_e % ph != 0 || sw_e % pw != 0 {
            return Err(PlacementError::ShardNotPageMultiple {
                shard: spec.shard_shape,
                page: spec.page_shape,
            });
        }
        let (sh, sw) = (sh_e / ph, sw_e / pw);
        let [th, tw] = spec.tensor_shape_in_pages;
        match layout {
            ShardLayout::Height if sw != tw => {
                return Err(PlacementError::HeightShardWidth {
                    shard_w: sw,
                    tensor_w: tw,
                });
            }
            ShardLayout::Width if sh != th => {
                return Err(PlacementError::WidthShardHeight {
                    shard_h: sh,
                    tensor_h: th,
                });
            }
            _ => {}
        }
        let total = th as u64 * tw as u64;
        if total > u32::MAX as u64 || sh as u64 * sw as u64 > u32::MAX as u64 {
            return Err(PlacementError::TooLarge(total));
        }
        let shard_rows = th.div_ceil(sh) as u64;
        let shard_cols = tw.div_ceil(sw) as u64;
        let needed = shard_rows * shard_cols;
        let cores = cores_in_order(&spec.cores, spec.orientation);
        if needed > cores.len() as u64 {
            return Err(PlacementError::TooFewCores {
                needed,
                cores: cores.len(),
            });
        }
        // Height sharding in TT-Metal assigns consecutive runs of sh*sw pages; with sw == W that
        // is the same as the 2D walk below.
        let mut host_to_dev = vec![(0u32, 0u32); total as usize];
        for p in 0..total {
            let (r, c) = ((p / tw as u64) as u32, (p % tw as u64) as u32);
            let shard = (r / sh) as u64 * shard_cols + (c / sw) as u64;
            let local = (r % sh) * sw + (c % sw);
            host_to_dev[p as usize] = (shard as u32, local);
        }
        Ok(Self {
            layout,
            cores,
            shard_pages: [sh, sw],
            tensor_pages: [th, tw],
            host_to_dev,
        })
    }

    /// The layout.
    pub fn layout(&self) -> ShardLayout {
        self.layout
    }

    /// Pages in the tensor.
    pub fn num_pages(&self) -> usize {
        self.host_to_dev.len()
    }

    /// Tensor shape in pages `[H, W]`.
    pub fn tensor_shape_in_pages(&self) -> [u32; 2] {
        self.tensor_pages
    }

    /// Shard shape in pages `[sh, sw]`.
    pub fn shard_shape_in_pages(&self) -> [u32; 2] {
        self.shard_pages
    }

    /// Page slots per core (`sh * sw`).
    pub fn pages_per_shard(&self) -> u32 {
        self.shard_pages[0] * self.shard_pages[1]
    }

    /// Cores in shard order (core index -> core).
    pub fn cores(&self) -> &[CoreCoord] {
        &self.cores
    }

    /// Where host page `page` lives: (core index, local page slot). `None` past the end.
    pub fn locate(&self, page: usize) -> Option<(usize, u32)> {
        self.host_to_dev.get(page).map(|&(c, l)| (c as usize, l))
    }

    /// Host page in each local slot of core `core_index` (`None` for padding slots and for
    /// cores past the shards the tensor needs).
    pub fn core_pages(&self, core_index: usize) -> Vec<Option<usize>> {
        let mut slots = vec![None; self.pages_per_shard() as usize];
        if core_index >= self.cores.len() {
            return slots;
        }
        for (p, &(c, l)) in self.host_to_dev.iter().enumerate() {
            if c as usize == core_index {
                slots[l as usize] = Some(p);
            }
        }
        slots
    }

    /// The core and address of host page `page` for a buffer at `base` with `page_size` and
    /// `alignment`.
    pub fn page_address(
        &self,
        page: usize,
        base: u64,
        page_size: u64,
        alignment: u64,
    ) -> Option<(CoreCoord, u64)> {
        let (c, l) = self.locate(page)?;
        Some((
            self.cores[c],
            base + l as u64 * align_up(page_size, alignment),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coords::CoreRange;

    fn set(x0: u32, y0: u32, x1: u32, y1: u32) -> CoreRangeSet {
        CoreRangeSet::from_range(
            CoreRange::new(CoreCoord::new(x0, y0), CoreCoord::new(x1, y1)).unwrap(),
        )
    }

    #[test]
    fn interleaved() {
        assert_eq!(
            interleaved_page_location(0, 12, 2048, 32, 0x100).unwrap(),
            (0, 0x100)
        );
        assert_eq!(
            interleaved_page_location(13, 12, 1088, 32, 0).unwrap(),
            (1, 1088)
        );
        assert_eq!(
            interleaved_page_location(25, 12, 1000, 32, 64).unwrap(),
            (1, 64 + 2 * 1024)
        );
        assert!(interleaved_page_location(0, 0, 1, 1, 0).is_err());
    }

    #[test]
    fn block_partial_shards_keep_stride() {
        // 5x5 tile tensor, 2x2 tile shards on a 3x3 core grid, row-major.
        let spec = ShardSpec {
            cores: set(0, 0, 2, 2),
            shard_shape: [64, 64],
            page_shape: [32, 32],
            tensor_shape_in_pages: [5, 5],
            orientation: ShardOrientation::RowMajor,
        };
        let m = ShardedPageMap::new(ShardLayout::Block, &spec).unwrap();
        assert_eq!(m.locate(0), Some((0, 0)));
        assert_eq!(m.locate(6), Some((0, 3)));
        assert_eq!(m.locate(4), Some((2, 0))); // page (0,4) -> shard (0,2)
        assert_eq!(m.locate(9), Some((2, 2))); // page (1,4) -> shard (0,2) local (1,0)
        assert_eq!(m.locate(24), Some((8, 0)));
        assert_eq!(m.core_pages(8), vec![Some(24), None, None, None]);
        assert_eq!(m.cores()[2], CoreCoord::new(2, 0));
        // Every page exactly once.
        let mut seen = std::collections::HashSet::new();
        for p in 0..25 {
            assert!(seen.insert(m.locate(p).unwrap()));
        }
    }

    #[test]
    fn col_major_orders_cores_y_first() {
        let spec = ShardSpec {
            cores: set(0, 0, 1, 1),
            shard_shape: [32, 32],
            page_shape: [32, 32],
            tensor_shape_in_pages: [2, 2],
            orientation: ShardOrientation::ColMajor,
        };
        let m = ShardedPageMap::new(ShardLayout::Block, &spec).unwrap();
        assert_eq!(
            m.page_address(1, 0x2000, 2048, 16),
            Some((CoreCoord::new(0, 1), 0x2000))
        );
    }

    #[test]
    fn validation_errors() {
        let mut spec = ShardSpec {
            cores: set(0, 0, 1, 0),
            shard_shape: [64, 32],
            page_shape: [32, 32],
            tensor_shape_in_pages: [4, 2],
            orientation: ShardOrientation::RowMajor,
        };
        assert!(matches!(
            ShardedPageMap::new(ShardLayout::Height, &spec),
            Err(PlacementError::HeightShardWidth { .. })
        ));
        assert!(matches!(
            ShardedPageMap::new(ShardLayout::Width, &spec),
            Err(PlacementError::WidthShardHeight { .. })
        ));
        assert!(matches!(
            ShardedPageMap::new(ShardLayout::Block, &spec),
            Err(PlacementError::TooFewCores { .. })
        ));
        spec.shard_shape = [48, 32];
        assert!(matches!(
            ShardedPageMap::new(ShardLayout::Block, &spec),
            Err(PlacementError::ShardNotPageMultiple { .. })
        ));
        spec.page_shape = [0, 32];
        assert!(matches!(
            ShardedPageMap::new(ShardLayout::Block, &spec),
            Err(PlacementError::ZeroDim { .. })
        ));
    }
}
