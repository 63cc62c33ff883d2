//! Architectures: constants ([`ArchSpec`]) and coordinate maps.
//!
//! # Coordinate maps (documented choice)
//! NoC coordinates are NoC 0 coordinates as in the tt-metal SoC descriptors
//! (`wormhole_b0_80_arch.yaml`, `blackhole_140_arch.yaml`).
//! - **Wormhole B0 (n150)**: Tensix columns x = 1,2,3,4,6,7,8,9; rows y = 1..5, 7..11. An n150
//!   harvests one row: we model physical row 11 as harvested, which leaves 9 rows (72 Tensix);
//!   the last remaining row (y = 10) is reserved for dispatch, so the usable 8x8 grid is
//!   logical x 0..8 -> NoC x [1,2,3,4,6,7,8,9] and logical y 0..8 -> NoC y [1,2,3,4,5,7,8,9].
//!   12 DRAM banks: bank b is addressed at the SoC descriptor's preferred worker endpoint of DRAM
//!   view b: [0-11, 0-1, 0-5, 0-7, 5-1, 5-11, 5-2, 5-9, 5-8, 5-3, 5-5, 5-7]. On silicon two
//!   banks share a channel and the odd one adds a 1 GiB offset; the simulator gives every bank its
//!   own address space starting at 0, so [`ArchSpec::dram_bank_offset`] is 0 for all banks.
//! - **Blackhole (p150)**: Tensix columns x = 1..7, 10..16; rows y = 2..11 (140 Tensix). A p150
//!   harvests two columns (modelled as the last two, x = 15, 16, as Blackhole's translated
//!   coordinates do), leaving 120 Tensix; column x = 14 is reserved for dispatch, so the usable
//!   11x10 grid is logical x 0..11 -> NoC x [1,2,3,4,5,6,7,10,11,12,13] and logical y 0..10 ->
//!   NoC y 2..11. 8 DRAM banks at the preferred worker endpoints
//!   [0-11, 0-3, 0-8, 0-6, 9-11, 9-3, 9-8, 9-6].
//!
//! # Unreserved L1 base
//! `MEM_MAP_END` of tt-metal's 2026 `dev_mem_map.h` (WH 0x8120, BH 0x9DE0) plus the 69 KiB
//! kernel-config buffer (`L1_KERNEL_CONFIG_SIZE`), rounded up to the DRAM alignment:
//! WH 0x19520 (103,712 B), BH 0x1B200 (111,104 B). The exact value on a given TT-Metal build may
//! differ by a few hundred bytes; programs must query it, never hard-code it.

use crate::coords::{CoordError, CoreCoord};

/// A chip architecture (values as `tt_shim.h` `tt_arch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Arch {
    /// Wormhole B0 (n150 / n300).
    WormholeB0 = 1,
    /// Blackhole (p100 / p150).
    Blackhole = 2,
}

/// What sits at a NoC coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NocTarget {
    /// A usable worker, with its logical coordinate.
    Worker(CoreCoord),
    /// A DRAM bank endpoint.
    DramBank(u32),
    /// Anything else: harvested or dispatch Tensix, Ethernet, PCIe, ARC, routers, off-grid.
    NotAWorker,
}

/// Per-architecture constants. Sizes in bytes, clocks in MHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchSpec {
    /// The architecture.
    pub arch: Arch,
    /// Human name of the modelled board.
    pub name: &'static str,
    /// NoC grid size (x, y).
    pub noc_grid: CoreCoord,
    /// Usable worker grid (x, y) (`compute_with_storage_grid_size`).
    pub worker_grid: CoreCoord,
    /// AI clock.
    pub clock_mhz: u32,
    /// L1 bytes per worker.
    pub l1_size: u32,
    /// First L1 address user allocations (CBs, L1 buffers) may use.
    pub l1_unreserved_base: u32,
    /// L1 allocation alignment.
    pub l1_alignment: u32,
    /// DRAM allocation alignment.
    pub dram_alignment: u32,
    /// Number of DRAM banks.
    pub num_dram_banks: u32,
    /// Bytes per DRAM bank.
    pub dram_bank_size: u64,
    /// Circular-buffer indices per core.
    pub max_circular_buffers: u32,
    /// Semaphores per core.
    pub max_semaphores: u32,
    /// Runtime args per kernel per core (unique + common).
    pub max_runtime_args: u32,
    /// Largest single NoC transaction.
    pub noc_max_burst_bytes: u32,
    /// NoC link width per cycle.
    pub noc_link_bytes_per_cycle: u32,
    /// Approximate cycles per NoC hop.
    pub noc_hop_cycles: u32,
    /// Number of NoCs.
    pub num_nocs: u32,
    /// Aggregate DRAM bandwidth, GB/s (for the timing model).
    pub dram_bandwidth_gbps: u32,
    /// NoC x of each logical worker column.
    pub worker_noc_x: &'static [u32],
    /// NoC y of each logical worker row.
    pub worker_noc_y: &'static [u32],
    /// NoC coordinate of each DRAM bank.
    pub dram_bank_noc: &'static [CoreCoord],
}

