//! Core grids: logical worker coordinates, validation against a device's worker grid, and the
//! logical -> NoC map ([`NocMap`]) that kernels need for NoC addresses.
//!
//! [`CoreCoord`], [`CoreRange`] and [`CoreRangeSet`] are tt-formats' types, re-exported; this
//! module adds the conveniences a host program wants ([`core`], [`range`], [`CoreSpec`]).

use std::collections::HashMap;

pub use tt_formats::{CoreCoord, CoreRange, CoreRangeSet};

use crate::error::GridError;

/// Shorthand for `CoreCoord::new(x, y)`.
pub const fn core(x: u32, y: u32) -> CoreCoord {
    CoreCoord::new(x, y)
}

/// An inclusive rectangle `(x0, y0)..=(x1, y1)`; the corners may be given in any order.
pub fn range(x0: u32, y0: u32, x1: u32, y1: u32) -> CoreRange {
    CoreRange {
        start: core(x0.min(x1), y0.min(y1)),
        end: core(x0.max(x1), y0.max(y1)),
    }
}

/// Anything that names a set of cores: a [`CoreCoord`], a [`CoreRange`], a [`CoreRangeSet`], or a
/// slice/vec of ranges (which must not overlap). Used by every API that takes cores.
pub trait CoreSpec {
    /// The ranges named (unvalidated).
    fn to_ranges(&self) -> Vec<CoreRange>;
}

impl CoreSpec for CoreCoord {
    fn to_ranges(&self) -> Vec<CoreRange> {
        vec![CoreRange::single(*self)]
    }
}
impl CoreSpec for CoreRange {
    fn to_ranges(&self) -> Vec<CoreRange> {
        vec![*self]
    }
}
impl CoreSpec for CoreRangeSet {
    fn to_ranges(&self) -> Vec<CoreRange> {
        self.ranges().to_vec()
    }
}
impl CoreSpec for [CoreRange] {
    fn to_ranges(&self) -> Vec<CoreRange> {
        self.to_vec()
    }
}
impl CoreSpec for Vec<CoreRange> {
    fn to_ranges(&self) -> Vec<CoreRange> {
        self.clone()
    }
}
impl<const N: usize> CoreSpec for [CoreRange; N] {
    fn to_ranges(&self) -> Vec<CoreRange> {
        self.to_vec()
    }
}
impl<T: CoreSpec + ?Sized> CoreSpec for &T {
    fn to_ranges(&self) -> Vec<CoreRange> {
        (**self).to_ranges()
    }
}

/// Formats a list of ranges for messages, e.g. `[(0, 0) - (3, 0)], [(5, 5) - (5, 5)]`.
pub(crate) fn describe(ranges: &[CoreRange]) -> String {
    ranges
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The worker grid of a device: `size.x` columns by `size.y` rows of logical cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Grid {
    /// Columns (x) and rows (y).
    pub size: CoreCoord,
}

impl Grid {
    /// A grid of `x` columns and `y` rows.
    pub const fn new(x: u32, y: u32) -> Grid {
        Grid {
            size: CoreCoord::new(x, y),
        }
    }

    /// Number of worker cores.
    pub const fn num_cores(&self) -> usize {
        self.size.x as usize * self.size.y as usize
    }

    /// The whole grid as one range.
    pub const fn all(&self) -> CoreRange {
        CoreRange {
            start: CoreCoord::new(0, 0),
            end: CoreCoord::new(self.size.x - 1, self.size.y - 1),
        }
    }

    /// True when `c` is a logical worker core.
    pub const fn contains(&self, c: CoreCoord) -> bool {
        c.x < self.size.x && c.y < self.size.y
    }

    /// Checks one core; `what` names its use in the error.
    pub fn check_core(&self, what: &str, c: CoreCoord) -> Result<(), GridError> {
        if self.contains(c) {
            Ok(())
        } else {
            Err(GridError::CoreOutsideGrid {
                what: what.to_owned(),
                core: c,
                grid_x: self.size.x,
                grid_y: self.size.y,
            })
        }
    }

    /// Checks a range (not inverted, both corners inside).
    pub fn check_range(&self, what: &str, r: &CoreRange) -> Result<(), GridError> {
        if r.start.x > r.end.x || r.start.y > r.end.y {
            return Err(GridError::InvertedRange {
                what: what.to_owned(),
                start: r.start,
                end: r.end,
            });
        }
        self.check_core(what, r.end)?;
        self.check_core(what, r.start)
    }

    /// Validates a core specification and returns it as a [`CoreRangeSet`] (non-empty, ranges not
    /// inverted, inside the grid; overlapping ranges are rejected as tt-formats does).
    pub fn validate(
        &self,
        what: &str,
        cores: &(impl CoreSpec + ?Sized),
    ) -> Result<CoreRangeSet, GridError> {
        let ranges = cores.to_ranges();
        if ranges.is_empty() {
            return Err(GridError::EmptyCoreSet {
                what: what.to_owned(),
            });
        }
        for r in &ranges {
            self.check_range(what, r)?;
        }
        CoreRangeSet::new(ranges).map_err(|e| GridError::EmptyCoreSet {
            what: format!("{what}: {e}"),
        })
    }
}

impl std::fmt::Display for Grid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.size.x, self.size.y)
    }
}

