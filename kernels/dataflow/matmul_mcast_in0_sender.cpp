// Multicast matmul, in0 (activations) sender: runs on the left column of the core grid. For each
// of the `num_blocks` K blocks it reads its row band's in0 block (block_h x block_w tiles) from
// DRAM into CB 0, waits until every receiver in its row has reserved space (they increment the
// sender semaphore), multicasts the block to the same CB address on the receivers, then
// multicasts the VALID flag onto their receiver semaphore, and finally pushes the block to its
// own compute kernel. The receivers may span several NoC rectangles (a logical row can cross a
// NoC column without workers); the host's multicast plan gives each rectangle with its corners
// already ordered for this kernel's NoC and its own num_dests.
//
// Compile-time args: TensorAccessorArgs of in0 (2 words).
// Runtime args:
//   0 in0_addr, 1 start_tile, 2 stride_w, 3 stride_h, 4 next_block_stride,
//   5 block_w, 6 block_h, 7 block_num_tiles, 8 num_blocks,
//   9.. multicast sender plan: sender_semaphore_id, receiver_semaphore_id, total_num_dests,
//       num_rects, then per rectangle noc_start_x, noc_start_y, noc_end_x, noc_end_y, num_dests.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;  // hostdevcommon VALID
}

void kernel_main() {
    const uint32_t in0_addr = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t stride_w = get_arg_val<uint32_t>(2);
    const uint32_t stride_h = get_arg_val<uint32_t>(3);
    const uint32_t next_block_stride = get_arg_val<uint32_t>(4);
    const uint32_t block_w = get_arg_val<uint32_t>(5);
    const uint32_t block_h = get_arg_val<uint32_t>(6);
    const uint32_t block_num_tiles = get_arg_val<uint32_t>(7);
    const uint32_t num_blocks = get_arg_val<uint32_t>(8);
    constexpr uint32_t plan = 9;
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 1));
    const uint32_t total_num_dests = get_arg_val<uint32_t>(plan + 2);
    const uint32_t num_rects = get_arg_val<uint32_t>(plan + 3);
    constexpr uint32_t rect_args = plan + 4;

    constexpr uint32_t cb_in0 = 0;
    const uint32_t tile_bytes = get_tile_size(cb_in0);
    constexpr auto in0_args = TensorAccessorArgs<0>();
    const auto in0 = TensorAccessor(in0_args, in0_addr, tile_bytes);

    volatile tt_l1_ptr uint32_t* sender_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem_addr);
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    // The local copy of the flag is the source of the flag multicast.
    noc_semaphore_set(receiver_sem, kValid);

    uint32_t block_start = start_tile;
    for (uint32_t block = 0; block < num_blocks; ++block) {
        cb_reserve_back(cb_in0, block_num_tiles);
        const uint32_t block_addr = get_write_ptr(cb_in0);
        uint32_t l1_addr = block_addr;
        uint32_t row_start = block_start;
        for (uint32_t h = 0; h < block_h; ++h) {
            uint32_t tile = row_start;
            for (uint32_t w = 0; w < block_w; ++w) {
                noc_async_read_tile(tile, in0, l1_addr);
                l1_addr += tile_bytes;
                tile += stride_w;
            }
            row_start += stride_h;
        }
        block_start += next_block_stride;
        noc_async_read_barrier();

        // Every receiver has reserved the CB space this block lands in.
        noc_semaphore_wait(sender_sem, total_num_dests);
        noc_semaphore_set(sender_sem, 0);

        const uint32_t block_bytes = block_num_tiles * tile_bytes;
        for (uint32_t r = 0; r < num_rects; ++r) {
            const uint32_t a = rect_args + 5 * r;
            const uint64_t data_mcast_addr = get_noc_multicast_addr(
                get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                get_arg_val<uint32_t>(a + 3), block_addr);
            noc_async_write_multicast(block_addr, data_mcast_addr, block_bytes, get_arg_val<uint32_t>(a + 4));
        }
#ifdef ARCH_BLACKHOLE
        // Blackhole may reorder commands issued from different command buffers: flush the data first.
        noc_async_writes_flushed();
#endif
        // The flag follows the data on the same NoC and virtual channel.
        for (uint32_t r = 0; r < num_rects; ++r) {
            const uint32_t a = rect_args + 5 * r;
            const uint64_t flag_mcast_addr = get_noc_multicast_addr(
                get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                get_arg_val<uint32_t>(a + 3), receiver_sem_addr);
            noc_semaphore_set_multicast(receiver_sem_addr, flag_mcast_addr, get_arg_val<uint32_t>(a + 4));
        }

        cb_push_back(cb_in0, block_num_tiles);
    }
    noc_async_write_barrier();
}
