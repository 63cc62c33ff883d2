// Multi-head attention, compute side. A core processes work items (head h, query tile row qi);
// per item, with Dt = head_dim / 32 tiles and Tk key tiles:
//
//   Qs    = Q[qi, h] * scale                         (SFPU, scale = 1/sqrt(d), applied once)
//   K^T   = transpose(K[kj, h]) for every key tile    (kept for the item)
//   R     = Qs @ RelK^T                               (VITS only: [32 queries, 2w+1 offsets])
//   S[kj] = Qs @ K^T[kj] + B[kj]                      (B from the reader: banded R + masks)
//   m     = rowmax_j S ; P[kj] = exp(S[kj] - m)       (numerically stable softmax, unnormalised)
//   rs    = 1 / rowsum_j P
//   O[dt] = (sum_kj P[kj] @ V[kj, dt] + Pband @ RelV[dt]) * rs
//
// where Pband (VITS only) is built by the writer from the P tiles near the diagonal
// (Pband[i, m] = P[i, i + m - w]). The data-movement kernels do the element shuffles (banding
// and unbanding); every arithmetic operation is here, on the FPU/SFPU.
//
// The reciprocal: recip_tile as called here (legacy_compat) is only ~9.4 bits accurate on the
// hardware (relative error up to 1.5e-3 = 2^-9.4, the simulator's `llk` SFPU model), so the
// host asks for `newton_steps` Newton-Raphson steps r <- r (2 - s r) in fp32 on the SFPU:
// - fp32 DEST (fp32_acc): one step (error ~2^-18.8). rs then goes through the FPU's broadcast
//   multiply, which reads it as TF32 (11 significant bits, truncated: up to 2^-10 relative), so a
//   second step could not be seen in the output.
// - 16-bit DEST: none. Every SFPU result is stored to DEST as bf16 (8 significant bits, up to
//   2^-8 relative), above the reciprocal's own error, so a step cannot improve the stored rs,
//   and the output is bf16 as well.
//
// Compile-time args: 0 Dt, 1 Tk, 2 has_rel, 3 scale_bits (f32), 4 newton_steps (0 or 1).
// Runtime args: 0 num_items, then per item its query tile row qi (band tiles kj in
//   [qi - 1, qi + 1] ∩ [0, Tk) are sent to the writer when has_rel).
#include <cstdint>

#include "api/compute/bcast.h"
#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"
#include "api/compute/eltwise_binary_sfpu.h"
#include "api/compute/eltwise_unary/binop_with_scalar.h"
#include "api/compute/eltwise_unary/exp.h"
#include "api/compute/eltwise_unary/recip.h"
#include "api/compute/matmul.h"
#include "api/compute/reduce.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/transpose_wh.h"

namespace {
constexpr uint32_t cb_q = 0;
constexpr uint32_t cb_k = 1;
constexpr uint32_t cb_v = 2;
constexpr uint32_t cb_bias = 3;
constexpr uint32_t cb_relkt = 4;
constexpr uint32_t cb_relv = 5;
constexpr uint32_t cb_scaler = 6;
constexpr uint32_t cb_pu = 7;
constexpr uint32_t cb_out = 16;
constexpr uint32_t cb_o1 = 17;
constexpr uint32_t cb_qs = 24;
constexpr uint32_t cb_kt = 25;
constexpr uint32_t cb_r = 26;
constexpr uint32_t cb_s = 27;
constexpr uint32_t cb_max = 28;
constexpr uint32_t cb_p = 29;
constexpr uint32_t cb_rsum = 30;
constexpr uint32_t cb_pb = 31;

inline void pack_one(uint32_t cb) {
    tile_regs_commit();
    cb_reserve_back(cb, 1);
    tile_regs_wait();
    pack_tile(0, cb);
    tile_regs_release();
    cb_push_back(cb, 1);
}

// One Newton-Raphson step for r ~ 1/s in DEST: r <- r (2 - s r), formed as r - r (s r - 1) with
// the SFPU's fp32 mul / sub (t = s r is within ~2^-9 of 1, so t - 1 is exact and the correction
// adds only fp32 roundings). DEST tiles: s in ds (kept), r in dr (updated), dt scratch.
inline void newton_recip(uint32_t ds, uint32_t dr, uint32_t dt) {
    constexpr uint32_t one_bits = 0x3F800000u;  // 1.0f
    mul_binary_tile_init();
    mul_binary_tile(ds, dr, dt);
    binop_with_scalar_tile_init();
    sub_unary_tile(dt, one_bits);
    mul_binary_tile_init();
    mul_binary_tile(dr, dt, dt);
    sub_binary_tile_init();
    sub_binary_tile(dr, dt, dr);
}
}  // namespace

