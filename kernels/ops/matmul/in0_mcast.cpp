// Matmul op, in0 (activations) reader on RISCV_1. Built twice:
// - with IN0_SENDER (left column of the core grid): for each chunk and K block it reads its row
//   band's in0 block (chunk_m x in0_block_w tiles) from DRAM into CB 0 (tile rows past the band's
//   valid rows repeat the last valid row: those outputs are computed and never written), waits
//   until every receiver of its row has reserved the space, multicasts the block and then the
//   VALID flag (tt-safe McastPlan handshake), and pushes the block to its own compute. A plan
//   with no receivers (one-column grid) only reads.
// - without (every other core): reserve, flag INVALID, increment the sender's semaphore, wait for
//   VALID, push.
//
// Sender compile-time args: TensorAccessorArgs of in0.
// Sender runtime args: 0 in0_addr, 1 kt (tiles per in0 row), 2 first_row, 3 core_rows,
//   4 chunk_m, 5 num_chunks, 6 in0_block_w, 7 num_blocks,
//   8.. McastPlan sender args: sender_sem_id, receiver_sem_id, total_num_dests, num_rects, then
//   per rectangle noc_start_x, noc_start_y, noc_end_x, noc_end_y, num_dests.
// Receiver runtime args: 0 block_num_tiles, 1 num_blocks (all chunks), 2..5 McastPlan receiver
//   args: sender_noc_x, sender_noc_y, sender_sem_id, receiver_sem_id.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;
#ifndef IN0_SENDER
constexpr uint32_t kInvalid = 0;
#endif
}  // namespace

void kernel_main() {
    constexpr uint32_t cb_in0 = 0;
#ifdef IN0_SENDER
    const uint32_t in0_addr = get_arg_val<uint32_t>(0);
    const uint32_t kt = get_arg_val<uint32_t>(1);
    const uint32_t first_row = get_arg_val<uint32_t>(2);
    const uint32_t core_rows = get_arg_val<uint32_t>(3);
    const uint32_t chunk_m = get_arg_val<uint32_t>(4);
    const uint32_t num_chunks = get_arg_val<uint32_t>(5);
    const uint32_t in0_block_w = get_arg_val<uint32_t>(6);
    const uint32_t num_blocks = get_arg_val<uint32_t>(7);
    constexpr uint32_t plan = 8;
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 1));
    const uint32_t total_num_dests = get_arg_val<uint32_t>(plan + 2);
    const uint32_t num_rects = get_arg_val<uint32_t>(plan + 3);
    constexpr uint32_t rect_args = plan + 4;

    const uint32_t tile_bytes = get_tile_size(cb_in0);
    constexpr auto in0_args = TensorAccessorArgs<0>();
    const auto in0 = TensorAccessor(in0_args, in0_addr, tile_bytes);
    const uint32_t block_num_tiles = chunk_m * in0_block_w;

    volatile tt_l1_ptr uint32_t* sender_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem_addr);
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    noc_semaphore_set(receiver_sem, kValid);

    for (uint32_t chunk = 0; chunk < num_chunks; ++chunk) {
        for (uint32_t block = 0; block < num_blocks; ++block) {
            cb_reserve_back(cb_in0, block_num_tiles);
            const uint32_t block_addr = get_write_ptr(cb_in0);
            uint32_t l1_addr = block_addr;
            for (uint32_t h = 0; h < chunk_m; ++h) {
                uint32_t r = chunk * chunk_m + h;
                if (r >= core_rows) {
                    r = core_rows - 1;
                }
                uint32_t tile = (first_row + r) * kt + block * in0_block_w;
                for (uint32_t w = 0; w < in0_block_w; ++w) {
                    noc_async_read_tile(tile, in0, l1_addr);
                    l1_addr += tile_bytes;
                    ++tile;
                }
            }
            noc_async_read_barrier();

            if (num_rects > 0) {
                noc_semaphore_wait(sender_sem, total_num_dests);
                noc_semaphore_set(sender_sem, 0);
                const uint32_t block_bytes = block_num_tiles * tile_bytes;
                for (uint32_t i = 0; i < num_rects; ++i) {
                    const uint32_t a = rect_args + 5 * i;
                    const uint64_t data_addr = get_noc_multicast_addr(
                        get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                        get_arg_val<uint32_t>(a + 3), block_addr);
                    noc_async_write_multicast(block_addr, data_addr, block_bytes, get_arg_val<uint32_t>(a + 4));
                }
#ifdef ARCH_BLACKHOLE
                noc_async_writes_flushed();
#endif
                for (uint32_t i = 0; i < num_rects; ++i) {
                    const uint32_t a = rect_args + 5 * i;
                    const uint64_t flag_addr = get_noc_multicast_addr(
                        get_arg_val<uint32_t>(a), get_arg_val<uint32_t>(a + 1), get_arg_val<uint32_t>(a + 2),
                        get_arg_val<uint32_t>(a + 3), receiver_sem_addr);
                    noc_semaphore_set_multicast(receiver_sem_addr, flag_addr, get_arg_val<uint32_t>(a + 4));
                }
            }
            cb_push_back(cb_in0, block_num_tiles);
        }
    }
    noc_async_write_barrier();
#else
    const uint32_t block_num_tiles = get_arg_val<uint32_t>(0);
    const uint32_t num_blocks = get_arg_val<uint32_t>(1);
    const uint32_t sender_noc_x = get_arg_val<uint32_t>(2);
    const uint32_t sender_noc_y = get_arg_val<uint32_t>(3);
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(4));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(5));
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    const uint64_t sender_sem_noc_addr = get_noc_addr(sender_noc_x, sender_noc_y, sender_sem_addr);
    for (uint32_t block = 0; block < num_blocks; ++block) {
        cb_reserve_back(cb_in0, block_num_tiles);
        noc_semaphore_set(receiver_sem, kInvalid);
        noc_semaphore_inc(sender_sem_noc_addr, 1);
        noc_semaphore_wait(receiver_sem, kValid);
        cb_push_back(cb_in0, block_num_tiles);
    }
    noc_async_atomic_barrier();
#endif
}
