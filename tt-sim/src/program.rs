//! Programs: circular buffers, semaphores, kernels and runtime arguments, as the host sets them up.

use std::collections::HashMap;
use std::sync::Arc;

use crate::arch::{
    ArchParams, CoreCoord, CoreRange, MAX_RUNTIME_ARGS, NUM_SEMAPHORES, SEMAPHORE_BASE,
    SEMAPHORE_STRIDE, align_up,
};
use crate::device::{BufferId, BufferType, SimDevice};
use crate::error::{SimError, SimResult, invalid};
use crate::jit::{self, BuildRequest};
use crate::kernel_host::{KernelImage, image_for};

/// The RISC a kernel runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Risc {
    /// RISCV_0, data movement.
    Brisc,
    /// RISCV_1, data movement.
    Ncrisc,
    /// The three TRISCs (unpack, math, pack), emulated as one sequential thread.
    Compute,
}

impl Risc {
    /// Name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Risc::Brisc => "BRISC",
            Risc::Ncrisc => "NCRISC",
            Risc::Compute => "TRISC (compute)",
        }
    }
    /// Runtime-arg slot index.
    pub fn slot(self) -> u32 {
        match self {
            Risc::Brisc => 0,
            Risc::Ncrisc => 1,
            Risc::Compute => 2,
        }
    }
}

/// Math fidelity of a compute kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MathFidelity {
    /// One phase.
    LoFi,
    /// Two phases.
    HiFi2,
    /// Three phases.
    HiFi3,
    /// Four phases.
    HiFi4,
}

/// Compute kernel configuration (TT-Metal `ComputeConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ComputeConfig {
    /// Math fidelity.
    pub math_fidelity: MathFidelity,
    /// fp32 DEST accumulation.
    pub fp32_dest_acc_en: bool,
    /// Full-sync DEST (16/8 tiles instead of 8/4).
    pub dst_full_sync_en: bool,
    /// Approximate SFPU mode.
    pub math_approx_mode: bool,
    /// Pack BFP8 from fp32 precisely.
    pub bfp8_pack_precise: bool,
    /// Per CB index: unpack Float32 straight to DEST.
    pub unpack_to_dest_fp32: Vec<bool>,
}

impl Default for ComputeConfig {
    fn default() -> Self {
        ComputeConfig {
            math_fidelity: MathFidelity::HiFi4,
            fp32_dest_acc_en: false,
            dst_full_sync_en: false,
            math_approx_mode: false,
            bfp8_pack_precise: false,
            unpack_to_dest_fp32: Vec::new(),
        }
    }
}

/// Which kind of kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KernelKind {
    /// Data movement on BRISC (RISCV_0) or NCRISC (RISCV_1), using NoC 0 or 1.
    DataMovement {
        /// BRISC or NCRISC.
        risc: Risc,
        /// NoC index.
        noc: u8,
    },
    /// Compute on the TRISCs.
    Compute(ComputeConfig),
}

/// A kernel to add to a program.
#[derive(Debug, Clone)]
pub struct KernelConfig {
    /// Name for messages and the cache.
    pub name: String,
    /// Full C++ source in the TT-Metal kernel dialect.
    pub source: String,
    /// Data movement or compute.
    pub kind: KernelKind,
    /// Cores it runs on.
    pub cores: Vec<CoreRange>,
    /// Compile-time args.
    pub compile_args: Vec<u32>,
    /// Defines (name, value).
    pub defines: Vec<(String, String)>,
}

/// Handle of a kernel inside a program.
pub type KernelId = u32;

/// One CB index of a circular-buffer config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CbFormat {
    /// CB index.
    pub index: u32,
    /// `tt_data_format` value.
    pub data_format: u32,
    /// Bytes per page.
    pub page_size: u32,
}

/// A circular-buffer config (TT-Metal `CircularBufferConfig`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CbConfig {
    /// Bytes shared by every index.
    pub total_size: u32,
    /// Indices with their formats and page sizes.
    pub formats: Vec<CbFormat>,
    /// Back the CB by this L1 buffer (sharded) instead of allocating.
    pub globally_allocated: Option<BufferId>,
}

#[derive(Debug, Clone)]
pub(crate) struct CbAlloc {
    pub cores: Vec<usize>,
    /// Address for statically placed CBs; for globally allocated ones the buffer's.
    pub addr: u32,
    pub total_size: u32,
    pub formats: Vec<CbFormat>,
    pub global: Option<BufferId>,
}

