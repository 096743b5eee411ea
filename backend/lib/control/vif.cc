#include "backend/lib/control/vif.h"

#include <fmt/format.h>

#include <exception>
#include <stdexcept>
#include <system_error>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/ctrl_ring.h"
#include "backend/lib/control/log.h"
#include "backend/lib/datapath/flow_steering.h"
#include "backend/lib/datapath/gref_table.h"
#include "backend/lib/datapath/multicast_filter.h"
#include "backend/lib/datapath/queue.h"
#include "backend/lib/datapath/switch.h"
#include "common/net/link.h"
#include "common/platform/error.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/state_keys.h"

namespace vifd::backend {

using protocol::XenbusState;
using xenbus::BackendActions;
using xenbus::KeyMap;
using xenbus::map_reader;
namespace key = xenbus::key;

namespace {

// The address Linux netback gives every vif netdev: the guest's own MAC must
// not appear on the host side, or the bridge would learn it on the wrong
// port (and choose it as its own address).
constexpr protocol::MacAddress kHostSideMac{{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}};

// The backend keys decide() reads (state_keys.h).
const std::vector<std::string_view> kBackendDecisionKeys{key::kState, key::kOnline,
                                                         key::kHotplugStatus};

void set_or_erase(KeyMap& keys, std::string_view name, std::optional<std::string> value) {
  if (value) {
    keys.insert_or_assign(std::string(name), std::move(*value));
  } else if (const auto found = keys.find(name); found != keys.end()) {
    keys.erase(found);
  }
}

// Copies `names` from a snapshot into a view, erasing those it lacks.
void copy_keys(const KeyMap& snapshot, const std::vector<std::string>& names, KeyMap& view) {
  for (const auto& name : names) {
    const auto found = snapshot.find(name);
    set_or_erase(
        view, name,
        found == snapshot.end() ? std::nullopt : std::optional<std::string>(found->second));
  }
}

std::vector<std::string> frontend_decision_keys() {
  std::vector<std::string> names{std::string(key::kState),
                                 std::string(key::kRequestMulticastControl),
                                 std::string(key::kXdpHeadroom)};
  for (const auto& ring_key : xenbus::frontend_published_ring_keys()) {
    names.push_back(ring_key);
  }
  return names;
}

net::TapOffloads offloads_for(const VifFeatures& features) {
  // The TAP's offloads say what the kernel may hand us for the guest's RX
  // ring. Partial checksums of the IP version the guest does not take are
  // finished by the data path (adapt_to_peer); GSO is never segmented in
  // software, so TSO is offered only when the guest takes that GSO type and
  // the multi-slot packets it needs (Linux's xenvif_fix_features).
  net::TapOffloads offloads;
  offloads.csum = features.csum_ipv4 || features.csum_ipv6;
  offloads.tso4 = offloads.csum && features.csum_ipv4 && features.sg && features.gso_tcpv4;
  offloads.tso6 = offloads.csum && features.csum_ipv6 && features.sg && features.gso_tcpv6;
  return offloads;
}

}  // namespace

// A grant mapping of one shared ring page, unmapped when destroyed.
class Vif::RingMapping {
 public:
  RingMapping(platform::GrantTable& grants, platform::DomId domid, platform::GrantRef ref,
              const std::string& key)
      : grants_(grants) {
    const platform::DomId domids[] = {domid};
    const platform::GrantRef refs[] = {ref};
    try {
      address_ = grants.map(domids, refs, true);
    } catch (const platform::PlatformError& e) {
      throw std::runtime_error(
          fmt::format("{}: cannot map grant {} of domain {}: {}", key, ref, domid, e.what()));
    }
  }
  ~RingMapping() {
    try {
      grants_.unmap(address_, 1);
    } catch (const platform::PlatformError& e) {
      control_log().error("unmapping a ring page: {}", e.what());
    }
  }
  RingMapping(const RingMapping&) = delete;
  RingMapping& operator=(const RingMapping&) = delete;

  std::span<std::byte> bytes() const {
    return {static_cast<std::byte*>(address_), platform::kPageSize};
  }

