//! The simulated device: L1 of every worker core, DRAM banks, allocators and buffers.

use std::collections::HashMap;

use crate::alloc::RangeAllocator;
use crate::arch::{ArchParams, CoreCoord, SimArch, align_up};
use crate::dram::DramBank;
use crate::error::{SimError, SimResult, invalid};
use crate::l1::L1;

/// Where a buffer lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferType {
    /// DRAM banks.
    Dram,
    /// Worker L1.
    L1,
}

/// How a buffer's pages are distributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferLayout {
    /// Page i on bank i % num_banks.
    Interleaved,
    /// Shards are row blocks of the tensor.
    HeightSharded,
    /// Shards are column blocks.
    WidthSharded,
    /// Shards are 2-D blocks.
    BlockSharded,
}

pub use tt_formats::{ShardOrientation, ShardSpec};

/// A buffer request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferConfig {
    /// Bytes; a multiple of `page_size`.
    pub size: u64,
    /// Bytes per page.
    pub page_size: u32,
    /// DRAM or L1.
    pub buffer_type: BufferType,
    /// Interleaved or sharded.
    pub layout: BufferLayout,
    /// Required iff the layout is sharded.
    pub shard: Option<ShardSpec>,
}

/// Handle of a buffer inside one [`SimDevice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferId(pub u64);

/// Where one page of a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageLoc {
    Dram { bank: u32, addr: u64 },
    L1 { core: usize, addr: u32 },
}

#[derive(Debug, Clone)]
pub(crate) struct Buffer {
    pub cfg: BufferConfig,
    pub address: u64,
    pub aligned_page: u64,
    pub num_pages: u64,
    /// For sharded buffers: location of every page.
    pub shard_map: Option<Vec<PageLoc>>,
    /// Cores of a sharded buffer (row-major indices), in shard order.
    pub shard_cores: Vec<usize>,
}

/// The device state (everything a program run touches).
pub struct DeviceState {
    pub(crate) arch: ArchParams,
    pub(crate) l1: Vec<L1>,
    pub(crate) dram: Vec<DramBank>,
    pub(crate) dram_alloc: RangeAllocator,
    pub(crate) l1_alloc: RangeAllocator,
    pub(crate) buffers: HashMap<u64, Buffer>,
    next_buffer: u64,
}

/// A simulated Tenstorrent device.
pub struct SimDevice {
    pub(crate) st: DeviceState,
}

/// Summary of a device, mirroring `tt_device_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Architecture.
    pub arch: SimArch,
    /// Worker grid width.
    pub grid_x: u32,
    /// Worker grid height.
    pub grid_y: u32,
    /// Clock in MHz.
    pub clock_mhz: u32,
    /// L1 bytes per core.
    pub l1_size: u32,
    /// First user L1 address.
    pub l1_unreserved_base: u32,
    /// L1 alignment.
    pub l1_alignment: u32,
    /// DRAM alignment.
    pub dram_alignment: u32,
    /// DRAM banks.
    pub num_dram_banks: u32,
    /// Bytes per DRAM bank.
    pub dram_bank_size: u64,
    /// CB indices per core.
    pub max_circular_buffers: u32,
    /// Semaphores per core.
    pub max_semaphores: u32,
    /// Runtime args per kernel per core.
    pub max_runtime_args: u32,
}

impl SimDevice {
    /// Opens a simulated device of the given architecture.
    pub fn open(arch: SimArch) -> SimResult<SimDevice> {
        let a = ArchParams::new(arch);
        let mut l1 = Vec::with_capacity(a.num_workers());
        for _ in 0..a.num_workers() {
            l1.push(L1::new(a.l1_size)?);
        }
        let dram = (0..a.num_dram_banks).map(|_| DramBank::default()).collect();
        // DRAM bank offset 0 is kept unused so that a zero address is never a valid buffer.
        let dram_alloc = RangeAllocator::new(a.dram_alignment as u64 * 32, a.dram_bank_size, false);
        let l1_alloc = RangeAllocator::new(a.l1_unreserved_base as u64, a.l1_size as u64, true);
        Ok(SimDevice {
            st: DeviceState {
                arch: a,
                l1,
                dram,
                dram_alloc,
                l1_alloc,
                buffers: HashMap::new(),
                next_buffer: 1,
            },
        })
    }

