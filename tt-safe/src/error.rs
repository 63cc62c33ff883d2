//! Typed errors. Every operation family has its own enum; [`Error`] wraps them all so that
//! application code can use one `?` type. Errors that come from the device provider carry the
//! provider's own message ([`ProviderError`]) verbatim, because only the provider knows, for
//! example, how much L1 is still free or which line of a kernel failed to compile.

use crate::grid::CoreCoord;
use thiserror::Error;

/// Status codes of the C ABI (`tt_status` in `tt_shim.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// A bad value: core outside the grid, bad size, bad index.
    InvalidArgument,
    /// L1 or DRAM allocation failed.
    OutOfMemory,
    /// A kernel failed to compile.
    KernelBuild,
    /// A running kernel broke a rule (watcher-grade check).
    KernelFault,
    /// No RISC can make progress.
    Deadlock,
    /// The provider does not implement this feature.
    Unsupported,
    /// The device or driver failed.
    Device,
    /// Caller and provider disagree on the ABI version.
    AbiMismatch,
    /// A bug in the provider.
    Internal,
    /// A status value this crate does not know (a newer provider).
    Unknown(u32),
}

impl Status {
    /// Maps a raw `tt_status`; `None` for `TT_OK`.
    pub fn from_raw(raw: u32) -> Option<Status> {
        use tt_sys::tt_status as s;
        Some(match raw {
            s::TT_OK => return None,
            s::TT_ERR_INVALID_ARGUMENT => Status::InvalidArgument,
            s::TT_ERR_OUT_OF_MEMORY => Status::OutOfMemory,
            s::TT_ERR_KERNEL_BUILD => Status::KernelBuild,
            s::TT_ERR_KERNEL_FAULT => Status::KernelFault,
            s::TT_ERR_DEADLOCK => Status::Deadlock,
            s::TT_ERR_UNSUPPORTED => Status::Unsupported,
            s::TT_ERR_DEVICE => Status::Device,
            s::TT_ERR_ABI_MISMATCH => Status::AbiMismatch,
            s::TT_ERR_INTERNAL => Status::Internal,
            other => Status::Unknown(other),
        })
    }

    /// What a user can usually do about this status.
    pub fn hint(self) -> &'static str {
        match self {
            Status::InvalidArgument => "fix the argument named in the message",
            Status::OutOfMemory => {
                "free buffers, use smaller circular buffers, or slice the work (the message says how much is free)"
            }
            Status::KernelBuild => "fix the kernel source (the message has the compiler output)",
            Status::KernelFault => {
                "fix the kernel: the message names the core, RISC, kernel and call that broke the rule"
            }
            Status::Deadlock => {
                "check CB push/pop counts, semaphore protocols and runtime args; the message lists every blocked call"
            }
            Status::Unsupported => "use a supported feature, or another provider",
            Status::Device => "check the device and driver (tt-smi), then reopen the device",
            Status::AbiMismatch => "rebuild the provider library against this tt_shim.h version",
            Status::Internal => "this is a provider bug: report it with the message",
            Status::Unknown(_) => "the provider is newer than this crate; upgrade tt-safe",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Status::InvalidArgument => "invalid argument",
            Status::OutOfMemory => "out of memory",
            Status::KernelBuild => "kernel build failed",
            Status::KernelFault => "kernel fault",
            Status::Deadlock => "deadlock",
            Status::Unsupported => "unsupported",
            Status::Device => "device error",
            Status::AbiMismatch => "ABI mismatch",
            Status::Internal => "internal provider error",
            Status::Unknown(v) => return write!(f, "unknown status {v}"),
        };
        f.write_str(s)
    }
}

/// A call into the device provider failed. `message` is the provider's own explanation
/// (`last_error()`), read on the calling thread right after the failing call.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{provider} provider: {call} failed ({status}): {message} [{hint}]", hint = status.hint())]
pub struct ProviderError {
    /// `"sim"` or `"metal"`.
    pub provider: String,
    /// The ABI function that failed, e.g. `"buffer_create"`.
    pub call: &'static str,
    /// The status it returned.
    pub status: Status,
    /// The provider's message (may be empty if the provider gave none).
    pub message: String,
}

