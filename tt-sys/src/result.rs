//! Thin `Result`-returning wrappers over the function table (cudarc's "result" level).
//!
//! Each wrapper makes exactly one call and turns a status other than `TT_OK` into a [`ShimError`] that
//! carries the provider's per-thread message. Wrappers that take handles are `unsafe fn`: the caller
//! must pass live handles of this provider, used from one thread at a time, and must destroy buffers
//! and programs before their device. The safe layer (tt-safe) upholds that with ownership.

use std::ffi::{CString, c_void};

use crate::bindings::*;
use crate::loader::Api;

/// A provider call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed with {} ({status}) from provider {provider}: {message}", status_name(*.status))]
pub struct ShimError {
    /// The `tt_status` returned.
    pub status: tt_status::Type,
    /// The provider's message (its `last_error()`), which says what failed and what to do.
    pub message: String,
    /// The table function that failed, e.g. `"buffer_create"`.
    pub call: &'static str,
    /// The provider's name.
    pub provider: String,
}

/// `TT_OK`, `TT_ERR_INVALID_ARGUMENT`, ... for a status value (`"TT_ERR_<unknown>"` otherwise).
pub fn status_name(status: tt_status::Type) -> &'static str {
    match status {
        tt_status::TT_OK => "TT_OK",
        tt_status::TT_ERR_INVALID_ARGUMENT => "TT_ERR_INVALID_ARGUMENT",
        tt_status::TT_ERR_OUT_OF_MEMORY => "TT_ERR_OUT_OF_MEMORY",
        tt_status::TT_ERR_KERNEL_BUILD => "TT_ERR_KERNEL_BUILD",
        tt_status::TT_ERR_KERNEL_FAULT => "TT_ERR_KERNEL_FAULT",
        tt_status::TT_ERR_DEADLOCK => "TT_ERR_DEADLOCK",
        tt_status::TT_ERR_UNSUPPORTED => "TT_ERR_UNSUPPORTED",
        tt_status::TT_ERR_DEVICE => "TT_ERR_DEVICE",
        tt_status::TT_ERR_ABI_MISMATCH => "TT_ERR_ABI_MISMATCH",
        tt_status::TT_ERR_INTERNAL => "TT_ERR_INTERNAL",
        _ => "TT_ERR_<unknown>",
    }
}

/// A `tt_core_range_set` viewing a slice (valid while the slice lives).
pub fn range_set(ranges: &[tt_core_range]) -> Result<tt_core_range_set, ShimError> {
    Ok(tt_core_range_set {
        ranges: ranges.as_ptr(),
        num_ranges: len_u32(ranges.len(), "range_set")?,
    })
}

fn len_u32(len: usize, call: &'static str) -> Result<u32, ShimError> {
    u32::try_from(len).map_err(|_| ShimError {
        status: tt_status::TT_ERR_INVALID_ARGUMENT,
        message: format!("{len} elements do not fit the ABI's u32 count"),
        call,
        provider: String::new(),
    })
}

/// Looks up a table function; every v1 function was checked to be present when the `Api` was built.
macro_rules! func {
    ($api:expr, $name:ident) => {
        match $api.table().$name {
            Some(f) => f,
            None => {
                return Err(ShimError {
                    status: tt_status::TT_ERR_UNSUPPORTED,
                    message: format!("the provider has no `{}`", stringify!($name)),
                    call: stringify!($name),
                    provider: $api.provider_name(),
                });
            }
        }
    };
}

impl Api {
    /// Turns a status into `Ok(())` or the error with this thread's message.
    pub fn check(&self, status: tt_status::Type, call: &'static str) -> Result<(), ShimError> {
        if status == tt_status::TT_OK {
            Ok(())
        } else {
            Err(ShimError {
                status,
                message: self.last_error(),
                call,
                provider: self.provider_name(),
            })
        }
    }

