// Conv / conv-transpose reader ("gather conv"): builds, on device, the row-shifted input tiles of a
// 1-D convolution from the time-major [T_in, C_in] bf16 or Float32 activation tiled in DRAM, plus the core's
// resident weight and bias tiles.
//
// The op is described as P phases x M taps. For output block B (32 rows of every phase) and phase p,
// tap m, input-channel tile c, the in0 tile row i (i < 32) holds input row
//     row = B * block_stride + off[p] + i * row_step + m * tap_step
// or zeros when row is outside [0, T_in) (this is the conv's zero padding and the sequence end: rows
// of the DRAM tiles beyond T_in are never read, whatever they hold).
//   conv1d:           P = 1, M = k, block_stride = 32 s, off = -pad_left, row_step = s, tap_step = d
//   conv_transpose1d: P = s (polyphase), M = ceil(k / s), block_stride = 32, row_step = 1,
//                     tap_step = -1, off[p] = phase start (see src/ops/conv_transpose.rs)
// Per block the reader fetches, per channel tile, the window of input tiles that covers every row
// any phase/tap needs (the slice plus its halo). With row_step 1 (stride-1 conv, every
// conv-transpose) it re-lays the window out as two column halves, each [rows, 16] contiguous
// (4 local NoC copies of 512 B per window tile): a shifted tile's face is then 16 consecutive
// half-rows, so an in0 tile whose 32 rows are all inside the sequence is 4 local 512-byte NoC
// copies. Tiles that touch the padding (or strided convs) copy 64-byte rows with the RISC's
// loads and stores, writing zeros outside [0, T_in).
//
// CBs: 0 in0 (input format, P*M*cin_t tiles per block), 1 weights (resident, P*M*cin_t*nb tiles,
// weight format), 2 bias (resident, nb tiles, rows replicated, bf16 or Float32), 3 window scratch
// (input format), 7 column-half staging of the window (input format, same size). The input is
// bf16 or Float32: the element size comes from CB 0's tile size.
//
// With a residual (conv only, P = 1) the reader also pushes, per block, the nb residual tiles
// (block, n0 + w) of the [T_out, C_out] residual tensor into CB 6.
//
// Compile-time args: TensorAccessorArgs of input, weights, bias, residual (in that order).
// Runtime args: 0 in_addr, 1 w_addr, 2 bias_addr, 3 t_in, 4 cin_t, 5 cout_t, 6 n0, 7 nb, 8 P, 9 M,
//   10 block_start, 11 block_end, 12 block_stride, 13 row_step, 14 tap_step (int32), 15 has_bias,
//   16 window capacity (tiles), 17.. off[p] (int32, P words), then residual_addr (0: none).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"
#include "debug/assert.h"

namespace {

// Tiles are bf16 (es = 2 bytes) or Float32 (es = 4): a face is 16 x 16 elements, a half-row
// (16 elements) 16 * es bytes.

// Byte offset of the first half (columns 0-15) of row r in a tile; the second half (columns
// 16-31) is one face later.
inline uint32_t row_offset(uint32_t r, uint32_t es) { return (r >> 4) * 2 * 256 * es + (r & 15) * 16 * es; }

inline void copy_row(uint32_t dst_tile, uint32_t dst_row, uint32_t src_tile, uint32_t src_row, uint32_t es) {
    volatile uint32_t* d = reinterpret_cast<volatile uint32_t*>(dst_tile + row_offset(dst_row, es));
    volatile uint32_t* s = reinterpret_cast<volatile uint32_t*>(src_tile + row_offset(src_row, es));
    const uint32_t words = 4 * es;
    const uint32_t face_words = 64 * es;
    for (uint32_t k = 0; k < words; ++k) {
        d[k] = s[k];
        d[k + face_words] = s[k + face_words];
    }
}

inline void zero_row(uint32_t dst_tile, uint32_t dst_row, uint32_t es) {
    volatile uint32_t* d = reinterpret_cast<volatile uint32_t*>(dst_tile + row_offset(dst_row, es));
    const uint32_t words = 4 * es;
    const uint32_t face_words = 64 * es;
    for (uint32_t k = 0; k < words; ++k) {
        d[k] = 0;
        d[k + face_words] = 0;
    }
}

}  // namespace

