// Multi-head attention, writer (RISCV_1). Per work item (head h, query tile row qi):
// for VITS relative attention, takes the unnormalised P tiles kj in [qi - 1, qi + 1] ∩ [0, Tk)
// from the compute (cb_pb) and returns the banded tile Pband[i, m] = P[i, i + m - w] for
// m < 2w + 1 (zero elsewhere and outside the sequence) in cb_pu (an element shuffle, no
// arithmetic; elements are 2 or 4 bytes); then writes the Dt output tiles O[qi, h] to DRAM.
//
// Compile-time args: TensorAccessorArgs of the output (2 words), then Ct, Dt, Tk, has_rel, w,
//   elem_bytes.
// Runtime args: out_addr, num_items, then (h, qi) per item.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t cb_pu = 7;
constexpr uint32_t cb_out = 16;
constexpr uint32_t cb_pb = 31;

inline uint32_t face_index(uint32_t r, uint32_t c) {
    return ((r / 16) * 2 + c / 16) * 256 + (r % 16) * 16 + c % 16;
}
}  // namespace

void kernel_main() {
    const uint32_t out_addr = get_arg_val<uint32_t>(0);
    const uint32_t num_items = get_arg_val<uint32_t>(1);

    constexpr auto out_args = TensorAccessorArgs<0>();
    constexpr uint32_t c = out_args.next_compile_time_args_offset();
    constexpr uint32_t Ct = get_compile_time_arg_val(c);
    constexpr uint32_t Dt = get_compile_time_arg_val(c + 1);
    constexpr uint32_t Tk = get_compile_time_arg_val(c + 2);
    constexpr uint32_t has_rel = get_compile_time_arg_val(c + 3);
    constexpr uint32_t w = get_compile_time_arg_val(c + 4);
    constexpr uint32_t elem_bytes = get_compile_time_arg_val(c + 5);

    const uint32_t out_tile = get_tile_size(cb_out);
    const auto out = TensorAccessor(out_args, out_addr, out_tile);

    for (uint32_t item = 0; item < num_items; ++item) {
        const uint32_t h = get_arg_val<uint32_t>(2 + 2 * item);
        const uint32_t qi = get_arg_val<uint32_t>(3 + 2 * item);

        if constexpr (has_rel != 0) {
            const uint32_t lo = qi == 0 ? 0 : qi - 1;
            const uint32_t hi = qi + 1 < Tk ? qi + 1 : Tk - 1;
            cb_reserve_back(cb_pu, 1);
            const uint32_t pu = get_write_ptr(cb_pu);
            const uint32_t tile_bytes = get_tile_size(cb_pb);
            volatile tt_l1_ptr uint32_t* z = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(pu);
            for (uint32_t i = 0; i < tile_bytes / 4; ++i) {
                z[i] = 0;
            }
            // One band tile at a time (1 to 3 per item: whole pages never straddle the CB's end).
            for (uint32_t kt = lo; kt <= hi; ++kt) {
                cb_wait_front(cb_pb, 1);
                const uint32_t src = get_read_ptr(cb_pb);
                for (uint32_t r = 0; r < 32; ++r) {
                    const uint32_t i = qi * 32 + r;
                    for (uint32_t m = 0; m < 2 * w + 1; ++m) {
                        if (i + m < w) {
                            continue;
                        }
                        const uint32_t j = i + m - w;
                        if (j / 32 != kt) {
                            continue;
                        }
                        const uint32_t se = face_index(r, j % 32);
                        const uint32_t de = face_index(r, m);
                        if constexpr (elem_bytes == 4) {
                            reinterpret_cast<volatile tt_l1_ptr uint32_t*>(pu)[de] =
                                reinterpret_cast<volatile tt_l1_ptr uint32_t*>(src)[se];
                        } else {
                            reinterpret_cast<volatile tt_l1_ptr uint16_t*>(pu)[de] =
                                reinterpret_cast<volatile tt_l1_ptr uint16_t*>(src)[se];
                        }
                    }
                }
                cb_pop_front(cb_pb, 1);
            }
            cb_push_back(cb_pu, 1);
        }

        for (uint32_t dt = 0; dt < Dt; ++dt) {
            cb_wait_front(cb_out, 1);
            noc_async_write_tile(qi * Ct + h * Dt + dt, out, get_read_ptr(cb_out));
            noc_async_write_barrier();
            cb_pop_front(cb_out, 1);
        }
    }
}
