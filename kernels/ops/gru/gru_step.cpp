// GRU recurrence, compute side of one core of a persistent multi-core kernel. Core k owns hidden
// tile column k (32 hidden units) and runs every step of the sequence:
//
//   gh_g = h_t @ W_hh^T[:, g-block k]          g in {r, z, n}   (matmul over Ht K tiles)
//   r    = sigmoid(gh_r + gx_r + (b_ir + b_hr))
//   z    = sigmoid(gh_z + gx_z + (b_iz + b_hz))
//   n    = tanh(gx_n + b_in + r * (gh_n + b_hn))
//   h'   = n + z * (h - n)          (= (1 - z) * n + z * h, PyTorch's GRU)
//
// h_t (all Ht tiles, rows = batch) arrives in CB `cb_h` (the reader pushes it once every core's
// tile of step t has landed); W_hh's 3 * Ht tiles for this core (index kt * 3 + g) and the 4 bias
// tiles (b_r, b_z, b_in, b_hn, rows replicated) are resident for the whole sequence; the input
// projection gx (3 tiles per step, rows = batch) streams through `cb_gx`. The new h tile goes to
// `cb_hout` (the writer exchanges it with the other cores and stores it).
//
// Compile-time args: 0 Ht, 1 cb_w, 2 cb_h, 3 cb_gx, 4 cb_bias, 5 cb_tmp, 6 cb_n, 7 cb_hout.
// Runtime args: 0 num_steps, 1 k (this core's hidden tile).
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"
#include "api/compute/eltwise_unary/sigmoid.h"
#include "api/compute/eltwise_unary/tanh.h"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"

namespace {
constexpr auto ADD = EltwiseBinaryType::ELWADD;
constexpr auto MUL = EltwiseBinaryType::ELWMUL;
constexpr auto REUSE = EltwiseBinaryReuseDestType::DEST_TO_SRCA;

// DEST[dst] = DEST[dst] (op) cb[idx]
template <EltwiseBinaryType op>
inline void dest_op(uint32_t cb, uint32_t idx, uint32_t dst) {
    binary_dest_reuse_tiles_init<op, REUSE>(cb);
    binary_dest_reuse_tiles<op, REUSE>(cb, idx, dst);
}
}  // namespace

void kernel_main() {
    const uint32_t num_steps = get_arg_val<uint32_t>(0);
    const uint32_t k = get_arg_val<uint32_t>(1);
    constexpr uint32_t Ht = get_compile_time_arg_val(0);
    constexpr uint32_t cb_w = get_compile_time_arg_val(1);
    constexpr uint32_t cb_h = get_compile_time_arg_val(2);
    constexpr uint32_t cb_gx = get_compile_time_arg_val(3);
    constexpr uint32_t cb_bias = get_compile_time_arg_val(4);
    constexpr uint32_t cb_tmp = get_compile_time_arg_val(5);
    constexpr uint32_t cb_n = get_compile_time_arg_val(6);
    constexpr uint32_t cb_hout = get_compile_time_arg_val(7);

    compute_kernel_hw_startup(cb_h, cb_w, cb_hout);
    cb_wait_front(cb_w, 3 * Ht);
    cb_wait_front(cb_bias, 4);

    for (uint32_t t = 0; t < num_steps; ++t) {
        cb_wait_front(cb_h, Ht);
        cb_wait_front(cb_gx, 3);

        // Phase 1: DEST 0..2 = h @ W_g; r, z gates; gh_n + b_hn.
        tile_regs_acquire();
        // One 1x3 block per K tile: h[kt] x W[kt, r|z|n] into DEST 0..2 (h unpacked once).
        mm_block_init_short(cb_h, cb_w, 0, 3, 1, 1);
        for (uint32_t kt = 0; kt < Ht; ++kt) {
            matmul_block(cb_h, cb_w, kt, kt * 3, 0, 0, 3, 1, 1);
        }
        dest_op<ADD>(cb_gx, 0, 0);
        dest_op<ADD>(cb_bias, 0, 0);
        dest_op<ADD>(cb_gx, 1, 1);
        dest_op<ADD>(cb_bias, 1, 1);
        dest_op<ADD>(cb_bias, 3, 2);
        sigmoid_tile_init();
        sigmoid_tile(0);
        sigmoid_tile(1);
        tile_regs_commit();
        cb_reserve_back(cb_tmp, 3);
        tile_regs_wait();
        pack_tile(0, cb_tmp);  // r
        pack_tile(1, cb_tmp);  // z
        pack_tile(2, cb_tmp);  // gh_n + b_hn
        tile_regs_release();
        cb_push_back(cb_tmp, 3);
        cb_wait_front(cb_tmp, 3);

        // Phase 2: n = tanh(r * (gh_n + b_hn) + gx_n + b_in).
        tile_regs_acquire();
        mul_tiles_init(cb_tmp, cb_tmp);
        mul_tiles(cb_tmp, cb_tmp, 0, 2, 0);
        dest_op<ADD>(cb_gx, 2, 0);
        dest_op<ADD>(cb_bias, 2, 0);
        tanh_tile_init();
        tanh_tile(0);
        tile_regs_commit();
        cb_reserve_back(cb_n, 1);
        tile_regs_wait();
        pack_tile(0, cb_n);
        tile_regs_release();
        cb_push_back(cb_n, 1);
        cb_wait_front(cb_n, 1);

        // Phase 3: h' = n + z * (h - n).
        tile_regs_acquire();
        sub_tiles_init(cb_h, cb_n);
        sub_tiles(cb_h, cb_n, k, 0, 0);
        dest_op<MUL>(cb_tmp, 1, 0);
        dest_op<ADD>(cb_n, 0, 0);
        tile_regs_commit();
        cb_pop_front(cb_tmp, 3);
        cb_pop_front(cb_n, 1);
        cb_pop_front(cb_gx, 3);
        cb_pop_front(cb_h, Ht);
        cb_reserve_back(cb_hout, 1);
        tile_regs_wait();
        pack_tile(0, cb_hout);
        tile_regs_release();
        cb_push_back(cb_hout, 1);
    }
}
