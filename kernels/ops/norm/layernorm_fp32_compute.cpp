// Layernorm, Float32 activations (fp32 DEST): y = (x - mean) / sqrt(var + eps) * gamma + beta over
// the C valid columns of each time row, with every elementwise step exact fp32 on the SFPU.
//
// Operands that must stay exact are copied to DEST without loss (Float32 CBs 0 (when Float32), 3,
// 4, 5, 7, 11 unpack straight to DEST, UnpackToDestFp32; bf16 / bfp8_b inputs are exact through
// SrcA) and combined with add/sub/mul_binary_tile (fp32). Only the row sums use the FPU: a matmul
// with an all-ones Float32 tile accumulated in the fp32 DEST (`row_mean`; operands read as TF32,
// MVMUL alignment within groups of eight products). Each statistic is refined once so that the FPU
// only sums centred residuals, and the refining sums add the TF32 part and the lost low part
// (`split_lo`, CB 12) of each value, so operand truncation drops from 2^-10 to 2^-20. With
// ISOLATE the refining sums of the TF32 parts also isolate their products (`row_sums`): eight
// matmuls per tile against masked ones tiles (CB 1 tiles 1..8, ones in K rows k = r mod 8), each
// MVMUL group of eight K then holding one non-zero product, so a large value (an outlier channel)
// no longer rounds its group's other products at 2^-12 of itself; every partial sum is rounded
// only by the fp32 DEST. The first estimates need no isolation: their error is what the
// refinement measures. CB 1 tile 0 is all ones. The host compiles this kernel at HiFi3: every FPU
// product has a ones tile in SrcA, whose odd-phase mantissa slice is zero (phase 3 adds nothing).
//   1. A = x (the last tile times the column mask when C % 32 != 0)        -> CB 5 (exact), CB 6;
//   2. m1 = rowsum(A) / C (FPU)                                            -> CB 9;
//   3. B = A - m1 (m1 read through SrcA as TF32, used consistently)        -> CB 7 (exact), CB 8;
//   4. c = rowsum(B) / C (FPU, hi + lo; B is centred: error relative to |x - m1|) -> CB 10;
//   5. d = B - c (= x - (m1 + c))                                          -> CB 5; d^2 -> CB 6;
//   6. v1 = rowsum(d^2) / C (FPU)                                          -> CB 9;
//   7. R = d^2 - v1                                                        -> CB 7 (exact), CB 8;
//   8. c2 = rowsum(R) / C (FPU, hi + lo; residuals of both signs)           -> CB 10;
//   9. var = v1 + c2; rstd = rsqrt(var + eps), then two Newton steps
//      r <- r (1.5 - 0.5 (var + eps) r^2) in fp32 (the SFPU rsqrt may be a few bf16 ulp off on
//      hardware; two steps bring 2^-6 down to ~2^-22)                       -> CB 11 (all columns);
//  10. y = d * rstd * gamma + beta (gamma, beta: full Float32 tiles, every row the same) -> CB 16.
// The mask is re-applied after every step that could make the padding columns non-zero.
//
// Compile-time args: 0 ct, 1 inv_c (f32 bits), 2 eps (f32 bits). Define HAS_MASK when C % 32 != 0,
// ISOLATE to isolate the refining sums' products (CB 1 then holds 9 tiles).
// Runtime args: 0 num_rows.
#include <cstdint>

#include "api/compute/compute_kernel_hw_startup.h"
#include "api/compute/bcast.h"
#include "api/compute/matmul.h"
#include "api/compute/tile_move_copy.h"
#include "api/compute/reconfig_data_format.h"
#include "api/compute/pack.h"
#include "api/compute/eltwise_unary/eltwise_unary.h"
#include "api/compute/eltwise_unary/rsqrt.h"
#include "api/compute/eltwise_unary/binop_with_scalar.h"
#include "api/compute/eltwise_binary_sfpu.h"