const fn cc(x: u32, y: u32) -> CoreCoord {
    CoreCoord { x, y }
}

static WORMHOLE_B0: ArchSpec = ArchSpec {
    arch: Arch::WormholeB0,
    name: "Wormhole B0 n150",
    noc_grid: cc(10, 12),
    worker_grid: cc(8, 8),
    clock_mhz: 1000,
    l1_size: 1464 * 1024,
    l1_unreserved_base: 0x19520,
    l1_alignment: 16,
    dram_alignment: 32,
    num_dram_banks: 12,
    dram_bank_size: 1 << 30,
    max_circular_buffers: 32,
    max_semaphores: 16,
    max_runtime_args: 341,
    noc_max_burst_bytes: 8192,
    noc_link_bytes_per_cycle: 32,
    noc_hop_cycles: 9,
    num_nocs: 2,
    dram_bandwidth_gbps: 288,
    worker_noc_x: &[1, 2, 3, 4, 6, 7, 8, 9],
    worker_noc_y: &[1, 2, 3, 4, 5, 7, 8, 9],
    dram_bank_noc: &[
        cc(0, 11),
        cc(0, 1),
        cc(0, 5),
        cc(0, 7),
        cc(5, 1),
        cc(5, 11),
        cc(5, 2),
        cc(5, 9),
        cc(5, 8),
        cc(5, 3),
        cc(5, 5),
        cc(5, 7),
    ],
};

