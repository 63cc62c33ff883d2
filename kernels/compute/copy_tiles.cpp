// Copies tiles from CB 0 to CB 16 through DEST (unpack -> datacopy -> pack), `block` tiles per
// DEST acquisition. Used to pack a CB into another data format (the packer rounds) and by the
// DEST-capacity checks.
//
// Compile-time args: block.
// Runtime args: num_blocks.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/tile_move_copy.h"

void kernel_main() {
    const uint32_t num_blocks = get_arg_val<uint32_t>(0);
    constexpr uint32_t block = get_compile_time_arg_val(0);
    constexpr uint32_t cb_in = 0;
    constexpr uint32_t cb_out = 16;

    compute_kernel_hw_startup(cb_in, cb_out);
    copy_init(cb_in);
    for (uint32_t b = 0; b < num_blocks; ++b) {
        cb_wait_front(cb_in, block);
        tile_regs_acquire();
        for (uint32_t i = 0; i < block; ++i) {
            copy_tile(cb_in, i, i);
        }
        tile_regs_commit();
        cb_pop_front(cb_in, block);

        cb_reserve_back(cb_out, block);
        tile_regs_wait();
        for (uint32_t i = 0; i < block; ++i) {
            pack_tile(i, cb_out);
        }
        tile_regs_release();
        cb_push_back(cb_out, block);
    }
}