/// A core coordinate that is not a worker core of this device.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GridError {
    /// A logical core outside the worker grid.
    #[error(
        "{what}: core ({x}, {y}) is outside the {grid_x}x{grid_y} worker grid of this device \
         (valid logical cores are x in 0..{grid_x}, y in 0..{grid_y}); use device.grid() to size your core ranges",
        x = core.x, y = core.y
    )]
    CoreOutsideGrid {
        /// What the core was used for.
        what: String,
        /// The offending core.
        core: CoreCoord,
        /// Grid width.
        grid_x: u32,
        /// Grid height.
        grid_y: u32,
    },
    /// An empty core set where at least one core is needed.
    #[error("{what}: the core set is empty; give at least one core")]
    EmptyCoreSet {
        /// What the core set was for.
        what: String,
    },
    /// A core range whose start is not at or before its end.
    #[error(
        "{what}: core range ({sx}, {sy})..=({ex}, {ey}) is inverted; start must be the top-left corner",
        sx = start.x, sy = start.y, ex = end.x, ey = end.y
    )]
    InvertedRange {
        /// What the range was for.
        what: String,
        /// Start corner.
        start: CoreCoord,
        /// End corner.
        end: CoreCoord,
    },
}

/// Errors of [`Device::open`](crate::Device::open) and friends.
#[derive(Debug, Error)]
pub enum OpenError {
    /// An environment variable has a value this crate does not understand.
    #[error("environment variable {var}={value:?} is not valid: expected {expected}")]
    BadEnv {
        /// Variable name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The metal provider was asked for but its shim library could not be used.
    #[error(
        "the metal provider is not available: {reason}. Build tt-sys on a host with TT-Metal installed \
         (TT_METAL_HOME) and point TT_SHIM_LIB at libtt_shim_metal.so, or use the simulator (TT_DEVICE=sim)"
    )]
    MetalUnavailable {
        /// Why loading failed (the loader's message).
        reason: String,
    },
    /// The in-process simulator's table failed the loader's checks (a build mismatch).
    #[error(
        "the simulator provider could not be used: {0}. Rebuild tt-sim and tt-safe from the same tree"
    )]
    SimUnavailable(tt_sys::LoadError),
    /// The metal provider loaded but has no device with this id.
    #[error(
        "the metal provider reports {count} device(s), so device id {id} does not exist; \
         check `tt-smi` and pick an id below {count}"
    )]
    NoSuchDevice {
        /// Requested id.
        id: u32,
        /// Devices present.
        count: u32,
    },
    /// The provider table failed the ABI checks.
    #[error(
        "the {provider} provider speaks ABI version {found} (table size {size} bytes), this crate needs version {expected} \
         with at least {min_size} bytes: rebuild the provider against this tt_shim.h"
    )]
    AbiMismatch {
        /// Provider name.
        provider: String,
        /// Version it reported.
        found: u32,
        /// Version required.
        expected: u32,
        /// Its table size.
        size: u32,
        /// Required table size.
        min_size: u32,
    },
    /// The provider table lacks a function.
    #[error(
        "the {provider} provider does not fill the ABI function {function}: rebuild the provider"
    )]
    MissingFunction {
        /// Provider name.
        provider: String,
        /// The missing function.
        function: &'static str,
    },
    /// The provider reported device data this crate cannot use.
    #[error("the {provider} provider reported an unusable device: {what}")]
    BadDeviceInfo {
        /// Provider name.
        provider: String,
        /// What is wrong.
        what: String,
    },
    /// A provider call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Why a [`ShardSpec`](crate::ShardSpec) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShardSpecError {
    /// A zero dimension.
    #[error("shard spec: {what} is {h}x{w}; every dimension must be at least 1")]
    ZeroDim {
        /// Which shape.
        what: &'static str,
        /// Height.
        h: u32,
        /// Width.
        w: u32,
    },
    /// The shard shape is not made of whole pages.
    #[error(
        "shard spec: shard shape {sh}x{sw} is not a multiple of the page shape {ph}x{pw}; \
         round the shard shape up to whole pages (e.g. {rh}x{rw})",
        rh = sh.div_ceil(*ph) * ph, rw = sw.div_ceil(*pw) * pw
    )]
    ShardNotWholePages {
        /// Shard height.
        sh: u32,
        /// Shard width.
        sw: u32,
        /// Page height.
        ph: u32,
        /// Page width.
        pw: u32,
    },
    /// The tensor is not made of whole pages.
    #[error(
        "shard spec: tensor shape {th}x{tw} is not a multiple of the page shape {ph}x{pw}; pad the tensor to {rh}x{rw}",
        rh = th.div_ceil(*ph) * ph, rw = tw.div_ceil(*pw) * pw
    )]
    TensorNotWholePages {
        /// Tensor height.
        th: u32,
        /// Tensor width.
        tw: u32,
        /// Page height.
        ph: u32,
        /// Page width.
        pw: u32,
    },
    /// Height sharding needs full-width shards.
    #[error(
        "shard spec: height sharding needs shards as wide as the tensor ({tensor_w} elements), but the shard is {shard_w} wide; \
         set the shard width to {tensor_w} or use block sharding"
    )]
    HeightShardWidth {
        /// Shard width.
        shard_w: u32,
        /// Tensor width.
        tensor_w: u32,
    },
    /// Width sharding needs full-height shards.
    #[error(
        "shard spec: width sharding needs shards as tall as the tensor ({tensor_h} elements), but the shard is {shard_h} tall; \
         set the shard height to {tensor_h} or use block sharding"
    )]
    WidthShardHeight {
        /// Shard height.
        shard_h: u32,
        /// Tensor height.
        tensor_h: u32,
    },
    /// More shards than cores.
    #[error(
        "shard spec: a {tensor_h}x{tensor_w} tensor in {shard_h}x{shard_w} shards needs {needed} shards ({layout}), \
         but the core set has only {cores} cores; use larger shards or more cores"
    )]
    TooManyShards {
        /// Layout name.
        layout: &'static str,
        /// Tensor height (elements).
        tensor_h: u32,
        /// Tensor width (elements).
        tensor_w: u32,
        /// Shard height.
        shard_h: u32,
        /// Shard width.
        shard_w: u32,
        /// Shards needed.
        needed: u32,
        /// Cores available.
        cores: u32,
    },
    /// Block sharding needs one rectangle of cores.
    #[error(
        "shard spec: block sharding needs the cores to be one rectangle, got {ranges} range(s) covering {cores} cores; \
         use a single CoreRange"
    )]
    BlockNotRectangle {
        /// Number of ranges given.
        ranges: usize,
        /// Cores covered.
        cores: u32,
    },
    /// Block sharding grid too small in one direction.
    #[error(
        "shard spec: block sharding ({orientation}) puts {needed} shards along {axis}, but the core rectangle has only {have}; \
         use larger shards along that axis or a wider core rectangle"
    )]
    BlockGridTooSmall {
        /// "row-major" or "column-major".
        orientation: &'static str,
        /// Which axis ("x (tensor width)" ...).
        axis: &'static str,
        /// Shards needed.
        needed: u32,
        /// Cores available along that axis.
        have: u32,
    },
    /// The buffer size does not match the tensor.
    #[error(
        "shard spec: the tensor is {pages} pages of {page_size} bytes = {expected} bytes, but the buffer size is {size}; \
         make them agree"
    )]
    SizeMismatch {
        /// Pages in the tensor.
        pages: u64,
        /// Page size in bytes.
        page_size: u32,
        /// Expected size.
        expected: u64,
        /// Given size.
        size: u64,
    },
    /// Sharded buffers live in L1.
    #[error(
        "shard spec: sharded buffers must be in L1 (DRAM sharding is not supported by this ABI); use BufferKind::L1"
    )]
    NotL1,
    /// Bad cores.
    #[error(transparent)]
    Grid(#[from] GridError),
}

