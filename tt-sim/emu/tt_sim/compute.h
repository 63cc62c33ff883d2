// tt-sim emulation layer: the TT-Metal compute kernel API (0.81-era names and older aliases).
// The unpack, math and pack threads of a compute kernel run as one sequential thread; every
// operation is a host call that does the numerics with the simulator's bit-exact FPU model.
#pragma once
#include "tt_sim/common.h"

#ifndef TT_SIM_APPROX
#define TT_SIM_APPROX 0
#endif
#ifndef TT_SIM_FP32_DEST_ACC
#define TT_SIM_FP32_DEST_ACC 0
#endif
#ifndef TT_SIM_MATH_FIDELITY
#define TT_SIM_MATH_FIDELITY 4
#endif

constexpr bool APPROX = TT_SIM_APPROX != 0;
constexpr bool DST_ACCUM_MODE = TT_SIM_FP32_DEST_ACC != 0;
constexpr uint32_t MATH_FIDELITY = TT_SIM_MATH_FIDELITY;

#define TT_SIM_OP_ACQUIRE 1u
#define TT_SIM_OP_COMMIT 2u
#define TT_SIM_OP_WAIT 3u
#define TT_SIM_OP_RELEASE 4u
#define TT_SIM_OP_COPY 10u
#define TT_SIM_OP_BINARY 11u
#define TT_SIM_OP_MATMUL 12u
#define TT_SIM_OP_REDUCE 14u
#define TT_SIM_OP_TRANSPOSE 15u
#define TT_SIM_OP_SFPU 16u
#define TT_SIM_OP_PACK 17u
#define TT_SIM_OP_TILIZE 18u
#define TT_SIM_OP_UNTILIZE 19u
#define TT_SIM_OP_PACK_UNTILIZE 20u
#define TT_SIM_OP_PACK_UNTILIZE_DEST 21u
#define TT_SIM_OP_BINARY_REUSE_DEST 22u
#define TT_SIM_OP_UNARY_BCAST 24u
#define TT_SIM_OP_SFPU_BINARY 25u

// SFPU operation codes (tt-sim/src/compute.rs)
#define TT_SIM_SFPU_EXP 1u
#define TT_SIM_SFPU_RECIP 2u
#define TT_SIM_SFPU_SQRT 3u
#define TT_SIM_SFPU_RSQRT 4u
#define TT_SIM_SFPU_GELU 5u
#define TT_SIM_SFPU_SIGMOID 6u
#define TT_SIM_SFPU_TANH 7u
#define TT_SIM_SFPU_RELU 8u
#define TT_SIM_SFPU_LEAKY_RELU 9u
#define TT_SIM_SFPU_LOG 10u
#define TT_SIM_SFPU_ABS 11u
#define TT_SIM_SFPU_NEG 12u
#define TT_SIM_SFPU_SQUARE 13u
#define TT_SIM_SFPU_SOFTPLUS 14u
#define TT_SIM_SFPU_ERF 15u
#define TT_SIM_SFPU_SILU 16u
#define TT_SIM_SFPU_ELU 17u
#define TT_SIM_SFPU_MUL_SCALAR 18u
#define TT_SIM_SFPU_ADD_SCALAR 19u
#define TT_SIM_SFPU_SUB_SCALAR 20u
#define TT_SIM_SFPU_TYPECAST 21u

template <typename... A>
ALWI uint32_t tt_sim_op(uint32_t op, uint32_t line, A... a) {
    uint32_t v[] = {0u, static_cast<uint32_t>(a)...};
    return tt_sim_api->compute(tt_sim_ctx, op, v + 1, sizeof...(A), line);
}

inline void tt_sim_compute_start() {}

