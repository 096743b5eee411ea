// The real Xen platform: libxengnttab, libxengntshr and libxenevtchn.
#pragma once

#include <memory>
#include <optional>

#include "common/platform/platform.h"

namespace vifd::platform {

// self_domid is read from xenstore ("domid") when not given.
std::unique_ptr<Platform> make_xen_platform(std::optional<DomId> self_domid = std::nullopt);

}  // namespace vifd::platform
