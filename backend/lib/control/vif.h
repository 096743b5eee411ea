// One vif: the backend half of a netif device (xenbus::backend_path).
//
// The Vif owns the device's host port (TAP), its connection to the frontend
// (ring mappings, event channels, one data-path Queue per netif queue), and
// executes what the xenbus state machine (common/xenbus/backend_decision.h)
// decides from each snapshot of the device's keys: when to build and tear
// them down. All of it runs on the control-plane thread except the TAP steps
// that take the kernel's rtnl lock, which run on the HostPortWorker; their
// completions and a data-path fatal error arrive as posted handlers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/host_port.h"
#include "backend/lib/control/host_port_worker.h"
#include "backend/lib/control/reconnect_pacer.h"
#include "backend/lib/control/switch_policy.h"
#include "backend/lib/datapath/queue.h"
#include "common/net/tap_device.h"
#include "common/platform/platform.h"
#include "common/xenbus/backend_decision.h"
#include "common/xenbus/key_reader.h"
#include "common/xenbus/netback_keys.h"
#include "common/xenbus/paths.h"
#include "common/xenbus/xenbus_device.h"
#include "common/xenbus/xenstore_watcher.h"

namespace vifd::backend {

using xenbus::tap_name;
using xenbus::VifId;

class CtrlRing;
class FlowSteering;
class MulticastFilter;
class Switch;

// What every vif of one daemon shares.
struct VifEnvironment {
  boost::asio::io_context& io;
  xenbus::XenstoreWatcher& watcher;
  platform::Platform& platform;
  // Every step that takes the kernel's rtnl lock (host_port_worker.h).
  HostPortWorker& host_ports;
  unsigned max_queues = 1;
  // The in-process switch for a bridge name, or nullptr when the fast path
  // is disabled.
  std::function<std::shared_ptr<Switch>(const std::string& bridge)> switch_for;
  // Data-path bounds every queue gets (DaemonOptions).
  std::size_t rx_backlog_bytes = std::size_t{512} * 1024;
  std::chrono::milliseconds rx_drain_timeout{250};
  // Which vifs stay off the switch and which may learn MACs.
  SwitchPolicy switch_policy{};
};

class Vif {
 public:
  // The vif `id` below this domain's xenbus::backend_vif_root.
  Vif(VifEnvironment& environment, VifId id);
  // Stops the data path and releases every resource; leaves xenstore as is.
  ~Vif();
  Vif(const Vif&) = delete;
  Vif& operator=(const Vif&) = delete;

  // Validates the backend keys, creates the TAP, writes the features and
  // InitWait, or re-attaches to a connection a previous vifd left Connected.
  void start();

  // Daemon exit. With close_device the frontend is told (Closing, Closed) and
  // the TAP removed; without it xenstore is left untouched so that the next
  // vifd re-attaches, and only our threads, mappings and channels go.
  void shutdown(bool close_device);

  const VifId& id() const { return id_; }
  // The in-process switch this vif is a port of (when connected), or
  // nullptr when its frames all take the TAP.
  const std::shared_ptr<Switch>& network_switch() const { return switch_; }
  protocol::XenbusState state() const { return state_; }
  nlohmann::json describe() const;

 private:
  class RingMapping;
  struct ConnectedQueue;

  // Re-reads what the watch that fired covers (only the keys the decision
  // needs) and moves the state machine; run for every (coalesced) watch
  // callback of the device.
  void on_xenstore_change(const xenbus::DeviceChange& change);
  // decide() on the views; connecting first reads the whole frontend
  // directory and decides again on that snapshot.
  void evaluate();
  xenbus::BackendView decision_view() const;
  // Re-reads the frontend key a watch names into frontend_view_ (for
  // `state`, also the ring keys when they matter).
  void refresh_frontend_view(std::string_view key);
  // Takes the decision keys of a frontend snapshot into frontend_view_.
  void adopt_frontend_snapshot();
  // Decides again once the reconnect pacing allows.
  void evaluate_when_paced();
  // Writes the backend `state` and takes it into backend_view_.
  void publish_state(protocol::XenbusState state);
  // The frontend directory, or an empty snapshot (as if the frontend were
  // gone) when it cannot be read.
  xenbus::KeyMap read_frontend_keys();
  // Carries out a decision, in the order BackendActions lists.
  void execute(const xenbus::BackendActions& actions);

  // The one transition function: walks protocol::backend_state_path (see
  // the diagram in common/xenbus/backend_decision.h).
  void set_state(protocol::XenbusState target);
  // kWaiting: the step needs the host-port worker first; the walk goes on
  // when it is done.
  enum class Entered { kYes, kFailed, kWaiting };
  Entered enter(protocol::XenbusState next, protocol::XenbusState target);
  // Writes `error`, marks the vif failed and moves to `target`.
  void fail(const std::string& message, protocol::XenbusState target);