/// Errors of buffer creation, reads and writes.
#[derive(Debug, Error)]
pub enum BufferError {
    /// Size or page size is zero.
    #[error("buffer: size ({size}) and page size ({page_size}) must both be non-zero")]
    Zero {
        /// Size.
        size: u64,
        /// Page size.
        page_size: u32,
    },
    /// Size is not a whole number of pages.
    #[error(
        "buffer: size {size} is not a multiple of the page size {page_size}; round the size up to {rounded}",
        rounded = size.div_ceil(*page_size as u64) * *page_size as u64
    )]
    NotWholePages {
        /// Size.
        size: u64,
        /// Page size.
        page_size: u32,
    },
    /// A sharded spec was rejected.
    #[error(transparent)]
    Shard(#[from] ShardSpecError),
    /// The buffer cannot fit in L1 of one core even if it were empty.
    #[error(
        "buffer: {per_core} bytes per core do not fit in L1: a core has {available} bytes for user data \
         ({l1_size} bytes of L1 from address {base}); use DRAM, shard over more cores, or make it smaller"
    )]
    TooLargeForL1 {
        /// Bytes the buffer needs on its busiest core.
        per_core: u64,
        /// Bytes a core has for user allocations.
        available: u64,
        /// L1 size.
        l1_size: u32,
        /// First user address.
        base: u32,
    },
    /// The provider ran out of memory.
    #[error(
        "buffer: allocating {size} bytes of {memory} failed: {message}; free other buffers, \
         use {alternative}, or make the buffer smaller"
    )]
    OutOfMemory {
        /// "L1" or "DRAM".
        memory: &'static str,
        /// Requested size.
        size: u64,
        /// Provider message (says how much is free).
        message: String,
        /// What to try instead.
        alternative: &'static str,
    },
    /// A read or write outside the buffer.
    #[error(
        "buffer: {op} of {len} bytes at offset {offset} is out of range for a {size}-byte buffer; \
         keep offset + length <= {size}"
    )]
    OutOfRange {
        /// "read" or "write".
        op: &'static str,
        /// Offset.
        offset: u64,
        /// Length.
        len: u64,
        /// Buffer size.
        size: u64,
    },
    /// The address does not fit in 32 bits (for runtime args).
    #[error(
        "buffer: address {0:#x} does not fit in a 32-bit runtime argument; pass it as two words"
    )]
    AddressTooWide(u64),
    /// A typed read of a size that is not a multiple of the element size.
    #[error("buffer: {size} bytes are not a whole number of {elem}-byte elements")]
    NotWholeElements {
        /// Bytes.
        size: u64,
        /// Element size.
        elem: usize,
    },
    /// TensorAccessor args asked for a sharded buffer.
    #[error(
        "buffer: accessor_args() describes interleaved buffers only; address a sharded buffer through its \
         globally allocated circular buffer (CbConfig::backed_by)"
    )]
    ShardedAccessor,
    /// Bad cores.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// Any other provider failure.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Errors of program construction (circular buffers, semaphores, kernels, runtime args).
