// Whether a Linux kernel backend driver serves a xenbus backend device: the
// xen-backend bus lists every device under /local/domain/<self>/backend as
// /sys/bus/xen-backend/devices/<type>-<domid>-<devid>, with a `driver` link
// once a driver (xen-netback's "vif") is bound to it. A pure function over
// a sysfs root, so it is tested on a directory tree.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/platform/types.h"

namespace vifd::platform {

// "vif (xen-netback), /sys/bus/xen-backend/devices/vif-5-0/driver" when a
// driver is bound; std::nullopt when the device has no driver or no entry
// (no such device, xen-backend absent: not a Linux dom0 or driver domain).
std::optional<std::string> bound_kernel_backend(const std::filesystem::path& sysfs_root,
                                                std::string_view type, DomId domid,
                                                std::uint32_t devid);

}  // namespace vifd::platform
