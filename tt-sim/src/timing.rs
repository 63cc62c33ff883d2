//! The cycle-approximate timing model and the run profile. All numbers are ESTIMATES of a model,
//! never measurements; see `docs/timing.md` for the model, its sources and its calibration.
//!
//! # Model
//! - Every RISC has a cycle clock. A data movement RISC (BRISC, NCRISC) has one; a compute kernel
//!   has three, one per TRISC thread: unpack (TRISC0), math (TRISC1), pack (TRISC2). The simulator
//!   runs the three threads as one sequential C++ thread, and the model replays the overlap: math
//!   starts once the first operand tile is unpacked, pack waits for `tile_regs_commit`, a DEST half
//!   is re-acquired only when the packer released it (half-sync double buffering).
//! - Calls cost cycles ([`TimingParams`]): FPU work per fidelity from
//!   [`crate::fpu::cost_cycles`], unpack and pack per tile, NoC command issue per burst, CB and
//!   semaphore API calls.
//! - NoC transfers complete at `issue + serialisation + base latency + hops * 9` where the
//!   serialisation is found on bandwidth timelines: the source node's egress port, the
//!   destination node's ingress port (per NoC; link bandwidth 32 B/cycle Wormhole, 64 Blackhole)
//!   and the DRAM bank (288 GB/s / 12 banks Wormhole, 512 GB/s / 8 banks Blackhole), so many cores
//!   hitting one bank or one core queue behind each other. A multicast uses the sender's egress
//!   once and every destination's ingress.
//! - Blocking calls resume at the producer's timestamp: `cb_wait_front` at the push time of the
//!   pages it waits for, `cb_reserve_back` at the pop time of the pages it needs, semaphore waits
//!   at the delivery time of the last NoC write/increment of that semaphore, barriers at the
//!   completion time of the outstanding transfers.
//! - A program's time is the max over every RISC clock. Wormhole runs at 1.0 GHz, Blackhole at
//!   1.35 GHz (tt-formats' `ArchSpec::clock_mhz`).
//!
//! The scheduler is not time-ordered (it runs RISCs round-robin until they block), so contention
//! on a timeline is granted in scheduling order within each time bucket; the buckets keep a
//! transfer issued at an earlier simulated time from queueing behind a later one.

use std::fmt::Write as _;

use crate::arch::{ArchParams, CoreCoord};

/// Cycles per time bucket of a [`Timeline`]. Memory: 4 bytes per bucket per resource a run uses
/// (about 40 KB per NoC port or DRAM bank for a 10 ms program).
const BUCKET: u64 = 1024;
/// Spans kept per thread for the trace (the totals are always exact): bounds a profile's memory
/// to about 240 KB per thread.
const MAX_SPANS: usize = 10_000;

/// Model constants of one architecture (see `docs/timing.md` for the sources).
#[derive(Debug, Clone)]
pub struct TimingParams {
    /// Core clock in MHz.
    pub clock_mhz: u32,
    /// NoC link bandwidth per direction, bytes per cycle.
    pub noc_bytes_per_cycle: f64,
    /// DRAM bandwidth per bank, bytes per core cycle.
    pub dram_bytes_per_cycle: f64,
    /// Largest NoC packet; longer transfers are issued as several bursts.
    pub max_burst: u32,
    /// Router latency per hop (cycles).
    pub hop_cycles: u64,
    /// Fixed latency of a NoC transaction (injection, ejection, response), cycles.
    pub noc_base_cycles: u64,
    /// Extra latency of a DRAM access, cycles.
    pub dram_latency_cycles: u64,
    /// RISC cycles to issue one NoC command (program the command buffer).
    pub noc_issue_cycles: u64,
    /// RISC cycles of a CB / semaphore / pointer API call.
    pub api_cycles: u64,
    /// TRISC cycles of the LLK call overhead of one compute API call.
    pub llk_call_cycles: u64,
    /// Unpack cycles per tile of a 16-bit or block-float format (per unpacker; A and B in parallel).
    pub unpack_tile_cycles: u64,
    /// Pack cycles per tile of a 16-bit or block-float format.
    pub pack_tile_cycles: u64,
}

