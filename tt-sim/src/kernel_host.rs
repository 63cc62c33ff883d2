//! Loading kernel images, the host-function table they call, and the deterministic scheduler.
//!
//! # Kernel images and per-core globals
//! A kernel's shared object is loaded once per process (the bytes are written to a uniquely named
//! scratch file, `dlopen`ed with `RTLD_NOW | RTLD_LOCAL` and the file is removed) and kept in a
//! process-wide registry keyed by the binary's cache key, so programs built again and again from
//! the same kernels (one program per op launch) never load a kernel twice. Every RISC that runs
//! the image still has its own mutable globals (the kernel's and the emulation layer's own per-RISC
//! state: host table, context pointer, argument addresses), as on hardware: the writable,
//! non-RELRO parts of the image are snapshotted after loading, each RISC of a run starts from that
//! snapshot, and when the scheduler resumes a RISC whose image currently holds another RISC's
//! globals, it saves those into the other RISC's private copy and restores its own (a few KiB of
//! `memcpy`; one RISC runs at a time and runs are serialised by the L1 window lock). Globals
//! therefore start from their initial values on every program launch, like a freshly loaded kernel.
//! Heap memory a kernel's static constructors allocated is shared by all RISCs of the image (device
//! kernels have no heap).
//!
//! # Coroutines
//! Each RISC runs its kernel on a `corosensei` coroutine (256 KiB stack, taken from a process-wide
//! pool of stacks) on the caller's thread.
//! Host functions that must wait (CB wait/reserve, semaphore wait) suspend the coroutine; the
//! scheduler resumes RISCs in a fixed order (cores row-major; BRISC, NCRISC, compute), running all
//! RISCs of one core until none of them progresses before switching cores (a switch remaps the
//! address window). A full pass over all cores without progress is a deadlock. A RISC that broke a
//! rule is never resumed again; its stack is discarded with `force_reset` (kernel frames hold no
//! resources that need unwinding).

use std::collections::{HashMap, VecDeque};
use std::ffi::{CStr, c_char, c_void};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use crate::arch::{
    CRTA_OFFSET_IN_SLOT, RTA_BASE, RTA_SLOT_BYTES, SEMAPHORE_BASE, SEMAPHORE_STRIDE,
};
use crate::device::SimDevice;
use crate::error::{SimError, SimResult};
use crate::jit::KernelBinary;
use crate::program::{KernelKind, Risc, SimProgram};
use crate::run::{CbLocal, CbState, CoreRun, RiscCtx, RunState};

const MAX_CBS: usize = 64;
const MAX_BANKS: usize = 128;
const STACK_SIZE: usize = 256 * 1024;

/// Mirror of `tt_sim_kernel_info` in `emu/tt_sim/host_api.h`.
#[repr(C)]
pub(crate) struct KernelInfo {
    rta_addr: u32,
    num_rta: u32,
    crta_addr: u32,
    num_crta: u32,
    my_noc_x: u32,
    my_noc_y: u32,
    logical_x: u32,
    logical_y: u32,
    num_dram_banks: u32,
    num_l1_banks: u32,
    dram_alignment: u32,
    l1_alignment: u32,
    dram_bank_xy: [u32; MAX_BANKS],
    l1_bank_xy: [u32; MAX_BANKS],
    cb_page_size: [u32; MAX_CBS],
    cb_data_format: [u32; MAX_CBS],
}

/// Mirror of `tt_sim_host_api` in `emu/tt_sim/host_api.h` (same order).
#[repr(C)]
pub(crate) struct HostApi {
    version: u32,
    fault: extern "C" fn(*mut c_void, *const c_char, *const c_char, u32),
    cb_reserve_back: extern "C" fn(*mut c_void, i32, i32, u32),
    cb_push_back: extern "C" fn(*mut c_void, i32, i32, u32),
    cb_wait_front: extern "C" fn(*mut c_void, i32, i32, u32),
    cb_pop_front: extern "C" fn(*mut c_void, i32, i32, u32),
    cb_write_ptr: extern "C" fn(*mut c_void, i32, u32) -> u32,
    cb_read_ptr: extern "C" fn(*mut c_void, i32, u32) -> u32,
    cb_pages_available: extern "C" fn(*mut c_void, i32, i32, u32) -> bool,
    cb_pages_reservable: extern "C" fn(*mut c_void, i32, i32, u32) -> bool,
    noc_read: extern "C" fn(*mut c_void, u64, u32, u32, u32, u32),
    noc_write: extern "C" fn(*mut c_void, u32, u64, u32, u32, u32),
    noc_write_mcast: extern "C" fn(*mut c_void, u32, u64, u32, u32, u32, u32, u32),
    noc_sem_inc: extern "C" fn(*mut c_void, u64, u32, u32, u32),
    noc_inline_write: extern "C" fn(*mut c_void, u64, u32, u32, u32, u32),
    barrier: extern "C" fn(*mut c_void, u32, u32, u32),
    sem_wait: extern "C" fn(*mut c_void, u32, u32, u32, u32),
    get_semaphore: extern "C" fn(*mut c_void, u32, u32) -> u32,
    dprint: extern "C" fn(*mut c_void, *const c_char, usize),
    compute: extern "C" fn(*mut c_void, u32, *const u32, u32, u32) -> u32,
    poll: extern "C" fn(*mut c_void, *const c_char, u32),
}

static HOST_API: HostApi = HostApi {
    version: 1,
    fault: h_fault,
    cb_reserve_back: h_cb_reserve_back,
    cb_push_back: h_cb_push_back,
    cb_wait_front: h_cb_wait_front,
    cb_pop_front: h_cb_pop_front,
    cb_write_ptr: h_cb_write_ptr,
    cb_read_ptr: h_cb_read_ptr,
    cb_pages_available: h_cb_pages_available,
    cb_pages_reservable: h_cb_pages_reservable,
    noc_read: h_noc_read,
    noc_write: h_noc_write,
    noc_write_mcast: h_noc_write_mcast,
    noc_sem_inc: h_noc_sem_inc,
    noc_inline_write: h_noc_inline_write,
    barrier: h_barrier,
    sem_wait: h_sem_wait,
    get_semaphore: h_get_semaphore,
    dprint: h_dprint,
    compute: h_compute,
    poll: h_poll,
};

