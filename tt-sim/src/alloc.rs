//! A first-fit range allocator (bottom-up for DRAM, top-down for L1 buffers, like TT-Metal).

use std::collections::BTreeMap;

/// Allocates aligned ranges inside `[lo, hi)`.
#[derive(Debug, Clone)]
pub struct RangeAllocator {
    lo: u64,
    hi: u64,
    top_down: bool,
    /// start -> size of live allocations.
    used: BTreeMap<u64, u64>,
}

impl RangeAllocator {
    /// A new allocator over `[lo, hi)`.
    pub fn new(lo: u64, hi: u64, top_down: bool) -> Self {
        RangeAllocator {
            lo,
            hi,
            top_down,
            used: BTreeMap::new(),
        }
    }

    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut v = Vec::new();
        let mut cur = self.lo;
        for (&s, &n) in &self.used {
            if s > cur {
                v.push((cur, s));
            }
            cur = cur.max(s + n);
        }
        if self.hi > cur {
            v.push((cur, self.hi));
        }
        v
    }

    /// Allocates `size` bytes aligned to `align`; `None` if no gap fits.
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        let size = size.max(1).div_ceil(align) * align;
        let gaps = self.gaps();
        let pick = if self.top_down {
            gaps.iter().rev().find_map(|&(s, e)| {
                let start = (e.checked_sub(size)? / align) * align;
                (start >= s).then_some(start)
            })
        } else {
            gaps.iter().find_map(|&(s, e)| {
                let start = s.div_ceil(align) * align;
                (start + size <= e).then_some(start)
            })
        }?;
        self.used.insert(pick, size);
        Some(pick)
    }

    /// Frees the allocation starting at `start`; false if there was none.
    pub fn free(&mut self, start: u64) -> bool {
        self.used.remove(&start).is_some()
    }

    /// Total free bytes and the largest free gap.
    pub fn free_stats(&self) -> (u64, u64) {
        let g = self.gaps();
        (
            g.iter().map(|(s, e)| e - s).sum(),
            g.iter().map(|(s, e)| e - s).max().unwrap_or(0),
        )
    }

    /// Lowest allocated address, if any.
    pub fn lowest_used(&self) -> Option<u64> {
        self.used.keys().next().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_down_and_bottom_up_placement_and_reuse() {
        let mut a = RangeAllocator::new(1000, 2000, true);
        assert_eq!(a.alloc(100, 16), Some(1888)); // (2000-112)/16*16
        assert_eq!(a.alloc(100, 16), Some(1776));
        assert!(a.free(1888));
        assert_eq!(a.alloc(50, 16), Some(1936));
        assert_eq!(a.lowest_used(), Some(1776));
        let mut b = RangeAllocator::new(0, 256, false);
        assert_eq!(b.alloc(100, 32), Some(0));
        assert_eq!(b.alloc(100, 32), Some(128));
        assert_eq!(b.alloc(100, 32), None);
        assert_eq!(b.free_stats(), (0, 0));
    }
}
