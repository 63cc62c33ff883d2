// Eltwise op reader (RISCV_0): for each output tile of this core's contiguous range, reads the
// matching tile of every input into CB i (input i -> CB i, up to 4 inputs). Input 1 may be
// broadcast: its tile index follows the output tile's (row, col) as bcast mode 1 (row vector:
// tile (0, col)), 2 (column vector: tile (row, 0)) or 3 (scalar: tile 0).
//
// Compile-time args: TensorAccessorArgs of inputs 0..3 (2 words each; unused ones repeat input 0).
// Runtime args: 0 num_inputs, 1 start_tile, 2 num_tiles, 3 ct (output tiles per row),
//   4 bcast mode of input 1, 5..8 input addresses, 9 expand: when 1 the broadcast tile of input 1
//   (Float32 or Float16_b) is expanded in L1 to a full tile (row 0 / column 0 / element 0
//   replicated), for the fp32 compute path, which adds DEST tiles on the SFPU and has no
//   broadcast.
//
// The expansion works in place on the tile's face layout: element (r, c) is at
// ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {

inline uint32_t elem(uint32_t r, uint32_t c) { return ((r >> 4) * 2 + (c >> 4)) * 256 + (r & 15) * 16 + (c & 15); }

template <typename T>
void expand(uint32_t l1, uint32_t mode) {
    volatile T* t = reinterpret_cast<volatile T*>(l1);
    if (mode == 1) {
        for (uint32_t r = 1; r < 32; ++r) {
            for (uint32_t c = 0; c < 32; ++c) t[elem(r, c)] = t[elem(0, c)];
        }
    } else if (mode == 2) {
        for (uint32_t r = 0; r < 32; ++r) {
            const T v = t[elem(r, 0)];
            for (uint32_t c = 1; c < 32; ++c) t[elem(r, c)] = v;
        }
    } else if (mode == 3) {
        const T v = t[0];
        for (uint32_t i = 1; i < 1024; ++i) t[i] = v;
    }
}

}  // namespace

void kernel_main() {
    const uint32_t num_inputs = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    const uint32_t ct = get_arg_val<uint32_t>(3);
    const uint32_t bcast = get_arg_val<uint32_t>(4);
    const uint32_t expand_bcast = get_arg_val<uint32_t>(9);

    constexpr auto args0 = TensorAccessorArgs<0>();
    constexpr auto args1 = TensorAccessorArgs<args0.next_compile_time_args_offset()>();
    constexpr auto args2 = TensorAccessorArgs<args1.next_compile_time_args_offset()>();
    constexpr auto args3 = TensorAccessorArgs<args2.next_compile_time_args_offset()>();
    const auto in0 = TensorAccessor(args0, get_arg_val<uint32_t>(5), get_tile_size(0));
    const auto in1 = TensorAccessor(args1, get_arg_val<uint32_t>(6), get_tile_size(num_inputs > 1 ? 1 : 0));
    const auto in2 = TensorAccessor(args2, get_arg_val<uint32_t>(7), get_tile_size(num_inputs > 2 ? 2 : 0));
    const auto in3 = TensorAccessor(args3, get_arg_val<uint32_t>(8), get_tile_size(num_inputs > 3 ? 3 : 0));

    for (uint32_t t = start_tile; t < start_tile + num_tiles; ++t) {
        const uint32_t row = t / ct;
        const uint32_t col = t % ct;
        for (uint32_t i = 0; i < num_inputs; ++i) {
            cb_reserve_back(i, 1);
            const uint32_t l1 = get_write_ptr(i);
            if (i == 0) {
                noc_async_read_tile(t, in0, l1);
            } else if (i == 1) {
                const uint32_t idx = bcast == 1 ? col : bcast == 2 ? row : bcast == 3 ? 0 : t;
                noc_async_read_tile(idx, in1, l1);
            } else if (i == 2) {
                noc_async_read_tile(t, in2, l1);
            } else {
                noc_async_read_tile(t, in3, l1);
            }
        }
        noc_async_read_barrier();
        if (expand_bcast != 0 && bcast != 0) {
            const uint32_t l1 = get_write_ptr(1);
            if (get_tile_size(1) == 4096) {
                expand<uint32_t>(l1, bcast);
            } else {
                expand<uint16_t>(l1, bcast);
            }
        }
        for (uint32_t i = 0; i < num_inputs; ++i) {
            cb_push_back(i, 1);
        }
    }
}
