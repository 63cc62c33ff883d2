// tt-sim emulation layer: state and helpers shared by data movement and compute kernels.
// Every kernel image (one per core and kernel) has its own copy of these globals.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "tt_sim/host_api.h"

#ifndef FORCE_INLINE
#define FORCE_INLINE inline __attribute__((always_inline))
#endif
#ifndef ALWI
#define ALWI inline __attribute__((always_inline))
#endif
#ifndef tt_l1_ptr
#define tt_l1_ptr
#endif
#ifndef tt_reg_ptr
#define tt_reg_ptr
#endif
#define TT_SIM_LINE uint32_t tt_sim_line = __builtin_LINE()

#ifndef KERNEL_COMPILE_TIME_ARGS
#define KERNEL_COMPILE_TIME_ARGS 0
#endif
inline constexpr uint32_t kernel_compile_time_args[] = {KERNEL_COMPILE_TIME_ARGS};
#define get_compile_time_arg_val(arg_idx) (kernel_compile_time_args[(arg_idx)])

#ifndef NOC_INDEX
#define NOC_INDEX 0
#endif

// ---- per-image state (set by tt_sim_kernel_entry) ----
inline const tt_sim_host_api* tt_sim_api = nullptr;
inline void* tt_sim_ctx = nullptr;
inline tt_sim_kernel_info tt_sim_info;
inline uint8_t noc_index = NOC_INDEX;
inline uint8_t my_x[2] = {0, 0};
inline uint8_t my_y[2] = {0, 0};

[[noreturn]] inline void tt_sim_fault(const char* call, const char* msg, uint32_t line) {
    tt_sim_api->fault(tt_sim_ctx, call, msg, line);
    __builtin_trap();  // fault() never returns; the RISC is stopped by the host
}

// ---- data formats (TT-Metal values) ----
enum class DataFormat : uint8_t {
    Float32 = 0,
    Float16 = 1,
    Bfp8 = 2,
    Bfp4 = 3,
    Bfp2 = 11,
    Float16_b = 5,
    Bfp8_b = 6,
    Bfp4_b = 7,
    Bfp2_b = 15,
    Lf8 = 10,
    Int8 = 14,
    UInt8 = 30,
    UInt16 = 9,
    Int32 = 8,
    UInt32 = 24,
    RawUInt8 = 0xf0,
    RawUInt16 = 0xf1,
    RawUInt32 = 0xf2,
    Invalid = 0xff
};

constexpr inline uint32_t tt_sim_tile_size_of(uint32_t fmt, uint32_t tile_hw = 1024) {
    switch (fmt) {
        case 0: case 8: case 24: return tile_hw * 4;
        case 1: case 5: case 9: return tile_hw * 2;
        case 2: case 6: return tile_hw + tile_hw / 16;
        case 3: case 7: return tile_hw / 2 + tile_hw / 16;
        case 11: case 15: return tile_hw / 4 + tile_hw / 16;
        case 30: case 14: return tile_hw;
        default: return 0;
    }
}

template <uint32_t tile_hw = 1024>
FORCE_INLINE uint32_t MUL_WITH_TILE_SIZE(uint32_t format, uint32_t index) {
    return index * tt_sim_tile_size_of(format & 0x1f ? format : format, tile_hw);
}