namespace ckernel {

enum PoolType { SUM = 0, AVG = 1, MAX = 2 };
enum ReduceDim { REDUCE_ROW = 0, REDUCE_COL = 1, REDUCE_SCALAR = 2 };
enum class BroadcastType : uint8_t { NONE = 0x0, COL = 0x1, ROW = 0x2, SCALAR = 0x3 };
enum class EltwiseBinaryType : uint8_t { ELWMUL = 0, ELWDIV = 1, ELWADD = 2, ELWSUB = 3, ELWLESS = 4 };
enum class EltwiseBinaryReuseDestType : uint8_t { NONE = 0, DEST_TO_SRCA = 1, DEST_TO_SRCB = 2 };
enum class SrcOrder : uint8_t { Regular = 0, Reverse = 1 };
enum class VectorMode : uint8_t { None = 0, R = 1, C = 2, RC = 4, RC_custom = 6 };
enum class MathFidelity : uint8_t { LoFi = 0, HiFi2 = 2, HiFi3 = 3, HiFi4 = 4 };
using ::DataFormat;

constexpr uint32_t tt_sim_elt(EltwiseBinaryType t) {
    return t == EltwiseBinaryType::ELWADD ? 0u : t == EltwiseBinaryType::ELWSUB ? 1u : 2u;
}
// host codes: 0 none, 1 rows (B's row 0), 2 cols (B's column 0), 3 scalar
constexpr uint32_t tt_sim_bcast(BroadcastType b) {
    return b == BroadcastType::ROW ? 1u : b == BroadcastType::COL ? 2u : b == BroadcastType::SCALAR ? 3u : 0u;
}

// ---- start-up and reconfiguration (state lives in the host; these only check their arguments) ----
template <SrcOrder src_order = SrcOrder::Regular>
ALWI void compute_kernel_hw_startup(uint32_t, uint32_t, uint32_t) {}
ALWI void compute_kernel_hw_startup(uint32_t, uint32_t) {}
ALWI void binary_op_init_common(uint32_t, uint32_t, uint32_t = 16) {}
ALWI void unary_op_init_common(uint32_t, uint32_t = 16) {}
ALWI void init_sfpu(uint32_t, uint32_t) {}
ALWI void reconfig_data_format(uint32_t, uint32_t) {}
ALWI void reconfig_data_format(uint32_t, uint32_t, uint32_t, uint32_t) {}
ALWI void reconfig_data_format_srca(uint32_t) {}
ALWI void reconfig_data_format_srca(uint32_t, uint32_t) {}
ALWI void reconfig_data_format_srcb(uint32_t) {}
ALWI void reconfig_data_format_srcb(uint32_t, uint32_t) {}
ALWI void unpack_reconfig_data_format(uint32_t, uint32_t) {}
ALWI void unpack_reconfig_data_format_srca(uint32_t) {}
ALWI void unpack_reconfig_data_format_srcb(uint32_t) {}
ALWI void pack_reconfig_data_format(uint32_t) {}
ALWI void pack_reconfig_data_format(uint32_t, uint32_t) {}
ALWI void pack_init(uint32_t, uint32_t = __builtin_LINE()) {}

// ---- DEST register protocol ----
ALWI void tile_regs_acquire(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_ACQUIRE, tt_sim_line); }
ALWI void tile_regs_commit(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_COMMIT, tt_sim_line); }
ALWI void tile_regs_wait(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_WAIT, tt_sim_line); }
ALWI void tile_regs_release(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_RELEASE, tt_sim_line); }
ALWI void acquire_dst(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_ACQUIRE, tt_sim_line); }
ALWI void release_dst(TT_SIM_LINE) { tt_sim_op(TT_SIM_OP_RELEASE, tt_sim_line); }

// ---- copy ----
ALWI void copy_init(uint32_t, uint32_t = 0, uint32_t = 0, uint32_t = __builtin_LINE()) {}
ALWI void copy_tile_init(uint32_t = 0, uint32_t = __builtin_LINE()) {}
ALWI void copy_tile_to_dst_init_short(uint32_t = 0, uint32_t = 0, uint32_t = 0) {}
ALWI void copy_tile_to_dst_init_short_with_dt(uint32_t, uint32_t, uint32_t = 0) {}
ALWI void copy_tile(uint32_t in_cb_id, uint32_t in_tile_index, uint32_t dst_tile_index, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_COPY, tt_sim_line, in_cb_id, in_tile_index, dst_tile_index);
}
ALWI void copy_block(uint32_t in_cb_id, uint32_t start_in, uint32_t start_dst, uint32_t ntiles, TT_SIM_LINE) {
    for (uint32_t i = 0; i < ntiles; i++) tt_sim_op(TT_SIM_OP_COPY, tt_sim_line, in_cb_id, start_in + i, start_dst + i);
}

