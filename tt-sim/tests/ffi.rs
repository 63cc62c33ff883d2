//! The simulator driven only through the `tt_shim.h` C table, as tt-safe drives it.

mod common;
use common::{READER, WRITER, random_bytes};

const COPY: &str = include_str!("../../kernels/compute/eltwise_copy.cpp");
use std::ffi::{CStr, CString};
use tt_sys::*;

fn check(api: &tt_shim_api, st: tt_status::Type) {
    if st != tt_status::TT_OK {
        // SAFETY: last_error returns a valid NUL-terminated string.
        let msg = unsafe { CStr::from_ptr(api.last_error.unwrap()()) };
        panic!("status {st}: {}", msg.to_string_lossy());
    }
}

#[test]
fn copy_through_the_c_table_and_errors_set_last_error() {
    let api = tt_sim::shim_api();
    assert_eq!(api.abi_version, TT_SHIM_ABI_VERSION);
    assert_eq!(api.struct_size as usize, size_of::<tt_shim_api>());
    // SAFETY: every call below passes valid pointers to live locals, following tt_shim.h.
    unsafe {
        let opts = tt_device_open_options {
            struct_size: size_of::<tt_device_open_options>() as u32,
            device_id: 0,
            arch: tt_arch::TT_ARCH_WORMHOLE_B0,
            flags: 0,
        };
        let mut dev = std::ptr::null_mut();
        check(&api, api.device_open.unwrap()(&opts, &mut dev));
        let mut info: tt_device_info = std::mem::zeroed();
        check(&api, api.device_info.unwrap()(dev, &mut info));
        assert_eq!((info.grid_x, info.grid_y, info.is_simulator), (8, 8, 1));

        let pages = 9u64;
        let page = 2048u32;
        let cfg = tt_buffer_config {
            size: pages * page as u64,
            page_size: page,
            buffer_type: tt_buffer_type::TT_BUFFER_DRAM,
            layout: tt_buffer_layout::TT_LAYOUT_INTERLEAVED,
            shard: std::ptr::null(),
        };
        let (mut src, mut dst) = (std::ptr::null_mut(), std::ptr::null_mut());
        check(&api, api.buffer_create.unwrap()(dev, &cfg, &mut src));
        check(&api, api.buffer_create.unwrap()(dev, &cfg, &mut dst));
        let input = random_bytes((pages * page as u64) as usize, 9);
        check(
            &api,
            api.buffer_write.unwrap()(src, 0, input.as_ptr().cast(), input.len() as u64),
        );
        let (mut sa, mut da) = (0u64, 0u64);
        check(&api, api.buffer_address.unwrap()(src, &mut sa));
        check(&api, api.buffer_address.unwrap()(dst, &mut da));

        let mut prog = std::ptr::null_mut();
        check(&api, api.program_create.unwrap()(dev, &mut prog));
        let r = [tt_core_range {
            start: tt_core_coord { x: 2, y: 3 },
            end: tt_core_coord { x: 2, y: 3 },
        }];
        let set = tt_core_range_set {
            ranges: r.as_ptr(),
            num_ranges: 1,
        };
        let fmt = [tt_cb_format {
            cb_index: 0,
            data_format: tt_data_format::TT_DF_FLOAT16_B,
            page_size: page,
        }];
        let cbc = tt_cb_config {
            total_size: 2 * page,
            formats: fmt.as_ptr(),
            num_formats: 1,
            globally_allocated: std::ptr::null(),
        };
        let mut cbh = 0;
        check(
            &api,
            api.program_add_circular_buffer.unwrap()(prog, &set, &cbc, &mut cbh),
        );

        let name_r = CString::new("reader").unwrap();
        let name_w = CString::new("writer").unwrap();
        let src_r = CString::new(READER).unwrap();
        let src_w = CString::new(WRITER).unwrap();
        let ra = [2u32, page];
        let wa = [0u32, 2, page];
        let mut kc: tt_kernel_config = std::mem::zeroed();
        kc.name = name_r.as_ptr();
        kc.source = src_r.as_ptr();
        kc.kind = tt_kernel_kind::TT_KERNEL_DATA_MOVEMENT;
        kc.processor = tt_processor::TT_RISCV_1;
        kc.noc = 1;
        kc.cores = set;
        kc.compile_args = ra.as_ptr();
        kc.num_compile_args = 2;
        let (mut kr, mut kw) = (0, 0);
        check(&api, api.program_add_kernel.unwrap()(prog, &kc, &mut kr));
        kc.name = name_w.as_ptr();
        kc.source = src_w.as_ptr();
        kc.processor = tt_processor::TT_RISCV_0;
        kc.noc = 0;
        kc.compile_args = wa.as_ptr();
        kc.num_compile_args = 3;
        check(&api, api.program_add_kernel.unwrap()(prog, &kc, &mut kw));
        let c = tt_core_coord { x: 2, y: 3 };
        let rargs = [sa as u32, pages as u32, 0];
        let wargs = [da as u32, pages as u32, 0];
        check(
            &api,
            api.program_set_runtime_args.unwrap()(prog, kr, c, rargs.as_ptr(), 3),
        );
        check(
            &api,
            api.program_set_runtime_args.unwrap()(prog, kw, c, wargs.as_ptr(), 3),
        );
        let mut stats = tt_run_stats {
            struct_size: size_of::<tt_run_stats>() as u32,
            is_estimate: 0,
            device_cycles: 0,
            device_ns: 0,
            host_ns: 0,
        };
        check(&api, api.program_run.unwrap()(dev, prog, &mut stats));
        let mut out = vec![0u8; input.len()];
        check(
            &api,
            api.buffer_read.unwrap()(dst, 0, out.as_mut_ptr().cast(), out.len() as u64),
        );
        assert_eq!(out, input);

        // A core outside the grid is an invalid argument with a message.
        let bad = tt_core_coord { x: 8, y: 0 };
        let st = api.program_set_runtime_args.unwrap()(prog, kr, bad, rargs.as_ptr(), 3);
        assert_eq!(st, tt_status::TT_ERR_INVALID_ARGUMENT);
        let msg = CStr::from_ptr(api.last_error.unwrap()())
            .to_string_lossy()
            .into_owned();
        assert!(msg.contains("outside"), "{msg}");

        // Closing the device with live buffers is refused.
        assert_eq!(
            api.device_close.unwrap()(dev),
            tt_status::TT_ERR_INVALID_ARGUMENT
        );
        check(&api, api.program_destroy.unwrap()(prog));
        check(&api, api.buffer_destroy.unwrap()(src));
        check(&api, api.buffer_destroy.unwrap()(dst));
        check(&api, api.device_close.unwrap()(dev));
    }
}

