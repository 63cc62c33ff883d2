//! The `tt_shim.h` function table over the simulator ([`shim_api`]).
//!
//! Handles are boxes: `tt_device*` -> [`FfiDevice`], `tt_buffer*` -> [`FfiBuffer`], `tt_program*` ->
//! [`FfiProgram`]. Every entry point validates its pointers, converts the C structs, calls the Rust
//! API, catches panics, and stores the message of a failure in a per-thread buffer for `last_error`.

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::panic::AssertUnwindSafe;

use tt_sys::{
    tt_buffer, tt_buffer_config, tt_cb_config, tt_core_coord, tt_core_range_set, tt_device,
    tt_device_info, tt_device_open_options, tt_kernel_config, tt_kernel_id, tt_program,
    tt_run_stats, tt_shim_api, tt_status, tt_thread_profile,
};

use crate::arch::{CoreCoord, CoreRange, SimArch};
use crate::device::{
    BufferConfig, BufferId, BufferLayout, BufferType, ShardOrientation, ShardSpec, SimDevice,
};
use crate::error::{SimError, SimResult};
use crate::program::{
    CbConfig, CbFormat, ComputeConfig, KernelConfig, KernelKind, MathFidelity, Risc, SimProgram,
};

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: &str) {
    let c = CString::new(msg.replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// A device handle.
pub struct FfiDevice {
    dev: SimDevice,
    live_buffers: usize,
    live_programs: usize,
}

/// A buffer handle.
pub struct FfiBuffer {
    dev: *mut FfiDevice,
    id: BufferId,
}

/// A program handle.
pub struct FfiProgram {
    dev: *mut FfiDevice,
    prog: SimProgram,
}

fn guard(f: impl FnOnce() -> SimResult<()>) -> tt_status::Type {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => {
            set_error("");
            tt_status::TT_OK
        }
        Ok(Err(e)) => {
            set_error(&e.message());
            e.status()
        }
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            set_error(&format!("internal simulator error (panic): {msg}"));
            tt_status::TT_ERR_INTERNAL
        }
    }
}

fn null(what: &str) -> SimError {
    SimError::InvalidArgument(format!("{what} is NULL"))
}

/// # Safety
/// `p` must be NULL or a pointer this module returned and that was not destroyed.
unsafe fn dev_mut<'a>(p: *mut tt_device) -> SimResult<&'a mut FfiDevice> {
    // SAFETY: caller contract; tt_device* handles are FfiDevice boxes.
    unsafe { (p as *mut FfiDevice).as_mut() }.ok_or_else(|| null("device"))
}
/// # Safety
/// As [`dev_mut`], for buffers.
unsafe fn buf_mut<'a>(p: *mut tt_buffer) -> SimResult<&'a mut FfiBuffer> {
    // SAFETY: caller contract.
    unsafe { (p as *mut FfiBuffer).as_mut() }.ok_or_else(|| null("buffer"))
}
/// # Safety
/// As [`dev_mut`], for programs.
unsafe fn prog_mut<'a>(p: *mut tt_program) -> SimResult<&'a mut FfiProgram> {
    // SAFETY: caller contract.
    unsafe { (p as *mut FfiProgram).as_mut() }.ok_or_else(|| null("program"))
}

/// # Safety
/// `p` must be NULL or point at `n` readable values of T.
unsafe fn slice<'a, T>(p: *const T, n: usize, what: &str) -> SimResult<&'a [T]> {
    if n == 0 {
        return Ok(&[]);
    }
    if p.is_null() {
        return Err(SimError::InvalidArgument(format!(
            "{what} is NULL but its count is {n}"
        )));
    }
    // SAFETY: caller contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) })
}

