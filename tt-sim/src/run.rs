//! What the kernel API calls do: circular buffers, NoC transactions, semaphores and the checks.
//!
//! Everything here is safe Rust over [`RunState`] (shared by all RISCs of a run) and [`RiscCtx`] (one
//! RISC). The FFI glue in `kernel_host` calls these methods; a method returns `Ok(Some(v))` when
//! the call completed, `Ok(None)` when it must block (the reason is in `RiscCtx::blocked`), or an
//! error naming the rule the kernel broke.
//!
//! NoC semantics: a transaction is checked when issued and queued on the issuing RISC; it is
//! delivered (data copied, semaphore incremented) when that RISC calls a barrier, blocks (yields to
//! the scheduler) or exits. A kernel that uses data without the barrier therefore sees stale data,
//! and the common cases are reported: pushing CB pages that an outstanding read still targets,
//! popping CB pages an outstanding write still reads, and exiting with transactions outstanding.
//!
//! Timing hook: every completed call passes through [`RiscCtx::complete`]; a cycle model (issue #3)
//! can charge each call there and stamp blocking resumes with the producer's clock.

use std::collections::VecDeque;

use crate::arch::{CoreCoord, NUM_SEMAPHORES, SEMAPHORE_BASE, SEMAPHORE_STRIDE, SIM_RESERVED_BASE};
use crate::compute::ComputeState;
use crate::device::DeviceState;
use crate::error::{SimError, SimResult};
use crate::program::Risc;

/// One circular buffer index on one core.
#[derive(Debug, Clone)]
pub(crate) struct CbState {
    pub addr: u32,
    pub size: u32,
    pub page_size: u32,
    pub num_pages: u32,
    pub data_format: u32,
    pub received: u16,
    pub acked: u16,
}

impl CbState {
    fn used(&self) -> u32 {
        self.received.wrapping_sub(self.acked) as u32
    }
}

/// Per-core state of a run.
#[derive(Debug, Default)]
pub(crate) struct CoreRun {
    pub cbs: Vec<Option<CbState>>,
    /// Semaphore ids configured on this core.
    pub sem_mask: u32,
}

/// State shared by every RISC of a run.
pub(crate) struct RunState {
    pub dev: *mut DeviceState,
    /// Indexed by core (row-major); `None` for cores not in the program.
    pub cores: Vec<Option<CoreRun>>,
    pub fault: Option<SimError>,
}

/// A RISC's local view of one CB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct CbLocal {
    pub rd_ptr: u32,
    pub wr_ptr: u32,
    /// Pages guaranteed free by reserves and not yet pushed.
    pub reserved: u32,
    /// Pages guaranteed present by waits and not yet popped.
    pub waited: u32,
    /// Next pack position (tiles) for in-order pack_tile.
    pub pack_offset: u32,
}

/// One end of a NoC transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    L1 { core: usize, addr: u32 },
    Dram { bank: u32, addr: u64 },
}

#[derive(Debug, Clone)]
pub(crate) enum TxnKind {
    Read { src: Endpoint, dst: u32 },
    Write { src: u32, dsts: Vec<Endpoint> },
    SemInc { dst: Endpoint, incr: u32 },
    Inline { dst: Endpoint, val: u32, be: u32 },
}

#[derive(Debug, Clone)]
pub(crate) struct Txn {
    pub kind: TxnKind,
    pub size: u32,
    pub call: &'static str,
    pub line: u32,
}

/// One RISC of one core during a run.
pub(crate) struct RiscCtx {
    pub core: usize,
    pub coord: CoreCoord,
    pub risc: Risc,
    pub kernel: String,
    pub state: *mut RunState,
    pub yielder: *const corosensei::Yielder<(), ()>,
    /// Completed calls; a resume that does not change it made no progress.
    pub steps: u64,
    /// What the RISC is blocked in, for deadlock reports.
    pub blocked: Option<String>,
    pub outstanding: VecDeque<Txn>,
    pub cb_local: Vec<CbLocal>,
    pub done: bool,
    pub faulted: bool,
    pub compute: Option<ComputeState>,
}