/// The device's logical-worker -> NoC coordinate map, with the reverse lookup. A [`Device`]
/// builds it once at open time from the provider (`worker_core_from_logical`); tests and tools
/// can build one from any function.
///
/// Coordinates are NoC 0 coordinates as the provider reports them (the coordinates kernels put in
/// `get_noc_addr`); they are the same for both NoCs (the rectangle corner order differs, see
/// [`crate::mcast`]).
///
/// [`Device`]: crate::Device
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NocMap {
    grid: Grid,
    noc: Vec<CoreCoord>,
    logical: HashMap<CoreCoord, CoreCoord>,
}

impl NocMap {
    /// Builds the map of `grid` from `f(logical) -> noc`.
    pub fn from_fn<E>(
        grid: Grid,
        mut f: impl FnMut(CoreCoord) -> Result<CoreCoord, E>,
    ) -> Result<NocMap, E> {
        let mut noc = Vec::with_capacity(grid.num_cores());
        let mut logical = HashMap::with_capacity(grid.num_cores());
        for y in 0..grid.size.y {
            for x in 0..grid.size.x {
                let l = CoreCoord::new(x, y);
                let n = f(l)?;
                noc.push(n);
                logical.insert(n, l);
            }
        }
        Ok(NocMap { grid, noc, logical })
    }

    /// The grid this map covers.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// NoC coordinates of logical worker `c`.
    pub fn worker(&self, c: CoreCoord) -> Result<CoreCoord, GridError> {
        self.grid.check_core("worker_core", c)?;
        Ok(self.noc[(c.y * self.grid.size.x + c.x) as usize])
    }

    /// The logical worker at NoC coordinates `noc`, if any.
    pub fn logical(&self, noc: CoreCoord) -> Option<CoreCoord> {
        self.logical.get(&noc).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_validation_names_the_grid() {
        let g = Grid::new(8, 8);
        let err = g.validate("kernel reader", &range(0, 0, 8, 1)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("(8, 1)")
                && msg.contains("8x8 worker grid")
                && msg.contains("kernel reader"),
            "{msg}"
        );
        assert!(g.validate("x", &range(0, 0, 7, 7)).is_ok());
        let empty: Vec<CoreRange> = vec![];
        assert!(matches!(
            g.validate("x", &empty),
            Err(GridError::EmptyCoreSet { .. })
        ));
        let inverted = CoreRange {
            start: core(3, 0),
            end: core(1, 0),
        };
        assert!(matches!(
            g.validate("x", &inverted),
            Err(GridError::InvertedRange { .. })
        ));
        let overlapping = vec![range(0, 0, 2, 2), range(2, 2, 3, 3)];
        assert!(
            g.validate("x", &overlapping)
                .unwrap_err()
                .to_string()
                .contains("overlap")
        );
    }

    #[test]
    fn noc_map_round_trips() {
        let xs = [1u32, 2, 3, 4, 6, 7, 8, 9];
        let ys = [1u32, 2, 3, 4, 5, 7, 8, 9];
        let m = NocMap::from_fn(Grid::new(8, 8), |c| {
            Ok::<_, ()>(core(xs[c.x as usize], ys[c.y as usize]))
        })
        .unwrap();
        assert_eq!(m.worker(core(4, 5)).unwrap(), core(6, 7));
        assert_eq!(m.logical(core(6, 7)), Some(core(4, 5)));
        assert_eq!(m.logical(core(5, 7)), None);
        assert!(m.worker(core(8, 0)).is_err());
    }
}
