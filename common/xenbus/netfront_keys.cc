#include "common/xenbus/netfront_keys.h"

#include <fmt/format.h>

#include <stdexcept>

#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"

namespace vifd::xenbus {
namespace {

std::string read_required(const KeyReader& read, std::string_view dir, std::string_view key) {
  auto value = read(key);
  if (!value) {
    throw std::runtime_error(fmt::format("xenstore key {} is missing", join(dir, key)));
  }
  return *std::move(value);
}

bool read_flag(const KeyReader& read, std::string_view dir, std::string_view key) {
  const auto value = read(key);
  if (!value) return false;
  return protocol::parse_bool(join(dir, key), *value).value();
}

// The largest backend path taken: far above any real one
// ("/local/domain/<5 digits>/backend/vif/<5 digits>/<5 digits>").
constexpr std::size_t kMaxBackendPath = 512;

}  // namespace

void check_backend_path(std::string_view key, std::string_view path) {
  if (path.size() > kMaxBackendPath || !domain_of(path) || path.back() == '/') {
    throw std::runtime_error(fmt::format("xenstore key {}: \"{}\" is not a /local/domain path", key,
                                         protocol::escape_for_display(path, 64, "\"")));
  }
  for (const char c : path) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '/' || c == '-' || c == '_' || c == '@';
    if (!allowed) {
      throw std::runtime_error(
          fmt::format("xenstore key {}: backend path holds a forbidden character", key));
    }
  }
  if (path.find("//") != std::string_view::npos) {
    throw std::runtime_error(fmt::format("xenstore key {}: backend path has an empty part", key));
  }
}

FrontendDeviceConfig parse_frontend_device_config(const KeyReader& read, std::string_view dir) {
  FrontendDeviceConfig config;
  config.backend_path = read_required(read, dir, key::kBackend);
  check_backend_path(join(dir, key::kBackend), config.backend_path);
  config.backend_domid =
      protocol::parse_domid(join(dir, key::kBackendId), read_required(read, dir, key::kBackendId))
          .value();
  config.mac =
      protocol::parse_mac(join(dir, key::kMac), read_required(read, dir, key::kMac)).value();
  if (const auto mtu = read(key::kMtu)) {
    // 68 is IPv4's minimum; 65535 the largest frame a netif packet describes.
    config.mtu = static_cast<unsigned>(
        protocol::parse_uint(join(dir, key::kMtu), *mtu, 68, 65535 - 14).value());
  }
  if (const auto trusted = read(key::kTrusted)) {
    config.trusted = protocol::parse_bool(join(dir, key::kTrusted), *trusted).value();
  }
  return config;
}

BackendOffer parse_backend_offer(const KeyReader& read, std::string_view dir) {
  BackendOffer offer;
  offer.rx_copy = read_flag(read, dir, key::kFeatureRxCopy);
  offer.sg = read_flag(read, dir, key::kFeatureSg);
  offer.gso_tcpv4 = read_flag(read, dir, key::kFeatureGsoTcpv4);
  offer.gso_tcpv6 = read_flag(read, dir, key::kFeatureGsoTcpv6);
  offer.ipv6_csum_offload = read_flag(read, dir, key::kFeatureIpv6CsumOffload);
  offer.split_event_channels = read_flag(read, dir, key::kFeatureSplitEventChannels);
  offer.rx_notify = read_flag(read, dir, key::kFeatureRxNotify);
  offer.xdp_headroom = read_flag(read, dir, key::kFeatureXdpHeadroom);
  offer.ctrl_ring = read_flag(read, dir, key::kFeatureCtrlRing);
  if (const auto max = read(key::kMultiQueueMaxQueues)) {
    offer.has_max_queues = true;
    offer.max_queues = static_cast<unsigned>(
        protocol::parse_uint(join(dir, key::kMultiQueueMaxQueues), *max, 1, kMaxOfferedQueues)
            .value());
  }
  return offer;
}

std::optional<protocol::XenbusState> parse_device_state(const KeyReader& read,
                                                        std::string_view dir) {
  const auto text = read(key::kState);
  if (!text) return std::nullopt;
  return protocol::parse_xenbus_state(join(dir, key::kState), *text).value();
}

std::vector<std::pair<std::string, std::string>> connect_keys(
    const std::vector<FrontendQueueKeys>& queues, bool backend_has_max_queues,
    const FrontendFeatures& features, const std::optional<FrontendCtrlRingKeys>& ctrl_ring) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (backend_has_max_queues) {
    keys.emplace_back(key::kMultiQueueNumQueues, std::to_string(queues.size()));
  }
  const auto count = static_cast<unsigned>(queues.size());
  for (unsigned i = 0; i < count; ++i) {
    const FrontendQueueKeys& queue = queues[i];
    keys.emplace_back(key::queue_key(i, count, key::kTxRingRef), std::to_string(queue.tx_ring_ref));
    keys.emplace_back(key::queue_key(i, count, key::kRxRingRef), std::to_string(queue.rx_ring_ref));
    if (queue.split) {
      keys.emplace_back(key::queue_key(i, count, key::kEventChannelTx),
                        std::to_string(queue.tx_port));
      keys.emplace_back(key::queue_key(i, count, key::kEventChannelRx),
                        std::to_string(queue.rx_port));
    } else {
      keys.emplace_back(key::queue_key(i, count, key::kEventChannel),
                        std::to_string(queue.tx_port));
    }
  }
  if (ctrl_ring) {
    keys.emplace_back(key::kCtrlRingRef, std::to_string(ctrl_ring->ring_ref));
    keys.emplace_back(key::kEventChannelCtrl, std::to_string(ctrl_ring->port));
  }
  const auto flag = [](bool on) { return std::string(on ? "1" : "0"); };
  keys.emplace_back(key::kRequestRxCopy, flag(true));
  keys.emplace_back(key::kFeatureRxNotify, flag(true));
  keys.emplace_back(key::kFeatureSg, flag(features.sg));
  keys.emplace_back(key::kFeatureGsoTcpv4, flag(features.gso_tcpv4));
  keys.emplace_back(key::kFeatureGsoTcpv6, flag(features.gso_tcpv6));
  keys.emplace_back(key::kFeatureIpv6CsumOffload, flag(features.ipv6_csum_offload));
  if (features.xdp_headroom != 0) {
    keys.emplace_back(key::kXdpHeadroom, std::to_string(features.xdp_headroom));
  }
  return keys;
}

std::vector<std::string> all_connect_key_roots() {
  return {std::string(key::kMultiQueueNumQueues), std::string(key::kTxRingRef),
          std::string(key::kRxRingRef),           std::string(key::kEventChannel),
          std::string(key::kEventChannelTx),      std::string(key::kEventChannelRx),
          std::string(key::kRequestRxCopy),       std::string(key::kFeatureRxNotify),
          std::string(key::kFeatureSg),           std::string(key::kFeatureGsoTcpv4),
          std::string(key::kFeatureGsoTcpv6),     std::string(key::kFeatureIpv6CsumOffload),
          std::string(key::kXdpHeadroom),         std::string(key::kCtrlRingRef),
          std::string(key::kEventChannelCtrl)};
}

bool is_queue_directory(std::string_view child) {
  return child.starts_with(key::kQueueDirectoryPrefix);
}

}  // namespace vifd::xenbus
