// Layernorm reader (RISCV_0): once, the constant tiles (CB 1: all ones, the reduce scaler, or
// n_ones tiles: all ones then the eight masked ones tiles of the exact-fp32 path's isolation;
// CB 2: column mask of the last tile, when C is not a multiple of 32; CB 3 / CB 4: gamma and
// beta, Ct tiles each, row 0 holding the values); then, for each of this core's tile rows, its
// Ct input tiles into CB 0.
//
// Compile-time args: TensorAccessorArgs of x, then of the constant tensors (ones, mask, gamma,
//   beta: interleaved; ones and mask share one tile size: bf16, or Float32 on the exact-fp32
//   path, where gamma and beta are Float32 too).
// Runtime args: 0 x_addr, 1 first_row, 2 num_rows, 3 ct, 4 ones_addr, 5 mask_addr,
//   6 gamma_addr, 7 beta_addr, 8 has_mask, 9 n_ones (tiles of the ones tensor into CB 1).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t x_addr = get_arg_val<uint32_t>(0);
    const uint32_t first_row = get_arg_val<uint32_t>(1);
    const uint32_t num_rows = get_arg_val<uint32_t>(2);
    const uint32_t ct = get_arg_val<uint32_t>(3);
    const uint32_t ones_addr = get_arg_val<uint32_t>(4);
    const uint32_t mask_addr = get_arg_val<uint32_t>(5);
    const uint32_t gamma_addr = get_arg_val<uint32_t>(6);
    const uint32_t beta_addr = get_arg_val<uint32_t>(7);
    const bool has_mask = get_arg_val<uint32_t>(8) != 0;
    const uint32_t n_ones = get_arg_val<uint32_t>(9);
    constexpr uint32_t cb_x = 0, cb_ones = 1, cb_mask = 2, cb_gamma = 3, cb_beta = 4;
    constexpr auto x_args = TensorAccessorArgs<0>();
    constexpr auto c_args = TensorAccessorArgs<x_args.next_compile_time_args_offset()>();
    const uint32_t x_bytes = get_tile_size(cb_x);
    const uint32_t c_bytes = get_tile_size(cb_ones);
    const auto x = TensorAccessor(x_args, x_addr, x_bytes);

    const auto ones = TensorAccessor(c_args, ones_addr, c_bytes);
    cb_reserve_back(cb_ones, n_ones);
    for (uint32_t i = 0; i < n_ones; ++i) {
        noc_async_read_tile(i, ones, get_write_ptr(cb_ones) + i * c_bytes);
    }
    noc_async_read_barrier();
    cb_push_back(cb_ones, n_ones);
    if (has_mask) {
        const auto mask = TensorAccessor(c_args, mask_addr, c_bytes);
        cb_reserve_back(cb_mask, 1);
        noc_async_read_tile(0, mask, get_write_ptr(cb_mask));
        noc_async_read_barrier();
        cb_push_back(cb_mask, 1);
    }
    // gamma / beta are bf16, or Float32 with Float32 activations.
    const uint32_t gb_bytes = get_tile_size(cb_gamma);
    const auto gamma = TensorAccessor(c_args, gamma_addr, gb_bytes);
    const auto beta = TensorAccessor(c_args, beta_addr, gb_bytes);
    cb_reserve_back(cb_gamma, ct);
    cb_reserve_back(cb_beta, ct);
    uint32_t g = get_write_ptr(cb_gamma);
    uint32_t b = get_write_ptr(cb_beta);
    for (uint32_t c = 0; c < ct; ++c) {
        noc_async_read_tile(c, gamma, g);
        noc_async_read_tile(c, beta, b);
        g += gb_bytes;
        b += gb_bytes;
    }
    noc_async_read_barrier();
    cb_push_back(cb_gamma, ct);
    cb_push_back(cb_beta, ct);

    for (uint32_t r = first_row; r < first_row + num_rows; ++r) {
        cb_reserve_back(cb_x, ct);
        uint32_t l1 = get_write_ptr(cb_x);
        for (uint32_t c = 0; c < ct; ++c) {
            noc_async_read_tile(r * ct + c, x, l1);
            l1 += x_bytes;
        }
        noc_async_read_barrier();
        cb_push_back(cb_x, ct);
    }
}
