// Eltwise op compute: one output tile per step, CB 0.. -> CB 16. The op is chosen by defines:
// - ELT_BINARY with BINOP (EltwiseBinaryType) and BCAST (BroadcastType of input 1):
//   out = in0 (op) in1 on the FPU.
// - ELT_UNARY with SFPU_OP (1 relu, 2 leaky relu (SFPU_PARAM = slope bits), 3 gelu (erf),
//   4 tanh, 5 sigmoid, 6 exp, 7 softplus (beta 1, threshold 20)): out = f(in0) on the SFPU.
// - ELT_GATE: out = tanh(in0) * sigmoid(in1): sigmoid(in1) is packed to CB 24, tanh(in0) stays
//   in DEST and is multiplied with it (DEST reused as SrcA).
// - ELT_SUM with NUM_INPUTS and SCALE (f32 bits): out = SCALE * sum of inputs (DEST reused as
//   SrcA for each further input, then a scalar multiply on the SFPU).
// - ELT_FP32 (with any of the above; needs fp32_dest_acc_en): the exact-fp32 path. Every input
//   tile is copied to DEST (Float32 CBs straight to DEST, UnpackToDestFp32, so no TF32
//   truncation; bf16 / bfp8 CBs through SrcA, exactly) and binary ops, the gate product and
//   the sums run on the SFPU (add/sub/mul_binary_tile: fp32 arithmetic). Broadcast operands
//   arrive already expanded to full tiles (the reader replicates them).
// Runtime args: 0 num_tiles.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"
#include "api/compute/bcast.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/relu.h"
#include "api/compute/eltwise_unary/gelu.h"
#include "api/compute/eltwise_unary/tanh.h"
#include "api/compute/eltwise_unary/sigmoid.h"
#include "api/compute/eltwise_unary/exp.h"
#include "api/compute/eltwise_unary/softplus.h"
#include "api/compute/eltwise_unary/binop_with_scalar.h"
#include "api/compute/eltwise_binary_sfpu.h"

#if !defined(ELT_BINARY) && !defined(ELT_UNARY) && !defined(ELT_GATE) && !defined(ELT_SUM)
#define ELT_UNARY 1
#endif
#ifndef SFPU_OP
#define SFPU_OP 4
#endif
#ifndef SFPU_PARAM
#define SFPU_PARAM 0u
#endif
#ifndef BINOP
#define BINOP EltwiseBinaryType::ELWADD
#endif
#ifndef BCAST
#define BCAST BroadcastType::NONE
#endif
#ifndef NUM_INPUTS
#define NUM_INPUTS 2
#endif
#ifndef SCALE
#define SCALE 0x3f800000u
#endif

namespace {
inline void sfpu_apply(uint32_t dst) {
#if SFPU_OP == 1
    relu_tile_init();
    relu_tile(dst);
#elif SFPU_OP == 2
    leaky_relu_tile_init();
    leaky_relu_tile(dst, SFPU_PARAM);
#elif SFPU_OP == 3
    gelu_tile_init<false>();
    gelu_tile<false>(dst);
#elif SFPU_OP == 4
    tanh_tile_init();
    tanh_tile(dst);
#elif SFPU_OP == 5
    sigmoid_tile_init();
    sigmoid_tile(dst);
#elif SFPU_OP == 6
    exp_tile_init<false>();
    exp_tile<false>(dst);
#elif SFPU_OP == 7
    softplus_tile_init();
    softplus_tile(dst, 0x3f800000u, 0x3f800000u, 0x41a00000u);
#endif
}
#if defined(ELT_FP32) && defined(ELT_BINARY)
// DEST tile a (BINOP) DEST tile b -> DEST tile a, on the SFPU.
inline void sfpu_binary(uint32_t a, uint32_t b) {
    if constexpr (BINOP == EltwiseBinaryType::ELWADD) {
        add_binary_tile_init();
        add_binary_tile(a, b, a);
    } else if constexpr (BINOP == EltwiseBinaryType::ELWSUB) {
        sub_binary_tile_init();
        sub_binary_tile(a, b, a);
    } else {
        mul_binary_tile_init();
        mul_binary_tile(a, b, a);
    }
}
#endif
}  // namespace

