// tt-sim emulation layer: the TT-Metal data movement kernel API (0.81-era names).
#pragma once
#include "tt_sim/common.h"

#ifndef NOC_MAX_BURST_SIZE
#define NOC_MAX_BURST_SIZE 8192
#endif
#define NOC_ADDR_LOCAL_BITS 36
#define NOC_ADDR_NODE_ID_BITS 6
#define NOC_UNICAST_WRITE_VC 1
#define NOC_MULTICAST_WRITE_VC 4
#define NOC_XY_ADDR(x, y, addr)                                                                   \
    ((((uint64_t)(y)) << (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS)) |                          \
     (((uint64_t)(x)) << NOC_ADDR_LOCAL_BITS) | ((uint64_t)(addr)))
#define NOC_MULTICAST_ADDR(x_start, y_start, x_end, y_end, addr)                                     \
    ((((uint64_t)(x_start)) << (NOC_ADDR_LOCAL_BITS + 2 * NOC_ADDR_NODE_ID_BITS)) |                   \
     (((uint64_t)(y_start)) << (NOC_ADDR_LOCAL_BITS + 3 * NOC_ADDR_NODE_ID_BITS)) |                   \
     (((uint64_t)(x_end)) << NOC_ADDR_LOCAL_BITS) |                                                  \
     (((uint64_t)(y_end)) << (NOC_ADDR_LOCAL_BITS + NOC_ADDR_NODE_ID_BITS)) | ((uint64_t)(addr)))

constexpr uint32_t align_power_of_2(uint32_t v, uint32_t a) { return (v + a - 1) & ~(a - 1); }

// ---- NoC address helpers ----
FORCE_INLINE uint64_t get_noc_addr(uint32_t noc_x, uint32_t noc_y, uint32_t addr, uint8_t noc = noc_index) {
    (void)noc;
    return NOC_XY_ADDR(noc_x, noc_y, addr);
}
FORCE_INLINE uint64_t get_noc_addr(uint32_t addr, uint8_t noc = noc_index) {
    (void)noc;
    return NOC_XY_ADDR(my_x[0], my_y[0], addr);
}
FORCE_INLINE uint64_t get_noc_addr_helper(uint32_t noc_xy, uint32_t addr) {
    // noc_xy packs y << 6 | x (NOC_XY_ENCODING)
    return NOC_XY_ADDR(noc_xy & 0x3f, (noc_xy >> 6) & 0x3f, addr);
}
FORCE_INLINE uint64_t get_noc_multicast_addr(uint32_t noc_x_start, uint32_t noc_y_start, uint32_t noc_x_end,
                                             uint32_t noc_y_end, uint32_t addr, uint8_t noc = noc_index) {
    (void)noc;
    return NOC_MULTICAST_ADDR(noc_x_start, noc_y_start, noc_x_end, noc_y_end, addr);
}

namespace tt_sim_detail {
template <bool DRAM>
FORCE_INLINE uint32_t num_banks() {
    return DRAM ? tt_sim_info.num_dram_banks : tt_sim_info.num_l1_banks;
}
template <bool DRAM>
FORCE_INLINE uint32_t alignment() {
    return DRAM ? tt_sim_info.dram_alignment : tt_sim_info.l1_alignment;
}
template <bool DRAM>
FORCE_INLINE uint64_t bank_noc_addr(uint32_t bank, uint32_t addr) {
    uint32_t xy = DRAM ? tt_sim_info.dram_bank_xy[bank] : tt_sim_info.l1_bank_xy[bank];
    return NOC_XY_ADDR(xy & 0xffff, xy >> 16, addr);
}
template <bool DRAM>
FORCE_INLINE uint64_t interleaved_addr(uint32_t id, uint32_t aligned_page, uint32_t base, uint32_t offset) {
    uint32_t nb = num_banks<DRAM>();
    uint32_t bank = id % nb;
    uint32_t row = id / nb;
    return bank_noc_addr<DRAM>(bank, base + row * aligned_page + offset);
}
}  // namespace tt_sim_detail

