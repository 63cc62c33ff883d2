// Matmul op, compute: out = act(in0 x in1 + bias) for one core's output band, processed in
// `num_chunks` chunks of chunk_m tile rows (in0_num_subblocks * out_subblock_h). Per chunk the K
// dimension runs in `num_blocks` blocks of in0_block_w tiles; every output sub-block
// (out_subblock_h x out_subblock_w tiles) fits DEST. Block 0 starts DEST from the bias (CB 2: one
// tile per output column tile, the bias replicated over the 32 rows, copied exactly) or from
// zero; later blocks reload the partial sums spilled to CB 24 (fp32 with fp32 accumulation).
// After the last block the fused activation runs on DEST (SFPU) and the sub-block is packed to
// CB 16 in the output format.
//
// With in1_resident the whole K x per_core_n band of weights (num_blocks == 1) stays in CB 1 for
// every chunk: it is waited for once and popped at the end.
//
// Compile-time args: 0 in0_block_w, 1 in0_num_subblocks, 2 in0_block_num_tiles,
//   3 in0_subblock_num_tiles, 4 in1_num_subblocks, 5 in1_block_num_tiles, 6 in1_per_core_w,
//   7 num_blocks, 8 out_subblock_h, 9 out_subblock_w, 10 out_subblock_num_tiles, 11 num_chunks,
//   12 has_bias, 13 in1_resident.
// Defines: ACTIVATION (0 none, 1 relu, 2 leaky relu, 3 gelu (erf), 4 tanh, 5 sigmoid), ACT_PARAM
//   (leaky slope as f32 bits).
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/relu.h"
#include "api/compute/eltwise_unary/gelu.h"
#include "api/compute/eltwise_unary/tanh.h"
#include "api/compute/eltwise_unary/sigmoid.h"

#ifndef ACTIVATION
#define ACTIVATION 0
#endif
#ifndef ACT_PARAM
#define ACT_PARAM 0
#endif

namespace {
inline void activation_init() {
#if ACTIVATION == 1
    relu_tile_init();
#elif ACTIVATION == 2
    leaky_relu_tile_init();
#elif ACTIVATION == 3
    gelu_tile_init<false>();
#elif ACTIVATION == 4
    tanh_tile_init();
#elif ACTIVATION == 5
    sigmoid_tile_init();
#endif
}

inline void activation_tile(uint32_t dst) {
#if ACTIVATION == 1
    relu_tile(dst);
#elif ACTIVATION == 2
    leaky_relu_tile(dst, ACT_PARAM);
#elif ACTIVATION == 3
    gelu_tile<false>(dst);
#elif ACTIVATION == 4
    tanh_tile(dst);
#elif ACTIVATION == 5
    sigmoid_tile(dst);
#else
    (void)dst;
#endif
}
}  // namespace

