// Row gather for tiled bf16 matrices: builds every output tile (32 rows x 32 columns) row by row
// from rows of a tiled source matrix [src_rows, C], and pushes it to CB `cb_out`. Two modes:
//
// - MODE 0, embedding gather: output row j is source row ids[j] (ids: u32 in an interleaved
//   buffer of 128-byte pages, 32 ids per page). Rows j >= n_index and rows whose id is out of
//   range are zero; the number of out-of-range ids is written to aux word 0.
// - MODE 1, duration expansion: output row j is source row i where cum[i] <= j < cum[i + 1] and
//   cum is the integer prefix sum of the durations (u32, same page layout, n_index entries). The
//   prefix sum is computed here, on integers; rows j >= sum(durations) are zero. The total
//   sum(durations) is written to aux word 0 (the host checks it against the capacity).
//
// A bf16 tile is 4 faces of 16x16 (face = (r / 16) * 2 + c / 16, row-major inside a face), so a
// tile row r is two 32-byte runs at byte offsets ((r / 16) * 512 + (r % 16) * 16) * 2 and that
// plus 512. DRAM reads must be aligned to the DRAM alignment (32 B Wormhole, 64 B Blackhole):
// each run is fetched as the 64-byte aligned chunk containing it into a scratch CB and copied
// into the output tile with 32-bit loads/stores.
//
// Compile-time args: TensorAccessorArgs of the source table, of the index buffer, of the aux
// buffer (2 words each), then mode, cb_out, cb_scratch.
// Runtime args: table_addr, index_addr, aux_addr, first_tile_row, num_tile_rows, tile_cols,
//   src_rows, n_index, write_aux. A core builds output tile rows [first, first + num); in mode 1
//   it first walks the prefix sum over the rows before its range (integer work only). Only the
//   core with write_aux != 0 writes the aux word.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {

constexpr uint32_t kChunk = 64;  // bytes per aligned DRAM read (covers 32 B and 64 B alignment)
constexpr uint32_t kIdsPerPage = 32;
constexpr uint32_t kIndexPageBytes = kIdsPerPage * 4;
constexpr uint32_t kNoRow = 0xFFFFFFFFu;

// Byte offset of the first 16-element run of tile row `r` in a bf16 tile.
inline uint32_t row_offset(uint32_t r) { return ((r / 16) * 512 + (r % 16) * 16) * 2; }

template <typename Acc>
struct IndexReader {
    const Acc& acc;
    uint32_t l1;              // 128-byte scratch holding one index page
    uint32_t page = kNoRow;   // page currently in scratch
    uint32_t get(uint32_t i) {
        const uint32_t p = i / kIdsPerPage;
        if (p != page) {
            noc_async_read(acc.get_noc_addr(p), l1, kIndexPageBytes);
            noc_async_read_barrier();
            page = p;
        }
        return reinterpret_cast<volatile tt_l1_ptr uint32_t*>(l1)[i % kIdsPerPage];
    }
};

}  // namespace

