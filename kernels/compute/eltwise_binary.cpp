// out = in0 (op) in1 tile by tile, CB 0 and CB 1 -> CB 16. Compile-time arg 0: number of tiles.
// Define ELTWISE_SUB or ELTWISE_MUL for subtraction or multiplication (default: addition).
#include <cstdint>
#include "api/compute/eltwise_binary.h"
#include "api/compute/tile_move_copy.h"

void kernel_main() {
    constexpr uint32_t num_tiles = get_compile_time_arg_val(0);
    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_in1 = 1;
    constexpr uint32_t cb_out = 16;

    compute_kernel_hw_startup(cb_in0, cb_in1, cb_out);
#if defined(ELTWISE_SUB)
    sub_init(cb_in0, cb_in1);
#elif defined(ELTWISE_MUL)
    mul_init(cb_in0, cb_in1);
#else
    add_init(cb_in0, cb_in1);
#endif
    for (uint32_t i = 0; i < num_tiles; ++i) {
        cb_wait_front(cb_in0, 1);
        cb_wait_front(cb_in1, 1);
        tile_regs_acquire();
#if defined(ELTWISE_SUB)
        sub_tiles(cb_in0, cb_in1, 0, 0, 0);
#elif defined(ELTWISE_MUL)
        mul_tiles(cb_in0, cb_in1, 0, 0, 0);
#else
        add_tiles(cb_in0, cb_in1, 0, 0, 0);
#endif
        tile_regs_commit();
        cb_pop_front(cb_in0, 1);
        cb_pop_front(cb_in1, 1);
        cb_reserve_back(cb_out, 1);
        tile_regs_wait();
        pack_tile(0, cb_out);
        tile_regs_release();
        cb_push_back(cb_out, 1);
    }
}
