// Split-operand reader (RISCV_0): the op works on the input tile columns [c0, c0 + len) of every
// tile row ("range space": tile u is tile row u / len, input tile column c0 + u % len). Reads the
// range-space tiles [start_tile, start_tile + num_tiles) into CB 0, one at a time, and zeroes the
// padding of the input's last tile row / column in L1 (elements at or past `valid_rows` /
// `valid_cols` of that tile), so that every part of the output has zero padding whatever the
// input's padding holds.
//
// Compile-time args: TensorAccessorArgs of the input (Float32 or Float16_b tiles).
// Runtime args: 0 in_addr, 1 start_tile, 2 num_tiles (range space), 3 ct (input tile columns),
//   4 mt (tile rows), 5 valid_cols of the input's last tile column (1..=32), 6 valid_rows of the
//   last tile row (1..=32), 7 c0 (first input tile column), 8 len (tile columns in the range).
//
// Element (r, c) of a tile is at ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {

inline uint32_t elem(uint32_t r, uint32_t c) { return ((r >> 4) * 2 + (c >> 4)) * 256 + (r & 15) * 16 + (c & 15); }

// Zeroes columns [vc, 32) and rows [vr, 32) of the tile at l1.
template <typename T>
void zero_pad(uint32_t l1, uint32_t vr, uint32_t vc) {
    volatile T* t = reinterpret_cast<volatile T*>(l1);
    for (uint32_t r = 0; r < 32; ++r) {
        const uint32_t c0 = r < vr ? vc : 0;
        for (uint32_t c = c0; c < 32; ++c) t[elem(r, c)] = 0;
    }
}

}  // namespace

void kernel_main() {
    const uint32_t in_addr = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    const uint32_t ct = get_arg_val<uint32_t>(3);
    const uint32_t mt = get_arg_val<uint32_t>(4);
    const uint32_t valid_cols = get_arg_val<uint32_t>(5);
    const uint32_t valid_rows = get_arg_val<uint32_t>(6);
    const uint32_t c0 = get_arg_val<uint32_t>(7);
    const uint32_t len = get_arg_val<uint32_t>(8);

    constexpr uint32_t cb_in = 0;
    constexpr auto in_args = TensorAccessorArgs<0>();
    const uint32_t tile_bytes = get_tile_size(cb_in);
    const auto in = TensorAccessor(in_args, in_addr, tile_bytes);

    for (uint32_t u = start_tile; u < start_tile + num_tiles; ++u) {
        const uint32_t tr = u / len;
        const uint32_t tc = c0 + u % len;
        cb_reserve_back(cb_in, 1);
        const uint32_t l1 = get_write_ptr(cb_in);
        noc_async_read_tile(tr * ct + tc, in, l1);
        noc_async_read_barrier();
        const uint32_t vr = (tr + 1 == mt) ? valid_rows : 32;
        const uint32_t vc = (tc + 1 == ct) ? valid_cols : 32;
        if (vr < 32 || vc < 32) {
            if (tile_bytes == 4096) {
                zero_pad<uint32_t>(l1, vr, vc);
            } else {
                zero_pad<uint16_t>(l1, vr, vc);
            }
        }
        cb_push_back(cb_in, 1);
    }
}