void kernel_main() {
    const uint32_t table_addr = get_arg_val<uint32_t>(0);
    const uint32_t index_addr = get_arg_val<uint32_t>(1);
    const uint32_t aux_addr = get_arg_val<uint32_t>(2);
    const uint32_t first_tile_row = get_arg_val<uint32_t>(3);
    const uint32_t num_tile_rows = get_arg_val<uint32_t>(4);
    const uint32_t tile_cols = get_arg_val<uint32_t>(5);
    const uint32_t src_rows = get_arg_val<uint32_t>(6);
    const uint32_t n_index = get_arg_val<uint32_t>(7);
    const uint32_t write_aux = get_arg_val<uint32_t>(8);

    constexpr auto table_args = TensorAccessorArgs<0>();
    constexpr auto index_args = TensorAccessorArgs<table_args.next_compile_time_args_offset()>();
    constexpr auto aux_args = TensorAccessorArgs<index_args.next_compile_time_args_offset()>();
    constexpr uint32_t ct_base = aux_args.next_compile_time_args_offset();
    constexpr uint32_t mode = get_compile_time_arg_val(ct_base);
    constexpr uint32_t cb_out = get_compile_time_arg_val(ct_base + 1);
    constexpr uint32_t cb_scratch = get_compile_time_arg_val(ct_base + 2);

    const uint32_t tile_bytes = get_tile_size(cb_out);
    const auto table = TensorAccessor(table_args, table_addr, tile_bytes);
    const auto index = TensorAccessor(index_args, index_addr, kIndexPageBytes);
    const auto aux = TensorAccessor(aux_args, aux_addr, kChunk);

    // Scratch layout: [0, 128) index page, [128, 256) two row chunks, [256, 320) aux word.
    cb_reserve_back(cb_scratch, 1);
    const uint32_t scratch = get_write_ptr(cb_scratch);
    IndexReader<decltype(index)> ids{index, scratch};
    const uint32_t chunk_l1 = scratch + kIndexPageBytes;
    const uint32_t aux_l1 = chunk_l1 + 2 * kChunk;

    // Duration-expansion state: current source row and repeats left of it.
    uint32_t cur = 0;
    uint32_t left = (mode == 1 && n_index > 0) ? ids.get(0) : 0;
    uint32_t src[32];

    if constexpr (mode == 1) {
        // Skip the output rows of the cores before this one.
        for (uint32_t j = 0; j < first_tile_row * 32; ++j) {
            while (left == 0 && cur < n_index) {
                ++cur;
                left = cur < n_index ? ids.get(cur) : 0;
            }
            if (cur >= n_index) {
                break;
            }
            --left;
        }
    }
    for (uint32_t tr = first_tile_row; tr < first_tile_row + num_tile_rows; ++tr) {
        for (uint32_t r = 0; r < 32; ++r) {
            const uint32_t j = tr * 32 + r;
            uint32_t s = kNoRow;
            if constexpr (mode == 0) {
                if (j < n_index) {
                    const uint32_t id = ids.get(j);
                    if (id < src_rows) {
                        s = id;
                    }
                }
            } else {
                while (left == 0 && cur < n_index) {
                    ++cur;
                    left = cur < n_index ? ids.get(cur) : 0;
                }
                if (cur < n_index) {
                    s = cur;
                    --left;
                }
            }
            src[r] = s;
        }
        for (uint32_t ct = 0; ct < tile_cols; ++ct) {
            cb_reserve_back(cb_out, 1);
            const uint32_t out_l1 = get_write_ptr(cb_out);
            for (uint32_t r = 0; r < 32; ++r) {
                volatile tt_l1_ptr uint32_t* dst0 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(out_l1 + row_offset(r));
                volatile tt_l1_ptr uint32_t* dst1 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(out_l1 + row_offset(r) + 512);
                if (src[r] == kNoRow) {
                    for (uint32_t w = 0; w < 8; ++w) {
                        dst0[w] = 0;
                        dst1[w] = 0;
                    }
                    continue;
                }
                const uint32_t page = (src[r] / 32) * tile_cols + ct;
                const uint32_t off = row_offset(src[r] % 32);
                const uint32_t aligned = off & ~(kChunk - 1);
                noc_async_read(table.get_noc_addr(page, aligned), chunk_l1, kChunk);
                noc_async_read(table.get_noc_addr(page, aligned + 512), chunk_l1 + kChunk, kChunk);
                noc_async_read_barrier();
                volatile tt_l1_ptr uint32_t* c0 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(chunk_l1 + (off - aligned));
                volatile tt_l1_ptr uint32_t* c1 =
                    reinterpret_cast<volatile tt_l1_ptr uint32_t*>(chunk_l1 + kChunk + (off - aligned));
                for (uint32_t w = 0; w < 8; ++w) {
                    dst0[w] = c0[w];
                    dst1[w] = c1[w];
                }
            }
            cb_push_back(cb_out, 1);
        }
    }

    if (write_aux == 0) {
        return;
    }
    // Aux word 0: out-of-range ids (gather) or the integer total of the durations (expansion).
    // Every index is scanned (not only this core's rows), so one core reports for all.
    uint32_t word = 0;
    for (uint32_t i = 0; i < n_index; ++i) {
        const uint32_t v = ids.get(i);
        if constexpr (mode == 1) {
            word += v;
        } else {
            word += v >= src_rows ? 1u : 0u;
        }
    }
    volatile tt_l1_ptr uint32_t* aux_words = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(aux_l1);
    for (uint32_t w = 0; w < kChunk / 4; ++w) {
        aux_words[w] = 0;
    }
    aux_words[0] = word;
    noc_async_write(aux_l1, aux.get_noc_addr(0), kChunk);
    noc_async_write_barrier();
}