    /// Number of devices the provider can open.
    pub fn device_count(&self) -> Result<u32, ShimError> {
        let f = func!(self, device_count);
        let mut n = 0u32;
        // SAFETY: the out pointer is a live local.
        self.check(unsafe { f(&mut n) }, "device_count")?;
        Ok(n)
    }

    /// Opens a device. The returned handle must be closed with [`Api::device_close`] after every buffer
    /// and program on it is destroyed.
    pub fn device_open(
        &self,
        options: &tt_device_open_options,
    ) -> Result<*mut tt_device, ShimError> {
        let f = func!(self, device_open);
        let mut opts = *options;
        opts.struct_size = size_of::<tt_device_open_options>() as u32;
        let mut dev = std::ptr::null_mut();
        // SAFETY: both pointers are live locals; the options struct has no pointers.
        self.check(unsafe { f(&opts, &mut dev) }, "device_open")?;
        Ok(dev)
    }

    /// # Safety
    /// `device` is a live device of this provider with no live buffers or programs; it is not used
    /// again.
    pub unsafe fn device_close(&self, device: *mut tt_device) -> Result<(), ShimError> {
        let f = func!(self, device_close);
        // SAFETY: the caller guarantees the handle is live and unused elsewhere.
        self.check(unsafe { f(device) }, "device_close")
    }

    /// # Safety
    /// `device` is a live device of this provider, not used by another thread during the call.
    pub unsafe fn device_info(&self, device: *mut tt_device) -> Result<tt_device_info, ShimError> {
        let f = func!(self, device_info);
        let mut info = tt_device_info::default();
        // SAFETY: the handle is live (caller); the out pointer is a live local.
        self.check(unsafe { f(device, &mut info) }, "device_info")?;
        Ok(info)
    }

    /// NoC coordinates of a logical worker core.
    ///
    /// # Safety
    /// As [`Api::device_info`].
    pub unsafe fn worker_core_from_logical(
        &self,
        device: *mut tt_device,
        logical: tt_core_coord,
    ) -> Result<tt_core_coord, ShimError> {
        let f = func!(self, worker_core_from_logical);
        let mut noc = tt_core_coord::default();
        // SAFETY: the handle is live (caller); the out pointer is a live local.
        self.check(
            unsafe { f(device, logical, &mut noc) },
            "worker_core_from_logical",
        )?;
        Ok(noc)
    }

    /// NoC coordinates of DRAM bank `bank`.
    ///
    /// # Safety
    /// As [`Api::device_info`].
    pub unsafe fn dram_bank_noc_coord(
        &self,
        device: *mut tt_device,
        bank: u32,
    ) -> Result<tt_core_coord, ShimError> {
        let f = func!(self, dram_bank_noc_coord);
        let mut noc = tt_core_coord::default();
        // SAFETY: the handle is live (caller); the out pointer is a live local.
        self.check(unsafe { f(device, bank, &mut noc) }, "dram_bank_noc_coord")?;
        Ok(noc)
    }

    /// # Safety
    /// `device` is live (as [`Api::device_info`]); `config.shard` is NULL or points to a valid
    /// `tt_shard_spec` whose `cores.ranges` points to `cores.num_ranges` ranges, all live for the call.
    pub unsafe fn buffer_create(
        &self,
        device: *mut tt_device,
        config: &tt_buffer_config,
    ) -> Result<*mut tt_buffer, ShimError> {
        let f = func!(self, buffer_create);
        let mut buf = std::ptr::null_mut();
        // SAFETY: the handle and the config's pointers are valid (caller); out pointer is a local.
        self.check(unsafe { f(device, config, &mut buf) }, "buffer_create")?;
        Ok(buf)
    }

    /// # Safety
    /// `buffer` is a live buffer of this provider, not used again.
    pub unsafe fn buffer_destroy(&self, buffer: *mut tt_buffer) -> Result<(), ShimError> {
        let f = func!(self, buffer_destroy);
        // SAFETY: the caller guarantees the handle is live and unused elsewhere.
        self.check(unsafe { f(buffer) }, "buffer_destroy")
    }