type EntryFn = unsafe extern "C" fn(*const HostApi, *mut c_void, *const KernelInfo);

/// One loaded kernel shared object, shared by every RISC that runs this binary (one at a time).
pub(crate) struct KernelImage {
    _lib: libloading::Library,
    entry: EntryFn,
    /// (address, length) of the writable, non-RELRO parts of the image: the globals.
    segments: Vec<(usize, usize)>,
    /// The bytes of `segments` right after loading, concatenated.
    snapshot: Box<[u8]>,
}

impl std::fmt::Debug for KernelImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelImage")
            .field("globals_bytes", &self.snapshot.len())
            .finish_non_exhaustive()
    }
}

/// Loaded images by binary key, with the tick of their last use.
type ImageMap = HashMap<String, (Arc<KernelImage>, u64)>;
/// The process-wide image registry.
static IMAGES: Mutex<Option<ImageMap>> = Mutex::new(None);
static IMAGE_TICK: AtomicU64 = AtomicU64::new(0);
/// Above this many loaded images, images no program run holds are unloaded (least recently used
/// first) down to [`IMAGES_KEEP`].
const IMAGES_MAX: usize = 1024;
const IMAGES_KEEP: usize = 768;

/// The loaded image of `bin` (loaded on first use).
pub(crate) fn image_for(bin: &KernelBinary) -> SimResult<Arc<KernelImage>> {
    let tick = IMAGE_TICK.fetch_add(1, Ordering::Relaxed);
    let mut g = IMAGES.lock().unwrap_or_else(|p| p.into_inner());
    let map = g.get_or_insert_with(HashMap::new);
    if let Some((img, t)) = map.get_mut(&bin.key) {
        *t = tick;
        return Ok(img.clone());
    }
    let img = Arc::new(KernelImage::load(bin)?);
    if map.len() >= IMAGES_MAX {
        evict_idle(map, IMAGES_KEEP.saturating_sub(1));
    }
    map.insert(bin.key.clone(), (img.clone(), tick));
    Ok(img)
}

/// Removes entries no one else holds (strong count 1), least recently used first, until at most
/// `keep` entries are left or no idle entry remains.
fn evict_idle<T>(map: &mut HashMap<String, (Arc<T>, u64)>, keep: usize) {
    if map.len() <= keep {
        return;
    }
    let mut idle: Vec<(u64, String)> = map
        .iter()
        .filter(|(_, (i, _))| Arc::strong_count(i) == 1)
        .map(|(k, (_, t))| (*t, k.clone()))
        .collect();
    idle.sort_unstable();
    let excess = map.len() - keep;
    for (_, k) in idle.into_iter().take(excess) {
        map.remove(&k);
    }
}

/// Coroutine stacks of finished runs, reused by the next run.
static STACKS: Mutex<Vec<DefaultStack>> = Mutex::new(Vec::new());
/// At most this many stacks are kept (256 KiB of address space each).
const STACKS_KEEP: usize = 512;

fn take_stack() -> SimResult<DefaultStack> {
    if let Some(s) = STACKS.lock().unwrap_or_else(|p| p.into_inner()).pop() {
        return Ok(s);
    }
    DefaultStack::new(STACK_SIZE)
        .map_err(|e| SimError::Device(format!("cannot allocate a coroutine stack: {e}")))
}

fn give_stacks(stacks: impl Iterator<Item = DefaultStack>) {
    let mut g = STACKS.lock().unwrap_or_else(|p| p.into_inner());
    for s in stacks {
        if g.len() < STACKS_KEEP {
            g.push(s);
        }
    }
}

struct PhdrSearch {
    name: std::ffi::CString,
    found: bool,
    rw: Vec<(usize, usize)>,
    relro: Option<(usize, usize)>,
}

unsafe extern "C" fn phdr_cb(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut c_void,
) -> libc::c_int {
    // SAFETY: dl_iterate_phdr passes a valid info pointer for the duration of the call and `data` is
    // the &mut PhdrSearch we passed in.
    let (info, s) = unsafe { (&*info, &mut *(data as *mut PhdrSearch)) };
    if info.dlpi_name.is_null() {
        return 0;
    }
    // SAFETY: dlpi_name is a NUL-terminated string owned by the dynamic loader.
    let name = unsafe { CStr::from_ptr(info.dlpi_name) };
    if name != s.name.as_c_str() {
        return 0;
    }
    s.found = true;
    let page = 4096usize;
    for i in 0..info.dlpi_phnum as usize {
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let ph = unsafe { &*info.dlpi_phdr.add(i) };
        let start = info.dlpi_addr as usize + ph.p_vaddr as usize;
        if ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_W != 0 {
            s.rw.push((start, start + ph.p_memsz as usize));
        } else if ph.p_type == libc::PT_GNU_RELRO {
            // glibc protects [start rounded down, end rounded down) to pages.
            let end = (start + ph.p_memsz as usize) & !(page - 1);
            s.relro = Some((start & !(page - 1), end));
        }
    }
    1
}