#[derive(Debug)]
pub(crate) struct Kernel {
    pub name: String,
    pub kind: KernelKind,
    pub cores: Vec<usize>,
    /// The loaded image of the kernel's binary (shared process-wide, see `kernel_host`).
    pub image: Arc<KernelImage>,
    pub rt_args: HashMap<usize, Vec<u32>>,
    pub common_args: Vec<u32>,
}

impl Kernel {
    pub fn risc(&self) -> Risc {
        match &self.kind {
            KernelKind::DataMovement { risc, .. } => *risc,
            KernelKind::Compute(_) => Risc::Compute,
        }
    }
}

/// A program under construction or ready to run.
pub struct SimProgram {
    pub(crate) arch: ArchParams,
    pub(crate) cbs: Vec<CbAlloc>,
    /// Per core: end of the statically allocated CBs.
    pub(crate) cb_top: HashMap<usize, u32>,
    /// Per core: CB indices in use.
    cb_used: HashMap<usize, u64>,
    /// (core, id) -> initial value.
    pub(crate) semaphores: HashMap<(usize, u32), u32>,
    pub(crate) kernels: Vec<Kernel>,
    /// (core, risc) -> kernel index.
    pub(crate) placement: HashMap<(usize, Risc), usize>,
    /// Estimated profile of the last successful run.
    pub(crate) last_profile: Option<crate::timing::Profile>,
}

pub(crate) fn expand_cores(
    a: &ArchParams,
    ranges: &[CoreRange],
    what: &str,
) -> SimResult<Vec<usize>> {
    let mut v = Vec::new();
    if ranges.is_empty() {
        return invalid(format!("{what}: the core range set is empty"));
    }
    for r in ranges {
        if r.start.x > r.end.x || r.start.y > r.end.y {
            return invalid(format!(
                "{what}: core range {}..{} is inverted (start must be <= end)",
                r.start, r.end
            ));
        }
        for c in r.iter() {
            let i = a.core_index(c).ok_or_else(|| {
                SimError::InvalidArgument(format!(
                    "{what}: core {c} is outside the {}x{} worker grid of {}",
                    a.grid_x,
                    a.grid_y,
                    a.name()
                ))
            })?;
            if !v.contains(&i) {
                v.push(i);
            }
        }
    }
    Ok(v)
}

impl SimProgram {
    /// The ESTIMATED per-core, per-RISC profile of the last successful run (timing model), or
    /// `None` before the first run or after a failed one.
    pub fn profile(&self) -> Option<&crate::timing::Profile> {
        self.last_profile.as_ref()
    }

    /// An empty program for `dev`.
    pub fn new(dev: &SimDevice) -> SimProgram {
        SimProgram {
            arch: dev.arch().clone(),
            cbs: Vec::new(),
            cb_top: HashMap::new(),
            cb_used: HashMap::new(),
            semaphores: HashMap::new(),
            kernels: Vec::new(),
            placement: HashMap::new(),
            last_profile: None,
        }
    }

    fn core_name(&self, i: usize) -> CoreCoord {
        self.arch.core_at(i)
    }

