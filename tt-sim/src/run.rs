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
use crate::timing::{NocModel, Node, RiscClock, SpanKind};

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

/// Timestamps of one CB's pages for the timing model.
#[derive(Debug, Clone, Default)]
pub(crate) struct CbTimes {
    pushed: u64,
    popped: u64,
    /// Push time of each ring slot (page index modulo the page count).
    push: Vec<u64>,
    /// Pop time of each ring slot.
    pop: Vec<u64>,
}

impl CbTimes {
    fn slots(&mut self, n: u32) {
        if self.push.len() != n as usize {
            self.push = vec![0; n as usize];
            self.pop = vec![0; n as usize];
        }
    }

    /// Latest push time of the `n` pages at the front.
    fn front_ready(&mut self, num_pages: u32, n: u32) -> u64 {
        self.slots(num_pages);
        (0..n as u64)
            .map(|i| self.push[((self.popped + i) % num_pages as u64) as usize])
            .max()
            .unwrap_or(0)
    }

    /// Latest pop time of the `n` slots at the back.
    fn back_free(&mut self, num_pages: u32, n: u32) -> u64 {
        self.slots(num_pages);
        (0..n as u64)
            .map(|i| self.pop[((self.pushed + i) % num_pages as u64) as usize])
            .max()
            .unwrap_or(0)
    }

    fn push_at(&mut self, num_pages: u32, n: u32, t: u64) {
        self.slots(num_pages);
        for _ in 0..n {
            self.push[(self.pushed % num_pages as u64) as usize] = t;
            self.pushed += 1;
        }
    }

    fn pop_at(&mut self, num_pages: u32, n: u32, t: u64) {
        self.slots(num_pages);
        for _ in 0..n {
            self.pop[(self.popped % num_pages as u64) as usize] = t;
            self.popped += 1;
        }
    }
}

/// Per-core state of a run.
#[derive(Debug, Default)]
pub(crate) struct CoreRun {
    pub cbs: Vec<Option<CbState>>,
    /// Semaphore ids configured on this core.
    pub sem_mask: u32,
    /// Per CB index: page timestamps.
    pub cb_times: Vec<CbTimes>,
    /// Per semaphore: time of the last NoC write / increment that landed on it.
    pub sem_time: [u64; NUM_SEMAPHORES as usize],
}

/// State shared by every RISC of a run.
pub(crate) struct RunState {
    pub dev: *mut DeviceState,
    /// Indexed by core (row-major); `None` for cores not in the program.
    pub cores: Vec<Option<CoreRun>>,
    pub fault: Option<SimError>,
    /// Bandwidth state of the timing model.
    pub noc: NocModel,
}

impl RunState {
    fn cb_times(&mut self, core: usize, cb: i32) -> Option<&mut CbTimes> {
        let cr = self.cores.get_mut(core)?.as_mut()?;
        let i = usize::try_from(cb).ok()?;
        if cr.cb_times.len() <= i {
            cr.cb_times.resize(i + 1, CbTimes::default());
        }
        cr.cb_times.get_mut(i)
    }
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
    /// Estimated cycle at which it has landed (timing model).
    pub done_at: u64,
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
    /// The timing model's clocks of this RISC.
    pub tm: RiscClock,
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

    /// Thread that reserves/pushes CB pages (the packer for compute).
    fn producer_thread(&self) -> usize {
        if self.compute.is_some() { 2 } else { 0 }
    }

    /// Charges a NoC transfer: issue cost on the RISC, completion time from the NoC model.
    fn charge_noc(
        &mut self,
        st: &mut RunState,
        src: Node,
        dsts: &[Node],
        noc: u32,
        size: u32,
    ) -> u64 {
        let bursts = st.noc.bursts(size);
        let issue = st.noc.p.noc_issue_cycles;
        self.tm.busy(0, issue * bursts);
        let t = self.tm.clk[0];
        st.noc.transfer(src, dsts, noc, size, t)
    }

