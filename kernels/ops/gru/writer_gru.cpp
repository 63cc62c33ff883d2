// GRU recurrence, writer (RISCV_1) of core k of the persistent multi-core kernel.
//
// Per step t it takes the new hidden tile k of h_{t+1} from `cb_hout` and
// 1. (if another step follows) writes it over the NoC into slot (t + 1) % 2, tile k, of the h
//    storage of every core of the recurrence (itself included; the storage is the reader's
//    `cb_h`, at the same L1 address on every core, published by the reader in the `mailbox`
//    semaphore), waits for the writes, then increments every core's `recv` semaphore of the
//    parity of t + 1;
// 2. copies its rows b < B into output rows t * B + b of the [T * B, H] tiled output (tile
//    column k), staged in one L1 tile that is written to DRAM when its 32 rows are complete (or
//    at the end of the sequence).
//
// Compile-time args: TensorAccessorArgs of the output (2 words); then Ht, B, ncores,
//   even recv semaphore id, mailbox semaphore id, cb_hout, cb_stage, odd recv semaphore id.
// Runtime args: out_addr, num_steps, k, then ncores (noc_x, noc_y) pairs.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
inline uint32_t row_offset(uint32_t r) { return ((r / 16) * 512 + (r % 16) * 16) * 2; }
inline void zero_l1(uint32_t addr, uint32_t bytes) {
    volatile tt_l1_ptr uint32_t* p = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(addr);
    for (uint32_t i = 0; i < bytes / 4; ++i) {
        p[i] = 0;
    }
}
}  // namespace

void kernel_main() {
    const uint32_t out_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_steps = get_arg_val<uint32_t>(1);
    const uint32_t k = get_arg_val<uint32_t>(2);

    constexpr auto out_args = TensorAccessorArgs<0>();
    constexpr uint32_t c = out_args.next_compile_time_args_offset();
    constexpr uint32_t Ht = get_compile_time_arg_val(c);
    constexpr uint32_t B = get_compile_time_arg_val(c + 1);
    constexpr uint32_t ncores = get_compile_time_arg_val(c + 2);
    constexpr uint32_t sem_recv = get_compile_time_arg_val(c + 3);
    constexpr uint32_t sem_mailbox = get_compile_time_arg_val(c + 4);
    constexpr uint32_t cb_hout = get_compile_time_arg_val(c + 5);
    constexpr uint32_t cb_stage = get_compile_time_arg_val(c + 6);
    constexpr uint32_t sem_recv_odd = get_compile_time_arg_val(c + 7);

    const uint32_t tile = get_tile_size(cb_hout);
    const auto out = TensorAccessor(out_args, out_addr, tile);
    const uint32_t recv_even = get_semaphore(sem_recv);
    const uint32_t recv_odd = get_semaphore(sem_recv_odd);

    volatile tt_l1_ptr uint32_t* mailbox =
        reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(sem_mailbox));
    while (*mailbox == 0) {
        invalidate_l1_cache();
    }
    const uint32_t h_base = *mailbox;

    cb_reserve_back(cb_stage, 1);
    const uint32_t stage = get_write_ptr(cb_stage);
    zero_l1(stage, tile);

    const uint32_t total_rows = num_steps * B;
    for (uint32_t t = 0; t < num_steps; ++t) {
        cb_wait_front(cb_hout, 1);
        const uint32_t h_l1 = get_read_ptr(cb_hout);
        if (t + 1 < num_steps) {
            const uint32_t dst = h_base + ((t + 1) % 2) * Ht * tile + k * tile;
            for (uint32_t i = 0; i < ncores; ++i) {
                const uint32_t x = get_arg_val<uint32_t>(3 + 2 * i);
                const uint32_t y = get_arg_val<uint32_t>(4 + 2 * i);
                noc_async_write(h_l1, get_noc_addr(x, y, dst), tile);
            }
            noc_async_write_barrier();
            const uint32_t recv_addr = ((t + 1) % 2) != 0 ? recv_odd : recv_even;
            for (uint32_t i = 0; i < ncores; ++i) {
                const uint32_t x = get_arg_val<uint32_t>(3 + 2 * i);
                const uint32_t y = get_arg_val<uint32_t>(4 + 2 * i);
                noc_semaphore_inc(get_noc_addr(x, y, recv_addr), 1);
            }
            noc_async_atomic_barrier();
        }
        for (uint32_t b = 0; b < B; ++b) {
            const uint32_t row = t * B + b;
            volatile tt_l1_ptr uint32_t* s0 =
                reinterpret_cast<volatile tt_l1_ptr uint32_t*>(h_l1 + row_offset(b));
            volatile tt_l1_ptr uint32_t* s1 =
                reinterpret_cast<volatile tt_l1_ptr uint32_t*>(h_l1 + row_offset(b) + 512);
            volatile tt_l1_ptr uint32_t* d0 =
                reinterpret_cast<volatile tt_l1_ptr uint32_t*>(stage + row_offset(row % 32));
            volatile tt_l1_ptr uint32_t* d1 =
                reinterpret_cast<volatile tt_l1_ptr uint32_t*>(stage + row_offset(row % 32) + 512);
            for (uint32_t i = 0; i < 8; ++i) {
                d0[i] = s0[i];
                d1[i] = s1[i];
            }
            if (row % 32 == 31 || row + 1 == total_rows) {
                noc_async_write_tile((row / 32) * Ht + k, out, stage);
                noc_async_write_barrier();
                zero_l1(stage, tile);
            }
        }
        cb_pop_front(cb_hout, 1);
    }
}
