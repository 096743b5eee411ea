// Every xenstore path of a netif device, built in one place.
//
//   /local/domain/<B>/backend/vif/<D>/<N>   the backend's directory
//   /local/domain/<D>/device/vif/<N>        the frontend's directory
//   /local/domain/<D>/error/device/vif/<N>  where a frontend reports errors
//   /libxl/<D>/device/vif/<N>               the toolstack's private copy
//
// B is the backend (driver) domain, D the guest, N the device id.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/platform/types.h"

namespace vifd::xenbus {

// The identity of a vif: guest domain and device id.
struct VifId {
  platform::DomId domid = 0;
  std::uint32_t devid = 0;
  friend auto operator<=>(const VifId&, const VifId&) = default;
};

// Largest devid accepted: keeps "vif<domid>.<devid>" within IFNAMSIZ - 1.
inline constexpr std::uint32_t kMaxDevid = 65535;

// "/local/domain": one directory per domain, named by its domid.
std::string domains_root();
// "/local/domain/<domid>".
std::string domain_path(platform::DomId domid);
// "/local/domain/<domid>/name": the domain's name, written by the toolstack
// (xl create), which xl's commands accept instead of a domid.
std::string domain_name_path(platform::DomId domid);
// "/local/domain/<backend>/backend/vif": where a backend finds its vifs.
std::string backend_vif_root(platform::DomId backend_domid);
// "/local/domain/<backend>/backend/vif/<domid>/<devid>".
std::string backend_path(platform::DomId backend_domid, VifId id);
// "/local/domain/<domid>/device/vif": where a guest's vifs are listed.
std::string frontend_vif_root(platform::DomId domid);
// "/local/domain/<domid>/device/vif/<devid>".
std::string frontend_path(VifId id);
// Where Linux's xenbus_dev_fatal() reports a frontend device error:
// "/local/domain/<domid>/error/device/vif/<devid>/error".
std::string frontend_error_path(VifId id);
// "/libxl/<domid>/device/vif/<devid>".
std::string libxl_path(VifId id);
// A key below a directory: "<dir>/<key>".
std::string join(std::string_view dir, std::string_view key);

// The (domid, devid) of a path below backend_vif_root(backend_domid):
// ".../backend/vif/<D>/<N>" or anything below it. std::nullopt for any other
// path or a component that is not a canonical decimal in range.
std::optional<VifId> parse_backend_path(platform::DomId backend_domid, std::string_view path);

// The domain a "/local/domain/<domid>[/...]" path belongs to; std::nullopt
// for any other path.
std::optional<platform::DomId> domain_of(std::string_view path);

// The host interface name Xen's hotplug scripts expect: "vif<domid>.<devid>".
std::string tap_name(VifId id);

}  // namespace vifd::xenbus
