//! The only module of this crate with `unsafe` code: every call into a provider's `tt_shim_api`
//! table goes through here. The rest of the crate sees safe functions over plain Rust data.
//!
//! Invariants this module maintains (the preconditions of the C ABI):
//! - a handle (`tt_device*`, `tt_buffer*`, `tt_program*`) is non-NULL, came from the provider of
//!   the same [`FfiDevice`], and has not been destroyed: [`RawBuffer`] and [`RawProgram`] can only
//!   be made here from a successful create call, and are consumed by their destroy call;
//! - "a handle is used from one thread at a time": every call on a device, its buffers and its
//!   programs holds that device's mutex, and the per-thread `last_error()` text is read inside the
//!   same critical section, right after the failing call;
//! - every pointer passed in points to memory that lives (and is not mutated) for the duration of
//!   the call, and every length matches its pointer;
//! - the provider library stays loaded while any device of it is open (the [`Api`] clone held by
//!   [`FfiDevice`] keeps its `Arc<Library>`).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

use tt_sys::{
    Api, tt_buffer, tt_buffer_config, tt_cb_config, tt_cb_format, tt_core_coord, tt_core_range,
    tt_core_range_set, tt_define, tt_device, tt_device_info, tt_device_open_options,
    tt_kernel_config, tt_kernel_id, tt_program, tt_run_stats, tt_shard_spec, tt_status,
    tt_thread_profile,
};

use crate::error::{ProviderError, Status};

/// Turns a raw status into `Ok(())` or a [`ProviderError`] with the provider's message.
fn check(
    api: &Api,
    provider: &str,
    call: &'static str,
    raw: tt_status::Type,
) -> Result<(), ProviderError> {
    match Status::from_raw(raw) {
        None => Ok(()),
        Some(status) => {
            let message = api.last_error();
            Err(ProviderError {
                provider: provider.to_owned(),
                call,
                status,
                message: if message.is_empty() {
                    "(the provider gave no message)".to_owned()
                } else {
                    message
                },
            })
        }
    }
}

/// The simulator's provider table, obtained through its `tt_shim_get_api`-style entry point and
/// checked exactly like a loaded library's table (no `unsafe` needed: `Api::from_get_api` owns
/// the call).
pub(crate) fn sim_api() -> Result<Api, tt_sys::LoadError> {
    Api::from_get_api(tt_sim::ffi::tt_sim_shim_get_api)
}

/// Counts the devices of a provider (no device handle needed).
pub(crate) fn device_count(api: &Api) -> Result<u32, ProviderError> {
    let name = api.provider_name();
    let f = api
        .table()
        .device_count
        .ok_or_else(|| missing(&name, "device_count"))?;
    let mut count = 0u32;
    // SAFETY: `f` is the provider's device_count (checked non-NULL by `Api`); `count` is a valid,
    // writable u32 for the duration of the call.
    let raw = unsafe { f(&mut count) };
    check(api, &name, "device_count", raw)?;
    Ok(count)
}

fn missing(provider: &str, call: &'static str) -> ProviderError {
    ProviderError {
        provider: provider.to_owned(),
        call,
        status: Status::Internal,
        message: "the provider table has no such function".to_owned(),
    }
}

/// An open device of one provider. Closing happens on drop.
pub(crate) struct FfiDevice {
    api: Api,
    provider: String,
    dev: NonNull<tt_device>,
    lock: Mutex<()>,
}

// SAFETY: the device handle is only used while holding `lock`, which gives the "one thread at a
// time" guarantee the ABI requires; the provider's functions may be called from any thread
// (tt_shim.h contract). `Api` is Send + Sync.
unsafe impl Send for FfiDevice {}
// SAFETY: see `Send`; shared access goes through `lock`.
unsafe impl Sync for FfiDevice {}

/// A live buffer handle; only this module can create or destroy one.
pub(crate) struct RawBuffer(NonNull<tt_buffer>);
// SAFETY: the handle is an opaque token; it is only dereferenced by the provider, inside calls that
// hold the owning device's lock.
unsafe impl Send for RawBuffer {}
// SAFETY: as for `Send`.
unsafe impl Sync for RawBuffer {}

/// A live program handle; only this module can create or destroy one.
pub(crate) struct RawProgram(NonNull<tt_program>);
// SAFETY: as for `RawBuffer`.
unsafe impl Send for RawProgram {}
// SAFETY: as for `RawBuffer`.
unsafe impl Sync for RawProgram {}

