// Multicast matmul, in0 (activations) receiver: every core right of the left column. Per K block:
// reserve the CB space, mark its own flag INVALID, tell the row's sender it is ready
// (semaphore increment), wait for the sender's VALID flag (which arrives after the data), push.
//
// Runtime args: 0 block_num_tiles, 1 num_blocks,
//   2..5 multicast receiver plan: sender_noc_x, sender_noc_y, sender_semaphore_id,
//        receiver_semaphore_id.
#include <cstdint>

#include "api/dataflow/dataflow_api.h"

namespace {
constexpr uint32_t kValid = 1;    // hostdevcommon VALID
constexpr uint32_t kInvalid = 0;  // hostdevcommon INVALID
}

void kernel_main() {
    const uint32_t block_num_tiles = get_arg_val<uint32_t>(0);
    const uint32_t num_blocks = get_arg_val<uint32_t>(1);
    const uint32_t sender_noc_x = get_arg_val<uint32_t>(2);
    const uint32_t sender_noc_y = get_arg_val<uint32_t>(3);
    const uint32_t sender_sem_addr = get_semaphore(get_arg_val<uint32_t>(4));
    const uint32_t receiver_sem_addr = get_semaphore(get_arg_val<uint32_t>(5));

    constexpr uint32_t cb_in0 = 0;
    volatile tt_l1_ptr uint32_t* receiver_sem = reinterpret_cast<volatile tt_l1_ptr uint32_t*>(receiver_sem_addr);
    const uint64_t sender_sem_noc_addr = get_noc_addr(sender_noc_x, sender_noc_y, sender_sem_addr);

    for (uint32_t block = 0; block < num_blocks; ++block) {
        cb_reserve_back(cb_in0, block_num_tiles);
        noc_semaphore_set(receiver_sem, kInvalid);
        noc_semaphore_inc(sender_sem_noc_addr, 1);
        noc_semaphore_wait(receiver_sem, kValid);
        cb_push_back(cb_in0, block_num_tiles);
    }
    noc_async_atomic_barrier();
}