FORCE_INLINE uint64_t get_dram_noc_addr(const uint32_t id, const uint32_t page_size, const uint32_t bank_base_address,
                                        const uint32_t offset = 0, uint8_t noc = noc_index) {
    (void)noc;
    return tt_sim_detail::interleaved_addr<true>(
        id, align_power_of_2(page_size, tt_sim_detail::alignment<true>()), bank_base_address, offset);
}
FORCE_INLINE uint64_t get_l1_noc_addr(const uint32_t id, const uint32_t page_size, const uint32_t bank_base_address,
                                      const uint32_t offset = 0, uint8_t noc = noc_index) {
    (void)noc;
    return tt_sim_detail::interleaved_addr<false>(
        id, align_power_of_2(page_size, tt_sim_detail::alignment<false>()), bank_base_address, offset);
}
template <bool DRAM>
FORCE_INLINE uint64_t get_noc_addr_from_bank_id(uint32_t bank_id, uint32_t bank_address_offset,
                                                uint8_t noc = noc_index, TT_SIM_LINE) {
    (void)noc;
    if (bank_id >= tt_sim_detail::num_banks<DRAM>()) {
        tt_sim_fault("get_noc_addr_from_bank_id", "bank id out of range", tt_sim_line);
    }
    return tt_sim_detail::bank_noc_addr<DRAM>(bank_id, bank_address_offset);
}

template <bool DRAM>
struct InterleavedAddrGen {
    static constexpr bool is_dram = DRAM;
    uint32_t bank_base_address;
    const uint32_t page_size;
    const uint32_t aligned_page_size = align_power_of_2(page_size, tt_sim_detail::alignment<DRAM>());
    FORCE_INLINE uint64_t get_noc_addr(const uint32_t id, const uint32_t offset = 0, uint8_t noc = noc_index) const {
        (void)noc;
        return tt_sim_detail::interleaved_addr<DRAM>(id, aligned_page_size, bank_base_address, offset);
    }
    FORCE_INLINE uint32_t get_aligned_page_size() const { return aligned_page_size; }
};

template <bool DRAM>
struct InterleavedPow2AddrGen {
    static constexpr bool is_dram = DRAM;
    const uint32_t bank_base_address;
    const uint32_t log_base_2_of_page_size;
    FORCE_INLINE uint32_t get_aligned_page_size() const {
        return align_power_of_2(1u << log_base_2_of_page_size, tt_sim_detail::alignment<DRAM>());
    }
    FORCE_INLINE uint64_t get_noc_addr(const uint32_t id, const uint32_t offset = 0, uint8_t noc = noc_index) const {
        (void)noc;
        return tt_sim_detail::interleaved_addr<DRAM>(id, get_aligned_page_size(), bank_base_address, offset);
    }
};

template <bool DRAM, uint32_t tile_hw = 1024>
struct InterleavedAddrGenFast {
    static constexpr bool is_dram = DRAM;
    uint32_t bank_base_address;
    uint32_t page_size;
    DataFormat data_format;
    FORCE_INLINE uint64_t get_noc_addr(const uint32_t id, const uint32_t offset = 0, uint8_t noc = noc_index) const {
        (void)noc;
        uint32_t nb = tt_sim_detail::num_banks<DRAM>();
        uint32_t addr = MUL_WITH_TILE_SIZE<tile_hw>((uint32_t)data_format, id / nb) + bank_base_address + offset;
        return tt_sim_detail::bank_noc_addr<DRAM>(id % nb, addr);
    }
    FORCE_INLINE uint32_t get_aligned_page_size() const { return page_size; }
};

template <bool DRAM>
struct InterleavedPow2AddrGenFast {
    static constexpr bool is_dram = DRAM;
    uint32_t bank_base_address;
    const uint32_t log_base_2_of_page_size;
    FORCE_INLINE uint32_t get_aligned_page_size() const {
        return align_power_of_2(1u << log_base_2_of_page_size, tt_sim_detail::alignment<DRAM>());
    }
    FORCE_INLINE uint64_t get_noc_addr(const uint32_t id, const uint32_t offset = 0, uint8_t noc = noc_index) const {
        (void)noc;
        return tt_sim_detail::interleaved_addr<DRAM>(id, get_aligned_page_size(), bank_base_address, offset);
    }
};

template <typename AddrGen>
FORCE_INLINE auto get_noc_addr(const uint32_t id, const AddrGen& addrgen, uint32_t offset = 0,
                               uint8_t noc = noc_index) -> decltype(addrgen.get_noc_addr(id, offset, noc)) {
    return addrgen.get_noc_addr(id, offset, noc);
}

#include "tt_sim/tensor_accessor.h"