// ---- runtime arguments ----
FORCE_INLINE uint32_t get_arg_addr(int arg_idx, TT_SIM_LINE) {
    if (arg_idx < 0 || (uint32_t)arg_idx >= tt_sim_info.num_rta) {
        tt_sim_fault("get_arg_addr", "runtime-arg index out of range (see the count set with SetRuntimeArgs)",
                     tt_sim_line);
    }
    return tt_sim_info.rta_addr + 4u * (uint32_t)arg_idx;
}
FORCE_INLINE uint32_t get_common_arg_addr(int arg_idx, TT_SIM_LINE) {
    if (arg_idx < 0 || (uint32_t)arg_idx >= tt_sim_info.num_crta) {
        tt_sim_fault("get_common_arg_addr",
                     "common runtime-arg index out of range (see the count set with SetCommonRuntimeArgs)",
                     tt_sim_line);
    }
    return tt_sim_info.crta_addr + 4u * (uint32_t)arg_idx;
}
template <typename T>
FORCE_INLINE T get_arg_val(int arg_idx, TT_SIM_LINE) {
    static_assert(sizeof(T) == 4, "get_arg_val: runtime args are 4-byte words");
    if (arg_idx < 0 || (uint32_t)arg_idx >= tt_sim_info.num_rta) {
        tt_sim_fault("get_arg_val", "runtime-arg index out of range (see the count set with SetRuntimeArgs)",
                     tt_sim_line);
    }
    return *((volatile T*)(uintptr_t)(tt_sim_info.rta_addr + 4u * (uint32_t)arg_idx));
}
template <typename T>
FORCE_INLINE T get_common_arg_val(int arg_idx, TT_SIM_LINE) {
    static_assert(sizeof(T) == 4, "get_common_arg_val: runtime args are 4-byte words");
    if (arg_idx < 0 || (uint32_t)arg_idx >= tt_sim_info.num_crta) {
        tt_sim_fault("get_common_arg_val",
                     "common runtime-arg index out of range (see the count set with SetCommonRuntimeArgs)",
                     tt_sim_line);
    }
    return *((volatile T*)(uintptr_t)(tt_sim_info.crta_addr + 4u * (uint32_t)arg_idx));
}

// ---- circular buffers (shared by data movement and compute) ----
FORCE_INLINE void cb_reserve_back(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    tt_sim_api->cb_reserve_back(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE void cb_push_back(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    tt_sim_api->cb_push_back(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE void cb_wait_front(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    tt_sim_api->cb_wait_front(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE void cb_pop_front(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    tt_sim_api->cb_pop_front(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE bool cb_pages_available_at_front(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    return tt_sim_api->cb_pages_available(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE bool cb_pages_reservable_at_back(int32_t operand, int32_t num_pages, TT_SIM_LINE) {
    return tt_sim_api->cb_pages_reservable(tt_sim_ctx, operand, num_pages, tt_sim_line);
}
FORCE_INLINE uint32_t get_write_ptr(uint32_t operand, TT_SIM_LINE) {
    return tt_sim_api->cb_write_ptr(tt_sim_ctx, (int32_t)operand, tt_sim_line);
}
FORCE_INLINE uint32_t get_read_ptr(uint32_t operand, TT_SIM_LINE) {
    return tt_sim_api->cb_read_ptr(tt_sim_ctx, (int32_t)operand, tt_sim_line);
}
inline int32_t get_tile_size(const int32_t operand) {
    if (operand < 0 || operand >= TT_SIM_MAX_CBS) return 0;
    return (int32_t)tt_sim_info.cb_page_size[operand];
}
inline DataFormat get_dataformat(const int32_t operand) {
    if (operand < 0 || operand >= TT_SIM_MAX_CBS) return DataFormat::Invalid;
    return (DataFormat)tt_sim_info.cb_data_format[operand];
}
inline uint32_t get_tile_hw(const int32_t) { return 1024; }
inline uint32_t get_tile_num_faces(const int32_t) { return 4; }

// ---- misc firmware helpers kernels call ----
inline void invalidate_l1_cache() {}
inline void riscv_wait(uint32_t) {}
inline uint8_t get_absolute_logical_x() { return (uint8_t)tt_sim_info.logical_x; }
inline uint8_t get_absolute_logical_y() { return (uint8_t)tt_sim_info.logical_y; }
inline uint8_t get_relative_logical_x() { return (uint8_t)tt_sim_info.logical_x; }
inline uint8_t get_relative_logical_y() { return (uint8_t)tt_sim_info.logical_y; }

#define DeviceZoneScopedN(name)
#define DeviceZoneScopedMainN(name)
#define DeviceZoneScopedMainChildN(name)
#define DeviceTimestampedData(name, data)
#define WAYPOINT(x)
#define ASSERT(condition, ...)                                                         \
    do {                                                                               \
        if (!(condition)) tt_sim_fault("ASSERT", "assertion failed: " #condition, __LINE__); \
    } while (0)

#include "tt_sim/dprint_impl.h"
