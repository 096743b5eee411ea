#include "frontend/lib/netfront/netfront.h"

#include <fmt/format.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>

#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"

namespace vifd::frontend {

using protocol::XenbusState;

const char* to_string(NetfrontState state) noexcept {
  switch (state) {
    case NetfrontState::kWaitingForBackend:
      return "waiting-for-backend";
    case NetfrontState::kConnected:
      return "connected";
    case NetfrontState::kClosed:
      return "closed";
    case NetfrontState::kFailed:
      return "failed";
  }
  return "unknown";
}

Netfront::Netfront(platform::Platform& platform, xs::Client xenstore, NetfrontOptions options)
    : platform_(platform),
      xenstore_(std::move(xenstore)),
      options_(options),
      path_(xenbus::frontend_path({platform.self_domid(), options.devid})),
      watch_token_(fmt::format("vif-front:{}", path_)),
      config_(read_device_config(xenstore_, path_)),
      share_(platform.open_grant_share()) {
  if (options_.queues == 0) options_.queues = 1;
  spdlog::info("vif-front: {}: backend {} (dom{}), mac {}, mtu {}{}", path_, config_.backend_path,
               config_.backend_domid, config_.mac.to_string(), config_.mtu,
               config_.trusted ? "" : ", backend untrusted");
  xenstore_.watch(xenbus::join(config_.backend_path, xenbus::key::kState), watch_token_);
  reset_stale_connection();
  // A previous instance may have left its keys; the backend must never see
  // refs that no longer name our pages.
  xenstore_.transact([this](xs::TxId tx) {
    remove_connect_keys(tx);
    xenstore_.write(xenbus::join(path_, xenbus::key::kState),
                    protocol::to_xenstore_value(XenbusState::kInitialising), tx);
  });
}

void Netfront::reset_stale_connection() {
  std::optional<XenbusState> ours;
  std::optional<XenbusState> backend;
  try {
    ours = read_backend_state(xenstore_, path_);  // any device directory's `state`
    backend = read_backend_state(xenstore_, config_.backend_path);
  } catch (const protocol::XenstoreValueError& bad) {
    spdlog::warn("vif-front: {}: not resetting the previous connection: {}", path_, bad.what());
    return;
  }
  // Linux's xenbus_check_frontend(): only a frontend left Connected (or
  // Closed) with the backend still Connected is reset.
  if ((ours != XenbusState::kConnected && ours != XenbusState::kClosed) ||
      backend != XenbusState::kConnected) {
    return;
  }
  spdlog::info(
      "vif-front: {}: a previous instance left the device {} with the backend Connected; "
      "closing that connection first",
      path_, protocol::name(*ours));
  write_state(XenbusState::kClosing);
  wait_for_backend(XenbusState::kClosing);
  write_state(XenbusState::kClosed);
  wait_for_backend(XenbusState::kClosed);
}

void Netfront::wait_for_backend(XenbusState at_least) {
  const auto deadline = std::chrono::steady_clock::now() + kResetWait;
  for (;;) {
    while (xenstore_.check_watch()) {
    }
    const auto backend = read_backend_state(xenstore_, config_.backend_path);
    if (!backend || *backend >= at_least) {
      return;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      spdlog::warn("vif-front: {}: backend did not reach {} within {} ms (it is {})", path_,
                   protocol::name(at_least), kResetWait.count(), protocol::name(*backend));
      return;
    }
    pollfd entry{xenstore_.fileno(), POLLIN, 0};
    ::poll(&entry, 1, static_cast<int>(std::min<long>(left.count(), 100)));
  }
}

Netfront::~Netfront() {
  // Like a crash: xenstore keeps our last state, the grants end with the
  // pages. An orderly shutdown is close().
  queues_.clear();
  if (xenstore_lost_) return;  // nobody to unwatch with
  try {
    xenstore_.unwatch(xenbus::join(config_.backend_path, xenbus::key::kState), watch_token_);
  } catch (const std::exception& error) {
    spdlog::warn("vif-front: {}: unwatch: {}", path_, error.what());
  }
}

net::PeerOffloads Netfront::tx_offloads() const noexcept {
  net::PeerOffloads offloads;
  if (!connected()) return offloads;
  // Every netback takes partial IPv4 checksums (netif.h: feature-no-csum-
  // offload is the frontend's key); IPv6 only when offered. Large frames
  // need scatter-gather on our side of the ring.
  offloads.csum_ipv4 = true;
  offloads.csum_ipv6 = backend_features_.ipv6_csum_offload;
  offloads.tso4 = backend_features_.sg && backend_features_.gso_tcpv4;
  offloads.tso6 = backend_features_.sg && backend_features_.gso_tcpv6;
  return offloads;
}

void Netfront::write_state(XenbusState state) {
  xenstore_.write(xenbus::join(path_, xenbus::key::kState), protocol::to_xenstore_value(state));
}

void Netfront::remove_connect_keys(xs::TxId tx) {
  for (const std::string& key : xenbus::all_connect_key_roots()) {
    xenstore_.rm(xenbus::join(path_, key), tx);
  }
  if (const auto children = xenstore_.directory(path_, tx)) {
    for (const std::string& child : *children) {
      if (xenbus::is_queue_directory(child)) xenstore_.rm(xenbus::join(path_, child), tx);
    }
  }
}

void Netfront::process_xenstore() {
  while (xenstore_.check_watch()) {
  }
  if (shut_down_) return;
  std::optional<XenbusState> backend;
  try {
    backend = read_backend_state(xenstore_, config_.backend_path);
  } catch (const protocol::XenstoreValueError& bad) {
    if (connected()) fail(bad.what());
    return;
  }
  const bool usable = backend == XenbusState::kInitWait || backend == XenbusState::kConnected;
  if (!usable) backend_cycled_ = true;
  backend_connected_ = backend == XenbusState::kConnected;

  switch (state_) {
    case NetfrontState::kWaitingForBackend:
      if (usable) connect();
      break;
    case NetfrontState::kClosed:
    case NetfrontState::kFailed:
      if (backend == XenbusState::kInitWait && backend_cycled_) {
        write_state(XenbusState::kInitialising);
        connect();
      }
      break;
    case NetfrontState::kConnected:
      if (!usable) {
        spdlog::info("vif-front: {}: backend {} is {}; disconnecting", path_, config_.backend_path,
                     backend ? protocol::name(*backend) : "gone");
        disconnect();
        write_state(XenbusState::kClosed);
        state_ = NetfrontState::kClosed;
      } else if (backend_connected_ && ctrl_ && !static_grants_offered_) {
        offer_static_grants();
      }
      break;
  }
}

void Netfront::connect() {
  backend_cycled_ = false;
  try {
    backend_features_ = read_backend_features(xenstore_, config_.backend_path);
  } catch (const std::exception& bad) {
    fail(bad.what());
    return;
  }
  if (!backend_features_.rx_copy) {
    fail(fmt::format("backend {} does not offer {}", config_.backend_path,
                     xenbus::key::kFeatureRxCopy));
    return;
  }
  const unsigned count = std::max(1U, std::min(options_.queues, backend_features_.max_queues));
  const bool split = options_.split_event_channels && backend_features_.split_event_channels;
  const TxCapabilities tx{backend_features_.sg, backend_features_.sg && backend_features_.gso_tcpv4,
                          backend_features_.sg && backend_features_.gso_tcpv6};
  std::vector<QueueKeys> keys;
  try {
    for (unsigned i = 0; i < count; ++i) {
      queues_.push_back(
          std::make_unique<NetfrontQueue>(platform_, *share_, config_.backend_domid, i, split, tx));
      keys.push_back(queues_.back()->keys());
    }
  } catch (const std::exception& error) {
    fail(fmt::format("cannot set up queue {} for dom{}: {}", queues_.size(), config_.backend_domid,
                     error.what()));
    return;
  }
  xenbus::FrontendFeatures features = options_.features;
  if (features.xdp_headroom != 0 && !backend_features_.xdp_headroom) {
    // As Linux netfront: without the backend's promise the key means nothing.
    spdlog::warn("vif-front: {}: backend does not offer {}; RX headroom not requested", path_,
                 xenbus::key::kFeatureXdpHeadroom);
    features.xdp_headroom = 0;
  }
  std::optional<xenbus::FrontendCtrlRingKeys> ctrl_keys;
  if (options_.static_grants && backend_features_.ctrl_ring) {
    try {
      ctrl_ = std::make_unique<CtrlChannel>(platform_, *share_, config_.backend_domid);
      ctrl_keys = ctrl_->keys();
    } catch (const std::exception& error) {
      // Only an optimisation: the device works without it.
      spdlog::warn("vif-front: {}: no control ring, so no static grant mappings: {}", path_,
                   error.what());
    }
  }
  const auto entries =
      xenbus::connect_keys(keys, backend_features_.has_max_queues, features, ctrl_keys);
  // One transaction: the backend never sees half a set of refs and ports.
  xenstore_.transact([&](xs::TxId txn) {
    remove_connect_keys(txn);
    for (const auto& [key, value] : entries) xenstore_.write(xenbus::join(path_, key), value, txn);
    xenstore_.write(xenbus::join(path_, xenbus::key::kState),
                    protocol::to_xenstore_value(XenbusState::kConnected), txn);
  });
  state_ = NetfrontState::kConnected;
  error_.clear();
  ++connect_count_;
  spdlog::info("vif-front: {}: connected to dom{}: {} queue(s), {} event channels{}{}{}", path_,
               config_.backend_domid, count, split ? "split" : "shared",
               backend_features_.sg ? ", sg" : "", tx.gso_tcpv4 || tx.gso_tcpv6 ? ", gso" : "",
               features.xdp_headroom != 0 ? fmt::format(", RX headroom {}", features.xdp_headroom)
                                          : std::string());
}

void Netfront::offer_static_grants() {
  static_grants_offered_ = true;
  constexpr auto kTimeout = std::chrono::milliseconds(2000);
  constexpr std::size_t kPoolPages = 2 * NetfrontQueue::kRingSize;
  static_assert(kPoolPages <= CtrlChannel::kMaxListEntries, "one ADD per queue");
  for (const auto& queue : queues_) {
    const auto size =
        ctrl_->call(XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, queue->index(), 0, 0, kTimeout);
    if (!size) {
      spdlog::warn("vif-front: {}: no answer to GET_GREF_MAPPING_SIZE; using grant copies", path_);
      return;
    }
    if (size->status != XEN_NETIF_CTRL_STATUS_SUCCESS) {
      spdlog::info(
          "vif-front: {}: the backend does not keep static grant mappings (status {}); using "
          "grant copies",
          path_, size->status);
      return;
    }
    if (size->data < kPoolPages) {
      spdlog::info(
          "vif-front: {}: the backend keeps at most {} static grant mappings per queue, {} "
          "needed; using grant copies",
          path_, size->data, kPoolPages);
      return;
    }
    const auto list = ctrl_->list();
    for (std::size_t page = 0; page < NetfrontQueue::kRingSize; ++page) {
      list[page] = {queue->tx_pool_ref(page), XEN_NETIF_CTRLF_GREF_readonly, 0};
      list[NetfrontQueue::kRingSize + page] = {queue->rx_pool_ref(page), 0, 0};
    }
    const auto added = ctrl_->call(XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, queue->index(),
                                   ctrl_->list_ref(), kPoolPages, kTimeout);
    if (!added || added->status != XEN_NETIF_CTRL_STATUS_SUCCESS) {
      spdlog::warn(
          "vif-front: {}: the backend refused the pools of queue {} ({}); that queue "
          "uses grant copies",
          path_, queue->index(), added ? std::to_string(added->status) : "no answer");
      continue;
    }
    static_grants_mapped_ += kPoolPages;
  }
  spdlog::info("vif-front: {}: static grant mappings: the backend keeps {} pool pages mapped",
               path_, static_grants_mapped_);
}

void Netfront::disconnect() noexcept {
  queues_.clear();
  ctrl_.reset();
  static_grants_offered_ = false;
  static_grants_mapped_ = 0;
  if (state_ == NetfrontState::kConnected) {
    try {
      xenstore_.transact([this](xs::TxId tx) { remove_connect_keys(tx); });
    } catch (const std::exception& error) {
      spdlog::warn("vif-front: {}: cannot remove connection keys: {}", path_, error.what());
    }
  }
  backend_connected_ = false;
}

void Netfront::fail(const std::string& reason) {
  spdlog::error("vif-front: {}: {}", path_, reason);
  error_ = reason;
  try {
    // xenbus_dev_fatal(): the error node, then Closing.
    xenstore_.write(xenbus::frontend_error_path({platform_.self_domid(), options_.devid}), reason);
  } catch (const std::exception& error) {
    spdlog::warn("vif-front: {}: cannot write the error node: {}", path_, error.what());
  }
  write_state(XenbusState::kClosing);
  disconnect();
  state_ = NetfrontState::kFailed;
  write_state(XenbusState::kClosed);
}

bool Netfront::check_failed() {
  for (const auto& queue : queues_) {
    if (queue->failed()) {
      fail(fmt::format("queue {}: {}", queue->index(), queue->failure()));
      return true;
    }
  }
  return false;
}

void Netfront::probe_xenstore() {
  try {
    static_cast<void>(xenstore_.read(xenbus::join(path_, xenbus::key::kState)));
  } catch (const xs::XsError&) {
    xenstore_lost_ = true;
    throw;
  }
}

void Netfront::close(std::chrono::milliseconds grace) {
  if (connected()) {
    write_state(XenbusState::kClosing);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
      std::optional<XenbusState> backend;
      try {
        backend = read_backend_state(xenstore_, config_.backend_path);
      } catch (const protocol::XenstoreValueError&) {
        break;
      }
      if (!backend || *backend >= XenbusState::kClosing) break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        spdlog::warn("vif-front: {}: backend did not close within {} ms", path_, grace.count());
        break;
      }
      pollfd entry{xenstore_.fileno(), POLLIN, 0};
      ::poll(&entry, 1, static_cast<int>(std::min<long>(left.count(), 100)));
      while (xenstore_.check_watch()) {
      }
    }
  }
  disconnect();
  state_ = NetfrontState::kClosed;
  // Closed is final for this instance: a later InitWait must not reconnect.
  shut_down_ = true;
  write_state(XenbusState::kClosed);
}

}  // namespace vifd::frontend
