//! Cross-checks the Rust layout of every tt_shim.h struct against the system C compiler (`cc`), which
//! shares nothing with bindgen/libclang: sizes, alignments and every field offset must agree. Skipped,
//! with a message, when `cc` is absent.

use std::mem::offset_of;
use std::path::Path;
use std::process::Command;

use tt_sys::*;

const C_MAIN: &str = r#"#include <stddef.h>
#include <stdio.h>
#include "tt_shim.h"
int main(void) {
    printf("tt_core_coord %zu %zu\n", sizeof(tt_core_coord), _Alignof(tt_core_coord));
    printf("tt_core_coord.x %zu 0\n", offsetof(tt_core_coord, x));
    printf("tt_core_coord.y %zu 0\n", offsetof(tt_core_coord, y));
    printf("tt_core_range %zu %zu\n", sizeof(tt_core_range), _Alignof(tt_core_range));
    printf("tt_core_range.start %zu 0\n", offsetof(tt_core_range, start));
    printf("tt_core_range.end %zu 0\n", offsetof(tt_core_range, end));
    printf("tt_core_range_set %zu %zu\n", sizeof(tt_core_range_set), _Alignof(tt_core_range_set));
    printf("tt_core_range_set.ranges %zu 0\n", offsetof(tt_core_range_set, ranges));
    printf("tt_core_range_set.num_ranges %zu 0\n", offsetof(tt_core_range_set, num_ranges));
    printf("tt_device_open_options %zu %zu\n", sizeof(tt_device_open_options), _Alignof(tt_device_open_options));
    printf("tt_device_open_options.struct_size %zu 0\n", offsetof(tt_device_open_options, struct_size));
    printf("tt_device_open_options.device_id %zu 0\n", offsetof(tt_device_open_options, device_id));
    printf("tt_device_open_options.arch %zu 0\n", offsetof(tt_device_open_options, arch));
    printf("tt_device_open_options.flags %zu 0\n", offsetof(tt_device_open_options, flags));
    printf("tt_device_info %zu %zu\n", sizeof(tt_device_info), _Alignof(tt_device_info));
    printf("tt_device_info.arch %zu 0\n", offsetof(tt_device_info, arch));
    printf("tt_device_info.grid_x %zu 0\n", offsetof(tt_device_info, grid_x));
    printf("tt_device_info.grid_y %zu 0\n", offsetof(tt_device_info, grid_y));
    printf("tt_device_info.clock_mhz %zu 0\n", offsetof(tt_device_info, clock_mhz));
    printf("tt_device_info.l1_size %zu 0\n", offsetof(tt_device_info, l1_size));
    printf("tt_device_info.l1_unreserved_base %zu 0\n", offsetof(tt_device_info, l1_unreserved_base));
    printf("tt_device_info.l1_alignment %zu 0\n", offsetof(tt_device_info, l1_alignment));
    printf("tt_device_info.dram_alignment %zu 0\n", offsetof(tt_device_info, dram_alignment));
    printf("tt_device_info.num_dram_banks %zu 0\n", offsetof(tt_device_info, num_dram_banks));
    printf("tt_device_info.dram_bank_size %zu 0\n", offsetof(tt_device_info, dram_bank_size));
    printf("tt_device_info.max_circular_buffers %zu 0\n", offsetof(tt_device_info, max_circular_buffers));
    printf("tt_device_info.max_semaphores %zu 0\n", offsetof(tt_device_info, max_semaphores));
    printf("tt_device_info.max_runtime_args %zu 0\n", offsetof(tt_device_info, max_runtime_args));
    printf("tt_device_info.is_simulator %zu 0\n", offsetof(tt_device_info, is_simulator));
    printf("tt_shard_spec %zu %zu\n", sizeof(tt_shard_spec), _Alignof(tt_shard_spec));
    printf("tt_shard_spec.cores %zu 0\n", offsetof(tt_shard_spec, cores));
    printf("tt_shard_spec.shard_shape %zu 0\n", offsetof(tt_shard_spec, shard_shape));
    printf("tt_shard_spec.page_shape %zu 0\n", offsetof(tt_shard_spec, page_shape));
    printf("tt_shard_spec.tensor_shape_in_pages %zu 0\n", offsetof(tt_shard_spec, tensor_shape_in_pages));
    printf("tt_shard_spec.orientation %zu 0\n", offsetof(tt_shard_spec, orientation));
    printf("tt_buffer_config %zu %zu\n", sizeof(tt_buffer_config), _Alignof(tt_buffer_config));
    printf("tt_buffer_config.size %zu 0\n", offsetof(tt_buffer_config, size));
    printf("tt_buffer_config.page_size %zu 0\n", offsetof(tt_buffer_config, page_size));
    printf("tt_buffer_config.buffer_type %zu 0\n", offsetof(tt_buffer_config, buffer_type));
    printf("tt_buffer_config.layout %zu 0\n", offsetof(tt_buffer_config, layout));
    printf("tt_buffer_config.shard %zu 0\n", offsetof(tt_buffer_config, shard));
    printf("tt_cb_format %zu %zu\n", sizeof(tt_cb_format), _Alignof(tt_cb_format));
    printf("tt_cb_format.cb_index %zu 0\n", offsetof(tt_cb_format, cb_index));
    printf("tt_cb_format.data_format %zu 0\n", offsetof(tt_cb_format, data_format));
    printf("tt_cb_format.page_size %zu 0\n", offsetof(tt_cb_format, page_size));
    printf("tt_cb_config %zu %zu\n", sizeof(tt_cb_config), _Alignof(tt_cb_config));
    printf("tt_cb_config.total_size %zu 0\n", offsetof(tt_cb_config, total_size));
    printf("tt_cb_config.formats %zu 0\n", offsetof(tt_cb_config, formats));
    printf("tt_cb_config.num_formats %zu 0\n", offsetof(tt_cb_config, num_formats));
    printf("tt_cb_config.globally_allocated %zu 0\n", offsetof(tt_cb_config, globally_allocated));
    printf("tt_define %zu %zu\n", sizeof(tt_define), _Alignof(tt_define));
    printf("tt_define.name %zu 0\n", offsetof(tt_define, name));
    printf("tt_define.value %zu 0\n", offsetof(tt_define, value));
    printf("tt_kernel_config %zu %zu\n", sizeof(tt_kernel_config), _Alignof(tt_kernel_config));
    printf("tt_kernel_config.name %zu 0\n", offsetof(tt_kernel_config, name));
    printf("tt_kernel_config.source %zu 0\n", offsetof(tt_kernel_config, source));
    printf("tt_kernel_config.kind %zu 0\n", offsetof(tt_kernel_config, kind));
    printf("tt_kernel_config.processor %zu 0\n", offsetof(tt_kernel_config, processor));
    printf("tt_kernel_config.noc %zu 0\n", offsetof(tt_kernel_config, noc));
    printf("tt_kernel_config.cores %zu 0\n", offsetof(tt_kernel_config, cores));
    printf("tt_kernel_config.compile_args %zu 0\n", offsetof(tt_kernel_config, compile_args));
    printf("tt_kernel_config.num_compile_args %zu 0\n", offsetof(tt_kernel_config, num_compile_args));
    printf("tt_kernel_config.defines %zu 0\n", offsetof(tt_kernel_config, defines));
    printf("tt_kernel_config.num_defines %zu 0\n", offsetof(tt_kernel_config, num_defines));
    printf("tt_kernel_config.math_fidelity %zu 0\n", offsetof(tt_kernel_config, math_fidelity));
    printf("tt_kernel_config.fp32_dest_acc_en %zu 0\n", offsetof(tt_kernel_config, fp32_dest_acc_en));
    printf("tt_kernel_config.dst_full_sync_en %zu 0\n", offsetof(tt_kernel_config, dst_full_sync_en));
    printf("tt_kernel_config.math_approx_mode %zu 0\n", offsetof(tt_kernel_config, math_approx_mode));
    printf("tt_kernel_config.bfp8_pack_precise %zu 0\n", offsetof(tt_kernel_config, bfp8_pack_precise));
    printf("tt_kernel_config.unpack_to_dest_fp32 %zu 0\n", offsetof(tt_kernel_config, unpack_to_dest_fp32));
    printf("tt_run_stats %zu %zu\n", sizeof(tt_run_stats), _Alignof(tt_run_stats));
    printf("tt_run_stats.struct_size %zu 0\n", offsetof(tt_run_stats, struct_size));
    printf("tt_run_stats.is_estimate %zu 0\n", offsetof(tt_run_stats, is_estimate));
    printf("tt_run_stats.device_cycles %zu 0\n", offsetof(tt_run_stats, device_cycles));
    printf("tt_run_stats.device_ns %zu 0\n", offsetof(tt_run_stats, device_ns));
    printf("tt_run_stats.host_ns %zu 0\n", offsetof(tt_run_stats, host_ns));
    printf("tt_shim_api %zu %zu\n", sizeof(tt_shim_api), _Alignof(tt_shim_api));
    printf("tt_shim_api.abi_version %zu 0\n", offsetof(tt_shim_api, abi_version));
    printf("tt_shim_api.struct_size %zu 0\n", offsetof(tt_shim_api, struct_size));
    printf("tt_shim_api.provider_name %zu 0\n", offsetof(tt_shim_api, provider_name));
    printf("tt_shim_api.last_error %zu 0\n", offsetof(tt_shim_api, last_error));
    printf("tt_shim_api.device_count %zu 0\n", offsetof(tt_shim_api, device_count));
    printf("tt_shim_api.device_open %zu 0\n", offsetof(tt_shim_api, device_open));
    printf("tt_shim_api.device_close %zu 0\n", offsetof(tt_shim_api, device_close));
    printf("tt_shim_api.device_info %zu 0\n", offsetof(tt_shim_api, device_info));
    printf("tt_shim_api.worker_core_from_logical %zu 0\n", offsetof(tt_shim_api, worker_core_from_logical));
    printf("tt_shim_api.dram_bank_noc_coord %zu 0\n", offsetof(tt_shim_api, dram_bank_noc_coord));
    printf("tt_shim_api.buffer_create %zu 0\n", offsetof(tt_shim_api, buffer_create));
    printf("tt_shim_api.buffer_destroy %zu 0\n", offsetof(tt_shim_api, buffer_destroy));
    printf("tt_shim_api.buffer_address %zu 0\n", offsetof(tt_shim_api, buffer_address));
    printf("tt_shim_api.buffer_write %zu 0\n", offsetof(tt_shim_api, buffer_write));
    printf("tt_shim_api.buffer_read %zu 0\n", offsetof(tt_shim_api, buffer_read));
    printf("tt_shim_api.program_create %zu 0\n", offsetof(tt_shim_api, program_create));
    printf("tt_shim_api.program_destroy %zu 0\n", offsetof(tt_shim_api, program_destroy));
    printf("tt_shim_api.program_add_circular_buffer %zu 0\n", offsetof(tt_shim_api, program_add_circular_buffer));
    printf("tt_shim_api.program_add_semaphore %zu 0\n", offsetof(tt_shim_api, program_add_semaphore));
    printf("tt_shim_api.program_add_kernel %zu 0\n", offsetof(tt_shim_api, program_add_kernel));
    printf("tt_shim_api.program_set_runtime_args %zu 0\n", offsetof(tt_shim_api, program_set_runtime_args));
    printf("tt_shim_api.program_set_common_runtime_args %zu 0\n", offsetof(tt_shim_api, program_set_common_runtime_args));
    printf("tt_shim_api.program_run %zu 0\n", offsetof(tt_shim_api, program_run));
    printf("tt_shim_api.program_profile_json %zu 0\n", offsetof(tt_shim_api, program_profile_json));
    printf("tt_shim_api.program_profile_summary %zu 0\n", offsetof(tt_shim_api, program_profile_summary));
    printf("tt_shim_api.program_profile_threads %zu 0\n", offsetof(tt_shim_api, program_profile_threads));
    printf("tt_thread_profile %zu %zu\n", sizeof(tt_thread_profile), _Alignof(tt_thread_profile));
    printf("tt_thread_profile.core %zu 0\n", offsetof(tt_thread_profile, core));
    printf("tt_thread_profile.thread %zu 0\n", offsetof(tt_thread_profile, thread));
    printf("tt_thread_profile.reserved %zu 0\n", offsetof(tt_thread_profile, reserved));
    printf("tt_thread_profile.end_cycles %zu 0\n", offsetof(tt_thread_profile, end_cycles));
    printf("tt_thread_profile.busy_cycles %zu 0\n", offsetof(tt_thread_profile, busy_cycles));
    printf("tt_thread_profile.wait_cb_cycles %zu 0\n", offsetof(tt_thread_profile, wait_cb_cycles));
    printf("tt_thread_profile.wait_sync_cycles %zu 0\n", offsetof(tt_thread_profile, wait_sync_cycles));
    return 0;
}
"#;