fn overlaps(a: u32, alen: u32, b: u32, blen: u32) -> bool {
    (a as u64) < b as u64 + blen as u64 && (b as u64) < a as u64 + alen as u64
}

impl RiscCtx {
    /// "core (x,y) NCRISC kernel 'reader'".
    pub fn who(&self) -> String {
        format!(
            "core ({},{}) {} kernel '{}'",
            self.coord.x,
            self.coord.y,
            self.risc.name(),
            self.kernel
        )
    }

    /// A kernel fault naming this RISC, the call and the line.
    pub fn fault(&self, call: &str, line: u32, msg: impl AsRef<str>) -> SimError {
        let at = if line > 0 {
            format!(" at line {line}")
        } else {
            String::new()
        };
        SimError::KernelFault(format!("{}: {call}{at}: {}", self.who(), msg.as_ref()))
    }

    /// Records a completed call (the timing model's hook point).
    pub fn complete(&mut self) {
        self.steps += 1;
        self.blocked = None;
    }

    fn dev<'a>(&self, st: &'a mut RunState) -> &'a mut DeviceState {
        // SAFETY: `dev` points at the device the scheduler borrowed mutably for the whole run; only the
        // single scheduler thread touches it and no other reference to it is live during a hook.
        unsafe { &mut *st.dev }
    }

    fn cb_state<'a>(
        &self,
        st: &'a mut RunState,
        cb: i32,
        call: &str,
        line: u32,
    ) -> SimResult<&'a mut CbState> {
        let who = self.who();
        let core = st.cores.get_mut(self.core).and_then(|c| c.as_mut());
        let cbs = core.map(|c| &mut c.cbs);
        match cbs
            .and_then(|v| {
                if cb >= 0 {
                    v.get_mut(cb as usize)
                } else {
                    None
                }
            })
            .and_then(|c| c.as_mut())
        {
            Some(c) => Ok(c),
            None => Err(SimError::KernelFault(format!(
                "{who}: {call}(cb={cb}) at line {line}: CB {cb} is not configured on this core (add a circular \
                 buffer with this index to the program)"
            ))),
        }
    }

    fn check_pages(&self, cb: &CbState, n: i32, call: &str, line: u32) -> SimResult<u32> {
        if n <= 0 {
            return Err(self.fault(call, line, format!("page count {n} must be positive")));
        }
        if n as u32 > cb.num_pages {
            return Err(self.fault(
                call,
                line,
                format!(
                    "{n} pages can never fit: the CB holds {} pages of {} bytes",
                    cb.num_pages, cb.page_size
                ),
            ));
        }
        Ok(n as u32)
    }

    pub fn cb_reserve_back(
        &mut self,
        st: &mut RunState,
        cb: i32,
        n: i32,
        line: u32,
    ) -> SimResult<Option<()>> {
        let c = self.cb_state(st, cb, "cb_reserve_back", line)?.clone();
        let n = self.check_pages(&c, n, "cb_reserve_back", line)?;
        let free = c.num_pages - c.used().min(c.num_pages);
        if free >= n {
            let l = &mut self.cb_local[cb as usize];
            l.reserved = l.reserved.max(n);
            return Ok(Some(()));
        }
        self.blocked = Some(format!(
            "blocked in cb_reserve_back(cb={cb}, {n} pages) at line {line}: {free} free of {}",
            c.num_pages
        ));
        Ok(None)
    }

    pub fn cb_push_back(&mut self, st: &mut RunState, cb: i32, n: i32, line: u32) -> SimResult<()> {
        let c = self.cb_state(st, cb, "cb_push_back", line)?.clone();
        let n = self.check_pages(&c, n, "cb_push_back", line)?;
        let l = self.cb_local[cb as usize];
        if n > l.reserved {
            return Err(self.fault(
                "cb_push_back",
                line,
                format!("pushes {n} pages into CB {cb} but only {} were reserved (cb_reserve_back first)", l.reserved),
            ));
        }
        let bytes = n * c.page_size;
        if l.wr_ptr as u64 + bytes as u64 > c.addr as u64 + c.size as u64 {
            return Err(self.fault(
                "cb_push_back",
                line,
                format!(
                    "{n} pages at write pointer {:#x} straddle the end of CB {cb} ({:#x}..{:#x}); make the ring a \
                     multiple of the chunk size",
                    l.wr_ptr,
                    c.addr,
                    c.addr + c.size
                ),
            ));
        }
        if let Some(t) = self.outstanding.iter().find(|t| match &t.kind {
            TxnKind::Read { dst, .. } => overlaps(*dst, t.size, l.wr_ptr, bytes),
            _ => false,
        }) {
            return Err(self.fault(
                "cb_push_back",
                line,
                format!(
                    "pushes CB {cb} pages that {} (line {}) is still writing: call noc_async_read_barrier() before \
                     cb_push_back",
                    t.call, t.line
                ),
            ));
        }
        let cs = self.cb_state(st, cb, "cb_push_back", line)?;
        cs.received = cs.received.wrapping_add(n as u16);
        let l = &mut self.cb_local[cb as usize];
        l.reserved -= n;
        l.wr_ptr += bytes;
        if l.wr_ptr >= c.addr + c.size {
            l.wr_ptr = c.addr;
        }
        l.pack_offset = 0;
        Ok(())
    }

    pub fn cb_wait_front(
        &mut self,
        st: &mut RunState,
        cb: i32,
        n: i32,
        line: u32,
    ) -> SimResult<Option<()>> {
        let c = self.cb_state(st, cb, "cb_wait_front", line)?.clone();
        let n = self.check_pages(&c, n, "cb_wait_front", line)?;
        let avail = c.used();
        if avail >= n {
            let l = &mut self.cb_local[cb as usize];
            l.waited = l.waited.max(n);
            return Ok(Some(()));
        }
        self.blocked = Some(format!(
            "blocked in cb_wait_front(cb={cb}, {n} pages) at line {line}: {avail} available"
        ));
        Ok(None)
    }

    pub fn cb_pop_front(&mut self, st: &mut RunState, cb: i32, n: i32, line: u32) -> SimResult<()> {
        let c = self.cb_state(st, cb, "cb_pop_front", line)?.clone();
        let n = self.check_pages(&c, n, "cb_pop_front", line)?;
        let l = self.cb_local[cb as usize];
        if n > l.waited {
            return Err(self.fault(
                "cb_pop_front",
                line,
                format!(
                    "pops {n} pages from CB {cb} but only waited for {} (cb_wait_front first)",
                    l.waited
                ),
            ));
        }
        let bytes = n * c.page_size;
        if l.rd_ptr as u64 + bytes as u64 > c.addr as u64 + c.size as u64 {
            return Err(self.fault(
                "cb_pop_front",
                line,
                format!(
                    "{n} pages at read pointer {:#x} straddle the end of CB {cb} ({:#x}..{:#x})",
                    l.rd_ptr,
                    c.addr,
                    c.addr + c.size
                ),
            ));
        }
        if let Some(t) = self.outstanding.iter().find(|t| match &t.kind {
            TxnKind::Write { src, .. } => overlaps(*src, t.size, l.rd_ptr, bytes),
            _ => false,
        }) {
            return Err(self.fault(
                "cb_pop_front",
                line,
                format!(
                    "pops CB {cb} pages that {} (line {}) is still reading: call noc_async_write_barrier() (or \
                     noc_async_writes_flushed()) before cb_pop_front",
                    t.call, t.line
                ),
            ));
        }
        let cs = self.cb_state(st, cb, "cb_pop_front", line)?;
        cs.acked = cs.acked.wrapping_add(n as u16);
        let l = &mut self.cb_local[cb as usize];
        l.waited -= n;
        l.rd_ptr += bytes;
        if l.rd_ptr >= c.addr + c.size {
            l.rd_ptr = c.addr;
        }
        Ok(())
    }

    pub fn cb_ptr(&mut self, st: &mut RunState, cb: i32, write: bool, line: u32) -> SimResult<u32> {
        let call = if write {
            "get_write_ptr"
        } else {
            "get_read_ptr"
        };
        self.cb_state(st, cb, call, line)?;
        let l = self.cb_local[cb as usize];
        Ok(if write { l.wr_ptr } else { l.rd_ptr })
    }

    pub fn cb_query(
        &mut self,
        st: &mut RunState,
        cb: i32,
        n: i32,
        front: bool,
        line: u32,
    ) -> SimResult<bool> {
        let call = if front {
            "cb_pages_available_at_front"
        } else {
            "cb_pages_reservable_at_back"
        };
        let c = self.cb_state(st, cb, call, line)?.clone();
        let n = self.check_pages(&c, n, call, line)?;
        let used = c.used().min(c.num_pages);
        let ok = if front {
            used >= n
        } else {
            c.num_pages - used >= n
        };
        if ok {
            let l = &mut self.cb_local[cb as usize];
            if front {
                l.waited = l.waited.max(n);
            } else {
                l.reserved = l.reserved.max(n);
            }
        }
        Ok(ok)
    }

    // ---------------------------------------------------------------- NoC

    /// Checks a local L1 range of the issuing core.
    fn check_local(
        &self,
        st: &mut RunState,
        addr: u32,
        size: u32,
        written: bool,
        call: &str,
        line: u32,
    ) -> SimResult<()> {
        let a = &self.dev(st).arch;
        let end = addr as u64 + size as u64;
        if addr < SIM_RESERVED_BASE || end > a.l1_size as u64 {
            return Err(self.fault(
                call,
                line,
                format!("local L1 range {addr:#x}..{end:#x} is outside L1 ({SIM_RESERVED_BASE:#x}..{:#x})", a.l1_size),
            ));
        }
        if written && !writable(a.l1_unreserved_base, addr, size) {
            return Err(self.fault(
                call,
                line,
                format!(
                    "writes local L1 {addr:#x}..{end:#x}, inside the firmware-reserved region (user L1 starts at {:#x})",
                    a.l1_unreserved_base
                ),
            ));
        }
        Ok(())
    }

    /// Decodes and checks a unicast NoC address.
    fn resolve(
        &self,
        st: &mut RunState,
        noc_addr: u64,
        size: u32,
        written: bool,
        call: &str,
        line: u32,
    ) -> SimResult<Endpoint> {
        let d = tt_formats::NocAddr::decode(noc_addr);
        let a = &self.dev(st).arch;
        if let Some(c) = a.noc_to_worker(d.x, d.y) {
            let core = a
                .core_index(c)
                .ok_or_else(|| SimError::Internal("worker without index".into()))?;
            let end = d.addr + size as u64;
            if d.addr < SIM_RESERVED_BASE as u64 || end > a.l1_size as u64 {
                return Err(self.fault(
                    call,
                    line,
                    format!(
                        "NoC address {noc_addr:#x} -> core ({},{}) L1 {:#x}..{end:#x} is out of range (L1 is {:#x} bytes)",
                        d.x, d.y, d.addr, a.l1_size
                    ),
                ));
            }
            if written && !writable(a.l1_unreserved_base, d.addr as u32, size) {
                return Err(self.fault(
                    call,
                    line,
                    format!(
                        "NoC write to core ({},{}) L1 {:#x}..{end:#x} lands in the firmware-reserved region (user L1 \
                         starts at {:#x}; only semaphores may be written below it)",
                        d.x, d.y, d.addr, a.l1_unreserved_base
                    ),
                ));
            }
            return Ok(Endpoint::L1 {
                core,
                addr: d.addr as u32,
            });
        }
        if let Some(bank) = a.noc_to_dram_bank(d.x, d.y) {
            let end = d.addr + size as u64;
            if end > a.dram_bank_size {
                return Err(self.fault(
                    call,
                    line,
                    format!(
                        "NoC address {noc_addr:#x} -> DRAM bank {bank} {:#x}..{end:#x} is past the bank's end ({:#x})",
                        d.addr, a.dram_bank_size
                    ),
                ));
            }
            return Ok(Endpoint::Dram { bank, addr: d.addr });
        }
        Err(self.fault(
            call,
            line,
            format!(
                "NoC address {noc_addr:#x} targets NoC coordinates ({},{}), which are neither a worker core nor a DRAM \
                 bank of {} (use get_noc_addr with coordinates from worker_core_from_logical / an address generator)",
                d.x,
                d.y,
                a.name()
            ),
        ))
    }

    fn check_align(
        &self,
        st: &mut RunState,
        local: u32,
        remote: &Endpoint,
        reading_dram: bool,
        call: &str,
        line: u32,
    ) -> SimResult<()> {
        let a = &self.dev(st).arch;
        let (ra, al) = match remote {
            Endpoint::L1 { addr, .. } => (*addr as u64, 16u64),
            Endpoint::Dram { addr, .. } => (
                *addr,
                if reading_dram {
                    a.dram_alignment as u64
                } else {
                    16
                },
            ),
        };
        if (local as u64 % al) != (ra % al) {
            return Err(self.fault(
                call,
                line,
                format!(
                    "unaligned transfer: local L1 address {local:#x} and remote address {ra:#x} must agree modulo {al}"
                ),
            ));
        }
        Ok(())
    }

    fn check_size(&self, size: u32, call: &'static str, line: u32) -> SimResult<()> {
        if size == 0 {
            return Err(self.fault(call, line, "zero-length NoC transfer"));
        }
        Ok(())
    }

    pub fn noc_read(
        &mut self,
        st: &mut RunState,
        src: u64,
        dst: u32,
        size: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_async_read";
        self.check_size(size, call, line)?;
        let ep = self.resolve(st, src, size, false, call, line)?;
        self.check_local(st, dst, size, true, call, line)?;
        self.check_align(
            st,
            dst,
            &ep,
            matches!(ep, Endpoint::Dram { .. }),
            call,
            line,
        )?;
        self.outstanding.push_back(Txn {
            kind: TxnKind::Read { src: ep, dst },
            size,
            call,
            line,
        });
        Ok(())
    }

    pub fn noc_write(
        &mut self,
        st: &mut RunState,
        src: u32,
        dst: u64,
        size: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_async_write";
        self.check_size(size, call, line)?;
        let ep = self.resolve(st, dst, size, true, call, line)?;
        self.check_local(st, src, size, false, call, line)?;
        self.check_align(st, src, &ep, false, call, line)?;
        self.outstanding.push_back(Txn {
            kind: TxnKind::Write {
                src,
                dsts: vec![ep],
            },
            size,
            call,
            line,
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn noc_write_mcast(
        &mut self,
        st: &mut RunState,
        src: u32,
        dst: u64,
        size: u32,
        num_dests: u32,
        flags: u32,
        noc: u32,
        line: u32,
    ) -> SimResult<()> {
        let loopback = flags & 1 != 0;
        let call: &'static str = match (size == 4, loopback) {
            (_, true) => "noc_async_write_multicast_loopback_src",
            _ => "noc_async_write_multicast",
        };
        self.check_size(size, call, line)?;
        self.check_local(st, src, size, false, call, line)?;
        let m = tt_formats::NocMcastAddr::decode(dst);
        let (s, e) = (m.start, m.end);
        let inverted = if noc == 0 {
            s.x > e.x || s.y > e.y
        } else {
            s.x < e.x || s.y < e.y
        };
        if inverted {
            return Err(self.fault(
                call,
                line,
                format!(
                    "multicast rectangle ({},{})..({},{}) is inverted for NoC {noc} (NoC 0 needs start <= end, NoC 1 \
                     takes start and end swapped)",
                    s.x, s.y, e.x, e.y
                ),
            ));
        }
        let (lo, hi) = if noc == 0 { (s, e) } else { (e, s) };
        let me = self.core;
        let mut dsts = Vec::new();
        let mut includes_self = false;
        {
            let a = &self.dev(st).arch;
            // Corners must be Tensix workers; the rectangle may span DRAM/Ethernet/PCIe rows and
            // columns between them, which the NoC skips (multicast reaches Tensix nodes only).
            for (corner, c) in [("start", lo), ("end", hi)] {
                if a.noc_to_worker(c.x, c.y).is_none() {
                    return Err(self.fault(
                        call,
                        line,
                        format!(
                            "multicast rectangle ({},{})..({},{}) has its {corner} corner at NoC ({},{}), which is \
                             not a worker core; both corners must be workers of the grid",
                            lo.x, lo.y, hi.x, hi.y, c.x, c.y
                        ),
                    ));
                }
            }
            for (ly, &ny) in a.worker_noc_y.iter().enumerate() {
                if ny < lo.y || ny > hi.y {
                    continue;
                }
                for (lx, &nx) in a.worker_noc_x.iter().enumerate() {
                    if nx < lo.x || nx > hi.x {
                        continue;
                    }
                    let ci = ly * a.grid_x as usize + lx;
                    if ci == me {
                        includes_self = true;
                        if !loopback {
                            continue;
                        }
                    }
                    dsts.push(ci);
                }
            }
        }
        if loopback && !includes_self {
            return Err(self.fault(
                call,
                line,
                "loopback_src multicast whose rectangle does not include the sender",
            ));
        }
        if dsts.len() as u32 != num_dests {
            return Err(self.fault(
                call,
                line,
                format!(
                    "num_dests is {num_dests} but the rectangle ({},{})..({},{}) holds {} destination worker cores{} \
                     (non-worker nodes inside the rectangle do not count)",
                    lo.x,
                    lo.y,
                    hi.x,
                    hi.y,
                    dsts.len(),
                    if loopback { " (sender included)" } else { " (sender excluded)" }
                ),
            ));
        }
        let mut eps = Vec::with_capacity(dsts.len());
        for ci in dsts {
            let nx = {
                let a = &self.dev(st).arch;
                let c = a.core_at(ci);
                a.worker_noc(c)
                    .ok_or_else(|| SimError::Internal("worker without NoC coords".into()))?
            };
            let ep = self.resolve(
                st,
                tt_formats::noc::noc_addr(nx.x, nx.y, m.addr),
                size,
                true,
                call,
                line,
            )?;
            self.check_align(st, src, &ep, false, call, line)?;
            eps.push(ep);
        }
        self.outstanding.push_back(Txn {
            kind: TxnKind::Write { src, dsts: eps },
            size,
            call,
            line,
        });
        Ok(())
    }

    pub fn noc_sem_inc(
        &mut self,
        st: &mut RunState,
        addr: u64,
        incr: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_semaphore_inc";
        let ep = self.resolve(st, addr, 4, true, call, line)?;
        match ep {
            Endpoint::L1 { addr: a, .. } if a % 4 == 0 => {}
            _ => {
                return Err(self.fault(
                    call,
                    line,
                    "atomic increment needs a 4-byte aligned worker L1 address",
                ));
            }
        }
        self.outstanding.push_back(Txn {
            kind: TxnKind::SemInc { dst: ep, incr },
            size: 4,
            call,
            line,
        });
        Ok(())
    }

    pub fn noc_inline_write(
        &mut self,
        st: &mut RunState,
        addr: u64,
        val: u32,
        be: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_inline_dw_write";
        let ep = self.resolve(st, addr, 4, true, call, line)?;
        self.outstanding.push_back(Txn {
            kind: TxnKind::Inline { dst: ep, val, be },
            size: 4,
            call,
            line,
        });
        Ok(())
    }

    /// Delivers every outstanding transaction of this RISC, in issue order.
    pub fn deliver_all(&mut self, st: &mut RunState) {
        let dev = self.dev(st);
        while let Some(t) = self.outstanding.pop_front() {
            deliver(dev, self.core, &t);
        }
    }

    pub fn sem_addr(&self, st: &mut RunState, id: u32, line: u32) -> SimResult<u32> {
        let mask = st
            .cores
            .get(self.core)
            .and_then(|c| c.as_ref())
            .map(|c| c.sem_mask)
            .unwrap_or(0);
        if id >= NUM_SEMAPHORES || mask & (1 << id) == 0 {
            return Err(self.fault(
                "get_semaphore",
                line,
                format!("semaphore {id} was not created on this core (CreateSemaphore / program_add_semaphore)"),
            ));
        }
        Ok(SEMAPHORE_BASE + id * SEMAPHORE_STRIDE)
    }

    pub fn sem_wait(
        &mut self,
        st: &mut RunState,
        addr: u32,
        val: u32,
        min: bool,
        line: u32,
    ) -> SimResult<Option<()>> {
        let call = if min {
            "noc_semaphore_wait_min"
        } else {
            "noc_semaphore_wait"
        };
        self.check_local(st, addr, 4, false, call, line)?;
        let v = self.dev(st).l1[self.core].read_u32(addr);
        if (min && v >= val) || (!min && v == val) {
            return Ok(Some(()));
        }
        let op = if min { ">=" } else { "==" };
        self.blocked = Some(format!(
            "blocked in {call}(addr={addr:#x}, {op} {val}) at line {line}: value is {v}"
        ));
        Ok(None)
    }
}

/// Whether a write to `[addr, addr+size)` is allowed: user L1, or entirely inside the semaphores.
fn writable(unreserved: u32, addr: u32, size: u32) -> bool {
    let end = addr as u64 + size as u64;
    let sem_end = (SEMAPHORE_BASE + NUM_SEMAPHORES * SEMAPHORE_STRIDE) as u64;
    addr >= unreserved || (addr >= SEMAPHORE_BASE && end <= sem_end)
}

fn read_ep(dev: &DeviceState, ep: &Endpoint, buf: &mut [u8]) {
    match *ep {
        Endpoint::L1 { core, addr } => dev.l1[core].read(addr, buf),
        Endpoint::Dram { bank, addr } => dev.dram[bank as usize].read(addr, buf),
    }
}

fn write_ep(dev: &mut DeviceState, ep: &Endpoint, buf: &[u8]) {
    match *ep {
        Endpoint::L1 { core, addr } => dev.l1[core].write(addr, buf),
        Endpoint::Dram { bank, addr } => dev.dram[bank as usize].write(addr, buf),
    }
}

fn deliver(dev: &mut DeviceState, me: usize, t: &Txn) {
    let mut buf = vec![0u8; t.size as usize];
    match &t.kind {
        TxnKind::Read { src, dst } => {
            read_ep(dev, src, &mut buf);
            dev.l1[me].write(*dst, &buf);
        }
        TxnKind::Write { src, dsts } => {
            dev.l1[me].read(*src, &mut buf);
            for d in dsts {
                write_ep(dev, d, &buf);
            }
        }
        TxnKind::SemInc { dst, incr } => {
            let mut b = [0u8; 4];
            read_ep(dev, dst, &mut b);
            let v = u32::from_le_bytes(b).wrapping_add(*incr);
            write_ep(dev, dst, &v.to_le_bytes());
        }
        TxnKind::Inline { dst, val, be } => {
            let mut b = [0u8; 4];
            read_ep(dev, dst, &mut b);
            let nv = val.to_le_bytes();
            for i in 0..4 {
                if be & (1 << i) != 0 {
                    b[i] = nv[i];
                }
            }
            write_ep(dev, dst, &b);
        }
    }
}
