//! Estimated run profiles: where a program's time goes, per core and per RISC thread.
//!
//! Every number here comes from the provider's timing model (the simulator's, see tt-sim's
//! `timing` module and `docs/timing.md`) and is an **ESTIMATE**, not a measurement; the text
//! forms say so. A provider without a timing model answers [`Status::Unsupported`](crate::Status).

use crate::device::ProviderKind;
use crate::grid::CoreCoord;

/// A RISC thread of a Tensix core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProfileThread {
    /// Data movement RISC 0.
    Brisc,
    /// Data movement RISC 1.
    Ncrisc,
    /// Compute: unpacker thread.
    Trisc0Unpack,
    /// Compute: math thread.
    Trisc1Math,
    /// Compute: packer thread.
    Trisc2Pack,
}

impl ProfileThread {
    pub(crate) fn from_raw(v: u32) -> ProfileThread {
        match v {
            0 => ProfileThread::Brisc,
            1 => ProfileThread::Ncrisc,
            2 => ProfileThread::Trisc0Unpack,
            3 => ProfileThread::Trisc1Math,
            _ => ProfileThread::Trisc2Pack,
        }
    }

    /// Short name.
    pub fn name(self) -> &'static str {
        match self {
            ProfileThread::Brisc => "BRISC",
            ProfileThread::Ncrisc => "NCRISC",
            ProfileThread::Trisc0Unpack => "TRISC0 (unpack)",
            ProfileThread::Trisc1Math => "TRISC1 (math)",
            ProfileThread::Trisc2Pack => "TRISC2 (pack)",
        }
    }
}

/// Estimated totals of one thread of one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadProfile {
    /// Logical core.
    pub core: CoreCoord,
    /// Which thread.
    pub thread: ProfileThread,
    /// Cycle at which it finished.
    pub end_cycles: u64,
    /// Cycles executing.
    pub busy_cycles: u64,
    /// Cycles waiting on circular buffers (or on the unpacker).
    pub wait_cb_cycles: u64,
    /// Cycles waiting on NoC transfers, semaphores or DEST.
    pub wait_sync_cycles: u64,
}

/// Estimated totals of one core (sums over its threads, end = latest thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreProfile {
    /// Logical core.
    pub core: CoreCoord,
    /// Its threads.
    pub threads: Vec<ThreadProfile>,
    /// Cycle at which its last thread finished.
    pub end_cycles: u64,
}

/// The ESTIMATED profile of a program's last run ([`Program::profile`](crate::Program::profile)).
#[derive(Debug, Clone)]
pub struct Profile {
    pub(crate) provider: ProviderKind,
    pub(crate) clock_mhz: u32,
    pub(crate) threads: Vec<ThreadProfile>,
    pub(crate) summary: String,
    pub(crate) trace: String,
}

impl Profile {
    /// Every thread that ran a kernel, cores row-major.
    pub fn threads(&self) -> &[ThreadProfile] {
        &self.threads
    }

    /// Per-core breakdown, cores row-major.
    pub fn cores(&self) -> Vec<CoreProfile> {
        let mut out: Vec<CoreProfile> = Vec::new();
        for t in &self.threads {
            match out.iter_mut().find(|c| c.core == t.core) {
                Some(c) => {
                    c.end_cycles = c.end_cycles.max(t.end_cycles);
                    c.threads.push(*t);
                }
                None => out.push(CoreProfile {
                    core: t.core,
                    threads: vec![*t],
                    end_cycles: t.end_cycles,
                }),
            }
        }
        out.sort_by_key(|c| (c.core.y, c.core.x));
        out
    }

    /// Estimated program cycles: the latest thread.
    pub fn device_cycles(&self) -> u64 {
        self.threads.iter().map(|t| t.end_cycles).max().unwrap_or(0)
    }

    /// Estimated program time in nanoseconds at the device clock.
    pub fn device_ns(&self) -> f64 {
        self.device_cycles() as f64 * 1000.0 / self.clock_mhz.max(1) as f64
    }

    /// The provider's text summary (starts with "ESTIMATED").
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// Chrome / Perfetto trace JSON (open in ui.perfetto.dev or chrome://tracing): one process per
    /// core, one track per RISC thread, spans "busy" / "wait CB" / "wait NoC/semaphore".
    pub fn to_chrome_trace(&self) -> &str {
        &self.trace
    }

    /// The provider that produced it.
    pub fn provider(&self) -> ProviderKind {
        self.provider
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}