namespace {
constexpr uint32_t cb_x = 0, cb_ones = 1, cb_mask = 2, cb_gamma = 3, cb_beta = 4;
constexpr uint32_t cb_a = 5, cb_ar = 6, cb_b = 7, cb_br = 8, cb_s1 = 9, cb_s2 = 10, cb_rstd = 11;
constexpr uint32_t cb_part = 12;
constexpr uint32_t cb_lo = 12, cb_out = 16;
constexpr uint32_t minus_half = 0xBF000000u, three_halves = 0x3FC00000u;
#ifdef ISOLATE
constexpr bool kIsolate = true;
#else
constexpr bool kIsolate = false;
#endif

// DEST tile d <- tile t of cb, exactly.
inline void load(uint32_t cb, uint32_t t, uint32_t d) {
    reconfig_data_format_srca(cb);
    copy_tile_to_dst_init_short(cb);
    copy_tile(cb, t, d);
}

// DEST tile d <- column 0 of tile 0 of cb, broadcast over the columns (through SrcA: TF32).
inline void load_col(uint32_t cb, uint32_t d) {
    reconfig_data_format_srca(cb);
    unary_bcast_init<BroadcastType::COL>(cb, cb_out);
    unary_bcast<BroadcastType::COL>(cb, 0, d);
}

// DEST tile d *= the column mask (row 0 of CB 2 broadcast over the rows; 1.0 / 0.0 exact).
inline void mask(uint32_t d, uint32_t tmp) {
    reconfig_data_format_srca(cb_mask);
    unary_bcast_init<BroadcastType::ROW>(cb_mask, cb_out);
    unary_bcast<BroadcastType::ROW>(cb_mask, 0, tmp);
    mul_binary_tile_init();
    mul_binary_tile(d, tmp, d);
}

inline void mask_if_last(uint32_t c, uint32_t ct, uint32_t d, uint32_t tmp) {
#ifdef HAS_MASK
    if (c + 1 == ct) {
        mask(d, tmp);
    }
#else
    (void)c;
    (void)ct;
    (void)d;
    (void)tmp;
#endif
}

inline void sub(uint32_t a, uint32_t b, uint32_t o) {
    sub_binary_tile_init();
    sub_binary_tile(a, b, o);
}
inline void mul(uint32_t a, uint32_t b, uint32_t o) {
    mul_binary_tile_init();
    mul_binary_tile(a, b, o);
}
inline void add(uint32_t a, uint32_t b, uint32_t o) {
    add_binary_tile_init();
    add_binary_tile(a, b, o);
}

// Packs DEST tile d to the back of cb (one tile).
inline void pack_to(uint32_t d, uint32_t cb) {
    cb_reserve_back(cb, 1);
    pack_reconfig_data_format(cb);
    pack_tile(d, cb);
    cb_push_back(cb, 1);
}

// DEST tile 0 += the row sums of the n tiles of cb (every column), popped. With `isolate`, each
// tile is multiplied by the eight masked ones tiles (CB 1 tiles 1 + r: ones in the rows
// k = r mod 8, i.e. in1's K rows) instead of the all-ones tile 0, so every MVMUL group of eight
// consecutive K holds one non-zero product and none is rounded by the group's alignment.
inline void row_sums(uint32_t cb, uint32_t n, bool isolate) {
    cb_wait_front(cb, n);
    reconfig_data_format(cb_ones, cb);
    mm_init_short(cb, cb_ones);
    for (uint32_t c = 0; c < n; ++c) {
        if (isolate) {
            for (uint32_t r = 1; r <= 8; ++r) {
                matmul_tiles(cb, cb_ones, c, r, 0);
            }
        } else {
            matmul_tiles(cb, cb_ones, c, 0, 0);
        }
    }
    cb_pop_front(cb, n);
}

// Row means of the n tiles of cb (plus, with `lo`, of the n tiles of CB 12) -> every column of a
// tile of cb_stat; pops the inputs. The row sums are a matmul with an all-ones tile (in0 = the
// data through SrcB as TF32, MVMUL products summed in groups of eight and rounded into the fp32
// DEST, accumulated over the tiles in DEST), then scaled by inv_c on the SFPU. Unlike
// `reduce_tile` ROW, no partial sum goes back through a source register (which would truncate it
// to TF32).
inline void row_mean(uint32_t cb, uint32_t n, uint32_t inv_c, uint32_t cb_stat, bool lo) {
    tile_regs_acquire();
    // The refining sums (those with a lo part) isolate the products of the hi part; the lo
    // parts (<= 2^-11 of each value) and the first estimates (whose error the refinement
    // removes) use the all-ones tile.
    row_sums(cb, n, lo && kIsolate);
    if (lo) {
        row_sums(cb_lo, n, false);
    }
    binop_with_scalar_tile_init();
    mul_unary_tile(0, inv_c);
    tile_regs_commit();
    tile_regs_wait();
    pack_to(0, cb_stat);
    tile_regs_release();
    cb_wait_front(cb_stat, 1);
}

// CB 12 <- the parts of the n values of cb_exact (exact copy, unpacked to DEST) that the FPU loses
// when it reads the same values from cb_fpu as TF32: v - TF32(v), exact in fp32 (the low 13
// mantissa bits), itself read as TF32 later (a 2^-10 loss of a 2^-10 part).
inline void split_lo(uint32_t cb_exact, uint32_t cb_fpu, uint32_t n) {
    cb_wait_front(cb_exact, n);
    cb_wait_front(cb_fpu, n);
    for (uint32_t c = 0; c < n; ++c) {
        tile_regs_acquire();
        load(cb_exact, c, 0);
        load(cb_fpu, c, 1);
        sub(0, 1, 0);
        tile_regs_commit();
        tile_regs_wait();
        pack_to(0, cb_lo);
        tile_regs_release();
    }
}

// r (DEST tile r) <- r (1.5 - 0.5 v r^2), v in DEST tile v, scratch DEST tile t.
inline void newton(uint32_t r, uint32_t v, uint32_t t) {
    mul(r, r, t);
    mul(t, v, t);
    binop_with_scalar_tile_init();
    mul_unary_tile(t, minus_half);
    add_unary_tile(t, three_halves);
    mul(r, t, r);
}
}  // namespace

