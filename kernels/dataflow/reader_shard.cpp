// Reads this core's shard of an L1-sharded buffer, page by page, into circular buffer `cb_out`.
// The shard holds shard_h x shard_w page slots (row-major); a partial shard at the tensor's edge
// has only rows_valid x cols_valid of them filled, and only those are read.
//
// Compile-time args: cb_out.
// Runtime args: shard_addr, rows_valid, cols_valid, shard_w, page_stride (aligned page size).
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t shard_addr = get_arg_val<uint32_t>(0);
    const uint32_t rows_valid = get_arg_val<uint32_t>(1);
    const uint32_t cols_valid = get_arg_val<uint32_t>(2);
    const uint32_t shard_w = get_arg_val<uint32_t>(3);
    const uint32_t page_stride = get_arg_val<uint32_t>(4);

    constexpr uint32_t cb_out = get_compile_time_arg_val(0);
    const uint32_t page_bytes = get_tile_size(cb_out);

    for (uint32_t r = 0; r < rows_valid; ++r) {
        for (uint32_t c = 0; c < cols_valid; ++c) {
            cb_reserve_back(cb_out, 1);
            const uint64_t src = get_noc_addr(shard_addr + (r * shard_w + c) * page_stride);
            noc_async_read(src, get_write_ptr(cb_out), page_bytes);
            noc_async_read_barrier();
            cb_push_back(cb_out, 1);
        }
    }
}