impl KernelImage {
    /// Loads a fresh copy of `bin`.
    pub(crate) fn load(bin: &KernelBinary) -> SimResult<KernelImage> {
        let dir = std::env::temp_dir().join(format!("tt-sim-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| SimError::Device(format!("cannot create {}: {e}", dir.display())))?;
        let path: PathBuf = crate::jit::scratch_name(&dir, &format!("k{}", &bin.key[..8]));
        let path = path.with_extension("so");
        std::fs::write(&path, &bin.bytes).map_err(|e| {
            SimError::Device(format!("cannot write kernel image {}: {e}", path.display()))
        })?;
        // SAFETY: loading a shared object we just compiled from the user's kernel source and our own
        // headers; its initialisers are the kernel's static constructors, which is what running the
        // kernel means.
        let lib = unsafe {
            libloading::os::unix::Library::open(Some(&path), libc::RTLD_NOW | libc::RTLD_LOCAL)
        };
        let lib = match lib {
            Ok(l) => libloading::Library::from(l),
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(SimError::KernelBuild(format!(
                    "cannot load the built kernel image: {e}"
                )));
            }
        };
        // SAFETY: the symbol is defined by emu/tt_sim/entry.h with exactly this signature.
        let entry: EntryFn = match unsafe { lib.get::<EntryFn>(b"tt_sim_kernel_entry\0") } {
            Ok(s) => *s,
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(SimError::Internal(format!(
                    "kernel image has no entry point: {e}"
                )));
            }
        };
        let mut search = PhdrSearch {
            name: std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| SimError::Internal("NUL in scratch path".into()))?,
            found: false,
            rw: Vec::new(),
            relro: None,
        };
        // SAFETY: the callback only reads loader data and writes into `search`, which outlives the call.
        unsafe {
            libc::dl_iterate_phdr(Some(phdr_cb), &mut search as *mut PhdrSearch as *mut c_void)
        };
        let _ = std::fs::remove_file(&path);
        if !search.found {
            return Err(SimError::Internal(
                "loaded kernel image not found by dl_iterate_phdr".into(),
            ));
        }
        let mut segments = Vec::new();
        for (s, e) in search.rw {
            let mut parts = vec![(s, e)];
            if let Some((rs, re)) = search.relro {
                parts = Vec::new();
                if s < rs {
                    parts.push((s, e.min(rs)));
                }
                if e > re {
                    parts.push((s.max(re), e));
                }
            }
            segments.extend(
                parts
                    .into_iter()
                    .filter(|(a, b)| b > a)
                    .map(|(a, b)| (a, b - a)),
            );
        }
        let mut snapshot = vec![0u8; segments.iter().map(|s| s.1).sum()].into_boxed_slice();
        let mut at = 0;
        for &(a, n) in &segments {
            // SAFETY: [a, a + n) is part of a writable PT_LOAD segment of the image we just loaded
            // (outside its RELRO range), mapped and readable.
            unsafe {
                std::ptr::copy_nonoverlapping(a as *const u8, snapshot[at..].as_mut_ptr(), n)
            };
            at += n;
        }
        Ok(KernelImage {
            _lib: lib,
            entry,
            segments,
            snapshot,
        })
    }

    /// Bytes of globals one RISC's private copy needs.
    fn globals_len(&self) -> usize {
        self.snapshot.len()
    }

    /// Copies the live globals into `out` (`globals_len` bytes).
    fn save(&self, out: &mut [u8]) {
        let mut at = 0;
        for &(a, n) in &self.segments {
            // SAFETY: a writable, mapped range of the loaded image (see `load`); no kernel code of
            // this image runs while the scheduler swaps globals; `out` has room (checked by the slice).
            unsafe {
                std::ptr::copy_nonoverlapping(a as *const u8, out[at..at + n].as_mut_ptr(), n)
            };
            at += n;
        }
    }

    /// Makes `from` (`globals_len` bytes: a saved copy or the snapshot) the live globals.
    fn restore(&self, from: &[u8]) {
        let mut at = 0;
        for &(a, n) in &self.segments {
            let src = &from[at..at + n];
            // SAFETY: as in `save`; the destination is the image's own writable range.
            unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), a as *mut u8, n) };
            at += n;
        }
    }
}

// ------------------------------------------------------------------ hooks

/// Outcome of one attempt of a host call.
type Attempt<T> = SimResult<Option<T>>;

fn ctx_ptr(p: *mut c_void) -> *mut RiscCtx {
    p as *mut RiscCtx
}

/// Runs `f` with the RISC and the run state; never returns if the call faults.
fn with<T>(p: *mut c_void, f: impl FnOnce(&mut RiscCtx, &mut RunState) -> SimResult<T>) -> T {
    let r = {
        // SAFETY: `p` is the RiscCtx pointer the scheduler passed to this kernel image; the scheduler
        // is suspended inside `resume` and holds no reference to it or to the RunState.
        let rc = unsafe { &mut *ctx_ptr(p) };
        // SAFETY: as above; RunState is a separate allocation from the RiscCtx.
        let st = unsafe { &mut *rc.state };
        std::panic::catch_unwind(AssertUnwindSafe(|| f(rc, st)))
    };
    match r {
        Ok(Ok(v)) => {
            // SAFETY: as above.
            unsafe { (*ctx_ptr(p)).complete() };
            v
        }
        Ok(Err(e)) => stop(p, e),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            stop(p, SimError::Internal(msg))
        }
    }
}

/// Like [`with`], but suspends the RISC while `f` says it must wait.
fn blocking<T>(p: *mut c_void, mut f: impl FnMut(&mut RiscCtx, &mut RunState) -> Attempt<T>) -> T {
    loop {
        let r = {
            // SAFETY: see `with`.
            let rc = unsafe { &mut *ctx_ptr(p) };
            // SAFETY: see `with`.
            let st = unsafe { &mut *rc.state };
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                let r = f(rc, st);
                if let Ok(None) = r {
                    // Blocking: deliver this RISC's outstanding NoC traffic first.
                    rc.deliver_all(st);
                }
                r
            }))
        };
        match r {
            Ok(Ok(Some(v))) => {
                // SAFETY: see `with`.
                unsafe { (*ctx_ptr(p)).complete() };
                return v;
            }
            Ok(Ok(None)) => suspend(p),
            Ok(Err(e)) => stop(p, e),
            Err(_) => stop(
                p,
                SimError::Internal("panic in a blocking host call".into()),
            ),
        }
    }
}

