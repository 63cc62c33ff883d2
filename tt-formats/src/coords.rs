//! Core coordinates: [`CoreCoord`], inclusive rectangles [`CoreRange`] and validated sets of
//! non-overlapping rectangles [`CoreRangeSet`]. Coordinates are logical worker coordinates unless
//! a name says `noc`.

use thiserror::Error;

/// Errors about coordinates and core ranges.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CoordError {
    /// A range whose end is before its start.
    #[error("core range {0} is inverted: start must be <= end in both x and y")]
    Inverted(CoreRange),
    /// Two ranges of one set overlap.
    #[error("core ranges {0} and {1} overlap: a core range set must not name a core twice")]
    Overlap(CoreRange, CoreRange),
    /// A set with no ranges.
    #[error("empty core range set: give at least one core range")]
    Empty,
    /// A core outside the worker grid.
    #[error("core {core} is outside the {grid_x}x{grid_y} worker grid of {arch}")]
    OutsideGrid {
        /// The core.
        core: CoreCoord,
        /// Grid width.
        grid_x: u32,
        /// Grid height.
        grid_y: u32,
        /// Architecture name.
        arch: &'static str,
    },
    /// A DRAM bank index out of range.
    #[error("DRAM bank {bank} does not exist: {arch} has {num_banks} banks (0..{num_banks})")]
    NoSuchDramBank {
        /// The bank.
        bank: u32,
        /// Number of banks.
        num_banks: u32,
        /// Architecture name.
        arch: &'static str,
    },
}

/// A core coordinate (x = column, y = row).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CoreCoord {
    /// Column.
    pub x: u32,
    /// Row.
    pub y: u32,
}

impl CoreCoord {
    /// A coordinate.
    pub const fn new(x: u32, y: u32) -> Self {
        Self { x, y }
    }
}

impl std::fmt::Display for CoreCoord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "({}, {})", self.x, self.y)
    }
}

impl From<(u32, u32)> for CoreCoord {
    fn from((x, y): (u32, u32)) -> Self {
        Self { x, y }
    }
}

/// An inclusive rectangle of cores. Iteration is row-major (x fastest), as TT-Metal's
/// `CoreRange` iterates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoreRange {
    /// Top-left corner (inclusive).
    pub start: CoreCoord,
    /// Bottom-right corner (inclusive).
    pub end: CoreCoord,
}

impl std::fmt::Display for CoreRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{} - {}]", self.start, self.end)
    }
}

impl CoreRange {
    /// A validated range (`start <= end` in both coordinates).
    pub fn new(start: CoreCoord, end: CoreCoord) -> Result<Self, CoordError> {
        let r = Self { start, end };
        if start.x > end.x || start.y > end.y {
            return Err(CoordError::Inverted(r));
        }
        Ok(r)
    }

    /// The range holding one core.
    pub const fn single(c: CoreCoord) -> Self {
        Self { start: c, end: c }
    }

    /// Width in cores.
    pub const fn width(&self) -> u32 {
        self.end.x - self.start.x + 1
    }

    /// Height in cores.
    pub const fn height(&self) -> u32 {
        self.end.y - self.start.y + 1
    }

    /// Number of cores.
    pub const fn num_cores(&self) -> usize {
        self.width() as usize * self.height() as usize
    }

    /// Whether `c` is inside.
    pub const fn contains(&self, c: CoreCoord) -> bool {
        c.x >= self.start.x && c.x <= self.end.x && c.y >= self.start.y && c.y <= self.end.y
    }

    /// Whether the two ranges share a core.
    pub const fn intersects(&self, o: &CoreRange) -> bool {
        self.start.x <= o.end.x
            && o.start.x <= self.end.x
            && self.start.y <= o.end.y
            && o.start.y <= self.end.y
    }

    /// Cores, row-major.
    pub fn iter(&self) -> impl Iterator<Item = CoreCoord> + '_ {
        let (s, e) = (self.start, self.end);
        (s.y..=e.y).flat_map(move |y| (s.x..=e.x).map(move |x| CoreCoord { x, y }))
    }
}

