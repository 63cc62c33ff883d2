// Conv / conv-transpose compute: per output block and phase, every output-channel tile of the
// core's block is the sum over taps m and input-channel tiles c of
//     in0[(p * M + m) * cin_t + c]  x  W[((p * M + m) * cin_t + c) * nb + w]
// accumulated in DEST with matmul_tiles (no partial-sum spills: the whole reduction of one output
// tile stays in DEST, in fp32 when fp32_dest_acc is on). Grouped and depthwise convolutions are
// block-diagonal weights: output tile w only reduces over input tiles [c_lo(w), c_hi(w)).
// Then the bias tile (rows replicated) is added to DEST (DEST-reuse eltwise add), the fused
// activation runs on the SFPU, an optional residual tile is added (DEST-reuse add), and the tiles
// are packed to CB 16 in (phase, w) order. An optional input activation (relu / leaky relu) is
// applied to the block's in0 tiles first (copy to DEST, SFPU, pack to CB 5), so a HiFi-GAN
// ResBlock layer x + conv(leaky(x)) is one op.
//
// CBs: 0 in0 (P*M*cin_t tiles per block), 1 weights (resident), 2 bias (resident, nb tiles),
//   5 activated in0 (with an input activation), 6 residual (P*nb tiles per block), 16 output.
// Compile-time args: 0 cin_t, 1 nb, 2 P, 3 M, 4 DEST group (tiles per acquire), 5 has_bias,
//   6 activation (Activation::code: 0 none, 1 relu, 2 leaky relu, 3 gelu, 4 tanh, 5 sigmoid), 7 activation param
//   (leaky slope, f32 bits), 8 input activation (same codes; 0, 1 or 2), 9 its parameter,
//   10 has_residual, 11 exact (the fp32 path: fp32_dest_acc_en with a Float32 input, output or
//   residual): the bias tile is copied into DEST before the matmuls accumulate onto it (exact;
//   no DEST -> SrcA TF32 truncation of the sum), and the residual is copied to DEST tile
//   group + j and added on the SFPU in fp32 (add_binary_tile), so the DEST group is at most half
//   the DEST capacity. Float32 CBs that are only copied (input with an input activation, bias,
//   residual) are configured UnpackToDestFp32 by the host; the matmul reads Float32 in0 as TF32.
// Runtime args: 0 number of blocks, then c_lo[w], c_hi[w] for w < nb.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/eltwise_binary.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/gelu.h"
#include "api/compute/eltwise_unary/relu.h"
#include "api/compute/eltwise_unary/sigmoid.h"
#include "api/compute/eltwise_unary/tanh.h"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_binary_sfpu.h"

namespace {

template <uint32_t code, uint32_t param>
inline void activate(uint32_t first, uint32_t n) {
    if constexpr (code == 1) {
        relu_tile_init();
        for (uint32_t j = 0; j < n; ++j) relu_tile(first + j);
    } else if constexpr (code == 2) {
        leaky_relu_tile_init();
        for (uint32_t j = 0; j < n; ++j) leaky_relu_tile(first + j, param);
    } else if constexpr (code == 3) {
        // <false>: the accurate (erf) GELU; the API default <true> is the fast approximation.
        gelu_tile_init<false>();
        for (uint32_t j = 0; j < n; ++j) gelu_tile<false>(first + j);
    } else if constexpr (code == 4) {
        tanh_tile_init();
        for (uint32_t j = 0; j < n; ++j) tanh_tile(first + j);
    } else if constexpr (code == 5) {
        sigmoid_tile_init();
        for (uint32_t j = 0; j < n; ++j) sigmoid_tile(first + j);
    }
}

}  // namespace