#[derive(Debug, Error)]
pub enum ProgramError {
    /// Bad cores.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// CB index not below the per-core maximum.
    #[error(
        "circular buffer: index {index} is out of range; this device has {max} CB indices per core (0..{max})"
    )]
    CbIndexOutOfRange {
        /// The index.
        index: u32,
        /// Indices per core.
        max: u32,
    },
    /// CB index already used on an overlapping core.
    #[error(
        "circular buffer: index {index} is already used on core ({x}, {y}) by an earlier circular buffer of this program; \
         pick another index or make the core ranges disjoint",
        x = core.x, y = core.y
    )]
    CbIndexReused {
        /// The index.
        index: u32,
        /// A core where both CBs would live.
        core: CoreCoord,
    },
    /// The same index twice in one config.
    #[error("circular buffer: index {index} appears twice in one CbConfig; list each index once")]
    CbDuplicateIndex {
        /// The index.
        index: u32,
    },
    /// No formats.
    #[error("circular buffer: a CbConfig needs at least one (index, format, page size) entry")]
    CbNoFormats,
    /// Size not a multiple of the page size.
    #[error(
        "circular buffer {index}: total size {total_size} is not a non-zero multiple of the page size {page_size}; \
         use total_size = pages * page_size"
    )]
    CbSize {
        /// The index.
        index: u32,
        /// Total size.
        total_size: u32,
        /// Page size.
        page_size: u32,
    },
    /// The CB cannot fit in L1 even on an empty core.
    #[error(
        "circular buffer: {total_size} bytes do not fit in L1: a core has {available} bytes for user data; \
         use fewer or smaller pages"
    )]
    CbTooLarge {
        /// Size requested.
        total_size: u32,
        /// Space for user data on one core.
        available: u64,
    },
    /// A globally allocated CB needs an L1 buffer.
    #[error(
        "circular buffer: a globally allocated CB must be backed by an L1 buffer, got a DRAM buffer; create it with BufferKind::L1"
    )]
    CbBackingNotL1,
    /// A globally allocated CB is larger than its backing buffer's share on a core.
    #[error(
        "circular buffer: total size {total_size} exceeds the {per_core} bytes the backing buffer holds per core; \
         shrink the CB or grow the buffer"
    )]
    CbBackingTooSmall {
        /// CB size.
        total_size: u32,
        /// Bytes of the buffer on one core.
        per_core: u64,
    },
    /// Provider refused the CB because L1 is full.
    #[error(
        "circular buffer does not fit in L1: {message}; use fewer or smaller pages or free L1 buffers"
    )]
    CbOutOfMemory {
        /// Provider message (says how much is free).
        message: String,
    },
    /// A string with an interior NUL.
    #[error("{what} contains a NUL byte at position {position}; remove it")]
    NulInString {
        /// Which string.
        what: String,
        /// Byte position.
        position: usize,
    },
    /// A define name that a C preprocessor would not accept.
    #[error(
        "kernel {kernel}: define name {name:?} is not a C identifier; use letters, digits and '_' (not first a digit)"
    )]
    BadDefine {
        /// Kernel name.
        kernel: String,
        /// The name.
        name: String,
    },
    /// A kernel that would share a RISC with another on some core.
    #[error(
        "kernel {kernel}: core ({x}, {y}) already runs kernel {other} on {risc}; each core runs at most one kernel per \
         RISC (one on RISCV_0, one on RISCV_1, one compute): make the core ranges disjoint",
        x = core.x, y = core.y
    )]
    KernelOverlap {
        /// New kernel.
        kernel: String,
        /// Existing kernel.
        other: String,
        /// The RISC they share.
        risc: &'static str,
        /// A shared core.
        core: CoreCoord,
    },
    /// unpack_to_dest_fp32 names a CB index out of range.
    #[error(
        "kernel {kernel}: unpack_to_dest_fp32 names CB index {index}, but this device has {max} CB indices"
    )]
    UnpackToDestIndex {
        /// Kernel name.
        kernel: String,
        /// The index.
        index: u32,
        /// Indices per core.
        max: u32,
    },
    /// The kernel failed to build.
    #[error("kernel {kernel} failed to build:\n{message}")]
    KernelBuild {
        /// Kernel name.
        kernel: String,
        /// Compiler output from the provider.
        message: String,
    },
    /// Too many runtime args.
    #[error(
        "kernel {kernel}: {unique} runtime args on core ({x}, {y}) plus {common} common args = {total}, \
         over the limit of {max} per kernel per core; pack arguments (bytemuck structs) or move constants to compile-time args",
        x = core.x, y = core.y, total = unique + common
    )]
    TooManyRuntimeArgs {
        /// Kernel name.
        kernel: String,
        /// Core (for common args: the core with the most unique args).
        core: CoreCoord,
        /// Unique args on that core.
        unique: usize,
        /// Common args.
        common: usize,
        /// The limit.
        max: u32,
    },
    /// Runtime args for a core the kernel does not run on.
    #[error(
        "kernel {kernel}: core ({x}, {y}) is not one of the kernel's cores ({cores}); set runtime args only on cores the kernel runs on",
        x = core.x, y = core.y
    )]
    CoreNotInKernel {
        /// Kernel name.
        kernel: String,
        /// The core.
        core: CoreCoord,
        /// The kernel's cores.
        cores: String,
    },
    /// A handle or buffer from another program or device.
    #[error(
        "{what} belongs to another {owner}; use handles only with the program/device that created them"
    )]
    Foreign {
        /// What was foreign.
        what: &'static str,
        /// "program" or "device".
        owner: &'static str,
    },
    /// Any other provider failure.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Errors of [`Device::run`](crate::Device::run).