/// # Safety
/// `p` must be NULL or a NUL-terminated string.
unsafe fn string(p: *const c_char, what: &str) -> SimResult<String> {
    if p.is_null() {
        return Err(null(what));
    }
    // SAFETY: caller contract.
    Ok(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

fn coord(c: tt_core_coord) -> CoreCoord {
    CoreCoord { x: c.x, y: c.y }
}

/// # Safety
/// `s` must be NULL or a valid range set.
unsafe fn ranges(s: *const tt_core_range_set) -> SimResult<Vec<CoreRange>> {
    // SAFETY: caller contract.
    let s = unsafe { s.as_ref() }.ok_or_else(|| null("core range set"))?;
    // SAFETY: the set's pointer and count come from the caller's struct.
    let rs = unsafe { slice(s.ranges, s.num_ranges as usize, "core_range_set.ranges") }?;
    Ok(rs
        .iter()
        .map(|r| CoreRange {
            start: coord(r.start),
            end: coord(r.end),
        })
        .collect())
}

unsafe extern "C" fn last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

unsafe extern "C" fn device_count(out: *mut u32) -> tt_status::Type {
    guard(|| {
        // SAFETY: caller passes a writable u32 or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_count"))?;
        *out = 1;
        Ok(())
    })
}

unsafe extern "C" fn device_open(
    opts: *const tt_device_open_options,
    out: *mut *mut tt_device,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: caller passes a writable pointer slot or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_device"))?;
        // SAFETY: caller passes NULL or a valid options struct.
        let arch = match unsafe { opts.as_ref() } {
            None => SimArch::WormholeB0,
            Some(o) => {
                if (o.struct_size as usize) < std::mem::size_of::<tt_device_open_options>() {
                    return Err(SimError::InvalidArgument(format!(
                        "tt_device_open_options.struct_size is {}, expected {}",
                        o.struct_size,
                        std::mem::size_of::<tt_device_open_options>()
                    )));
                }
                if o.device_id != 0 {
                    return Err(SimError::InvalidArgument(format!(
                        "the simulator has one device (id 0), asked for {}",
                        o.device_id
                    )));
                }
                match o.arch {
                    0 => SimArch::WormholeB0,
                    a => SimArch::from_raw(a).ok_or_else(|| {
                        SimError::InvalidArgument(format!(
                            "unknown arch {a}: use TT_ARCH_WORMHOLE_B0 (1) or TT_ARCH_BLACKHOLE (2)"
                        ))
                    })?,
                }
            }
        };
        let dev = SimDevice::open(arch)?;
        *out = Box::into_raw(Box::new(FfiDevice {
            dev,
            live_buffers: 0,
            live_programs: 0,
        })) as *mut tt_device;
        Ok(())
    })
}

unsafe extern "C" fn device_close(device: *mut tt_device) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        if d.live_buffers > 0 || d.live_programs > 0 {
            return Err(SimError::InvalidArgument(format!(
                "device_close with {} buffer(s) and {} program(s) still alive: destroy them first",
                d.live_buffers, d.live_programs
            )));
        }
        // SAFETY: the handle was created by Box::into_raw in device_open and is not used again.
        drop(unsafe { Box::from_raw(device as *mut FfiDevice) });
        Ok(())
    })
}

unsafe extern "C" fn device_info(
    device: *mut tt_device,
    out: *mut tt_device_info,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: caller passes a writable struct or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_info"))?;
        let i = d.dev.info();
        *out = tt_device_info {
            arch: i.arch.as_raw(),
            grid_x: i.grid_x,
            grid_y: i.grid_y,
            clock_mhz: i.clock_mhz,
            l1_size: i.l1_size,
            l1_unreserved_base: i.l1_unreserved_base,
            l1_alignment: i.l1_alignment,
            dram_alignment: i.dram_alignment,
            num_dram_banks: i.num_dram_banks,
            dram_bank_size: i.dram_bank_size,
            max_circular_buffers: i.max_circular_buffers,
            max_semaphores: i.max_semaphores,
            max_runtime_args: i.max_runtime_args,
            is_simulator: 1,
        };
        Ok(())
    })
}

