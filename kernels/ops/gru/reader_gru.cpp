// GRU recurrence, reader (RISCV_0) of core k of the persistent multi-core kernel.
//
// 1. Loads this core's slice of W_hh^T (a [H, 3H] tiled matrix, tile columns r | z | n): tiles
//    (kt, g * Ht + k) for kt < Ht, g < 3, pushed to `cb_w` as index kt * 3 + g, resident for the
//    whole sequence; and the 4 bias tiles (a [32, 4H] tiled matrix: b_ir + b_hr | b_iz + b_hz |
//    b_in | b_hn, every row the same) tiles q * Ht + k.
// 2. h storage is `cb_h` (2 * Ht tiles: slot t % 2 holds h_t). Its base address is published in
//    the local `mailbox` semaphore for the writer, which exchanges the new h tiles with all cores
//    (every core writes its tile k of h_{t+1} into slot (t + 1) % 2 of every core and increments
//    each core's `recv` semaphore of that parity: one counter per parity, so a core that is one
//    step ahead never touches the counter another core is waiting on). h_0 comes from DRAM (or
//    zeros).
// 3. Per step t: composes the 3 gx tiles (rows b < B are rows t * B + b of the input projection
//    Gx, a [T * B, 3H] tiled bf16 matrix; other rows zero) into `cb_gx`, then waits until every
//    core's tile of h_{t+1} has arrived (recv[(t+1) % 2] >= ncores * ((t + 2) / 2)) and pushes
//    that slot.
//
// A tile row r is two 32-byte runs (faces 2 * (r / 16) and + 1); runs are fetched as the 64-byte
// aligned chunk that holds them (DRAM alignment 32 B Wormhole, 64 B Blackhole).
//
// Compile-time args: TensorAccessorArgs of W (2 words), Gx, bias, h0; then Ht, B, ncores,
//   has_h0, even recv semaphore id, mailbox semaphore id, cb_w, cb_h, cb_gx, cb_bias, cb_scratch,
//   odd recv semaphore id.
// Runtime args: w_addr, gx_addr, bias_addr, h0_addr, num_steps, k.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kChunk = 64;
inline uint32_t row_offset(uint32_t r) { return ((r / 16) * 512 + (r % 16) * 16) * 2; }
inline void zero_l1(uint32_t addr, uint32_t bytes) {
    volatile tt_l1_ptr uint32_t* p = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(addr);
    for (uint32_t i = 0; i < bytes / 4; ++i) {
        p[i] = 0;
    }
}
}  // namespace

