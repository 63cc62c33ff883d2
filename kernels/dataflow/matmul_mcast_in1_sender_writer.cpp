// Multicast matmul, in1 (weights) sender + output writer: runs on the top row of the core grid.
// Per K block it reads its column band's in1 block (block_h x block_w tiles) from DRAM into CB 1,
// waits until every receiver below it has reserved space, multicasts the block down the column,
// multicasts the VALID flag, and pushes the block to its own compute kernel (the receivers may
// span several NoC rectangles, each with its own num_dests). After the last
// block it writes this core's output block (CB 16, produced sub-block by sub-block) to DRAM.
//
// Compile-time args: TensorAccessorArgs of in1 (2 words), then of the output (2 words).
// Runtime args:
//   0 in1_addr, 1 start_tile, 2 stride_w, 3 stride_h, 4 next_block_stride,
//   5 block_w, 6 block_h, 7 block_num_tiles, 8 num_blocks,
//   9 out_addr, 10 out_start_tile, 11 out_stride_w, 12 out_stride_h,
//   13 out_next_subblock_stride_w, 14 out_next_subblock_stride_h,
//   15 out_subblock_w, 16 out_subblock_h, 17 out_subblock_tiles,
//   18 out_num_subblocks_w, 19 out_num_subblocks_h,
//   20.. multicast sender plan: sender_semaphore_id, receiver_semaphore_id, total_num_dests,
//        num_rects, then per rectangle noc_start_x, noc_start_y, noc_end_x, noc_end_y, num_dests.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;  // hostdevcommon VALID
}

void kernel_main() {
    const uint32_t in1_addr = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t stride_w = get_arg_val<uint32_t>(2);
    const uint32_t stride_h = get_arg_val<uint32_t>(3);
    const uint32_t next_block_stride = get_arg_val<uint32_t>(4);
    const uint32_t block_w = get_arg_val<uint32_t>(5);
    const uint32_t block_h = get_arg_val<uint32_t>(6);
    const uint32_t block_num_tiles = get_arg_val<uint32_t>(7);
    const uint32_t num_blocks = get_arg_val<uint32_t>(8);
    constexpr uint32_t plan = 20;
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 1));
    const uint32_t total_num_dests = get_arg_val<uint32_t>(plan + 2);
    const uint32_t num_rects = get_arg_val<uint32_t>(plan + 3);
    constexpr uint32_t rect_args = plan + 4;

    const uint32_t out_addr = get_arg_val<uint32_t>(9);
    const uint32_t out_start_tile = get_arg_val<uint32_t>(10);
    const uint32_t out_stride_w = get_arg_val<uint32_t>(11);
    const uint32_t out_stride_h = get_arg_val<uint32_t>(12);
    const uint32_t out_next_subblock_stride_w = get_arg_val<uint32_t>(13);
    const uint32_t out_next_subblock_stride_h = get_arg_val<uint32_t>(14);
    const uint32_t out_subblock_w = get_arg_val<uint32_t>(15);
    const uint32_t out_subblock_h = get_arg_val<uint32_t>(16);
    const uint32_t out_subblock_tiles = get_arg_val<uint32_t>(17);
    const uint32_t out_num_subblocks_w = get_arg_val<uint32_t>(18);
    const uint32_t out_num_subblocks_h = get_arg_val<uint32_t>(19);

    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_out = 16;
    const uint32_t in1_tile_bytes = get_tile_size(cb_in1);
    const uint32_t out_tile_bytes = get_tile_size(cb_out);
    constexpr auto in1_args = TensorAccessorArgs<0>();
    constexpr auto out_args = TensorAccessorArgs<in1_args.next_compile_time_args_offset()>();
    const auto in1 = TensorAccessor(in1_args, in1_addr, in1_tile_bytes);
    const auto out = TensorAccessor(out_args, out_addr, out_tile_bytes);

    volatile tt_l1_ptr uint32_t* sender_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem_addr);
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    noc_semaphore_set(receiver_sem, kValid);

    uint32_t block_start = start_tile;
    for (uint32_t block = 0; block < num_blocks; ++block) {
        cb_reserve_back(cb_in1, block_num_tiles);
        const uint32_t block_addr = get_write_ptr(cb_in1);
        uint32_t l1_addr = block_addr;
        uint32_t row_start = block_start;
        for (uint32_t h = 0; h < block_h; ++h) {
            uint32_t tile = row_start;
            for (uint32_t w = 0; w < block_w; ++w) {
                noc_async_read_tile(tile, in1, l1_addr);
                l1_addr += in1_tile_bytes;
                tile += stride_w;
            }
            row_start += stride_h;
        }
        block_start += next_block_stride;
        noc_async_read_barrier();

        noc_semaphore_wait(sender_sem, total_num_dests);
        noc_semaphore_set(sender_sem, 0);

        const uint32_t block_bytes = block_num_tiles * in1_tile_bytes;
        for (uint32_t r = 0; r < num_rects; ++r) {
            const uint32_t a = rect_args + 5 * r;
            const uint64_t data_mcast_addr = get_noc_multicast_addr(
                get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                get_arg_val<uint32_t>(a + 3), block_addr);
            noc_async_write_multicast(block_addr, data_mcast_addr, block_bytes, get_arg_val<uint32_t>(a + 4));
        }
#ifdef ARCH_BLACKHOLE
        noc_async_writes_flushed();
#endif
        for (uint32_t r = 0; r < num_rects; ++r) {
            const uint32_t a = rect_args + 5 * r;
            const uint64_t flag_mcast_addr = get_noc_multicast_addr(
                get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                get_arg_val<uint32_t>(a + 3), receiver_sem_addr);
            noc_semaphore_set_multicast(receiver_sem_addr, flag_mcast_addr, get_arg_val<uint32_t>(a + 4));
        }

        cb_push_back(cb_in1, block_num_tiles);
    }

    // Output: sub-blocks arrive in the order the compute kernel packs them.
    uint32_t subblock_row_start = out_start_tile;
    for (uint32_t sbh = 0; sbh < out_num_subblocks_h; ++sbh) {
        uint32_t subblock_start = subblock_row_start;
        for (uint32_t sbw = 0; sbw < out_num_subblocks_w; ++sbw) {
            cb_wait_front(cb_out, out_subblock_tiles);
            uint32_t l1_addr = get_read_ptr(cb_out);
            uint32_t row_start = subblock_start;
            for (uint32_t h = 0; h < out_subblock_h; ++h) {
                uint32_t tile = row_start;
                for (uint32_t w = 0; w < out_subblock_w; ++w) {
                    noc_async_write_tile(tile, out, l1_addr);
                    l1_addr += out_tile_bytes;
                    tile += out_stride_w;
                }
                row_start += out_stride_h;
            }
            noc_async_write_barrier();
            cb_pop_front(cb_out, out_subblock_tiles);
            subblock_start += out_next_subblock_stride_w;
        }
        subblock_row_start += out_next_subblock_stride_h;
    }
}