#[test]
fn compile_errors_are_kernel_build_with_compiler_output() {
    let api = tt_sim::shim_api();
    // SAFETY: valid pointers to locals, following tt_shim.h.
    unsafe {
        let mut dev = std::ptr::null_mut();
        check(&api, api.device_open.unwrap()(std::ptr::null(), &mut dev));
        let mut prog = std::ptr::null_mut();
        check(&api, api.program_create.unwrap()(dev, &mut prog));
        let r = [tt_core_range {
            start: tt_core_coord { x: 0, y: 0 },
            end: tt_core_coord { x: 0, y: 0 },
        }];
        let name = CString::new("broken").unwrap();
        let src = CString::new(
            "#include \"api/dataflow/dataflow_api.h\"\nvoid kernel_main() { undefined_call(); }\n",
        )
        .unwrap();
        let mut kc: tt_kernel_config = std::mem::zeroed();
        kc.name = name.as_ptr();
        kc.source = src.as_ptr();
        kc.cores = tt_core_range_set {
            ranges: r.as_ptr(),
            num_ranges: 1,
        };
        let mut k = 0;
        let st = api.program_add_kernel.unwrap()(prog, &kc, &mut k);
        assert_eq!(st, tt_status::TT_ERR_KERNEL_BUILD);
        let msg = CStr::from_ptr(api.last_error.unwrap()())
            .to_string_lossy()
            .into_owned();
        assert!(
            msg.contains("undefined_call") && msg.contains("broken"),
            "{msg}"
        );
        check(&api, api.program_destroy.unwrap()(prog));
        check(&api, api.device_close.unwrap()(dev));
    }
}