unsafe extern "C" fn worker_core_from_logical(
    device: *mut tt_device,
    logical: tt_core_coord,
    out: *mut tt_core_coord,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: caller passes a writable struct or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_noc"))?;
        let n = d.dev.worker_core_from_logical(coord(logical))?;
        *out = tt_core_coord { x: n.x, y: n.y };
        Ok(())
    })
}

unsafe extern "C" fn dram_bank_noc_coord(
    device: *mut tt_device,
    bank: u32,
    out: *mut tt_core_coord,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: caller passes a writable struct or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_noc"))?;
        let n = d.dev.dram_bank_noc_coord(bank)?;
        *out = tt_core_coord { x: n.x, y: n.y };
        Ok(())
    })
}

unsafe extern "C" fn buffer_create(
    device: *mut tt_device,
    config: *const tt_buffer_config,
    out: *mut *mut tt_buffer,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: caller passes a valid config or NULL.
        let c = unsafe { config.as_ref() }.ok_or_else(|| null("buffer config"))?;
        // SAFETY: caller passes a writable slot or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_buffer"))?;
        let buffer_type = match c.buffer_type {
            tt_sys::tt_buffer_type::TT_BUFFER_DRAM => BufferType::Dram,
            tt_sys::tt_buffer_type::TT_BUFFER_L1 => BufferType::L1,
            v => {
                return Err(SimError::InvalidArgument(format!(
                    "unknown buffer_type {v}"
                )));
            }
        };
        let layout = match c.layout {
            tt_sys::tt_buffer_layout::TT_LAYOUT_INTERLEAVED => BufferLayout::Interleaved,
            tt_sys::tt_buffer_layout::TT_LAYOUT_HEIGHT_SHARDED => BufferLayout::HeightSharded,
            tt_sys::tt_buffer_layout::TT_LAYOUT_WIDTH_SHARDED => BufferLayout::WidthSharded,
            tt_sys::tt_buffer_layout::TT_LAYOUT_BLOCK_SHARDED => BufferLayout::BlockSharded,
            v => {
                return Err(SimError::InvalidArgument(format!(
                    "unknown buffer layout {v}"
                )));
            }
        };
        // SAFETY: caller passes NULL or a valid shard spec.
        let shard = match unsafe { c.shard.as_ref() } {
            None => None,
            Some(s) => {
                // SAFETY: the spec's range set comes from the caller.
                let rs = unsafe { ranges(&s.cores) }?;
                let cores = tt_formats::CoreRangeSet::new(rs)
                    .map_err(|e| SimError::InvalidArgument(format!("shard spec cores: {e}")))?;
                Some(ShardSpec {
                    cores,
                    shard_shape: s.shard_shape,
                    page_shape: s.page_shape,
                    tensor_shape_in_pages: s.tensor_shape_in_pages,
                    orientation: match s.orientation {
                        tt_sys::tt_shard_orientation::TT_SHARD_ROW_MAJOR => {
                            ShardOrientation::RowMajor
                        }
                        tt_sys::tt_shard_orientation::TT_SHARD_COL_MAJOR => {
                            ShardOrientation::ColMajor
                        }
                        v => {
                            return Err(SimError::InvalidArgument(format!(
                                "unknown shard orientation {v}"
                            )));
                        }
                    },
                })
            }
        };
        let id = d.dev.create_buffer(&BufferConfig {
            size: c.size,
            page_size: c.page_size,
            buffer_type,
            layout,
            shard,
        })?;
        d.live_buffers += 1;
        *out = Box::into_raw(Box::new(FfiBuffer {
            dev: d as *mut FfiDevice,
            id,
        })) as *mut tt_buffer;
        Ok(())
    })
}

