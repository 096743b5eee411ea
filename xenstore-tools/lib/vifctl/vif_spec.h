// What `vifctl attach` is asked to create, validated before anything touches
// xenstore. Every operator-supplied value goes through the same strict
// parsers vifd applies when it reads the keys back (common/protocol/
// xs_parse.h), so vifctl can never write a value the backend would reject.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/platform/types.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/sizes.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/paths.h"

namespace vifd::vifctl {

// An invalid command-line argument; the message names the argument.
class ArgumentError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// libxl's default MTU; the frontend `mtu` key is always written, the backend
// one only when it differs (as libxl__set_xenstore_nic does).
inline constexpr std::uint32_t kDefaultMtu = 1500;
// MTU bounds, shared with vifd and the frontend.
using protocol::kMaxMtu;
using protocol::kMinMtu;

using VifId = xenbus::VifId;

struct VifSpec {
  platform::DomId domid = 0;
  platform::DomId backend_domid = 0;
  std::optional<std::uint32_t> devid;  // std::nullopt: the next free one
  protocol::MacAddress mac;
  std::optional<std::string> bridge{};
  std::optional<std::string> script{};  // absolute path, executable
  std::uint32_t mtu = kDefaultMtu;
  std::optional<protocol::RateLimit> rate;
};

// The attach arguments as typed by the operator.
struct AttachArguments {
  std::string domid{};
  std::optional<std::string> devid{};
  std::optional<std::string> mac{};
  std::optional<std::string> bridge{};
  std::optional<std::string> script{};
  std::optional<std::string> mtu{};
  std::optional<std::string> rate{};
  std::optional<std::string> backend_domid{};
};

// Where libxl looks for a hotplug script given by name (XEN_SCRIPT_DIR).
inline constexpr std::string_view kXenScriptDir = "/etc/xen/scripts";
// The environment variable that overrides it (tests, unusual installs).
inline constexpr const char* kScriptDirEnv = "VIFCTL_SCRIPT_DIR";

// Validates every argument; throws ArgumentError naming the first bad one.
// The domids are numbers here (names are resolved before). A --script
// without '/' is a name looked up in script_dir, as libxl does; the result
// must be an executable regular file. default_backend_domid is the domain
// vifctl runs in (the toolstack domain).
VifSpec make_vif_spec(const AttachArguments& args, platform::DomId default_backend_domid,
                      const std::filesystem::path& script_dir = kXenScriptDir);

// "DOMID/DEVID" as used by detach/show/stats; `what` names the argument.
VifId parse_vif_id(std::string_view what, std::string_view text);

platform::DomId parse_domid_argument(std::string_view what, std::string_view text);

// 00:16:3e (Xen's OUI) followed by three random octets, the fourth with its
// top bit clear, exactly as libxl__device_nic_setdefault generates one.
protocol::MacAddress random_xen_mac();

// "ARG: invalid value "V": REASON" from a parser's error.
std::string argument_error_message(std::string_view argument, const protocol::ParseError& error);

}  // namespace vifd::vifctl