void kernel_main() {
    constexpr uint32_t Dt = get_compile_time_arg_val(0);
    constexpr uint32_t Tk = get_compile_time_arg_val(1);
    constexpr uint32_t has_rel = get_compile_time_arg_val(2);
    constexpr uint32_t scale_bits = get_compile_time_arg_val(3);
    constexpr uint32_t newton_steps = get_compile_time_arg_val(4);
    const uint32_t num_items = get_arg_val<uint32_t>(0);

    compute_kernel_hw_startup(cb_q, cb_kt, cb_out);
    cb_wait_front(cb_scaler, 1);
    if constexpr (has_rel != 0) {
        cb_wait_front(cb_relkt, Dt);
        cb_wait_front(cb_relv, Dt);
    }

    for (uint32_t item = 0; item < num_items; ++item) {
        const uint32_t qi = get_arg_val<uint32_t>(1 + item);

        // Qs = Q * scale.
        cb_wait_front(cb_q, Dt);
        copy_tile_init(cb_q);
        for (uint32_t dt = 0; dt < Dt; ++dt) {
            tile_regs_acquire();
            copy_tile(cb_q, dt, 0);
            binop_with_scalar_tile_init();
            mul_unary_tile(0, scale_bits);
            pack_one(cb_qs);
        }
        cb_pop_front(cb_q, Dt);
        cb_wait_front(cb_qs, Dt);

        // K^T tiles: index kj * Dt + dt holds transpose(K[kj, dt]).
        transpose_wh_init(cb_k, cb_kt);
        for (uint32_t i = 0; i < Tk * Dt; ++i) {
            cb_wait_front(cb_k, 1);
            tile_regs_acquire();
            transpose_wh_tile(cb_k, 0, 0);
            pack_one(cb_kt);
            cb_pop_front(cb_k, 1);
        }
        cb_wait_front(cb_kt, Tk * Dt);

        // R = Qs @ RelK^T (to the reader, which bands it into the score biases).
        if constexpr (has_rel != 0) {
            tile_regs_acquire();
            matmul_init(cb_qs, cb_relkt);
            for (uint32_t dt = 0; dt < Dt; ++dt) {
                matmul_tiles(cb_qs, cb_relkt, dt, dt, 0);
            }
            pack_one(cb_r);
        }

        // S[kj] = Qs @ K^T[kj] + B[kj].
        for (uint32_t kj = 0; kj < Tk; ++kj) {
            tile_regs_acquire();
            matmul_init(cb_qs, cb_kt);
            for (uint32_t dt = 0; dt < Dt; ++dt) {
                matmul_tiles(cb_qs, cb_kt, dt, kj * Dt + dt, 0);
            }
            cb_wait_front(cb_bias, 1);
            binary_dest_reuse_tiles_init<EltwiseBinaryType::ELWADD, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_bias);
            binary_dest_reuse_tiles<EltwiseBinaryType::ELWADD, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_bias, 0, 0);
            pack_one(cb_s);
            cb_pop_front(cb_bias, 1);
        }
        cb_pop_front(cb_qs, Dt);
        cb_pop_front(cb_kt, Tk * Dt);
        cb_wait_front(cb_s, Tk);

        // m = rowmax S.
        tile_regs_acquire();
        reduce_init<PoolType::MAX, ReduceDim::REDUCE_ROW>(cb_s, cb_scaler, cb_max);
        for (uint32_t kj = 0; kj < Tk; ++kj) {
            reduce_tile<PoolType::MAX, ReduceDim::REDUCE_ROW>(cb_s, cb_scaler, kj, 0, 0);
        }
        reduce_uninit();
        pack_one(cb_max);
        cb_wait_front(cb_max, 1);

        // P = exp(S - m).
        for (uint32_t kj = 0; kj < Tk; ++kj) {
            tile_regs_acquire();
            sub_bcast_cols_init_short(cb_s, cb_max);
            sub_tiles_bcast<BroadcastType::COL>(cb_s, cb_max, kj, 0, 0);
            exp_tile_init();
            exp_tile(0);
            pack_one(cb_p);
        }
        cb_pop_front(cb_s, Tk);
        cb_pop_front(cb_max, 1);
        cb_wait_front(cb_p, Tk);

        // rs = 1 / rowsum P, refined by `newton_steps` Newton-Raphson steps (see the header):
        // the sum s is formed identically in DEST 0 and DEST 1, rs = recip(s) in DEST 1.
        tile_regs_acquire();
        reduce_init<PoolType::SUM, ReduceDim::REDUCE_ROW>(cb_p, cb_scaler, cb_rsum);
        for (uint32_t kj = 0; kj < Tk; ++kj) {
            reduce_tile<PoolType::SUM, ReduceDim::REDUCE_ROW>(cb_p, cb_scaler, kj, 0, 0);
            if constexpr (newton_steps != 0) {
                reduce_tile<PoolType::SUM, ReduceDim::REDUCE_ROW>(cb_p, cb_scaler, kj, 0, 1);
            }
        }
        reduce_uninit();
        constexpr uint32_t d_r = newton_steps != 0 ? 1 : 0;
        recip_tile_init();
        recip_tile(d_r);
        for (uint32_t i = 0; i < newton_steps; ++i) {
            newton_recip(0, 1, 2);
        }
        tile_regs_commit();
        cb_reserve_back(cb_rsum, 1);
        tile_regs_wait();
        pack_tile(d_r, cb_rsum);
        tile_regs_release();
        cb_push_back(cb_rsum, 1);
        cb_wait_front(cb_rsum, 1);

        // The P tiles near the diagonal go to the writer, which returns Pband in cb_pu.
        if constexpr (has_rel != 0) {
            const uint32_t lo = qi == 0 ? 0 : qi - 1;
            const uint32_t hi = qi + 1 < Tk ? qi + 1 : Tk - 1;
            copy_tile_init(cb_p);
            for (uint32_t kj = lo; kj <= hi; ++kj) {
                tile_regs_acquire();
                copy_tile(cb_p, kj, 0);
                pack_one(cb_pb);
            }
            cb_wait_front(cb_pu, 1);
        }

        // O[dt] = (P @ V[:, dt] + Pband @ RelV[dt]) * rs.
        cb_wait_front(cb_v, Tk * Dt);
        for (uint32_t dt = 0; dt < Dt; ++dt) {
            tile_regs_acquire();
            matmul_init(cb_p, cb_v);
            for (uint32_t kj = 0; kj < Tk; ++kj) {
                matmul_tiles(cb_p, cb_v, kj, kj * Dt + dt, 0);
            }
            if constexpr (has_rel != 0) {
                matmul_init(cb_pu, cb_relv);
                matmul_tiles(cb_pu, cb_relv, 0, dt, 0);
            }
            pack_one(cb_o1);
            cb_wait_front(cb_o1, 1);
            tile_regs_acquire();
            mul_bcast_cols_init_short(cb_o1, cb_rsum);
            mul_tiles_bcast<BroadcastType::COL>(cb_o1, cb_rsum, 0, 0, 0);
            pack_one(cb_out);
            cb_pop_front(cb_o1, 1);
        }
        cb_pop_front(cb_v, Tk * Dt);
        cb_pop_front(cb_p, Tk);
        cb_pop_front(cb_rsum, 1);
        if constexpr (has_rel != 0) {
            cb_pop_front(cb_pu, 1);
        }
    }
}