    /// # Safety
    /// `buffer` is a live buffer of this provider, not used by another thread during the call.
    pub unsafe fn buffer_address(&self, buffer: *mut tt_buffer) -> Result<u64, ShimError> {
        let f = func!(self, buffer_address);
        let mut addr = 0u64;
        // SAFETY: the handle is live (caller); the out pointer is a live local.
        self.check(unsafe { f(buffer, &mut addr) }, "buffer_address")?;
        Ok(addr)
    }

    /// Writes `src` at byte `offset` of the buffer (host data in page order of the whole tensor).
    ///
    /// # Safety
    /// As [`Api::buffer_address`].
    pub unsafe fn buffer_write(
        &self,
        buffer: *mut tt_buffer,
        offset: u64,
        src: &[u8],
    ) -> Result<(), ShimError> {
        let f = func!(self, buffer_write);
        let ptr = src.as_ptr().cast::<c_void>();
        // SAFETY: the handle is live (caller); `src` is valid for `src.len()` bytes.
        self.check(
            unsafe { f(buffer, offset, ptr, src.len() as u64) },
            "buffer_write",
        )
    }

    /// Reads `dst.len()` bytes at byte `offset` of the buffer.
    ///
    /// # Safety
    /// As [`Api::buffer_address`].
    pub unsafe fn buffer_read(
        &self,
        buffer: *mut tt_buffer,
        offset: u64,
        dst: &mut [u8],
    ) -> Result<(), ShimError> {
        let f = func!(self, buffer_read);
        let ptr = dst.as_mut_ptr().cast::<c_void>();
        // SAFETY: the handle is live (caller); `dst` is valid for writes of `dst.len()` bytes.
        self.check(
            unsafe { f(buffer, offset, ptr, dst.len() as u64) },
            "buffer_read",
        )
    }

    /// # Safety
    /// As [`Api::device_info`]. The program must be destroyed before the device is closed.
    pub unsafe fn program_create(
        &self,
        device: *mut tt_device,
    ) -> Result<*mut tt_program, ShimError> {
        let f = func!(self, program_create);
        let mut prog = std::ptr::null_mut();
        // SAFETY: the handle is live (caller); the out pointer is a live local.
        self.check(unsafe { f(device, &mut prog) }, "program_create")?;
        Ok(prog)
    }

    /// # Safety
    /// `program` is a live program of this provider, not used again.
    pub unsafe fn program_destroy(&self, program: *mut tt_program) -> Result<(), ShimError> {
        let f = func!(self, program_destroy);
        // SAFETY: the caller guarantees the handle is live and unused elsewhere.
        self.check(unsafe { f(program) }, "program_destroy")
    }

    /// Returns the CB handle.
    ///
    /// # Safety
    /// `program` is live and not used by another thread during the call; `cores.ranges` and
    /// `config.formats` point to as many elements as their counts say; `config.globally_allocated`
    /// is NULL or a live buffer of this provider.
    pub unsafe fn program_add_circular_buffer(
        &self,
        program: *mut tt_program,
        cores: &tt_core_range_set,
        config: &tt_cb_config,
    ) -> Result<u32, ShimError> {
        let f = func!(self, program_add_circular_buffer);
        let mut handle = 0u32;
        // SAFETY: handle and pointer validity are the caller's; the out pointer is a live local.
        self.check(
            unsafe { f(program, cores, config, &mut handle) },
            "program_add_circular_buffer",
        )?;
        Ok(handle)
    }

    /// Returns the semaphore id.
    ///
    /// # Safety
    /// `program` is live and not used by another thread; `cores.ranges` points to `num_ranges` ranges.
    pub unsafe fn program_add_semaphore(
        &self,
        program: *mut tt_program,
        cores: &tt_core_range_set,
        initial_value: u32,
    ) -> Result<u32, ShimError> {
        let f = func!(self, program_add_semaphore);
        let mut id = 0u32;
        // SAFETY: handle and pointer validity are the caller's; the out pointer is a live local.
        self.check(
            unsafe { f(program, cores, initial_value, &mut id) },
            "program_add_semaphore",
        )?;
        Ok(id)
    }