    /// Architecture parameters.
    pub fn arch(&self) -> &ArchParams {
        &self.st.arch
    }

    /// Device summary.
    pub fn info(&self) -> DeviceInfo {
        let a = &self.st.arch;
        DeviceInfo {
            arch: a.arch,
            grid_x: a.grid_x,
            grid_y: a.grid_y,
            clock_mhz: a.clock_mhz,
            l1_size: a.l1_size,
            l1_unreserved_base: a.l1_unreserved_base,
            l1_alignment: a.l1_alignment,
            dram_alignment: a.dram_alignment,
            num_dram_banks: a.num_dram_banks,
            dram_bank_size: a.dram_bank_size,
            max_circular_buffers: a.max_circular_buffers,
            max_semaphores: crate::arch::NUM_SEMAPHORES,
            max_runtime_args: crate::arch::MAX_RUNTIME_ARGS,
        }
    }

    /// NoC coordinates of a logical worker core.
    pub fn worker_core_from_logical(&self, c: CoreCoord) -> SimResult<CoreCoord> {
        self.st.arch.worker_noc(c).ok_or_else(|| {
            SimError::InvalidArgument(format!(
                "core {c} is outside the {}x{} worker grid of {}",
                self.st.arch.grid_x,
                self.st.arch.grid_y,
                self.st.arch.name()
            ))
        })
    }

    /// NoC coordinates of DRAM bank `bank`.
    pub fn dram_bank_noc_coord(&self, bank: u32) -> SimResult<CoreCoord> {
        self.st
            .arch
            .dram_noc
            .get(bank as usize)
            .copied()
            .ok_or_else(|| {
                SimError::InvalidArgument(format!(
                    "DRAM bank {bank} does not exist ({} has {} banks)",
                    self.st.arch.name(),
                    self.st.arch.num_dram_banks
                ))
            })
    }

    /// Allocates a buffer.
    pub fn create_buffer(&mut self, cfg: &BufferConfig) -> SimResult<BufferId> {
        let st = &mut self.st;
        let a = &st.arch;
        if cfg.page_size == 0 {
            return invalid(
                "buffer page_size is 0: give the bytes of one page (e.g. 2048 for a bf16 tile)",
            );
        }
        if cfg.size == 0 || !cfg.size.is_multiple_of(cfg.page_size as u64) {
            return invalid(format!(
                "buffer size {} is not a positive multiple of its page size {}",
                cfg.size, cfg.page_size
            ));
        }
        let num_pages = cfg.size / cfg.page_size as u64;
        let sharded = cfg.layout != BufferLayout::Interleaved;
        if sharded != cfg.shard.is_some() {
            return invalid(if sharded {
                "a sharded buffer needs a shard spec"
            } else {
                "an interleaved buffer must not have a shard spec"
            });
        }
        if sharded && cfg.buffer_type == BufferType::Dram {
            return Err(SimError::Unsupported(
                "DRAM-sharded buffers are not supported by the simulator; use DRAM interleaved or L1 sharded".into(),
            ));
        }
        let (align, nbanks) = match cfg.buffer_type {
            BufferType::Dram => (a.dram_alignment as u64, a.num_dram_banks as u64),
            BufferType::L1 => (a.l1_alignment as u64, a.num_workers() as u64),
        };
        let aligned_page = align_up(cfg.page_size as u64, align);
        let mut shard_map = None;
        let mut shard_cores = Vec::new();
        let per_bank = if let Some(spec) = &cfg.shard {
            let (map, cores, per_core) = shard_layout(a, cfg, spec, num_pages, aligned_page)?;
            shard_map = Some(map);
            shard_cores = cores;
            per_core
        } else {
            num_pages.div_ceil(nbanks) * aligned_page
        };
        let alloc = match cfg.buffer_type {
            BufferType::Dram => &mut st.dram_alloc,
            BufferType::L1 => &mut st.l1_alloc,
        };
        let Some(addr) = alloc.alloc(per_bank, align) else {
            let (free, largest) = alloc.free_stats();
            let what = match cfg.buffer_type {
                BufferType::Dram => "DRAM bank",
                BufferType::L1 => "L1 core",
            };
            return Err(SimError::OutOfMemory(format!(
                "cannot allocate {per_bank} bytes per {what} for a {}-byte buffer: {free} bytes free per {what}, \
                 largest free block {largest}; free other buffers or use a smaller buffer",
                cfg.size
            )));
        };
        // Fix up shard map addresses (computed relative to 0).
        if let Some(m) = &mut shard_map {
            for p in m.iter_mut() {
                if let PageLoc::L1 { addr: a2, .. } = p {
                    *a2 += addr as u32;
                }
            }
        }
        let id = st.next_buffer;
        st.next_buffer += 1;
        st.buffers.insert(
            id,
            Buffer {
                cfg: cfg.clone(),
                address: addr,
                aligned_page,
                num_pages,
                shard_map,
                shard_cores,
            },
        );
        Ok(BufferId(id))
    }