unsafe extern "C" fn buffer_destroy(buffer: *mut tt_buffer) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let b = unsafe { buf_mut(buffer) }?;
        // SAFETY: a buffer's device outlives it (device_close refuses while buffers are alive).
        let d = unsafe { &mut *b.dev };
        d.dev.destroy_buffer(b.id)?;
        d.live_buffers -= 1;
        // SAFETY: created by Box::into_raw in buffer_create; not used again.
        drop(unsafe { Box::from_raw(buffer as *mut FfiBuffer) });
        Ok(())
    })
}

unsafe extern "C" fn buffer_address(buffer: *mut tt_buffer, out: *mut u64) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let b = unsafe { buf_mut(buffer) }?;
        // SAFETY: caller passes a writable u64 or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_address"))?;
        // SAFETY: see buffer_destroy.
        *out = unsafe { &*b.dev }.dev.buffer_address(b.id)?;
        Ok(())
    })
}

unsafe extern "C" fn buffer_write(
    buffer: *mut tt_buffer,
    offset: u64,
    src: *const c_void,
    size: u64,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let b = unsafe { buf_mut(buffer) }?;
        // SAFETY: caller passes `size` readable bytes.
        let data = unsafe { slice(src as *const u8, size as usize, "src") }?;
        // SAFETY: see buffer_destroy.
        unsafe { &mut *b.dev }.dev.write_buffer(b.id, offset, data)
    })
}

unsafe extern "C" fn buffer_read(
    buffer: *mut tt_buffer,
    offset: u64,
    dst: *mut c_void,
    size: u64,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let b = unsafe { buf_mut(buffer) }?;
        if size > 0 && dst.is_null() {
            return Err(null("dst"));
        }
        let out: &mut [u8] = if size == 0 {
            &mut []
        } else {
            // SAFETY: caller passes `size` writable bytes.
            unsafe { std::slice::from_raw_parts_mut(dst as *mut u8, size as usize) }
        };
        // SAFETY: see buffer_destroy.
        unsafe { &*b.dev }.dev.read_buffer(b.id, offset, out)
    })
}

unsafe extern "C" fn program_create(
    device: *mut tt_device,
    out: *mut *mut tt_program,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: caller passes a writable slot or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_program"))?;
        let prog = SimProgram::new(&d.dev);
        d.live_programs += 1;
        *out = Box::into_raw(Box::new(FfiProgram {
            dev: d as *mut FfiDevice,
            prog,
        })) as *mut tt_program;
        Ok(())
    })
}

unsafe extern "C" fn program_destroy(program: *mut tt_program) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: a program's device outlives it.
        unsafe { &mut *p.dev }.live_programs -= 1;
        // SAFETY: created by Box::into_raw in program_create; not used again.
        drop(unsafe { Box::from_raw(program as *mut FfiProgram) });
        Ok(())
    })
}

unsafe extern "C" fn program_add_circular_buffer(
    program: *mut tt_program,
    cores: *const tt_core_range_set,
    config: *const tt_cb_config,
    out: *mut u32,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: caller passes a valid range set.
        let rs = unsafe { ranges(cores) }?;
        // SAFETY: caller passes a valid config or NULL.
        let c = unsafe { config.as_ref() }.ok_or_else(|| null("cb config"))?;
        // SAFETY: the config's array and count come from the caller.
        let fs = unsafe { slice(c.formats, c.num_formats as usize, "cb_config.formats") }?;
        let global = if c.globally_allocated.is_null() {
            None
        } else {
            // SAFETY: a non-NULL buffer handle from buffer_create.
            let b = unsafe { &*(c.globally_allocated as *const FfiBuffer) };
            if b.dev != p.dev {
                return Err(SimError::InvalidArgument(
                    "globally_allocated buffer belongs to another device".into(),
                ));
            }
            Some(b.id)
        };
        let cfg = CbConfig {
            total_size: c.total_size,
            formats: fs
                .iter()
                .map(|f| CbFormat {
                    index: f.cb_index,
                    data_format: f.data_format,
                    page_size: f.page_size,
                })
                .collect(),
            globally_allocated: global,
        };
        // SAFETY: see program_destroy.
        let dev = unsafe { &*p.dev };
        let h = p.prog.add_circular_buffer(&dev.dev, &rs, &cfg)?;
        // SAFETY: caller passes a writable u32 or NULL.
        if let Some(o) = unsafe { out.as_mut() } {
            *o = h;
        }
        Ok(())
    })
}

