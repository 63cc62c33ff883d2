//! Devices and the one place where a provider is chosen.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tt_formats::Arch;
use tt_sys::Api;

use crate::error::{GridError, OpenError, ProviderError, RunError, Status};
use crate::ffi::FfiDevice;
use crate::grid::{CoreCoord, Grid, NocMap};
use crate::program::{Program, RunStats};

/// Environment variable forcing the provider: `sim` or `metal`.
pub const DEVICE_ENV: &str = "TT_DEVICE";
/// Environment variable choosing the simulated architecture: `wormhole` or `blackhole`.
pub const SIM_ARCH_ENV: &str = "TT_SIM_ARCH";
/// Environment variable choosing the metal device id (default 0).
pub const DEVICE_ID_ENV: &str = "TT_DEVICE_ID";

/// Which provider a device runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// tt-sim, in-process.
    Sim,
    /// TT-Metal through `libtt_shim_metal.so`.
    Metal,
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProviderKind::Sim => "sim",
            ProviderKind::Metal => "metal",
        })
    }
}

/// What to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSelector {
    /// Read `TT_DEVICE`, `TT_SIM_ARCH`, `TT_DEVICE_ID`; without `TT_DEVICE`: metal device
    /// `TT_DEVICE_ID` (default 0) when the shim library loads and reports a device, else the
    /// simulator (Wormhole unless `TT_SIM_ARCH`). A library named by `TT_SHIM_LIB` that does not
    /// load is an error, not a reason to use the simulator.
    Auto,
    /// The simulator of this architecture.
    Sim(Arch),
    /// Metal device with this id (an error when metal is not available).
    Metal(u32),
}

/// Typed `tt_device_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Architecture.
    pub arch: Arch,
    /// Usable worker grid (compute_with_storage_grid_size).
    pub grid: Grid,
    /// Core clock.
    pub clock_mhz: u32,
    /// L1 bytes per worker core.
    pub l1_size: u32,
    /// First L1 address user allocations may use.
    pub l1_unreserved_base: u32,
    /// L1 alignment in bytes.
    pub l1_alignment: u32,
    /// DRAM alignment in bytes.
    pub dram_alignment: u32,
    /// DRAM banks.
    pub num_dram_banks: u32,
    /// Bytes per DRAM bank.
    pub dram_bank_size: u64,
    /// CB indices per core.
    pub max_circular_buffers: u32,
    /// Semaphores per core.
    pub max_semaphores: u32,
    /// Runtime args per kernel per core (unique + common).
    pub max_runtime_args: u32,
    /// True for tt-sim.
    pub is_simulator: bool,
}

impl DeviceInfo {
    /// L1 bytes a core has for user data (buffers and circular buffers) when nothing is allocated.
    pub fn l1_user_bytes(&self) -> u64 {
        u64::from(self.l1_size.saturating_sub(self.l1_unreserved_base))
    }
}

static NEXT_DEVICE_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) struct DeviceInner {
    pub(crate) ffi: FfiDevice,
    pub(crate) info: DeviceInfo,
    pub(crate) kind: ProviderKind,
    pub(crate) noc_map: NocMap,
    pub(crate) dram_banks: Vec<CoreCoord>,
    pub(crate) selection: String,
    pub(crate) uid: u64,
}

/// An open device. Cheap to clone (an `Arc`); buffers and programs keep it alive, and the
/// provider's device is closed when the last of them is dropped.
#[derive(Clone)]
pub struct Device {
    pub(crate) inner: Arc<DeviceInner>,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("provider", &self.inner.kind)
            .field("arch", &self.inner.info.arch)
            .field("grid", &self.inner.info.grid)
            .field("origin", &self.inner.ffi.origin())
            .finish()
    }
}