// ---- NoC transfers ----
template <uint32_t max_page_size = NOC_MAX_BURST_SIZE + 1, bool enable_noc_tracing = true>
FORCE_INLINE void noc_async_read(uint64_t src_noc_addr, uint32_t dst_local_l1_addr, uint32_t size,
                                 uint8_t noc = noc_index, uint32_t read_req_vc = NOC_UNICAST_WRITE_VC,
                                 TT_SIM_LINE) {
    (void)read_req_vc;
    tt_sim_api->noc_read(tt_sim_ctx, src_noc_addr, dst_local_l1_addr, size, noc, tt_sim_line);
}
template <bool enable_noc_tracing = true>
FORCE_INLINE void noc_async_read_one_packet(uint64_t src_noc_addr, uint32_t dst_local_l1_addr, uint32_t size,
                                            uint8_t noc = noc_index, uint32_t read_req_vc = NOC_UNICAST_WRITE_VC,
                                            TT_SIM_LINE) {
    (void)read_req_vc;
    if (size > NOC_MAX_BURST_SIZE) {
        tt_sim_fault("noc_async_read_one_packet", "size exceeds NOC_MAX_BURST_SIZE", tt_sim_line);
    }
    tt_sim_api->noc_read(tt_sim_ctx, src_noc_addr, dst_local_l1_addr, size, noc, tt_sim_line);
}
template <uint32_t max_page_size = NOC_MAX_BURST_SIZE + 1, bool enable_noc_tracing = true, bool posted = false>
FORCE_INLINE void noc_async_write(uint32_t src_local_l1_addr, uint64_t dst_noc_addr, uint32_t size,
                                  uint8_t noc = noc_index, uint32_t vc = NOC_UNICAST_WRITE_VC, TT_SIM_LINE) {
    (void)vc;
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, dst_noc_addr, size, noc, tt_sim_line);
}
template <bool enable_noc_tracing = true, bool posted = false>
FORCE_INLINE void noc_async_write_one_packet(uint32_t src_local_l1_addr, uint64_t dst_noc_addr, uint32_t size,
                                             uint8_t noc = noc_index, uint32_t vc = NOC_UNICAST_WRITE_VC,
                                             TT_SIM_LINE) {
    (void)vc;
    if (size > NOC_MAX_BURST_SIZE) {
        tt_sim_fault("noc_async_write_one_packet", "size exceeds NOC_MAX_BURST_SIZE", tt_sim_line);
    }
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, dst_noc_addr, size, noc, tt_sim_line);
}
template <uint32_t max_page_size = NOC_MAX_BURST_SIZE + 1>
FORCE_INLINE void noc_async_write_multicast(uint32_t src_local_l1_addr, uint64_t dst_noc_addr_multicast,
                                            uint32_t size, uint32_t num_dests, bool linked = false,
                                            uint8_t noc = noc_index, uint8_t vc = NOC_MULTICAST_WRITE_VC,
                                            TT_SIM_LINE) {
    (void)vc;
    tt_sim_api->noc_write_mcast(tt_sim_ctx, src_local_l1_addr, dst_noc_addr_multicast, size, num_dests,
                                linked ? 2u : 0u, noc, tt_sim_line);
}
template <bool enable_noc_tracing = true>
FORCE_INLINE void noc_async_write_multicast_one_packet(uint32_t src_local_l1_addr, uint64_t dst_noc_addr_multicast,
                                                       uint32_t size, uint32_t num_dests, bool linked = false,
                                                       uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write_mcast(tt_sim_ctx, src_local_l1_addr, dst_noc_addr_multicast, size, num_dests,
                                linked ? 2u : 0u, noc, tt_sim_line);
}
FORCE_INLINE void noc_async_write_multicast_loopback_src(uint32_t src_local_l1_addr, uint64_t dst_noc_addr_multicast,
                                                         uint32_t size, uint32_t num_dests, bool linked = false,
                                                         uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write_mcast(tt_sim_ctx, src_local_l1_addr, dst_noc_addr_multicast, size, num_dests,
                                1u | (linked ? 2u : 0u), noc, tt_sim_line);
}

template <typename AddrGen>
FORCE_INLINE uint32_t tt_sim_addrgen_page_size(const AddrGen& g) {
    if constexpr (requires { g.get_aligned_page_size(); }) {
        return g.get_aligned_page_size();
    } else if constexpr (requires { g.page_size; }) {
        return g.page_size;
    } else {
        return 1u << g.log_base_2_of_page_size;
    }
}