 private:
  platform::GrantTable& grants_;
  void* address_ = nullptr;
};

// Member order is teardown order in reverse: the queue (which owns the
// event-channel handle, closing it unbinds the ports) goes before the ring
// mappings it reads.
struct Vif::ConnectedQueue {
  std::unique_ptr<RingMapping> tx_ring;
  std::unique_ptr<RingMapping> rx_ring;
  std::unique_ptr<Queue> queue;
};

Vif::Vif(VifEnvironment& environment, VifId id)
    : env_(environment),
      id_(id),
      device_(environment.watcher, environment.platform.self_domid(), id),
      reconnect_timer_(environment.io) {}

Vif::~Vif() {
  // The timer's destructor cancels it; a handler already queued sees alive_
  // expired.
  alive_.reset();
  device_.unwatch();
  disconnect();
  remove_host_port();
}

void Vif::start() {
  // A directory gone meanwhile reads as empty: its keys are "missing".
  const KeyMap backend = device_.read_backend_keys().value_or(KeyMap{});
  copy_keys(backend, {kBackendDecisionKeys.begin(), kBackendDecisionKeys.end()}, backend_view_);
  // Once per vif: what xl asked for that vifd does not do.
  const xenbus::IgnoredKeys ignored = xenbus::ignored_backend_keys(backend);
  for (const auto& key : ignored.keys) {
    control_log().info("{}: ignoring backend key {} = \"{}\": {}", tap_name(id_), key.key,
                       key.value, key.why);
  }
  if (ignored.more > 0) {
    control_log().info("{}: ignoring {} more unknown backend keys", tap_name(id_), ignored.more);
  }
  std::string config_error;
  try {
    config_ = xenbus::parse_backend_config(id_, map_reader(backend));
  } catch (const std::exception& e) {
    config_error = e.what();
  }
  xenbus::BackendStartView view;
  view.configured = config_.has_value();
  view.published = xenbus::read_state(map_reader(backend));
  if (config_) {
    device_.use_frontend();
    frontend_keys_ = read_frontend_keys();
    adopt_frontend_snapshot();
    view.frontend = xenbus::read_peer_state(map_reader(frontend_keys_));
    view.frontend_rings_published = xenbus::frontend_published_rings(map_reader(frontend_keys_));
  }
  const BackendActions actions = xenbus::decide_start(view);
  if (actions.report_error) {
    fail(config_error, actions.target.value_or(XenbusState::kClosed));
    watch_device();
    return;
  }
  // Remembered even if the host port fails below: a frontend that has not
  // moved since must not retry the failed device.
  if (actions.frontend_seen) {
    seen_frontend_state_ = *actions.frontend_seen;
  }
  // The decision is carried out once the TAP exists; watch events that
  // arrive meanwhile are decided on afterwards.
  create_host_port(actions.resume, [this, actions] { execute(actions); });
  watch_device();
}

void Vif::execute(const BackendActions& actions) {
  if (actions.set_toolstack_closed) {
    toolstack_closed_ = true;
  }
  if (actions.adopt) {
    state_ = *actions.adopt;
  }
  if (actions.failed) {
    failed_ = *actions.failed;
  }
  if (actions.frontend_seen) {
    seen_frontend_state_ = *actions.frontend_seen;
  }
  if (actions.resume) {
    publish_state(state_);
    resume_connection();
  }
  if (actions.advertise && !advertise()) {
    return;  // the toolstack removed the device: the daemon tears us down
  }
  if (actions.remove_error) {
    device_.remove_backend(key::kError);
  }
  if (actions.target == XenbusState::kInitWait && state_ == XenbusState::kClosed) {
    reconnect_pacer_.take(ReconnectPacer::Clock::now());
  }
  if (actions.target) {
    set_state(*actions.target);
  }
  if (actions.remove_host_port) {
    remove_host_port();  // the device is going away
  }
  if (actions.refresh_multicast_control && state_ == XenbusState::kConnected) {
    refresh_multicast_control();
    // The other key a connected frontend may change without reconnecting.
    refresh_xdp_headroom();
  }
  // Only once the keys were read again, and only if that did not close us.
  if (actions.publish_while_connected && state_ == XenbusState::kConnected) {
    publish_state(*actions.publish_while_connected);
    control_log().info("{}: frontend {}, {} published", tap_name(id_),
                       protocol::name(seen_frontend_state_),
                       protocol::name(*actions.publish_while_connected));
  }
}

void Vif::shutdown(bool close_device) {
  device_.unwatch();
  if (close_device && state_ != XenbusState::kClosed) {
    set_state(XenbusState::kClosed);
  }
  disconnect();
  remove_host_port();
}

void Vif::wait_for_host_port(HostPortWorker::Job job, std::function<void()> then,
                             XenbusState on_error, std::function<void()> discard) {
  const std::uint64_t ticket = ++host_port_jobs_;
  host_port_wait_ = ticket;
  env_.host_ports.submit(
      std::move(job),
      [this, alive = std::weak_ptr<bool>(alive_), ticket, then = std::move(then), on_error,
       discard = std::move(discard)](const std::optional<std::string>& error) {
        // Gone, disconnected or its port removed meanwhile: nothing waits.
        if (alive.expired() || host_port_wait_ != ticket) {
          if (discard) {
            discard();
          }
          return;
        }
        host_port_wait_.reset();
        if (error) {
          fail(*error, on_error);
        } else {
          then();
        }
        if (!waiting_for_host_port() && std::exchange(evaluate_after_host_port_, false)) {
          evaluate();
        }
      });
}

void Vif::create_host_port(bool reattach, std::function<void()> then) {
  net::TapOptions options;
  options.name = tap_name(id_);
  options.queues = env_.max_queues;
  options.multi_queue = true;
  // No offloads until the frontend says what it takes.
  // With a script, the toolstack runs it after InitWait and it does the
  // bridging; without one, vifd does what vif-bridge would.
  const std::optional<protocol::BridgeSpec> bridge = config_->bridge;
  const bool has_script = config_->script.has_value();
  const unsigned mtu = config_->mtu;
  // Filled on the worker, taken on the control thread (the completion is
  // posted, which orders the two).
  auto created = std::make_shared<std::shared_ptr<HostPort>>();
  auto role = std::make_shared<std::optional<BridgeRole>>();
  wait_for_host_port(
      [options, bridge, has_script, reattach, mtu, created, role] {
        auto port = std::make_shared<HostPort>(options);
        port->tap.set_mac(kHostSideMac);
        port->tap.set_mtu(mtu);
        port->tap.set_carrier(false);
        port->tap.set_link_up(true);
        if (bridge) {
          // Asked here, where the rtnl lock may be waited for.
          *role = classify_bridge(*bridge, protocol::is_interface_name(bridge->value)
                                               ? net::link_kind(bridge->value)
                                               : net::LinkKind::kAbsent);
          switch (bridge_join(**role, has_script, reattach)) {
            case BridgeJoin::kNone:
              break;
            case BridgeJoin::kRefuse:
              throw std::runtime_error(fmt::format(
                  "{}: '{}' is an Open vSwitch port, which vifd does not join itself: the "
                  "vif needs a hotplug script (vif-openvswitch)",
                  key::kBridge, bridge->value));
            case BridgeJoin::kJoin:
              if (**role == BridgeRole::kAbsent) {
                throw std::runtime_error(
                    fmt::format("{}: bridge '{}' does not exist", key::kBridge, bridge->value));
              }
              port->tap.add_to_bridge(bridge->value);
              break;
          }
        }
        *created = std::move(port);
      },
      [this, created, role, then = std::move(then)] {
        host_port_ = std::move(*created);
        // The switch only joins ports it may shortcut (switch_policy.h).
        if (*role && env_.switch_for &&
            env_.switch_policy.uses_switch(id_, config_->bridge->value, **role)) {
          switch_ = env_.switch_for(config_->bridge->value);
        }
        then();
      },
      XenbusState::kClosed,
      // Closed on the worker too, should nothing wait for it anymore.
      [created, &worker = env_.host_ports] {
        if (*created) {
          worker.submit([port = std::move(*created)] {});
        }
      });
}

void Vif::set_up_host_port(const HostPortSetting& setting, std::function<void()> then) {
  host_port_setting_ = setting;
  wait_for_host_port(
      [port = host_port_, setting] {
        port->tap.set_offloads(setting.offloads);
        port->queues.use_first(port->tap, setting.queues);
        port->tap.set_carrier(true);
      },
      std::move(then), XenbusState::kClosing);
}

void Vif::take_host_port_down() noexcept {
  if (!host_port_ || !host_port_setting_) {
    return;
  }
  host_port_setting_.reset();
  try {
    env_.host_ports.submit([port = host_port_] { port->tap.set_carrier(false); },
                           [name = tap_name(id_)](const std::optional<std::string>& error) {
                             if (error) {
                               control_log().error("{}: carrier off: {}", name, *error);
                             }
                           });
  } catch (const std::exception& e) {
    control_log().error("{}: carrier off not queued: {}", tap_name(id_), e.what());
  }
}

void Vif::remove_host_port() noexcept {
  host_port_setting_.reset();
  // A TAP still being created is closed when its completion finds nothing
  // waiting for it (wait_for_host_port's discard).
  host_port_wait_.reset();
  if (!host_port_) {
    return;
  }
  try {
    // Closing the last queue fd removes the interface, under rtnl: on the
    // worker, after the jobs queued before.
    env_.host_ports.submit([port = std::move(host_port_)] {});
  } catch (const std::exception& e) {
    control_log().error("{}: closing the TAP on the control thread: {}", tap_name(id_), e.what());
    host_port_.reset();
  }
}

bool Vif::advertise() {
  // The frontend (and libxl's hotplug step) react to InitWait and must see
  // the features: they are written first. The transaction also aborts if
  // the toolstack removed the device meanwhile, instead of re-creating its
  // directory.
  return device_.write_backend_if_present(xenbus::backend_advertised_features(env_.max_queues));
}

// The state diagram is in common/xenbus/backend_decision.h. Entering
// Connected builds the connection (connect()); entering Closing or Closed
// tears it down (disconnect()). A step whose action fails does not happen:
// fail() writes `error` and moves to Closing (Closed) instead.
void Vif::set_state(XenbusState target) {
  const auto path = protocol::backend_state_path(state_, target);
  if (!path) {
    control_log().error("{}: no legal path from {} to {}", tap_name(id_), protocol::name(state_),
                        protocol::name(target));
    return;
  }
  for (const XenbusState next : *path) {
    if (enter(next, target) != Entered::kYes) {
      return;
    }
  }
}

Vif::Entered Vif::enter(XenbusState next, XenbusState target) {
  // A step that needs the host-port worker first resumes the walk to
  // `target` when the worker is done.
  const auto resume_walk = [this, target] { set_state(target); };
  switch (next) {
    case XenbusState::kInitWait:
      if (!host_port_) {
        create_host_port(false, resume_walk);
        return Entered::kWaiting;
      }
      break;
    case XenbusState::kConnected:
      try {
        if (!host_port_) {
          create_host_port(false, resume_walk);
          return Entered::kWaiting;
        }
        const HostPortSetting wanted = host_port_setting_for(parse_connection());
        if (host_port_setting_ != wanted) {
          set_up_host_port(wanted, resume_walk);
          return Entered::kWaiting;
        }
        connect(false);
      } catch (const std::exception& e) {
        disconnect();
        fail(e.what(), XenbusState::kClosing);
        return Entered::kFailed;
      }
      break;
    case XenbusState::kClosing:
    case XenbusState::kClosed:
      disconnect();
      break;
    default:
      break;
  }
  state_ = next;
  control_log().info("{}: backend state {}", tap_name(id_), protocol::name(next));
  publish_state(next);
  return Entered::kYes;
}

void Vif::publish_state(XenbusState state) {
  // Our own write is what the backend `state` holds now, whatever the
  // backend watch (coalesced, posted behind this callback) has not re-read
  // yet: a stale value there would read as the toolstack's write (decide()).
  if (device_.publish_state(state)) {
    backend_view_.insert_or_assign(std::string(key::kState), protocol::to_xenstore_value(state));
  }
}

void Vif::fail(const std::string& message, XenbusState target) {
  // The vif stops serving its guest (Closing or Closed, with an `error`
  // node): a failure, whatever its cause.
  control_log().error("{}: {}", tap_name(id_), message);
  last_error_ = message;
  failed_ = true;
  device_.write_error(message);
  set_state(target);
}

KeyMap Vif::read_frontend_keys() {
  try {
    return device_.read_frontend_keys().value_or(KeyMap{});
  } catch (const xs::XsError& e) {
    // Unreadable (a hostile frontend's permissions, more keys than any
    // frontend writes, a transaction it keeps breaking): treated as gone.
    control_log().warn("{}: frontend directory unreadable, treated as gone: {}", tap_name(id_),
                       e.what());
    return {};
  }
}

void Vif::on_xenstore_change(const xenbus::DeviceChange& change) {
  if (change.side == xenbus::DeviceChange::Side::kBackend) {
    auto backend = device_.read_backend(kBackendDecisionKeys);
    if (!backend) {
      return;  // the daemon tears us down on the same event
    }
    backend_view_ = std::move(*backend);
  } else if (config_) {
    refresh_frontend_view(change.key);
  }
  evaluate();
}

void Vif::refresh_frontend_view(std::string_view name) {
  try {
    set_or_erase(frontend_view_, name, device_.read_frontend(name));
    if (name != key::kState) {
      return;
    }
    // decide() looks at the rings only while the frontend says Initialised:
    // a frontend rewriting any other state costs one read per event.
    const bool rings_matter =
        xenbus::read_peer_state(map_reader(frontend_view_)) == XenbusState::kInitialised;
    for (const auto& ring_key : xenbus::frontend_published_ring_keys()) {
      set_or_erase(frontend_view_, ring_key,
                   rings_matter ? device_.read_frontend(ring_key) : std::nullopt);
    }
  } catch (const xs::XsError& e) {
    // As for a snapshot (read_frontend_keys): unreadable is treated as gone.
    control_log().warn("{}: frontend {} unreadable, treated as gone: {}", tap_name(id_), name,
                       e.what());
    frontend_view_.clear();
  }
}

void Vif::adopt_frontend_snapshot() {
  copy_keys(frontend_keys_, frontend_decision_keys(), frontend_view_);
}

xenbus::BackendView Vif::decision_view() const {
  const xenbus::KeyReader backend = map_reader(backend_view_);
  const xenbus::KeyReader frontend = map_reader(frontend_view_);
  xenbus::BackendView view;
  view.ours = state_;
  view.published = xenbus::read_state(backend);
  view.last_written = device_.published_state();
  view.online = xenbus::read_online(backend);
  view.toolstack_closed = toolstack_closed_;
  view.configured = config_.has_value();
  view.frontend = xenbus::read_peer_state(frontend);
  view.frontend_seen = seen_frontend_state_;
  view.frontend_rings_published = xenbus::frontend_published_rings(frontend);
  view.script = config_ && config_->script;
  view.hotplug_connected = xenbus::hotplug_connected(backend);
  view.failed = failed_;
  // One hypercall, only when the answer matters: a Closed or vanished
  // frontend of a live domain may reconnect, one of a dying domain cannot.
  if (view.frontend == XenbusState::kClosed || view.frontend == XenbusState::kUnknown) {
    const auto status = env_.platform.domain_status(id_.domid);
    view.frontend_domain_gone = status && *status != platform::DomainStatus::kRunning;
    if (view.frontend_domain_gone && host_port_) {
      control_log().info("{}: domain {} is {}: closing the vif and removing its TAP now",
                         tap_name(id_), id_.domid, platform::domain_status_name(*status));
    }
  }
  return view;
}

void Vif::evaluate() {
  if (waiting_for_host_port()) {
    evaluate_after_host_port_ = true;  // decided on once the worker is done
    return;
  }
  xenbus::BackendView view = decision_view();
  view.reconnect_paced = !reconnect_pacer_.allows(ReconnectPacer::Clock::now());
  BackendActions actions = xenbus::decide(view);
  if (actions.reconnect_later) {
    evaluate_when_paced();
    return;
  }
  if (actions.target == XenbusState::kConnected) {
    // The connection is parsed from the whole frontend directory, read in
    // one transaction; the decision is taken again on that snapshot so both
    // agree.
    frontend_keys_ = read_frontend_keys();
    adopt_frontend_snapshot();
    actions = xenbus::decide(decision_view());
  }
  execute(actions);
}

void Vif::evaluate_when_paced() {
  if (reconnect_timer_armed_) {
    return;  // one decision is already due
  }
  reconnect_pacer_.count_paced();
  // Once at info: a guest that keeps cycling must not flood the log either.
  control_log().log(reconnect_pacer_.paced() == 1 ? spdlog::level::info : spdlog::level::debug,
                    "{}: frontend reconnecting faster than {} per second, the next attempt waits "
                    "({} paced so far)",
                    tap_name(id_), 1000 / ReconnectPacer::kDefaultInterval.count(),
                    reconnect_pacer_.paced());
  reconnect_timer_armed_ = true;
  reconnect_timer_.expires_after(reconnect_pacer_.wait(ReconnectPacer::Clock::now()));
  reconnect_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
        if (error || alive.expired()) {
          return;
        }
        reconnect_timer_armed_ = false;
        evaluate();
      });
}