#[derive(Debug, Error)]
pub enum RunError {
    /// The program was built for another device.
    #[error(
        "run: the program was created for another device; create it with Program::new(&this_device)"
    )]
    ForeignProgram,
    /// A kernel broke a rule.
    #[error("run: a kernel faulted: {message}")]
    KernelFault {
        /// Provider message (core, RISC, kernel, call).
        message: String,
    },
    /// The device deadlocked.
    #[error(
        "run: deadlock, no RISC can make progress: {message}\n(check CB push/pop counts, semaphore protocols and runtime args)"
    )]
    Deadlock {
        /// Provider message (every blocked call).
        message: String,
    },
    /// L1 overflow discovered when placing the program's CBs.
    #[error(
        "run: the program does not fit in L1: {message}; use smaller circular buffers or free L1 buffers"
    )]
    OutOfMemory {
        /// Provider message.
        message: String,
    },
    /// Any other provider failure.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// Errors of multicast planning.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum McastError {
    /// Bad cores.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// The NoC rectangle would reach a worker that is not an intended receiver, or has a corner that
    /// is not a worker.
    #[error(
        "multicast: the NoC rectangle ({sx}, {sy})..=({ex}, {ey}) for logical receivers {receivers} contains NoC core ({nx}, {ny}), \
         which is {what}; pick receivers whose NoC bounding box has worker corners and holds no other worker \
         (non-worker nodes inside are skipped by the NoC)",
        sx = noc_min.x, sy = noc_min.y, ex = noc_max.x, ey = noc_max.y, nx = noc.x, ny = noc.y
    )]
    NonWorkerInRectangle {
        /// Top-left NoC corner.
        noc_min: CoreCoord,
        /// Bottom-right NoC corner.
        noc_max: CoreCoord,
        /// Receivers (logical).
        receivers: String,
        /// The offending NoC core.
        noc: CoreCoord,
        /// "not a worker core" or "worker (x, y) outside the receivers".
        what: String,
    },
    /// Args asked for a core in another role.
    #[error(
        "multicast: core {core} is not a {role} of this plan; use plan.role(core) to find each core's role"
    )]
    WrongRole {
        /// The core.
        core: CoreCoord,
        /// "sender" or "receiver".
        role: &'static str,
    },
    /// Args asked for before the semaphores exist.
    #[error(
        "multicast: the plan has no semaphores yet; call plan.create_semaphores(&mut program) first"
    )]
    NoSemaphores,
    /// Nothing to multicast to.
    #[error("multicast: {what}; a multicast needs at least one receiver besides the sender")]
    NoReceivers {
        /// Explanation.
        what: String,
    },
}

