// The simulated platform: a process joins a vif-sim host as one domain.
#pragma once

#include <memory>
#include <string>

#include "common/platform/platform.h"

namespace vifd::platform {

// Joins the sim host in `sim_dir` as domain `domid`.
// Throws PlatformError when the host or the domain does not exist.
std::unique_ptr<Platform> make_sim_platform(const std::string& sim_dir, DomId domid);

}  // namespace vifd::platform
