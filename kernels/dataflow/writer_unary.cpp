// Drains `num_tiles` pages from circular buffer `cb_in` into consecutive pages of an interleaved
// buffer (DRAM or L1), starting at `start_tile`.
//
// Compile-time args: TensorAccessorArgs of the destination (2 words), then cb_in.
// Runtime args: dst_addr, num_tiles, start_tile.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t dst_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_tiles = get_arg_val<uint32_t>(1);
    const uint32_t start_tile = get_arg_val<uint32_t>(2);

    constexpr auto dst_args = TensorAccessorArgs<0>();
    constexpr uint32_t cb_in = get_compile_time_arg_val(dst_args.next_compile_time_args_offset());

    const uint32_t page_bytes = get_tile_size(cb_in);
    const auto dst = TensorAccessor(dst_args, dst_addr, page_bytes);

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_wait_front(cb_in, 1);
        const uint32_t l1_addr = get_read_ptr(cb_in);
        noc_async_write_tile(start_tile + i, dst, l1_addr);
        noc_async_write_barrier();
        cb_pop_front(cb_in, 1);
    }
}
