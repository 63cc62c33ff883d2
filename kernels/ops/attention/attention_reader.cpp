// Multi-head attention, reader (RISCV_0). Once: the softmax scaler tile (all 1.0) and, for VITS
// relative attention, RelK^T ([d, 2w+1] as Dt tiles) and RelV ([2w+1, d] as Dt tiles). Per work
// item (head h, query tile row qi): the Dt tiles of Q[qi, h]; the Tk * Dt tiles of K[:, h]
// (streamed, the compute transposes them); all Tk * Dt tiles of V[:, h]; then one score-bias
// tile per key tile kj, built element by element (data movement only, no arithmetic):
//
//   B[i, j] = M                      if j >= T, j >= valid_len, or (causal and j > i)
//           = R[i, j - i + w]        if VITS and |j - i| <= w      (R from the compute, cb_r)
//           = 0                      otherwise
//
// with M = -2^100 (exp(M - max) is 0 in every format). Elements are 2 (bf16) or 4 (fp32) bytes.
// Q, K, V are [T, C] with head h in columns [h * d, (h + 1) * d), d = 32 * Dt.
//
// Split variant (`split`, attention_split_compute.cpp): also, once, the Float32 tiles of CB 8
// (tile 0 all ones, tile 1 + r ones at the columns c = r mod 8, zero elsewhere); RelK^T and RelV
// are 2 Dt tiles each (hi and lo halves split on the host); per item, after Q (and, for VITS,
// once R has come back), the Dt K tiles of each key tile kj are followed by its bias tile, and
// the V tiles are streamed one at a time after the last bias tile (the compute keeps neither
// K^T nor V resident: it uses them one key tile at a time).
//
// Compile-time args: TensorAccessorArgs of Q, K, V, RelK^T, RelV (2 words each), then Ct, Dt,
//   Tk, T, has_rel, w, causal, elem_bytes, split.
// Runtime args: q_addr, k_addr, v_addr, relkt_addr, relv_addr, valid_len, num_items, then
//   (h, qi) per item.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t cb_q = 0;
constexpr uint32_t cb_k = 1;
constexpr uint32_t cb_v = 2;
constexpr uint32_t cb_bias = 3;
constexpr uint32_t cb_relkt = 4;
constexpr uint32_t cb_relv = 5;
constexpr uint32_t cb_scaler = 6;
constexpr uint32_t cb_mask = 8;
constexpr uint32_t cb_r = 26;

inline uint32_t face_index(uint32_t r, uint32_t c) {
    return ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16;
}
}  // namespace