// ---- pack ----
template <bool out_of_order_output = false, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void pack_tile(uint32_t ifrom_dst, uint32_t icb, uint32_t output_tile_index = 0, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_PACK, tt_sim_line, ifrom_dst, icb, output_tile_index, out_of_order_output ? 1u : 0u);
}
ALWI void pack_block(uint32_t ifrom_dst, uint32_t icb, uint32_t ntiles, TT_SIM_LINE) {
    for (uint32_t i = 0; i < ntiles; i++) tt_sim_op(TT_SIM_OP_PACK, tt_sim_line, ifrom_dst + i, icb, 0u, 0u);
}
ALWI void matmul_pack_tile(uint32_t ifrom_dst, uint32_t icb, uint32_t ntiles, TT_SIM_LINE) {
    for (uint32_t i = 0; i < ntiles; i++) tt_sim_op(TT_SIM_OP_PACK, tt_sim_line, ifrom_dst + i, icb, 0u, 0u);
}

// ---- eltwise binary ----
ALWI void add_init(uint32_t, uint32_t, bool = false, uint32_t = __builtin_LINE()) {}
ALWI void sub_init(uint32_t, uint32_t, bool = false, uint32_t = __builtin_LINE()) {}
ALWI void mul_init(uint32_t, uint32_t, bool = true, uint32_t = __builtin_LINE()) {}
ALWI void add_tiles_init(uint32_t = 0, uint32_t = 1, bool = false) {}
ALWI void sub_tiles_init(uint32_t = 0, uint32_t = 1, bool = false) {}
ALWI void mul_tiles_init(uint32_t = 0, uint32_t = 1) {}
ALWI void add_tiles_init_nof() {}
ALWI void sub_tiles_init_nof() {}
ALWI void mul_tiles_init_f() {}
template <bool full_init, EltwiseBinaryType t>
ALWI void binary_tiles_init(uint32_t, uint32_t, bool = false, uint32_t = __builtin_LINE()) {}
template <EltwiseBinaryType t, BroadcastType b>
ALWI void binary_init(uint32_t, uint32_t, uint32_t = 16) {}

template <bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void add_tiles(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 0u, icb0, icb1, itile0, itile1, idst, 0u, 0u);
}
template <bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void sub_tiles(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 1u, icb0, icb1, itile0, itile1, idst, 0u, 0u);
}
template <bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void mul_tiles(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 2u, icb0, icb1, itile0, itile1, idst, 0u, 0u);
}
ALWI void add_block(uint32_t icb0, uint32_t icb1, uint32_t t0, uint32_t t1, uint32_t d, uint32_t n, TT_SIM_LINE) {
    for (uint32_t i = 0; i < n; i++) tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 0u, icb0, icb1, t0 + i, t1 + i, d + i, 0u, 0u);
}
ALWI void sub_block(uint32_t icb0, uint32_t icb1, uint32_t t0, uint32_t t1, uint32_t d, uint32_t n, TT_SIM_LINE) {
    for (uint32_t i = 0; i < n; i++) tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 1u, icb0, icb1, t0 + i, t1 + i, d + i, 0u, 0u);
}
ALWI void mul_block(uint32_t icb0, uint32_t icb1, uint32_t t0, uint32_t t1, uint32_t d, uint32_t n, TT_SIM_LINE) {
    for (uint32_t i = 0; i < n; i++) tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 2u, icb0, icb1, t0 + i, t1 + i, d + i, 0u, 0u);
}

// DEST-reuse variants: the DEST tile is moved into SrcA (or SrcB) and combined with a CB tile.
template <EltwiseBinaryType t, EltwiseBinaryReuseDestType r>
ALWI void binary_dest_reuse_tiles_init(uint32_t) {}
template <EltwiseBinaryType t, EltwiseBinaryReuseDestType r>
ALWI void binary_dest_reuse_tiles(uint32_t in_cb_id, uint32_t in_tile_index, uint32_t dst_tile_index, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY_REUSE_DEST, tt_sim_line, tt_sim_elt(t), in_cb_id, in_tile_index, dst_tile_index,
              (uint32_t)r);
}

