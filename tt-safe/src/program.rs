//! Programs: circular buffers, semaphores, kernels and runtime args, checked on the host before
//! the provider sees them; and the statistics of a run.

use std::ffi::CString;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tt_formats::DataFormat;

use crate::buffer::{Buffer, BufferInner, BufferKind};
use crate::device::{Device, DeviceInner, ProviderKind};
use crate::error::{ProgramError, ProviderError, Status};
use crate::ffi::{KernelDesc, RawProgram};
use crate::grid::{CoreCoord, CoreRange, CoreRangeSet, CoreSpec, describe};

/// A NoC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Noc {
    /// NoC 0 (travels +x, +y); TT-Metal's default for RISCV_0.
    #[default]
    Noc0,
    /// NoC 1 (travels -x, -y); TT-Metal's default for RISCV_1.
    Noc1,
}

/// A data-movement RISC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Processor {
    /// BRISC.
    Riscv0,
    /// NCRISC.
    Riscv1,
}

/// Matmul precision: how many multiplier phases run (TENSTORRENT.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MathFidelity {
    /// One phase (fastest; exact for Bfp4 operands).
    LoFi,
    /// Two phases (full precision for Bfp8 operands).
    HiFi2,
    /// Three phases.
    HiFi3,
    /// Four phases (exact bf16 products).
    #[default]
    HiFi4,
}

impl MathFidelity {
    fn raw(self) -> u32 {
        use tt_sys::tt_math_fidelity as f;
        match self {
            MathFidelity::LoFi => f::TT_FIDELITY_LOFI,
            MathFidelity::HiFi2 => f::TT_FIDELITY_HIFI2,
            MathFidelity::HiFi3 => f::TT_FIDELITY_HIFI3,
            MathFidelity::HiFi4 => f::TT_FIDELITY_HIFI4,
        }
    }

    /// Multiplier phases per MVMUL (1..=4).
    pub fn phases(self) -> u32 {
        match self {
            MathFidelity::LoFi => 1,
            MathFidelity::HiFi2 => 2,
            MathFidelity::HiFi3 => 3,
            MathFidelity::HiFi4 => 4,
        }
    }
}

/// Compute kernel settings (TT-Metal `ComputeConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ComputeConfig {
    /// Matmul fidelity.
    pub fidelity: MathFidelity,
    /// FP32 accumulation in DEST (halves DEST capacity).
    pub fp32_dest_acc: bool,
    /// Full-sync DEST (doubles capacity, no math/pack overlap).
    pub dst_full_sync: bool,
    /// SFPU approximate mode.
    pub approx: bool,
    /// CB indices whose unpack goes straight to DEST in FP32 (`UnpackToDestFp32`).
    pub unpack_to_dest_fp32: Vec<u32>,
    /// Precise BFP8 packing.
    pub bfp8_pack_precise: bool,
}

/// What kind of kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelKind {
    /// A reader/writer on one data-movement RISC.
    DataMovement {
        /// Which RISC.
        processor: Processor,
        /// Which NoC its default NoC calls use.
        noc: Noc,
    },
    /// The compute kernel (unpack, math, pack).
    Compute(ComputeConfig),
}

impl KernelKind {
    /// RISCV_0 on NoC 0 (TT-Metal's reader default).
    pub fn riscv0() -> KernelKind {
        KernelKind::DataMovement {
            processor: Processor::Riscv0,
            noc: Noc::Noc0,
        }
    }
    /// RISCV_1 on NoC 1 (TT-Metal's writer default).
    pub fn riscv1() -> KernelKind {
        KernelKind::DataMovement {
            processor: Processor::Riscv1,
            noc: Noc::Noc1,
        }
    }
    /// A compute kernel with `config`.
    pub fn compute(config: ComputeConfig) -> KernelKind {
        KernelKind::Compute(config)
    }

    fn risc(&self) -> &'static str {
        match self {
            KernelKind::DataMovement {
                processor: Processor::Riscv0,
                ..
            } => "RISCV_0 (BRISC)",
            KernelKind::DataMovement {
                processor: Processor::Riscv1,
                ..
            } => "RISCV_1 (NCRISC)",
            KernelKind::Compute(_) => "the compute RISCs (TRISC 0-2)",
        }
    }
}

