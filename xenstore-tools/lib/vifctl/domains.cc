#include "xenstore-tools/lib/vifctl/domains.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "common/protocol/xs_parse.h"
#include "common/xenbus/paths.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"

namespace vifd::vifctl {
namespace {

// A domain name is compared, never interpreted; one longer than this is not
// something xl would have written (and not worth reading back).
constexpr std::size_t kMaxNameBytes = 256;

std::string shown(std::string_view text) {
  return protocol::escape_for_display(text, kMaxNameBytes);
}

std::uint32_t parse_devid(std::string_view what, std::string_view text) {
  const auto devid = protocol::parse_uint(
      what, text, 0, static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()));
  if (!devid) {
    throw ArgumentError(argument_error_message(what, devid.error()));
  }
  return static_cast<std::uint32_t>(devid.value());
}

}  // namespace

std::vector<NamedDomain> domain_names(xs::Client& xs) {
  std::vector<NamedDomain> domains;
  for (const auto domid : numeric_children(xs, xenbus::domains_root())) {
    if (domid >= platform::kDomidSelf) {
      continue;  // reserved ids are no domains
    }
    const auto id = static_cast<platform::DomId>(domid);
    auto name = xs.read(xenbus::domain_name_path(id));
    if (name && !name->empty() && name->size() <= kMaxNameBytes) {
      domains.push_back(NamedDomain{id, std::move(*name)});
    }
  }
  return domains;
}

bool is_domid_text(std::string_view text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

platform::DomId resolve_domain(std::string_view what, std::string_view text,
                               const std::vector<NamedDomain>& domains) {
  if (is_domid_text(text)) {
    return parse_domid_argument(what, text);
  }
  if (text.empty()) {
    throw ArgumentError(fmt::format("{}: expected a domain id or name, got nothing", what));
  }
  std::vector<platform::DomId> matches;
  for (const auto& domain : domains) {
    if (domain.name == text) {
      matches.push_back(domain.domid);
    }
  }
  if (matches.empty()) {
    throw ArgumentError(fmt::format("{}: no domain is named \"{}\"", what, shown(text)));
  }
  if (matches.size() > 1) {
    throw ArgumentError(fmt::format("{}: \"{}\" names {} domains ({}); give the domid", what,
                                    shown(text), matches.size(), fmt::join(matches, ", ")));
  }
  return matches.front();
}

platform::DomId resolve_domain(xs::Client& xs, std::string_view what, std::string_view text) {
  if (is_domid_text(text)) {
    return parse_domid_argument(what, text);
  }
  return resolve_domain(what, text, domain_names(xs));
}

VifSelector parse_vif_selector(std::string_view what, std::string_view text,
                               const std::optional<std::string>& device) {
  VifSelector selector;
  std::string_view device_text;
  if (device) {
    selector.domain = std::string(text);
    device_text = *device;
  } else {
    // A MAC has no '/', and neither has a devid: the last one separates.
    const auto slash = text.rfind('/');
    if (slash == std::string_view::npos) {
      throw ArgumentError(fmt::format(
          "{}: invalid value \"{}\": expected DOMAIN/DEVID, DOMAIN/MAC or DOMAIN DEVID|MAC", what,
          shown(text)));
    }
    selector.domain = std::string(text.substr(0, slash));
    device_text = text.substr(slash + 1);
  }
  if (device_text.find(':') != std::string_view::npos) {
    const auto mac = protocol::parse_mac(what, device_text);
    if (!mac) {
      throw ArgumentError(argument_error_message(what, mac.error()));
    }
    selector.device = mac.value();
  } else {
    selector.device = parse_devid(what, device_text);
  }
  return selector;
}

VifId resolve_vif_id(xs::Client& xs, std::string_view what, std::string_view text) {
  const auto slash = text.rfind('/');
  if (slash == std::string_view::npos) {
    throw ArgumentError(
        fmt::format("{}: invalid value \"{}\": expected DOMAIN/DEVID", what, shown(text)));
  }
  const std::uint32_t devid = parse_devid(what, text.substr(slash + 1));
  return VifId{resolve_domain(xs, what, text.substr(0, slash)), devid};
}

void require_running_domain(platform::Platform* platform, platform::DomId domid,
                            std::string_view role) {
  if (platform == nullptr) {
    return;
  }
  const auto status = platform->domain_status(domid);
  if (!status || *status == platform::DomainStatus::kRunning) {
    return;
  }
  if (*status == platform::DomainStatus::kAbsent) {
    throw std::runtime_error(
        fmt::format("{} {} does not exist (the hypervisor has no domain {})", role, domid, domid));
  }
  throw std::runtime_error(fmt::format("{} {} is {}: not attaching a vif to it", role, domid,
                                       platform::domain_status_name(*status)));
}

}  // namespace vifd::vifctl