/// Sharding description in plain Rust data.
pub(crate) struct ShardDesc {
    pub ranges: Vec<tt_core_range>,
    pub shard_shape: [u32; 2],
    pub page_shape: [u32; 2],
    pub tensor_shape_in_pages: [u32; 2],
    pub orientation: u32,
}

/// Buffer description in plain Rust data.
pub(crate) struct BufferDesc {
    pub size: u64,
    pub page_size: u32,
    pub buffer_type: u32,
    pub layout: u32,
    pub shard: Option<ShardDesc>,
}

/// Kernel description in plain Rust data (strings already checked for NUL bytes).
pub(crate) struct KernelDesc {
    pub name: CString,
    pub source: CString,
    pub kind: u32,
    pub processor: u32,
    pub noc: u32,
    pub ranges: Vec<tt_core_range>,
    pub compile_args: Vec<u32>,
    pub defines: Vec<(CString, CString)>,
    pub math_fidelity: u32,
    pub fp32_dest_acc_en: bool,
    pub dst_full_sync_en: bool,
    pub math_approx_mode: bool,
    pub bfp8_pack_precise: bool,
    pub unpack_to_dest_fp32: Option<Vec<u32>>,
}

fn range_set(ranges: &[tt_core_range]) -> tt_core_range_set {
    tt_core_range_set {
        ranges: ranges.as_ptr(),
        num_ranges: ranges.len() as u32,
    }
}

macro_rules! func {
    ($self:ident, $name:ident) => {
        $self
            .api
            .table()
            .$name
            .ok_or_else(|| missing(&$self.provider, stringify!($name)))?
    };
}

impl FfiDevice {
    /// Opens a device of `api`.
    pub(crate) fn open(api: Api, device_id: u32, arch: u32) -> Result<FfiDevice, ProviderError> {
        let provider = api.provider_name();
        let f = api
            .table()
            .device_open
            .ok_or_else(|| missing(&provider, "device_open"))?;
        let options = tt_device_open_options {
            struct_size: size_of::<tt_device_open_options>() as u32,
            device_id,
            arch,
            flags: 0,
        };
        let mut out: *mut tt_device = std::ptr::null_mut();
        // SAFETY: `options` and `out` are valid for the call; `f` is the provider's device_open.
        let raw = unsafe { f(&options, &mut out) };
        check(&api, &provider, "device_open", raw)?;
        let dev = NonNull::new(out).ok_or_else(|| ProviderError {
            provider: provider.clone(),
            call: "device_open",
            status: Status::Internal,
            message: "the provider returned TT_OK and a NULL device".to_owned(),
        })?;
        Ok(FfiDevice {
            api,
            provider,
            dev,
            lock: Mutex::new(()),
        })
    }

    /// The provider's name (`"sim"`, `"metal"`).
    pub(crate) fn provider(&self) -> &str {
        &self.provider
    }

