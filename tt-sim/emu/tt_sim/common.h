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

// ---- CB index names (hostdevcommon/kernel_structs.h) ----
namespace tt {
enum CBIndex : std::uint8_t { c_0=0,c_1=1,c_2=2,c_3=3,c_4=4,c_5=5,c_6=6,c_7=7,c_8=8,c_9=9,c_10=10,c_11=11,c_12=12,c_13=13,c_14=14,c_15=15,c_16=16,c_17=17,c_18=18,c_19=19,c_20=20,c_21=21,c_22=22,c_23=23,c_24=24,c_25=25,c_26=26,c_27=27,c_28=28,c_29=29,c_30=30,c_31=31,c_32=32,c_33=33,c_34=34,c_35=35,c_36=36,c_37=37,c_38=38,c_39=39,c_40=40,c_41=41,c_42=42,c_43=43,c_44=44,c_45=45,c_46=46,c_47=47,c_48=48,c_49=49,c_50=50,c_51=51,c_52=52,c_53=53,c_54=54,c_55=55,c_56=56,c_57=57,c_58=58,c_59=59,c_60=60,c_61=61,c_62=62,c_63=63 };
enum CB : std::uint8_t { c_in0=0,c_in1=1,c_in2=2,c_in3=3,c_in4=4,c_in5=5,c_in6=6,c_in7=7,dataflow0=8,dataflow1=9,dataflow2=10,dataflow3=11,dataflow4=12,dataflow5=13,dataflow6=14,dataflow7=15,c_out0=16,c_out1=17,c_out2=18,c_out3=19,c_out4=20,c_out5=21,c_out6=22,c_out7=23,c_intermed0=24,c_intermed1=25,c_intermed2=26,c_intermed3=27,c_intermed4=28,c_intermed5=29,c_intermed6=30,c_intermed7=31 };
}  // namespace tt

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
    return index * tt_sim_tile_size_of(format, tile_hw);
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
// Bytes of one 32x32 tile in the CB's data format (as TT-Metal computes it from the format).
inline int32_t get_tile_size(const int32_t operand) {
    if (operand < 0 || operand >= TT_SIM_MAX_CBS) return 0;
    const uint32_t t = tt_sim_tile_size_of(tt_sim_info.cb_data_format[operand]);
    return (int32_t)(t ? t : tt_sim_info.cb_page_size[operand]);
}
inline DataFormat get_dataformat(const int32_t operand) {
    if (operand < 0 || operand >= TT_SIM_MAX_CBS) return DataFormat::Invalid;
    return (DataFormat)tt_sim_info.cb_data_format[operand];
}
inline uint32_t get_tile_hw(const int32_t) { return 1024; }
inline uint32_t get_tile_num_faces(const int32_t) { return 4; }

// ---- misc firmware helpers kernels call ----
// Kernels spinning on L1 call this in their loop; it lets the other RISCs run.
inline void invalidate_l1_cache(TT_SIM_LINE) { tt_sim_api->poll(tt_sim_ctx, "invalidate_l1_cache", tt_sim_line); }
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
