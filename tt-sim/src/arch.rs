//! Per-architecture device parameters as the simulator models them.
//!
//! Addresses: the simulator keeps its own reserved L1 region (semaphores, runtime arguments) at
//! [`SIM_RESERVED_BASE`], above the lowest address Linux lets a process map (`vm.mmap_min_addr`, at most
//! 64 KiB on common distributions), and below the user region that starts at `l1_unreserved_base`.

pub use tt_formats::{CoreCoord, CoreRange};

/// Supported architectures (tt-formats' [`tt_formats::Arch`]).
pub type SimArch = tt_formats::Arch;

/// First address of the simulator-reserved L1 region (semaphores, runtime args). Nothing below is mapped.
pub const SIM_RESERVED_BASE: u32 = 0x1_0000;
/// Semaphores: 16 per core, 16 bytes apart (L1 alignment), same address on every core.
pub const SEMAPHORE_BASE: u32 = SIM_RESERVED_BASE;
/// Number of semaphores per core.
pub const NUM_SEMAPHORES: u32 = 16;
/// Bytes between two semaphores.
pub const SEMAPHORE_STRIDE: u32 = 16;
/// Runtime arguments: one slot per RISC (BRISC, NCRISC, compute), unique args then common args.
pub const RTA_BASE: u32 = SIM_RESERVED_BASE + 0x1000;
/// Maximum runtime args (unique + common) per kernel per core, as in TT-Metal.
pub const MAX_RUNTIME_ARGS: u32 = 341;
/// Bytes of one RISC's runtime-arg slot (unique area + common area).
pub const RTA_SLOT_BYTES: u32 = 2 * 0x580;
/// Offset of the common args inside a slot.
pub const CRTA_OFFSET_IN_SLOT: u32 = 0x580;
/// Number of RISC slots per core (BRISC, NCRISC, compute).
pub const NUM_RISC_SLOTS: u32 = 3;
/// End of the simulator-reserved region.
pub const SIM_RESERVED_END: u32 = RTA_BASE + NUM_RISC_SLOTS * RTA_SLOT_BYTES;
/// Highest L1 size of any supported arch; the address window covers `[SIM_RESERVED_BASE, MAX_L1_SIZE)`.
pub const MAX_L1_SIZE: u32 = 1536 * 1024;

/// Everything the simulator needs to know about one architecture.
#[derive(Debug, Clone)]
pub struct ArchParams {
    /// Which architecture.
    pub arch: SimArch,
    /// Worker grid (logical) width.
    pub grid_x: u32,
    /// Worker grid (logical) height.
    pub grid_y: u32,
    /// Clock in MHz.
    pub clock_mhz: u32,
    /// L1 bytes per worker core.
    pub l1_size: u32,
    /// First L1 address user allocations may use.
    pub l1_unreserved_base: u32,
    /// L1 alignment in bytes.
    pub l1_alignment: u32,
    /// DRAM alignment in bytes.
    pub dram_alignment: u32,
    /// Number of DRAM banks.
    pub num_dram_banks: u32,
    /// Bytes per DRAM bank.
    pub dram_bank_size: u64,
    /// CB indices per core.
    pub max_circular_buffers: u32,
    /// NoC x coordinate of each logical worker column.
    pub worker_noc_x: Vec<u32>,
    /// NoC y coordinate of each logical worker row.
    pub worker_noc_y: Vec<u32>,
    /// NoC coordinates of each DRAM bank.
    pub dram_noc: Vec<CoreCoord>,
    /// Maximum NoC burst in bytes (informational).
    pub noc_max_burst: u32,
}

impl ArchParams {
    /// Parameters of an architecture (from tt-formats' [`tt_formats::ArchSpec`]).
    pub fn new(arch: SimArch) -> ArchParams {
        let sp = arch.spec();
        ArchParams {
            arch,
            grid_x: sp.worker_grid.x,
            grid_y: sp.worker_grid.y,
            clock_mhz: sp.clock_mhz,
            l1_size: sp.l1_size,
            l1_unreserved_base: sp.l1_unreserved_base,
            l1_alignment: sp.l1_alignment,
            dram_alignment: sp.dram_alignment,
            num_dram_banks: sp.num_dram_banks,
            dram_bank_size: sp.dram_bank_size,
            max_circular_buffers: sp.max_circular_buffers,
            worker_noc_x: sp.worker_noc_x.to_vec(),
            worker_noc_y: sp.worker_noc_y.to_vec(),
            dram_noc: sp.dram_bank_noc.to_vec(),
            noc_max_burst: sp.noc_max_burst_bytes,
        }
    }

    /// Number of worker cores.
    pub fn num_workers(&self) -> usize {
        (self.grid_x * self.grid_y) as usize
    }

    /// Row-major index of a logical worker core, if it is on the grid.
    pub fn core_index(&self, c: CoreCoord) -> Option<usize> {
        (c.x < self.grid_x && c.y < self.grid_y).then(|| (c.y * self.grid_x + c.x) as usize)
    }

    /// Logical coordinates of the worker with row-major index `i`.
    pub fn core_at(&self, i: usize) -> CoreCoord {
        let i = i as u32;
        CoreCoord {
            x: i % self.grid_x,
            y: i / self.grid_x,
        }
    }

    /// NoC coordinates of a logical worker core.
    pub fn worker_noc(&self, c: CoreCoord) -> Option<CoreCoord> {
        let x = *self.worker_noc_x.get(c.x as usize)?;
        let y = *self.worker_noc_y.get(c.y as usize)?;
        Some(CoreCoord { x, y })
    }

    /// Logical coordinates of the worker at NoC coordinates (x, y), if it is a worker.
    pub fn noc_to_worker(&self, x: u32, y: u32) -> Option<CoreCoord> {
        let lx = self.worker_noc_x.iter().position(|&v| v == x)?;
        let ly = self.worker_noc_y.iter().position(|&v| v == y)?;
        Some(CoreCoord {
            x: lx as u32,
            y: ly as u32,
        })
    }

    /// DRAM bank at NoC coordinates (x, y), if any.
    pub fn noc_to_dram_bank(&self, x: u32, y: u32) -> Option<u32> {
        self.dram_noc
            .iter()
            .position(|c| c.x == x && c.y == y)
            .map(|b| b as u32)
    }

    /// The `tt_arch` code of the C ABI.
    pub fn tt_arch(&self) -> u32 {
        self.arch.as_raw()
    }

    /// Short name for messages.
    pub fn name(&self) -> &'static str {
        self.arch.spec().name
    }
}

/// Rounds `v` up to a multiple of `a` (a power of two or any positive number).
pub fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}
