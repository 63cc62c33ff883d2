//! Per-core L1 memory and the process-wide L1 address window.
//!
//! Each core's L1 is a memfd of `l1_size` bytes. The simulator reads and writes it through a private,
//! whole mapping that never moves ([`L1::bytes`]). Kernels dereference raw 32-bit device addresses, so
//! while a core runs, its memfd is also mapped at its device address range `[SIM_RESERVED_BASE,
//! l1_size)` of the process (the "window"). The window is reserved once per process with
//! `MAP_FIXED_NOREPLACE`; only one program can run at a time per process ([`WINDOW_LOCK`]).

use std::sync::{Mutex, MutexGuard, OnceLock};

use crate::arch::{MAX_L1_SIZE, SIM_RESERVED_BASE};
use crate::error::{SimError, SimResult};

/// One core's L1: a memfd and a stable mapping of it.
pub struct L1 {
    fd: libc::c_int,
    ptr: *mut u8,
    size: usize,
}

// SAFETY: the mapping is plain shared memory owned by this value; access is serialised by the
// simulator (one program runs at a time under WINDOW_LOCK, host accesses need &mut L1 or go through
// the scheduler's single thread).
unsafe impl Send for L1 {}

impl L1 {
    /// Creates a zero-filled L1 of `size` bytes.
    pub fn new(size: u32) -> SimResult<L1> {
        let name = c"tt-sim-l1";
        // SAFETY: memfd_create with a valid NUL-terminated name; the result is checked.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(SimError::Device(format!(
                "memfd_create for a core's L1 failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: fd is a valid memfd we own.
        if unsafe { libc::ftruncate(fd, size as libc::off_t) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            return Err(SimError::Device(format!(
                "ftruncate of an L1 memfd to {size} bytes failed: {e}"
            )));
        }
        // SAFETY: mapping a memfd we own, size matches its length; result checked.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            let e = std::io::Error::last_os_error();
            // SAFETY: closing our own fd.
            unsafe { libc::close(fd) };
            return Err(SimError::Device(format!("mmap of an L1 memfd failed: {e}")));
        }
        Ok(L1 {
            fd,
            ptr: ptr as *mut u8,
            size: size as usize,
        })
    }

    /// Reads `dst.len()` bytes at `addr`. The caller has checked the range.
    pub fn read(&self, addr: u32, dst: &mut [u8]) {
        let a = addr as usize;
        assert!(
            a + dst.len() <= self.size,
            "L1 read out of range (checked by caller)"
        );
        // SAFETY: range checked above; the mapping is live for self's lifetime; u8 has no alignment.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.add(a), dst.as_mut_ptr(), dst.len()) }
    }

    /// Writes `src` at `addr`. The caller has checked the range.
    pub fn write(&self, addr: u32, src: &[u8]) {
        let a = addr as usize;
        assert!(
            a + src.len() <= self.size,
            "L1 write out of range (checked by caller)"
        );
        // SAFETY: range checked above; the mapping is live; writes through a shared mapping are how
        // this memory is meant to be used (no Rust reference to it exists during the copy).
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.add(a), src.len()) }
    }

    /// The bytes `[addr, addr + len)` (range checked here). The slice must not outlive the host
    /// call that takes it: kernel code (which writes L1 through the window) does not run while a
    /// host call runs.
    pub(crate) fn slice(&self, addr: u32, len: usize) -> &[u8] {
        let a = addr as usize;
        assert!(
            a + len <= self.size,
            "L1 read out of range (checked by caller)"
        );
        // SAFETY: range checked above; the mapping is live for self's lifetime; no kernel code runs
        // (and no other mutable view of this memory is used) while the slice is alive, see above.
        unsafe { std::slice::from_raw_parts(self.ptr.add(a), len) }
    }

    /// Runs `f` on the bytes `[addr, addr + len)` to fill them (range checked here).
    pub(crate) fn fill_with<R>(&self, addr: u32, len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
        let a = addr as usize;
        assert!(
            a + len <= self.size,
            "L1 write out of range (checked by caller)"
        );
        // SAFETY: range checked above; the mapping is live; `f` gets the only reference to this
        // range for the duration of the call (no kernel code runs during a host call, and `f`
        // cannot reach this L1 through `self` mutably).
        f(unsafe { std::slice::from_raw_parts_mut(self.ptr.add(a), len) })
    }

    /// Copies `len` bytes from `src` to `dst` inside this L1 (the ranges may overlap).
    pub(crate) fn copy_within(&self, src: u32, dst: u32, len: usize) {
        let (s, d) = (src as usize, dst as usize);
        assert!(
            s + len <= self.size && d + len <= self.size,
            "L1 copy out of range (checked by caller)"
        );
        // SAFETY: both ranges checked above and inside the live mapping; `copy` allows overlap.
        unsafe { std::ptr::copy(self.ptr.add(s), self.ptr.add(d), len) }
    }

    /// Reads a little-endian u32.
    pub fn read_u32(&self, addr: u32) -> u32 {
        let mut b = [0u8; 4];
        self.read(addr, &mut b);
        u32::from_le_bytes(b)
    }

    /// Writes a little-endian u32.
    pub fn write_u32(&self, addr: u32, v: u32) {
        self.write(addr, &v.to_le_bytes());
    }

    /// Maps this L1 into the address window so kernel code sees it at its device addresses.
    pub fn map_into_window(&self, _w: &WindowGuard<'_>) -> SimResult<()> {
        let base = SIM_RESERVED_BASE as usize;
        let len = self.size - base;
        // SAFETY: the window [base, MAX_L1_SIZE) was reserved for the simulator by Window::reserve and
        // we hold the lock that serialises its use; MAP_FIXED replaces only pages inside it.
        let p = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                self.fd,
                base as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED || p as usize != base {
            return Err(SimError::Device(format!(
                "mapping a core's L1 at its device addresses failed: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}

impl Drop for L1 {
    fn drop(&mut self) {
        // SAFETY: unmapping and closing what `new` created; nothing refers to it any more.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.size);
            libc::close(self.fd);
        }
    }
}

/// The reserved address window `[SIM_RESERVED_BASE, MAX_L1_SIZE)`.
struct Window;

static WINDOW: OnceLock<Result<Window, String>> = OnceLock::new();
/// Serialises program runs in one process (the window is process-global).
static WINDOW_LOCK: Mutex<()> = Mutex::new(());

/// Proof that the caller holds the window.
pub struct WindowGuard<'a> {
    _g: MutexGuard<'a, ()>,
}

impl Drop for WindowGuard<'_> {
    fn drop(&mut self) {
        // Park the window on inaccessible anonymous memory so stray pointers fault instead of
        // touching a core's L1 outside a run.
        let base = SIM_RESERVED_BASE as usize;
        // SAFETY: the range is the reserved window we own; replacing its mapping is allowed.
        unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                MAX_L1_SIZE as usize - base,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
                -1,
                0,
            );
        }
    }
}

