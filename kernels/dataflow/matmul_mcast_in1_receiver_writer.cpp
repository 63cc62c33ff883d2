// Multicast matmul, in1 (weights) receiver + output writer: every core below the top row. Per K
// block: reserve CB 1, mark its own flag INVALID, increment the column sender's semaphore, wait
// for VALID, push. Then it writes this core's output block (CB 16) to DRAM, sub-block by
// sub-block.
//
// Compile-time args: TensorAccessorArgs of the output (2 words).
// Runtime args: 0 block_num_tiles, 1 num_blocks,
//   2..5 multicast receiver plan: sender_noc_x, sender_noc_y, sender_semaphore_id,
//        receiver_semaphore_id,
//   6 out_addr, 7 out_start_tile, 8 out_stride_w, 9 out_stride_h,
//   10 out_next_subblock_stride_w, 11 out_next_subblock_stride_h,
//   12 out_subblock_w, 13 out_subblock_h, 14 out_subblock_tiles,
//   15 out_num_subblocks_w, 16 out_num_subblocks_h.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;    // hostdevcommon VALID
constexpr uint32_t kInvalid = 0;  // hostdevcommon INVALID
}

void kernel_main() {
    const uint32_t block_num_tiles = get_arg_val<uint32_t>(0);
    const uint32_t num_blocks = get_arg_val<uint32_t>(1);
    const uint32_t sender_noc_x = get_arg_val<uint32_t>(2);
    const uint32_t sender_noc_y = get_arg_val<uint32_t>(3);
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(4));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(5));

    const uint32_t out_addr = get_arg_val<uint32_t>(6);
    const uint32_t out_start_tile = get_arg_val<uint32_t>(7);
    const uint32_t out_stride_w = get_arg_val<uint32_t>(8);
    const uint32_t out_stride_h = get_arg_val<uint32_t>(9);
    const uint32_t out_next_subblock_stride_w = get_arg_val<uint32_t>(10);
    const uint32_t out_next_subblock_stride_h = get_arg_val<uint32_t>(11);
    const uint32_t out_subblock_w = get_arg_val<uint32_t>(12);
    const uint32_t out_subblock_h = get_arg_val<uint32_t>(13);
    const uint32_t out_subblock_tiles = get_arg_val<uint32_t>(14);
    const uint32_t out_num_subblocks_w = get_arg_val<uint32_t>(15);
    const uint32_t out_num_subblocks_h = get_arg_val<uint32_t>(16);

    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_out = 16;
    const uint32_t out_tile_bytes = get_tile_size(cb_out);
    constexpr auto out_args = TensorAccessorArgs<0>();
    const auto out = TensorAccessor(out_args, out_addr, out_tile_bytes);

    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    const uint64_t sender_sem_noc_addr = get_noc_addr(sender_noc_x, sender_noc_y, sender_sem_addr);

    for (uint32_t block = 0; block < num_blocks; ++block) {
        cb_reserve_back(cb_in1, block_num_tiles);
        noc_semaphore_set(receiver_sem, kInvalid);
        noc_semaphore_inc(sender_sem_noc_addr, 1);
        noc_semaphore_wait(receiver_sem, kValid);
        cb_push_back(cb_in1, block_num_tiles);
    }
    noc_async_atomic_barrier();

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
