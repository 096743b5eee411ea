#include "backend/lib/control/vif.h"

#include <fmt/format.h>

#include <exception>
#include <stdexcept>
#include <system_error>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/ctrl_ring.h"
#include "backend/lib/control/log.h"
#include "backend/lib/datapath/flow_steering.h"
#include "backend/lib/datapath/multicast_filter.h"
#include "backend/lib/datapath/queue.h"
#include "backend/lib/datapath/switch.h"
#include "common/net/link.h"
#include "common/platform/error.h"

namespace vifd::backend {

using protocol::XenbusState;

namespace {

// The address Linux netback gives every vif netdev: the guest's own MAC must
// not appear on the host side, or the bridge would learn it on the wrong
// port (and choose it as its own address).
constexpr protocol::MacAddress kHostSideMac{{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff}};

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

Vif::Vif(VifEnvironment& environment, VifId id, std::string backend_path)
    : env_(environment), id_(id), device_(environment.watcher, std::move(backend_path)) {}

Vif::~Vif() {
  device_.unwatch();
  disconnect();
  remove_host_port();
}

void Vif::start() {
  const KeyReader backend = [this](std::string_view key) { return device_.read_backend(key); };
  try {
    config_ = parse_backend_config(id_, backend);
  } catch (const std::exception& e) {
    // Nothing was advertised yet: straight to Closed, so a toolstack waiting
    // for InitWait sees the failure instead of running hotplug scripts.
    fail(e.what(), XenbusState::kClosed);
    watch_device();
    return;
  }
  device_.set_frontend_path(config_->frontend_path);
  if (config_->bridge && env_.switch_for) {
    switch_ = env_.switch_for(*config_->bridge);
  }

  const auto published = device_.read_backend_state();
  const XenbusState frontend_state = device_.read_frontend_state();
  seen_frontend_state_ = frontend_state;
  const bool resumable =
      published == XenbusState::kConnected && frontend_state == XenbusState::kConnected &&
      frontend_published_rings([this](std::string_view key) { return device_.read_frontend(key); });
  try {
    create_host_port(resumable);
  } catch (const std::exception& e) {
    fail(e.what(), XenbusState::kClosed);
    watch_device();
    return;
  }
  if (resumable) {
    // A previous vifd left this vif Connected and the frontend still is:
    // re-map the rings and continue from the shared indices, without any
    // state change the guest could see.
    state_ = XenbusState::kConnected;
    device_.publish_state(XenbusState::kConnected);
    try {
      connect(true);
      control_log().info("{}: re-attached to a connected vif", tap_name(id_));
    } catch (const std::exception& e) {
      disconnect();
      fail(e.what(), XenbusState::kClosing);
    }
  } else if (published && *published != XenbusState::kInitialising) {
    // Left mid-handshake or closed by a previous vifd: carry on from the
    // state the frontend knows.
    state_ = *published;
    if (state_ == XenbusState::kConnected) {
      set_state(XenbusState::kClosing);  // the frontend is not connected anymore
    }
    write_features_and_init_wait();
  } else {
    write_features_and_init_wait();
  }
  watch_device();
}

void Vif::shutdown(bool close_device) {
  device_.unwatch();
  if (close_device && state_ != XenbusState::kClosed) {
    set_state(XenbusState::kClosed);
  }
  disconnect();
  remove_host_port();
}

void Vif::create_host_port(bool reattach) {
  if (tap_) {
    return;
  }
  net::TapOptions options;
  options.name = tap_name(id_);
  options.queues = env_.max_queues;
  options.multi_queue = true;
  // No offloads until the frontend says what it takes.
  tap_.emplace(options);
  tap_queues_.emplace(*tap_);
  tap_->set_mac(kHostSideMac);
  tap_->set_mtu(config_->mtu);
  tap_->set_carrier(false);
  tap_->set_link_up(true);
  // With a script, the toolstack runs it after InitWait and it does the
  // bridging; without one, vifd does what vif-bridge would.
  if (config_->bridge && (!config_->script || reattach)) {
    if (!net::link_exists(*config_->bridge)) {
      const std::string bridge = *config_->bridge;
      remove_host_port();
      throw std::runtime_error(fmt::format("bridge: bridge '{}' does not exist", bridge));
    }
    tap_->add_to_bridge(*config_->bridge);
  }
}

void Vif::remove_host_port() noexcept {
  tap_queues_.reset();
  tap_.reset();  // closes every queue fd: the kernel removes the interface
}

void Vif::write_features_and_init_wait() {
  // Written before InitWait in one transaction with it: the frontend (and
  // libxl's hotplug step) react to InitWait and must see the features. The
  // transaction also aborts if the toolstack removed the device meanwhile,
  // instead of re-creating its directory.
  const std::vector<std::pair<std::string, std::string>> features = {
      {"feature-sg", "1"},
      {"feature-gso-tcpv4", "1"},
      {"feature-gso-tcpv6", "1"},
      {"feature-ipv6-csum-offload", "1"},
      {"feature-rx-copy", "1"},
      {"feature-rx-flip", "0"},
      {"feature-split-event-channels", "1"},
      {"feature-multicast-control", "1"},
      {"feature-dynamic-multicast-control", "1"},
      {"feature-ctrl-ring", "1"},
      {"multi-queue-max-queues", std::to_string(env_.max_queues)},
  };
  if (!device_.write_backend_if_present(features)) {
    return;
  }
  if (state_ == XenbusState::kInitialising) {
    set_state(XenbusState::kInitWait);
  }
}

// The backend state machine, the moves Linux netback's set_backend_state()
// allows (protocol::backend_state_path walks the shortest legal path):
//
//                 +--> Closed (bad config, TAP failure)
//                 |
//   Initialising -+--> InitWait --(frontend Connected [+ hotplug])--> Connected
//                        ^  |                                           |
//                        |  +---------> Closing <-----------------------+
//                        |                 |  (frontend Closing, error,
//                        |                 v   toolstack Closing)
//                        +------------- Closed
//            (frontend back to Initialising/InitWait)
//
// Entering Connected builds the connection (connect()); entering Closing or
// Closed tears it down (disconnect()). A step whose action fails does not
// happen: fail() writes `error` and moves to Closing instead.
void Vif::set_state(XenbusState target) {
  const auto path = protocol::backend_state_path(state_, target);
  if (!path) {
    control_log().error("{}: no legal path from {} to {}", tap_name(id_), protocol::name(state_),
                        protocol::name(target));
    return;
  }
  for (const XenbusState next : *path) {
    if (!enter(next)) {
      return;
    }
  }
}

bool Vif::enter(XenbusState next) {
  switch (next) {
    case XenbusState::kInitWait:
      try {
        create_host_port();
      } catch (const std::exception& e) {
        fail(e.what(), XenbusState::kClosed);
        return false;
      }
      break;
    case XenbusState::kConnected:
      try {
        connect(false);
      } catch (const std::exception& e) {
        disconnect();
        fail(e.what(), XenbusState::kClosing);
        return false;
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
  device_.publish_state(next);
  return true;
}

void Vif::fail(const std::string& message, XenbusState target) {
  control_log().warn("{}: {}", tap_name(id_), message);
  last_error_ = message;
  failed_ = true;
  device_.write_error(message);
  set_state(target);
}

bool Vif::hotplug_ready() {
  if (!config_->script) {
    return true;
  }
  return device_.read_backend("hotplug-status") == std::optional<std::string>("connected");
}

void Vif::on_xenstore_change() {
  if (!device_.backend_exists()) {
    return;  // the daemon tears us down on the same event
  }
  const auto online_text = device_.read_backend("online");
  const bool online = !online_text || protocol::parse_bool("online", *online_text).value_or(true);

  // libxl detaches by writing online=0 and state=5 on the BACKEND. A state
  // key that differs from what we last wrote was written by the toolstack.
  // vifd never writes `online`, so online=0 with state 5 is the toolstack's
  // even when we had written 5 ourselves already.
  const auto backend_state = device_.read_backend_state();
  const bool state_is_ours =
      backend_state && device_.published_state() && *backend_state == *device_.published_state();
  if (backend_state == XenbusState::kClosing && (!state_is_ours || !online)) {
    toolstack_closed_ = true;
    state_ = XenbusState::kClosing;  // the toolstack took this step for us
  }
  if (toolstack_closed_) {
    // Answer promptly: libxl waits up to 10 s for Closed.
    set_state(XenbusState::kClosed);
    if (!online) {
      remove_host_port();
    }
    return;
  }
  if (!config_) {
    return;  // failed validation: nothing to drive until the device is removed
  }
  react_to_frontend(device_.read_frontend_state(), online);
  if (state_ == XenbusState::kConnected) {
    refresh_multicast_control();
  }
}

void Vif::watch_device() {
  // request-multicast-control: the frontend may change it while connected
  // (feature-dynamic-multicast-control, as netback's xen_mcast_ctrl_changed).
  device_.watch([this](const std::string&) { on_xenstore_change(); },
                {"request-multicast-control"});
}

void Vif::refresh_multicast_control() {
  if (!connection_ || !multicast_filter_) {
    return;
  }
  const auto text = device_.read_frontend("request-multicast-control");
  // Absent reads as off, as netback's xenbus_read_unsigned(..., 0).
  bool requested = false;
  if (text) {
    const auto parsed = protocol::parse_bool("request-multicast-control", *text);
    if (!parsed) {
      fail(parsed.error().message(), XenbusState::kClosing);
      return;
    }
    requested = parsed.value();
  }
  if (requested == connection_->features.multicast_control) {
    return;
  }
  connection_->features.multicast_control = requested;
  multicast_filter_->set_enabled(requested);
  control_log().info("{}: multicast control {}", tap_name(id_), requested ? "on" : "off");
}

void Vif::react_to_frontend(XenbusState frontend_state, bool online) {
  const KeyReader frontend = [this](std::string_view key) { return device_.read_frontend(key); };
  // Like netback's frontend_changed(), a new attempt starts only when the
  // frontend MOVES to Initialising/InitWait: our own writes (error, state)
  // fire the same watch and must not retry a vif that just failed.
  const bool frontend_moved = frontend_state != seen_frontend_state_;
  seen_frontend_state_ = frontend_state;
  switch (frontend_state) {
    case XenbusState::kInitialising:
    case XenbusState::kInitWait:
      if (!frontend_moved) {
        break;
      }
      failed_ = false;
      if (state_ == XenbusState::kClosed && online) {
        device_.remove_backend("error");
        set_state(XenbusState::kInitWait);  // the frontend reconnects
      }
      break;
    case XenbusState::kInitialised:
    case XenbusState::kConnected:
      if (frontend_state == XenbusState::kInitialised && !frontend_published_rings(frontend)) {
        break;
      }
      if (!failed_ && state_ == XenbusState::kInitWait && hotplug_ready()) {
        set_state(XenbusState::kConnected);
      }
      break;
    case XenbusState::kClosing:
      failed_ = false;
      if (state_ != XenbusState::kClosed) {
        set_state(XenbusState::kClosing);
      }
      break;
    case XenbusState::kClosed:
    case XenbusState::kUnknown:
      // Unknown: the frontend directory is gone (domain destroyed).
      failed_ = false;
      set_state(XenbusState::kClosed);
      if (!online || frontend_state == XenbusState::kUnknown) {
        remove_host_port();  // the device is going away
      }
      break;
    default:
      break;
  }
}

void Vif::connect(bool resume) {
  const KeyReader frontend = [this](std::string_view key) { return device_.read_frontend(key); };
  FrontendConnection connection =
      parse_frontend_connection(frontend, env_.max_queues, config_->mtu);
  create_host_port();
  tap_->set_offloads(offloads_for(connection.features));
  tap_queues_->use_first(*tap_, connection.queues.size());
  if (!ring_grants_) {
    ring_grants_ = env_.platform.open_grant_table();
  }
  connection_alive_ = std::make_shared<bool>(true);
  // One subscription list per vif: MCAST_ADD on any queue filters RX on all.
  const auto multicast_filter = std::make_shared<MulticastFilter>();
  multicast_filter->set_enabled(connection.features.multicast_control);
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
  if (connection.ctrl_ring) {
    ctrl_ring_ = std::make_unique<CtrlRing>(
        env_.io, env_.platform, id_.domid, connection.ctrl_ring->ring_ref,
        connection.ctrl_ring->port, static_cast<unsigned>(connection.queues.size()), steering,
        resume, post_fatal);
  }

  for (std::size_t i = 0; i < connection.queues.size(); ++i) {
    const QueueConnection& wire = connection.queues[i];
    const std::string prefix = connection.queues.size() == 1 ? "" : fmt::format("queue-{}/", i);
    auto connected = std::make_unique<ConnectedQueue>();
    connected->tx_ring = std::make_unique<RingMapping>(*ring_grants_, id_.domid, wire.tx_ring_ref,
                                                       prefix + "tx-ring-ref");
    connected->rx_ring = std::make_unique<RingMapping>(*ring_grants_, id_.domid, wire.rx_ring_ref,
                                                       prefix + "rx-ring-ref");
    QueueSetup setup;
    setup.frontend_domid = id_.domid;
    setup.devid = id_.devid;
    setup.queue_index = static_cast<std::uint32_t>(i);
    setup.tx_shared_ring = connected->tx_ring->bytes();
    setup.rx_shared_ring = connected->rx_ring->bytes();
    setup.events = env_.platform.open_event_channels();
    const std::string tx_key =
        prefix + (wire.split_event_channels ? "event-channel-tx" : "event-channel");
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
        throw std::runtime_error(
            fmt::format("{}event-channel-rx: cannot bind port {} of domain {}: {}", prefix,
                        wire.rx_port, id_.domid, e.what()));
      }
    }
    setup.grants = env_.platform.open_grant_table();
    setup.tap_fd = tap_->queue_fd(i);
    setup.features = connection.features;
    setup.rate = config_->rate;
    setup.guest_mac = config_->mac;
    setup.network_switch = switch_.get();
    setup.resume = resume;
    setup.multicast_filter = multicast_filter;
    setup.flow_steering = steering;
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
  tap_->set_carrier(true);
  control_log().info("{}: connected, {} queue(s), {} event channels{}", tap_name(id_),
                     queues_.size(),
                     connection_->queues.front().split_event_channels ? "split" : "shared",
                     resume ? ", resumed from the shared indices" : "");
}

void Vif::disconnect() noexcept {
  connection_alive_.reset();
  for (auto& connected : queues_) {
    connected->queue->stop();
  }
  // Queues first (closing their event-channel handles unbinds the ports),
  // then the ring mappings they used.
  queues_.clear();
  ctrl_ring_.reset();
  connection_.reset();
  multicast_filter_.reset();
  if (tap_) {
    try {
      tap_->set_carrier(false);
    } catch (const std::system_error& e) {
      control_log().warn("{}: carrier off: {}", tap_->name(), e.what());
    }
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
  vif["tap"] = tap_ ? nlohmann::json(tap_->name()) : nlohmann::json(nullptr);
  vif["switch"] = (switch_ && config_) ? nlohmann::json(*config_->bridge) : nlohmann::json(nullptr);
  if (!last_error_.empty()) {
    vif["error"] = last_error_;
  }
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
                {"mtu", f.mtu},
                {"split_event_channels", connection_->queues.front().split_event_channels},
                {"ctrl_ring", connection_->ctrl_ring.has_value()},
                {"num_queues", connection_->queues.size()}};
  }
  vif["features"] = features;
  nlohmann::json queues = nlohmann::json::array();
  for (const auto& connected : queues_) {
    queues.push_back(connected->queue->stats_json());
  }
  vif["queues"] = queues;
  return vif;
}

}  // namespace vifd::backend