void Vif::watch_device() {
  // request-multicast-control: the frontend may change it while connected
  // (feature-dynamic-multicast-control, as netback's xen_mcast_ctrl_changed).
  // xdp-headroom: Linux netfront rewrites it when an XDP program is
  // attached or removed.
  device_.watch([this](const xenbus::DeviceChange& change) { on_xenstore_change(change); },
                {key::kRequestMulticastControl, key::kXdpHeadroom});
}

void Vif::refresh_xdp_headroom() {
  if (!connection_ || !xdp_headroom_) {
    return;
  }
  const auto requested = xenbus::frontend_xdp_headroom(map_reader(frontend_view_));
  if (!requested) {
    fail(requested.error().message(), XenbusState::kClosing);
    return;
  }
  if (requested.value() == connection_->features.xdp_headroom) {
    return;
  }
  connection_->features.xdp_headroom = requested.value();
  xdp_headroom_->store(requested.value(), std::memory_order_relaxed);
  control_log().info("{}: RX headroom {}", tap_name(id_), requested.value());
}

void Vif::refresh_multicast_control() {
  if (!connection_ || !multicast_filter_) {
    return;
  }
  const auto requested = xenbus::frontend_requests_multicast_control(map_reader(frontend_view_));
  if (!requested) {
    fail(requested.error().message(), XenbusState::kClosing);
    return;
  }
  if (requested.value() == connection_->features.multicast_control) {
    return;
  }
  connection_->features.multicast_control = requested.value();
  multicast_filter_->set_enabled(requested.value());
  control_log().info("{}: multicast control {}", tap_name(id_), requested.value() ? "on" : "off");
}

