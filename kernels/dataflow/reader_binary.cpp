// Reads two interleaved DRAM tensors tile by tile into circular buffers 0 and 1 (the operands of
// an element-wise binary op). Uses InterleavedAddrGenFast, whose page size and data format come
// from the CBs, so the DRAM pages must be in the CBs' formats (bf16, bfp8_b, ...).
//
// Runtime args: src0_addr, src1_addr, num_tiles, start_tile.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

void kernel_main() {
    const uint32_t src0_addr = get_arg_val<uint32_t>(0);
    const uint32_t src1_addr = get_arg_val<uint32_t>(1);
    const uint32_t num_tiles = get_arg_val<uint32_t>(2);
    const uint32_t start_tile = get_arg_val<uint32_t>(3);

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;

    const InterleavedAddrGenFast<true> src0 = {
        .bank_base_address = src0_addr,
        .page_size = static_cast<uint32_t>(get_tile_size(cb_in0)),
        .data_format = get_dataformat(cb_in0),
    };
    const InterleavedAddrGenFast<true> src1 = {
        .bank_base_address = src1_addr,
        .page_size = static_cast<uint32_t>(get_tile_size(cb_in1)),
        .data_format = get_dataformat(cb_in1),
    };

    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_reserve_back(cb_in0, 1);
        cb_reserve_back(cb_in1, 1);
        noc_async_read_tile(start_tile + i, src0, get_write_ptr(cb_in0));
        noc_async_read_tile(start_tile + i, src1, get_write_ptr(cb_in1));
        noc_async_read_barrier();
        cb_push_back(cb_in0, 1);
        cb_push_back(cb_in1, 1);
    }
}
