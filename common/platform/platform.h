// The platform: the only way protocol and data-path code reaches Xen or the
// simulator. Objects are injected through constructors; there is no global
// "current platform", so two simulated hosts can live in one test binary.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/platform/event_channels.h"
#include "common/platform/grant_share.h"
#include "common/platform/grant_table.h"

namespace vifd::platform {

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
};

}  // namespace vifd::platform