static BLACKHOLE: ArchSpec = ArchSpec {
    arch: Arch::Blackhole,
    name: "Blackhole p150",
    noc_grid: cc(17, 12),
    worker_grid: cc(11, 10),
    clock_mhz: 1350,
    l1_size: 1536 * 1024,
    l1_unreserved_base: 0x1B200,
    l1_alignment: 16,
    dram_alignment: 64,
    num_dram_banks: 8,
    dram_bank_size: 4_278_190_080,
    max_circular_buffers: 64,
    max_semaphores: 16,
    max_runtime_args: 341,
    noc_max_burst_bytes: 16384,
    noc_link_bytes_per_cycle: 64,
    noc_hop_cycles: 9,
    num_nocs: 2,
    dram_bandwidth_gbps: 512,
    worker_noc_x: &[1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13],
    worker_noc_y: &[2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    dram_bank_noc: &[
        cc(0, 11),
        cc(0, 3),
        cc(0, 8),
        cc(0, 6),
        cc(9, 11),
        cc(9, 3),
        cc(9, 8),
        cc(9, 6),
    ],
};

impl Arch {
    /// Both architectures.
    pub const ALL: [Arch; 2] = [Arch::WormholeB0, Arch::Blackhole];

    /// From the `tt_arch` value (1, 2); `None` otherwise.
    pub const fn from_raw(raw: u32) -> Option<Arch> {
        match raw {
            1 => Some(Arch::WormholeB0),
            2 => Some(Arch::Blackhole),
            _ => None,
        }
    }

    /// The `tt_arch` value.
    pub const fn as_raw(self) -> u32 {
        self as u32
    }

    /// The constants of this architecture.
    pub fn spec(self) -> &'static ArchSpec {
        match self {
            Arch::WormholeB0 => &WORMHOLE_B0,
            Arch::Blackhole => &BLACKHOLE,
        }
    }

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::WormholeB0 => "wormhole_b0",
            Arch::Blackhole => "blackhole",
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ArchSpec {
    /// Number of usable workers.
    pub fn num_workers(&self) -> usize {
        self.worker_grid.x as usize * self.worker_grid.y as usize
    }

    /// Whether `logical` is inside the usable worker grid.
    pub fn is_worker(&self, logical: CoreCoord) -> bool {
        logical.x < self.worker_grid.x && logical.y < self.worker_grid.y
    }

    /// NoC coordinate of a logical worker (`worker_core_from_logical_core`).
    pub fn worker_noc(&self, logical: CoreCoord) -> Result<CoreCoord, CoordError> {
        if !self.is_worker(logical) {
            return Err(CoordError::OutsideGrid {
                core: logical,
                grid_x: self.worker_grid.x,
                grid_y: self.worker_grid.y,
                arch: self.arch.name(),
            });
        }
        Ok(cc(
            self.worker_noc_x[logical.x as usize],
            self.worker_noc_y[logical.y as usize],
        ))
    }

    /// NoC coordinate of DRAM bank `bank`.
    pub fn dram_bank_noc(&self, bank: u32) -> Result<CoreCoord, CoordError> {
        self.dram_bank_noc
            .get(bank as usize)
            .copied()
            .ok_or(CoordError::NoSuchDramBank {
                bank,
                num_banks: self.num_dram_banks,
                arch: self.arch.name(),
            })
    }

    /// Offset a kernel adds to addresses in DRAM bank `bank` (0 in this model; see module docs).
    pub fn dram_bank_offset(&self, _bank: u32) -> u64 {
        0
    }

    /// What is at NoC coordinate `noc`.
    pub fn noc_target(&self, noc: CoreCoord) -> NocTarget {
        let xs = self.worker_noc_x.iter().position(|&x| x == noc.x);
        let ys = self.worker_noc_y.iter().position(|&y| y == noc.y);
        if let (Some(x), Some(y)) = (xs, ys) {
            return NocTarget::Worker(cc(x as u32, y as u32));
        }
        match self.dram_bank_noc.iter().position(|&d| d == noc) {
            Some(b) => NocTarget::DramBank(b as u32),
            None => NocTarget::NotAWorker,
        }
    }

    /// Logical worker at NoC coordinate `noc`, if any.
    pub fn logical_from_noc(&self, noc: CoreCoord) -> Option<CoreCoord> {
        match self.noc_target(noc) {
            NocTarget::Worker(c) => Some(c),
            _ => None,
        }
    }

    /// Peak FPU throughput per core, FLOP/cycle/phase (one 32x32x32 tile matmul phase = 16 MVMUL).
    pub const fn fpu_flop_per_cycle(&self) -> u32 {
        4096
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_map_is_bijective() {
        for arch in Arch::ALL {
            let s = arch.spec();
            let mut seen = std::collections::HashSet::new();
            for y in 0..s.worker_grid.y {
                for x in 0..s.worker_grid.x {
                    let l = cc(x, y);
                    let n = s.worker_noc(l).unwrap();
                    assert!(n.x < s.noc_grid.x && n.y < s.noc_grid.y);
                    assert!(seen.insert(n), "{arch}: {n} used twice");
                    assert_eq!(s.noc_target(n), NocTarget::Worker(l));
                }
            }
            assert_eq!(seen.len(), s.num_workers());
            assert!(s.worker_noc(cc(s.worker_grid.x, 0)).is_err());
            assert!(s.worker_noc(cc(0, s.worker_grid.y)).is_err());
        }
    }

    #[test]
    fn dram_banks_unique_and_not_workers() {
        for arch in Arch::ALL {
            let s = arch.spec();
            assert_eq!(s.dram_bank_noc.len() as u32, s.num_dram_banks);
            for b in 0..s.num_dram_banks {
                let n = s.dram_bank_noc(b).unwrap();
                assert_eq!(s.noc_target(n), NocTarget::DramBank(b));
            }
            assert!(s.dram_bank_noc(s.num_dram_banks).is_err());
        }
    }

    #[test]
    fn known_points() {
        let wh = Arch::WormholeB0.spec();
        assert_eq!(wh.worker_noc(cc(0, 0)).unwrap(), cc(1, 1));
        assert_eq!(wh.worker_noc(cc(4, 5)).unwrap(), cc(6, 7));
        assert_eq!(wh.noc_target(cc(5, 6)), NocTarget::NotAWorker); // DRAM, not a bank endpoint
        assert_eq!(wh.noc_target(cc(1, 10)), NocTarget::NotAWorker); // dispatch row
        assert_eq!(wh.noc_target(cc(1, 0)), NocTarget::NotAWorker); // ethernet
        let bh = Arch::Blackhole.spec();
        assert_eq!(bh.worker_noc(cc(7, 0)).unwrap(), cc(10, 2));
        assert_eq!(bh.noc_target(cc(8, 5)), NocTarget::NotAWorker);
        assert_eq!(Arch::from_raw(2), Some(Arch::Blackhole));
        assert_eq!(Arch::from_raw(0), None);
    }
}