template <typename AddrGen, bool enable_noc_tracing = true>
FORCE_INLINE void noc_async_read_page(const uint32_t id, const AddrGen& addrgen, uint32_t dst_local_l1_addr,
                                      uint32_t offset = 0, uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_read(tt_sim_ctx, addrgen.get_noc_addr(id, offset, noc), dst_local_l1_addr,
                         tt_sim_addrgen_page_size(addrgen), noc, tt_sim_line);
}
template <typename AddrGen, bool enable_noc_tracing = true, bool posted = false>
FORCE_INLINE void noc_async_write_page(const uint32_t id, const AddrGen& addrgen, uint32_t src_local_l1_addr,
                                       uint32_t write_size_bytes = 0, uint32_t offset = 0, uint8_t noc = noc_index,
                                       TT_SIM_LINE) {
    uint32_t size = write_size_bytes ? write_size_bytes : tt_sim_addrgen_page_size(addrgen);
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, addrgen.get_noc_addr(id, offset, noc), size, noc,
                          tt_sim_line);
}
template <typename AddrGen>
FORCE_INLINE void noc_async_read_tile(const uint32_t id, const AddrGen& addrgen, uint32_t dst_local_l1_addr,
                                      uint32_t offset = 0, uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_read(tt_sim_ctx, addrgen.get_noc_addr(id, offset, noc), dst_local_l1_addr,
                         tt_sim_addrgen_page_size(addrgen), noc, tt_sim_line);
}
template <typename AddrGen>
FORCE_INLINE void noc_async_write_tile(const uint32_t id, const AddrGen& addrgen, uint32_t src_local_l1_addr,
                                       uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, addrgen.get_noc_addr(id, 0, noc),
                          tt_sim_addrgen_page_size(addrgen), noc, tt_sim_line);
}

// ---- barriers ----
FORCE_INLINE void noc_async_read_barrier(uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_READ, noc, tt_sim_line);
}
FORCE_INLINE void noc_async_write_barrier(uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_WRITE, noc, tt_sim_line);
}
FORCE_INLINE void noc_async_writes_flushed(uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_WRITES_FLUSHED, noc, tt_sim_line);
}
FORCE_INLINE void noc_async_posted_writes_flushed(uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_WRITES_FLUSHED, noc, tt_sim_line);
}
FORCE_INLINE void noc_async_atomic_barrier(uint8_t noc_idx = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_ATOMIC, noc_idx, tt_sim_line);
}
FORCE_INLINE void noc_async_full_barrier(uint8_t noc_idx = noc_index, TT_SIM_LINE) {
    tt_sim_api->barrier(tt_sim_ctx, TT_SIM_BARRIER_FULL, noc_idx, tt_sim_line);
}

// ---- semaphores ----
enum class ProgrammableCoreType : uint8_t { TENSIX = 0, ACTIVE_ETH = 1, IDLE_ETH = 2 };
template <ProgrammableCoreType type = ProgrammableCoreType::TENSIX>
FORCE_INLINE uint32_t get_semaphore(uint32_t semaphore_id, TT_SIM_LINE) {
    return tt_sim_api->get_semaphore(tt_sim_ctx, semaphore_id, tt_sim_line);
}
FORCE_INLINE void noc_semaphore_set(volatile tt_l1_ptr uint32_t* sem_addr, uint32_t val) { *sem_addr = val; }
FORCE_INLINE void noc_semaphore_wait(volatile tt_l1_ptr uint32_t* sem_addr, uint32_t val, TT_SIM_LINE) {
    tt_sim_api->sem_wait(tt_sim_ctx, (uint32_t)(uintptr_t)sem_addr, val, 0, tt_sim_line);
}
FORCE_INLINE void noc_semaphore_wait_min(volatile tt_l1_ptr uint32_t* sem_addr, uint32_t val, TT_SIM_LINE) {
    tt_sim_api->sem_wait(tt_sim_ctx, (uint32_t)(uintptr_t)sem_addr, val, 1, tt_sim_line);
}
template <bool posted = false>
FORCE_INLINE void noc_semaphore_inc(uint64_t addr, uint32_t incr, uint8_t noc_id = noc_index, uint8_t vc = 0,
                                    TT_SIM_LINE) {
    (void)vc;
    tt_sim_api->noc_sem_inc(tt_sim_ctx, addr, incr, noc_id, tt_sim_line);
}
FORCE_INLINE void noc_semaphore_set_remote(uint32_t src_local_l1_addr, uint64_t dst_noc_addr,
                                           uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, dst_noc_addr, 4, noc, tt_sim_line);
}
FORCE_INLINE void noc_semaphore_set_multicast(uint32_t src_local_l1_addr, uint64_t dst_noc_addr_multicast,
                                              uint32_t num_dests, bool linked = false, uint8_t noc = noc_index,
                                              TT_SIM_LINE) {
    tt_sim_api->noc_write_mcast(tt_sim_ctx, src_local_l1_addr, dst_noc_addr_multicast, 4, num_dests,
                                linked ? 2u : 0u, noc, tt_sim_line);
}
FORCE_INLINE void noc_semaphore_set_multicast_loopback_src(uint32_t src_local_l1_addr,
                                                           uint64_t dst_noc_addr_multicast, uint32_t num_dests,
                                                           bool linked = false, uint8_t noc = noc_index,
                                                           TT_SIM_LINE) {
    tt_sim_api->noc_write_mcast(tt_sim_ctx, src_local_l1_addr, dst_noc_addr_multicast, 4, num_dests,
                                1u | (linked ? 2u : 0u), noc, tt_sim_line);
}
FORCE_INLINE void noc_inline_dw_write(uint64_t addr, uint32_t val, uint8_t be = 0xF, uint8_t noc = noc_index,
                                      TT_SIM_LINE) {
    tt_sim_api->noc_inline_write(tt_sim_ctx, addr, val, be, noc, tt_sim_line);
}