void kernel_main() {
    const uint32_t q_addr = get_arg_val<uint32_t>(0);
    const uint32_t k_addr = get_arg_val<uint32_t>(1);
    const uint32_t v_addr = get_arg_val<uint32_t>(2);
    const uint32_t relkt_addr = get_arg_val<uint32_t>(3);
    const uint32_t relv_addr = get_arg_val<uint32_t>(4);
    const uint32_t valid_len = get_arg_val<uint32_t>(5);
    const uint32_t num_items = get_arg_val<uint32_t>(6);

    constexpr auto q_args = TensorAccessorArgs<0>();
    constexpr auto k_args = TensorAccessorArgs<q_args.next_compile_time_args_offset()>();
    constexpr auto v_args = TensorAccessorArgs<k_args.next_compile_time_args_offset()>();
    constexpr auto relkt_args = TensorAccessorArgs<v_args.next_compile_time_args_offset()>();
    constexpr auto relv_args = TensorAccessorArgs<relkt_args.next_compile_time_args_offset()>();
    constexpr uint32_t c = relv_args.next_compile_time_args_offset();
    constexpr uint32_t Ct = get_compile_time_arg_val(c);
    constexpr uint32_t Dt = get_compile_time_arg_val(c + 1);
    constexpr uint32_t Tk = get_compile_time_arg_val(c + 2);
    constexpr uint32_t T = get_compile_time_arg_val(c + 3);
    constexpr uint32_t has_rel = get_compile_time_arg_val(c + 4);
    constexpr uint32_t w = get_compile_time_arg_val(c + 5);
    constexpr uint32_t causal = get_compile_time_arg_val(c + 6);
    constexpr uint32_t elem_bytes = get_compile_time_arg_val(c + 7);
    constexpr uint32_t split = get_compile_time_arg_val(c + 8);
    constexpr uint32_t rel_tiles = split != 0 ? 2 * Dt : Dt;

    const uint32_t in_tile = get_tile_size(cb_q);
    const uint32_t rel_tile = get_tile_size(cb_relkt);
    const auto q = TensorAccessor(q_args, q_addr, in_tile);
    const auto k = TensorAccessor(k_args, k_addr, in_tile);
    const auto v = TensorAccessor(v_args, v_addr, in_tile);
    const auto relkt = TensorAccessor(relkt_args, relkt_addr, rel_tile);
    const auto relv = TensorAccessor(relv_args, relv_addr, rel_tile);

    // Scaler: bf16 1.0 everywhere.
    cb_reserve_back(cb_scaler, 1);
    {
        volatile tt_l1_ptr uint32_t* s = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(cb_scaler));
        for (uint32_t i = 0; i < 512; ++i) {
            s[i] = 0x3F803F80u;
        }
    }
    cb_push_back(cb_scaler, 1);
    if constexpr (split != 0) {
        cb_reserve_back(cb_mask, 9);
        volatile tt_l1_ptr uint32_t* m = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(get_write_ptr(cb_mask));
        for (uint32_t t = 0; t < 9; ++t) {
            for (uint32_t r = 0; r < 32; ++r) {
                for (uint32_t cc = 0; cc < 32; ++cc) {
                    const bool one = t == 0 || cc % 8 == t - 1;
                    m[t * 1024 + face_index(r, cc)] = one ? 0x3F800000u : 0u;
                }
            }
        }
        cb_push_back(cb_mask, 9);
    }
    if constexpr (has_rel != 0) {
        cb_reserve_back(cb_relkt, rel_tiles);
        cb_reserve_back(cb_relv, rel_tiles);
        for (uint32_t i = 0; i < rel_tiles; ++i) {
            noc_async_read_tile(i, relkt, get_write_ptr(cb_relkt) + i * rel_tile);
            noc_async_read_tile(i, relv, get_write_ptr(cb_relv) + i * rel_tile);
        }
        noc_async_read_barrier();
        cb_push_back(cb_relkt, rel_tiles);
        cb_push_back(cb_relv, rel_tiles);
    }

    for (uint32_t item = 0; item < num_items; ++item) {
        const uint32_t h = get_arg_val<uint32_t>(7 + 2 * item);
        const uint32_t qi = get_arg_val<uint32_t>(8 + 2 * item);

        cb_reserve_back(cb_q, Dt);
        for (uint32_t dt = 0; dt < Dt; ++dt) {
            noc_async_read_tile(qi * Ct + h * Dt + dt, q, get_write_ptr(cb_q) + dt * in_tile);
        }
        noc_async_read_barrier();
        cb_push_back(cb_q, Dt);

        // The K tiles of key tile kj (streamed; the compute transposes them).
        auto send_k = [&](uint32_t kj) {
            for (uint32_t dt = 0; dt < Dt; ++dt) {
                cb_reserve_back(cb_k, 1);
                noc_async_read_tile(kj * Ct + h * Dt + dt, k, get_write_ptr(cb_k));
                noc_async_read_barrier();
                cb_push_back(cb_k, 1);
            }
        };
        // The score-bias tile of key tile kj (R at r_l1 when has_rel).
        auto send_bias = [&](uint32_t kj, uint32_t r_l1) {
            cb_reserve_back(cb_bias, 1);
            const uint32_t b_l1 = get_write_ptr(cb_bias);
            for (uint32_t r = 0; r < 32; ++r) {
                const uint32_t i = qi * 32 + r;
                for (uint32_t cc = 0; cc < 32; ++cc) {
                    const uint32_t j = kj * 32 + cc;
                    const bool masked = j >= T || j >= valid_len || (causal != 0 && j > i);
                    const uint32_t e = face_index(r, cc);
                    uint32_t src = 0xFFFFFFFFu;
                    if (!masked && has_rel != 0 && j + w >= i && j <= i + w) {
                        src = face_index(r, j + w - i);
                    }
                    if constexpr (elem_bytes == 4) {
                        volatile tt_l1_ptr uint32_t* d = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(b_l1);
                        const volatile tt_l1_ptr uint32_t* rr = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(r_l1);
                        d[e] = masked ? 0xF1800000u : (src != 0xFFFFFFFFu ? rr[src] : 0u);
                    } else {
                        volatile tt_l1_ptr uint16_t* d = reinterpret_cast<volatile tt_l1_ptr uint16_t*>(b_l1);
                        const volatile tt_l1_ptr uint16_t* rr = reinterpret_cast<volatile tt_l1_ptr uint16_t*>(r_l1);
                        d[e] = masked ? uint16_t(0xF180u) : (src != 0xFFFFFFFFu ? rr[src] : uint16_t(0));
                    }
                }
            }
            cb_push_back(cb_bias, 1);
        };

        if constexpr (split == 0) {
            for (uint32_t kj = 0; kj < Tk; ++kj) {
                send_k(kj);
            }
            cb_reserve_back(cb_v, Tk * Dt);
            for (uint32_t kj = 0; kj < Tk; ++kj) {
                for (uint32_t dt = 0; dt < Dt; ++dt) {
                    noc_async_read_tile(kj * Ct + h * Dt + dt, v, get_write_ptr(cb_v) + (kj * Dt + dt) * in_tile);
                }
            }
            noc_async_read_barrier();
            cb_push_back(cb_v, Tk * Dt);
        }

        uint32_t r_l1 = 0;
        if constexpr (has_rel != 0) {
            cb_wait_front(cb_r, 1);
            r_l1 = get_read_ptr(cb_r);
        }
        for (uint32_t kj = 0; kj < Tk; ++kj) {
            if constexpr (split != 0) {
                send_k(kj);
            }
            send_bias(kj, r_l1);
        }
        if constexpr (has_rel != 0) {
            cb_pop_front(cb_r, 1);
        }
        if constexpr (split != 0) {
            for (uint32_t kj = 0; kj < Tk; ++kj) {
                for (uint32_t dt = 0; dt < Dt; ++dt) {
                    cb_reserve_back(cb_v, 1);
                    noc_async_read_tile(kj * Ct + h * Dt + dt, v, get_write_ptr(cb_v));
                    noc_async_read_barrier();
                    cb_push_back(cb_v, 1);
                }
            }
        }
    }
}
