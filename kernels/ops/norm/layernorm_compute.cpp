// Layernorm over the channels (columns) of each time row: y = (x - mean) / sqrt(var + eps) *
// gamma + beta, mean and biased variance over the C valid columns. Per tile row (Ct tiles):
//   1. (HAS_MASK) xm = x, the last tile times the column mask (padding columns -> 0) -> CB 5;
//   2. mean = (sum over columns of xm, reduce_tile ROW with an all-ones scaler) * (1/C) -> CB 6
//      (column 0 of the tile holds each row's mean);
//   3. d = xm - mean (column broadcast) -> CB 7; with HAS_MASK the last tile is masked again;
//   4. d^2 -> CB 8; var = sum(d^2) * (1/C); rstd = rsqrt(var + eps) -> CB 9;
//   5. y = d * rstd (column broadcast) -> CB 10, * gamma (row broadcast) -> CB 10,
//      + beta (row broadcast) -> CB 16.
// Intermediates are Float32 with an fp32 DEST, Float16_b otherwise.
//
// Compile-time args: 0 ct, 1 inv_c (f32 bits), 2 eps (f32 bits). Define HAS_MASK when C % 32 != 0.
// Runtime args: 0 num_rows.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"
#include "api/compute/bcast.h"
#include "api/compute/reduce.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/rsqrt.h"
#include "api/compute/eltwise_unary/binop_with_scalar.h"

namespace {
constexpr uint32_t cb_x = 0, cb_ones = 1, cb_mask = 2, cb_gamma = 3, cb_beta = 4;
constexpr uint32_t cb_xm = 5, cb_mean = 6, cb_d = 7, cb_sq = 8, cb_rstd = 9, cb_tmp = 10, cb_out = 16;

inline void pack_one(uint32_t cb) {
    tile_regs_commit();
    cb_reserve_back(cb, 1);
    tile_regs_wait();
    pack_reconfig_data_format(cb);  // the intermediates, masked input and output differ in format
    pack_tile(0, cb);
    tile_regs_release();
    cb_push_back(cb, 1);
}

// Row sums of `n` tiles of `cb` (column 0 of DEST 0), times inv_c, plus `add` -> DEST 0.
inline void row_mean(uint32_t cb, uint32_t n, uint32_t inv_c) {
    reconfig_data_format(cb, cb_ones);
    reduce_init<SUM, REDUCE_ROW>(cb, cb_ones, cb_mean);
    for (uint32_t c = 0; c < n; ++c) {
        reduce_tile<SUM, REDUCE_ROW>(cb, cb_ones, c, 0, 0);
    }
    reduce_uninit();
    binop_with_scalar_tile_init();
    mul_unary_tile(0, inv_c);
}
}  // namespace

void kernel_main() {
    constexpr uint32_t ct = get_compile_time_arg_val(0);
    constexpr uint32_t inv_c = get_compile_time_arg_val(1);
    constexpr uint32_t eps = get_compile_time_arg_val(2);
    const uint32_t num_rows = get_arg_val<uint32_t>(0);

    compute_kernel_hw_startup(cb_x, cb_ones, cb_out);
    cb_wait_front(cb_ones, 1);
#ifdef HAS_MASK
    cb_wait_front(cb_mask, 1);
    constexpr uint32_t cb_in = cb_xm;
#else
    constexpr uint32_t cb_in = cb_x;
#endif
    cb_wait_front(cb_gamma, ct);
    cb_wait_front(cb_beta, ct);

    for (uint32_t row = 0; row < num_rows; ++row) {
        cb_wait_front(cb_x, ct);
#ifdef HAS_MASK
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            if (c + 1 < ct) {
                reconfig_data_format_srca(cb_x);
                copy_tile_to_dst_init_short(cb_x);
                copy_tile(cb_x, c, 0);
            } else {
                init_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_x, cb_mask, cb_xm);
                any_tiles_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_x, cb_mask, c, 0, 0);
            }
            pack_one(cb_xm);
        }
        cb_pop_front(cb_x, ct);
        cb_wait_front(cb_xm, ct);
#endif
        // 2. mean
        tile_regs_acquire();
        row_mean(cb_in, ct, inv_c);
        pack_one(cb_mean);
        cb_wait_front(cb_mean, 1);

        // 3. d = x - mean
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            init_bcast<EltwiseBinaryType::ELWSUB, BroadcastType::COL>(cb_in, cb_mean, cb_d);
            any_tiles_bcast<EltwiseBinaryType::ELWSUB, BroadcastType::COL>(cb_in, cb_mean, c, 0, 0);
#ifdef HAS_MASK
            if (c + 1 == ct) {
                pack_one(cb_tmp);
                cb_wait_front(cb_tmp, 1);
                tile_regs_acquire();
                init_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_tmp, cb_mask, cb_d);
                any_tiles_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_tmp, cb_mask, 0, 0, 0);
                pack_one(cb_d);
                cb_pop_front(cb_tmp, 1);
                continue;
            }
#endif
            pack_one(cb_d);
        }
        cb_pop_front(cb_in, ct);
        cb_pop_front(cb_mean, 1);
        cb_wait_front(cb_d, ct);

        // 4. variance and rstd
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            reconfig_data_format(cb_d, cb_d);
            mul_tiles_init(cb_d, cb_d);
            mul_tiles(cb_d, cb_d, c, c, 0);
            pack_one(cb_sq);
        }
        cb_wait_front(cb_sq, ct);
        tile_regs_acquire();
        row_mean(cb_sq, ct, inv_c);
        add_unary_tile(0, eps);
        rsqrt_tile_init();
        rsqrt_tile(0);
        pack_one(cb_rstd);
        cb_pop_front(cb_sq, ct);
        cb_wait_front(cb_rstd, 1);

        // 5. y = d * rstd * gamma + beta
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            init_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::COL>(cb_d, cb_rstd, cb_tmp);
            any_tiles_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::COL>(cb_d, cb_rstd, c, 0, 0);
            pack_one(cb_tmp);
            cb_wait_front(cb_tmp, 1);
            tile_regs_acquire();
            init_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_tmp, cb_gamma, cb_tmp);
            any_tiles_bcast<EltwiseBinaryType::ELWMUL, BroadcastType::ROW>(cb_tmp, cb_gamma, 0, c, 0);
            cb_pop_front(cb_tmp, 1);
            pack_one(cb_tmp);
            cb_wait_front(cb_tmp, 1);
            tile_regs_acquire();
            init_bcast<EltwiseBinaryType::ELWADD, BroadcastType::ROW>(cb_tmp, cb_beta, cb_out);
            any_tiles_bcast<EltwiseBinaryType::ELWADD, BroadcastType::ROW>(cb_tmp, cb_beta, 0, c, 0);
            cb_pop_front(cb_tmp, 1);
            pack_one(cb_out);
        }
        cb_pop_front(cb_d, ct);
        cb_pop_front(cb_rstd, 1);
    }
}
