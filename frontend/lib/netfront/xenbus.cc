#include "frontend/lib/netfront/xenbus.h"

#include <fmt/format.h>

#include <cerrno>
#include <stdexcept>

#include "common/protocol/sizes.h"
#include "common/protocol/xs_parse.h"

namespace vifd::frontend {
namespace {

std::string read_required(xs::Client& xenstore, const std::string& dir, const std::string& key) {
  auto value = xenstore.read(dir + "/" + key);
  if (!value) {
    throw std::runtime_error(fmt::format("xenstore key {}/{} is missing", dir, key));
  }
  return *value;
}

bool read_flag(xs::Client& xenstore, const std::string& dir, const std::string& key) {
  const auto value = xenstore.read(dir + "/" + key);
  if (!value) return false;
  return protocol::parse_bool(dir + "/" + key, *value).value();
}

// A backend path is used only to build further paths; refuse anything that
// is not a plain absolute xenstore path so a hostile value cannot point the
// frontend at nodes outside /local/domain.
void check_backend_path(const std::string& key, const std::string& path) {
  constexpr std::string_view kPrefix = "/local/domain/";
  if (path.size() > 512 || path.rfind(kPrefix, 0) != 0 || path.back() == '/') {
    throw std::runtime_error(
        fmt::format("xenstore key {}: \"{}\" is not a /local/domain path", key, path));
  }
  for (const char c : path) {
    const bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                         (c >= '0' && c <= '9') || c == '/' || c == '-' || c == '_' || c == '@';
    if (!allowed) {
      throw std::runtime_error(
          fmt::format("xenstore key {}: backend path holds a forbidden character", key));
    }
  }
  if (path.find("//") != std::string::npos) {
    throw std::runtime_error(fmt::format("xenstore key {}: backend path has an empty part", key));
  }
}

}  // namespace

std::string frontend_path(platform::DomId domid, std::uint32_t devid) {
  return fmt::format("/local/domain/{}/device/vif/{}", domid, devid);
}

std::string frontend_error_path(platform::DomId domid, std::uint32_t devid) {
  return fmt::format("/local/domain/{}/error/device/vif/{}/error", domid, devid);
}

DeviceConfig read_device_config(xs::Client& xenstore, const std::string& frontend_dir) {
  DeviceConfig config;
  const std::string backend_key = frontend_dir + "/backend";
  config.backend_path = read_required(xenstore, frontend_dir, "backend");
  check_backend_path(backend_key, config.backend_path);
  config.backend_domid = protocol::parse_domid(frontend_dir + "/backend-id",
                                               read_required(xenstore, frontend_dir, "backend-id"))
                             .value();
  config.mac =
      protocol::parse_mac(frontend_dir + "/mac", read_required(xenstore, frontend_dir, "mac"))
          .value();
  if (const auto mtu = xenstore.read(frontend_dir + "/mtu")) {
    config.mtu = static_cast<unsigned>(
        protocol::parse_uint(frontend_dir + "/mtu", *mtu, protocol::kMinMtu, protocol::kMaxMtu)
            .value());
  }
  if (const auto trusted = xenstore.read(frontend_dir + "/trusted")) {
    config.trusted = protocol::parse_bool(frontend_dir + "/trusted", *trusted).value();
  }
  return config;
}

BackendFeatures read_backend_features(xs::Client& xenstore, const std::string& backend_dir) {
  BackendFeatures features;
  features.rx_copy = read_flag(xenstore, backend_dir, "feature-rx-copy");
  features.sg = read_flag(xenstore, backend_dir, "feature-sg");
  features.gso_tcpv4 = read_flag(xenstore, backend_dir, "feature-gso-tcpv4");
  features.gso_tcpv6 = read_flag(xenstore, backend_dir, "feature-gso-tcpv6");
  features.ipv6_csum_offload = read_flag(xenstore, backend_dir, "feature-ipv6-csum-offload");
  features.split_event_channels = read_flag(xenstore, backend_dir, "feature-split-event-channels");
  features.rx_notify = read_flag(xenstore, backend_dir, "feature-rx-notify");
  if (const auto max = xenstore.read(backend_dir + "/multi-queue-max-queues")) {
    features.has_max_queues = true;
    // Linux caps queues at the vCPU count; 64 is far above any such count
    // here and keeps a hostile value from making us share thousands of pages.
    features.max_queues = static_cast<unsigned>(
        protocol::parse_uint(backend_dir + "/multi-queue-max-queues", *max, 1, 64).value());
  }
  return features;
}

std::optional<protocol::XenbusState> read_backend_state(xs::Client& xenstore,
                                                        const std::string& backend_dir) {
  std::optional<std::string> text;
  try {
    text = xenstore.read(backend_dir + "/state");
  } catch (const xs::XsError& error) {
    // Once the toolstack removed the backend directory, the lookup walks
    // into its parent, which only dom0 may read: the device is gone.
    if (error.errno_value() != EACCES) throw;
  }
  if (!text) return std::nullopt;
  return protocol::parse_xenbus_state(backend_dir + "/state", *text).value();
}

std::vector<std::pair<std::string, std::string>> connect_keys(const std::vector<QueueKeys>& queues,
                                                              bool backend_has_max_queues,
                                                              const FrontendFeatures& features) {
  std::vector<std::pair<std::string, std::string>> keys;
  if (backend_has_max_queues) {
    keys.emplace_back("multi-queue-num-queues", std::to_string(queues.size()));
  }
  for (std::size_t i = 0; i < queues.size(); ++i) {
    const QueueKeys& queue = queues[i];
    const std::string prefix = queues.size() == 1 ? "" : fmt::format("queue-{}/", i);
    keys.emplace_back(prefix + "tx-ring-ref", std::to_string(queue.tx_ring_ref));
    keys.emplace_back(prefix + "rx-ring-ref", std::to_string(queue.rx_ring_ref));
    if (queue.split) {
      keys.emplace_back(prefix + "event-channel-tx", std::to_string(queue.tx_port));
      keys.emplace_back(prefix + "event-channel-rx", std::to_string(queue.rx_port));
    } else {
      keys.emplace_back(prefix + "event-channel", std::to_string(queue.tx_port));
    }
  }
  keys.emplace_back("request-rx-copy", "1");
  keys.emplace_back("feature-rx-notify", "1");
  keys.emplace_back("feature-sg", features.sg ? "1" : "0");
  keys.emplace_back("feature-gso-tcpv4", features.gso_tcpv4 ? "1" : "0");
  keys.emplace_back("feature-gso-tcpv6", features.gso_tcpv6 ? "1" : "0");
  keys.emplace_back("feature-ipv6-csum-offload", features.ipv6_csum_offload ? "1" : "0");
  return keys;
}

std::vector<std::string> all_connect_key_roots() {
  return {"multi-queue-num-queues", "tx-ring-ref",       "rx-ring-ref",
          "event-channel",          "event-channel-tx",  "event-channel-rx",
          "request-rx-copy",        "feature-rx-notify", "feature-sg",
          "feature-gso-tcpv4",      "feature-gso-tcpv6", "feature-ipv6-csum-offload"};
}

}  // namespace vifd::frontend
