// Domains and vifs as xl names them on its command line: a domain by id or
// by name, a vif by devid or by MAC; and what the hypervisor says of a
// domain before anything is written for it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/platform/platform.h"
#include "common/protocol/mac_address.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

struct NamedDomain {
  platform::DomId domid = 0;
  std::string name;  // as found in xenstore: untrusted bytes
};

// Every domain's `name` key (xenbus::domain_name_path) below
// xenbus::domains_root(); domains without one are left out.
std::vector<NamedDomain> domain_names(xs::Client& xs);

// True when xl would take `text` as a domid (xl's qualifier_to_id: only
// digits).
bool is_domid_text(std::string_view text);

// A DOMAIN argument as xl takes it: digits are a domid (checked like every
// domid argument), anything else a name looked up among `domains`, as
// libxl_name_to_domid does. Throws ArgumentError naming `what` and the value
// when the name matches no domain, or more than one (libxl would take the
// first; which one that is depends on the order of creation).
platform::DomId resolve_domain(std::string_view what, std::string_view text,
                               const std::vector<NamedDomain>& domains);
// The same, reading the names from xenstore only when `text` is a name.
platform::DomId resolve_domain(xs::Client& xs, std::string_view what, std::string_view text);

// A vif on the command line before its domain is resolved: "DOMAIN/DEVID",
// "DOMAIN/MAC", or DOMAIN with the device as a separate argument (`xl
// network-detach DOMAIN DEVID|MAC`).
struct VifSelector {
  std::string domain;
  std::variant<std::uint32_t, protocol::MacAddress> device;
};
// Throws ArgumentError naming `what` for anything else.
VifSelector parse_vif_selector(std::string_view what, std::string_view text,
                               const std::optional<std::string>& device = std::nullopt);

// "DOMAIN/DEVID" with DOMAIN a domid or a name (show, stats).
VifId resolve_vif_id(xs::Client& xs, std::string_view what, std::string_view text);

// Refuses, before anything is written, a domain the hypervisor does not have
// running: "<role> 7 does not exist (the hypervisor has no domain 7)", or is
// dying or shut down. `role` is "domain" or "backend domain". Without an
// answer from the platform (std::nullopt: not privileged to ask) the
// xenstore checks of the caller stand alone.
void require_running_domain(platform::Platform* platform, platform::DomId domid,
                            std::string_view role);

}  // namespace vifd::vifctl
