// Matmul op, in1 (weights) reader + bias reader + output writer on RISCV_0. Built twice:
// - with IN1_SENDER (top row of the core grid): per K block it reads its column band's in1 block
//   (in0_block_w x per_core_n tiles; columns past the band's valid columns repeat the last valid
//   one) into CB 1, waits until every receiver below has reserved the space, multicasts the block
//   and the VALID flag down the column (tt-safe McastPlan handshake) and pushes it to its own
//   compute. With `resident` the whole K band is sent once (first chunk) and reused.
// - without (every other core): reserve, flag INVALID, increment the sender's semaphore, wait for
//   VALID, push, once per block the sender sends.
// Both first read this core's bias tiles (one per output column tile) into CB 2 when has_bias,
// and after each chunk's compute write the valid output tiles (CB 16, sub-block by sub-block in
// the order the compute packs them) to DRAM; tiles past the valid rows/columns are dropped.
//
// Compile-time args: sender: TensorAccessorArgs of in1, bias, out; receiver: of bias, out.
// Runtime args (both): 0 nt (tiles per in1/out row), 1 first_col, 2 core_cols, 3 per_core_n,
//   4 in0_block_w, 5 num_blocks, 6 num_chunks, 7 resident, 8 has_bias, 9 bias_addr, 10 out_addr,
//   11 first_row, 12 core_rows, 13 chunk_m, 14 out_subblock_h, 15 out_subblock_w, 16 in1_addr,
//   17.. sender: McastPlan sender args (sender_sem_id, receiver_sem_id, total_num_dests,
//   num_rects, then 5 words per rectangle); receiver: McastPlan receiver args (sender_noc_x,
//   sender_noc_y, sender_sem_id, receiver_sem_id).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;
#ifndef IN1_SENDER
constexpr uint32_t kInvalid = 0;
#endif
}  // namespace

