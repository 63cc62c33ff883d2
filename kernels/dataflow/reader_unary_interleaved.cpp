// Reads `num_tiles` pages of an interleaved buffer, starting at page `start_id`, into CB 0.
// Runtime args: src_addr, num_tiles, start_id. Compile-time args: TensorAccessorArgs of the source.
#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t src_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_tiles = get_arg_val<uint32_t>(1);
    const uint32_t start_id = get_arg_val<uint32_t>(2);

    constexpr uint32_t cb_in = 0;
    const uint32_t page_bytes = get_tile_size(cb_in);
    constexpr auto src_args = TensorAccessorArgs<0>();
    const auto src = TensorAccessor(src_args, src_addr, page_bytes);

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_reserve_back(cb_in, 1);
        const uint32_t l1_addr = get_write_ptr(cb_in);
        noc_async_read_page(start_id + i, src, l1_addr);
        noc_async_read_barrier();
        cb_push_back(cb_in, 1);
    }
}