/// A kernel to add to a program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// Name used in errors and the build cache.
    pub name: String,
    /// Full C++ source in the TT-Metal kernel dialect.
    pub source: String,
    /// Kind and settings.
    pub kind: KernelKind,
    /// Cores it runs on (validated by [`Program::add_kernel`]: inside the grid, no overlaps).
    pub cores: Vec<CoreRange>,
    /// Compile-time args (`get_compile_time_arg_val(i)`).
    pub compile_args: Vec<u32>,
    /// Preprocessor defines `(name, value)`.
    pub defines: Vec<(String, String)>,
}

impl KernelSpec {
    /// A kernel with no compile args and no defines.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        kind: KernelKind,
        cores: impl CoreSpec,
    ) -> Self {
        KernelSpec {
            name: name.into(),
            source: source.into(),
            kind,
            cores: cores.to_ranges(),
            compile_args: Vec::new(),
            defines: Vec::new(),
        }
    }
    /// Sets the compile-time args.
    pub fn compile_args(mut self, args: impl Into<Vec<u32>>) -> Self {
        self.compile_args = args.into();
        self
    }
    /// Adds a define.
    pub fn define(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defines.push((name.into(), value.into()));
        self
    }
}

/// A kernel of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KernelHandle {
    program: u64,
    index: usize,
    id: u32,
}

impl KernelHandle {
    /// The provider's kernel id.
    pub fn id(&self) -> u32 {
        self.id
    }
}

/// A semaphore of a program; kernels get its L1 address with `get_semaphore(id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SemaphoreId(pub(crate) u32);

impl SemaphoreId {
    /// The id to pass to kernels.
    pub fn id(&self) -> u32 {
        self.0
    }
}

/// A circular buffer of a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CbHandle(pub(crate) u32);

impl CbHandle {
    /// The provider's handle value.
    pub fn raw(&self) -> u32 {
        self.0
    }
}

/// One index of a circular buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbFormat {
    /// CB index (`tt::CBIndex::c_N`), below the device's `max_circular_buffers`.
    pub index: u32,
    /// Data format of its pages.
    pub format: DataFormat,
    /// Page size in bytes (usually `format.tile_size_bytes()`).
    pub page_size: u32,
}

/// A circular buffer configuration (TT-Metal `CircularBufferConfig`).
#[derive(Debug, Clone)]
pub struct CbConfig<'a> {
    /// Bytes, shared by every index in `formats`; a multiple of each page size.
    pub total_size: u32,
    /// The indices and their formats.
    pub formats: Vec<CbFormat>,
    /// Back the CB by this L1 buffer (sharded inputs/outputs) instead of allocating.
    pub globally_allocated: Option<&'a Buffer>,
}

impl<'a> CbConfig<'a> {
    /// `num_tiles` tiles of `format` on index `index`.
    pub fn tiles(index: u32, format: DataFormat, num_tiles: u32) -> CbConfig<'a> {
        let page = format.tile_size_bytes() as u32;
        CbConfig {
            total_size: page * num_tiles,
            formats: vec![CbFormat {
                index,
                format,
                page_size: page,
            }],
            globally_allocated: None,
        }
    }
    /// Backs the CB by `buffer`.
    pub fn backed_by(mut self, buffer: &'a Buffer) -> CbConfig<'a> {
        self.globally_allocated = Some(buffer);
        self
    }
}

/// Timing of a run. Simulator numbers are **estimates** of its timing model; `is_estimate` says
/// so, and `Display` labels them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Provider that ran it.
    pub provider: ProviderKind,
    /// True when the device numbers come from a model, not hardware.
    pub is_estimate: bool,
    /// Device cycles (max over cores); `None` when the provider gave none.
    pub device_cycles: Option<u64>,
    /// Device nanoseconds; `None` when the provider gave none.
    pub device_ns: Option<u64>,
    /// Host wall time of the run.
    pub host_ns: u64,
}

impl RunStats {
    pub(crate) fn from_raw(raw: &tt_sys::tt_run_stats, provider: ProviderKind) -> RunStats {
        RunStats {
            provider,
            is_estimate: raw.is_estimate != 0,
            device_cycles: (raw.device_cycles != 0).then_some(raw.device_cycles),
            device_ns: (raw.device_ns != 0).then_some(raw.device_ns),
            host_ns: raw.host_ns,
        }
    }
}

