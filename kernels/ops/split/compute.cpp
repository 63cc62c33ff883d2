// Split-operand compute (fp32 DEST): for each input tile x (CB 0), a = pre(x) in fp32 on the SFPU
// and, as the output needs them, in this order to CB 16:
// - the Full part: a itself (packed unrounded from the fp32 DEST);
// - the Lo part: a - TF32(a), what the FPU loses when it reads a from a Float32 tile. a is packed
//   to CB 1 and CB 2 (both Float32); CB 1 unpacks straight to DEST (UnpackToDestFp32: exact a),
//   CB 2 through SrcA like a matmul operand (the unpacker's Float32 -> TF32 conversion, then an
//   FPU datacopy into the fp32 DEST: TF32(a)); sub_binary_tile (fp32 SFPU) gives the difference,
//   exact in fp32. Deriving it through the unpacker (not by masking bits) keeps TF32(a) + Lo == a
//   for whatever conversion the unpacker does.
// x is copied to DEST exactly (a Float32 CB 0 unpacks straight to DEST; bf16 through SrcA is exact
// in an fp32 DEST).
//
// Defines: HAS_FULL, HAS_LO (which parts are produced); PRE 0 none, 1 relu, 2 leaky relu with
//   PRE_PARAM (slope, f32 bits).
// Runtime args: 0 num_tiles.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/relu.h"
#include "api/compute/eltwise_binary_sfpu.h"

#ifndef PRE
#define PRE 0
#endif
#ifndef PRE_PARAM
#define PRE_PARAM 0u
#endif

namespace {
constexpr uint32_t cb_in = 0, cb_exact = 1, cb_fpu = 2, cb_out = 16;

// DEST tile d <- tile 0 of cb (exact for UnpackToDestFp32 CBs and bf16; TF32 for other Float32 CBs).
inline void load(uint32_t cb, uint32_t d) {
    reconfig_data_format_srca(cb);
    copy_tile_to_dst_init_short(cb);
    copy_tile(cb, 0, d);
}

inline void pack_to(uint32_t d, uint32_t cb) {
    cb_reserve_back(cb, 1);
    pack_reconfig_data_format(cb);
    pack_tile(d, cb);
    cb_push_back(cb, 1);
}

inline void pre(uint32_t d) {
#if PRE == 1
    relu_tile_init();
    relu_tile(d);
#elif PRE == 2
    leaky_relu_tile_init();
    leaky_relu_tile(d, PRE_PARAM);
#else
    (void)d;
#endif
}
}  // namespace

void kernel_main() {
    const uint32_t num_tiles = get_arg_val<uint32_t>(0);
    compute_kernel_hw_startup(cb_in, cb_in, cb_out);

    for (uint32_t t = 0; t < num_tiles; ++t) {
        cb_wait_front(cb_in, 1);
        tile_regs_acquire();
        load(cb_in, 0);
        pre(0);
        tile_regs_commit();
        tile_regs_wait();
#ifdef HAS_FULL
        pack_to(0, cb_out);
#endif
#ifdef HAS_LO
        pack_to(0, cb_exact);
        pack_to(0, cb_fpu);
#endif
        tile_regs_release();
        cb_pop_front(cb_in, 1);
#ifdef HAS_LO
        cb_wait_front(cb_exact, 1);
        cb_wait_front(cb_fpu, 1);
        tile_regs_acquire();
        load(cb_exact, 0);
        load(cb_fpu, 1);
        sub_binary_tile_init();
        sub_binary_tile(0, 1, 0);
        tile_regs_commit();
        tile_regs_wait();
        pack_to(0, cb_out);
        tile_regs_release();
        cb_pop_front(cb_exact, 1);
        cb_pop_front(cb_fpu, 1);
#endif
    }
}
