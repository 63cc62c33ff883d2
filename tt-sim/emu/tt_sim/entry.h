// tt-sim emulation layer: appended after every kernel source; the simulator calls this entry point.
#pragma once
#include "tt_sim/common.h"

extern "C" __attribute__((visibility("default"))) void tt_sim_kernel_entry(const tt_sim_host_api* api, void* ctx,
                                                                          const tt_sim_kernel_info* info) {
    tt_sim_api = api;
    tt_sim_ctx = ctx;
    tt_sim_info = *info;
    my_x[0] = my_x[1] = (uint8_t)info->my_noc_x;
    my_y[0] = my_y[1] = (uint8_t)info->my_noc_y;
    noc_index = NOC_INDEX;
#ifdef TT_SIM_COMPUTE
    tt_sim_compute_start();
#endif
    if (&::kernel_main != nullptr) {
        ::kernel_main();
    } else if (&tt_sim_ns::kernel_main != nullptr) {
        tt_sim_ns::kernel_main();
    } else {
        tt_sim_fault("kernel entry",
                     "the kernel defines neither `void kernel_main()` nor `namespace NAMESPACE { void MAIN }`", 0);
    }
    tt_sim_dprint_stream.flush();
}