fn suspend(p: *mut c_void) {
    // SAFETY: the yielder pointer was set by the coroutine body before the kernel started and stays
    // valid while the coroutine exists; we are running on that coroutine.
    let y = unsafe { &*(*ctx_ptr(p)).yielder };
    y.suspend(());
}

/// Records a fault and parks the RISC forever (the scheduler never resumes it).
fn stop(p: *mut c_void, e: SimError) -> ! {
    {
        // SAFETY: see `with`.
        let rc = unsafe { &mut *ctx_ptr(p) };
        rc.faulted = true;
        // SAFETY: see `with`.
        let st = unsafe { &mut *rc.state };
        if st.fault.is_none() {
            st.fault = Some(e);
        }
    }
    loop {
        suspend(p);
    }
}

fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the emulation headers pass string literals (NUL-terminated, static).
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

extern "C" fn h_fault(p: *mut c_void, call: *const c_char, msg: *const c_char, line: u32) {
    let (call, msg) = (cstr(call), cstr(msg));
    // SAFETY: see `with`.
    let e = unsafe { (*ctx_ptr(p)).fault(&call, line, msg) };
    stop(p, e)
}

extern "C" fn h_cb_reserve_back(p: *mut c_void, cb: i32, n: i32, line: u32) {
    blocking(p, |rc, st| rc.cb_reserve_back(st, cb, n, line))
}
extern "C" fn h_cb_push_back(p: *mut c_void, cb: i32, n: i32, line: u32) {
    with(p, |rc, st| rc.cb_push_back(st, cb, n, line))
}
extern "C" fn h_cb_wait_front(p: *mut c_void, cb: i32, n: i32, line: u32) {
    blocking(p, |rc, st| rc.cb_wait_front(st, cb, n, line))
}
extern "C" fn h_cb_pop_front(p: *mut c_void, cb: i32, n: i32, line: u32) {
    with(p, |rc, st| rc.cb_pop_front(st, cb, n, line))
}
extern "C" fn h_cb_write_ptr(p: *mut c_void, cb: i32, line: u32) -> u32 {
    with(p, |rc, st| rc.cb_ptr(st, cb, true, line))
}
extern "C" fn h_cb_read_ptr(p: *mut c_void, cb: i32, line: u32) -> u32 {
    with(p, |rc, st| rc.cb_ptr(st, cb, false, line))
}
extern "C" fn h_cb_pages_available(p: *mut c_void, cb: i32, n: i32, line: u32) -> bool {
    query(p, cb, n, true, line)
}
extern "C" fn h_cb_pages_reservable(p: *mut c_void, cb: i32, n: i32, line: u32) -> bool {
    query(p, cb, n, false, line)
}

/// A CB query that answers "no" lets the other RISCs run (a kernel may poll it in a loop); such an
/// answer is not progress, so a RISC polling for something that never comes is a deadlock.
fn query(p: *mut c_void, cb: i32, n: i32, front: bool, line: u32) -> bool {
    let ok = blocking(p, |rc, st| rc.cb_query(st, cb, n, front, line).map(Some));
    if !ok {
        let call = if front {
            "cb_pages_available_at_front"
        } else {
            "cb_pages_reservable_at_back"
        };
        poll_yield(
            p,
            format!("polling {call}(cb={cb}, {n} pages) at line {line}"),
        );
    }
    ok
}

/// Yields to the scheduler without counting as progress.
fn poll_yield(p: *mut c_void, reason: String) {
    {
        // SAFETY: see `with`.
        let rc = unsafe { &mut *ctx_ptr(p) };
        // SAFETY: see `with`.
        let st = unsafe { &mut *rc.state };
        rc.deliver_all(st);
        // The query itself completed; undo its step so that polling is not progress.
        rc.steps -= 1;
        rc.blocked = Some(reason);
    }
    suspend(p);
}

extern "C" fn h_poll(p: *mut c_void, what: *const c_char, line: u32) {
    let what = cstr(what);
    {
        // SAFETY: see `with`.
        let rc = unsafe { &mut *ctx_ptr(p) };
        rc.steps += 1;
    }
    poll_yield(
        p,
        format!("spinning in {what} at line {line} (waiting for L1 to change)"),
    );
}
extern "C" fn h_noc_read(p: *mut c_void, src: u64, dst: u32, size: u32, noc: u32, line: u32) {
    with(p, |rc, st| rc.noc_read(st, src, dst, size, noc, line))
}
extern "C" fn h_noc_write(p: *mut c_void, src: u32, dst: u64, size: u32, noc: u32, line: u32) {
    with(p, |rc, st| rc.noc_write(st, src, dst, size, noc, line))
}
extern "C" fn h_noc_write_mcast(
    p: *mut c_void,
    src: u32,
    dst: u64,
    size: u32,
    num_dests: u32,
    flags: u32,
    noc: u32,
    line: u32,
) {
    with(p, |rc, st| {
        rc.noc_write_mcast(st, src, dst, size, num_dests, flags, noc, line)
    })
}
extern "C" fn h_noc_sem_inc(p: *mut c_void, addr: u64, incr: u32, noc: u32, line: u32) {
    with(p, |rc, st| rc.noc_sem_inc(st, addr, incr, noc, line))
}
extern "C" fn h_noc_inline_write(
    p: *mut c_void,
    addr: u64,
    val: u32,
    be: u32,
    noc: u32,
    line: u32,
) {
    with(p, |rc, st| {
        rc.noc_inline_write(st, addr, val, be, noc, line)
    })
}
extern "C" fn h_barrier(p: *mut c_void, _kind: u32, _noc: u32, _line: u32) {
    with(p, |rc, st| {
        rc.barrier_wait(st);
        rc.deliver_all(st);
        Ok(())
    })
}
extern "C" fn h_sem_wait(p: *mut c_void, addr: u32, val: u32, kind: u32, line: u32) {
    blocking(p, |rc, st| rc.sem_wait(st, addr, val, kind == 1, line))
}
extern "C" fn h_get_semaphore(p: *mut c_void, id: u32, line: u32) -> u32 {
    with(p, |rc, st| rc.sem_addr(st, id, line))
}
extern "C" fn h_dprint(p: *mut c_void, text: *const c_char, len: usize) {
    with(p, |rc, _st| {
        let bytes = if text.is_null() {
            &[][..]
        } else {
            // SAFETY: the DPRINT stream passes its buffer and the number of valid bytes in it.
            unsafe { std::slice::from_raw_parts(text as *const u8, len) }
        };
        let s = String::from_utf8_lossy(bytes);
        for l in s.split_inclusive('\n') {
            eprint!("[tt-sim {}] {l}", rc.who());
        }
        Ok(())
    })
}
extern "C" fn h_compute(p: *mut c_void, op: u32, args: *const u32, nargs: u32, line: u32) -> u32 {
    let a: &[u32] = if args.is_null() || nargs == 0 {
        &[]
    } else {
        // SAFETY: the compute header passes an array of `nargs` words in the calling kernel's
        // frame, which stays alive (and unchanged) until this call returns, suspensions included.
        unsafe { std::slice::from_raw_parts(args, nargs as usize) }
    };
    blocking(p, |rc, st| crate::compute::dispatch(rc, st, op, a, line))
}

