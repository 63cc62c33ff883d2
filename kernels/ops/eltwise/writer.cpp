// Eltwise / norm op writer (RISCV_1): writes tiles [start_tile, start_tile + num_tiles) from
// CB 16 to the output, one at a time.
//
// Compile-time args: TensorAccessorArgs of the output. Runtime args: 0 out_addr, 1 start_tile,
//   2 num_tiles.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t out_addr = get_arg_val<uint32_t>(0);
    const uint32_t start_tile = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    constexpr uint32_t cb_out = 16;
    constexpr auto out_args = TensorAccessorArgs<0>();
    const auto out = TensorAccessor(out_args, out_addr, get_tile_size(cb_out));
    for (uint32_t t = start_tile; t < start_tile + num_tiles; ++t) {
        cb_wait_front(cb_out, 1);
        noc_async_write_tile(t, out, get_read_ptr(cb_out));
        noc_async_write_barrier();
        cb_pop_front(cb_out, 1);
    }
}