void kernel_main() {
    const uint32_t nt = get_arg_val<uint32_t>(0);
    const uint32_t first_col = get_arg_val<uint32_t>(1);
    const uint32_t core_cols = get_arg_val<uint32_t>(2);
    const uint32_t per_core_n = get_arg_val<uint32_t>(3);
    const uint32_t in0_block_w = get_arg_val<uint32_t>(4);
    const uint32_t num_blocks = get_arg_val<uint32_t>(5);
    const uint32_t num_chunks = get_arg_val<uint32_t>(6);
    const bool resident = get_arg_val<uint32_t>(7) != 0;
    const bool has_bias = get_arg_val<uint32_t>(8) != 0;
    const uint32_t bias_addr = get_arg_val<uint32_t>(9);
    const uint32_t out_addr = get_arg_val<uint32_t>(10);
    const uint32_t first_row = get_arg_val<uint32_t>(11);
    const uint32_t core_rows = get_arg_val<uint32_t>(12);
    const uint32_t chunk_m = get_arg_val<uint32_t>(13);
    const uint32_t out_subblock_h = get_arg_val<uint32_t>(14);
    const uint32_t out_subblock_w = get_arg_val<uint32_t>(15);
    constexpr uint32_t plan = 17;

    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_bias = 2;
    constexpr uint32_t cb_out = 16;
    const uint32_t in1_tile_bytes = get_tile_size(cb_in1);
    const uint32_t bias_tile_bytes = get_tile_size(cb_bias);
    const uint32_t out_tile_bytes = get_tile_size(cb_out);
    const uint32_t block_num_tiles = in0_block_w * per_core_n;
#ifdef IN1_SENDER
    const uint32_t in1_addr = get_arg_val<uint32_t>(16);
    constexpr auto in1_args = TensorAccessorArgs<0>();
    constexpr auto bias_args = TensorAccessorArgs<in1_args.next_compile_time_args_offset()>();
    const auto in1 = TensorAccessor(in1_args, in1_addr, in1_tile_bytes);
#else
    constexpr auto bias_args = TensorAccessorArgs<0>();
#endif
    constexpr auto out_args = TensorAccessorArgs<bias_args.next_compile_time_args_offset()>();
    const auto bias = TensorAccessor(bias_args, bias_addr, bias_tile_bytes);
    const auto out = TensorAccessor(out_args, out_addr, out_tile_bytes);

    if (has_bias) {
        cb_reserve_back(cb_bias, per_core_n);
        uint32_t l1_addr = get_write_ptr(cb_bias);
        for (uint32_t c = 0; c < per_core_n; ++c) {
            const uint32_t col = c < core_cols ? c : core_cols - 1;
            noc_async_read_tile(first_col + col, bias, l1_addr);
            l1_addr += bias_tile_bytes;
        }
        noc_async_read_barrier();
        cb_push_back(cb_bias, per_core_n);
    }

#ifdef IN1_SENDER
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 1));
    const uint32_t total_num_dests = get_arg_val<uint32_t>(plan + 2);
    const uint32_t num_rects = get_arg_val<uint32_t>(plan + 3);
    constexpr uint32_t rect_args = plan + 4;
    volatile tt_l1_ptr uint32_t* sender_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(sender_sem_addr);
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    noc_semaphore_set(receiver_sem, kValid);
#else
    const uint32_t sender_noc_x = get_arg_val<uint32_t>(plan);
    const uint32_t sender_noc_y = get_arg_val<uint32_t>(plan + 1);
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 2));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(plan + 3));
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    const uint64_t sender_sem_noc_addr = get_noc_addr(sender_noc_x, sender_noc_y, sender_sem_addr);
#endif

    for (uint32_t chunk = 0; chunk < num_chunks; ++chunk) {
        if (chunk == 0 || !resident) {
            for (uint32_t block = 0; block < num_blocks; ++block) {
                cb_reserve_back(cb_in1, block_num_tiles);
#ifdef IN1_SENDER
                const uint32_t block_addr = get_write_ptr(cb_in1);
                uint32_t l1_addr = block_addr;
                for (uint32_t h = 0; h < in0_block_w; ++h) {
                    const uint32_t row = block * in0_block_w + h;
                    for (uint32_t c = 0; c < per_core_n; ++c) {
                        const uint32_t col = c < core_cols ? c : core_cols - 1;
                        noc_async_read_tile(row * nt + first_col + col, in1, l1_addr);
                        l1_addr += in1_tile_bytes;
                    }
                }
                noc_async_read_barrier();
                if (num_rects > 0) {
                    noc_semaphore_wait(sender_sem, total_num_dests);
                    noc_semaphore_set(sender_sem, 0);
                    const uint32_t block_bytes = block_num_tiles * in1_tile_bytes;
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
#else
                noc_semaphore_set(receiver_sem, kInvalid);
                noc_semaphore_inc(sender_sem_noc_addr, 1);
                noc_semaphore_wait(receiver_sem, kValid);
#endif
                cb_push_back(cb_in1, block_num_tiles);
            }
        }

        // This chunk's output, sub-block by sub-block.
        const uint32_t num_sbh = chunk_m / out_subblock_h;
        const uint32_t num_sbw = per_core_n / out_subblock_w;
        const uint32_t subblock_tiles = out_subblock_h * out_subblock_w;
        for (uint32_t sbh = 0; sbh < num_sbh; ++sbh) {
            for (uint32_t sbw = 0; sbw < num_sbw; ++sbw) {
                cb_wait_front(cb_out, subblock_tiles);
                uint32_t l1_addr = get_read_ptr(cb_out);
                for (uint32_t h = 0; h < out_subblock_h; ++h) {
                    const uint32_t r = chunk * chunk_m + sbh * out_subblock_h + h;
                    for (uint32_t w = 0; w < out_subblock_w; ++w) {
                        const uint32_t c = sbw * out_subblock_w + w;
                        if (r < core_rows && c < core_cols) {
                            noc_async_write_tile((first_row + r) * nt + first_col + c, out, l1_addr);
                        }
                        l1_addr += out_tile_bytes;
                    }
                }
                noc_async_write_barrier();
                cb_pop_front(cb_out, subblock_tiles);
            }
        }
    }
#ifdef IN1_SENDER
    noc_async_write_barrier();
#else
    noc_async_atomic_barrier();
#endif
}
