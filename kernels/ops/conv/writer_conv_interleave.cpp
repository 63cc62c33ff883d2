// Conv / conv-transpose writer: drains the compute kernel's output tiles and writes the
// time-major [T_out, C_out] output (bf16 or Float32), tiled, to DRAM.
//
// Per block B the compute kernel pushes P * nb tiles in the order (phase p, channel tile w). Phase p
// row i is output row B * 32 * P + i * P + rp[p] (conv: P = 1, rp = 0, so tiles are written as
// they are; conv-transpose: the s phases interleave, polyphase). The writer assembles the P output
// tiles of each channel tile in a scratch CB with 64-byte row copies, zeroes rows at or beyond
// T_out (so the padding rows of the last tile are zero, not bias), and writes the tiles that exist.
//
// CBs: 16 output of compute (output format), 4 assembly scratch (P tiles; unused when P = 1).
// Compile-time args: TensorAccessorArgs of the output.
// Runtime args: 0 out_addr, 1 t_out, 2 cout_t, 3 n0, 4 nb, 5 P, 6 block_start, 7 block_end,
//   8.. rp[p] (P words).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {

// Tiles are bf16 (es = 2 bytes) or Float32 (es = 4); see the reader.
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
    const uint32_t out_addr = get_arg_val<uint32_t>(0);
    const uint32_t t_out = get_arg_val<uint32_t>(1);
    const uint32_t cout_t = get_arg_val<uint32_t>(2);
    const uint32_t n0 = get_arg_val<uint32_t>(3);
    const uint32_t nb = get_arg_val<uint32_t>(4);
    const uint32_t P = get_arg_val<uint32_t>(5);
    const uint32_t block_start = get_arg_val<uint32_t>(6);
    const uint32_t block_end = get_arg_val<uint32_t>(7);

    constexpr uint32_t cb_out = 16;
    constexpr uint32_t cb_asm = 4;
    constexpr auto out_args = TensorAccessorArgs<0>();
    const uint32_t tile = get_tile_size(cb_out);
    const uint32_t es = tile / 1024;  // bytes per element: 2 (bf16) or 4 (Float32)
    const auto out = TensorAccessor(out_args, out_addr, tile);
    const uint32_t t_out_tiles = (t_out + 31) / 32;

    uint32_t scratch = 0;
    if (P > 1) {
        cb_reserve_back(cb_asm, P);
        scratch = get_write_ptr(cb_asm);
    }

    for (uint32_t b = block_start; b < block_end; ++b) {
        cb_wait_front(cb_out, P * nb);
        const uint32_t src = get_read_ptr(cb_out);
        for (uint32_t w = 0; w < nb; ++w) {
            uint32_t first = src + w * tile;  // P == 1: the compute tile itself
            if (P > 1) {
                first = scratch;
                for (uint32_t p = 0; p < P; ++p) {
                    const uint32_t rp = get_arg_val<uint32_t>(8 + p);
                    const uint32_t phase_tile = src + (p * nb + w) * tile;
                    for (uint32_t i = 0; i < 32; ++i) {
                        const uint32_t local = i * P + rp;
                        copy_row(scratch + (local / 32) * tile, local % 32, phase_tile, i, es);
                    }
                }
            }
            for (uint32_t t = 0; t < P; ++t) {
                const uint32_t ot = b * P + t;
                if (ot >= t_out_tiles) {
                    break;
                }
                const uint32_t addr = first + t * tile;
                for (uint32_t r = 0; r < 32; ++r) {
                    if (ot * 32 + r >= t_out) {
                        zero_row(addr, r, es);
                    }
                }
                noc_async_write_tile(ot * cout_t + n0 + w, out, addr);
            }
            // The scratch is reused by the next channel tile.
            noc_async_write_barrier();
        }
        cb_pop_front(cb_out, P * nb);
    }
}