xenbus::FrontendConnection Vif::parse_connection() const {
  return xenbus::parse_frontend_connection(map_reader(frontend_keys_), env_.max_queues,
                                           config_->mtu);
}

HostPortSetting Vif::host_port_setting_for(const xenbus::FrontendConnection& connection) {
  return HostPortSetting{offloads_for(connection.features), connection.queues.size()};
}

void Vif::resume_connection() {
  try {
    const HostPortSetting wanted = host_port_setting_for(parse_connection());
    if (host_port_setting_ != wanted) {
      set_up_host_port(wanted, [this] { resume_connection(); });
      return;
    }
    connect(true);
    control_log().info("{}: re-attached to a connected vif", tap_name(id_));
  } catch (const std::exception& e) {
    disconnect();
    fail(e.what(), XenbusState::kClosing);
  }
}

void Vif::connect(bool resume) {
  // The host port is set up for exactly this connection (enter(), resume_connection()).
  xenbus::FrontendConnection connection = parse_connection();
  if (!host_port_ || host_port_setting_ != host_port_setting_for(connection)) {
    throw std::logic_error(
        fmt::format("{}: connecting before the host port is set up", tap_name(id_)));
  }
  if (!ring_grants_) {
    ring_grants_ = env_.platform.open_grant_table();
  }
  connection_alive_ = std::make_shared<bool>(true);
  // One subscription list per vif: MCAST_ADD on any queue filters RX on all.
  const auto multicast_filter = std::make_shared<MulticastFilter>();
  multicast_filter->set_enabled(connection.features.multicast_control);
  const auto xdp_headroom =
      std::make_shared<std::atomic<std::uint16_t>>(connection.features.xdp_headroom);
  // Without a control ring nothing configures a hash: frames from other vifs
  // are spread over the queues by MAC addresses.
  const auto steering =
      connection.ctrl_ring ? std::make_shared<FlowSteering>() : std::shared_ptr<FlowSteering>();
  const std::weak_ptr<bool> alive = connection_alive_;
  const auto post_fatal = [this, alive, &io = env_.io](const std::string& reason) {
    boost::asio::post(io, [this, alive, reason] {
      if (!alive.expired()) {
        on_fatal_error(reason);
      }
    });
  };
  // Static grant mappings come over the control ring: one handoff per
  // queue, through which its thread sees the pages the frontend had mapped.
  std::vector<std::shared_ptr<GrefHandoff>> static_grants;
  if (connection.ctrl_ring) {
    for (std::size_t i = 0; i < connection.queues.size(); ++i) {
      static_grants.push_back(std::make_shared<GrefHandoff>());
    }
    ctrl_ring_ = std::make_unique<CtrlRing>(
        env_.io, env_.platform, id_.domid, connection.ctrl_ring->ring_ref,
        connection.ctrl_ring->port, static_cast<unsigned>(connection.queues.size()), steering,
        resume, post_fatal, static_grants);
  }

  for (std::size_t i = 0; i < connection.queues.size(); ++i) {
    const xenbus::QueueConnection& wire = connection.queues[i];
    const auto queue_key =
        [i, count = static_cast<unsigned>(connection.queues.size())](std::string_view name) {
          return key::queue_key(static_cast<unsigned>(i), count, name);
        };
    auto connected = std::make_unique<ConnectedQueue>();
    connected->tx_ring = std::make_unique<RingMapping>(*ring_grants_, id_.domid, wire.tx_ring_ref,
                                                       queue_key(key::kTxRingRef));
    connected->rx_ring = std::make_unique<RingMapping>(*ring_grants_, id_.domid, wire.rx_ring_ref,
                                                       queue_key(key::kRxRingRef));
    QueueSetup setup;
    setup.frontend_domid = id_.domid;
    setup.devid = id_.devid;
    setup.queue_index = static_cast<std::uint32_t>(i);
    setup.tx_shared_ring = connected->tx_ring->bytes();
    setup.rx_shared_ring = connected->rx_ring->bytes();
    setup.events = env_.platform.open_event_channels();
    const std::string tx_key =
        queue_key(wire.split_event_channels ? key::kEventChannelTx : key::kEventChannel);
    try {
      setup.tx_port = setup.events->bind_interdomain(id_.domid, wire.tx_port);
    } catch (const platform::PlatformError& e) {
      throw std::runtime_error(fmt::format("{}: cannot bind port {} of domain {}: {}", tx_key,
                                           wire.tx_port, id_.domid, e.what()));
    }
    setup.rx_port = setup.tx_port;
    if (wire.split_event_channels) {
      try {
        setup.rx_port = setup.events->bind_interdomain(id_.domid, wire.rx_port);
      } catch (const platform::PlatformError& e) {
        throw std::runtime_error(fmt::format("{}: cannot bind port {} of domain {}: {}",
                                             queue_key(key::kEventChannelRx), wire.rx_port,
                                             id_.domid, e.what()));
      }
    }
    setup.grants = env_.platform.open_grant_table();
    setup.tap_fd = host_port_->tap.queue_fd(i);
    setup.features = connection.features;
    setup.rate = config_->rate;
    setup.guest_mac = config_->mac;
    setup.network_switch = switch_.get();
    setup.mac_learning = env_.switch_policy.learns(id_);
    setup.allowed_ipv4 = config_->ip;
    setup.resume = resume;
    setup.multicast_filter = multicast_filter;
    setup.flow_steering = steering;
    setup.xdp_headroom = xdp_headroom;
    if (!static_grants.empty()) {
      setup.static_grants = static_grants[i];
    }
    setup.rx_backlog_bytes = env_.rx_backlog_bytes;
    setup.rx_drain_timeout = env_.rx_drain_timeout;
    // Runs on the queue thread: only hands the work to the control plane.
    setup.on_fatal_error = post_fatal;
    connected->queue = std::make_unique<Queue>(std::move(setup));
    queues_.push_back(std::move(connected));
  }
  for (auto& connected : queues_) {
    connected->queue->start();
  }
  connection_ = std::move(connection);
  multicast_filter_ = multicast_filter;
  xdp_headroom_ = xdp_headroom;
  control_log().info("{}: connected, {} queue(s), {} event channels{}", tap_name(id_),
                     queues_.size(),
                     connection_->queues.front().split_event_channels ? "split" : "shared",
                     resume ? ", resumed from the shared indices" : "");
}