    pub(crate) fn buffer(&self, id: BufferId) -> SimResult<&Buffer> {
        self.st.buffers.get(&id.0).ok_or_else(|| {
            SimError::InvalidArgument(format!("buffer {} does not exist (destroyed?)", id.0))
        })
    }

    /// Frees a buffer.
    pub fn destroy_buffer(&mut self, id: BufferId) -> SimResult<()> {
        let b = self.st.buffers.remove(&id.0).ok_or_else(|| {
            SimError::InvalidArgument(format!("buffer {} does not exist (destroyed twice?)", id.0))
        })?;
        let ok = match b.cfg.buffer_type {
            BufferType::Dram => self.st.dram_alloc.free(b.address),
            BufferType::L1 => self.st.l1_alloc.free(b.address),
        };
        if !ok {
            return Err(SimError::Internal(format!(
                "buffer {} was not in the allocator",
                id.0
            )));
        }
        Ok(())
    }

    /// Number of live buffers.
    pub fn num_buffers(&self) -> usize {
        self.st.buffers.len()
    }

    /// Device address of a buffer (offset in each DRAM bank, or L1 address on every core).
    pub fn buffer_address(&self, id: BufferId) -> SimResult<u64> {
        Ok(self.buffer(id)?.address)
    }

    /// Where page `p` of a buffer lives.
    pub(crate) fn page_loc(st: &DeviceState, b: &Buffer, p: u64) -> PageLoc {
        if let Some(m) = &b.shard_map {
            return m[p as usize];
        }
        match b.cfg.buffer_type {
            BufferType::Dram => {
                let nb = st.arch.num_dram_banks as u64;
                PageLoc::Dram {
                    bank: (p % nb) as u32,
                    addr: b.address + (p / nb) * b.aligned_page,
                }
            }
            BufferType::L1 => {
                let nb = st.arch.num_workers() as u64;
                PageLoc::L1 {
                    core: (p % nb) as usize,
                    addr: (b.address + (p / nb) * b.aligned_page) as u32,
                }
            }
        }
    }

    fn check_range(b: &Buffer, offset: u64, len: u64) -> SimResult<()> {
        if offset.checked_add(len).is_none_or(|e| e > b.cfg.size) {
            return invalid(format!(
                "range {offset}..{} is outside the {}-byte buffer",
                offset.saturating_add(len),
                b.cfg.size
            ));
        }
        Ok(())
    }