void kernel_main() {
    constexpr uint32_t ct = get_compile_time_arg_val(0);
    constexpr uint32_t inv_c = get_compile_time_arg_val(1);
    constexpr uint32_t eps = get_compile_time_arg_val(2);
    const uint32_t num_rows = get_arg_val<uint32_t>(0);

    compute_kernel_hw_startup(cb_x, cb_ones, cb_out);
    cb_wait_front(cb_ones, kIsolate ? 9 : 1);
#ifdef HAS_MASK
    cb_wait_front(cb_mask, 1);
#endif
    cb_wait_front(cb_gamma, ct);
    cb_wait_front(cb_beta, ct);

    for (uint32_t row = 0; row < num_rows; ++row) {
        // 1. A = x, masked.
        cb_wait_front(cb_x, ct);
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            load(cb_x, c, 0);
            mask_if_last(c, ct, 0, 1);
            tile_regs_commit();
            tile_regs_wait();
            pack_to(0, cb_a);
            pack_to(0, cb_ar);
            tile_regs_release();
        }
        cb_pop_front(cb_x, ct);
        // 2. m1
        row_mean(cb_ar, ct, inv_c, cb_s1, false);
        // 3. B = A - m1
        cb_wait_front(cb_a, ct);
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            load(cb_a, c, 0);
            load_col(cb_s1, 1);
            sub(0, 1, 0);
            mask_if_last(c, ct, 0, 1);
            tile_regs_commit();
            tile_regs_wait();
            pack_to(0, cb_b);
            pack_to(0, cb_br);
            tile_regs_release();
        }
        cb_pop_front(cb_a, ct);
        cb_pop_front(cb_s1, 1);
        // 4. c (hi and lo parts of B)
        split_lo(cb_b, cb_br, ct);
        row_mean(cb_br, ct, inv_c, cb_s2, true);
        // 5. d = B - c -> A, d^2 -> Ar
        cb_wait_front(cb_b, ct);
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            load(cb_b, c, 0);
            load_col(cb_s2, 1);
            sub(0, 1, 0);
            mask_if_last(c, ct, 0, 1);
            mul(0, 0, 1);
            tile_regs_commit();
            tile_regs_wait();
            pack_to(0, cb_a);
            pack_to(1, cb_ar);
            tile_regs_release();
        }
        cb_pop_front(cb_b, ct);
        cb_pop_front(cb_s2, 1);
        // 6. v1
        row_mean(cb_ar, ct, inv_c, cb_s1, false);
        // 7. R = d^2 - v1 -> Br
        cb_wait_front(cb_a, ct);
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            load(cb_a, c, 0);
            mul(0, 0, 0);
            load_col(cb_s1, 1);
            sub(0, 1, 0);
            mask_if_last(c, ct, 0, 1);
            tile_regs_commit();
            tile_regs_wait();
            pack_to(0, cb_b);
            pack_to(0, cb_br);
            tile_regs_release();
        }
        // 8. c2 (hi and lo parts of R)
        split_lo(cb_b, cb_br, ct);
        cb_pop_front(cb_b, ct);
        row_mean(cb_br, ct, inv_c, cb_s2, true);
        // 9. rstd: v = v1 + c2 + eps in DEST 0 and 1, rsqrt and two Newton steps in DEST 1.
        tile_regs_acquire();
        for (uint32_t d = 0; d < 2; ++d) {
            load_col(cb_s1, d);
            load_col(cb_s2, 2);
            add(d, 2, d);
            binop_with_scalar_tile_init();
            add_unary_tile(d, eps);
        }
        rsqrt_tile_init();
        rsqrt_tile(1);
        newton(1, 0, 2);
        newton(1, 0, 2);
        tile_regs_commit();
        tile_regs_wait();
        pack_to(1, cb_rstd);
        tile_regs_release();
        cb_pop_front(cb_s1, 1);
        cb_pop_front(cb_s2, 1);
        cb_wait_front(cb_rstd, 1);
        // 10. y = d * rstd * gamma + beta
        for (uint32_t c = 0; c < ct; ++c) {
            tile_regs_acquire();
            load(cb_a, c, 0);
            load(cb_rstd, 0, 1);
            mul(0, 1, 0);
            load(cb_gamma, c, 1);
            mul(0, 1, 0);
            load(cb_beta, c, 1);
            add(0, 1, 0);
            tile_regs_commit();
            tile_regs_wait();
            pack_to(0, cb_out);
            tile_regs_release();
        }
        cb_pop_front(cb_a, ct);
        cb_pop_front(cb_rstd, 1);
    }
}