unsafe extern "C" fn program_add_semaphore(
    program: *mut tt_program,
    cores: *const tt_core_range_set,
    initial: u32,
    out: *mut u32,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: caller passes a valid range set.
        let rs = unsafe { ranges(cores) }?;
        // SAFETY: caller passes a writable u32 or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_semaphore_id"))?;
        *out = p.prog.add_semaphore(&rs, initial)?;
        Ok(())
    })
}

unsafe extern "C" fn program_add_kernel(
    program: *mut tt_program,
    config: *const tt_kernel_config,
    out: *mut tt_kernel_id,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: caller passes a valid config or NULL.
        let c = unsafe { config.as_ref() }.ok_or_else(|| null("kernel config"))?;
        // SAFETY: caller passes a writable id or NULL.
        let out = unsafe { out.as_mut() }.ok_or_else(|| null("out_kernel"))?;
        // SAFETY: strings from the caller's config.
        let name = unsafe { string(c.name, "kernel_config.name") }?;
        // SAFETY: as above.
        let source = unsafe { string(c.source, "kernel_config.source") }?;
        // SAFETY: the config's range set.
        let cores = unsafe { ranges(&c.cores) }?;
        // SAFETY: the config's array and count.
        let compile_args =
            unsafe { slice(c.compile_args, c.num_compile_args as usize, "compile_args") }?.to_vec();
        // SAFETY: the config's array and count.
        let defs = unsafe { slice(c.defines, c.num_defines as usize, "defines") }?;
        let mut defines = Vec::new();
        for d in defs {
            // SAFETY: strings from the caller's define entries.
            let n = unsafe { string(d.name, "define name") }?;
            let v = if d.value.is_null() {
                String::new()
            } else {
                // SAFETY: a non-NULL define value from the caller's entry is a C string.
                unsafe { string(d.value, "define value") }?
            };
            defines.push((n, v));
        }
        let kind = match c.kind {
            tt_sys::tt_kernel_kind::TT_KERNEL_DATA_MOVEMENT => {
                let risc = match c.processor {
                    tt_sys::tt_processor::TT_RISCV_0 => Risc::Brisc,
                    tt_sys::tt_processor::TT_RISCV_1 => Risc::Ncrisc,
                    v => {
                        return Err(SimError::InvalidArgument(format!(
                            "unknown processor {v} (RISCV_0=0, RISCV_1=1)"
                        )));
                    }
                };
                if c.noc > 1 {
                    return Err(SimError::InvalidArgument(format!(
                        "noc must be 0 or 1, got {}",
                        c.noc
                    )));
                }
                KernelKind::DataMovement {
                    risc,
                    noc: c.noc as u8,
                }
            }
            tt_sys::tt_kernel_kind::TT_KERNEL_COMPUTE => {
                let math_fidelity = match c.math_fidelity {
                    tt_sys::tt_math_fidelity::TT_FIDELITY_LOFI => MathFidelity::LoFi,
                    tt_sys::tt_math_fidelity::TT_FIDELITY_HIFI2 => MathFidelity::HiFi2,
                    tt_sys::tt_math_fidelity::TT_FIDELITY_HIFI3 => MathFidelity::HiFi3,
                    tt_sys::tt_math_fidelity::TT_FIDELITY_HIFI4 => MathFidelity::HiFi4,
                    v => {
                        return Err(SimError::InvalidArgument(format!(
                            "unknown math fidelity {v}"
                        )));
                    }
                };
                let n = p.prog.arch.max_circular_buffers as usize;
                let unpack_to_dest_fp32 = if c.unpack_to_dest_fp32.is_null() {
                    Vec::new()
                } else {
                    // SAFETY: the header says the array has max_circular_buffers entries.
                    unsafe { slice(c.unpack_to_dest_fp32, n, "unpack_to_dest_fp32") }?
                        .iter()
                        .map(|&v| v != 0)
                        .collect()
                };
                KernelKind::Compute(ComputeConfig {
                    math_fidelity,
                    fp32_dest_acc_en: c.fp32_dest_acc_en,
                    dst_full_sync_en: c.dst_full_sync_en,
                    math_approx_mode: c.math_approx_mode,
                    bfp8_pack_precise: c.bfp8_pack_precise,
                    unpack_to_dest_fp32,
                })
            }
            v => {
                return Err(SimError::InvalidArgument(format!(
                    "unknown kernel kind {v}"
                )));
            }
        };
        *out = p.prog.add_kernel(&KernelConfig {
            name,
            source,
            kind,
            cores,
            compile_args,
            defines,
        })?;
        Ok(())
    })
}