    /// A barrier: waits until every outstanding transaction has landed.
    pub fn barrier_wait(&mut self, st: &mut RunState) {
        let api = st.noc.p.api_cycles;
        self.tm.busy(0, api);
        let t = self
            .outstanding
            .iter()
            .map(|t| t.done_at)
            .max()
            .unwrap_or(0);
        self.tm.wait_until(0, t, SpanKind::WaitSync);
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
                "{}: {call}(cb={cb}) at line {line}: CB {cb} is not configured on this core (add a circular \
                 buffer with this index to the program)",
                self.who()
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
            let th = self.producer_thread();
            let api = st.noc.p.api_cycles;
            let t = st
                .cb_times(self.core, cb)
                .map(|ct| ct.back_free(c.num_pages, n))
                .unwrap_or(0);
            self.tm.busy(th, api);
            self.tm.wait_until(th, t, SpanKind::WaitCb);
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
        let th = self.producer_thread();
        self.tm.busy(th, st.noc.p.api_cycles);
        let t = self.tm.clk[th];
        if let Some(ct) = st.cb_times(self.core, cb) {
            ct.push_at(c.num_pages, n, t);
        }
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
            let api = st.noc.p.api_cycles;
            let t = st
                .cb_times(self.core, cb)
                .map(|ct| ct.front_ready(c.num_pages, n))
                .unwrap_or(0);
            self.tm.busy(0, api);
            self.tm.wait_until(0, t, SpanKind::WaitCb);
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
        self.tm.busy(0, st.noc.p.api_cycles);
        // Compute pops once math has consumed the tiles.
        let t = if self.compute.is_some() {
            self.tm.clk[0].max(self.tm.clk[1])
        } else {
            self.tm.clk[0]
        };
        if let Some(ct) = st.cb_times(self.core, cb) {
            ct.pop_at(c.num_pages, n, t);
        }
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

    #[allow(clippy::too_many_arguments)]
    pub fn noc_read(
        &mut self,
        st: &mut RunState,
        src: u64,
        dst: u32,
        size: u32,
        noc: u32,
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
        let me = Node::Core(self.core);
        let done_at = self.charge_noc(st, node(&ep), &[me], noc, size);
        self.push_txn(
            Txn {
                kind: TxnKind::Read { src: ep, dst },
                size,
                done_at,
                call,
                line,
            },
            noc,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn noc_write(
        &mut self,
        st: &mut RunState,
        src: u32,
        dst: u64,
        size: u32,
        noc: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_async_write";
        self.check_size(size, call, line)?;
        let ep = self.resolve(st, dst, size, true, call, line)?;
        self.check_local(st, src, size, false, call, line)?;
        self.check_align(st, src, &ep, false, call, line)?;
        let me = Node::Core(self.core);
        let done_at = self.charge_noc(st, me, &[node(&ep)], noc, size);
        self.push_txn(
            Txn {
                kind: TxnKind::Write {
                    src,
                    dsts: vec![ep],
                },
                size,
                done_at,
                call,
                line,
            },
            noc,
        );
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
        let nodes: Vec<Node> = eps.iter().map(node).collect();
        let done_at = self.charge_noc(st, Node::Core(me), &nodes, noc, size);
        self.push_txn(
            Txn {
                kind: TxnKind::Write { src, dsts: eps },
                size,
                done_at,
                call,
                line,
            },
            noc,
        );
        Ok(())
    }

    pub fn noc_sem_inc(
        &mut self,
        st: &mut RunState,
        addr: u64,
        incr: u32,
        noc: u32,
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
        let done_at = self.charge_noc(st, Node::Core(self.core), &[node(&ep)], noc, 4);
        self.push_txn(
            Txn {
                kind: TxnKind::SemInc { dst: ep, incr },
                size: 4,
                done_at,
                call,
                line,
            },
            noc,
        );
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn noc_inline_write(
        &mut self,
        st: &mut RunState,
        addr: u64,
        val: u32,
        be: u32,
        noc: u32,
        line: u32,
    ) -> SimResult<()> {
        let call = "noc_inline_dw_write";
        let ep = self.resolve(st, addr, 4, true, call, line)?;
        let done_at = self.charge_noc(st, Node::Core(self.core), &[node(&ep)], noc, 4);
        self.push_txn(
            Txn {
                kind: TxnKind::Inline { dst: ep, val, be },
                size: 4,
                done_at,
                call,
                line,
            },
            noc,
        );
        Ok(())
    }

    /// Queues a transaction; transactions on one NoC land in issue order.
    fn push_txn(&mut self, mut t: Txn, noc: u32) {
        let last = &mut self.tm.noc_last[noc as usize & 1];
        t.done_at = t.done_at.max(*last);
        *last = t.done_at;
        self.outstanding.push_back(t);
    }

    /// Delivers every outstanding transaction of this RISC, in issue order.
    pub fn deliver_all(&mut self, st: &mut RunState) {
        while let Some(t) = self.outstanding.pop_front() {
            stamp_semaphores(st, &t);
            deliver(self.dev(st), self.core, &t);
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
            let t = sem_index(addr)
                .and_then(|i| {
                    st.cores
                        .get(self.core)
                        .and_then(|c| c.as_ref())
                        .map(|c| c.sem_time[i])
                })
                .unwrap_or(0);
            self.tm.busy(0, st.noc.p.api_cycles);
            self.tm.wait_until(0, t, SpanKind::WaitSync);
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

fn node(ep: &Endpoint) -> Node {
    match *ep {
        Endpoint::L1 { core, .. } => Node::Core(core),
        Endpoint::Dram { bank, .. } => Node::Bank(bank),
    }
}

/// Semaphore index of an L1 address inside the semaphore area.
fn sem_index(addr: u32) -> Option<usize> {
    let end = SEMAPHORE_BASE + NUM_SEMAPHORES * SEMAPHORE_STRIDE;
    (SEMAPHORE_BASE..end)
        .contains(&addr)
        .then(|| ((addr - SEMAPHORE_BASE) / SEMAPHORE_STRIDE) as usize)
}

/// Records when a transaction lands on semaphores (semaphore waits resume at that time).
fn stamp_semaphores(st: &mut RunState, t: &Txn) {
    let mut stamp = |ep: &Endpoint| {
        if let Endpoint::L1 { core, addr } = *ep
            && let Some(i) = sem_index(addr)
            && let Some(Some(c)) = st.cores.get_mut(core)
        {
            c.sem_time[i] = c.sem_time[i].max(t.done_at);
        }
    };
    match &t.kind {
        TxnKind::Write { dsts, .. } => dsts.iter().for_each(&mut stamp),
        TxnKind::SemInc { dst, .. } | TxnKind::Inline { dst, .. } => stamp(dst),
        TxnKind::Read { .. } => {}
    }
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
    let n = t.size as usize;
    match &t.kind {
        // Straight copies between the endpoints (no staging buffer).
        TxnKind::Read { src, dst } => match *src {
            Endpoint::L1 { core, addr } if core == me => dev.l1[me].copy_within(addr, *dst, n),
            Endpoint::L1 { core, addr } => dev.l1[me].write(*dst, dev.l1[core].slice(addr, n)),
            Endpoint::Dram { bank, addr } => {
                let bank = &dev.dram[bank as usize];
                dev.l1[me].fill_with(*dst, n, |d| bank.read(addr, d))
            }
        },
        TxnKind::Write { src, dsts } => {
            // Other endpoints first, the sender's own L1 (loopback) last: a destination that
            // overlaps the source must not change what the others receive.
            let mut own = None;
            for d in dsts {
                match *d {
                    Endpoint::L1 { core, addr } if core == me => own = Some(addr),
                    Endpoint::L1 { core, addr } => {
                        dev.l1[core].write(addr, dev.l1[me].slice(*src, n))
                    }
                    Endpoint::Dram { bank, addr } => {
                        dev.dram[bank as usize].write(addr, dev.l1[me].slice(*src, n))
                    }
                }
            }
            if let Some(addr) = own {
                dev.l1[me].copy_within(*src, addr, n);
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