impl TimingParams {
    /// Constants of `arch`.
    pub fn new(arch: &ArchParams) -> TimingParams {
        let (noc, dram_gbs, banks) = match arch.arch {
            tt_formats::Arch::Blackhole => (64.0, 512.0, 8.0),
            _ => (32.0, 288.0, 12.0),
        };
        let ghz = arch.clock_mhz as f64 / 1000.0;
        TimingParams {
            clock_mhz: arch.clock_mhz,
            noc_bytes_per_cycle: noc,
            dram_bytes_per_cycle: dram_gbs / banks / ghz,
            max_burst: arch.noc_max_burst.max(32),
            hop_cycles: 9,
            noc_base_cycles: 40,
            dram_latency_cycles: 250,
            noc_issue_cycles: 12,
            api_cycles: 6,
            llk_call_cycles: 8,
            unpack_tile_cycles: 16,
            pack_tile_cycles: 16,
        }
    }

    /// Unpack cycles of one tile of `fmt` (fp32 moves twice the bytes).
    pub fn unpack_cycles(&self, fmt: tt_formats::DataFormat) -> u64 {
        if fmt == tt_formats::DataFormat::Float32 {
            2 * self.unpack_tile_cycles
        } else {
            self.unpack_tile_cycles
        }
    }

    /// Pack cycles of one tile of `fmt`.
    pub fn pack_cycles(&self, fmt: tt_formats::DataFormat) -> u64 {
        if fmt == tt_formats::DataFormat::Float32 {
            2 * self.pack_tile_cycles
        } else {
            self.pack_tile_cycles
        }
    }
}

/// A bandwidth resource over simulated time, in buckets of [`BUCKET`] cycles.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timeline {
    used: Vec<f32>,
}

impl Timeline {
    /// Sends `bytes` at `rate` bytes/cycle starting no earlier than `t`; returns the finish time.
    pub fn fill(&mut self, rate: f64, t: u64, bytes: u64) -> u64 {
        let cap = rate * BUCKET as f64;
        let mut rem = bytes as f64;
        let mut b = (t / BUCKET) as usize;
        let mut first = true;
        loop {
            if self.used.len() <= b {
                self.used.resize(b + 1, 0.0);
            }
            let bucket_start = b as u64 * BUCKET;
            // In the first bucket only the part after `t` is usable.
            let window = if first {
                rate * (bucket_start + BUCKET - t) as f64
            } else {
                cap
            };
            let used = self.used[b] as f64;
            let avail = (cap - used).min(window).max(0.0);
            let take = avail.min(rem);
            self.used[b] = (used + take) as f32;
            rem -= take;
            if rem <= 1e-6 {
                let filled = self.used[b] as f64 / rate;
                let end = bucket_start as f64 + filled.min(BUCKET as f64);
                let ideal = t as f64 + bytes as f64 / rate;
                return end.max(ideal).ceil() as u64;
            }
            b += 1;
            first = false;
        }
    }
}

/// One end of a transfer for the model.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Node {
    Core(usize),
    Bank(u32),
}

/// Bandwidth state of the NoCs and DRAM banks during one run.
#[derive(Debug)]
pub(crate) struct NocModel {
    pub p: TimingParams,
    /// Per worker, per NoC: egress then ingress.
    ports: Vec<Timeline>,
    banks: Vec<Timeline>,
    core_xy: Vec<CoreCoord>,
    bank_xy: Vec<CoreCoord>,
}

