// Bench-only variant of kernels/compute/bmm_large_block.cpp (tt-kernels) for the timing-model
// calibration: identical blocking, spill and reload, but the sub-block is computed with one
// matmul_block call per K step instead of one matmul_tiles call per tile.
// Blocked matmul for one core of a multi-core matmul: the core's output block is
// (in0_num_subblocks * out_subblock_h) x (in1_num_subblocks * out_subblock_w) tiles, computed
// over `num_blocks` K blocks of in0_block_w tiles each. Per K block the whole in0 block (CB 0,
// row-major, in0_block_w tiles per row) and in1 block (CB 1, row-major, in1_per_core_w tiles per
// row) are present; every output sub-block fits DEST at once. Between K blocks each sub-block's
// partial sum is packed to CB 24 and reloaded into DEST (copy_tile) before accumulating the next
// block; after the last block the sub-block is packed to CB 16.
//
// Compile-time args: 0 in0_block_w, 1 in0_num_subblocks, 2 in0_block_num_tiles,
//   3 in0_subblock_num_tiles, 4 in1_num_subblocks, 5 in1_block_num_tiles, 6 in1_per_core_w,
//   7 num_blocks, 8 out_subblock_h, 9 out_subblock_w, 10 out_subblock_num_tiles.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"

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

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_out = 16;
    constexpr uint32_t cb_partial = 24;

    compute_kernel_hw_startup(cb_in0, cb_in1, cb_out);
    mm_block_init(cb_in0, cb_in1, cb_out, false, out_subblock_w, out_subblock_h, in0_block_w);

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
                    // Reload the partial sums of this sub-block.
                    copy_init(cb_partial);
                    cb_wait_front(cb_partial, out_subblock_num_tiles);
                    for (uint32_t i = 0; i < out_subblock_num_tiles; ++i) {
                        copy_tile(cb_partial, i, i);
                    }
                    cb_pop_front(cb_partial, out_subblock_num_tiles);
                    mm_block_init_short(cb_in0, cb_in1, false, out_subblock_w, out_subblock_h, in0_block_w);
                }

                // One LLK call per K step for the whole sub-block (in0 rows reused across the
                // sub-block's columns), as TT-NN's production matmul kernels do.
                for (uint32_t k = 0; k < in0_block_w; ++k) {
                    matmul_block(cb_in0, cb_in1, in0_subblock_offset + k, in1_subblock_offset + k * in1_per_core_w, 0,
                                 false, out_subblock_w, out_subblock_h, in0_block_w);
                }
                tile_regs_commit();

                const uint32_t cb_dst = last_block ? cb_out : cb_partial;
                cb_reserve_back(cb_dst, out_subblock_num_tiles);
                tile_regs_wait();
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
        cb_pop_front(cb_in1, in1_block_num_tiles);
    }
}