void kernel_main() {
    constexpr uint32_t cin_t = get_compile_time_arg_val(0);
    constexpr uint32_t nb = get_compile_time_arg_val(1);
    constexpr uint32_t P = get_compile_time_arg_val(2);
    constexpr uint32_t M = get_compile_time_arg_val(3);
    constexpr uint32_t group = get_compile_time_arg_val(4);
    constexpr uint32_t has_bias = get_compile_time_arg_val(5);
    constexpr uint32_t act = get_compile_time_arg_val(6);
    constexpr uint32_t act_param = get_compile_time_arg_val(7);
    constexpr uint32_t pre_act = get_compile_time_arg_val(8);
    constexpr uint32_t pre_param = get_compile_time_arg_val(9);
    constexpr uint32_t has_residual = get_compile_time_arg_val(10);
    constexpr uint32_t exact = get_compile_time_arg_val(11);

    constexpr uint32_t cb_in0 = 0;
    constexpr uint32_t cb_w = 1;
    constexpr uint32_t cb_bias = 2;
    constexpr uint32_t cb_pre = 5;
    constexpr uint32_t cb_res = 6;
    constexpr uint32_t cb_out = 16;
    constexpr uint32_t cb_mm = pre_act != 0 ? cb_pre : cb_in0;

    const uint32_t num_blocks = get_arg_val<uint32_t>(0);

    compute_kernel_hw_startup(cb_in0, cb_w, cb_out);
    mm_init(cb_in0, cb_w, cb_out);

    cb_wait_front(cb_w, P * M * cin_t * nb);
    if constexpr (has_bias != 0) {
        cb_wait_front(cb_bias, nb);
    }

    constexpr uint32_t per_block = P * M * cin_t;
    for (uint32_t b = 0; b < num_blocks; ++b) {
        cb_wait_front(cb_in0, per_block);
        if constexpr (pre_act != 0) {
            // in0 -> DEST -> input activation -> CB 5, `group` tiles at a time.
            cb_reserve_back(cb_pre, per_block);
            for (uint32_t i0 = 0; i0 < per_block; i0 += group) {
                const uint32_t n = per_block - i0 < group ? per_block - i0 : group;
                tile_regs_acquire();
                if constexpr (exact != 0) {
                    reconfig_data_format_srca(cb_in0);
                }
                copy_tile_init(cb_in0);
                for (uint32_t j = 0; j < n; ++j) {
                    copy_tile(cb_in0, i0 + j, j);
                }
                activate<pre_act, pre_param>(0, n);
                tile_regs_commit();
                tile_regs_wait();
                if constexpr (exact != 0) {
                    pack_reconfig_data_format(cb_pre);  // the input format; cb_out may differ
                }
                for (uint32_t j = 0; j < n; ++j) {
                    pack_tile(j, cb_pre);
                }
                tile_regs_release();
            }
            cb_push_back(cb_pre, per_block);
            cb_pop_front(cb_in0, per_block);
            cb_wait_front(cb_pre, per_block);
        }
        if constexpr (has_residual != 0) {
            cb_wait_front(cb_res, P * nb);
        }
        for (uint32_t p = 0; p < P; ++p) {
            for (uint32_t w0 = 0; w0 < nb; w0 += group) {
                const uint32_t gw = nb - w0 < group ? nb - w0 : group;
                tile_regs_acquire();
                if constexpr (exact != 0 && has_bias != 0) {
                    reconfig_data_format_srca(cb_bias);
                    copy_tile_to_dst_init_short(cb_bias);
                    for (uint32_t j = 0; j < gw; ++j) {
                        copy_tile(cb_bias, w0 + j, j);
                    }
                }
                if constexpr (exact != 0) {
                    // SrcA last held the bias, the input (input activation) or the residual.
                    reconfig_data_format_srca(cb_w);
                }
                mm_init_short(cb_mm, cb_w);
                for (uint32_t j = 0; j < gw; ++j) {
                    const uint32_t w = w0 + j;
                    const uint32_t c_lo = get_arg_val<uint32_t>(1 + 2 * w);
                    const uint32_t c_hi = get_arg_val<uint32_t>(2 + 2 * w);
                    for (uint32_t m = 0; m < M; ++m) {
                        const uint32_t pm = (p * M + m) * cin_t;
                        for (uint32_t c = c_lo; c < c_hi; ++c) {
                            matmul_tiles(cb_mm, cb_w, pm + c, (pm + c) * nb + w, j);
                        }
                    }
                }
                if constexpr (exact == 0 && has_bias != 0) {
                    binary_dest_reuse_tiles_init<EltwiseBinaryType::ELWADD,
                                                 EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_bias);
                    for (uint32_t j = 0; j < gw; ++j) {
                        binary_dest_reuse_tiles<EltwiseBinaryType::ELWADD,
                                                EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_bias, w0 + j, j);
                    }
                }
                activate<act, act_param>(0, gw);
                if constexpr (exact != 0 && has_residual != 0) {
                    reconfig_data_format_srca(cb_res);
                    copy_tile_to_dst_init_short(cb_res);
                    for (uint32_t j = 0; j < gw; ++j) {
                        copy_tile(cb_res, p * nb + w0 + j, group + j);
                    }
                    add_binary_tile_init();
                    for (uint32_t j = 0; j < gw; ++j) {
                        add_binary_tile(j, group + j, j);
                    }
                } else if constexpr (has_residual != 0) {
                    binary_dest_reuse_tiles_init<EltwiseBinaryType::ELWADD,
                                                 EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_res);
                    for (uint32_t j = 0; j < gw; ++j) {
                        binary_dest_reuse_tiles<EltwiseBinaryType::ELWADD,
                                                EltwiseBinaryReuseDestType::DEST_TO_SRCA>(cb_res, p * nb + w0 + j, j);
                    }
                }
                tile_regs_commit();

                cb_reserve_back(cb_out, gw);
                tile_regs_wait();
                if constexpr (exact != 0) {
                    pack_reconfig_data_format(cb_out);
                }
                for (uint32_t j = 0; j < gw; ++j) {
                    pack_tile(j, cb_out);
                }
                tile_regs_release();
                cb_push_back(cb_out, gw);
            }
        }
        cb_pop_front(cb_mm, per_block);
        if constexpr (has_residual != 0) {
            cb_pop_front(cb_res, P * nb);
        }
    }
}
