// Chooses the platform a daemon runs on. Its own layer because it links both
// implementations: libraries take a Platform& and never choose.
#pragma once

#include <memory>
#include <string>

#include "common/platform/platform.h"

namespace vifd::platform {

// From the environment: VIF_SIM_DIR + VIF_SIM_DOMID select the simulator;
// `requested` ("xen", "sim" or empty for auto) overrides.
std::unique_ptr<Platform> make_platform(const std::string& requested);

}  // namespace vifd::platform
