#include "common/platform/select/platform_select.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "common/platform/error.h"
#include "common/platform/sim/sim_host.h"
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

bool sim_selected(const std::string& requested) {
  return requested == "sim" || (requested.empty() && env("VIF_SIM_DIR").has_value());
}

}  // namespace

std::unique_ptr<Platform> make_platform(const std::string& requested) {
  const auto sim_dir = env("VIF_SIM_DIR");
  const bool want_sim = sim_selected(requested);
  if (!requested.empty() && requested != "sim" && requested != "xen") {
    throw PlatformError(fmt::format("unknown platform '{}' (expected xen or sim)", requested),
                        EINVAL);
  }
  if (!want_sim) return make_xen_platform();
  if (!sim_dir) throw PlatformError("platform sim needs VIF_SIM_DIR (the vif-sim --dir)", EINVAL);
  const auto domid_text = env("VIF_SIM_DOMID");
  return make_sim_platform(*sim_dir, domid_text ? parse_sim_domid(*domid_text) : kDom0);
}

std::vector<service::Need> platform_needs(const std::string& requested, Role role) {
  using Kind = service::Need::Kind;
  std::vector<service::Need> needs;
  if (!sim_selected(requested)) {
    needs.push_back(
        {Kind::kDevice, {role == Role::kBackend ? "/dev/xen/gntdev" : "/dev/xen/gntalloc"}, {}});
    needs.push_back({Kind::kDevice, {"/dev/xen/evtchn"}, {}});
    // Whichever libxenstore will take: the xenstored socket (XENSTORED_PATH
    // or its default) or the kernel's xenbus device.
    needs.push_back({Kind::kEndpoint,
                     {env("XENSTORED_PATH").value_or("/run/xenstored/socket"), "/dev/xen/xenbus"},
                     "xenstore"});
    return needs;
  }
  const auto sim_dir = env("VIF_SIM_DIR");
  if (!sim_dir) {
    needs.push_back({Kind::kDirectory, {}, "VIF_SIM_DIR (not set; the vif-sim --dir)"});
    return needs;
  }
  const sim::HostPaths paths{*sim_dir};
  needs.push_back({Kind::kDirectory, {*sim_dir}, "the sim host directory"});
  DomId domid = kDom0;
  if (const auto domid_text = env("VIF_SIM_DOMID")) {
    domid = parse_sim_domid(*domid_text);
  }
  needs.push_back({Kind::kSocket,
                   {domid == kDom0 ? paths.xenstored_socket().native()
                                   : paths.domain_xenstored_socket(domid).native()},
                   "the sim xenstored socket"});
  return needs;
}

}  // namespace vifd::platform