impl NocModel {
    pub fn new(arch: &ArchParams) -> NocModel {
        let n = arch.num_workers();
        NocModel {
            p: TimingParams::new(arch),
            ports: vec![Timeline::default(); n * 4],
            banks: vec![Timeline::default(); arch.num_dram_banks as usize],
            core_xy: (0..n)
                .map(|i| arch.worker_noc(arch.core_at(i)).unwrap_or_default())
                .collect(),
            bank_xy: arch.dram_noc.clone(),
        }
    }

    fn xy(&self, n: Node) -> CoreCoord {
        match n {
            Node::Core(c) => self.core_xy.get(c).copied().unwrap_or_default(),
            Node::Bank(b) => self.bank_xy.get(b as usize).copied().unwrap_or_default(),
        }
    }

    fn hops(&self, a: Node, b: Node) -> u64 {
        let (p, q) = (self.xy(a), self.xy(b));
        (p.x.abs_diff(q.x) + p.y.abs_diff(q.y)) as u64
    }

    fn port(&mut self, core: usize, noc: u32, ingress: bool) -> &mut Timeline {
        let i = core * 4 + (noc as usize & 1) * 2 + usize::from(ingress);
        &mut self.ports[i]
    }

    /// Number of NoC commands a transfer of `bytes` needs.
    pub fn bursts(&self, bytes: u32) -> u64 {
        bytes.div_ceil(self.p.max_burst).max(1) as u64
    }

    /// Completion time of a transfer of `bytes` from `src` to every node of `dsts`, issued at `t`.
    pub fn transfer(&mut self, src: Node, dsts: &[Node], noc: u32, bytes: u32, t: u64) -> u64 {
        let bytes = bytes as u64;
        let (noc_bw, dram_bw) = (self.p.noc_bytes_per_cycle, self.p.dram_bytes_per_cycle);
        let mut finish = t;
        let mut extra = 0;
        match src {
            Node::Core(c) => finish = finish.max(self.port(c, noc, false).fill(noc_bw, t, bytes)),
            Node::Bank(b) => {
                extra += self.p.dram_latency_cycles;
                if let Some(tl) = self.banks.get_mut(b as usize) {
                    finish = finish.max(tl.fill(dram_bw, t, bytes));
                }
            }
        }
        let mut hops = 0;
        for &d in dsts {
            hops = hops.max(self.hops(src, d));
            match d {
                Node::Core(c) => {
                    finish = finish.max(self.port(c, noc, true).fill(noc_bw, t, bytes))
                }
                Node::Bank(b) => {
                    if let Some(tl) = self.banks.get_mut(b as usize) {
                        finish = finish.max(tl.fill(dram_bw, t, bytes));
                    }
                }
            }
        }
        finish + extra + self.p.noc_base_cycles + hops * self.p.hop_cycles
    }
}

/// What a span of a thread's time was spent on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Executing (issuing NoC commands, API calls, unpack/math/pack work).
    Busy,
    /// Waiting for circular-buffer pages (or for the unpack thread's operands).
    WaitCb,
    /// Waiting for NoC completion, a semaphore, or a DEST half.
    WaitSync,
}

impl SpanKind {
    /// Name in traces.
    pub fn name(self) -> &'static str {
        match self {
            SpanKind::Busy => "busy",
            SpanKind::WaitCb => "wait CB",
            SpanKind::WaitSync => "wait NoC/semaphore",
        }
    }
}

/// One interval of a thread's estimated timeline, in cycles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First cycle.
    pub start: u64,
    /// One past the last cycle.
    pub end: u64,
    /// What it was.
    pub kind: SpanKind,
}

/// The clocks of one RISC (one thread for data movement, three for compute).
#[derive(Debug, Default)]
pub(crate) struct RiscClock {
    pub clk: [u64; 3],
    pub busy: [u64; 3],
    pub wait_cb: [u64; 3],
    pub wait_sync: [u64; 3],
    pub spans: [Vec<Span>; 3],
    pub truncated: bool,
    /// Pack-release times of the last two DEST halves (ring by release count).
    pub dest_release: [u64; 2],
    pub releases: u64,
    pub acquires: u64,
    pub dest_commit: u64,
    /// Completion time of the last transaction issued on each NoC.
    pub noc_last: [u64; 2],
}