fn rust_layout() -> Vec<(&'static str, usize, usize)> {
    vec![
        (
            "tt_core_coord",
            size_of::<tt_core_coord>(),
            align_of::<tt_core_coord>(),
        ),
        ("tt_core_coord.x", offset_of!(tt_core_coord, x), 0),
        ("tt_core_coord.y", offset_of!(tt_core_coord, y), 0),
        (
            "tt_core_range",
            size_of::<tt_core_range>(),
            align_of::<tt_core_range>(),
        ),
        ("tt_core_range.start", offset_of!(tt_core_range, start), 0),
        ("tt_core_range.end", offset_of!(tt_core_range, end), 0),
        (
            "tt_core_range_set",
            size_of::<tt_core_range_set>(),
            align_of::<tt_core_range_set>(),
        ),
        (
            "tt_core_range_set.ranges",
            offset_of!(tt_core_range_set, ranges),
            0,
        ),
        (
            "tt_core_range_set.num_ranges",
            offset_of!(tt_core_range_set, num_ranges),
            0,
        ),
        (
            "tt_device_open_options",
            size_of::<tt_device_open_options>(),
            align_of::<tt_device_open_options>(),
        ),
        (
            "tt_device_open_options.struct_size",
            offset_of!(tt_device_open_options, struct_size),
            0,
        ),
        (
            "tt_device_open_options.device_id",
            offset_of!(tt_device_open_options, device_id),
            0,
        ),
        (
            "tt_device_open_options.arch",
            offset_of!(tt_device_open_options, arch),
            0,
        ),
        (
            "tt_device_open_options.flags",
            offset_of!(tt_device_open_options, flags),
            0,
        ),
        (
            "tt_device_info",
            size_of::<tt_device_info>(),
            align_of::<tt_device_info>(),
        ),
        ("tt_device_info.arch", offset_of!(tt_device_info, arch), 0),
        (
            "tt_device_info.grid_x",
            offset_of!(tt_device_info, grid_x),
            0,
        ),
        (
            "tt_device_info.grid_y",
            offset_of!(tt_device_info, grid_y),
            0,
        ),
        (
            "tt_device_info.clock_mhz",
            offset_of!(tt_device_info, clock_mhz),
            0,
        ),
        (
            "tt_device_info.l1_size",
            offset_of!(tt_device_info, l1_size),
            0,
        ),
        (
            "tt_device_info.l1_unreserved_base",
            offset_of!(tt_device_info, l1_unreserved_base),
            0,
        ),
        (
            "tt_device_info.l1_alignment",
            offset_of!(tt_device_info, l1_alignment),
            0,
        ),
        (
            "tt_device_info.dram_alignment",
            offset_of!(tt_device_info, dram_alignment),
            0,
        ),
        (
            "tt_device_info.num_dram_banks",
            offset_of!(tt_device_info, num_dram_banks),
            0,
        ),
        (
            "tt_device_info.dram_bank_size",
            offset_of!(tt_device_info, dram_bank_size),
            0,
        ),
        (
            "tt_device_info.max_circular_buffers",
            offset_of!(tt_device_info, max_circular_buffers),
            0,
        ),
        (
            "tt_device_info.max_semaphores",
            offset_of!(tt_device_info, max_semaphores),
            0,
        ),
        (
            "tt_device_info.max_runtime_args",
            offset_of!(tt_device_info, max_runtime_args),
            0,
        ),
        (
            "tt_device_info.is_simulator",
            offset_of!(tt_device_info, is_simulator),
            0,
        ),
        (
            "tt_shard_spec",
            size_of::<tt_shard_spec>(),
            align_of::<tt_shard_spec>(),
        ),
        ("tt_shard_spec.cores", offset_of!(tt_shard_spec, cores), 0),
        (
            "tt_shard_spec.shard_shape",
            offset_of!(tt_shard_spec, shard_shape),
            0,
        ),
        (
            "tt_shard_spec.page_shape",
            offset_of!(tt_shard_spec, page_shape),
            0,
        ),
        (
            "tt_shard_spec.tensor_shape_in_pages",
            offset_of!(tt_shard_spec, tensor_shape_in_pages),
            0,
        ),
        (
            "tt_shard_spec.orientation",
            offset_of!(tt_shard_spec, orientation),
            0,
        ),
        (
            "tt_buffer_config",
            size_of::<tt_buffer_config>(),
            align_of::<tt_buffer_config>(),
        ),
        (
            "tt_buffer_config.size",
            offset_of!(tt_buffer_config, size),
            0,
        ),
        (
            "tt_buffer_config.page_size",
            offset_of!(tt_buffer_config, page_size),
            0,
        ),
        (
            "tt_buffer_config.buffer_type",
            offset_of!(tt_buffer_config, buffer_type),
            0,
        ),
        (
            "tt_buffer_config.layout",
            offset_of!(tt_buffer_config, layout),
            0,
        ),
        (
            "tt_buffer_config.shard",
            offset_of!(tt_buffer_config, shard),
            0,
        ),
        (
            "tt_cb_format",
            size_of::<tt_cb_format>(),
            align_of::<tt_cb_format>(),
        ),
        (
            "tt_cb_format.cb_index",
            offset_of!(tt_cb_format, cb_index),
            0,
        ),
        (
            "tt_cb_format.data_format",
            offset_of!(tt_cb_format, data_format),
            0,
        ),
        (
            "tt_cb_format.page_size",
            offset_of!(tt_cb_format, page_size),
            0,
        ),
        (
            "tt_cb_config",
            size_of::<tt_cb_config>(),
            align_of::<tt_cb_config>(),
        ),
        (
            "tt_cb_config.total_size",
            offset_of!(tt_cb_config, total_size),
            0,
        ),
        ("tt_cb_config.formats", offset_of!(tt_cb_config, formats), 0),
        (
            "tt_cb_config.num_formats",
            offset_of!(tt_cb_config, num_formats),
            0,
        ),
        (
            "tt_cb_config.globally_allocated",
            offset_of!(tt_cb_config, globally_allocated),
            0,
        ),
        ("tt_define", size_of::<tt_define>(), align_of::<tt_define>()),
        ("tt_define.name", offset_of!(tt_define, name), 0),
        ("tt_define.value", offset_of!(tt_define, value), 0),
        (
            "tt_kernel_config",
            size_of::<tt_kernel_config>(),
            align_of::<tt_kernel_config>(),
        ),
        (
            "tt_kernel_config.name",
            offset_of!(tt_kernel_config, name),
            0,
        ),
        (
            "tt_kernel_config.source",
            offset_of!(tt_kernel_config, source),
            0,
        ),
        (
            "tt_kernel_config.kind",
            offset_of!(tt_kernel_config, kind),
            0,
        ),
        (
            "tt_kernel_config.processor",
            offset_of!(tt_kernel_config, processor),
            0,
        ),
        ("tt_kernel_config.noc", offset_of!(tt_kernel_config, noc), 0),
        (
            "tt_kernel_config.cores",
            offset_of!(tt_kernel_config, cores),
            0,
        ),
        (
            "tt_kernel_config.compile_args",
            offset_of!(tt_kernel_config, compile_args),
            0,
        ),
        (
            "tt_kernel_config.num_compile_args",
            offset_of!(tt_kernel_config, num_compile_args),
            0,
        ),
        (
            "tt_kernel_config.defines",
            offset_of!(tt_kernel_config, defines),
            0,
        ),
        (
            "tt_kernel_config.num_defines",
            offset_of!(tt_kernel_config, num_defines),
            0,
        ),
        (
            "tt_kernel_config.math_fidelity",
            offset_of!(tt_kernel_config, math_fidelity),
            0,
        ),
        (
            "tt_kernel_config.fp32_dest_acc_en",
            offset_of!(tt_kernel_config, fp32_dest_acc_en),
            0,
        ),
        (
            "tt_kernel_config.dst_full_sync_en",
            offset_of!(tt_kernel_config, dst_full_sync_en),
            0,
        ),
        (
            "tt_kernel_config.math_approx_mode",
            offset_of!(tt_kernel_config, math_approx_mode),
            0,
        ),
        (
            "tt_kernel_config.bfp8_pack_precise",
            offset_of!(tt_kernel_config, bfp8_pack_precise),
            0,
        ),
        (
            "tt_kernel_config.unpack_to_dest_fp32",
            offset_of!(tt_kernel_config, unpack_to_dest_fp32),
            0,
        ),
        (
            "tt_run_stats",
            size_of::<tt_run_stats>(),
            align_of::<tt_run_stats>(),
        ),
        (
            "tt_run_stats.struct_size",
            offset_of!(tt_run_stats, struct_size),
            0,
        ),
        (
            "tt_run_stats.is_estimate",
            offset_of!(tt_run_stats, is_estimate),
            0,
        ),
        (
            "tt_run_stats.device_cycles",
            offset_of!(tt_run_stats, device_cycles),
            0,
        ),
        (
            "tt_run_stats.device_ns",
            offset_of!(tt_run_stats, device_ns),
            0,
        ),
        ("tt_run_stats.host_ns", offset_of!(tt_run_stats, host_ns), 0),
        (
            "tt_shim_api",
            size_of::<tt_shim_api>(),
            align_of::<tt_shim_api>(),
        ),
        (
            "tt_shim_api.abi_version",
            offset_of!(tt_shim_api, abi_version),
            0,
        ),
        (
            "tt_shim_api.struct_size",
            offset_of!(tt_shim_api, struct_size),
            0,
        ),
        (
            "tt_shim_api.provider_name",
            offset_of!(tt_shim_api, provider_name),
            0,
        ),
        (
            "tt_shim_api.last_error",
            offset_of!(tt_shim_api, last_error),
            0,
        ),
        (
            "tt_shim_api.device_count",
            offset_of!(tt_shim_api, device_count),
            0,
        ),
        (
            "tt_shim_api.device_open",
            offset_of!(tt_shim_api, device_open),
            0,
        ),
        (
            "tt_shim_api.device_close",
            offset_of!(tt_shim_api, device_close),
            0,
        ),
        (
            "tt_shim_api.device_info",
            offset_of!(tt_shim_api, device_info),
            0,
        ),
        (
            "tt_shim_api.worker_core_from_logical",
            offset_of!(tt_shim_api, worker_core_from_logical),
            0,
        ),
        (
            "tt_shim_api.dram_bank_noc_coord",
            offset_of!(tt_shim_api, dram_bank_noc_coord),
            0,
        ),
        (
            "tt_shim_api.buffer_create",
            offset_of!(tt_shim_api, buffer_create),
            0,
        ),
        (
            "tt_shim_api.buffer_destroy",
            offset_of!(tt_shim_api, buffer_destroy),
            0,
        ),
        (
            "tt_shim_api.buffer_address",
            offset_of!(tt_shim_api, buffer_address),
            0,
        ),
        (
            "tt_shim_api.buffer_write",
            offset_of!(tt_shim_api, buffer_write),
            0,
        ),
        (
            "tt_shim_api.buffer_read",
            offset_of!(tt_shim_api, buffer_read),
            0,
        ),
        (
            "tt_shim_api.program_create",
            offset_of!(tt_shim_api, program_create),
            0,
        ),
        (
            "tt_shim_api.program_destroy",
            offset_of!(tt_shim_api, program_destroy),
            0,
        ),
        (
            "tt_shim_api.program_add_circular_buffer",
            offset_of!(tt_shim_api, program_add_circular_buffer),
            0,
        ),
        (
            "tt_shim_api.program_add_semaphore",
            offset_of!(tt_shim_api, program_add_semaphore),
            0,
        ),
        (
            "tt_shim_api.program_add_kernel",
            offset_of!(tt_shim_api, program_add_kernel),
            0,
        ),
        (
            "tt_shim_api.program_set_runtime_args",
            offset_of!(tt_shim_api, program_set_runtime_args),
            0,
        ),
        (
            "tt_shim_api.program_set_common_runtime_args",
            offset_of!(tt_shim_api, program_set_common_runtime_args),
            0,
        ),
        (
            "tt_shim_api.program_run",
            offset_of!(tt_shim_api, program_run),
            0,
        ),
        (
            "tt_shim_api.program_profile_json",
            offset_of!(tt_shim_api, program_profile_json),
            0,
        ),
        (
            "tt_shim_api.program_profile_summary",
            offset_of!(tt_shim_api, program_profile_summary),
            0,
        ),
        (
            "tt_shim_api.program_profile_threads",
            offset_of!(tt_shim_api, program_profile_threads),
            0,
        ),
        (
            "tt_thread_profile",
            size_of::<tt_thread_profile>(),
            align_of::<tt_thread_profile>(),
        ),
        (
            "tt_thread_profile.core",
            offset_of!(tt_thread_profile, core),
            0,
        ),
        (
            "tt_thread_profile.thread",
            offset_of!(tt_thread_profile, thread),
            0,
        ),
        (
            "tt_thread_profile.reserved",
            offset_of!(tt_thread_profile, reserved),
            0,
        ),
        (
            "tt_thread_profile.end_cycles",
            offset_of!(tt_thread_profile, end_cycles),
            0,
        ),
        (
            "tt_thread_profile.busy_cycles",
            offset_of!(tt_thread_profile, busy_cycles),
            0,
        ),
        (
            "tt_thread_profile.wait_cb_cycles",
            offset_of!(tt_thread_profile, wait_cb_cycles),
            0,
        ),
        (
            "tt_thread_profile.wait_sync_cycles",
            offset_of!(tt_thread_profile, wait_sync_cycles),
            0,
        ),
    ]
}

#[test]
fn rust_layout_matches_the_c_compiler() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let src = dir.join("tt_sys_layout.c");
    let exe = dir.join("tt_sys_layout");
    std::fs::write(&src, C_MAIN).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let built = match Command::new("cc")
        .args(["-std=c11", "-Wall", "-Werror", "-I"])
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            eprintln!("SKIPPED: no C compiler `cc` ({e})");
            return;
        }
    };
    assert!(
        built.status.success(),
        "cc failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let c: Vec<(String, usize, usize)> = text
        .lines()
        .map(|l| {
            let mut it = l.split_whitespace();
            let name = it.next().unwrap().to_owned();
            let a = it.next().unwrap().parse().unwrap();
            let b = it.next().unwrap().parse().unwrap();
            (name, a, b)
        })
        .collect();
    let rust = rust_layout();
    assert_eq!(c.len(), rust.len());
    for (c, r) in c.iter().zip(&rust) {
        assert_eq!(
            (c.0.as_str(), c.1, c.2),
            *r,
            "C (left) and Rust (right) disagree"
        );
    }
}