    /// Adds a circular buffer on `cores`; returns its handle (index in the program).
    pub fn add_circular_buffer(
        &mut self,
        dev: &SimDevice,
        cores: &[CoreRange],
        cfg: &CbConfig,
    ) -> SimResult<u32> {
        let cores = expand_cores(&self.arch, cores, "circular buffer")?;
        if cfg.formats.is_empty() {
            return invalid("circular buffer config has no CB index (formats is empty)");
        }
        if cfg.total_size == 0 {
            return invalid("circular buffer total_size is 0");
        }
        let mut mask = 0u64;
        for f in &cfg.formats {
            if f.index >= self.arch.max_circular_buffers {
                return invalid(format!(
                    "CB index {} is out of range: {} has {} CB indices",
                    f.index,
                    self.arch.name(),
                    self.arch.max_circular_buffers
                ));
            }
            if mask & (1 << f.index) != 0 {
                return invalid(format!("CB index {} appears twice in one config", f.index));
            }
            mask |= 1 << f.index;
            if f.page_size == 0 || !cfg.total_size.is_multiple_of(f.page_size) {
                return invalid(format!(
                    "CB {}: total size {} is not a positive multiple of the page size {}",
                    f.index, cfg.total_size, f.page_size
                ));
            }
            tt_formats::DataFormat::from_raw(f.data_format)
                .map_err(|e| SimError::InvalidArgument(format!("CB {}: {e}", f.index)))?;
        }
        for &c in &cores {
            let used = self.cb_used.get(&c).copied().unwrap_or(0);
            if used & mask != 0 {
                let idx = (0..64).find(|i| used & mask & (1 << i) != 0).unwrap_or(0);
                return invalid(format!(
                    "CB index {idx} is already used on core {} in this program; pick another index",
                    self.core_name(c)
                ));
            }
        }
        let (addr, global) = if let Some(bid) = cfg.globally_allocated {
            let b = dev.buffer(bid)?;
            if b.cfg.buffer_type != BufferType::L1 {
                return invalid("a globally allocated CB must be backed by an L1 buffer");
            }
            let per_core = match &b.shard_map {
                Some(_) => b.num_pages.div_ceil(b.shard_cores.len().max(1) as u64) * b.aligned_page,
                None => b.num_pages.div_ceil(self.arch.num_workers() as u64) * b.aligned_page,
            };
            if (cfg.total_size as u64) > per_core.max(b.cfg.size) {
                return invalid(format!(
                    "CB total size {} exceeds the backing buffer's {} bytes per core",
                    cfg.total_size, per_core
                ));
            }
            (b.address as u32, Some(bid))
        } else {
            let base = self.arch.l1_unreserved_base;
            let addr = cores
                .iter()
                .map(|c| self.cb_top.get(c).copied().unwrap_or(base))
                .max()
                .unwrap_or(base);
            let addr = align_up(addr as u64, self.arch.l1_alignment as u64) as u32;
            let end = addr as u64 + cfg.total_size as u64;
            if end > self.arch.l1_size as u64 {
                return Err(SimError::OutOfMemory(format!(
                    "circular buffers need L1 up to {end:#x} but L1 ends at {:#x}: {} bytes too many",
                    self.arch.l1_size,
                    end - self.arch.l1_size as u64
                )));
            }
            for &c in &cores {
                self.cb_top.insert(c, end as u32);
            }
            (addr, None)
        };
        for &c in &cores {
            *self.cb_used.entry(c).or_insert(0) |= mask;
        }
        self.cbs.push(CbAlloc {
            cores,
            addr,
            total_size: cfg.total_size,
            formats: cfg.formats.clone(),
            global,
        });
        Ok(self.cbs.len() as u32 - 1)
    }

    /// Adds a semaphore on `cores` with an initial value; returns its id (same on every core).
    pub fn add_semaphore(&mut self, cores: &[CoreRange], initial: u32) -> SimResult<u32> {
        let cores = expand_cores(&self.arch, cores, "semaphore")?;
        let id = (0..NUM_SEMAPHORES)
            .find(|id| {
                cores
                    .iter()
                    .all(|&c| !self.semaphores.contains_key(&(c, *id)))
            })
            .ok_or_else(|| {
                SimError::OutOfMemory(format!(
                    "no semaphore id is free on all of these cores ({NUM_SEMAPHORES} per core)"
                ))
            })?;
        for c in cores {
            self.semaphores.insert((c, id), initial);
        }
        Ok(id)
    }

    /// L1 address of semaphore `id`.
    pub fn semaphore_address(id: u32) -> u32 {
        SEMAPHORE_BASE + id * SEMAPHORE_STRIDE
    }

