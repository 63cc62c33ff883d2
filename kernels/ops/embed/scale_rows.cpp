// Tile pass-through with an optional scalar multiply: for each of `num_tiles` tiles of CB `cb_in`,
// unpack into DEST, multiply by the f32 scalar `scale_bits` on the SFPU when `apply_scale` is
// nonzero, and pack to CB `cb_out`. Used by the embedding gather (scale sqrt(C)) and duration
// expansion (no scale).
//
// Compile-time args: 0 apply_scale, 1 scale_bits (f32 bits), 2 cb_in, 3 cb_out.
// Runtime args: num_tiles.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_unary/binop_with_scalar.h"
#include "api/compute/tile_move_copy.h"

void kernel_main() {
    const uint32_t num_tiles = get_arg_val<uint32_t>(0);
    constexpr uint32_t apply_scale = get_compile_time_arg_val(0);
    constexpr uint32_t scale_bits = get_compile_time_arg_val(1);
    constexpr uint32_t cb_in = get_compile_time_arg_val(2);
    constexpr uint32_t cb_out = get_compile_time_arg_val(3);

    compute_kernel_hw_startup(cb_in, cb_out);
    copy_tile_init(cb_in);
    if constexpr (apply_scale != 0) {
        binop_with_scalar_tile_init();
    }
    for (uint32_t t = 0; t < num_tiles; ++t) {
        cb_wait_front(cb_in, 1);
        tile_regs_acquire();
        copy_tile(cb_in, 0, 0);
        if constexpr (apply_scale != 0) {
            mul_unary_tile(0, scale_bits);
        }
        tile_regs_commit();
        cb_pop_front(cb_in, 1);
        cb_reserve_back(cb_out, 1);
        tile_regs_wait();
        pack_tile(0, cb_out);
        tile_regs_release();
        cb_push_back(cb_out, 1);
    }
}