void kernel_main() {
    const uint32_t in_addr = get_arg_val<uint32_t>(0);
    const uint32_t w_addr = get_arg_val<uint32_t>(1);
    const uint32_t bias_addr = get_arg_val<uint32_t>(2);
    const int32_t t_in = get_arg_val<int32_t>(3);
    const uint32_t cin_t = get_arg_val<uint32_t>(4);
    const uint32_t cout_t = get_arg_val<uint32_t>(5);
    const uint32_t n0 = get_arg_val<uint32_t>(6);
    const uint32_t nb = get_arg_val<uint32_t>(7);
    const uint32_t P = get_arg_val<uint32_t>(8);
    const uint32_t M = get_arg_val<uint32_t>(9);
    const uint32_t block_start = get_arg_val<uint32_t>(10);
    const uint32_t block_end = get_arg_val<uint32_t>(11);
    const int32_t block_stride = get_arg_val<int32_t>(12);
    const int32_t row_step = get_arg_val<int32_t>(13);
    const int32_t tap_step = get_arg_val<int32_t>(14);
    const uint32_t has_bias = get_arg_val<uint32_t>(15);
    const int32_t window_cap = get_arg_val<int32_t>(16);

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_w = 1;
    constexpr uint32_t cb_bias = 2;
    constexpr uint32_t cb_win = 3;

    constexpr auto in_args = TensorAccessorArgs<0>();
    constexpr auto w_args = TensorAccessorArgs<in_args.next_compile_time_args_offset()>();
    constexpr auto b_args = TensorAccessorArgs<w_args.next_compile_time_args_offset()>();
    constexpr auto r_args = TensorAccessorArgs<b_args.next_compile_time_args_offset()>();
    constexpr uint32_t cb_res = 6;
    const uint32_t res_addr = get_arg_val<uint32_t>(17 + P);
    const uint32_t tile = get_tile_size(cb_in0);
    const uint32_t es = tile / 1024;  // bytes per element: 2 (bf16) or 4 (Float32)
    const uint32_t face_bytes = 256 * es;
    const uint32_t half_row = 16 * es;
    const uint32_t w_tile = get_tile_size(cb_w);
    const auto in = TensorAccessor(in_args, in_addr, tile);
    const auto wts = TensorAccessor(w_args, w_addr, w_tile);

    // Resident weights of this core's output-channel block, in the order the compute kernel
    // indexes them: slot ((p * M + m) * cin_t + c) * nb + w.
    const uint32_t n_w = P * M * cin_t * nb;
    cb_reserve_back(cb_w, n_w);
    uint32_t wp = get_write_ptr(cb_w);
    for (uint32_t pmc = 0; pmc < P * M * cin_t; ++pmc) {
        for (uint32_t w = 0; w < nb; ++w) {
            noc_async_read_tile(pmc * cout_t + n0 + w, wts, wp);
            wp += w_tile;
        }
        noc_async_read_barrier();
    }
    cb_push_back(cb_w, n_w);

    if (has_bias != 0) {
        const auto bias = TensorAccessor(b_args, bias_addr, get_tile_size(cb_bias));
        cb_reserve_back(cb_bias, nb);
        uint32_t bp = get_write_ptr(cb_bias);
        for (uint32_t w = 0; w < nb; ++w) {
            noc_async_read_tile(n0 + w, bias, bp);
            bp += get_tile_size(cb_bias);
        }
        noc_async_read_barrier();
        cb_push_back(cb_bias, nb);
    }

    // Relative row range any phase/tap of a block touches.
    int32_t off_min = get_arg_val<int32_t>(17);
    int32_t off_max = off_min;
    for (uint32_t p = 1; p < P; ++p) {
        const int32_t o = get_arg_val<int32_t>(17 + p);
        off_min = o < off_min ? o : off_min;
        off_max = o > off_max ? o : off_max;
    }
    const int32_t tap_span = static_cast<int32_t>(M - 1) * tap_step;
    const int32_t lo_rel = off_min + (tap_span < 0 ? tap_span : 0) + (row_step < 0 ? 31 * row_step : 0);
    const int32_t hi_rel = off_max + (tap_span > 0 ? tap_span : 0) + (row_step > 0 ? 31 * row_step : 0);

    // The window scratch and its staging are reserved once and used as plain L1 (never pushed).
    constexpr uint32_t cb_stage = 7;
    cb_reserve_back(cb_win, window_cap);
    const uint32_t win = get_write_ptr(cb_win);
    uint32_t stage = 0;
    const uint32_t half_bytes = static_cast<uint32_t>(window_cap) * 32 * half_row;  // [rows, 16]
    if (row_step == 1) {
        cb_reserve_back(cb_stage, window_cap);
        stage = get_write_ptr(cb_stage);
    }

    const uint32_t per_block = P * M * cin_t;
    for (uint32_t b = block_start; b < block_end; ++b) {
        const int32_t base = static_cast<int32_t>(b) * block_stride;
        int32_t lo = base + lo_rel;
        int32_t hi = base + hi_rel;
        lo = lo < 0 ? 0 : lo;
        hi = hi > t_in - 1 ? t_in - 1 : hi;
        const bool any = lo <= hi;
        const int32_t tlo = any ? lo / 32 : 0;
        const int32_t nwin = any ? hi / 32 - tlo + 1 : 0;
        // The host plans the window capacity from the same formula.
        ASSERT(nwin <= window_cap);

        cb_reserve_back(cb_in0, per_block);
        const uint32_t in0 = get_write_ptr(cb_in0);
        for (uint32_t c = 0; c < cin_t; ++c) {
            for (int32_t k = 0; k < nwin; ++k) {
                noc_async_read_tile(static_cast<uint32_t>(tlo + k) * cin_t + c, in, win + k * tile);
            }
            noc_async_read_barrier();
            if (row_step == 1) {
                // Face f of window tile k holds rows k*32 + (f/2)*16 .. +16 of column half f%2.
                for (int32_t k = 0; k < nwin; ++k) {
                    for (uint32_t f = 0; f < 4; ++f) {
                        const uint32_t src = win + k * tile + f * face_bytes;
                        const uint32_t dst = stage + (f & 1) * half_bytes +
                                             (static_cast<uint32_t>(k) * 32 + (f >> 1) * 16) * half_row;
                        noc_async_read(get_noc_addr(src), dst, face_bytes);
                    }
                }
                noc_async_read_barrier();
            }
            for (uint32_t p = 0; p < P; ++p) {
                const int32_t off = get_arg_val<int32_t>(17 + p);
                for (uint32_t m = 0; m < M; ++m) {
                    const uint32_t dst = in0 + ((p * M + m) * cin_t + c) * tile;
                    const int32_t row0 = base + off + static_cast<int32_t>(m) * tap_step;
                    if (row_step == 1 && row0 >= 0 && row0 + 31 < t_in) {
                        // 32 consecutive rows inside the sequence: 4 contiguous face copies.
                        const uint32_t local = static_cast<uint32_t>(row0 - tlo * 32);
                        for (uint32_t f = 0; f < 4; ++f) {
                            const uint32_t src = stage + (f & 1) * half_bytes + (local + (f >> 1) * 16) * half_row;
                            noc_async_read(get_noc_addr(src), dst + f * face_bytes, face_bytes);
                        }
                        continue;
                    }
                    for (uint32_t i = 0; i < 32; ++i) {
                        const int32_t row = row0 + static_cast<int32_t>(i) * row_step;
                        if (row >= 0 && row < t_in) {
                            const uint32_t src = win + static_cast<uint32_t>(row / 32 - tlo) * tile;
                            copy_row(dst, i, src, static_cast<uint32_t>(row % 32), es);
                        } else {
                            zero_row(dst, i, es);
                        }
                    }
                }
            }
            // The next channel tile overwrites the window and its staging.
            noc_async_read_barrier();
        }
        noc_async_read_barrier();
        cb_push_back(cb_in0, per_block);

        if (res_addr != 0) {
            const uint32_t res_tile = get_tile_size(cb_res);
            const auto res = TensorAccessor(r_args, res_addr, res_tile);
            cb_reserve_back(cb_res, nb);
            uint32_t rp = get_write_ptr(cb_res);
            for (uint32_t w = 0; w < nb; ++w) {
                noc_async_read_tile(b * cout_t + n0 + w, res, rp);
                rp += res_tile;
            }
            noc_async_read_barrier();
            cb_push_back(cb_res, nb);
        }
    }
}