  // Host-port steps run on env_.host_ports; the state machine waits for
  // the one it needs (`then` runs on completion, unless the vif disconnected
  // or removed its port meanwhile) and decides on the events that arrived
  // meanwhile afterwards. A failed step fails the vif toward `on_error`.
  // `discard` runs instead of `then` when nothing waits anymore.
  void wait_for_host_port(HostPortWorker::Job job, std::function<void()> then,
                          protocol::XenbusState on_error, std::function<void()> discard = {});
  bool waiting_for_host_port() const { return host_port_wait_.has_value(); }
  // reattach: a previous vifd's TAP (and the bridge membership its hotplug
  // script gave it) went with that process, so enslave to `bridge` even when
  // a script is configured. Waits for the worker, then runs `then`.
  void create_host_port(bool reattach, std::function<void()> then);
  // Offloads, queues attached, carrier on for `setting`; then runs `then`.
  void set_up_host_port(const HostPortSetting& setting, std::function<void()> then);
  // Carrier off, on the worker, behind whatever was queued before.
  void take_host_port_down() noexcept;
  void remove_host_port() noexcept;
  // Writes the advertised features; false when the device is gone.
  bool advertise();
  // The connection frontend_keys_ describe (throws naming the bad key).
  xenbus::FrontendConnection parse_connection() const;
  static HostPortSetting host_port_setting_for(const xenbus::FrontendConnection& connection);
  // A previous vifd's connection: sets the host port up, then connects
  // from the shared indices.
  void resume_connection();
  // Builds the connection from frontend_keys_ on a host port set up for it.
  void connect(bool resume);
  void disconnect() noexcept;
  void on_fatal_error(const std::string& reason);
  // feature-dynamic-multicast-control: follows the frontend's
  // request-multicast-control while connected.
  void refresh_multicast_control();
  // feature-xdp-headroom: follows the frontend's xdp-headroom while
  // connected; a value out of range closes the vif.
  void refresh_xdp_headroom();
  // Every watch registration of this vif (backend directory, frontend keys).
  void watch_device();

  VifEnvironment& env_;
  VifId id_;
  xenbus::XenbusDevice device_;
  std::optional<xenbus::BackendConfig> config_;
  protocol::XenbusState state_ = protocol::XenbusState::kInitialising;
  // Set by an error; while set, a frontend that still says Connected is not
  // connected again (it must go through Closing/Closed/Initialising first).
  bool failed_ = false;
  bool toolstack_closed_ = false;
  // The frontend state seen by the last watch event.
  protocol::XenbusState seen_frontend_state_ = protocol::XenbusState::kUnknown;
  // The frontend directory as read in one transaction when connecting (or at
  // start): the connection is parsed from it.
  xenbus::KeyMap frontend_keys_;
  // What decide() reads, as the last event of each watch left it: the
  // backend's state, online and hotplug-status; the frontend's state, ring
  // keys (while they matter) and request-multicast-control.
  xenbus::KeyMap backend_view_;
  xenbus::KeyMap frontend_view_;
  std::string last_error_;

  std::shared_ptr<HostPort> host_port_;
  // What the jobs submitted so far leave the host port set up for (a
  // connection's offloads and queues, carrier on); std::nullopt once the
  // carrier is (to be) off.
  std::optional<HostPortSetting> host_port_setting_;
  // The job the state machine waits for (a sequence number), and whether a
  // watch event arrived meanwhile.
  std::optional<std::uint64_t> host_port_wait_;
  std::uint64_t host_port_jobs_ = 0;
  bool evaluate_after_host_port_ = false;
  std::shared_ptr<Switch> switch_;
  std::unique_ptr<platform::GrantTable> ring_grants_;  // maps the rings
  std::optional<xenbus::FrontendConnection> connection_;
  std::vector<std::unique_ptr<ConnectedQueue>> queues_;
  // Shared with the queues of the connection; the control plane only flips
  // its enabled flag.
  std::shared_ptr<MulticastFilter> multicast_filter_;
  // The RX headroom the queues of the connection read each turn.
  std::shared_ptr<std::atomic<std::uint16_t>> xdp_headroom_;
  // The frontend's control ring, when it offered one (after the queues in
  // teardown order: it only configures them).
  std::unique_ptr<CtrlRing> ctrl_ring_;
  // Invalidates fatal-error handlers posted by queues of an old connection.
  std::shared_ptr<bool> connection_alive_;

  // The frontend's reconnects (Closed -> Initialising) are paced; a paced
  // one is decided again when the timer fires.
  ReconnectPacer reconnect_pacer_;
  boost::asio::steady_timer reconnect_timer_;
  bool reconnect_timer_armed_ = false;
  // Invalidates a reconnect timer handler already queued when the vif goes.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vifd::backend
