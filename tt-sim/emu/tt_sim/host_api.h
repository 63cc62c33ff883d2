// tt-sim emulation layer: the table of host functions a kernel image calls back into.
// Mirrored by `HostApi` in tt-sim/src/kernel_host.rs; keep the two in the same order.
#pragma once
#include <cstddef>
#include <cstdint>

extern "C" {

struct tt_sim_host_api {
    uint32_t version;
    // Reports a broken rule and never returns (the RISC is stopped).
    void (*fault)(void* ctx, const char* call, const char* msg, uint32_t line);
    void (*cb_reserve_back)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    void (*cb_push_back)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    void (*cb_wait_front)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    void (*cb_pop_front)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    uint32_t (*cb_write_ptr)(void* ctx, int32_t cb, uint32_t line);
    uint32_t (*cb_read_ptr)(void* ctx, int32_t cb, uint32_t line);
    bool (*cb_pages_available)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    bool (*cb_pages_reservable)(void* ctx, int32_t cb, int32_t n, uint32_t line);
    void (*noc_read)(void* ctx, uint64_t src, uint32_t dst, uint32_t size, uint32_t noc, uint32_t line);
    void (*noc_write)(void* ctx, uint32_t src, uint64_t dst, uint32_t size, uint32_t noc, uint32_t line);
    // flags: bit 0 loopback_src, bit 1 linked
    void (*noc_write_mcast)(void* ctx, uint32_t src, uint64_t dst, uint32_t size, uint32_t num_dests,
                            uint32_t flags, uint32_t noc, uint32_t line);
    void (*noc_sem_inc)(void* ctx, uint64_t addr, uint32_t incr, uint32_t noc, uint32_t line);
    void (*noc_inline_write)(void* ctx, uint64_t addr, uint32_t val, uint32_t byte_enable, uint32_t noc,
                             uint32_t line);
    // kind: see TT_SIM_BARRIER_*
    void (*barrier)(void* ctx, uint32_t kind, uint32_t noc, uint32_t line);
    // kind: 0 equal, 1 at least
    void (*sem_wait)(void* ctx, uint32_t addr, uint32_t val, uint32_t kind, uint32_t line);
    uint32_t (*get_semaphore)(void* ctx, uint32_t id, uint32_t line);
    void (*dprint)(void* ctx, const char* text, size_t len);
    // Compute operations (TT_SIM_OP_*), arguments packed as u32.
    uint32_t (*compute)(void* ctx, uint32_t op, const uint32_t* args, uint32_t nargs, uint32_t line);
    // Lets other RISCs run while this one spins on L1 (invalidate_l1_cache in a polling loop).
    void (*poll)(void* ctx, const char* what, uint32_t line);
};

#define TT_SIM_BARRIER_READ 0u
#define TT_SIM_BARRIER_WRITE 1u
#define TT_SIM_BARRIER_WRITES_FLUSHED 2u
#define TT_SIM_BARRIER_ATOMIC 3u
#define TT_SIM_BARRIER_FULL 4u

#define TT_SIM_MAX_CBS 64
#define TT_SIM_MAX_BANKS 128

struct tt_sim_kernel_info {
    uint32_t rta_addr;
    uint32_t num_rta;
    uint32_t crta_addr;
    uint32_t num_crta;
    uint32_t my_noc_x;
    uint32_t my_noc_y;
    uint32_t logical_x;
    uint32_t logical_y;
    uint32_t num_dram_banks;
    uint32_t num_l1_banks;
    uint32_t dram_alignment;
    uint32_t l1_alignment;
    uint32_t dram_bank_xy[TT_SIM_MAX_BANKS];  // x | y << 16
    uint32_t l1_bank_xy[TT_SIM_MAX_BANKS];
    uint32_t cb_page_size[TT_SIM_MAX_CBS];
    uint32_t cb_data_format[TT_SIM_MAX_CBS];
};

}  // extern "C"
