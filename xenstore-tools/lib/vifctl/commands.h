// The vifctl commands, as functions of a xenstore connection and output
// streams, so tests drive them in process against a simulated host.
// Each returns the process exit status; failures of the command itself
// throw (ArgumentError for bad arguments, std::runtime_error otherwise).
#pragma once

#include <optional>
#include <ostream>
#include <string>

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
};

struct AttachOptions {
  AttachArguments arguments;
  bool wait = true;  // --no-wait clears it
};

int attach_command(Session& session, const AttachOptions& options);
int detach_command(Session& session, const std::string& vif, bool wait);
int list_command(Session& session, const std::optional<std::string>& backend_domid, bool json);
int show_command(Session& session, const std::string& vif,
                 const std::optional<std::string>& backend_domid, bool json);
int stats_command(Session& session, const std::optional<std::string>& vif, bool json);

}  // namespace vifd::vifctl