impl RiscClock {
    fn span(&mut self, th: usize, start: u64, end: u64, kind: SpanKind) {
        if end <= start {
            return;
        }
        let v = &mut self.spans[th];
        if let Some(last) = v.last_mut()
            && last.kind == kind
            && last.end == start
        {
            last.end = end;
            return;
        }
        if v.len() >= MAX_SPANS {
            self.truncated = true;
            return;
        }
        v.push(Span { start, end, kind });
    }

    /// Thread `th` executes for `cycles`.
    pub fn busy(&mut self, th: usize, cycles: u64) {
        let s = self.clk[th];
        self.clk[th] = s + cycles;
        self.busy[th] += cycles;
        self.span(th, s, s + cycles, SpanKind::Busy);
    }

    /// Thread `th` waits until `t` (no-op when already past it).
    pub fn wait_until(&mut self, th: usize, t: u64, kind: SpanKind) {
        let s = self.clk[th];
        if t <= s {
            return;
        }
        self.clk[th] = t;
        match kind {
            SpanKind::WaitCb => self.wait_cb[th] += t - s,
            SpanKind::WaitSync => self.wait_sync[th] += t - s,
            SpanKind::Busy => self.busy[th] += t - s,
        }
        self.span(th, s, t, kind);
    }

    /// Unpack `n_unpack` tiles of `ut` cycles on thread 0 while math does `math` cycles on thread 1,
    /// math starting once the first tile is unpacked and ending no earlier than one math step
    /// (`math_step`) after the last tile is unpacked.
    pub fn unpack_math(&mut self, llk: u64, n_unpack: u64, ut: u64, math: u64, math_step: u64) {
        self.busy(0, llk);
        let u0 = self.clk[0];
        self.busy(0, n_unpack * ut);
        let u_end = self.clk[0];
        let first = if n_unpack > 0 { u0 + ut } else { u0 };
        self.wait_until(1, first, SpanKind::WaitCb);
        self.busy(1, llk + math);
        let end = u_end + math_step;
        self.wait_until(1, end, SpanKind::WaitCb);
    }

    /// The latest of the thread clocks.
    pub fn end(&self) -> u64 {
        self.clk.iter().copied().max().unwrap_or(0)
    }
}

/// Estimated timeline of one RISC thread.
#[derive(Debug, Clone)]
pub struct ThreadProfile {
    /// Logical core.
    pub core: CoreCoord,
    /// "BRISC", "NCRISC", "TRISC0 (unpack)", "TRISC1 (math)" or "TRISC2 (pack)".
    pub thread: &'static str,
    /// Kernel name.
    pub kernel: String,
    /// Cycle at which the thread finished.
    pub end_cycles: u64,
    /// Cycles executing.
    pub busy_cycles: u64,
    /// Cycles waiting on circular buffers (or on the unpacker).
    pub wait_cb_cycles: u64,
    /// Cycles waiting on NoC transfers, semaphores or DEST.
    pub wait_sync_cycles: u64,
    /// The timeline (at most 10 000 spans, the first ones; see [`Profile::truncated`]).
    pub spans: Vec<Span>,
}

/// The estimated profile of one program run. Every number is a model ESTIMATE.
#[derive(Debug, Clone)]
pub struct Profile {
    /// Architecture name.
    pub arch: &'static str,
    /// Core clock in MHz used to convert cycles to time.
    pub clock_mhz: u32,
    /// Estimated program time in cycles (max over every thread).
    pub device_cycles: u64,
    /// One entry per thread of every RISC that ran a kernel, cores row-major.
    pub threads: Vec<ThreadProfile>,
    /// True when some thread had more spans than were kept (totals stay exact).
    pub truncated: bool,
}