    /// Builds (or takes from the cache) a kernel and adds it to the program.
    ///
    /// # Safety
    /// `program` is live and not used by another thread; every pointer in `config` is NULL where the
    /// header allows it or points to valid data of the stated count (strings NUL-terminated).
    pub unsafe fn program_add_kernel(
        &self,
        program: *mut tt_program,
        config: &tt_kernel_config,
    ) -> Result<tt_kernel_id, ShimError> {
        let f = func!(self, program_add_kernel);
        let mut id: tt_kernel_id = 0;
        // SAFETY: handle and pointer validity are the caller's; the out pointer is a live local.
        self.check(unsafe { f(program, config, &mut id) }, "program_add_kernel")?;
        Ok(id)
    }

    /// # Safety
    /// `program` is live and not used by another thread; `kernel` was returned for it.
    pub unsafe fn program_set_runtime_args(
        &self,
        program: *mut tt_program,
        kernel: tt_kernel_id,
        core: tt_core_coord,
        args: &[u32],
    ) -> Result<(), ShimError> {
        let f = func!(self, program_set_runtime_args);
        let n = len_u32(args.len(), "program_set_runtime_args")?;
        // SAFETY: handle validity is the caller's; `args` is valid for `n` elements.
        self.check(
            unsafe { f(program, kernel, core, args.as_ptr(), n) },
            "program_set_runtime_args",
        )
    }

    /// # Safety
    /// As [`Api::program_set_runtime_args`].
    pub unsafe fn program_set_common_runtime_args(
        &self,
        program: *mut tt_program,
        kernel: tt_kernel_id,
        args: &[u32],
    ) -> Result<(), ShimError> {
        let f = func!(self, program_set_common_runtime_args);
        let n = len_u32(args.len(), "program_set_common_runtime_args")?;
        // SAFETY: handle validity is the caller's; `args` is valid for `n` elements.
        self.check(
            unsafe { f(program, kernel, args.as_ptr(), n) },
            "program_set_common_runtime_args",
        )
    }

    /// Enqueues the program, waits for it, and returns the run statistics.
    ///
    /// # Safety
    /// `device` and `program` are live handles of this provider (the program created on that device),
    /// not used by another thread during the call; every buffer the program's kernels address is live.
    pub unsafe fn program_run(
        &self,
        device: *mut tt_device,
        program: *mut tt_program,
    ) -> Result<tt_run_stats, ShimError> {
        let f = func!(self, program_run);
        let mut stats = tt_run_stats {
            struct_size: size_of::<tt_run_stats>() as u32,
            ..Default::default()
        };
        // SAFETY: handle validity is the caller's; the out pointer is a live local.
        self.check(unsafe { f(device, program, &mut stats) }, "program_run")?;
        Ok(stats)
    }
}

/// Owns the C strings and arrays a `tt_kernel_config` points to (helper for callers that build one
/// from Rust values).
#[derive(Debug, Default)]
pub struct KernelStrings {
    strings: Vec<CString>,
}

impl KernelStrings {
    /// Copies `s` into a C string owned by `self` and returns a pointer valid while `self` lives.
    /// Fails if `s` contains a NUL byte.
    pub fn add(&mut self, s: &str) -> Result<*const std::ffi::c_char, ShimError> {
        let c = CString::new(s).map_err(|_| ShimError {
            status: tt_status::TT_ERR_INVALID_ARGUMENT,
            message: format!("string {s:?} contains a NUL byte"),
            call: "KernelStrings::add",
            provider: String::new(),
        })?;
        let ptr = c.as_ptr();
        // Moving a CString moves only its heap pointer: `ptr` stays valid.
        self.strings.push(c);
        Ok(ptr)
    }
}
