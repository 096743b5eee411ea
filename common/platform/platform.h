// The platform: the only way protocol and data-path code reaches Xen or the
// simulator. Objects are injected through constructors; there is no global
// "current platform", so two simulated hosts can live in one test binary.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/platform/event_channels.h"
#include "common/platform/grant_share.h"
#include "common/platform/grant_table.h"

namespace vifd::platform {

// What the hypervisor says of a domain, as far as a toolstack or a backend
// needs it: whether it is there to be served.
enum class DomainStatus {
  kRunning,   // exists and has not shut down (running, blocked or paused)
  kShutdown,  // shut down (poweroff, crash, reboot) and not destroyed yet
  kDying,     // being destroyed: its grants and event channels are going
  kAbsent,    // no such domain
};

constexpr std::string_view domain_status_name(DomainStatus status) {
  switch (status) {
    case DomainStatus::kRunning:
      return "running";
    case DomainStatus::kShutdown:
      return "shut down";
    case DomainStatus::kDying:
      return "dying";
    case DomainStatus::kAbsent:
      return "absent";
  }
  return "unknown";
}

class Platform {
 public:
  virtual ~Platform() = default;
  Platform() = default;
  Platform(const Platform&) = delete;
  Platform& operator=(const Platform&) = delete;

  virtual std::string name() const = 0;  // "xen" or "sim"
  virtual DomId self_domid() const = 0;

  virtual std::unique_ptr<GrantTable> open_grant_table() = 0;
  virtual std::unique_ptr<GrantShare> open_grant_share() = 0;
  virtual std::unique_ptr<EventChannels> open_event_channels() = 0;

  // The xenstore endpoint for libxenstore: a unix socket path that is
  // exported as XENSTORED_PATH before xs_open, or std::nullopt for
  // libxenstore's own default (/dev/xen/xenbus, then the xenstored socket).
  virtual std::optional<std::string> xenstore_socket() const = 0;

  // The hypervisor's view of `domid` (libxenctrl's domain info on Xen, the
  // host table on the simulator). std::nullopt when this domain may not ask
  // (a driver domain without the privilege) or the platform cannot tell:
  // callers then go by xenstore alone. Control plane only: one hypercall.
  virtual std::optional<DomainStatus> domain_status(DomId /*domid*/) { return std::nullopt; }

  // The kernel driver already bound to backend device `type` (e.g. "vif")
  // `domid`/`devid` of this domain, named for a log line (on Linux: the
  // driver of xen-backend bus device "<type>-<domid>-<devid>", xen-netback's
  // for a vif); std::nullopt when none is, or the platform has no kernel
  // backends. A userspace backend must not serve such a device: both would
  // map its rings and write its state. Control plane only: a few stats.
  virtual std::optional<std::string> kernel_backend_driver(std::string_view /*type*/,
                                                           DomId /*domid*/,
                                                           std::uint32_t /*devid*/) {
    return std::nullopt;
  }
};

}  // namespace vifd::platform
