#include "xenstore-tools/lib/vifctl/vif_spec.h"

#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <random>

namespace vifd::vifctl {
namespace {

template <typename T>
T checked(std::string_view argument, protocol::Result<T> result) {
  if (!result) throw ArgumentError(argument_error_message(argument, result.error()));
  return std::move(result).value();
}

std::string resolve_script(const std::string& script, const std::filesystem::path& script_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // libxl__abs_path: a name is looked up in the scripts directory. A
  // relative path with a '/' ("./vif-test") is taken from the working
  // directory instead, as a shell would. libxl stores an absolute path too,
  // because the backend or a later `detach` runs it from elsewhere.
  fs::path path;
  if (script.empty()) {
    throw ArgumentError("--script: empty name");
  } else if (script.front() == '/') {
    path = script;
  } else if (script.find('/') == std::string::npos) {
    path = script_dir / script;
  } else {
    path = fs::absolute(script, ec);
  }
  std::string resolved = path.lexically_normal().string();
  const std::string from =
      resolved == script ? std::string() : fmt::format(" ({:?} resolved)", script);
  if (ec || !fs::is_regular_file(path, ec)) {
    throw ArgumentError(fmt::format("--script: {:?}{} is not a regular file", resolved, from));
  }
  if (::access(path.c_str(), X_OK) != 0) {
    throw ArgumentError(fmt::format("--script: {:?}{} is not executable", resolved, from));
  }
  return resolved;
}

}  // namespace

std::string argument_error_message(std::string_view argument, const protocol::ParseError& error) {
  return fmt::format("{}: invalid value {:?}: {}", argument, error.value, error.reason);
}

platform::DomId parse_domid_argument(std::string_view what, std::string_view text) {
  return checked(what, protocol::parse_domid(what, text));
}

VifId parse_vif_id(std::string_view what, std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    throw ArgumentError(fmt::format("{}: invalid value {:?}: expected DOMID/DEVID", what, text));
  }
  VifId id;
  id.domid = parse_domid_argument(what, text.substr(0, slash));
  id.devid = static_cast<std::uint32_t>(checked(
      what,
      protocol::parse_uint(what, text.substr(slash + 1), 0,
                           static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))));
  return id;
}

protocol::MacAddress random_xen_mac() {
  std::random_device entropy;
  std::uniform_int_distribution<unsigned> octet(0, 255);
  protocol::MacAddress mac;
  mac.octets = {0x00,
                0x16,
                0x3e,
                static_cast<std::uint8_t>(octet(entropy) & 0x7FU),
                static_cast<std::uint8_t>(octet(entropy)),
                static_cast<std::uint8_t>(octet(entropy))};
  return mac;
}

VifSpec make_vif_spec(const AttachArguments& args, platform::DomId default_backend_domid,
                      const std::filesystem::path& script_dir) {
  VifSpec spec;
  spec.domid = parse_domid_argument("DOMID", args.domid);
  spec.backend_domid = args.backend_domid
                           ? parse_domid_argument("--backend-domid", *args.backend_domid)
                           : default_backend_domid;
  if (spec.domid == spec.backend_domid) {
    throw ArgumentError(fmt::format("DOMID: domain {} cannot be its own backend", spec.domid));
  }
  if (args.devid) {
    // libxl keeps devids in an int.
    spec.devid = static_cast<std::uint32_t>(checked(
        "--devid", protocol::parse_uint(
                       "--devid", *args.devid, 0,
                       static_cast<std::uint64_t>(std::numeric_limits<std::int32_t>::max()))));
  }
  spec.mac =
      args.mac ? checked("--mac", protocol::parse_mac("--mac", *args.mac)) : random_xen_mac();
  if (args.bridge) {
    // A Linux bridge or an Open vSwitch port (vif-openvswitch's syntax),
    // written unchanged for the hotplug script.
    spec.bridge = checked("--bridge", protocol::parse_bridge("--bridge", *args.bridge)).value;
  }
  if (args.script) spec.script = resolve_script(*args.script, script_dir);
  if (args.mtu) {
    spec.mtu = static_cast<std::uint32_t>(
        checked("--mtu", protocol::parse_uint("--mtu", *args.mtu, kMinMtu, kMaxMtu)));
  }
  if (args.rate) spec.rate = checked("--rate", protocol::parse_rate("--rate", *args.rate));
  return spec;
}

}  // namespace vifd::vifctl