// ---- broadcast ----
ALWI void init_bcast(uint32_t, uint32_t, uint32_t = 16) {}
template <EltwiseBinaryType t, BroadcastType b>
ALWI void init_bcast(uint32_t, uint32_t, uint32_t = 16) {}
ALWI void add_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void add_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void add_bcast_scalar_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_bcast_scalar_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void mul_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void mul_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void mul_tiles_bcast_scalar_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void mul_tiles_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void mul_tiles_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void add_tiles_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void add_tiles_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void add_tiles_bcast_scalar_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_tiles_bcast_rows_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_tiles_bcast_cols_init_short(uint32_t = 0, uint32_t = 1) {}
ALWI void sub_tiles_bcast_scalar_init_short(uint32_t = 0, uint32_t = 1) {}
template <EltwiseBinaryType t, BroadcastType b>
ALWI void any_tiles_bcast(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, tt_sim_elt(t), icb0, icb1, itile0, itile1, idst, tt_sim_bcast(b), 0u);
}
template <BroadcastType b>
ALWI void add_tiles_bcast(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 0u, icb0, icb1, itile0, itile1, idst, tt_sim_bcast(b), 0u);
}
template <BroadcastType b>
ALWI void sub_tiles_bcast(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 1u, icb0, icb1, itile0, itile1, idst, tt_sim_bcast(b), 0u);
}
template <BroadcastType b>
ALWI void mul_tiles_bcast(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, 2u, icb0, icb1, itile0, itile1, idst, tt_sim_bcast(b), 0u);
}
#define TT_SIM_BCAST_FN(name, elt, bc)                                                                    \
    template <bool is_fp32_dest_acc_en = DST_ACCUM_MODE>                                                  \
    ALWI void name(uint32_t icb0, uint32_t icb1, uint32_t itile0, uint32_t itile1, uint32_t idst,          \
                   uint32_t bcast_row_idx = 0, TT_SIM_LINE) {                                              \
        if (bcast_row_idx != 0) tt_sim_fault(#name, "bcast_row_idx != 0 is not supported by tt-sim", tt_sim_line); \
        tt_sim_op(TT_SIM_OP_BINARY, tt_sim_line, elt, icb0, icb1, itile0, itile1, idst, bc, 0u);           \
    }
TT_SIM_BCAST_FN(add_tiles_bcast_rows, 0u, 1u)
TT_SIM_BCAST_FN(sub_tiles_bcast_rows, 1u, 1u)
TT_SIM_BCAST_FN(mul_tiles_bcast_rows, 2u, 1u)
TT_SIM_BCAST_FN(add_tiles_bcast_cols, 0u, 2u)
TT_SIM_BCAST_FN(sub_tiles_bcast_cols, 1u, 2u)
TT_SIM_BCAST_FN(mul_tiles_bcast_cols, 2u, 2u)
TT_SIM_BCAST_FN(add_tiles_bcast_scalar, 0u, 3u)
TT_SIM_BCAST_FN(sub_tiles_bcast_scalar, 1u, 3u)
TT_SIM_BCAST_FN(mul_tiles_bcast_scalar, 2u, 3u)
#undef TT_SIM_BCAST_FN
// TT-Metal: unary_bcast_init<bcast_type>(icb, ocb); the one-argument form is kept for older kernels.
template <BroadcastType b, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void unary_bcast_init(uint32_t, uint32_t = 16) {}
template <BroadcastType b, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void unary_bcast(uint32_t icb, uint32_t in_tile_index, uint32_t dst_tile_index, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_UNARY_BCAST, tt_sim_line, tt_sim_bcast(b), icb, in_tile_index, dst_tile_index);
}

// ---- matmul ----
ALWI void matmul_init(uint32_t, uint32_t, const uint32_t = 0, uint32_t = __builtin_LINE()) {}
ALWI void mm_init(uint32_t = 0, uint32_t = 1, uint32_t = 16, const uint32_t = 0) {}
ALWI void mm_init_short(uint32_t = 0, uint32_t = 1, const uint32_t = 0) {}
ALWI void mm_init_short_with_dt(uint32_t, uint32_t, uint32_t, const uint32_t = 0) {}
ALWI void mm_uninit(uint32_t, uint32_t) {}
ALWI void matmul_block_init(uint32_t, uint32_t, const uint32_t = 0, uint32_t = 1, uint32_t = 1, uint32_t = 1,
                            uint32_t = __builtin_LINE()) {}