void Vif::disconnect() noexcept {
  // Every step runs on the control thread all vifs share: one that takes
  // long is logged with what took the time.
  using Clock = std::chrono::steady_clock;
  const auto began = Clock::now();
  const bool connected = !queues_.empty();
  // A host-port step this vif was waiting for is of no use anymore.
  host_port_wait_.reset();
  connection_alive_.reset();
  for (auto& queue : queues_) {
    queue->queue->stop();
  }
  const auto stopped = Clock::now();
  // Queues first (closing their event-channel handles unbinds the ports),
  // then the ring mappings they used.
  queues_.clear();
  ctrl_ring_.reset();
  connection_.reset();
  multicast_filter_.reset();
  xdp_headroom_.reset();
  const auto released = Clock::now();
  take_host_port_down();
  const auto done = Clock::now();
  if (connected && done - began > std::chrono::milliseconds(100)) {
    const auto ms = [](Clock::duration d) {
      return std::chrono::duration<double, std::milli>(d).count();
    };
    control_log().warn(
        "{}: disconnect took {:.0f} ms (queue threads {:.0f}, rings and channels {:.0f}, carrier "
        "off queued {:.0f})",
        tap_name(id_), ms(done - began), ms(stopped - began), ms(released - stopped),
        ms(done - released));
  }
}

