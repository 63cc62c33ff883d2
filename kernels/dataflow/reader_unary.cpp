// Reads `num_tiles` consecutive pages of an interleaved buffer (DRAM or L1) into circular buffer
// `cb_out`, one page at a time; the CB is sized for two pages by the host so that this reader and
// its consumer overlap (double buffering).
//
// Compile-time args: TensorAccessorArgs of the source (2 words), then cb_out.
// Runtime args: src_addr, num_tiles, start_tile.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t src_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_tiles = get_arg_val<uint32_t>(1);
    const uint32_t start_tile = get_arg_val<uint32_t>(2);

    constexpr auto src_args = TensorAccessorArgs<0>();
    constexpr uint32_t cb_out = get_compile_time_arg_val(src_args.next_compile_time_args_offset());

    const uint32_t page_bytes = get_tile_size(cb_out);
    const auto src = TensorAccessor(src_args, src_addr, page_bytes);

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_reserve_back(cb_out, 1);
        const uint32_t l1_addr = get_write_ptr(cb_out);
        noc_async_read_tile(start_tile + i, src, l1_addr);
        noc_async_read_barrier();
        cb_push_back(cb_out, 1);
    }
}