    /// Writes host data (page order of the whole tensor) at byte `offset`.
    pub fn write_buffer(&mut self, id: BufferId, offset: u64, data: &[u8]) -> SimResult<()> {
        let b = self.buffer(id)?.clone();
        Self::check_range(&b, offset, data.len() as u64)?;
        let ps = b.cfg.page_size as u64;
        let mut pos = 0u64;
        while pos < data.len() as u64 {
            let abs = offset + pos;
            let page = abs / ps;
            let in_page = abs % ps;
            let n = (ps - in_page).min(data.len() as u64 - pos);
            let chunk = &data[pos as usize..(pos + n) as usize];
            match Self::page_loc(&self.st, &b, page) {
                PageLoc::Dram { bank, addr } => {
                    self.st.dram[bank as usize].write(addr + in_page, chunk)
                }
                PageLoc::L1 { core, addr } => self.st.l1[core].write(addr + in_page as u32, chunk),
            }
            pos += n;
        }
        Ok(())
    }

    /// Reads into `out` from byte `offset` (page order of the whole tensor).
    pub fn read_buffer(&self, id: BufferId, offset: u64, out: &mut [u8]) -> SimResult<()> {
        let b = self.buffer(id)?;
        Self::check_range(b, offset, out.len() as u64)?;
        let ps = b.cfg.page_size as u64;
        let mut pos = 0u64;
        let len = out.len() as u64;
        while pos < len {
            let abs = offset + pos;
            let page = abs / ps;
            let in_page = abs % ps;
            let n = (ps - in_page).min(len - pos);
            let chunk = &mut out[pos as usize..(pos + n) as usize];
            match Self::page_loc(&self.st, b, page) {
                PageLoc::Dram { bank, addr } => {
                    self.st.dram[bank as usize].read(addr + in_page, chunk)
                }
                PageLoc::L1 { core, addr } => self.st.l1[core].read(addr + in_page as u32, chunk),
            }
            pos += n;
        }
        Ok(())
    }
}

/// Computes the page map of a sharded buffer (tt-formats' [`tt_formats::ShardedPageMap`], the rule
/// tt-safe uses too); addresses are relative to the buffer base.
fn shard_layout(
    a: &ArchParams,
    cfg: &BufferConfig,
    spec: &ShardSpec,
    num_pages: u64,
    aligned_page: u64,
) -> SimResult<(Vec<PageLoc>, Vec<usize>, u64)> {
    let layout = match cfg.layout {
        BufferLayout::HeightSharded => tt_formats::ShardLayout::Height,
        BufferLayout::WidthSharded => tt_formats::ShardLayout::Width,
        BufferLayout::BlockSharded => tt_formats::ShardLayout::Block,
        BufferLayout::Interleaved => {
            return invalid("internal: interleaved layout has no shard map");
        }
    };
    let map = tt_formats::ShardedPageMap::new(layout, spec)
        .map_err(|e| SimError::InvalidArgument(format!("shard spec: {e}")))?;
    if map.num_pages() as u64 != num_pages {
        return invalid(format!(
            "shard spec describes {} pages but the buffer has {num_pages} (size / page_size)",
            map.num_pages()
        ));
    }
    let mut cores = Vec::new();
    for &c in map.cores() {
        let i = a.core_index(c).ok_or_else(|| {
            SimError::InvalidArgument(format!(
                "shard core {c} is outside the {}x{} grid",
                a.grid_x, a.grid_y
            ))
        })?;
        cores.push(i);
    }
    let mut locs = Vec::with_capacity(num_pages as usize);
    for p in 0..num_pages as usize {
        let (ci, slot) = map
            .locate(p)
            .ok_or_else(|| SimError::Internal(format!("shard map has no page {p}")))?;
        locs.push(PageLoc::L1 {
            core: cores[ci],
            addr: (slot as u64 * aligned_page) as u32,
        });
    }
    Ok((locs, cores, map.pages_per_shard() as u64 * aligned_page))
}