#[test]
fn fp32_compute_copy_through_the_c_table_is_bit_exact() {
    let api = tt_sim::shim_api();
    // SAFETY: valid pointers to live locals, following tt_shim.h.
    unsafe {
        let opts = tt_device_open_options {
            struct_size: size_of::<tt_device_open_options>() as u32,
            device_id: 0,
            arch: tt_arch::TT_ARCH_BLACKHOLE,
            flags: 0,
        };
        let mut dev = std::ptr::null_mut();
        check(&api, api.device_open.unwrap()(&opts, &mut dev));
        let (pages, page) = (3u32, 4096u32);
        let cfg = tt_buffer_config {
            size: (pages * page) as u64,
            page_size: page,
            buffer_type: tt_buffer_type::TT_BUFFER_DRAM,
            layout: tt_buffer_layout::TT_LAYOUT_INTERLEAVED,
            shard: std::ptr::null(),
        };
        let (mut src, mut dst) = (std::ptr::null_mut(), std::ptr::null_mut());
        check(&api, api.buffer_create.unwrap()(dev, &cfg, &mut src));
        check(&api, api.buffer_create.unwrap()(dev, &cfg, &mut dst));
        // Normal f32 values with random mantissas (a bf16 path would drop the low 16 bits).
        let input: Vec<u8> = random_bytes((pages * page) as usize, 5)
            .chunks(4)
            .flat_map(|b| {
                let m = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x807F_FFFF;
                (m | (120 + (b[1] as u32 % 16)) << 23).to_le_bytes()
            })
            .collect();
        check(
            &api,
            api.buffer_write.unwrap()(src, 0, input.as_ptr().cast(), input.len() as u64),
        );
        let (mut sa, mut da) = (0u64, 0u64);
        check(&api, api.buffer_address.unwrap()(src, &mut sa));
        check(&api, api.buffer_address.unwrap()(dst, &mut da));
        let mut prog = std::ptr::null_mut();
        check(&api, api.program_create.unwrap()(dev, &mut prog));
        let r = [tt_core_range {
            start: tt_core_coord { x: 4, y: 7 },
            end: tt_core_coord { x: 4, y: 7 },
        }];
        let set = tt_core_range_set {
            ranges: r.as_ptr(),
            num_ranges: 1,
        };
        for idx in [0u32, 16] {
            let fmt = [tt_cb_format {
                cb_index: idx,
                data_format: tt_data_format::TT_DF_FLOAT32,
                page_size: page,
            }];
            let cbc = tt_cb_config {
                total_size: 2 * page,
                formats: fmt.as_ptr(),
                num_formats: 1,
                globally_allocated: std::ptr::null(),
            };
            let mut h = 0;
            check(
                &api,
                api.program_add_circular_buffer.unwrap()(prog, &set, &cbc, &mut h),
            );
        }
        let names = [
            CString::new("reader").unwrap(),
            CString::new("writer").unwrap(),
            CString::new("copy").unwrap(),
        ];
        let srcs = [
            CString::new(READER).unwrap(),
            CString::new(WRITER).unwrap(),
            CString::new(COPY).unwrap(),
        ];
        let ra = [2u32, page];
        let wa = [16u32, 2, page];
        let ca = [pages];
        let mut unpack_to_dest = [0u32; 64];
        unpack_to_dest[0] = 1;
        let mut ids = [0u32; 3];
        for i in 0..3 {
            let mut kc: tt_kernel_config = std::mem::zeroed();
            kc.name = names[i].as_ptr();
            kc.source = srcs[i].as_ptr();
            kc.cores = set;
            match i {
                0 => {
                    kc.processor = tt_processor::TT_RISCV_1;
                    kc.noc = 1;
                    kc.compile_args = ra.as_ptr();
                    kc.num_compile_args = 2;
                }
                1 => {
                    kc.processor = tt_processor::TT_RISCV_0;
                    kc.compile_args = wa.as_ptr();
                    kc.num_compile_args = 3;
                }
                _ => {
                    kc.kind = tt_kernel_kind::TT_KERNEL_COMPUTE;
                    kc.math_fidelity = tt_math_fidelity::TT_FIDELITY_HIFI4;
                    kc.fp32_dest_acc_en = true;
                    kc.unpack_to_dest_fp32 = unpack_to_dest.as_ptr();
                    kc.compile_args = ca.as_ptr();
                    kc.num_compile_args = 1;
                }
            }
            check(
                &api,
                api.program_add_kernel.unwrap()(prog, &kc, &mut ids[i]),
            );
        }
        let c = tt_core_coord { x: 4, y: 7 };
        let rargs = [sa as u32, pages, 0];
        let wargs = [da as u32, pages, 0];
        check(
            &api,
            api.program_set_runtime_args.unwrap()(prog, ids[0], c, rargs.as_ptr(), 3),
        );
        check(
            &api,
            api.program_set_runtime_args.unwrap()(prog, ids[1], c, wargs.as_ptr(), 3),
        );
        check(
            &api,
            api.program_run.unwrap()(dev, prog, std::ptr::null_mut()),
        );
        let mut out = vec![0u8; input.len()];
        check(
            &api,
            api.buffer_read.unwrap()(dst, 0, out.as_mut_ptr().cast(), out.len() as u64),
        );
        assert_eq!(
            out, input,
            "UnpackToDestFp32 + fp32 DEST + Float32 pack keep every bit"
        );
        check(&api, api.program_destroy.unwrap()(prog));
        check(&api, api.buffer_destroy.unwrap()(src));
        check(&api, api.buffer_destroy.unwrap()(dst));
        check(&api, api.device_close.unwrap()(dev));
    }
}