unsafe extern "C" fn program_set_runtime_args(
    program: *mut tt_program,
    kernel: tt_kernel_id,
    core: tt_core_coord,
    args: *const u32,
    n: u32,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: caller passes n readable words.
        let a = unsafe { slice(args, n as usize, "args") }?;
        p.prog.set_runtime_args(kernel, coord(core), a)
    })
}

unsafe extern "C" fn program_set_common_runtime_args(
    program: *mut tt_program,
    kernel: tt_kernel_id,
    args: *const u32,
    n: u32,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        // SAFETY: caller passes n readable words.
        let a = unsafe { slice(args, n as usize, "args") }?;
        p.prog.set_common_runtime_args(kernel, a)
    })
}

unsafe extern "C" fn program_run(
    device: *mut tt_device,
    program: *mut tt_program,
    stats: *mut tt_run_stats,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let d = unsafe { dev_mut(device) }?;
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        if !std::ptr::eq(p.dev, d) {
            return Err(SimError::InvalidArgument(
                "program was created on another device".into(),
            ));
        }
        let s = d.dev.run(&mut p.prog)?;
        // SAFETY: caller passes NULL or a writable stats struct.
        if let Some(o) = unsafe { stats.as_mut() }
            && (o.struct_size as usize) >= std::mem::size_of::<tt_run_stats>()
        {
            o.is_estimate = 1;
            o.device_cycles = s.device_cycles;
            o.device_ns = s.device_ns;
            o.host_ns = s.host_ns;
        }
        Ok(())
    })
}

fn profile_of(p: &FfiProgram) -> SimResult<&crate::timing::Profile> {
    p.prog.profile().ok_or_else(|| {
        SimError::InvalidArgument(
            "the program has no profile yet: run it first (program_run) and check that the run succeeded".into(),
        )
    })
}

/// Copies `text` + NUL into `buf` (at most `len` bytes, always NUL-terminated when len > 0).
///
/// # Safety
/// `buf` must be NULL or point at `len` writable bytes; `needed` NULL or writable.
unsafe fn write_text(text: &str, buf: *mut c_char, len: u64, needed: *mut u64) -> SimResult<()> {
    let full = text.len() as u64 + 1;
    // SAFETY: caller contract.
    let needed = unsafe { needed.as_mut() }.ok_or_else(|| null("out_needed"))?;
    *needed = full;
    if len == 0 {
        return Ok(());
    }
    if buf.is_null() {
        return Err(null("buf (with len > 0)"));
    }
    let n = (len.min(full) - 1) as usize;
    // SAFETY: `buf` has `len` >= n + 1 writable bytes (caller contract); the source is `text`.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf as *mut u8, n);
        *buf.add(n) = 0;
    }
    Ok(())
}