ALWI void mm_block_init(uint32_t = 0, uint32_t = 1, uint32_t = 16, const uint32_t = 0, uint32_t = 1, uint32_t = 1,
                        uint32_t = 1) {}
ALWI void mm_block_init_short(uint32_t = 0, uint32_t = 1, const uint32_t = 0, uint32_t = 1, uint32_t = 1,
                              uint32_t = 1) {}
ALWI void mm_block_init_short_with_dt(uint32_t, uint32_t, uint32_t, const uint32_t = 0, uint32_t = 1, uint32_t = 1,
                                      uint32_t = 1) {}
ALWI void matmul_tiles(uint32_t in0_cb_id, uint32_t in1_cb_id, uint32_t in0_tile_index, uint32_t in1_tile_index,
                       uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_MATMUL, tt_sim_line, in0_cb_id, in1_cb_id, in0_tile_index, in1_tile_index, idst, 0u, 1u, 1u,
              1u);
}
// Older 6-argument form with an explicit transpose flag.
ALWI void matmul_tiles(uint32_t in0_cb_id, uint32_t in1_cb_id, uint32_t in0_tile_index, uint32_t in1_tile_index,
                       uint32_t idst, const uint32_t transpose, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_MATMUL, tt_sim_line, in0_cb_id, in1_cb_id, in0_tile_index, in1_tile_index, idst, transpose,
              1u, 1u, 1u);
}
ALWI void matmul_block(uint32_t in0_cb_id, uint32_t in1_cb_id, uint32_t in0_tile_index, uint32_t in1_tile_index,
                       uint32_t idst, const uint32_t transpose, uint32_t ct_dim, uint32_t rt_dim, uint32_t kt_dim,
                       TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_MATMUL, tt_sim_line, in0_cb_id, in1_cb_id, in0_tile_index, in1_tile_index, idst, transpose,
              ct_dim, rt_dim, kt_dim);
}

// ---- reduce ----
template <PoolType reduce_type, ReduceDim reduce_dim, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void reduce_init(uint32_t, uint32_t, uint32_t, uint32_t = __builtin_LINE()) {}
template <bool at_start = false, PoolType reduce_type = SUM, ReduceDim reduce_dim = REDUCE_ROW>
ALWI void reduce_init_delta(uint32_t = 16, uint32_t = 0, uint32_t = 2) {}
ALWI void reduce_revert_delta(uint32_t = 16) {}
ALWI void reduce_uninit(uint32_t = 0) {}
template <PoolType reduce_type, ReduceDim reduce_dim, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void reduce_tile(uint32_t icb, uint32_t icb_scaler, uint32_t itile, uint32_t itile_scaler, uint32_t idst,
                      TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_REDUCE, tt_sim_line, (uint32_t)reduce_type, (uint32_t)reduce_dim, icb, icb_scaler, itile,
              itile_scaler, idst);
}
#if defined(REDUCE_OP) && defined(REDUCE_DIM)
// Legacy non-template form configured by -DREDUCE_OP / -DREDUCE_DIM.
ALWI void reduce_tile(uint32_t icb, uint32_t icb_scaler, uint32_t itile, uint32_t itile_scaler, uint32_t idst,
                      TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_REDUCE, tt_sim_line, (uint32_t)REDUCE_OP, (uint32_t)REDUCE_DIM, icb, icb_scaler, itile,
              itile_scaler, idst);
}
#endif

// ---- transpose ----
ALWI void transpose_init(uint32_t, uint32_t = __builtin_LINE()) {}
ALWI void transpose_wh_init(uint32_t, uint32_t = 16) {}
ALWI void transpose_wh_init_short(uint32_t) {}
ALWI void transpose_tile(uint32_t icb, uint32_t itile, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_TRANSPOSE, tt_sim_line, icb, itile, idst);
}
ALWI void transpose_wh_tile(uint32_t icb, uint32_t itile, uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_TRANSPOSE, tt_sim_line, icb, itile, idst);
}