// ---- stateful NoC calls: set_state fixes the remote coordinates (and size), with_state supplies
// the low 32 address bits ----
inline uint64_t tt_sim_read_state[2] = {0, 0};
inline uint32_t tt_sim_read_state_size[2] = {0, 0};
inline uint64_t tt_sim_write_state[2] = {0, 0};
inline uint32_t tt_sim_write_state_size[2] = {0, 0};

template <bool use_vc = false>
FORCE_INLINE void noc_async_read_one_packet_set_state(uint64_t src_noc_addr, uint32_t size, const uint32_t vc = 0,
                                                      uint8_t noc = noc_index) {
    (void)vc;
    tt_sim_read_state[noc & 1] = src_noc_addr & ~0xFFFFFFFFull;
    tt_sim_read_state_size[noc & 1] = size;
}
template <bool inc_num_issued = true, bool use_vc = false>
FORCE_INLINE void noc_async_read_one_packet_with_state(uint32_t src_local_l1_addr, uint32_t dst_local_l1_addr,
                                                       const uint32_t vc = 0, uint8_t noc = noc_index, TT_SIM_LINE) {
    (void)vc;
    tt_sim_api->noc_read(tt_sim_ctx, tt_sim_read_state[noc & 1] | src_local_l1_addr, dst_local_l1_addr,
                         tt_sim_read_state_size[noc & 1], noc, tt_sim_line);
}
FORCE_INLINE void noc_async_read_set_state(uint64_t src_noc_addr, uint8_t noc = noc_index) {
    tt_sim_read_state[noc & 1] = src_noc_addr & ~0xFFFFFFFFull;
}
template <bool inc_num_issued = true, bool skip_cmdbuf_chk = false>
FORCE_INLINE void noc_async_read_with_state(uint32_t src_local_l1_addr, uint32_t dst_local_l1_addr, uint32_t size,
                                            uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_read(tt_sim_ctx, tt_sim_read_state[noc & 1] | src_local_l1_addr, dst_local_l1_addr, size, noc,
                         tt_sim_line);
}
template <bool posted = false>
FORCE_INLINE void noc_async_write_one_packet_set_state(uint64_t dst_noc_addr, uint32_t size, uint8_t noc = noc_index,
                                                       uint8_t vc = NOC_UNICAST_WRITE_VC) {
    (void)vc;
    tt_sim_write_state[noc & 1] = dst_noc_addr & ~0xFFFFFFFFull;
    tt_sim_write_state_size[noc & 1] = size;
}
template <bool posted = false>
FORCE_INLINE void noc_async_write_one_packet_with_state(uint32_t src_local_l1_addr, uint32_t dst_local_l1_addr,
                                                        uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, tt_sim_write_state[noc & 1] | dst_local_l1_addr,
                          tt_sim_write_state_size[noc & 1], noc, tt_sim_line);
}
template <bool posted = false>
FORCE_INLINE void noc_async_write_set_state(uint64_t dst_noc_addr, uint8_t noc = noc_index,
                                            uint8_t vc = NOC_UNICAST_WRITE_VC) {
    (void)vc;
    tt_sim_write_state[noc & 1] = dst_noc_addr & ~0xFFFFFFFFull;
}
template <bool posted = false, bool update_counter = true, bool skip_cmdbuf_chk = false>
FORCE_INLINE void noc_async_write_with_state(uint32_t src_local_l1_addr, uint32_t dst_local_l1_addr, uint32_t size,
                                             uint8_t noc = noc_index, TT_SIM_LINE) {
    tt_sim_api->noc_write(tt_sim_ctx, src_local_l1_addr, tt_sim_write_state[noc & 1] | dst_local_l1_addr, size, noc,
                          tt_sim_line);
}