unsafe extern "C" fn program_profile_json(
    program: *mut tt_program,
    buf: *mut c_char,
    len: u64,
    needed: *mut u64,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        let text = profile_of(p)?.to_chrome_trace();
        // SAFETY: caller passes a buffer of `len` bytes and a writable `needed`.
        unsafe { write_text(&text, buf, len, needed) }
    })
}

unsafe extern "C" fn program_profile_summary(
    program: *mut tt_program,
    buf: *mut c_char,
    len: u64,
    needed: *mut u64,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        let text = profile_of(p)?.summary();
        // SAFETY: caller passes a buffer of `len` bytes and a writable `needed`.
        unsafe { write_text(&text, buf, len, needed) }
    })
}

unsafe extern "C" fn program_profile_threads(
    program: *mut tt_program,
    out: *mut tt_thread_profile,
    capacity: u32,
    count: *mut u32,
) -> tt_status::Type {
    guard(|| {
        // SAFETY: handle contract.
        let p = unsafe { prog_mut(program) }?;
        let prof = profile_of(p)?;
        // SAFETY: caller passes NULL or a writable count.
        let count = unsafe { count.as_mut() }.ok_or_else(|| null("out_count"))?;
        *count = prof.threads.len() as u32;
        if capacity == 0 {
            return Ok(());
        }
        if out.is_null() {
            return Err(null("out (with capacity > 0)"));
        }
        for (i, t) in prof.threads.iter().take(capacity as usize).enumerate() {
            let thread = match t.thread {
                "BRISC" => 0,
                "NCRISC" => 1,
                "TRISC0 (unpack)" => 2,
                "TRISC1 (math)" => 3,
                _ => 4,
            };
            // SAFETY: `out` has `capacity` writable entries (caller contract) and i < capacity.
            unsafe {
                out.add(i).write(tt_thread_profile {
                    core: tt_core_coord {
                        x: t.core.x,
                        y: t.core.y,
                    },
                    thread,
                    reserved: 0,
                    end_cycles: t.end_cycles,
                    busy_cycles: t.busy_cycles,
                    wait_cb_cycles: t.wait_cb_cycles,
                    wait_sync_cycles: t.wait_sync_cycles,
                })
            };
        }
        Ok(())
    })
}

/// The simulator's `tt_shim_api` table (provider name "sim").
pub fn shim_api() -> tt_shim_api {
    tt_shim_api {
        abi_version: tt_sys::TT_SHIM_ABI_VERSION,
        struct_size: std::mem::size_of::<tt_shim_api>() as u32,
        provider_name: c"sim".as_ptr(),
        last_error: Some(last_error),
        device_count: Some(device_count),
        device_open: Some(device_open),
        device_close: Some(device_close),
        device_info: Some(device_info),
        worker_core_from_logical: Some(worker_core_from_logical),
        dram_bank_noc_coord: Some(dram_bank_noc_coord),
        buffer_create: Some(buffer_create),
        buffer_destroy: Some(buffer_destroy),
        buffer_address: Some(buffer_address),
        buffer_write: Some(buffer_write),
        buffer_read: Some(buffer_read),
        program_create: Some(program_create),
        program_destroy: Some(program_destroy),
        program_add_circular_buffer: Some(program_add_circular_buffer),
        program_add_semaphore: Some(program_add_semaphore),
        program_add_kernel: Some(program_add_kernel),
        program_set_runtime_args: Some(program_set_runtime_args),
        program_set_common_runtime_args: Some(program_set_common_runtime_args),
        program_run: Some(program_run),
        program_profile_json: Some(program_profile_json),
        program_profile_summary: Some(program_profile_summary),
        program_profile_threads: Some(program_profile_threads),
    }
}

