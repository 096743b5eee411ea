// The two things libxl does after writing a vif's nodes and before removing
// them: wait for the backend to reach a state, and run the hotplug script.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/platform/types.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

// libxl's LIBXL_DESTROY_TIMEOUT / LIBXL_INIT_TIMEOUT for device state changes.
inline constexpr std::chrono::seconds kBackendStateTimeout{10};
// libxl's LIBXL_HOTPLUG_TIMEOUT.
inline constexpr std::chrono::seconds kHotplugTimeout{40};

// Waits (through a xenstore watch, not by polling) until the `state` key at
// state_path holds `wanted`. Returns the last state seen, or std::nullopt if
// the key is missing or unreadable; the caller compares with `wanted`. An
// invalid value (the backend is not trusted to write well-formed states)
// counts as "not yet".
std::optional<protocol::XenbusState> wait_for_state(xs::Client& xs, const std::string& state_path,
                                                    protocol::XenbusState wanted,
                                                    std::chrono::milliseconds timeout);

// How a new vif's backend answered attach (wait_for_backend_ready).
struct BackendAnswer {
  // The last `state` seen; std::nullopt when missing or malformed.
  std::optional<protocol::XenbusState> state;
  // The backend's `error` node as written (backend-written: display it
  // escaped), when it wrote one.
  std::optional<std::string> error;
  // InitWait or Connected, without an error.
  bool ready() const;
  // Closing or Closed, an `error`, or the directory removed: the backend
  // will not serve the vif as it is.
  bool refused() const;
  bool directory_gone = false;
};

// libxl's wait for InitWait, except that it ends as soon as the backend
// refuses the vif: an `error` node or Closed (vifd writes both within
// milliseconds when, e.g., the bridge does not exist), or the backend
// directory removed. An `error` is followed by the state the backend moves
// to (Closing or Closed) for up to half a second. Watches the backend
// directory; reads `state` and `error` in one transaction on each event.
// After `timeout` returns what it saw last (neither ready nor refused).
BackendAnswer wait_for_backend_ready(xs::Client& xs, const std::string& backend_path,
                                     std::chrono::milliseconds timeout);

struct ScriptResult {
  bool timed_out = false;
  int exit_status = -1;  // valid when exited normally
  int signal = 0;        // nonzero when killed by a signal
  bool ok() const { return !timed_out && signal == 0 && exit_status == 0; }
  std::string describe() const;
};

// Runs `<script> <action> type_if=vif` with the environment libxl gives a vif
// hotplug script (script, XENBUS_TYPE=vif, XENBUS_PATH=backend/vif/<D>/<N>,
// XENBUS_BASE_PATH=backend, vif=vif<D>.<N>) on top of ours. Judged, as
// libxl does, by the exit status only; killed after kHotplugTimeout.
ScriptResult run_hotplug_script(const std::string& script, const std::string& action, VifId id);

}  // namespace vifd::vifctl