fn mmap_min_addr() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65536)
}

/// Reserves the window (once per process) and takes the run lock.
pub fn acquire_window() -> SimResult<WindowGuard<'static>> {
    let w = WINDOW.get_or_init(|| {
        let min = mmap_min_addr();
        if min > SIM_RESERVED_BASE as u64 {
            return Err(format!(
                "this machine forbids mapping below {min:#x} (/proc/sys/vm/mmap_min_addr) but the simulator \
                 needs L1 device addresses from {SIM_RESERVED_BASE:#x}; lower it with `sysctl vm.mmap_min_addr=65536`"
            ));
        }
        let base = SIM_RESERVED_BASE as usize;
        let len = MAX_L1_SIZE as usize - base;
        // SAFETY: MAP_FIXED_NOREPLACE never clobbers an existing mapping; the result is checked.
        let p = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || p as usize != base {
            let e = std::io::Error::last_os_error();
            if p != libc::MAP_FAILED {
                // SAFETY: an old kernel ignored NOREPLACE and mapped elsewhere; undo that mapping.
                unsafe { libc::munmap(p, len) };
            }
            return Err(format!(
                "cannot reserve the L1 address window {base:#x}..{MAX_L1_SIZE:#x} for kernels ({e}); something \
                 else in this process is mapped there (a non-PIE executable or a library loaded at a low address)"
            ));
        }
        Ok(Window)
    });
    if let Err(e) = w {
        return Err(SimError::Device(e.clone()));
    }
    let g = WINDOW_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    Ok(WindowGuard { _g: g })
}
