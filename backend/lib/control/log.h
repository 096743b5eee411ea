// The control plane's logger ("vifd", info by default); the data path logs
// through its own "datapath" logger so the two can be tuned separately.
#pragma once

#include <spdlog/spdlog.h>

namespace vifd::backend {

spdlog::logger& control_log();

}  // namespace vifd::backend