// ---- tilize / untilize ----
ALWI void tilize_init(uint32_t, uint32_t, uint32_t, uint32_t = __builtin_LINE()) {}
ALWI void tilize_init_short(uint32_t, uint32_t, uint32_t = 16) {}
ALWI void tilize_init_short_with_dt(uint32_t, uint32_t, uint32_t, uint32_t) {}
ALWI void tilize_uninit(uint32_t, uint32_t = 16) {}
ALWI void tilize_uninit_with_dt(uint32_t, uint32_t, uint32_t) {}
ALWI void fast_tilize_init(uint32_t, uint32_t, uint32_t, uint32_t = __builtin_LINE()) {}
ALWI void fast_tilize_uninit(uint32_t, uint32_t) {}
ALWI void tilize_block(uint32_t icb, uint32_t block, uint32_t ocb, uint32_t input_tile_index = 0,
                       uint32_t output_tile_index = 0, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_TILIZE, tt_sim_line, icb, block, ocb, input_tile_index, output_tile_index);
}
ALWI void fast_tilize_block(uint32_t icb, uint32_t block, uint32_t ocb, uint32_t input_tile_index = 0,
                            uint32_t output_tile_index = 0, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_TILIZE, tt_sim_line, icb, block, ocb, input_tile_index, output_tile_index);
}
ALWI void untilize_init(uint32_t, uint32_t = __builtin_LINE()) {}
ALWI void untilize_init_short(uint32_t) {}
ALWI void untilize_uninit(uint32_t) {}
template <uint32_t block_ct_dim = 1, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void untilize_block(uint32_t icb, uint32_t full_ct_dim, uint32_t ocb, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_PACK_UNTILIZE, tt_sim_line, icb, 1u, ocb, 0u, full_ct_dim, full_ct_dim);
}
template <uint32_t block_ct_dim = 8, uint32_t full_ct_dim = block_ct_dim, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void pack_untilize_init(uint32_t, uint32_t, uint32_t = __builtin_LINE()) {}
template <uint32_t block_ct_dim = 8, uint32_t full_ct_dim = block_ct_dim, bool narrow_row = false,
          uint32_t row_num_datums = 16, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void pack_untilize_dest_init(uint32_t, uint32_t = __builtin_LINE()) {}
ALWI void pack_untilize_uninit(uint32_t = 0) {}
template <uint32_t block_ct_dim = 8, uint32_t full_ct_dim = block_ct_dim, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void pack_untilize_block(uint32_t icb, uint32_t block_rt_dim, uint32_t ocb, uint32_t block_c_index = 0,
                              TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_PACK_UNTILIZE, tt_sim_line, icb, block_rt_dim, ocb, block_c_index, block_ct_dim, full_ct_dim);
}
template <uint32_t block_ct_dim = 8, uint32_t full_ct_dim = block_ct_dim, bool diagonal = false,
          bool narrow_row = false, uint32_t row_num_datums = 16>
ALWI void pack_untilize_dest(uint32_t ocb, uint32_t block_rt_dim = 1, uint32_t block_c_index = 0,
                             uint32_t = 16, uint32_t = 4, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_PACK_UNTILIZE_DEST, tt_sim_line, ocb, block_rt_dim, block_c_index, block_ct_dim, full_ct_dim);
}

// ---- SFPU ----
// The template flags of TT-Metal's compute API (compute_kernel_api/eltwise_unary/{exp,recip,rsqrt,
// gelu}.h, compute_kernel_api.h for sigmoid/tanh; same names and defaults) travel to the host as a
// flags word (tt-sim/src/fpu/sfpu.rs `SfpuFlags`): the `ideal` model ignores approximation flags,
// the `llk` model runs the combination it models and refuses any other by name.
#define TT_SIM_SFPU_F_PRESENT 0x80000000u
#define TT_SIM_SFPU_F_APPROX 0x1u
#define TT_SIM_SFPU_F_FAST_APPROX 0x2u
#define TT_SIM_SFPU_F_LEGACY_COMPAT 0x4u
#define TT_SIM_SFPU_F_SCALE_EN 0x8u
#define TT_SIM_SFPU_F_SKIP_POSITIVE_CHECK 0x10u
constexpr uint32_t tt_sim_sfpu_flags(bool approx, bool fast, bool legacy, bool scale_en = false,
                                     bool skip_positive = false) {
    return TT_SIM_SFPU_F_PRESENT | (approx ? TT_SIM_SFPU_F_APPROX : 0u) | (fast ? TT_SIM_SFPU_F_FAST_APPROX : 0u) |
           (legacy ? TT_SIM_SFPU_F_LEGACY_COMPAT : 0u) | (scale_en ? TT_SIM_SFPU_F_SCALE_EN : 0u) |
           (skip_positive ? TT_SIM_SFPU_F_SKIP_POSITIVE_CHECK : 0u);
}
ALWI void tt_sim_sfpu_rc(const char* call, int vector_mode, uint32_t line) {
    if (vector_mode != (int)VectorMode::RC)
        tt_sim_fault(call, "vector_mode other than VectorMode::RC is not supported by tt-sim", line);
}