impl std::fmt::Display for RunStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.device_ns, self.device_cycles) {
            (Some(ns), cycles) => {
                write!(f, "device {:.3} us", ns as f64 / 1000.0)?;
                if let Some(c) = cycles {
                    write!(f, " ({c} cycles)")?;
                }
                if self.is_estimate {
                    write!(f, " [ESTIMATE from the {} timing model]", self.provider)?;
                }
            }
            (None, _) => write!(f, "device time not reported by {}", self.provider)?,
        }
        write!(f, ", host {:.3} ms", self.host_ns as f64 / 1e6)
    }
}

static NEXT_PROGRAM_ID: AtomicU64 = AtomicU64::new(1);

struct CbRecord {
    cores: CoreRangeSet,
    indices: Vec<u32>,
}

struct KernelRecord {
    name: String,
    kind: KernelKind,
    cores: CoreRangeSet,
    common_args: usize,
    /// Unique arg counts per core (sparse).
    unique_args: Vec<(CoreCoord, usize)>,
}

/// A program under construction. RAII: the provider's program is destroyed on drop.
pub struct Program {
    device: Arc<DeviceInner>,
    raw: Option<RawProgram>,
    uid: u64,
    cbs: Vec<CbRecord>,
    kernels: Vec<KernelRecord>,
    /// Buffers backing globally allocated CBs, kept alive while the program exists.
    backing: Vec<Arc<BufferInner>>,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("circular_buffers", &self.cbs.len())
            .field(
                "kernels",
                &self
                    .kernels
                    .iter()
                    .map(|k| k.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(raw) = self.raw.take() {
            // Nothing useful can be done with a destroy failure in drop.
            let _ = self.device.ffi.program_destroy(raw);
        }
    }
}

fn c_ranges(set: &CoreRangeSet) -> Vec<tt_sys::tt_core_range> {
    set.ranges()
        .iter()
        .map(|r| tt_sys::tt_core_range {
            start: tt_sys::tt_core_coord {
                x: r.start.x,
                y: r.start.y,
            },
            end: tt_sys::tt_core_coord {
                x: r.end.x,
                y: r.end.y,
            },
        })
        .collect()
}

fn c_string(what: impl Fn() -> String, s: &str) -> Result<CString, ProgramError> {
    CString::new(s).map_err(|e| ProgramError::NulInString {
        what: what(),
        position: e.nul_position(),
    })
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// First core shared by two sets.
fn first_common(a: &CoreRangeSet, b: &CoreRangeSet) -> Option<CoreCoord> {
    for ra in a.ranges() {
        for rb in b.ranges() {
            if ra.intersects(rb) {
                return Some(CoreCoord::new(
                    ra.start.x.max(rb.start.x),
                    ra.start.y.max(rb.start.y),
                ));
            }
        }
    }
    None
}

impl Program {
    /// A new, empty program for `device`.
    pub fn new(device: &Device) -> Result<Program, ProgramError> {
        let raw = device.inner.ffi.program_create()?;
        Ok(Program {
            device: device.inner.clone(),
            raw: Some(raw),
            uid: NEXT_PROGRAM_ID.fetch_add(1, Ordering::Relaxed),
            cbs: Vec::new(),
            kernels: Vec::new(),
            backing: Vec::new(),
        })
    }

    fn raw(&self) -> &RawProgram {
        self.raw
            .as_ref()
            .unwrap_or_else(|| unreachable!("program handle used after destroy"))
    }

    pub(crate) fn device_uid(&self) -> u64 {
        self.device.uid
    }

    pub(crate) fn run_raw(&self) -> Result<tt_sys::tt_run_stats, ProviderError> {
        self.device.ffi.program_run(self.raw())
    }

    /// The ESTIMATED profile of this program's last successful run (per core and RISC thread,
    /// plus a Chrome/Perfetto trace and a text summary). Errors: `InvalidArgument` before the
    /// first run, `Unsupported` from a provider without a timing model.
    pub fn profile(&self) -> Result<crate::profile::Profile, ProviderError> {
        let ffi = &self.device.ffi;
        let raw = ffi.program_profile_threads(self.raw())?;
        let threads = raw
            .iter()
            .map(|t| crate::profile::ThreadProfile {
                core: CoreCoord::new(t.core.x, t.core.y),
                thread: crate::profile::ProfileThread::from_raw(t.thread),
                end_cycles: t.end_cycles,
                busy_cycles: t.busy_cycles,
                wait_cb_cycles: t.wait_cb_cycles,
                wait_sync_cycles: t.wait_sync_cycles,
            })
            .collect();
        Ok(crate::profile::Profile {
            provider: self.device.kind,
            clock_mhz: self.device.info.clock_mhz,
            threads,
            summary: ffi.program_profile_summary(self.raw())?,
            trace: ffi.program_profile_json(self.raw())?,
        })
    }

    fn validate_cores(
        &self,
        what: &str,
        cores: &(impl CoreSpec + ?Sized),
    ) -> Result<CoreRangeSet, ProgramError> {
        Ok(self.device.info.grid.validate(what, cores)?)
    }

    /// Adds a circular buffer on `cores`. Checks: indices below the device maximum, listed once,
    /// not already used by another CB of this program on an overlapping core; sizes; a backing
    /// buffer must be L1 and large enough. The provider places the CB at the same L1 address on
    /// every core.
    pub fn add_circular_buffer(
        &mut self,
        cores: impl CoreSpec,
        config: CbConfig<'_>,
    ) -> Result<CbHandle, ProgramError> {
        let cores = self.validate_cores("circular buffer", &cores)?;
        let info = &self.device.info;
        if config.formats.is_empty() {
            return Err(ProgramError::CbNoFormats);
        }
        let mut indices = Vec::with_capacity(config.formats.len());
        for f in &config.formats {
            if f.index >= info.max_circular_buffers {
                return Err(ProgramError::CbIndexOutOfRange {
                    index: f.index,
                    max: info.max_circular_buffers,
                });
            }
            if indices.contains(&f.index) {
                return Err(ProgramError::CbDuplicateIndex { index: f.index });
            }
            if f.page_size == 0
                || config.total_size == 0
                || !config.total_size.is_multiple_of(f.page_size)
            {
                return Err(ProgramError::CbSize {
                    index: f.index,
                    total_size: config.total_size,
                    page_size: f.page_size,
                });
            }
            indices.push(f.index);
        }
        for existing in &self.cbs {
            if let Some(&index) = indices.iter().find(|i| existing.indices.contains(i))
                && let Some(core) = first_common(&existing.cores, &cores)
            {
                return Err(ProgramError::CbIndexReused { index, core });
            }
        }
        if let Some(buffer) = config.globally_allocated {
            if buffer.inner.device.uid != self.device.uid {
                return Err(ProgramError::Foreign {
                    what: "the CB's backing buffer",
                    owner: "device",
                });
            }
            if buffer.kind() != BufferKind::L1 {
                return Err(ProgramError::CbBackingNotL1);
            }
            if u64::from(config.total_size) > buffer.bytes_per_core() {
                return Err(ProgramError::CbBackingTooSmall {
                    total_size: config.total_size,
                    per_core: buffer.bytes_per_core(),
                });
            }
        } else if u64::from(config.total_size) > info.l1_user_bytes() {
            return Err(ProgramError::CbTooLarge {
                total_size: config.total_size,
                available: info.l1_user_bytes(),
            });
        }
        let formats: Vec<tt_sys::tt_cb_format> = config
            .formats
            .iter()
            .map(|f| tt_sys::tt_cb_format {
                cb_index: f.index,
                data_format: f.format.as_raw(),
                page_size: f.page_size,
            })
            .collect();
        let handle = self
            .device
            .ffi
            .program_add_circular_buffer(
                self.raw(),
                &c_ranges(&cores),
                config.total_size,
                &formats,
                config.globally_allocated.map(|b| b.inner.raw()),
            )
            .map_err(|e| {
                if e.status == Status::OutOfMemory {
                    ProgramError::CbOutOfMemory { message: e.message }
                } else {
                    ProgramError::Provider(e)
                }
            })?;
        if let Some(buffer) = config.globally_allocated {
            self.backing.push(buffer.inner.clone());
        }
        self.cbs.push(CbRecord { cores, indices });
        Ok(CbHandle(handle))
    }

    /// Adds a semaphore with `initial_value` on `cores` (same L1 address on every core).
    pub fn add_semaphore(
        &mut self,
        cores: impl CoreSpec,
        initial_value: u32,
    ) -> Result<SemaphoreId, ProgramError> {
        let cores = self.validate_cores("semaphore", &cores)?;
        let id =
            self.device
                .ffi
                .program_add_semaphore(self.raw(), &c_ranges(&cores), initial_value)?;
        Ok(SemaphoreId(id))
    }

    /// Adds (builds) a kernel. Checks the cores, that no core already runs a kernel on the same
    /// RISC, NUL-free strings, define names, and `unpack_to_dest_fp32` indices; a compiler error
    /// comes back as [`ProgramError::KernelBuild`] with the compiler output.
    pub fn add_kernel(&mut self, spec: KernelSpec) -> Result<KernelHandle, ProgramError> {
        let what = format!("kernel {}", spec.name);
        let cores = self.validate_cores(&what, &spec.cores)?;
        let info = &self.device.info;
        for k in &self.kernels {
            let same_risc = match (&k.kind, &spec.kind) {
                (KernelKind::Compute(_), KernelKind::Compute(_)) => true,
                (
                    KernelKind::DataMovement { processor: a, .. },
                    KernelKind::DataMovement { processor: b, .. },
                ) => a == b,
                _ => false,
            };
            if same_risc && let Some(core) = first_common(&k.cores, &cores) {
                return Err(ProgramError::KernelOverlap {
                    kernel: spec.name.clone(),
                    other: k.name.clone(),
                    risc: spec.kind.risc(),
                    core,
                });
            }
        }
        for (name, _) in &spec.defines {
            if !is_identifier(name) {
                return Err(ProgramError::BadDefine {
                    kernel: spec.name.clone(),
                    name: name.clone(),
                });
            }
        }
        let name = c_string(|| format!("kernel name {:?}", spec.name), &spec.name)?;
        let source = c_string(|| format!("kernel {} source", spec.name), &spec.source)?;
        let defines = spec
            .defines
            .iter()
            .map(|(n, v)| {
                Ok((
                    c_string(|| format!("kernel {} define {n}", spec.name), n)?,
                    c_string(|| format!("kernel {} define {n} value", spec.name), v)?,
                ))
            })
            .collect::<Result<Vec<_>, ProgramError>>()?;
        let mut desc = KernelDesc {
            name,
            source,
            kind: tt_sys::tt_kernel_kind::TT_KERNEL_DATA_MOVEMENT,
            processor: tt_sys::tt_processor::TT_RISCV_0,
            noc: 0,
            ranges: c_ranges(&cores),
            compile_args: spec.compile_args.clone(),
            defines,
            math_fidelity: MathFidelity::HiFi4.raw(),
            fp32_dest_acc_en: false,
            dst_full_sync_en: false,
            math_approx_mode: false,
            bfp8_pack_precise: false,
            unpack_to_dest_fp32: None,
        };
        match &spec.kind {
            KernelKind::DataMovement { processor, noc } => {
                desc.processor = match processor {
                    Processor::Riscv0 => tt_sys::tt_processor::TT_RISCV_0,
                    Processor::Riscv1 => tt_sys::tt_processor::TT_RISCV_1,
                };
                desc.noc = match noc {
                    Noc::Noc0 => 0,
                    Noc::Noc1 => 1,
                };
            }
            KernelKind::Compute(c) => {
                desc.kind = tt_sys::tt_kernel_kind::TT_KERNEL_COMPUTE;
                desc.math_fidelity = c.fidelity.raw();
                desc.fp32_dest_acc_en = c.fp32_dest_acc;
                desc.dst_full_sync_en = c.dst_full_sync;
                desc.math_approx_mode = c.approx;
                desc.bfp8_pack_precise = c.bfp8_pack_precise;
                if !c.unpack_to_dest_fp32.is_empty() {
                    let mut modes = vec![0u32; info.max_circular_buffers as usize];
                    for &i in &c.unpack_to_dest_fp32 {
                        let slot = modes.get_mut(i as usize).ok_or_else(|| {
                            ProgramError::UnpackToDestIndex {
                                kernel: spec.name.clone(),
                                index: i,
                                max: info.max_circular_buffers,
                            }
                        })?;
                        *slot = 1;
                    }
                    desc.unpack_to_dest_fp32 = Some(modes);
                }
            }
        }
        let id = self
            .device
            .ffi
            .program_add_kernel(self.raw(), &desc)
            .map_err(|e| {
                if e.status == Status::KernelBuild {
                    ProgramError::KernelBuild {
                        kernel: spec.name.clone(),
                        message: e.message,
                    }
                } else {
                    ProgramError::Provider(e)
                }
            })?;
        self.kernels.push(KernelRecord {
            name: spec.name,
            kind: spec.kind,
            cores,
            common_args: 0,
            unique_args: Vec::new(),
        });
        Ok(KernelHandle {
            program: self.uid,
            index: self.kernels.len() - 1,
            id,
        })
    }

    fn kernel(&self, kernel: KernelHandle) -> Result<&KernelRecord, ProgramError> {
        if kernel.program != self.uid {
            return Err(ProgramError::Foreign {
                what: "the kernel handle",
                owner: "program",
            });
        }
        self.kernels.get(kernel.index).ok_or(ProgramError::Foreign {
            what: "the kernel handle",
            owner: "program",
        })
    }

    /// Sets the unique runtime args of `kernel` on `core` (`get_arg_val<T>(i)`). Checked before the
    /// provider is called: the core runs the kernel, and unique + common args fit the device limit.
    pub fn set_runtime_args(
        &mut self,
        kernel: KernelHandle,
        core: CoreCoord,
        args: &[u32],
    ) -> Result<(), ProgramError> {
        let max = self.device.info.max_runtime_args;
        let k = self.kernel(kernel)?;
        self.device
            .info
            .grid
            .check_core(&format!("runtime args of kernel {}", k.name), core)?;
        if !k.cores.contains(core) {
            return Err(ProgramError::CoreNotInKernel {
                kernel: k.name.clone(),
                core,
                cores: describe(k.cores.ranges()),
            });
        }
        if args.len() + k.common_args > max as usize {
            return Err(ProgramError::TooManyRuntimeArgs {
                kernel: k.name.clone(),
                core,
                unique: args.len(),
                common: k.common_args,
                max,
            });
        }
        self.device
            .ffi
            .program_set_runtime_args(self.raw(), kernel.id, (core.x, core.y), args)?;
        let k = &mut self.kernels[kernel.index];
        match k.unique_args.iter_mut().find(|(c, _)| *c == core) {
            Some(entry) => entry.1 = args.len(),
            None => k.unique_args.push((core, args.len())),
        }
        Ok(())
    }

    /// Sets the same runtime args of `kernel` on every core in `cores` (a loop over
    /// [`Program::set_runtime_args`]).
    pub fn set_runtime_args_on(
        &mut self,
        kernel: KernelHandle,
        cores: impl CoreSpec,
        args: &[u32],
    ) -> Result<(), ProgramError> {
        let set = self.validate_cores("runtime args", &cores)?;
        for c in set.iter() {
            self.set_runtime_args(kernel, c, args)?;
        }
        Ok(())
    }

    /// Sets the common runtime args of `kernel` (`get_common_arg_val<T>(i)`), shared by all its
    /// cores; checked against the limit together with each core's unique args.
    pub fn set_common_runtime_args(
        &mut self,
        kernel: KernelHandle,
        args: &[u32],
    ) -> Result<(), ProgramError> {
        let max = self.device.info.max_runtime_args;
        let k = self.kernel(kernel)?;
        let (core, unique) = k
            .unique_args
            .iter()
            .copied()
            .max_by_key(|(_, n)| *n)
            .unwrap_or((k.cores.ranges()[0].start, 0));
        if args.len() + unique > max as usize {
            return Err(ProgramError::TooManyRuntimeArgs {
                kernel: k.name.clone(),
                core,
                unique,
                common: args.len(),
                max,
            });
        }
        self.device
            .ffi
            .program_set_common_runtime_args(self.raw(), kernel.id, args)?;
        self.kernels[kernel.index].common_args = args.len();
        Ok(())
    }

    /// The cores `kernel` runs on.
    pub fn kernel_cores(&self, kernel: KernelHandle) -> Result<&CoreRangeSet, ProgramError> {
        Ok(&self.kernel(kernel)?.cores)
    }

    /// True when a CB index is used on `core` by this program.
    pub fn cb_index_used(&self, index: u32, core: CoreCoord) -> bool {
        self.cbs
            .iter()
            .any(|cb| cb.indices.contains(&index) && cb.cores.contains(core))
    }

    /// A core range helper: the whole grid of this program's device.
    pub fn all_cores(&self) -> CoreRange {
        self.device.info.grid.all()
    }
}
