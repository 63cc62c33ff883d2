// The same addition as eltwise_binary.cpp, written in the pre-0.81 dialect
// (namespace NAMESPACE / void MAIN, binary_op_init_common, add_tiles_init, acquire_dst / release_dst).
#include <cstdint>
#include "compute_kernel_api/eltwise_binary.h"

namespace NAMESPACE {
void MAIN {
    uint32_t per_core_block_cnt = get_arg_val<uint32_t>(0);
    constexpr auto cb_in0 = tt::CBIndex::c_0;
    constexpr auto cb_in1 = tt::CBIndex::c_1;
    constexpr auto cb_out0 = tt::CBIndex::c_16;

    binary_op_init_common(cb_in0, cb_in1, cb_out0);
    add_tiles_init(cb_in0, cb_in1);
    for (uint32_t block = 0; block < per_core_block_cnt; ++block) {
        cb_wait_front(cb_in0, 1);
        cb_wait_front(cb_in1, 1);
        cb_reserve_back(cb_out0, 1);
        acquire_dst();
        add_tiles(cb_in0, cb_in1, 0, 0, 0);
        pack_tile(0, cb_out0);
        release_dst();
        cb_pop_front(cb_in0, 1);
        cb_pop_front(cb_in1, 1);
        cb_push_back(cb_out0, 1);
    }
}
}  // namespace NAMESPACE