#define TT_SIM_SFPU_0(name, code)                                                  \
    template <bool approx = APPROX, typename... Ignored>                          \
    ALWI void name##_tile_init(Ignored...) {}                                     \
    template <bool approx = APPROX, typename... Ignored>                          \
    ALWI void name##_tile(uint32_t idst, Ignored...) {                            \
        tt_sim_op(TT_SIM_OP_SFPU, 0u, code, idst, 0u, 0u, 0u);                    \
    }
TT_SIM_SFPU_0(sqrt, TT_SIM_SFPU_SQRT)
TT_SIM_SFPU_0(relu, TT_SIM_SFPU_RELU)
TT_SIM_SFPU_0(log, TT_SIM_SFPU_LOG)
TT_SIM_SFPU_0(abs, TT_SIM_SFPU_ABS)
TT_SIM_SFPU_0(negative, TT_SIM_SFPU_NEG)
TT_SIM_SFPU_0(square, TT_SIM_SFPU_SQUARE)
TT_SIM_SFPU_0(erf, TT_SIM_SFPU_ERF)
TT_SIM_SFPU_0(silu, TT_SIM_SFPU_SILU)
#undef TT_SIM_SFPU_0

// exp.h: approx selects the approximate LLK path (then fast_and_approx and skip_positive_check
// matter); scale_en multiplies by the bf16 `scale` first; iterations < 8 covers part of the tile.
template <bool approx = false, bool fast_and_approx = true, uint32_t scale = 0x3F800000>
ALWI void exp_tile_init() {}
template <bool approx = false, bool fast_and_approx = true, bool scale_en = false, bool skip_positive_check = false,
          int iterations = 8>