// ------------------------------------------------------------------ scheduler

/// Statistics of a run. Device numbers are ESTIMATES of the timing model ([`crate::timing`]);
/// the per-thread breakdown is [`SimProgram::profile`](crate::SimProgram::profile).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Estimated device cycles: the max over every RISC clock.
    pub device_cycles: u64,
    /// Estimated device time in nanoseconds (cycles at the arch's clock).
    pub device_ns: u64,
    /// Host wall time of the run in nanoseconds.
    pub host_ns: u64,
}

struct Risc_ {
    ctx: *mut RiscCtx,
    co: Coroutine<(), (), (), DefaultStack>,
    info: *mut KernelInfo,
    /// Index of this RISC's image in the run's image list.
    img: usize,
    /// This RISC's globals while another RISC's are live in the image (`None`: still the snapshot).
    saved: Option<Box<[u8]>>,
}

/// Runs a program to completion on the device.
pub(crate) fn run_program(dev: &mut SimDevice, prog: &mut SimProgram) -> SimResult<RunStats> {
    let t0 = Instant::now();
    let guard = crate::l1::acquire_window()?;
    let a = dev.st.arch.clone();
    if prog.arch.arch != a.arch {
        return Err(SimError::InvalidArgument(
            "program was created for a different device architecture".into(),
        ));
    }
    // CBs must stay below the L1 buffers.
    let l1_floor = dev.st.l1_alloc.lowest_used().unwrap_or(a.l1_size as u64);
    if let Some((&c, &top)) = prog
        .cb_top
        .iter()
        .max_by_key(|(c, t)| (**t, std::cmp::Reverse(**c)))
        && top as u64 > l1_floor
    {
        {
            return Err(SimError::OutOfMemory(format!(
                "the program's circular buffers on core {} end at {top:#x} but L1 buffers start at {l1_floor:#x}: \
                 {} bytes too many (CBs may use {} bytes from {:#x}); shrink the CBs or free L1 buffers",
                a.core_at(c),
                top as u64 - l1_floor,
                l1_floor - a.l1_unreserved_base as u64,
                a.l1_unreserved_base
            )));
        }
    }
    // Per-core run state.
    let mut cores: Vec<Option<CoreRun>> = (0..a.num_workers()).map(|_| None).collect();
    let mut involved: Vec<usize> = prog
        .kernels
        .iter()
        .flat_map(|k| k.cores.iter().copied())
        .collect();
    involved.sort_unstable();
    involved.dedup();
    // The CB configs of each core (one pass over the configs, not one per core).
    let mut cbs_of: Vec<Vec<usize>> = vec![Vec::new(); a.num_workers()];
    for (i, cb) in prog.cbs.iter().enumerate() {
        for &c in &cb.cores {
            if let Some(v) = cbs_of.get_mut(c) {
                v.push(i);
            }
        }
    }
    for &c in &involved {
        let mut cr = CoreRun {
            cbs: vec![None; MAX_CBS],
            ..CoreRun::default()
        };
        for cb in cbs_of[c].iter().map(|&i| &prog.cbs[i]) {
            let addr = match cb.global {
                Some(b) => dev.buffer_address(b)? as u32,
                None => cb.addr,
            };
            for f in &cb.formats {
                cr.cbs[f.index as usize] = Some(CbState {
                    addr,
                    size: cb.total_size,
                    page_size: f.page_size,
                    num_pages: cb.total_size / f.page_size,
                    data_format: f.data_format,
                    received: 0,
                    acked: 0,
                });
            }
        }
        cores[c] = Some(cr);
    }
    for (&(c, id), &init) in &prog.semaphores {
        dev.st.l1[c].write_u32(SEMAPHORE_BASE + id * SEMAPHORE_STRIDE, init);
        if let Some(cr) = cores.get_mut(c).and_then(|x| x.as_mut()) {
            cr.sem_mask |= 1 << id;
        }
    }
    let noc = crate::timing::NocModel::new(&dev.st.arch);
    let mut state = Box::new(RunState {
        dev: &mut dev.st as *mut _,
        cores,
        fault: None,
        noc,
    });
    let state_ptr: *mut RunState = &mut *state;

    // Build every RISC.
    let mut riscs: Vec<(usize, Risc, Risc_)> = Vec::new();
    let mut order: Vec<(usize, Risc, usize)> = Vec::new();
    for (ki, k) in prog.kernels.iter().enumerate() {
        for &c in &k.cores {
            order.push((c, k.risc(), ki));
        }
    }
    order.sort_unstable_by_key(|&(c, r, _)| (c, r));
    // Bank coordinate tables every RISC's KernelInfo carries (the same for all).
    let mut dram_bank_xy = [0u32; MAX_BANKS];
    for (i, d) in a.dram_noc.iter().enumerate().take(MAX_BANKS) {
        dram_bank_xy[i] = d.x | (d.y << 16);
    }
    let mut l1_bank_xy = [0u32; MAX_BANKS];
    for (i, xy) in l1_bank_xy
        .iter_mut()
        .enumerate()
        .take(a.num_workers().min(MAX_BANKS))
    {
        let n = a.worker_noc(a.core_at(i)).unwrap_or_default();
        *xy = n.x | (n.y << 16);
    }
    // The distinct images of this run, and each kernel's index among them.
    let mut images: Vec<Arc<KernelImage>> = Vec::new();
    let mut image_index: HashMap<usize, usize> = HashMap::new();
    let mut setup = || -> SimResult<()> {
        for &(c, risc, ki) in &order {
            let k = &prog.kernels[ki];
            let args = k.rt_args.get(&c).cloned().unwrap_or_default();
            let slot = RTA_BASE + risc.slot() * RTA_SLOT_BYTES;
            let l1 = &dev.st.l1[c];
            for (i, v) in args.iter().enumerate() {
                l1.write_u32(slot + 4 * i as u32, *v);
            }
            for (i, v) in k.common_args.iter().enumerate() {
                l1.write_u32(slot + CRTA_OFFSET_IN_SLOT + 4 * i as u32, *v);
            }
            let coord = a.core_at(c);
            let noc = a
                .worker_noc(coord)
                .ok_or_else(|| SimError::Internal("core without NoC coords".into()))?;
            let mut info = Box::new(KernelInfo {
                rta_addr: slot,
                num_rta: args.len() as u32,
                crta_addr: slot + CRTA_OFFSET_IN_SLOT,
                num_crta: k.common_args.len() as u32,
                my_noc_x: noc.x,
                my_noc_y: noc.y,
                logical_x: coord.x,
                logical_y: coord.y,
                num_dram_banks: a.num_dram_banks,
                num_l1_banks: a.num_workers() as u32,
                dram_alignment: a.dram_alignment,
                l1_alignment: a.l1_alignment,
                dram_bank_xy,
                l1_bank_xy,
                cb_page_size: [0; MAX_CBS],
                cb_data_format: [0xff; MAX_CBS],
            });
            let mut cb_local = vec![CbLocal::default(); MAX_CBS];
            // SAFETY: state_ptr points at the boxed RunState, alive for this function; no hook runs yet.
            if let Some(cr) = unsafe { (&(*state_ptr).cores)[c].as_ref() } {
                for (i, cb) in cr.cbs.iter().enumerate() {
                    if let Some(cb) = cb {
                        info.cb_page_size[i] = cb.page_size;
                        info.cb_data_format[i] = cb.data_format;
                        cb_local[i].rd_ptr = cb.addr;
                        cb_local[i].wr_ptr = cb.addr;
                    }
                }
            }
            let compute = match &k.kind {
                KernelKind::Compute(cc) => {
                    // SAFETY: as above.
                    let formats: Vec<tt_formats::DataFormat> =
                        unsafe { (&(*state_ptr).cores)[c].as_ref() }
                            .map(|cr| {
                                cr.cbs
                                    .iter()
                                    .flatten()
                                    .filter_map(|cb| {
                                        tt_formats::DataFormat::from_raw(cb.data_format).ok()
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                    Some(crate::compute::ComputeState::new(cc, &formats)?)
                }
                KernelKind::DataMovement { .. } => None,
            };
            let ctx = Box::into_raw(Box::new(RiscCtx {
                core: c,
                coord,
                risc,
                kernel: k.name.clone(),
                state: state_ptr,
                yielder: std::ptr::null(),
                steps: 0,
                blocked: None,
                outstanding: VecDeque::new(),
                cb_local,
                done: false,
                faulted: false,
                compute,
                tm: Default::default(),
            }));
            let img = match image_index.get(&ki) {
                Some(&i) => i,
                None => {
                    let found = match images.iter().position(|im| Arc::ptr_eq(im, &k.image)) {
                        Some(i) => i,
                        None => {
                            images.push(k.image.clone());
                            images.len() - 1
                        }
                    };
                    image_index.insert(ki, found);
                    found
                }
            };
            let entry = images[img].entry;
            let info = Box::into_raw(info);
            let stack = match take_stack() {
                Ok(st) => st,
                Err(err) => {
                    // SAFETY: ctx and info came from Box::into_raw above and were not shared.
                    unsafe {
                        drop(Box::from_raw(ctx));
                        drop(Box::from_raw(info));
                    }
                    return Err(err);
                }
            };
            let (cp, ip) = (ctx as usize, info as usize);
            let co = Coroutine::with_stack(stack, move |y: &Yielder<(), ()>, ()| {
                let ctx = cp as *mut RiscCtx;
                // SAFETY: ctx is the RiscCtx allocated for this RISC; it outlives the coroutine.
                unsafe { (*ctx).yielder = y as *const Yielder<(), ()> };
                // SAFETY: entry is the kernel image's tt_sim_kernel_entry; the host table is static,
                // ctx and info stay alive until the coroutine is finished or reset.
                unsafe { entry(&HOST_API, ctx as *mut c_void, ip as *const KernelInfo) };
            });
            riscs.push((
                c,
                risc,
                Risc_ {
                    ctx,
                    co,
                    info,
                    img,
                    saved: None,
                },
            ));
        }
        Ok(())
    };
    let setup_res = setup();
    let result = match setup_res {
        Ok(()) => schedule(dev, &guard, &mut riscs, &images, state_ptr),
        Err(e) => Err(e),
    };
    let mut device_cycles = 0u64;
    if result.is_ok() {
        let a = &dev.st.arch;
        let mut threads = Vec::new();
        let mut truncated = false;
        for (_, risc, r) in riscs.iter() {
            // SAFETY: the scheduler finished; no coroutine runs and nothing else references the ctx.
            let ctx = unsafe { &mut *r.ctx };
            let tm = &mut ctx.tm;
            device_cycles = device_cycles.max(tm.end());
            truncated |= tm.truncated;
            let names: &[&'static str] = if ctx.compute.is_some() {
                &crate::timing::COMPUTE_THREADS
            } else if *risc == Risc::Brisc {
                &["BRISC"]
            } else {
                &["NCRISC"]
            };
            for (th, name) in names.iter().enumerate() {
                threads.push(crate::timing::ThreadProfile {
                    core: ctx.coord,
                    thread: name,
                    kernel: ctx.kernel.clone(),
                    end_cycles: tm.clk[th],
                    busy_cycles: tm.busy[th],
                    wait_cb_cycles: tm.wait_cb[th],
                    wait_sync_cycles: tm.wait_sync[th],
                    spans: std::mem::take(&mut tm.spans[th]),
                });
            }
        }
        prog.last_profile = Some(crate::timing::Profile {
            arch: a.name(),
            clock_mhz: a.clock_mhz,
            device_cycles,
            threads,
            truncated,
        });
    } else {
        prog.last_profile = None;
    }
    let clock_mhz = dev.st.arch.clock_mhz.max(1) as u64;
    // Tear down: discard unfinished coroutines without unwinding through kernel frames.
    for (_, _, r) in riscs.iter_mut() {
        if r.co.started() && !r.co.done() {
            // SAFETY: the coroutine is suspended inside a host call; its frames are kernel C++ frames and
            // our hook frames, none of which own resources that must be released (Rust values there
            // are plain data or already moved out); we never resume it again.
            unsafe { r.co.force_reset() };
        }
    }
    let mut stacks = Vec::with_capacity(riscs.len());
    for (_, _, mut r) in riscs.drain(..) {
        if !r.co.done() {
            // SAFETY: a coroutine that never started has no frames; one that started was reset above.
            unsafe { r.co.force_reset() };
        }
        stacks.push(r.co.into_stack());
        // SAFETY: both were created with Box::into_raw in setup and are no longer referenced.
        unsafe {
            drop(Box::from_raw(r.ctx));
            drop(Box::from_raw(r.info));
        }
    }
    give_stacks(stacks.into_iter());
    drop(state);
    drop(guard);
    result.map(|()| RunStats {
        device_cycles,
        device_ns: device_cycles * 1000 / clock_mhz,
        host_ns: t0.elapsed().as_nanos() as u64,
    })
}

/// Makes RISC `i`'s globals the live ones in its image (saving the previous occupant's).
fn switch_globals(
    riscs: &mut [(usize, Risc, Risc_)],
    images: &[Arc<KernelImage>],
    occupant: &mut [Option<usize>],
    i: usize,
) {
    let m = riscs[i].2.img;
    if occupant[m] == Some(i) {
        return;
    }
    let img = &images[m];
    if let Some(o) = occupant[m] {
        // SAFETY: the scheduler is between resumes; nothing else references the RiscCtx.
        if !unsafe { (*riscs[o].2.ctx).done } {
            let buf = riscs[o]
                .2
                .saved
                .get_or_insert_with(|| vec![0u8; img.globals_len()].into_boxed_slice());
            img.save(buf);
        }
    }
    match &riscs[i].2.saved {
        Some(buf) => img.restore(buf),
        None => img.restore(&img.snapshot),
    }
    occupant[m] = Some(i);
}

fn schedule(
    dev: &mut SimDevice,
    guard: &crate::l1::WindowGuard<'_>,
    riscs: &mut [(usize, Risc, Risc_)],
    images: &[Arc<KernelImage>],
    state: *mut RunState,
) -> SimResult<()> {
    let mut mapped: Option<usize> = None;
    // Which RISC's globals are live in each image (none yet: the first resume restores the snapshot).
    let mut occupant: Vec<Option<usize>> = vec![None; images.len()];
    // Group RISC indices by core, in order.
    let mut groups: Vec<(usize, Vec<usize>)> = Vec::new();
    for (i, (c, _, _)) in riscs.iter().enumerate() {
        match groups.last_mut() {
            Some((gc, v)) if *gc == *c => v.push(i),
            _ => groups.push((*c, vec![i])),
        }
    }
    loop {
        let mut any_progress = false;
        let mut all_done = true;
        for (core, idxs) in &groups {
            // SAFETY (this block and below): between resumes no hook runs, so the scheduler is the only
            // user of the RiscCtx values and the RunState.
            if idxs.iter().all(|&i| unsafe { (*riscs[i].2.ctx).done }) {
                continue;
            }
            all_done = false;
            if mapped != Some(*core) {
                dev.st.l1[*core].map_into_window(guard)?;
                mapped = Some(*core);
            }
            loop {
                let mut progress = false;
                for &i in idxs {
                    // SAFETY: see above.
                    if unsafe { (*riscs[i].2.ctx).done } {
                        continue;
                    }
                    switch_globals(riscs, images, &mut occupant, i);
                    let r = &mut riscs[i].2;
                    // SAFETY: see above.
                    let ctx = unsafe { &mut *r.ctx };
                    let before = ctx.steps;
                    let res = r.co.resume(());
                    // SAFETY: the coroutine is suspended or finished; no hook holds references.
                    let ctx = unsafe { &mut *r.ctx };
                    // SAFETY: see above.
                    let st = unsafe { &mut *state };
                    if let Some(f) = st.fault.take() {
                        return Err(f);
                    }
                    match res {
                        CoroutineResult::Return(()) => {
                            ctx.done = true;
                            progress = true;
                            if let Some(t) = ctx.outstanding.front() {
                                let (call, line, n) = (t.call, t.line, ctx.outstanding.len());
                                ctx.deliver_all(st);
                                return Err(ctx.fault(
                                    "kernel exit",
                                    0,
                                    format!(
                                        "the kernel returned with {n} NoC transaction(s) outstanding (first: {call} \
                                         at line {line}); call noc_async_read_barrier / noc_async_write_barrier / \
                                         noc_async_atomic_barrier before returning"
                                    ),
                                ));
                            }
                            if let Some(msg) = ctx.compute.as_ref().and_then(|cs| cs.exit_problem())
                            {
                                return Err(ctx.fault("kernel exit", 0, msg));
                            }
                        }
                        CoroutineResult::Yield(()) => {
                            if ctx.steps != before {
                                progress = true;
                            }
                        }
                    }
                }
                if !progress {
                    break;
                }
                any_progress = true;
            }
        }
        if all_done {
            return Ok(());
        }
        if !any_progress {
            let mut lines = Vec::new();
            for (_, _, r) in riscs.iter() {
                // SAFETY: see above.
                let ctx = unsafe { &*r.ctx };
                if !ctx.done {
                    lines.push(format!(
                        "  {} {}",
                        ctx.who(),
                        ctx.blocked
                            .clone()
                            .unwrap_or_else(|| "blocked (unknown call)".into())
                    ));
                }
            }
            return Err(SimError::Deadlock(format!(
                "deadlock: no RISC can make progress\n{}",
                lines.join("\n")
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::*;

    /// Every core bumps a global, hands a semaphore increment to the next core of a ring and waits
    /// for its own; core 0 can only continue after every other core ran the same image (one shared
    /// load) with its own globals, so a wrong swap shows up as another core's counter.
    const RING: &str = r#"
#include "api/dataflow/dataflow_api.h"
static uint32_t counter = 5;
static uint32_t scratch[300] = {1};
void kernel_main() {
    const uint32_t out = get_arg_val<uint32_t>(0);
    const uint32_t nx = get_arg_val<uint32_t>(1), ny = get_arg_val<uint32_t>(2);
    const uint32_t x = get_absolute_logical_x();
    counter += 1 + x;
    scratch[299] += x;
    const uint32_t sem = get_semaphore(0);
    noc_semaphore_inc(get_noc_addr(nx, ny, sem), 1);
    noc_semaphore_wait(reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sem), 1);
    counter += 10;
    cb_reserve_back(0, 1);
    volatile tt_l1_ptr uint32_t* p = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(0));
    p[0] = counter;
    p[1] = scratch[299];
    const InterleavedAddrGen<true> d = {.bank_base_address = out, .page_size = 32};
    noc_async_write(get_write_ptr(0), d.get_noc_addr(x), 32);
    noc_async_write_barrier();
    noc_async_atomic_barrier();
}
"#;

    #[test]
    fn eviction_drops_only_idle_entries_least_recently_used_first() {
        use std::collections::HashMap;
        use std::sync::Arc;
        let mut map: HashMap<String, (Arc<u32>, u64)> = HashMap::new();
        let held: Vec<Arc<u32>> = (0..3).map(Arc::new).collect();
        // Entries 0..3 are held elsewhere (in use by a program); 3..8 are idle, 7 the oldest.
        for i in 0..8u32 {
            let v = if i < 3 {
                held[i as usize].clone()
            } else {
                Arc::new(i)
            };
            let tick = if i == 7 { 0 } else { 10 + i as u64 };
            map.insert(format!("k{i}"), (v, tick));
        }
        super::evict_idle(&mut map, 5);
        let mut left: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["k0", "k1", "k2", "k5", "k6"]);
        // Only held entries left beyond the limit: nothing more can go.
        super::evict_idle(&mut map, 1);
        let mut left: Vec<&str> = map.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["k0", "k1", "k2"]);
    }

    #[test]
    fn one_image_keeps_per_risc_globals_across_interleaved_cores_and_runs() {
        let mut dev = SimDevice::open(SimArch::WormholeB0).unwrap();
        let n = 5u32;
        let out = dev
            .create_buffer(&BufferConfig {
                size: n as u64 * 32,
                page_size: 32,
                buffer_type: BufferType::Dram,
                layout: BufferLayout::Interleaved,
                shard: None,
            })
            .unwrap();
        let cores = CoreRange {
            start: CoreCoord { x: 0, y: 0 },
            end: CoreCoord { x: n - 1, y: 0 },
        };
        let oa = dev.buffer_address(out).unwrap() as u32;
        // Two programs with the same kernel: the second reuses the loaded image.
        for round in 0..2 {
            let mut p = SimProgram::new(&dev);
            p.add_circular_buffer(
                &dev,
                &[cores],
                &CbConfig {
                    total_size: 32,
                    formats: vec![CbFormat {
                        index: 0,
                        data_format: tt_formats::DataFormat::Float16_b.as_raw(),
                        page_size: 32,
                    }],
                    globally_allocated: None,
                },
            )
            .unwrap();
            p.add_semaphore(&[cores], 0).unwrap();
            let k = p
                .add_kernel(&KernelConfig {
                    name: "ring".into(),
                    source: RING.into(),
                    kind: KernelKind::DataMovement {
                        risc: Risc::Brisc,
                        noc: 0,
                    },
                    cores: vec![cores],
                    compile_args: vec![],
                    defines: vec![],
                })
                .unwrap();
            for x in 0..n {
                let next = dev
                    .worker_core_from_logical(CoreCoord {
                        x: (x + 1) % n,
                        y: 0,
                    })
                    .unwrap();
                p.set_runtime_args(k, CoreCoord { x, y: 0 }, &[oa, next.x, next.y])
                    .unwrap();
            }
            for run in 0..2 {
                dev.run(&mut p).unwrap();
                let mut b = vec![0u8; n as usize * 32];
                dev.read_buffer(out, 0, &mut b).unwrap();
                for x in 0..n as usize {
                    let w = |i: usize| {
                        u32::from_le_bytes(
                            b[x * 32 + 4 * i..x * 32 + 4 * i + 4].try_into().unwrap(),
                        )
                    };
                    let ctx = format!("program {round} run {run} core ({x},0)");
                    assert_eq!(w(0), 5 + 1 + x as u32 + 10, "{ctx}");
                    assert_eq!(w(1), x as u32, "{ctx}");
                }
            }
        }
    }
}