/// The provider entry point of `tt_shim.h` for the in-process simulator.
///
/// # Safety
/// `out_api` must be NULL or point at a writable `tt_shim_api`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tt_sim_shim_get_api(
    requested_version: u32,
    out_api: *mut tt_shim_api,
) -> tt_status::Type {
    if requested_version != tt_sys::TT_SHIM_ABI_VERSION {
        set_error(&format!(
            "ABI version {requested_version} requested, the simulator implements {}",
            tt_sys::TT_SHIM_ABI_VERSION
        ));
        return tt_status::TT_ERR_ABI_MISMATCH;
    }
    guard(|| {
        // SAFETY: caller contract.
        let out = unsafe { out_api.as_mut() }.ok_or_else(|| null("out_api"))?;
        *out = shim_api();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_text_is_sized_truncated_and_nul_terminated() {
        let text = "ESTIMATED 123";
        let mut needed = 0u64;
        // SAFETY: len 0 with a NULL buffer only asks for the size; `needed` is writable.
        unsafe { write_text(text, std::ptr::null_mut(), 0, &mut needed) }.unwrap();
        assert_eq!(needed, text.len() as u64 + 1);
        let mut small = [0x55 as c_char; 5];
        // SAFETY: `small` has 5 writable bytes.
        unsafe { write_text(text, small.as_mut_ptr(), 5, &mut needed) }.unwrap();
        let got: Vec<u8> = small.iter().map(|&c| c as u8).collect();
        assert_eq!(&got, b"ESTI\0");
        let mut big = [0x55 as c_char; 32];
        // SAFETY: `big` has 32 writable bytes.
        unsafe { write_text(text, big.as_mut_ptr(), 32, &mut needed) }.unwrap();
        // SAFETY: write_text NUL-terminated it.
        let s = unsafe { CStr::from_ptr(big.as_ptr()) };
        assert_eq!(s.to_str().unwrap(), text);
        // A NULL buffer with a length is an error, as is a NULL `needed`.
        // SAFETY: both calls fail before touching memory.
        assert!(unsafe { write_text(text, std::ptr::null_mut(), 4, &mut needed) }.is_err());
        // SAFETY: as above.
        assert!(unsafe { write_text(text, big.as_mut_ptr(), 32, std::ptr::null_mut()) }.is_err());
    }

    #[test]
    fn profile_functions_before_a_run_say_run_it_first() {
        let api = shim_api();
        let mut dev: *mut tt_device = std::ptr::null_mut();
        let opts = tt_device_open_options {
            struct_size: std::mem::size_of::<tt_device_open_options>() as u32,
            device_id: 0,
            arch: SimArch::WormholeB0.as_raw(),
            flags: 0,
        };
        // SAFETY: valid options and out pointer.
        let st = unsafe { api.device_open.unwrap()(&opts, &mut dev) };
        assert_eq!(st, tt_status::TT_OK);
        let mut prog: *mut tt_program = std::ptr::null_mut();
        // SAFETY: live device handle, writable out pointer.
        assert_eq!(
            unsafe { api.program_create.unwrap()(dev, &mut prog) },
            tt_status::TT_OK
        );
        let mut needed = 0u64;
        // SAFETY: live program; size query.
        let st = unsafe {
            api.program_profile_json.unwrap()(prog, std::ptr::null_mut(), 0, &mut needed)
        };
        assert_eq!(st, tt_status::TT_ERR_INVALID_ARGUMENT);
        // SAFETY: the provider's last_error returns a NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(api.last_error.unwrap()()) };
        assert!(msg.to_string_lossy().contains("run it first"), "{msg:?}");
        let mut count = 7u32;
        // SAFETY: live program; count query.
        let st = unsafe {
            api.program_profile_threads.unwrap()(prog, std::ptr::null_mut(), 0, &mut count)
        };
        assert_eq!(st, tt_status::TT_ERR_INVALID_ARGUMENT);
        // SAFETY: handles from above, destroyed once.
        unsafe {
            api.program_destroy.unwrap()(prog);
            api.device_close.unwrap()(dev);
        }
    }
}
