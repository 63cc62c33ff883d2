// Writes the pages of one shard (coming through circular buffer `cb_in` in shard row-major
// order) to their places in an interleaved buffer holding the whole tensor: shard-local page
// (r, c) is tensor page start_page + r * tensor_w + c.
//
// Compile-time args: TensorAccessorArgs of the destination (2 words), then cb_in.
// Runtime args: dst_addr, rows_valid, cols_valid, start_page, tensor_w (pages per tensor row).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t dst_addr = get_arg_val<uint32_t>(0);
    const uint32_t rows_valid = get_arg_val<uint32_t>(1);
    const uint32_t cols_valid = get_arg_val<uint32_t>(2);
    const uint32_t start_page = get_arg_val<uint32_t>(3);
    const uint32_t tensor_w = get_arg_val<uint32_t>(4);

    constexpr auto dst_args = TensorAccessorArgs<0>();
    constexpr uint32_t cb_in = get_compile_time_arg_val(dst_args.next_compile_time_args_offset());
    const auto dst = TensorAccessor(dst_args, dst_addr, get_tile_size(cb_in));

    for (uint32_t r = 0; r < rows_valid; ++r) {
        for (uint32_t c = 0; c < cols_valid; ++c) {
            cb_wait_front(cb_in, 1);
            noc_async_write_tile(start_page + r * tensor_w + c, dst, get_read_ptr(cb_in));
            noc_async_write_barrier();
            cb_pop_front(cb_in, 1);
        }
    }
}
