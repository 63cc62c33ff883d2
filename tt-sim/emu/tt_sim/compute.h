// tt-sim emulation layer: the TT-Metal compute kernel API (0.81-era names and older aliases).
#pragma once
#include "tt_sim/common.h"
inline void tt_sim_compute_start() {}