void kernel_main() {
    const uint32_t w_addr = get_arg_val<uint32_t>(0);
    const uint32_t gx_addr = get_arg_val<uint32_t>(1);
    const uint32_t bias_addr = get_arg_val<uint32_t>(2);
    const uint32_t h0_addr = get_arg_val<uint32_t>(3);
    const uint32_t num_steps = get_arg_val<uint32_t>(4);
    const uint32_t k = get_arg_val<uint32_t>(5);

    constexpr auto w_args = TensorAccessorArgs<0>();
    constexpr auto gx_args = TensorAccessorArgs<w_args.next_compile_time_args_offset()>();
    constexpr auto bias_args = TensorAccessorArgs<gx_args.next_compile_time_args_offset()>();
    constexpr auto h0_args = TensorAccessorArgs<bias_args.next_compile_time_args_offset()>();
    constexpr uint32_t c = h0_args.next_compile_time_args_offset();
    constexpr uint32_t Ht = get_compile_time_arg_val(c);
    constexpr uint32_t B = get_compile_time_arg_val(c + 1);
    constexpr uint32_t ncores = get_compile_time_arg_val(c + 2);
    constexpr uint32_t has_h0 = get_compile_time_arg_val(c + 3);
    constexpr uint32_t sem_recv = get_compile_time_arg_val(c + 4);
    constexpr uint32_t sem_mailbox = get_compile_time_arg_val(c + 5);
    constexpr uint32_t cb_w = get_compile_time_arg_val(c + 6);
    constexpr uint32_t cb_h = get_compile_time_arg_val(c + 7);
    constexpr uint32_t cb_gx = get_compile_time_arg_val(c + 8);
    constexpr uint32_t cb_bias = get_compile_time_arg_val(c + 9);
    constexpr uint32_t cb_scratch = get_compile_time_arg_val(c + 10);
    constexpr uint32_t sem_recv_odd = get_compile_time_arg_val(c + 11);

    const uint32_t w_tile = get_tile_size(cb_w);
    const uint32_t tile = get_tile_size(cb_h);  // bf16 (h, gx, bias)
    const auto w = TensorAccessor(w_args, w_addr, w_tile);
    const auto gx = TensorAccessor(gx_args, gx_addr, tile);
    const auto bias = TensorAccessor(bias_args, bias_addr, tile);
    const auto h0 = TensorAccessor(h0_args, h0_addr, tile);

    // 1. Resident weights and biases.
    cb_reserve_back(cb_w, 3 * Ht);
    {
        uint32_t l1 = get_write_ptr(cb_w);
        for (uint32_t kt = 0; kt < Ht; ++kt) {
            for (uint32_t g = 0; g < 3; ++g) {
                noc_async_read_tile(kt * 3 * Ht + g * Ht + k, w, l1);
                l1 += w_tile;
            }
        }
        noc_async_read_barrier();
    }
    cb_push_back(cb_w, 3 * Ht);
    cb_reserve_back(cb_bias, 4);
    for (uint32_t q = 0; q < 4; ++q) {
        noc_async_read_tile(q * Ht + k, bias, get_write_ptr(cb_bias) + q * tile);
    }
    noc_async_read_barrier();
    cb_push_back(cb_bias, 4);

    // 2. h_0 into slot 0; publish the h storage base to the writer.
    cb_reserve_back(cb_h, Ht);
    const uint32_t h_base = get_write_ptr(cb_h);
    if constexpr (has_h0 != 0) {
        for (uint32_t kt = 0; kt < Ht; ++kt) {
            noc_async_read_tile(kt, h0, h_base + kt * tile);
        }
        noc_async_read_barrier();
    } else {
        zero_l1(h_base, Ht * tile);
    }
    *reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(sem_mailbox)) = h_base;
    cb_push_back(cb_h, Ht);

    cb_reserve_back(cb_scratch, 1);
    const uint32_t chunk_l1 = get_write_ptr(cb_scratch);
    volatile tt_l1_ptr uint32_t* recv_even =
        reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(sem_recv));
    volatile tt_l1_ptr uint32_t* recv_odd =
        reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_semaphore(sem_recv_odd));

    // 3. The sequence.
    for (uint32_t t = 0; t < num_steps; ++t) {
        cb_reserve_back(cb_gx, 3);
        const uint32_t gx_l1 = get_write_ptr(cb_gx);
        zero_l1(gx_l1, 3 * tile);
        for (uint32_t b = 0; b < B; ++b) {
            const uint32_t row = t * B + b;
            const uint32_t off = row_offset(row % 32);
            const uint32_t aligned = off & ~(kChunk - 1);
            for (uint32_t g = 0; g < 3; ++g) {
                const uint32_t page = (row / 32) * 3 * Ht + g * Ht + k;
                noc_async_read(gx.get_noc_addr(page, aligned), chunk_l1, kChunk);
                noc_async_read(gx.get_noc_addr(page, aligned + 512), chunk_l1 + kChunk, kChunk);
                noc_async_read_barrier();
                volatile tt_l1_ptr uint32_t* c0 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(chunk_l1 + (off - aligned));
                volatile tt_l1_ptr uint32_t* c1 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(chunk_l1 + kChunk + (off - aligned));
                volatile tt_l1_ptr uint32_t* d0 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(gx_l1 + g * tile + row_offset(b));
                volatile tt_l1_ptr uint32_t* d1 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(gx_l1 + g * tile + row_offset(b) + 512);
                for (uint32_t i = 0; i < 8; ++i) {
                    d0[i] = c0[i];
                    d1[i] = c1[i];
                }
            }
        }
        cb_push_back(cb_gx, 3);

        if (t + 1 < num_steps) {
            cb_reserve_back(cb_h, Ht);
            // h_{t+1} is counted on the semaphore of its parity: (t + 2) / 2 rounds of ncores.
            const uint32_t s = t + 1;
            noc_semaphore_wait_min((s % 2) != 0 ? recv_odd : recv_even, ncores * ((s + 1) / 2));
            cb_push_back(cb_h, Ht);
        }
    }
}
