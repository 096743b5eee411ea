#include "common/xenbus/netback_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "common/xenbus/keys.h"

namespace vifd::xenbus {
namespace {

using protocol::ParseError;
using protocol::XenstoreValueError;

[[noreturn]] void reject(std::string_view key, std::string value, std::string reason) {
  throw XenstoreValueError(ParseError{std::string(key), std::move(value), std::move(reason)});
}

std::string require(const KeyReader& read, std::string_view key) {
  auto value = read(key);
  if (!value) {
    reject(key, "", "missing");
  }
  return *value;
}

// A flag the frontend may omit: absent means `absent_value`, otherwise
// exactly "0" or "1".
bool read_flag(const KeyReader& read, std::string_view key, bool absent_value) {
  const auto value = read(key);
  if (!value) {
    return absent_value;
  }
  return protocol::parse_bool(key, *value).value();
}

QueueConnection parse_queue(const KeyReader& read, unsigned index, unsigned queue_count) {
  const auto queue_key = [&](std::string_view name) {
    return key::queue_key(index, queue_count, name);
  };
  QueueConnection queue;
  const std::string tx_ref_key = queue_key(key::kTxRingRef);
  const std::string rx_ref_key = queue_key(key::kRxRingRef);
  queue.tx_ring_ref = protocol::parse_grant_ref(tx_ref_key, require(read, tx_ref_key)).value();
  queue.rx_ring_ref = protocol::parse_grant_ref(rx_ref_key, require(read, rx_ref_key)).value();

  // Linux netback's connect_data_rings(): split channels when
  // event-channel-tx is present, otherwise one shared event-channel.
  const std::string tx_key = queue_key(key::kEventChannelTx);
  const std::string rx_key = queue_key(key::kEventChannelRx);
  const std::string shared_key = queue_key(key::kEventChannel);
  if (const auto tx = read(tx_key)) {
    queue.split_event_channels = true;
    queue.tx_port = protocol::parse_evtchn_port(tx_key, *tx).value();
    queue.rx_port = protocol::parse_evtchn_port(rx_key, require(read, rx_key)).value();
    if (queue.tx_port == queue.rx_port) {
      reject(rx_key, std::to_string(queue.rx_port),
             fmt::format("same port as {}", key::kEventChannelTx));
    }
  } else {
    queue.tx_port = protocol::parse_evtchn_port(shared_key, require(read, shared_key)).value();
    queue.rx_port = queue.tx_port;
  }
  return queue;
}

}  // namespace

BackendConfig parse_backend_config(const VifId& id, const KeyReader& backend) {
  BackendConfig config;
  // frontend-id must name the domain the directory is filed under: the
  // control socket, --domain filtering and the TAP name all use the path's
  // domid, and grants and event channels are checked against frontend-id.
  const auto frontend_id =
      protocol::parse_domid(key::kFrontendId, require(backend, key::kFrontendId)).value();
  if (frontend_id != id.domid) {
    reject(key::kFrontendId, std::to_string(frontend_id),
           fmt::format("does not match the backend path's domid {}", id.domid));
  }
  config.frontend_path = require(backend, key::kFrontend);
  if (config.frontend_path != xenbus::frontend_path(id)) {
    reject(key::kFrontend, config.frontend_path,
           fmt::format("expected {}", xenbus::frontend_path(id)));
  }
  config.handle = static_cast<std::uint32_t>(
      protocol::parse_uint(key::kHandle, require(backend, key::kHandle), 0, kMaxDevid).value());
  config.mac = protocol::parse_mac(key::kMac, require(backend, key::kMac)).value();
  if (const auto bridge = backend(key::kBridge)) {
    config.bridge = protocol::parse_bridge(key::kBridge, *bridge).value();
  }
  if (const auto script = backend(key::kScript); script && !script->empty()) {
    config.script = *script;
  }
  if (const auto rate = backend(key::kRate)) {
    config.rate = protocol::parse_rate(key::kRate, *rate).value();
  }
  if (const auto mtu = backend(key::kMtu)) {
    config.mtu =
        static_cast<unsigned>(protocol::parse_uint(key::kMtu, *mtu, kMinMtu, kMaxMtu).value());
  }
  if (const auto ip = backend(key::kIp)) {
    config.ip = protocol::parse_ipv4_list(key::kIp, *ip).value();
  }
  return config;
}

IgnoredKeys ignored_backend_keys(const KeyMap& backend) {
  // Acted on (parse_backend_config, the state machine), written by vifd
  // itself, or by the hotplug script.
  static constexpr std::array kUsed = {
      key::kFrontend, key::kFrontendId, key::kHandle,        key::kMac,          key::kBridge,
      key::kScript,   key::kRate,       key::kMtu,           key::kIp,           key::kState,
      key::kOnline,   key::kError,      key::kHotplugStatus, key::kHotplugError,
  };
  IgnoredKeys ignored;
  for (const auto& [name, value] : backend) {
    std::string why;
    if (std::find(kUsed.begin(), kUsed.end(), name) != kUsed.end() ||
        name.starts_with("feature-") || name.starts_with("multi-queue-")) {
      continue;
    }
    if (name == key::kType) {
      if (value == "vif") {
        continue;
      }
      why = "served as a PV vif (type vif): vifd has no emulated twin";
    } else if (name == key::kVifname) {
      why = "the TAP is always named vif<domid>.<devid>";
    } else if (name == key::kModel) {
      why = "an emulated NIC model: vifd serves PV netfront only";
    } else if (name == key::kGatewaydev) {
      why = "read by the vif-route/vif-nat hotplug scripts, not by vifd";
    } else if (name == key::kForwarddev || name.starts_with("colo_")) {
      why = "COLO is not supported";
    } else {
      why = "not a key vifd knows";
    }
    if (ignored.keys.size() == kMaxIgnoredKeys) {
      ++ignored.more;
      continue;
    }
    ignored.keys.push_back(IgnoredKey{protocol::escape_for_display(name, 64),
                                      protocol::escape_for_display(value, 64, "\""),
                                      std::move(why)});
  }
  return ignored;
}

std::vector<std::pair<std::string, std::string>> backend_advertised_features(unsigned max_queues) {
  const auto entry = [](std::string_view name, std::string value) {
    return std::pair<std::string, std::string>(std::string(name), std::move(value));
  };
  return {
      entry(key::kFeatureSg, "1"),
      entry(key::kFeatureGsoTcpv4, "1"),
      entry(key::kFeatureGsoTcpv6, "1"),
      entry(key::kFeatureIpv6CsumOffload, "1"),
      entry(key::kFeatureRxCopy, "1"),
      entry(key::kFeatureRxFlip, "0"),
      entry(key::kFeatureSplitEventChannels, "1"),
      entry(key::kFeatureMulticastControl, "1"),
      entry(key::kFeatureDynamicMulticastControl, "1"),
      entry(key::kFeatureCtrlRing, "1"),
      entry(key::kMultiQueueMaxQueues, std::to_string(max_queues)),
      entry(key::kFeatureXdpHeadroom, "1"),
  };
}

std::vector<std::string> frontend_published_ring_keys() {
  // The ring keys of a single queue, or of queue 0 of several (any count
  // above one puts them under "queue-0/").
  constexpr unsigned kSeveralQueues = 2;
  return {std::string(key::kTxRingRef), key::queue_key(0, kSeveralQueues, key::kTxRingRef)};
}

bool frontend_published_rings(const KeyReader& frontend) {
  for (const auto& ring_key : frontend_published_ring_keys()) {
    if (frontend(ring_key).has_value()) {
      return true;
    }
  }
  return false;
}

FrontendConnection parse_frontend_connection(const KeyReader& frontend, unsigned max_queues,
                                             unsigned mtu) {
  FrontendConnection connection;
  // Only the copying receive path exists (rx-flip was removed from Linux
  // netback in 2.6.x days and never existed in userspace backends).
  const auto rx_copy = frontend(key::kRequestRxCopy);
  if (!rx_copy || !protocol::parse_bool(key::kRequestRxCopy, *rx_copy).value()) {
    reject(key::kRequestRxCopy, rx_copy.value_or(""), "rx-flip not supported");
  }
  // Linux netback refuses a frontend without feature-rx-notify: without it
  // the backend would have to poll the RX ring for new buffers.
  if (!read_flag(frontend, key::kFeatureRxNotify, false)) {
    reject(key::kFeatureRxNotify, frontend(key::kFeatureRxNotify).value_or(""),
           fmt::format("{} is mandatory", key::kFeatureRxNotify));
  }
  VifFeatures& features = connection.features;
  features.rx_notify = true;
  features.sg = read_flag(frontend, key::kFeatureSg, false);
  features.gso_tcpv4 = read_flag(frontend, key::kFeatureGsoTcpv4, false);
  features.gso_tcpv6 = read_flag(frontend, key::kFeatureGsoTcpv6, false);
  features.csum_ipv4 = !read_flag(frontend, key::kFeatureNoCsumOffload, false);
  features.csum_ipv6 = read_flag(frontend, key::kFeatureIpv6CsumOffload, false);
  features.multicast_control = read_flag(frontend, key::kRequestMulticastControl, false);
  features.xdp_headroom = frontend_xdp_headroom(frontend).value();
  // As Linux's xenvif_fix_features(): without scatter-gather a packet must
  // fit one RX slot, so the MTU is capped to a plain Ethernet payload.
  features.mtu = features.sg ? mtu : std::min(mtu, kMtuWithoutSg);

  unsigned queue_count = 1;
  if (const auto requested = frontend(key::kMultiQueueNumQueues)) {
    queue_count = static_cast<unsigned>(
        protocol::parse_uint(key::kMultiQueueNumQueues, *requested, 1, max_queues).value());
  }
  // Either key announces a control ring; then both must be valid.
  if (frontend(key::kCtrlRingRef) || frontend(key::kEventChannelCtrl)) {
    CtrlRingConnection ctrl;
    ctrl.ring_ref =
        protocol::parse_grant_ref(key::kCtrlRingRef, require(frontend, key::kCtrlRingRef)).value();
    ctrl.port = protocol::parse_evtchn_port(key::kEventChannelCtrl,
                                            require(frontend, key::kEventChannelCtrl))
                    .value();
    connection.ctrl_ring = ctrl;
  }
  for (unsigned i = 0; i < queue_count; ++i) {
    connection.queues.push_back(parse_queue(frontend, i, queue_count));
  }
  return connection;
}

protocol::Result<bool> frontend_requests_multicast_control(const KeyReader& frontend) {
  const auto text = frontend(key::kRequestMulticastControl);
  if (!text) {
    return false;
  }
  return protocol::parse_bool(key::kRequestMulticastControl, *text);
}

protocol::Result<std::uint16_t> frontend_xdp_headroom(const KeyReader& frontend) {
  const auto text = frontend(key::kXdpHeadroom);
  if (!text) {
    return std::uint16_t{0};
  }
  const auto parsed = protocol::parse_uint(key::kXdpHeadroom, *text, 0, protocol::kMaxXdpHeadroom);
  if (!parsed) {
    return parsed.error();
  }
  if (parsed.value() > kMaxServedXdpHeadroom) {
    return ParseError{std::string(key::kXdpHeadroom), *text,
                      fmt::format("leaves no room for data in a {}-byte RX slot (at most {})",
                                  protocol::kPageSize, kMaxServedXdpHeadroom)};
  }
  return static_cast<std::uint16_t>(parsed.value());
}

}  // namespace vifd::xenbus