void kernel_main() {
    const uint32_t num_tiles = get_arg_val<uint32_t>(0);
    constexpr uint32_t cb_out = 16;
    constexpr uint32_t cb_tmp = 24;
    compute_kernel_hw_startup(0, 1, cb_out);

    for (uint32_t t = 0; t < num_tiles; ++t) {
#if defined(ELT_FP32)
#if defined(ELT_BINARY)
        cb_wait_front(0, 1);
        cb_wait_front(1, 1);
        tile_regs_acquire();
        reconfig_data_format_srca(0);
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        reconfig_data_format_srca(1);
        copy_tile_to_dst_init_short(1);
        copy_tile(1, 0, 1);
        sfpu_binary(0, 1);
        tile_regs_commit();
        cb_pop_front(0, 1);
        cb_pop_front(1, 1);
#elif defined(ELT_UNARY)
        cb_wait_front(0, 1);
        tile_regs_acquire();
        reconfig_data_format_srca(0);
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        sfpu_apply(0);
        tile_regs_commit();
        cb_pop_front(0, 1);
#elif defined(ELT_GATE)
        cb_wait_front(0, 1);
        cb_wait_front(1, 1);
        tile_regs_acquire();
        reconfig_data_format_srca(0);
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        tanh_tile_init();
        tanh_tile(0);
        reconfig_data_format_srca(1);
        copy_tile_to_dst_init_short(1);
        copy_tile(1, 0, 1);
        sigmoid_tile_init();
        sigmoid_tile(1);
        mul_binary_tile_init();
        mul_binary_tile(0, 1, 0);
        tile_regs_commit();
        cb_pop_front(0, 1);
        cb_pop_front(1, 1);
#elif defined(ELT_SUM)
        for (uint32_t i = 0; i < NUM_INPUTS; ++i) {
            cb_wait_front(i, 1);
        }
        tile_regs_acquire();
        reconfig_data_format_srca(0);
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        add_binary_tile_init();
        for (uint32_t i = 1; i < NUM_INPUTS; ++i) {
            reconfig_data_format_srca(i);
            copy_tile_to_dst_init_short(i);
            copy_tile(i, 0, 1);
            add_binary_tile(0, 1, 0);
        }
        binop_with_scalar_tile_init();
        mul_unary_tile(0, SCALE);
        tile_regs_commit();
        for (uint32_t i = 0; i < NUM_INPUTS; ++i) {
            cb_pop_front(i, 1);
        }
#endif
#elif defined(ELT_BINARY)
        cb_wait_front(0, 1);
        cb_wait_front(1, 1);
        init_bcast<BINOP, BCAST>(0, 1, cb_out);
        tile_regs_acquire();
        any_tiles_bcast<BINOP, BCAST>(0, 1, 0, 0, 0);
        tile_regs_commit();
        cb_pop_front(0, 1);
        cb_pop_front(1, 1);
#elif defined(ELT_UNARY)
        cb_wait_front(0, 1);
        tile_regs_acquire();
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        sfpu_apply(0);
        tile_regs_commit();
        cb_pop_front(0, 1);
#elif defined(ELT_GATE)
        cb_wait_front(0, 1);
        cb_wait_front(1, 1);
        // sigmoid(in1) -> CB 24
        tile_regs_acquire();
        reconfig_data_format_srca(1);
        copy_tile_to_dst_init_short(1);
        copy_tile(1, 0, 0);
        sigmoid_tile_init();
        sigmoid_tile(0);
        tile_regs_commit();
        cb_reserve_back(cb_tmp, 1);
        tile_regs_wait();
        pack_reconfig_data_format(cb_tmp);
        pack_tile(0, cb_tmp);
        tile_regs_release();
        cb_push_back(cb_tmp, 1);
        cb_pop_front(1, 1);
        // tanh(in0) * sigmoid(in1)
        cb_wait_front(cb_tmp, 1);
        tile_regs_acquire();
        reconfig_data_format_srca(0);
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        tanh_tile_init();
        tanh_tile(0);
        reconfig_data_format_srcb(cb_tmp);
        binary_dest_reuse_tiles_init<EltwiseBinaryType::ELWMUL, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_tmp);
        binary_dest_reuse_tiles<EltwiseBinaryType::ELWMUL, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_tmp, 0, 0);
        tile_regs_commit();
        cb_pop_front(cb_tmp, 1);
        cb_pop_front(0, 1);
#elif defined(ELT_SUM)
        for (uint32_t i = 0; i < NUM_INPUTS; ++i) {
            cb_wait_front(i, 1);
        }
        tile_regs_acquire();
        copy_tile_to_dst_init_short(0);
        copy_tile(0, 0, 0);
        for (uint32_t i = 1; i < NUM_INPUTS; ++i) {
            reconfig_data_format_srcb(i);
            binary_dest_reuse_tiles_init<EltwiseBinaryType::ELWADD, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(i);
            binary_dest_reuse_tiles<EltwiseBinaryType::ELWADD, EltwiseBinaryReuseDestType::DEST_TO_SRCA>(i, 0, 0);
        }
        binop_with_scalar_tile_init();
        mul_unary_tile(0, SCALE);
        tile_regs_commit();
        for (uint32_t i = 0; i < NUM_INPUTS; ++i) {
            cb_pop_front(i, 1);
        }
#endif
        cb_reserve_back(cb_out, 1);
        tile_regs_wait();
#ifdef ELT_GATE
        pack_reconfig_data_format(cb_out);
#endif
        pack_tile(0, cb_out);
        tile_regs_release();
        cb_push_back(cb_out, 1);
    }
}
