// tt-sim emulation layer: force-included before every kernel source.
#pragma once
#include "tt_sim/common.h"
// Legacy compute kernels: `namespace NAMESPACE { void MAIN { ... } }`.
#define NAMESPACE tt_sim_ns
#define MAIN kernel_main()
void kernel_main() __attribute__((weak));
namespace tt_sim_ns {
void kernel_main() __attribute__((weak));
}
