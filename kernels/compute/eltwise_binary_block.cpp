// Element-wise binary op on tiles: out = in0 (op) in1, CB 0 and CB 1 into CB 16, `block` tiles
// per DEST acquisition (block <= DEST capacity: 8 tiles with a 16-bit DEST in half-sync mode, 4
// with fp32 accumulation). The op is `add` unless ELTWISE_OP_SUB or ELTWISE_OP_MUL is defined.
//
// Compile-time args: block (tiles per DEST acquisition).
// Runtime args: num_blocks.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"

void kernel_main() {
    const uint32_t num_blocks = get_arg_val<uint32_t>(0);
    constexpr uint32_t block = get_compile_time_arg_val(0);

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_out = 16;

    compute_kernel_hw_startup(cb_in0, cb_in1, cb_out);
#if defined(ELTWISE_OP_SUB)
    sub_init(cb_in0, cb_in1);
#elif defined(ELTWISE_OP_MUL)
    mul_init(cb_in0, cb_in1);
#else
    add_init(cb_in0, cb_in1);
#endif

    for (uint32_t b = 0; b < num_blocks; ++b) {
        cb_wait_front(cb_in0, block);
        cb_wait_front(cb_in1, block);

        tile_regs_acquire();
        for (uint32_t i = 0; i < block; ++i) {
#if defined(ELTWISE_OP_SUB)
            sub_tiles(cb_in0, cb_in1, i, i, i);
#elif defined(ELTWISE_OP_MUL)
            mul_tiles(cb_in0, cb_in1, i, i, i);
#else
            add_tiles(cb_in0, cb_in1, i, i, i);
#endif
        }
        tile_regs_commit();

        cb_pop_front(cb_in0, block);
        cb_pop_front(cb_in1, block);

        cb_reserve_back(cb_out, block);
        tile_regs_wait();
        for (uint32_t i = 0; i < block; ++i) {
            pack_tile(i, cb_out);
        }
        tile_regs_release();
        cb_push_back(cb_out, block);
    }
}