/// A set of non-overlapping core ranges, in the order given. Iteration visits the ranges in order
/// and each range row-major.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CoreRangeSet {
    ranges: Vec<CoreRange>,
}

impl CoreRangeSet {
    /// Validates that the ranges are non-empty, not inverted and pairwise disjoint.
    pub fn new(ranges: Vec<CoreRange>) -> Result<Self, CoordError> {
        if ranges.is_empty() {
            return Err(CoordError::Empty);
        }
        for r in &ranges {
            if r.start.x > r.end.x || r.start.y > r.end.y {
                return Err(CoordError::Inverted(*r));
            }
        }
        for (i, a) in ranges.iter().enumerate() {
            for b in &ranges[i + 1..] {
                if a.intersects(b) {
                    return Err(CoordError::Overlap(*a, *b));
                }
            }
        }
        Ok(Self { ranges })
    }

    /// A set of one range.
    pub fn from_range(r: CoreRange) -> Self {
        Self { ranges: vec![r] }
    }

    /// The ranges.
    pub fn ranges(&self) -> &[CoreRange] {
        &self.ranges
    }

    /// Total number of cores.
    pub fn num_cores(&self) -> usize {
        self.ranges.iter().map(CoreRange::num_cores).sum()
    }

    /// Whether `c` belongs to the set.
    pub fn contains(&self, c: CoreCoord) -> bool {
        self.ranges.iter().any(|r| r.contains(c))
    }

    /// Whether any range of the set intersects `r`.
    pub fn intersects(&self, r: &CoreRange) -> bool {
        self.ranges.iter().any(|x| x.intersects(r))
    }

    /// Cores: ranges in order, each row-major.
    pub fn iter(&self) -> impl Iterator<Item = CoreCoord> + '_ {
        self.ranges.iter().flat_map(|r| r.iter())
    }

    /// The smallest range containing every core.
    pub fn bounding_box(&self) -> CoreRange {
        let mut bb = self.ranges[0];
        for r in &self.ranges[1..] {
            bb.start.x = bb.start.x.min(r.start.x);
            bb.start.y = bb.start.y.min(r.start.y);
            bb.end.x = bb.end.x.max(r.end.x);
            bb.end.y = bb.end.y.max(r.end.y);
        }
        bb
    }
}

impl From<CoreRange> for CoreRangeSet {
    fn from(r: CoreRange) -> Self {
        Self::from_range(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr(x0: u32, y0: u32, x1: u32, y1: u32) -> CoreRange {
        CoreRange::new(CoreCoord::new(x0, y0), CoreCoord::new(x1, y1)).unwrap()
    }

    #[test]
    fn range_basics() {
        let r = cr(1, 2, 3, 3);
        assert_eq!(r.num_cores(), 6);
        let v: Vec<_> = r.iter().map(|c| (c.x, c.y)).collect();
        assert_eq!(v, vec![(1, 2), (2, 2), (3, 2), (1, 3), (2, 3), (3, 3)]);
        assert!(r.contains(CoreCoord::new(3, 3)) && !r.contains(CoreCoord::new(0, 2)));
        assert!(r.intersects(&cr(3, 3, 5, 5)));
        assert!(!r.intersects(&cr(4, 2, 5, 5)));
        assert!(CoreRange::new(CoreCoord::new(2, 0), CoreCoord::new(1, 0)).is_err());
    }

    #[test]
    fn set_validation() {
        assert_eq!(CoreRangeSet::new(vec![]), Err(CoordError::Empty));
        assert!(matches!(
            CoreRangeSet::new(vec![cr(0, 0, 1, 1), cr(1, 1, 2, 2)]),
            Err(CoordError::Overlap(..))
        ));
        let s = CoreRangeSet::new(vec![cr(0, 0, 1, 1), cr(2, 0, 2, 3)]).unwrap();
        assert_eq!(s.num_cores(), 8);
        assert_eq!(s.iter().count(), 8);
        assert!(s.contains(CoreCoord::new(2, 3)) && !s.contains(CoreCoord::new(1, 2)));
        assert_eq!(s.bounding_box(), cr(0, 0, 2, 3));
    }
}