void kernel_main() {
    constexpr uint32_t in0_block_w = get_compile_time_arg_val(0);
    constexpr uint32_t in0_num_subblocks = get_compile_time_arg_val(1);
    constexpr uint32_t in0_block_num_tiles = get_compile_time_arg_val(2);
    constexpr uint32_t in0_subblock_num_tiles = get_compile_time_arg_val(3);
    constexpr uint32_t in1_num_subblocks = get_compile_time_arg_val(4);
    constexpr uint32_t in1_block_num_tiles = get_compile_time_arg_val(5);
    constexpr uint32_t in1_per_core_w = get_compile_time_arg_val(6);
    constexpr uint32_t num_blocks = get_compile_time_arg_val(7);
    constexpr uint32_t out_subblock_h = get_compile_time_arg_val(8);
    constexpr uint32_t out_subblock_w = get_compile_time_arg_val(9);
    constexpr uint32_t out_subblock_num_tiles = get_compile_time_arg_val(10);
    constexpr uint32_t num_chunks = get_compile_time_arg_val(11);
    constexpr bool has_bias = get_compile_time_arg_val(12) != 0;
    constexpr bool in1_resident = get_compile_time_arg_val(13) != 0;

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_bias = 2;
    constexpr uint32_t cb_out = 16;
    constexpr uint32_t cb_partial = 24;

    compute_kernel_hw_startup(cb_in0, cb_in1, cb_out);
    mm_init(cb_in0, cb_in1, cb_out);
    if constexpr (has_bias) {
        cb_wait_front(cb_bias, in1_per_core_w);
    }

    for (uint32_t chunk = 0; chunk < num_chunks; ++chunk) {
        for (uint32_t block = 0; block < num_blocks; ++block) {
            const bool last_block = block == num_blocks - 1;
            cb_wait_front(cb_in0, in0_block_num_tiles);
            cb_wait_front(cb_in1, in1_block_num_tiles);

            uint32_t in0_subblock_offset = 0;
            for (uint32_t sbh = 0; sbh < in0_num_subblocks; ++sbh) {
                uint32_t in1_subblock_offset = 0;
                for (uint32_t sbw = 0; sbw < in1_num_subblocks; ++sbw) {
                    tile_regs_acquire();
                    if (block > 0) {
                        copy_tile_to_dst_init_short_with_dt(cb_in1, cb_partial);
                        cb_wait_front(cb_partial, out_subblock_num_tiles);
                        for (uint32_t i = 0; i < out_subblock_num_tiles; ++i) {
                            copy_tile(cb_partial, i, i);
                        }
                        cb_pop_front(cb_partial, out_subblock_num_tiles);
                        mm_init_short_with_dt(cb_in0, cb_in1, cb_partial);
                    } else if constexpr (has_bias) {
                        copy_tile_to_dst_init_short_with_dt(cb_in1, cb_bias);
                        uint32_t d = 0;
                        for (uint32_t h = 0; h < out_subblock_h; ++h) {
                            for (uint32_t w = 0; w < out_subblock_w; ++w) {
                                copy_tile(cb_bias, in1_subblock_offset + w, d);
                                ++d;
                            }
                        }
                        mm_init_short_with_dt(cb_in0, cb_in1, cb_bias);
                    }

                    uint32_t dst = 0;
                    for (uint32_t h = 0; h < out_subblock_h; ++h) {
                        for (uint32_t w = 0; w < out_subblock_w; ++w) {
                            for (uint32_t k = 0; k < in0_block_w; ++k) {
                                const uint32_t in0_index = in0_subblock_offset + h * in0_block_w + k;
                                const uint32_t in1_index = in1_subblock_offset + k * in1_per_core_w + w;
                                matmul_tiles(cb_in0, cb_in1, in0_index, in1_index, dst);
                            }
                            ++dst;
                        }
                    }
                    if (last_block && ACTIVATION != 0) {
                        activation_init();
                        for (uint32_t i = 0; i < out_subblock_num_tiles; ++i) {
                            activation_tile(i);
                        }
                        mm_init_short(cb_in0, cb_in1);
                    }
                    tile_regs_commit();

                    const uint32_t cb_dst = last_block ? cb_out : cb_partial;
                    cb_reserve_back(cb_dst, out_subblock_num_tiles);
                    tile_regs_wait();
                    if constexpr (num_blocks > 1) {
                        // The partials and the output may differ in format.
                        pack_reconfig_data_format(cb_dst);
                    }
                    for (uint32_t i = 0; i < out_subblock_num_tiles; ++i) {
                        pack_tile(i, cb_dst);
                    }
                    tile_regs_release();
                    cb_push_back(cb_dst, out_subblock_num_tiles);

                    in1_subblock_offset += out_subblock_w;
                }
                in0_subblock_offset += in0_subblock_num_tiles;
            }

            cb_pop_front(cb_in0, in0_block_num_tiles);
            if constexpr (!in1_resident) {
                cb_pop_front(cb_in1, in1_block_num_tiles);
            }
        }
    }
    if constexpr (in1_resident) {
        cb_pop_front(cb_in1, in1_block_num_tiles);
    }
    if constexpr (has_bias) {
        cb_pop_front(cb_bias, in1_per_core_w);
    }
}