    /// Compiles (or takes from the cache) a kernel and places it on its cores.
    pub fn add_kernel(&mut self, cfg: &KernelConfig) -> SimResult<KernelId> {
        let cores = expand_cores(&self.arch, &cfg.cores, &format!("kernel '{}'", cfg.name))?;
        let risc = match &cfg.kind {
            KernelKind::DataMovement {
                risc: Risc::Compute,
                ..
            } => {
                return invalid(format!(
                    "kernel '{}': a data movement kernel runs on BRISC or NCRISC",
                    cfg.name
                ));
            }
            KernelKind::DataMovement { noc, .. } if *noc > 1 => {
                return invalid(format!(
                    "kernel '{}': noc must be 0 or 1, got {noc}",
                    cfg.name
                ));
            }
            KernelKind::DataMovement { risc, .. } => *risc,
            KernelKind::Compute(_) => Risc::Compute,
        };
        for &c in &cores {
            if let Some(&k) = self.placement.get(&(c, risc)) {
                return invalid(format!(
                    "kernel '{}': core {} already runs kernel '{}' on {}",
                    cfg.name,
                    self.core_name(c),
                    self.kernels[k].name,
                    risc.name()
                ));
            }
        }
        let mut sim_defines: Vec<(String, String)> = vec![(
            match self.arch.arch {
                crate::arch::SimArch::WormholeB0 => "ARCH_WORMHOLE".into(),
                crate::arch::SimArch::Blackhole => "ARCH_BLACKHOLE".into(),
            },
            String::new(),
        )];
        sim_defines.push((
            "NOC_MAX_BURST_SIZE".into(),
            self.arch.noc_max_burst.to_string(),
        ));
        match &cfg.kind {
            KernelKind::DataMovement { risc, noc } => {
                sim_defines.push((
                    if *risc == Risc::Brisc {
                        "COMPILE_FOR_BRISC"
                    } else {
                        "COMPILE_FOR_NCRISC"
                    }
                    .into(),
                    String::new(),
                ));
                sim_defines.push(("NOC_INDEX".into(), noc.to_string()));
            }
            KernelKind::Compute(cc) => {
                sim_defines.push(("COMPILE_FOR_TRISC".into(), String::new()));
                sim_defines.push(("TT_SIM_COMPUTE".into(), "1".into()));
                sim_defines.push((
                    "TT_SIM_APPROX".into(),
                    (cc.math_approx_mode as u32).to_string(),
                ));
                sim_defines.push((
                    "TT_SIM_FP32_DEST_ACC".into(),
                    (cc.fp32_dest_acc_en as u32).to_string(),
                ));
                sim_defines.push((
                    "TT_SIM_DST_FULL_SYNC".into(),
                    (cc.dst_full_sync_en as u32).to_string(),
                ));
                let f = match cc.math_fidelity {
                    MathFidelity::LoFi => 0,
                    MathFidelity::HiFi2 => 2,
                    MathFidelity::HiFi3 => 3,
                    MathFidelity::HiFi4 => 4,
                };
                sim_defines.push(("TT_SIM_MATH_FIDELITY".into(), f.to_string()));
            }
        }
        let binary = jit::build(&BuildRequest {
            name: &cfg.name,
            source: &cfg.source,
            compile_args: &cfg.compile_args,
            defines: &cfg.defines,
            sim_defines,
        })?;
        let image = image_for(&binary)?;
        let k = self.kernels.len();
        for &c in &cores {
            self.placement.insert((c, risc), k);
        }
        self.kernels.push(Kernel {
            name: cfg.name.clone(),
            kind: cfg.kind.clone(),
            cores,
            image,
            rt_args: HashMap::new(),
            common_args: Vec::new(),
        });
        Ok(k as KernelId)
    }

    fn kernel_mut(&mut self, id: KernelId) -> SimResult<&mut Kernel> {
        let n = self.kernels.len();
        self.kernels.get_mut(id as usize).ok_or_else(|| {
            SimError::InvalidArgument(format!("kernel id {id} does not exist ({n} kernels)"))
        })
    }

    /// Sets the runtime args of a kernel on one core.
    pub fn set_runtime_args(
        &mut self,
        id: KernelId,
        core: CoreCoord,
        args: &[u32],
    ) -> SimResult<()> {
        let arch = self.arch.clone();
        let k = self.kernel_mut(id)?;
        let ci = arch.core_index(core).ok_or_else(|| {
            SimError::InvalidArgument(format!(
                "core {core} is outside the {}x{} grid",
                arch.grid_x, arch.grid_y
            ))
        })?;
        if !k.cores.contains(&ci) {
            return invalid(format!("kernel '{}' does not run on core {core}", k.name));
        }
        if args.len() + k.common_args.len() > MAX_RUNTIME_ARGS as usize {
            return invalid(format!(
                "kernel '{}' on core {core}: {} runtime args + {} common args exceed the limit of {MAX_RUNTIME_ARGS}",
                k.name,
                args.len(),
                k.common_args.len()
            ));
        }
        k.rt_args.insert(ci, args.to_vec());
        Ok(())
    }

    /// Sets the common runtime args of a kernel (same on every core).
    pub fn set_common_runtime_args(&mut self, id: KernelId, args: &[u32]) -> SimResult<()> {
        let k = self.kernel_mut(id)?;
        let max_unique = k.rt_args.values().map(|v| v.len()).max().unwrap_or(0);
        if args.len() + max_unique > MAX_RUNTIME_ARGS as usize {
            return invalid(format!(
                "kernel '{}': {} common args + {max_unique} runtime args exceed the limit of {MAX_RUNTIME_ARGS}",
                k.name,
                args.len()
            ));
        }
        k.common_args = args.to_vec();
        Ok(())
    }

    /// Number of kernels.
    pub fn num_kernels(&self) -> usize {
        self.kernels.len()
    }
}