ALWI void exp_tile(uint32_t idst, int vector_mode = (int)VectorMode::RC, uint16_t scale = 0x3F80, TT_SIM_LINE) {
    static_assert(iterations == 8, "tt-sim models exp_tile on the whole tile only (iterations = 8)");
    tt_sim_sfpu_rc("exp_tile", vector_mode, tt_sim_line);
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_EXP, idst, (uint32_t)scale, 0u, 0u,
              tt_sim_sfpu_flags(approx, fast_and_approx, false, scale_en, skip_positive_check));
}
// recip.h
template <bool legacy_compat = true>
ALWI void recip_tile_init() {}
template <bool legacy_compat = true>
ALWI void recip_tile(uint32_t idst, int vector_mode = (int)VectorMode::RC, TT_SIM_LINE) {
    tt_sim_sfpu_rc("recip_tile", vector_mode, tt_sim_line);
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_RECIP, idst, 0u, 0u, 0u,
              tt_sim_sfpu_flags(APPROX, false, legacy_compat));
}
// rsqrt.h
template <bool legacy_compat = false>
ALWI void rsqrt_tile_init() {}
template <bool legacy_compat = false, bool FAST_APPROX = false>
ALWI void rsqrt_tile(uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_RSQRT, idst, 0u, 0u, 0u,
              tt_sim_sfpu_flags(APPROX, FAST_APPROX, legacy_compat));
}
// gelu.h
template <bool fast_and_approx = true>
ALWI void gelu_tile_init() {}
template <bool fast_and_approx = true>
ALWI void gelu_tile(uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_GELU, idst, 0u, 0u, 0u,
              tt_sim_sfpu_flags(false, fast_and_approx, false));
}
// compute_kernel_api.h (TT-Metal's `vec_mode` template parameter is an int there too)
template <bool fast_and_approx = false>
ALWI void sigmoid_tile_init() {}
template <int vec_mode = (int)VectorMode::RC, bool fast_and_approx = false>
ALWI void sigmoid_tile(uint32_t idst, TT_SIM_LINE) {
    tt_sim_sfpu_rc("sigmoid_tile", vec_mode, tt_sim_line);
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_SIGMOID, idst, 0u, 0u, 0u,
              tt_sim_sfpu_flags(false, fast_and_approx, false));
}
template <bool fast_and_approx = false>
ALWI void tanh_tile_init() {}
template <bool fast_and_approx = false>
ALWI void tanh_tile(uint32_t idst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_TANH, idst, 0u, 0u, 0u,
              tt_sim_sfpu_flags(false, fast_and_approx, false));
}
ALWI void leaky_relu_tile_init() {}
ALWI void leaky_relu_tile(uint32_t idst, uint32_t slope = 0) {
    tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_LEAKY_RELU, idst, slope, 0u, 0u);
}
ALWI void elu_tile_init() {}
ALWI void elu_tile(uint32_t idst, uint32_t slope) { tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_ELU, idst, slope, 0u, 0u); }
ALWI void softplus_tile_init() {}
// softplus.h: no template flags; the LLK reads APPROX (math_approx_mode).
ALWI void softplus_tile(uint32_t idst, uint32_t beta, uint32_t beta_reciprocal, uint32_t threshold, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU, tt_sim_line, TT_SIM_SFPU_SOFTPLUS, idst, beta, beta_reciprocal, threshold,
              tt_sim_sfpu_flags(APPROX, false, false));
}
ALWI void binop_with_scalar_tile_init() {}
ALWI void mul_unary_tile(uint32_t idst, uint32_t param1) {
    tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_MUL_SCALAR, idst, param1, 0u, 0u);
}
ALWI void add_unary_tile(uint32_t idst, uint32_t param1) {
    tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_ADD_SCALAR, idst, param1, 0u, 0u);
}
ALWI void sub_unary_tile(uint32_t idst, uint32_t param1) {
    tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_SUB_SCALAR, idst, param1, 0u, 0u);
}
// TT-Metal api/compute/eltwise_binary_sfpu.h: DEST tile idst0 (op) DEST tile idst1 -> DEST tile odst,
// on the SFPU in fp32 (exact fp32 add/sub/mul when the operands were unpacked straight to DEST).
enum class DstRoundingMode : uint8_t { Default = 0, Rne = 1 };
ALWI void add_binary_tile_init() {}
ALWI void sub_binary_tile_init() {}
ALWI void mul_binary_tile_init() {}
template <DstRoundingMode dst_rounding_mode = DstRoundingMode::Default, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void add_binary_tile(uint32_t idst0, uint32_t idst1, uint32_t odst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU_BINARY, tt_sim_line, 0u, idst0, idst1, odst);
}
template <DstRoundingMode dst_rounding_mode = DstRoundingMode::Default, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void sub_binary_tile(uint32_t idst0, uint32_t idst1, uint32_t odst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU_BINARY, tt_sim_line, 1u, idst0, idst1, odst);
}
template <DstRoundingMode dst_rounding_mode = DstRoundingMode::Default, bool is_fp32_dest_acc_en = DST_ACCUM_MODE>
ALWI void mul_binary_tile(uint32_t idst0, uint32_t idst1, uint32_t odst, TT_SIM_LINE) {
    tt_sim_op(TT_SIM_OP_SFPU_BINARY, tt_sim_line, 2u, idst0, idst1, odst);
}

template <uint32_t in_dtype = 0, uint32_t out_dtype = 0>
ALWI void typecast_tile_init() {}
template <uint32_t in_dtype, uint32_t out_dtype>
ALWI void typecast_tile(uint32_t idst) {
    tt_sim_op(TT_SIM_OP_SFPU, 0u, TT_SIM_SFPU_TYPECAST, idst, in_dtype, out_dtype, 0u);
}

}  // namespace ckernel

using namespace ckernel;