/// Errors of host tile conversions.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum TileError {
    /// A codec or layout error from tt-formats.
    #[error(transparent)]
    Format(#[from] tt_formats::FormatError),
    /// Data length does not match the shape.
    #[error("tiles: {what} has {actual} elements, but a {rows}x{cols} matrix needs {expected}")]
    Length {
        /// Which input.
        what: &'static str,
        /// Rows.
        rows: usize,
        /// Cols.
        cols: usize,
        /// Elements needed.
        expected: usize,
        /// Elements given.
        actual: usize,
    },
    /// Byte length does not match the tiled shape.
    #[error(
        "tiles: {actual} bytes given, but {tiles} tiles of {format} ({tile_bytes} bytes each) for a {rows}x{cols} matrix need {expected}"
    )]
    Bytes {
        /// Rows.
        rows: usize,
        /// Cols.
        cols: usize,
        /// Format name.
        format: tt_formats::DataFormat,
        /// Tiles.
        tiles: usize,
        /// Bytes per tile.
        tile_bytes: usize,
        /// Expected bytes.
        expected: usize,
        /// Given bytes.
        actual: usize,
    },
    /// A format the float conversions do not handle.
    #[error(
        "tiles: f32 conversion to {0} is not supported; use Float32, Float16_b, Bfp8_b or Bfp4_b"
    )]
    UnsupportedFormat(tt_formats::DataFormat),
}

/// Any error of this crate, for applications that want one `?` type.
#[derive(Debug, Error)]
pub enum Error {
    /// Opening a device.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// Grid validation.
    #[error(transparent)]
    Grid(#[from] GridError),
    /// Buffers.
    #[error(transparent)]
    Buffer(#[from] BufferError),
    /// Shard specs.
    #[error(transparent)]
    Shard(#[from] ShardSpecError),
    /// Programs.
    #[error(transparent)]
    Program(#[from] ProgramError),
    /// Runs.
    #[error(transparent)]
    Run(#[from] RunError),
    /// Multicast plans.
    #[error(transparent)]
    Mcast(#[from] McastError),
    /// Tile conversions.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// Provider calls.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}
