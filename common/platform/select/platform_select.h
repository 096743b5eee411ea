// Chooses the platform a daemon runs on. Its own layer because it links both
// implementations: libraries take a Platform& and never choose.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/platform/platform.h"
#include "common/service/startup_check.h"

namespace vifd::platform {

// From the environment: VIF_SIM_DIR + VIF_SIM_DOMID select the simulator;
// `requested` ("xen", "sim" or empty for auto) overrides.
std::unique_ptr<Platform> make_platform(const std::string& requested);

enum class Role {
  kBackend,   // maps guests' grants (gntdev)
  kFrontend,  // grants its own pages (gntalloc)
};

// What the platform make_platform(requested) would pick needs on this
// host, checked before it is opened: on xen the grant and event-channel
// devices and a xenstore endpoint; on sim the host directory and this
// domain's xenstored socket in it.
std::vector<service::Need> platform_needs(const std::string& requested, Role role);

}  // namespace vifd::platform