fn env(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn parse_arch(value: &str) -> Result<Arch, OpenError> {
    match value.to_ascii_lowercase().as_str() {
        "wormhole" | "wormhole_b0" | "wh" | "n150" => Ok(Arch::WormholeB0),
        "blackhole" | "bh" | "p150" => Ok(Arch::Blackhole),
        _ => Err(OpenError::BadEnv {
            var: SIM_ARCH_ENV,
            value: value.to_owned(),
            expected: "wormhole or blackhole",
        }),
    }
}

fn sim_api() -> Result<Api, OpenError> {
    crate::ffi::sim_api().map_err(OpenError::SimUnavailable)
}

impl Device {
    /// Opens a device. **This is the one function that chooses a provider**; see
    /// [`DeviceSelector::Auto`] for the rules. The choice is never silent: [`Device::provider`]
    /// says which provider it is and [`Device::selection`] says why.
    pub fn open(selector: DeviceSelector) -> Result<Device, OpenError> {
        match selector {
            DeviceSelector::Sim(arch) => Self::open_sim(arch),
            DeviceSelector::Metal(id) => Self::open_metal(id),
            DeviceSelector::Auto => {
                let sim_arch = env(SIM_ARCH_ENV).map(|v| parse_arch(&v)).transpose()?;
                let metal_id = match env(DEVICE_ID_ENV) {
                    None => 0,
                    Some(v) => v.parse::<u32>().map_err(|_| OpenError::BadEnv {
                        var: DEVICE_ID_ENV,
                        value: v.clone(),
                        expected: "a device index such as 0",
                    })?,
                };
                match env(DEVICE_ENV).map(|v| v.to_ascii_lowercase()).as_deref() {
                    Some("sim") => {
                        let arch = sim_arch.unwrap_or(Arch::WormholeB0);
                        Self::open_sim_with(arch, format!("{DEVICE_ENV}=sim, arch {}", arch.name()))
                    }
                    Some("metal") => Self::open_metal_with(metal_id, format!("{DEVICE_ENV}=metal")),
                    Some(other) => Err(OpenError::BadEnv {
                        var: DEVICE_ENV,
                        value: other.to_owned(),
                        expected: "sim or metal (or unset to choose automatically)",
                    }),
                    None => {
                        let arch = sim_arch.unwrap_or(Arch::WormholeB0);
                        match Api::load_default() {
                            Ok(api) => {
                                let count = crate::ffi::device_count(&api)?;
                                if count > 0 {
                                    let why = format!(
                                        "automatic: metal shim {} reports {count} device(s)",
                                        api.origin()
                                    );
                                    Self::open_on(api, ProviderKind::Metal, metal_id, 0, why)
                                } else {
                                    Self::open_sim_with(
                                        arch,
                                        format!(
                                            "automatic: metal shim {} loaded but reports no device; using the simulator ({})",
                                            api.origin(),
                                            arch.name()
                                        ),
                                    )
                                }
                            }
                            Err(e) if env(tt_sys::loader::LIBRARY_ENV).is_some() => {
                                // The user named a library: not loading it is an error, not a
                                // reason to quietly use the simulator.
                                Err(OpenError::MetalUnavailable {
                                    reason: e.to_string(),
                                })
                            }
                            Err(e) => {
                                let text = e.to_string();
                                let first_line = text
                                    .lines()
                                    .next()
                                    .unwrap_or_default()
                                    .trim_end_matches("; searched:");
                                Self::open_sim_with(
                                    arch,
                                    format!(
                                        "automatic: no metal shim ({first_line}); using the simulator ({})",
                                        arch.name()
                                    ),
                                )
                            }
                        }
                    }
                }
            }
        }
    }

    /// [`Device::open`] with [`DeviceSelector::Auto`].
    pub fn open_default() -> Result<Device, OpenError> {
        Self::open(DeviceSelector::Auto)
    }

    /// Opens the simulator of `arch`.
    pub fn open_sim(arch: Arch) -> Result<Device, OpenError> {
        Self::open_sim_with(arch, format!("explicit: simulator ({})", arch.name()))
    }

    fn open_sim_with(arch: Arch, why: String) -> Result<Device, OpenError> {
        Self::open_on(sim_api()?, ProviderKind::Sim, 0, arch.as_raw(), why)
    }

    /// Opens metal device `id`; an error (never a fallback) when the shim library is absent or
    /// has no such device.
    pub fn open_metal(id: u32) -> Result<Device, OpenError> {
        Self::open_metal_with(id, format!("explicit: metal device {id}"))
    }

    fn open_metal_with(id: u32, why: String) -> Result<Device, OpenError> {
        let api = Api::load_default().map_err(|e| OpenError::MetalUnavailable {
            reason: e.to_string(),
        })?;
        let count = crate::ffi::device_count(&api)?;
        if id >= count {
            return Err(OpenError::NoSuchDevice { id, count });
        }
        Self::open_on(api, ProviderKind::Metal, id, 0, why)
    }

    fn open_on(
        api: Api,
        kind: ProviderKind,
        id: u32,
        arch: u32,
        why: String,
    ) -> Result<Device, OpenError> {
        let ffi = FfiDevice::open(api, id, arch)?;
        let raw = ffi.info()?;
        let provider = ffi.provider().to_owned();
        let bad = |what: String| OpenError::BadDeviceInfo {
            provider: provider.clone(),
            what,
        };
        let arch = Arch::from_raw(raw.arch)
            .ok_or_else(|| bad(format!("unknown arch value {}", raw.arch)))?;
        if raw.grid_x == 0 || raw.grid_y == 0 {
            return Err(bad(format!(
                "empty worker grid {}x{}",
                raw.grid_x, raw.grid_y
            )));
        }
        if raw.l1_unreserved_base >= raw.l1_size {
            return Err(bad(format!(
                "L1 base {:#x} is not below L1 size {:#x}",
                raw.l1_unreserved_base, raw.l1_size
            )));
        }
        let info = DeviceInfo {
            arch,
            grid: Grid::new(raw.grid_x, raw.grid_y),
            clock_mhz: raw.clock_mhz,
            l1_size: raw.l1_size,
            l1_unreserved_base: raw.l1_unreserved_base,
            l1_alignment: raw.l1_alignment,
            dram_alignment: raw.dram_alignment,
            num_dram_banks: raw.num_dram_banks,
            dram_bank_size: raw.dram_bank_size,
            max_circular_buffers: raw.max_circular_buffers,
            max_semaphores: raw.max_semaphores,
            max_runtime_args: raw.max_runtime_args,
            is_simulator: raw.is_simulator != 0,
        };
        let noc_map = NocMap::from_fn(info.grid, |c| {
            ffi.worker_core_from_logical(c.x, c.y)
                .map(|(x, y)| CoreCoord::new(x, y))
        })?;
        let dram_banks = (0..info.num_dram_banks)
            .map(|b| {
                ffi.dram_bank_noc_coord(b)
                    .map(|(x, y)| CoreCoord::new(x, y))
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        let inner = DeviceInner {
            ffi,
            info,
            kind,
            noc_map,
            dram_banks,
            selection: why,
            uid: NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed),
        };
        Ok(Device {
            inner: Arc::new(inner),
        })
    }

    /// Which provider this device runs on.
    pub fn provider(&self) -> ProviderKind {
        self.inner.kind
    }

    /// Why this provider was chosen (e.g. `"automatic: no metal shim (...); using the simulator"`).
    pub fn selection(&self) -> &str {
        &self.inner.selection
    }

    /// Where the provider's code came from (library path or in-process).
    pub fn provider_origin(&self) -> &str {
        self.inner.ffi.origin()
    }

    /// Device facts.
    pub fn info(&self) -> &DeviceInfo {
        &self.inner.info
    }

    /// Architecture.
    pub fn arch(&self) -> Arch {
        self.inner.info.arch
    }

    /// The usable worker grid.
    pub fn grid(&self) -> Grid {
        self.inner.info.grid
    }

    /// NoC coordinates of logical worker `logical` (what kernels pass to `get_noc_addr`).
    pub fn worker_core(&self, logical: CoreCoord) -> Result<CoreCoord, GridError> {
        self.inner.noc_map.worker(logical)
    }

    /// The logical -> NoC map of every worker (for multicast plans).
    pub fn noc_map(&self) -> &NocMap {
        &self.inner.noc_map
    }

    /// NoC coordinates of DRAM bank `bank` as kernels address it.
    pub fn dram_bank_noc(&self, bank: u32) -> Option<CoreCoord> {
        self.inner.dram_banks.get(bank as usize).copied()
    }

    /// Runs `program` to completion. Kernel faults and deadlocks come back as [`RunError`] with
    /// the provider's message (core, RISC, kernel, call).
    pub fn run(&self, program: &Program) -> Result<RunStats, RunError> {
        if program.device_uid() != self.inner.uid {
            return Err(RunError::ForeignProgram);
        }
        let raw = program.run_raw().map_err(|e| match e.status {
            Status::KernelFault => RunError::KernelFault { message: e.message },
            Status::Deadlock => RunError::Deadlock { message: e.message },
            Status::OutOfMemory => RunError::OutOfMemory { message: e.message },
            _ => RunError::Provider(e),
        })?;
        Ok(RunStats::from_raw(&raw, self.inner.kind))
    }

    /// [`Device::run`], then the ESTIMATED per-core, per-RISC profile of that run
    /// ([`Program::profile`]); a provider without a timing model fails with
    /// `RunError::Provider` (status `Unsupported`) after the program ran.
    pub fn run_profiled(
        &self,
        program: &Program,
    ) -> Result<(RunStats, crate::profile::Profile), RunError> {
        let stats = self.run(program)?;
        let profile = program.profile().map_err(RunError::Provider)?;
        Ok((stats, profile))
    }
}
