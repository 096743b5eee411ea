#include "common/xenbus/paths.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>

namespace vifd::xenbus {
namespace {

constexpr std::string_view kLocalDomain = "/local/domain/";

// A canonical decimal (no sign, no leading zero unless "0") up to `max`.
std::optional<std::uint32_t> canonical_decimal(std::string_view text, std::uint32_t max) {
  if (text.empty() || text.size() > 10 || (text.size() > 1 && text.front() == '0')) {
    return std::nullopt;
  }
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value > max) {
    return std::nullopt;
  }
  return static_cast<std::uint32_t>(value);
}

// The next '/'-separated component of `rest`, consumed.
std::string_view next_component(std::string_view& rest) {
  const auto slash = rest.find('/');
  const std::string_view component = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  return component;
}

}  // namespace

std::string domains_root() {
  return std::string(kLocalDomain.substr(0, kLocalDomain.size() - 1));
}

std::string domain_name_path(platform::DomId domid) {
  return domain_path(domid) + "/name";
}

std::string domain_path(platform::DomId domid) {
  return fmt::format("{}{}", kLocalDomain, domid);
}

std::string backend_vif_root(platform::DomId backend_domid) {
  return domain_path(backend_domid) + "/backend/vif";
}

std::string backend_path(platform::DomId backend_domid, VifId id) {
  return fmt::format("{}/{}/{}", backend_vif_root(backend_domid), id.domid, id.devid);
}

std::string frontend_vif_root(platform::DomId domid) {
  return domain_path(domid) + "/device/vif";
}

std::string frontend_path(VifId id) {
  return fmt::format("{}/{}", frontend_vif_root(id.domid), id.devid);
}

std::string frontend_error_path(VifId id) {
  return fmt::format("{}/error/device/vif/{}/error", domain_path(id.domid), id.devid);
}

std::string libxl_path(VifId id) {
  return fmt::format("/libxl/{}/device/vif/{}", id.domid, id.devid);
}

std::string join(std::string_view dir, std::string_view key) {
  return fmt::format("{}/{}", dir, key);
}

std::optional<VifId> parse_backend_path(platform::DomId backend_domid, std::string_view path) {
  const std::string root = backend_vif_root(backend_domid) + "/";
  if (!path.starts_with(root)) {
    return std::nullopt;
  }
  std::string_view rest = path.substr(root.size());
  const auto domid = canonical_decimal(next_component(rest), platform::kDomidSelf - 1);
  const auto devid = canonical_decimal(next_component(rest), kMaxDevid);
  if (!domid || !devid) {
    return std::nullopt;
  }
  return VifId{static_cast<platform::DomId>(*domid), *devid};
}

std::optional<platform::DomId> domain_of(std::string_view path) {
  if (!path.starts_with(kLocalDomain)) {
    return std::nullopt;
  }
  std::string_view rest = path.substr(kLocalDomain.size());
  const auto domid = canonical_decimal(next_component(rest), platform::kDomidSelf - 1);
  if (!domid) {
    return std::nullopt;
  }
  return static_cast<platform::DomId>(*domid);
}

std::string tap_name(VifId id) {
  return fmt::format("vif{}.{}", id.domid, id.devid);
}

}  // namespace vifd::xenbus
