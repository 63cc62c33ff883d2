// Split-operand writer (RISCV_1): for each input tile t = (row, col) of this core's range
// [start_tile, start_tile + num_tiles) (`ct` input tiles per tile row), takes the Full tile (when
// full_mask != 0) and then the Lo tile (when lo_mask != 0) from CB 16 and writes each to every
// output tile column col * P + s whose part s it is (bit s of full_mask / lo_mask): output tile
// row * (P * ct) + col * P + s.
//
// Compile-time args: TensorAccessorArgs of the output (Float32).
// Runtime args: 0 out_addr, 1 start_tile, 2 num_tiles, 3 ct, 4 P (parts, 1..=32), 5 full_mask,
//   6 lo_mask.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t out_addr = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    const uint32_t ct = get_arg_val<uint32_t>(3);
    const uint32_t parts = get_arg_val<uint32_t>(4);
    const uint32_t full_mask = get_arg_val<uint32_t>(5);
    const uint32_t lo_mask = get_arg_val<uint32_t>(6);

    constexpr uint32_t cb_out = 16;
    constexpr auto out_args = TensorAccessorArgs<0>();
    const auto out = TensorAccessor(out_args, out_addr, get_tile_size(cb_out));
    const uint32_t masks[2] = {full_mask, lo_mask};

    for (uint32_t t = start_tile; t < start_tile + num_tiles; ++t) {
        const uint32_t base = (t / ct) * parts * ct + (t % ct) * parts;
        for (uint32_t k = 0; k < 2; ++k) {
            const uint32_t mask = masks[k];
            if (mask == 0) {
                continue;
            }
            cb_wait_front(cb_out, 1);
            const uint32_t l1 = get_read_ptr(cb_out);
            for (uint32_t s = 0; s < parts; ++s) {
                if ((mask >> s) & 1u) {
                    noc_async_write_tile(base + s, out, l1);
                }
            }
            noc_async_write_barrier();
            cb_pop_front(cb_out, 1);
        }
    }
}
