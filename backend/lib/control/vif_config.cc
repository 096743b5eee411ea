#include "backend/lib/control/vif_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "common/net/link.h"

namespace vifd::backend {
namespace {

using protocol::ParseError;
using protocol::XenstoreValueError;

[[noreturn]] void reject(std::string key, std::string value, std::string reason) {
  throw XenstoreValueError(ParseError{std::move(key), std::move(value), std::move(reason)});
}

std::string require(const KeyReader& read, const std::string& key) {
  auto value = read(key);
  if (!value) {
    reject(key, "", "missing");
  }
  return *value;
}

// A flag the frontend may omit: absent means `absent_value`, otherwise
// exactly "0" or "1".
bool read_flag(const KeyReader& read, const std::string& key, bool absent_value) {
  const auto value = read(key);
  if (!value) {
    return absent_value;
  }
  return protocol::parse_bool(key, *value).value();
}

// A bridge or interface name from the toolstack: it ends up in ioctls, so it
// must be a valid Linux interface name.
std::string interface_name(const std::string& key, const std::string& value) {
  try {
    net::check_interface_name(value);
  } catch (const std::invalid_argument&) {
    reject(key, value, "not a valid interface name");
  }
  return value;
}

QueueConnection parse_queue(const KeyReader& read, const std::string& prefix) {
  QueueConnection queue;
  const std::string tx_ref_key = prefix + "tx-ring-ref";
  const std::string rx_ref_key = prefix + "rx-ring-ref";
  queue.tx_ring_ref = protocol::parse_grant_ref(tx_ref_key, require(read, tx_ref_key)).value();
  queue.rx_ring_ref = protocol::parse_grant_ref(rx_ref_key, require(read, rx_ref_key)).value();

  // Linux netback's connect_data_rings(): split channels when
  // event-channel-tx is present, otherwise one shared event-channel.
  const std::string tx_key = prefix + "event-channel-tx";
  const std::string rx_key = prefix + "event-channel-rx";
  const std::string shared_key = prefix + "event-channel";
  if (const auto tx = read(tx_key)) {
    queue.split_event_channels = true;
    queue.tx_port = protocol::parse_evtchn_port(tx_key, *tx).value();
    queue.rx_port = protocol::parse_evtchn_port(rx_key, require(read, rx_key)).value();
    if (queue.tx_port == queue.rx_port) {
      reject(rx_key, std::to_string(queue.rx_port), "same port as event-channel-tx");
    }
  } else {
    queue.tx_port = protocol::parse_evtchn_port(shared_key, require(read, shared_key)).value();
    queue.rx_port = queue.tx_port;
  }
  return queue;
}

}  // namespace

std::string tap_name(const VifId& id) {
  return fmt::format("vif{}.{}", id.domid, id.devid);
}

std::string expected_frontend_path(const VifId& id) {
  return fmt::format("/local/domain/{}/device/vif/{}", id.domid, id.devid);
}

BackendConfig parse_backend_config(const VifId& id, const KeyReader& backend) {
  BackendConfig config;
  // frontend-id must name the domain the directory is filed under: the
  // control socket, --domain filtering and the TAP name all use the path's
  // domid, and grants and event channels are checked against frontend-id.
  const auto frontend_id =
      protocol::parse_domid("frontend-id", require(backend, "frontend-id")).value();
  if (frontend_id != id.domid) {
    reject("frontend-id", std::to_string(frontend_id),
           fmt::format("does not match the backend path's domid {}", id.domid));
  }
  config.frontend_path = require(backend, "frontend");
  if (config.frontend_path != expected_frontend_path(id)) {
    reject("frontend", config.frontend_path,
           fmt::format("expected {}", expected_frontend_path(id)));
  }
  config.handle = static_cast<std::uint32_t>(
      protocol::parse_uint("handle", require(backend, "handle"), 0, kMaxDevid).value());
  config.mac = protocol::parse_mac("mac", require(backend, "mac")).value();
  if (const auto bridge = backend("bridge")) {
    config.bridge = interface_name("bridge", *bridge);
  }
  if (const auto script = backend("script"); script && !script->empty()) {
    config.script = *script;
  }
  if (const auto rate = backend("rate")) {
    config.rate = protocol::parse_rate("rate", *rate).value();
  }
  if (const auto mtu = backend("mtu")) {
    config.mtu = static_cast<unsigned>(protocol::parse_uint("mtu", *mtu, kMinMtu, kMaxMtu).value());
  }
  return config;
}

bool frontend_published_rings(const KeyReader& frontend) {
  return frontend("tx-ring-ref").has_value() || frontend("queue-0/tx-ring-ref").has_value();
}

FrontendConnection parse_frontend_connection(const KeyReader& frontend, unsigned max_queues,
                                             unsigned mtu) {
  FrontendConnection connection;
  // Only the copying receive path exists (rx-flip was removed from Linux
  // netback in 2.6.x days and never existed in userspace backends).
  const auto rx_copy = frontend("request-rx-copy");
  if (!rx_copy || !protocol::parse_bool("request-rx-copy", *rx_copy).value()) {
    reject("request-rx-copy", rx_copy.value_or(""), "rx-flip not supported");
  }
  // Linux netback refuses a frontend without feature-rx-notify: without it
  // the backend would have to poll the RX ring for new buffers.
  if (!read_flag(frontend, "feature-rx-notify", false)) {
    reject("feature-rx-notify", frontend("feature-rx-notify").value_or(""),
           "feature-rx-notify is mandatory");
  }
  VifFeatures& features = connection.features;
  features.rx_notify = true;
  features.sg = read_flag(frontend, "feature-sg", false);
  features.gso_tcpv4 = read_flag(frontend, "feature-gso-tcpv4", false);
  features.gso_tcpv6 = read_flag(frontend, "feature-gso-tcpv6", false);
  features.csum_ipv4 = !read_flag(frontend, "feature-no-csum-offload", false);
  features.csum_ipv6 = read_flag(frontend, "feature-ipv6-csum-offload", false);
  features.multicast_control = read_flag(frontend, "request-multicast-control", false);
  // As Linux's xenvif_fix_features(): without scatter-gather a packet must
  // fit one RX slot, so the MTU is capped to a plain Ethernet payload.
  features.mtu = features.sg ? mtu : std::min(mtu, 1500U);

  unsigned queue_count = 1;
  if (const auto requested = frontend("multi-queue-num-queues")) {
    queue_count = static_cast<unsigned>(
        protocol::parse_uint("multi-queue-num-queues", *requested, 1, max_queues).value());
  }
  // Either key announces a control ring; then both must be valid.
  if (frontend("ctrl-ring-ref") || frontend("event-channel-ctrl")) {
    CtrlRingConnection ctrl;
    ctrl.ring_ref =
        protocol::parse_grant_ref("ctrl-ring-ref", require(frontend, "ctrl-ring-ref")).value();
    ctrl.port =
        protocol::parse_evtchn_port("event-channel-ctrl", require(frontend, "event-channel-ctrl"))
            .value();
    connection.ctrl_ring = ctrl;
  }
  if (queue_count == 1) {
    connection.queues.push_back(parse_queue(frontend, ""));
  } else {
    for (unsigned i = 0; i < queue_count; ++i) {
      connection.queues.push_back(parse_queue(frontend, fmt::format("queue-{}/", i)));
    }
  }
  return connection;
}

}  // namespace vifd::backend