/// Thread names: data movement RISCs, then compute threads.
pub(crate) const COMPUTE_THREADS: [&str; 3] = ["TRISC0 (unpack)", "TRISC1 (math)", "TRISC2 (pack)"];

fn json_str(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

impl Profile {
    /// Estimated program time in nanoseconds.
    pub fn device_ns(&self) -> f64 {
        self.device_cycles as f64 * 1000.0 / self.clock_mhz.max(1) as f64
    }

    fn us(&self, cycles: u64) -> f64 {
        cycles as f64 / self.clock_mhz.max(1) as f64
    }

    /// `cycles` as whole nanoseconds, rounded to nearest. The trace gives every span boundary as
    /// one of these so that adjacent spans of a thread share their boundary exactly: Perfetto
    /// stores time as integer ns, and rounding start and duration separately (at 1350 MHz a cycle
    /// is 0.74 ns) made spans overlap by 1 ns, which its JSON importer drops
    /// (`slice_drop_overlapping_complete_event`).
    fn ns(&self, cycles: u64) -> u64 {
        let mhz = u128::from(self.clock_mhz.max(1));
        let ns = (u128::from(cycles) * 1000 + mhz / 2) / mhz;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// The profile as Chrome / Perfetto trace JSON (`{"traceEvents": [...]}`): one process per
    /// core, one thread (track) per RISC thread, complete events ("ph": "X") in microseconds
    /// with exactly three decimals: span boundaries are rounded to whole nanoseconds (the
    /// resolution of Perfetto's importer) and spans shorter than 1 ns after rounding are left out
    /// (the per-thread totals stay exact). Checked in Perfetto UI v52: see docs/timing.md.
    pub fn to_chrome_trace(&self) -> String {
        let mut o = String::new();
        o.push_str("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"note\":");
        o.push_str(&json_str(&format!(
            "ESTIMATE from the tt-sim timing model ({} at {} MHz), not a measurement; program {} cycles = {:.3} us",
            self.arch,
            self.clock_mhz,
            self.device_cycles,
            self.us(self.device_cycles)
        )));
        o.push_str("},\"traceEvents\":[");
        let mut first = true;
        let mut sep = |o: &mut String| {
            if !first {
                o.push(',');
            }
            first = false;
        };
        let mut named_pid = std::collections::BTreeSet::new();
        // Threads of one core in the order they are listed (at most 5 per core).
        let mut per_core: std::collections::BTreeMap<u32, u32> = Default::default();
        for t in &self.threads {
            // pid 1005 is core (5,1). tid = pid * 10 + 1 + the thread's index on its core: unique
            // in the trace and never equal to the pid, which Perfetto would label "main thread".
            let pid = t.core.y * 1000 + t.core.x;
            let k = per_core.entry(pid).or_insert(0);
            *k += 1;
            let tid = u64::from(pid) * 10 + u64::from(*k);
            if named_pid.insert(pid) {
                sep(&mut o);
                let _ = write!(
                    o,
                    "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":{}}}}}",
                    json_str(&format!("core ({},{})", t.core.x, t.core.y))
                );
                sep(&mut o);
                let _ = write!(
                    o,
                    "{{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"sort_index\":{pid}}}}}"
                );
            }
            sep(&mut o);
            let _ = write!(
                o,
                "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json_str(&format!("{} '{}'", t.thread, t.kernel))
            );
            for s in &t.spans {
                let (start, end) = (self.ns(s.start), self.ns(s.end));
                if end <= start {
                    continue;
                }
                let dur = end - start;
                sep(&mut o);
                let _ = write!(
                    o,
                    "{{\"name\":\"{}\",\"cat\":\"estimate\",\"ph\":\"X\",\"pid\":{pid},\"tid\":{tid},\"ts\":{}.{:03},\"dur\":{}.{:03}}}",
                    s.kind.name(),
                    start / 1000,
                    start % 1000,
                    dur / 1000,
                    dur % 1000
                );
            }
        }
        o.push_str("]}");
        o
    }

    /// A short text summary: totals, then the busiest threads.
    pub fn summary(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "ESTIMATED device time (tt-sim timing model, {} @ {} MHz): {} cycles = {:.3} us",
            self.arch,
            self.clock_mhz,
            self.device_cycles,
            self.us(self.device_cycles)
        );
        let cores: std::collections::BTreeSet<(u32, u32)> =
            self.threads.iter().map(|t| (t.core.y, t.core.x)).collect();
        let _ = writeln!(
            o,
            "{} cores, {} threads{}",
            cores.len(),
            self.threads.len(),
            if self.truncated {
                " (trace spans truncated; totals exact)"
            } else {
                ""
            }
        );
        // Per thread kind: mean busy / wait fractions.
        let mut kinds: Vec<&str> = Vec::new();
        for t in &self.threads {
            if !kinds.contains(&t.thread) {
                kinds.push(t.thread);
            }
        }
        let total = self.device_cycles.max(1) as f64;
        let _ = writeln!(
            o,
            "{:<16} {:>8} {:>8} {:>10} {:>10}   (mean % of program time, ESTIMATE)",
            "thread", "busy", "wait CB", "wait sync", "idle/done"
        );
        for k in kinds {
            let v: Vec<&ThreadProfile> = self.threads.iter().filter(|t| t.thread == k).collect();
            let n = v.len() as f64;
            let f = |g: &dyn Fn(&ThreadProfile) -> u64| {
                v.iter().map(|t| g(t) as f64).sum::<f64>() / n / total * 100.0
            };
            let busy = f(&|t| t.busy_cycles);
            let wcb = f(&|t| t.wait_cb_cycles);
            let ws = f(&|t| t.wait_sync_cycles);
            let _ = writeln!(
                o,
                "{k:<16} {busy:>7.1}% {wcb:>7.1}% {ws:>9.1}% {:>9.1}%",
                (100.0 - busy - wcb - ws).max(0.0)
            );
        }
        if let Some(t) = self.threads.iter().max_by_key(|t| t.end_cycles) {
            let _ = writeln!(
                o,
                "critical: core ({},{}) {} '{}' ends at {} cycles",
                t.core.x, t.core.y, t.thread, t.kernel, t.end_cycles
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_serialises_and_shares_bandwidth() {
        let mut t = Timeline::default();
        // 3200 bytes at 32 B/cycle: 100 cycles.
        assert_eq!(t.fill(32.0, 0, 3200), 100);
        // A second transfer at the same time queues behind the first.
        assert_eq!(t.fill(32.0, 0, 3200), 200);
        // A transfer much later is not delayed.
        assert_eq!(t.fill(32.0, 10_000, 320), 10_010);
        // A transfer spanning buckets: 1024 cycles per bucket at 32 B/cycle = 32 KiB per bucket.
        let mut u = Timeline::default();
        assert_eq!(u.fill(32.0, 0, 3 * 32768), 3 * 1024);
        // Starting mid-bucket: only the rest of the first bucket is usable.
        let mut v = Timeline::default();
        assert_eq!(v.fill(32.0, 1000, 32768), 1000 + 1024);
    }

    #[test]
    fn unpack_math_overlaps() {
        let mut c = RiscClock::default();
        // 2 tiles of 16 unpack cycles, 64 math cycles: math starts at 16, ends at 80.
        c.unpack_math(0, 2, 16, 64, 16);
        assert_eq!(c.clk[0], 32);
        assert_eq!(c.clk[1], 80);
        assert_eq!(c.wait_cb[1], 16);
        // Unpack-bound: 8 tiles (128 cycles), 16 math cycles: math ends one step after the last tile.
        let mut d = RiscClock::default();
        d.unpack_math(0, 8, 16, 16, 16);
        assert_eq!(d.clk[1], 144);
    }

    #[test]
    fn trace_is_json_with_one_track_per_thread() {
        let p = Profile {
            arch: "Wormhole",
            clock_mhz: 1000,
            device_cycles: 300,
            truncated: false,
            threads: vec![ThreadProfile {
                core: CoreCoord { x: 1, y: 2 },
                thread: "BRISC",
                kernel: "read\"er".into(),
                end_cycles: 300,
                busy_cycles: 100,
                wait_cb_cycles: 200,
                wait_sync_cycles: 0,
                spans: vec![
                    Span {
                        start: 0,
                        end: 100,
                        kind: SpanKind::Busy,
                    },
                    Span {
                        start: 100,
                        end: 300,
                        kind: SpanKind::WaitCb,
                    },
                ],
            }],
        };
        let j = p.to_chrome_trace();
        assert!(j.contains("\"ts\":0.100,\"dur\":0.200"), "{j}");
        // Core (1,2) is pid 2001; its first thread tid 20011 (not the pid: no "main thread").
        assert!(j.contains("\"pid\":2001,\"tid\":20011,\"ts\""), "{j}");
        assert!(j.contains("read\\\"er"), "{j}");
        assert!(p.summary().starts_with("ESTIMATED"));
    }

    #[test]
    fn trace_spans_share_boundaries_at_a_non_integer_ns_clock() {
        // At 1350 MHz a cycle is 0.7407 ns: adjacent spans must still end exactly where the next
        // starts once Perfetto converts the microseconds to integer ns, or it drops them as
        // overlapping. Lengths 1..=3 cycles, so some spans round to 0 ns.
        let lens = [
            1u64, 1, 2, 1, 3, 1, 1, 2, 2, 1, 3, 3, 1, 1, 1, 2, 5, 1, 1, 1,
        ];
        let mut spans = Vec::new();
        let mut t = 0u64;
        for (i, l) in lens.iter().enumerate() {
            let kind = [SpanKind::Busy, SpanKind::WaitCb, SpanKind::WaitSync][i % 3];
            spans.push(Span {
                start: t,
                end: t + l,
                kind,
            });
            t += l;
        }
        let p = Profile {
            arch: "Blackhole",
            clock_mhz: 1350,
            device_cycles: t,
            truncated: false,
            threads: vec![ThreadProfile {
                core: CoreCoord { x: 0, y: 0 },
                thread: "TRISC1 (math)",
                kernel: "k".into(),
                end_cycles: t,
                busy_cycles: 0,
                wait_cb_cycles: 0,
                wait_sync_cycles: 0,
                spans,
            }],
        };
        let j: serde_json::Value = serde_json::from_str(&p.to_chrome_trace()).expect("JSON");
        let ns = |v: &serde_json::Value| {
            let us = v.as_f64().expect("number");
            let n = (us * 1000.0).round();
            assert!((us * 1000.0 - n).abs() < 1e-6, "{us} us is not whole ns");
            n as u64
        };
        let x: Vec<(u64, u64)> = j["traceEvents"]
            .as_array()
            .expect("array")
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| (ns(&e["ts"]), ns(&e["dur"])))
            .collect();
        // Reference: boundaries rounded in f64, spans of 0 ns left out.
        let r = |c: u64| (c as f64 * 1000.0 / 1350.0).round() as u64;
        let mut want = Vec::new();
        let mut c = 0;
        for l in lens {
            if r(c + l) > r(c) {
                want.push((r(c), r(c + l) - r(c)));
            }
            c += l;
        }
        assert!(want.len() < lens.len(), "the test must cover a 0 ns span");
        assert_eq!(x, want);
        for w in x.windows(2) {
            assert_eq!(
                w[0].0 + w[0].1,
                w[1].0,
                "adjacent spans must share a boundary"
            );
        }
        assert_eq!(x.last().map(|l| l.0 + l.1), Some(r(t)));
    }
}