void Vif::on_fatal_error(const std::string& reason) {
  if (state_ != XenbusState::kConnected) {
    return;
  }
  fail(reason, XenbusState::kClosing);
}

nlohmann::json Vif::describe() const {
  nlohmann::json vif;
  vif["domid"] = id_.domid;
  vif["devid"] = id_.devid;
  vif["state"] = std::string(protocol::name(state_));
  vif["tap"] = host_port_ ? nlohmann::json(host_port_->tap.name()) : nlohmann::json(nullptr);
  vif["switch"] =
      (switch_ && config_) ? nlohmann::json(config_->bridge->value) : nlohmann::json(nullptr);
  vif["bridge"] = (config_ && config_->bridge) ? nlohmann::json(config_->bridge->value)
                                               : nlohmann::json(nullptr);
  if (!last_error_.empty()) {
    vif["error"] = last_error_;
  }
  // vifctl capture sessions recording this vif's switched frames.
  vif["captures"] = switch_ ? switch_->capture_count(id_.domid, id_.devid) : 0;
  const auto watch_counters = device_.watch_counters();
  vif["watch_events_handled"] = watch_counters.delivered;
  vif["watch_events_coalesced"] = watch_counters.coalesced;
  vif["watch_events_paced"] = watch_counters.paced;
  vif["watch_suspensions"] = watch_counters.suspended;
  vif["reconnects_paced"] = reconnect_pacer_.paced();
  nlohmann::json features = nlohmann::json::object();
  if (connection_) {
    const VifFeatures& f = connection_->features;
    features = {{"sg", f.sg},
                {"gso_tcpv4", f.gso_tcpv4},
                {"gso_tcpv6", f.gso_tcpv6},
                {"csum_ipv4", f.csum_ipv4},
                {"csum_ipv6", f.csum_ipv6},
                {"rx_notify", f.rx_notify},
                {"multicast_control", f.multicast_control},
                {"xdp_headroom", f.xdp_headroom},
                {"mtu", f.mtu},
                {"split_event_channels", connection_->queues.front().split_event_channels},
                {"ctrl_ring", connection_->ctrl_ring.has_value()},
                {"num_queues", connection_->queues.size()}};
  }
  vif["features"] = features;
  if (ctrl_ring_ != nullptr && ctrl_ring_->static_grants() != nullptr) {
    const GrefControl& grefs = *ctrl_ring_->static_grants();
    nlohmann::json refused = nlohmann::json::object();
    for (std::size_t i = 0; i < kGrefRefusalCount; ++i) {
      const auto reason = static_cast<GrefRefusal>(i);
      if (grefs.refused(reason) != 0) {
        refused[std::string(to_string(reason))] = grefs.refused(reason);
      }
    }
    vif["static_grants"] = {{"mapped", grefs.mapped()},
                            {"retiring", grefs.retiring()},
                            {"ranges", grefs.ranges()},
                            {"limit_per_queue", GrefControl::kMaxMappingsPerQueue},
                            {"range_limit_per_queue", GrefControl::kMaxRangesPerQueue},
                            {"refused", refused}};
  }
  nlohmann::json queues = nlohmann::json::array();
  for (const auto& connected : queues_) {
    queues.push_back(connected->queue->stats_json());
  }
  vif["queues"] = queues;
  return vif;
}

}  // namespace vifd::backend
