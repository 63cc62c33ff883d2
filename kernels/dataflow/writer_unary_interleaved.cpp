// Writes `num_tiles` pages from CB `cb_out` (compile-time arg 0) to an interleaved buffer,
// starting at page `start_id`. Runtime args: dst_addr, num_tiles, start_id.
// Compile-time args: cb_out, then TensorAccessorArgs of the destination.
#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t dst_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_tiles = get_arg_val<uint32_t>(1);
    const uint32_t start_id = get_arg_val<uint32_t>(2);

    constexpr uint32_t cb_out = get_compile_time_arg_val(0);
    const uint32_t page_bytes = get_tile_size(cb_out);
    constexpr auto dst_args = TensorAccessorArgs<1>();
    const auto dst = TensorAccessor(dst_args, dst_addr, page_bytes);

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_wait_front(cb_out, 1);
        const uint32_t l1_addr = get_read_ptr(cb_out);
        noc_async_write_page(start_id + i, dst, l1_addr);
        noc_async_write_barrier();
        cb_pop_front(cb_out, 1);
    }
}
