// The vifctl commands, as functions of a xenstore connection and output
// streams, so tests drive them in process against a simulated host.
// Each returns the process exit status; failures of the command itself
// throw (ArgumentError for bad arguments, std::runtime_error otherwise).
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "common/platform/platform.h"
#include "common/platform/types.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

struct Session {
  xs::Client& xs;
  platform::DomId self_domid;  // the toolstack's domain: default backend
  std::string control_socket;
  std::ostream& out;
  std::ostream& err;
  // Asked whether a domain exists before anything is written for it; none:
  // xenstore alone decides.
  platform::Platform* platform = nullptr;
  // vifd's instance locks (default_lock_dir): a vifd whose control socket
  // does not answer still holds one. Empty: not looked at.
  std::string lock_dir{};
};

struct AttachOptions {
  AttachArguments arguments;
  bool wait = true;  // --no-wait clears it
  // Where a --script given by name is looked up.
  std::filesystem::path script_dir{kXenScriptDir};
};

// DOMAIN and --backend-domid take a domid or a name (domains.h).
int attach_command(Session& session, const AttachOptions& options);
// `vif` is DOMAIN/DEVID or DOMAIN/MAC, or DOMAIN with `device` (DEVID or
// MAC) as a separate argument.
int detach_command(Session& session, const std::string& vif, bool wait,
                   const std::optional<std::string>& device = std::nullopt);
int list_command(Session& session, const std::optional<std::string>& backend_domid, bool json);
int show_command(Session& session, const std::string& vif,
                 const std::optional<std::string>& backend_domid, bool json);
int stats_command(Session& session, const std::optional<std::string>& vif, bool json);

}  // namespace vifd::vifctl
