// The decisions of a backend's xenbus state machine, as pure functions of
// what xenstore says: vifd's Vif reads a snapshot, asks decide_start() or
// decide(), and only executes the actions (builds or tears down the
// connection, writes keys). Tested on every combination of inputs in
// tests/xenbus/backend_decision_test.cc.
//
// The backend states; one arrow is one legal write of `state`, the moves
// Linux netback's set_backend_state() allows (protocol::backend_state_path
// walks the shortest legal path, so a decision names only the target):
//
//                  +--> Closed (bad backend keys, host port failure)
//                  |
//   Initialising --+--> InitWait --(frontend Initialised with rings, or
//                         ^  |       Connected; hotplug-status "connected"
//                         |  |       if a script is configured; not failed)
//                         |  |                        |
//                         |  |                        v
//                         |  +------> Closing <---- Connected
//                         |             |  ^  (frontend Closing, an error,
//                         |             v  |   toolstack Closing)
//                         +---------- Closed
//     (frontend moves back to Initialising/InitWait, online)
//
// While Connected the backend may publish Reconfigured and then Connected
// again without leaving Connected (BackendActions::publish_while_connected):
// the frontend's Reconfiguring handshake, nothing torn down.
//
// The host port (TAP) stays in Closed for the frontend's next attempt while
// the device is online and the guest's domain lives; it goes when the
// toolstack sets online=0, the frontend directory vanishes, or the
// frontend's domain is dying, shut down or gone.
//
// A connected backend always passes through Closing and Closed before it
// waits for a frontend again, so the frontend sees the disconnect. Closed ->
// Closing is legal but never decided here (only a toolstack writes it).
//
// Entering Connected builds the connection; entering Closing or Closed tears
// it down. A step whose action fails does not happen: the executor writes
// `error`, marks the device failed and goes to Closing instead (Closed when
// nothing was advertised yet). While failed, a frontend that still says
// Connected is not connected again: it must move (to Initialising,
// InitWait, Closing or Closed) first, as in netback's frontend_changed().
//
// The toolstack detaches a device by writing online=0 and state=Closing
// into the backend directory (libxl); from then on the backend only goes to
// Closed, answering promptly (libxl waits 10 s for Closed).
#pragma once

#include <optional>

#include "common/protocol/xenbus_state.h"

namespace vifd::xenbus {

// What the backend sees when it starts serving a device it found in
// xenstore (a new device, or one a previous backend process served).
struct BackendStartView {
  // The toolstack's keys parsed (parse_backend_config).
  bool configured = false;
  // The backend `state` key; std::nullopt when absent or malformed.
  std::optional<protocol::XenbusState> published;
  // The frontend `state` key (read_peer_state: Unknown when absent).
  protocol::XenbusState frontend = protocol::XenbusState::kUnknown;
  bool frontend_rings_published = false;
};

// What the backend sees on every watch event of the device.
struct BackendView {
  protocol::XenbusState ours = protocol::XenbusState::kInitialising;
  // The backend `state` key as read now; std::nullopt when absent or
  // malformed.
  std::optional<protocol::XenbusState> published;
  // What we wrote last (XenbusDevice::published_state): a `state` that
  // differs was written by the toolstack.
  std::optional<protocol::XenbusState> last_written;
  // The backend's `online` (read_online).
  bool online = true;
  // A toolstack Closing was seen on an earlier event.
  bool toolstack_closed = false;
  // The toolstack's keys were valid at start.
  bool configured = true;
  // The frontend `state` key now, and as the previous event saw it.
  protocol::XenbusState frontend = protocol::XenbusState::kUnknown;
  protocol::XenbusState frontend_seen = protocol::XenbusState::kUnknown;
  bool frontend_rings_published = false;
  // A hotplug script is configured, and hotplug-status says "connected".
  bool script = false;
  bool hotplug_connected = false;
  // An error closed the device and the frontend has not moved since.
  bool failed = false;
  // The frontend reconnects faster than the backend's pacing allows: a new
  // attempt from Closed waits.
  bool reconnect_paced = false;
  // The hypervisor says the frontend's domain is dying, shut down or gone
  // (Platform::domain_status; looked up only when the frontend is Closed
  // or gone): no reconnect can come, so a Closed frontend's host port goes
  // at once instead of waiting for the toolstack to remove the device.
  bool frontend_domain_gone = false;
};

// What to do, in this order.
struct BackendActions {
  // Start only: the backend keys are invalid; write `error` (the parser's
  // message), mark the device failed, then go to `target`.
  bool report_error = false;
  // Take this as our state without writing it: what a previous backend
  // process or the toolstack wrote.
  std::optional<protocol::XenbusState> adopt;
  // Start only: re-attach to the connection a previous backend process left
  // (publish Connected again, map the rings, continue from the shared
  // indices) without any state change the frontend could see.
  bool resume = false;
  // Start only: write the advertised features (backend_advertised_features);
  // when the directory is gone by then, skip `target`.
  bool advertise = false;
  // Remember that the toolstack closed the device.
  bool set_toolstack_closed = false;
  // The new value of the failed flag.
  std::optional<bool> failed;
  // Remember this frontend state for the next event.
  std::optional<protocol::XenbusState> frontend_seen;
  // Remove the backend `error` key: the frontend starts a new attempt.
  bool remove_error = false;
  // Move to this state along backend_state_path.
  std::optional<protocol::XenbusState> target;
  // Then remove the host port (TAP): the device is going away.
  bool remove_host_port = false;
  // Still connected: follow the frontend's request-multicast-control (and
  // xdp-headroom, the other key it may change while connected).
  bool refresh_multicast_control = false;
  // Still connected, after the refresh: write this `state` without leaving
  // Connected. Reconfigured answers a frontend in Reconfiguring (Linux
  // netfront attaching or removing an XDP program: it rewrote xdp-headroom
  // and waits for Reconfigured, as netback's frontend_changed() switches to
  // it after reading the key again); Connected is written back once the
  // frontend is no longer Reconfiguring (netback leaves Reconfigured
  // published; vifd keeps `state` saying what it is).
  std::optional<protocol::XenbusState> publish_while_connected;
  // A new attempt is due but paced (BackendView::reconnect_paced): decide
  // again once the pacing allows. The frontend's move is left unseen so that
  // it still counts then.
  bool reconnect_later = false;

  friend bool operator==(const BackendActions&, const BackendActions&) = default;
};

BackendActions decide_start(const BackendStartView& view);
// The frontend moved to Initialising or InitWait while the backend is still
// Connected or Closing (online): it started over without the backend seeing
// its Closed. decide() closes first; the next event reconnects.
bool restarts_under_us(const BackendView& view);

BackendActions decide(const BackendView& view);

}  // namespace vifd::xenbus