    /// Where the provider came from (library path or in-process).
    pub(crate) fn origin(&self) -> &str {
        self.api.origin()
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        // A panic while holding the lock cannot leave the provider in a state we could repair;
        // the lock protects no Rust data, so continuing is as good as anything.
        self.lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check(&self, call: &'static str, raw: tt_status::Type) -> Result<(), ProviderError> {
        check(&self.api, &self.provider, call, raw)
    }

    pub(crate) fn info(&self) -> Result<tt_device_info, ProviderError> {
        let f = func!(self, device_info);
        let _g = self.guard();
        let mut info = tt_device_info::default();
        // SAFETY: live device handle (struct invariant), `info` writable for the call, lock held.
        let raw = unsafe { f(self.dev.as_ptr(), &mut info) };
        self.check("device_info", raw)?;
        Ok(info)
    }

    pub(crate) fn worker_core_from_logical(
        &self,
        x: u32,
        y: u32,
    ) -> Result<(u32, u32), ProviderError> {
        let f = func!(self, worker_core_from_logical);
        let _g = self.guard();
        let mut out = tt_core_coord::default();
        // SAFETY: live device handle, `out` writable for the call, lock held.
        let raw = unsafe { f(self.dev.as_ptr(), tt_core_coord { x, y }, &mut out) };
        self.check("worker_core_from_logical", raw)?;
        Ok((out.x, out.y))
    }

    pub(crate) fn dram_bank_noc_coord(&self, bank: u32) -> Result<(u32, u32), ProviderError> {
        let f = func!(self, dram_bank_noc_coord);
        let _g = self.guard();
        let mut out = tt_core_coord::default();
        // SAFETY: live device handle, `out` writable for the call, lock held.
        let raw = unsafe { f(self.dev.as_ptr(), bank, &mut out) };
        self.check("dram_bank_noc_coord", raw)?;
        Ok((out.x, out.y))
    }

    pub(crate) fn buffer_create(&self, desc: &BufferDesc) -> Result<RawBuffer, ProviderError> {
        let f = func!(self, buffer_create);
        let shard = desc.shard.as_ref().map(|s| tt_shard_spec {
            cores: range_set(&s.ranges),
            shard_shape: s.shard_shape,
            page_shape: s.page_shape,
            tensor_shape_in_pages: s.tensor_shape_in_pages,
            orientation: s.orientation,
        });
        let config = tt_buffer_config {
            size: desc.size,
            page_size: desc.page_size,
            buffer_type: desc.buffer_type,
            layout: desc.layout,
            shard: shard
                .as_ref()
                .map_or(std::ptr::null(), |s| s as *const tt_shard_spec),
        };
        let _g = self.guard();
        let mut out: *mut tt_buffer = std::ptr::null_mut();
        // SAFETY: `config` (and the shard spec and core ranges it points to, owned by `desc` and
        // `shard`) live until the call returns; `out` is writable; live device handle; lock held.
        let raw = unsafe { f(self.dev.as_ptr(), &config, &mut out) };
        self.check("buffer_create", raw)?;
        NonNull::new(out)
            .map(RawBuffer)
            .ok_or_else(|| self.null_handle("buffer_create"))
    }

    fn null_handle(&self, call: &'static str) -> ProviderError {
        ProviderError {
            provider: self.provider.clone(),
            call,
            status: Status::Internal,
            message: "the provider returned TT_OK and a NULL handle".to_owned(),
        }
    }

    pub(crate) fn buffer_destroy(&self, buffer: RawBuffer) -> Result<(), ProviderError> {
        let f = func!(self, buffer_destroy);
        let _g = self.guard();
        // SAFETY: `buffer` is a live handle of this device, consumed here so it is never used again;
        // lock held.
        let raw = unsafe { f(buffer.0.as_ptr()) };
        self.check("buffer_destroy", raw)
    }

    pub(crate) fn buffer_address(&self, buffer: &RawBuffer) -> Result<u64, ProviderError> {
        let f = func!(self, buffer_address);
        let _g = self.guard();
        let mut out = 0u64;
        // SAFETY: live buffer handle of this device, `out` writable, lock held.
        let raw = unsafe { f(buffer.0.as_ptr(), &mut out) };
        self.check("buffer_address", raw)?;
        Ok(out)
    }

    pub(crate) fn buffer_write(
        &self,
        buffer: &RawBuffer,
        offset: u64,
        data: &[u8],
    ) -> Result<(), ProviderError> {
        let f = func!(self, buffer_write);
        let _g = self.guard();
        // SAFETY: live buffer handle; `data` is readable for `data.len()` bytes during the call; lock held.
        let raw = unsafe {
            f(
                buffer.0.as_ptr(),
                offset,
                data.as_ptr().cast(),
                data.len() as u64,
            )
        };
        self.check("buffer_write", raw)
    }

    pub(crate) fn buffer_read(
        &self,
        buffer: &RawBuffer,
        offset: u64,
        out: &mut [u8],
    ) -> Result<(), ProviderError> {
        let f = func!(self, buffer_read);
        let _g = self.guard();
        // SAFETY: live buffer handle; `out` is writable for `out.len()` bytes during the call and not
        // aliased (unique borrow); lock held.
        let raw = unsafe {
            f(
                buffer.0.as_ptr(),
                offset,
                out.as_mut_ptr().cast(),
                out.len() as u64,
            )
        };
        self.check("buffer_read", raw)
    }

    pub(crate) fn program_create(&self) -> Result<RawProgram, ProviderError> {
        let f = func!(self, program_create);
        let _g = self.guard();
        let mut out: *mut tt_program = std::ptr::null_mut();
        // SAFETY: live device handle, `out` writable, lock held.
        let raw = unsafe { f(self.dev.as_ptr(), &mut out) };
        self.check("program_create", raw)?;
        NonNull::new(out)
            .map(RawProgram)
            .ok_or_else(|| self.null_handle("program_create"))
    }

    pub(crate) fn program_destroy(&self, program: RawProgram) -> Result<(), ProviderError> {
        let f = func!(self, program_destroy);
        let _g = self.guard();
        // SAFETY: live program handle of this device, consumed here; lock held.
        let raw = unsafe { f(program.0.as_ptr()) };
        self.check("program_destroy", raw)
    }

    pub(crate) fn program_add_circular_buffer(
        &self,
        program: &RawProgram,
        ranges: &[tt_core_range],
        total_size: u32,
        formats: &[tt_cb_format],
        global: Option<&RawBuffer>,
    ) -> Result<u32, ProviderError> {
        let f = func!(self, program_add_circular_buffer);
        let cores = range_set(ranges);
        let config = tt_cb_config {
            total_size,
            formats: formats.as_ptr(),
            num_formats: formats.len() as u32,
            globally_allocated: global
                .map_or(std::ptr::null(), |b| b.0.as_ptr() as *const tt_buffer),
        };
        let _g = self.guard();
        let mut out = 0u32;
        // SAFETY: `cores`, `config` and the slices they point into live until the call returns;
        // the program and (optional) buffer handles are live handles of this device; lock held.
        let raw = unsafe { f(program.0.as_ptr(), &cores, &config, &mut out) };
        self.check("program_add_circular_buffer", raw)?;
        Ok(out)
    }

    pub(crate) fn program_add_semaphore(
        &self,
        program: &RawProgram,
        ranges: &[tt_core_range],
        initial_value: u32,
    ) -> Result<u32, ProviderError> {
        let f = func!(self, program_add_semaphore);
        let cores = range_set(ranges);
        let _g = self.guard();
        let mut out = 0u32;
        // SAFETY: `cores` and its ranges live for the call; live program handle; lock held.
        let raw = unsafe { f(program.0.as_ptr(), &cores, initial_value, &mut out) };
        self.check("program_add_semaphore", raw)?;
        Ok(out)
    }

    pub(crate) fn program_add_kernel(
        &self,
        program: &RawProgram,
        desc: &KernelDesc,
    ) -> Result<u32, ProviderError> {
        let f = func!(self, program_add_kernel);
        let defines: Vec<tt_define> = desc
            .defines
            .iter()
            .map(|(n, v)| tt_define {
                name: n.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        let config = tt_kernel_config {
            name: desc.name.as_ptr(),
            source: desc.source.as_ptr(),
            kind: desc.kind,
            processor: desc.processor,
            noc: desc.noc,
            cores: range_set(&desc.ranges),
            compile_args: desc.compile_args.as_ptr(),
            num_compile_args: desc.compile_args.len() as u32,
            defines: defines.as_ptr(),
            num_defines: defines.len() as u32,
            math_fidelity: desc.math_fidelity,
            fp32_dest_acc_en: desc.fp32_dest_acc_en,
            dst_full_sync_en: desc.dst_full_sync_en,
            math_approx_mode: desc.math_approx_mode,
            bfp8_pack_precise: desc.bfp8_pack_precise,
            unpack_to_dest_fp32: desc
                .unpack_to_dest_fp32
                .as_ref()
                .map_or(std::ptr::null(), |v| v.as_ptr()),
        };
        let _g = self.guard();
        let mut out: tt_kernel_id = 0;
        // SAFETY: every pointer in `config` points into `desc` or `defines`, which outlive the call;
        // NUL-terminated strings come from CStrings; the unpack_to_dest array has
        // max_circular_buffers entries (built by the caller from DeviceInfo); live program; lock held.
        let raw = unsafe { f(program.0.as_ptr(), &config, &mut out) };
        self.check("program_add_kernel", raw)?;
        Ok(out)
    }

    pub(crate) fn program_set_runtime_args(
        &self,
        program: &RawProgram,
        kernel: u32,
        core: (u32, u32),
        args: &[u32],
    ) -> Result<(), ProviderError> {
        let f = func!(self, program_set_runtime_args);
        let _g = self.guard();
        // SAFETY: `args` is readable for `args.len()` words during the call; live program; lock held.
        let raw = unsafe {
            f(
                program.0.as_ptr(),
                kernel,
                tt_core_coord {
                    x: core.0,
                    y: core.1,
                },
                args.as_ptr(),
                args.len() as u32,
            )
        };
        self.check("program_set_runtime_args", raw)
    }

    pub(crate) fn program_set_common_runtime_args(
        &self,
        program: &RawProgram,
        kernel: u32,
        args: &[u32],
    ) -> Result<(), ProviderError> {
        let f = func!(self, program_set_common_runtime_args);
        let _g = self.guard();
        // SAFETY: `args` is readable for `args.len()` words during the call; live program; lock held.
        let raw = unsafe { f(program.0.as_ptr(), kernel, args.as_ptr(), args.len() as u32) };
        self.check("program_set_common_runtime_args", raw)
    }

    pub(crate) fn program_run(&self, program: &RawProgram) -> Result<tt_run_stats, ProviderError> {
        let f = func!(self, program_run);
        let _g = self.guard();
        let mut stats = tt_run_stats {
            struct_size: size_of::<tt_run_stats>() as u32,
            ..Default::default()
        };
        // SAFETY: live device and program handles of this provider; `stats` writable; lock held.
        let raw = unsafe { f(self.dev.as_ptr(), program.0.as_ptr(), &mut stats) };
        self.check("program_run", raw)?;
        Ok(stats)
    }

    /// An optional (appended) table function, or `Unsupported` naming it.
    fn optional<T>(&self, f: Option<T>, call: &'static str) -> Result<T, ProviderError> {
        f.ok_or_else(|| ProviderError {
            provider: self.provider.clone(),
            call,
            status: Status::Unsupported,
            message:
                "this provider has no timing model / profile (the function is NULL in its table)"
                    .to_owned(),
        })
    }

    /// One of the text profile functions: asks for the size, then fetches the text.
    fn profile_text(
        &self,
        program: &RawProgram,
        which: ProfileText,
    ) -> Result<String, ProviderError> {
        let (f, call) = match which {
            ProfileText::Json => (
                self.optional(
                    self.api.table().program_profile_json,
                    "program_profile_json",
                )?,
                "program_profile_json",
            ),
            ProfileText::Summary => (
                self.optional(
                    self.api.table().program_profile_summary,
                    "program_profile_summary",
                )?,
                "program_profile_summary",
            ),
        };
        let _g = self.guard();
        let mut needed = 0u64;
        // SAFETY: live program handle; len 0 with a NULL buffer only asks for the size; lock held.
        let raw = unsafe { f(program.0.as_ptr(), std::ptr::null_mut(), 0, &mut needed) };
        self.check(call, raw)?;
        let mut buf = vec![0u8; needed.max(1) as usize];
        // SAFETY: `buf` has `buf.len()` writable bytes; live program handle; lock held.
        let raw = unsafe {
            f(
                program.0.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len() as u64,
                &mut needed,
            )
        };
        self.check(call, raw)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        buf.truncate(end);
        String::from_utf8(buf).map_err(|e| ProviderError {
            provider: self.provider.clone(),
            call,
            status: Status::Internal,
            message: format!("the provider returned text that is not UTF-8: {e}"),
        })
    }

    pub(crate) fn program_profile_json(
        &self,
        program: &RawProgram,
    ) -> Result<String, ProviderError> {
        self.profile_text(program, ProfileText::Json)
    }

    pub(crate) fn program_profile_summary(
        &self,
        program: &RawProgram,
    ) -> Result<String, ProviderError> {
        self.profile_text(program, ProfileText::Summary)
    }

    pub(crate) fn program_profile_threads(
        &self,
        program: &RawProgram,
    ) -> Result<Vec<tt_thread_profile>, ProviderError> {
        let f = self.optional(
            self.api.table().program_profile_threads,
            "program_profile_threads",
        )?;
        let _g = self.guard();
        let mut count = 0u32;
        // SAFETY: live program handle; capacity 0 with NULL only asks for the count; lock held.
        let raw = unsafe { f(program.0.as_ptr(), std::ptr::null_mut(), 0, &mut count) };
        self.check("program_profile_threads", raw)?;
        let mut out = vec![tt_thread_profile::default(); count as usize];
        // SAFETY: `out` has `count` writable entries; live program handle; lock held.
        let raw = unsafe { f(program.0.as_ptr(), out.as_mut_ptr(), count, &mut count) };
        self.check("program_profile_threads", raw)?;
        out.truncate(count as usize);
        Ok(out)
    }
}

#[derive(Clone, Copy)]
enum ProfileText {
    Json,
    Summary,
}

impl Drop for FfiDevice {
    fn drop(&mut self) {
        if let Some(f) = self.api.table().device_close {
            let _g = self.guard();
            // SAFETY: the device handle is live and dropped exactly once here; every buffer and program
            // holds an `Arc` of the owning `Device` inner, so they were all destroyed before this runs.
            let _status = unsafe { f(self.dev.as_ptr()) };
            // A close failure cannot be reported from drop; the provider has already recorded it.
        }
    }
}
