#include "common/platform/select/platform_select.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/platform/error.h"
#include "common/platform/sim/sim_platform.h"
#include "common/platform/xen/xen_platform.h"
#include "common/protocol/xs_parse.h"

namespace vifd::platform {

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

DomId parse_sim_domid(const std::string& text) {
  // VIF_SIM_DOMID is set by whoever starts the process; still reject junk so
  // a typo does not silently make a guest act as dom0.
  const auto domid = protocol::parse_domid("VIF_SIM_DOMID", text);
  if (!domid) throw PlatformError(domid.error().message(), EINVAL);
  return domid.value();
}

}  // namespace

std::unique_ptr<Platform> make_platform(const std::string& requested) {
  const auto sim_dir = env("VIF_SIM_DIR");
  const bool want_sim = requested == "sim" || (requested.empty() && sim_dir.has_value());
  if (!requested.empty() && requested != "sim" && requested != "xen") {
    throw PlatformError(fmt::format("unknown platform '{}' (expected xen or sim)", requested),
                        EINVAL);
  }
  if (!want_sim) return make_xen_platform();
  if (!sim_dir) throw PlatformError("platform sim needs VIF_SIM_DIR (the vif-sim --dir)", EINVAL);
  const auto domid_text = env("VIF_SIM_DOMID");
  return make_sim_platform(*sim_dir, domid_text ? parse_sim_domid(*domid_text) : kDom0);
}

}  // namespace vifd::platform
