// Reads tiles of two interleaved buffers into CB 0 and CB 1, one tile of each at a time.
// Runtime args: src0_addr, src1_addr, num_tiles, start_id.
// Compile-time args: TensorAccessorArgs of src0, then TensorAccessorArgs of src1.
#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t src0_addr = get_arg_val<uint32_t>(0);
    const uint32_t src1_addr = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    const uint32_t start_id = get_arg_val<uint32_t>(3);

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;
    constexpr auto src0_args = TensorAccessorArgs<0>();
    constexpr auto src1_args = TensorAccessorArgs<src0_args.next_compile_time_args_offset()>();
    const auto src0 = TensorAccessor(src0_args, src0_addr, get_tile_size(cb_in0));
    const auto src1 = TensorAccessor(src1_args, src1_addr, get_tile_size(cb_in1));

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_reserve_back(cb_in0, 1);
        cb_reserve_back(cb_in1, 1);
        noc_async_read_page(start_id + i, src0, get_write_ptr(cb_in0));
        noc_async_read_page(start_id + i, src1, get_write_ptr(cb_in1));
        noc_async_read_barrier();
        cb_push_back(cb_in0, 1);
        cb_push_back(cb_in1, 1);
    }
}
