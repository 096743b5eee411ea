// A device's xenstore directory as a guest (or a hostile toolstack or
// backend domain) can fill it: the input is a list of key/value pairs, keys
// drawn from the netif key names (flat or under a queue-N/ directory) or
// free form. Every parser of common/xenbus runs over it through a map_reader.
// A parser may only reject with the exception it documents, whose message
// is printable; an accepted connection has its queue count within what we
// advertised, every grant reference and port in range and equal to the
// text under its key, split channels on distinct ports, and an MTU within
// what the toolstack configured.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/protocol/xs_parse.h"
#include "common/xenbus/key_reader.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/netback_keys.h"
#include "common/xenbus/netfront_keys.h"
#include "common/xenbus/paths.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace vifd::xenbus;  // NOLINT(google-build-using-namespace)
namespace key = vifd::xenbus::key;

constexpr std::array<std::string_view, 40> kNames = {key::kState,
                                                     key::kOnline,
                                                     key::kError,
                                                     key::kHotplugStatus,
                                                     key::kFrontend,
                                                     key::kFrontendId,
                                                     key::kHandle,
                                                     key::kMac,
                                                     key::kMtu,
                                                     key::kBridge,
                                                     key::kScript,
                                                     key::kRate,
                                                     key::kType,
                                                     key::kIp,
                                                     key::kVifname,
                                                     key::kBackend,
                                                     key::kBackendId,
                                                     key::kTrusted,
                                                     key::kFeatureSg,
                                                     key::kFeatureGsoTcpv4,
                                                     key::kFeatureGsoTcpv6,
                                                     key::kFeatureIpv6CsumOffload,
                                                     key::kFeatureRxCopy,
                                                     key::kFeatureRxFlip,
                                                     key::kFeatureSplitEventChannels,
                                                     key::kFeatureMulticastControl,
                                                     key::kFeatureCtrlRing,
                                                     key::kMultiQueueMaxQueues,
                                                     key::kRequestRxCopy,
                                                     key::kRequestMulticastControl,
                                                     key::kFeatureRxNotify,
                                                     key::kFeatureNoCsumOffload,
                                                     key::kMultiQueueNumQueues,
                                                     key::kCtrlRingRef,
                                                     key::kEventChannelCtrl,
                                                     key::kTxRingRef,
                                                     key::kRxRingRef,
                                                     key::kEventChannel,
                                                     key::kEventChannelTx,
                                                     key::kEventChannelRx};

bool printable(std::string_view text) {
  for (const char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7F) {
      return false;
    }
  }
  return true;
}

void check_value_error(const vifd::protocol::XenstoreValueError& error) {
  FUZZ_CHECK(!error.error().key.empty());
  FUZZ_CHECK(printable(error.what()));
}

// The number under `name` as the map holds it.
void check_text(const KeyMap& keys, const std::string& name, std::uint64_t value) {
  const auto found = keys.find(name);
  FUZZ_CHECK(found != keys.end() && found->second == std::to_string(value));
}

void check_connection(const KeyMap& keys, unsigned max_queues, unsigned mtu) {
  try {
    const auto connection = parse_frontend_connection(map_reader(keys), max_queues, mtu);
    const auto count = static_cast<unsigned>(connection.queues.size());
    FUZZ_CHECK(count >= 1 && count <= max_queues);
    FUZZ_CHECK(connection.features.mtu <= mtu);
    if (!connection.features.sg) {
      FUZZ_CHECK(connection.features.mtu <= kMtuWithoutSg);
    }
    for (unsigned i = 0; i < count; ++i) {
      const auto& queue = connection.queues[i];
      FUZZ_CHECK(queue.tx_ring_ref >= 8 && queue.rx_ring_ref >= 8);
      check_text(keys, key::queue_key(i, count, key::kTxRingRef), queue.tx_ring_ref);
      check_text(keys, key::queue_key(i, count, key::kRxRingRef), queue.rx_ring_ref);
      FUZZ_CHECK(queue.tx_port > 0 && queue.tx_port < (1U << 17));
      FUZZ_CHECK(queue.rx_port > 0 && queue.rx_port < (1U << 17));
      if (queue.split_event_channels) {
        FUZZ_CHECK(queue.tx_port != queue.rx_port);
        check_text(keys, key::queue_key(i, count, key::kEventChannelTx), queue.tx_port);
        check_text(keys, key::queue_key(i, count, key::kEventChannelRx), queue.rx_port);
      } else {
        FUZZ_CHECK(queue.tx_port == queue.rx_port);
        check_text(keys, key::queue_key(i, count, key::kEventChannel), queue.tx_port);
      }
    }
    if (connection.ctrl_ring) {
      FUZZ_CHECK(connection.ctrl_ring->ring_ref >= 8);
      check_text(keys, std::string(key::kCtrlRingRef), connection.ctrl_ring->ring_ref);
      check_text(keys, std::string(key::kEventChannelCtrl), connection.ctrl_ring->port);
    }
  } catch (const vifd::protocol::XenstoreValueError& error) {
    check_value_error(error);
  }
  const auto multicast = frontend_requests_multicast_control(map_reader(keys));
  (void)frontend_published_rings(map_reader(keys));
  if (!multicast) {
    FUZZ_CHECK(printable(multicast.error().message()));
  }
}

void check_backend_config(const KeyMap& keys, VifId id) {
  try {
    const auto config = parse_backend_config(id, map_reader(keys));
    FUZZ_CHECK(config.frontend_path == frontend_path(id));
    FUZZ_CHECK(config.handle <= kMaxDevid);
    FUZZ_CHECK(!config.mac.is_multicast() && !config.mac.is_zero());
    FUZZ_CHECK(config.mtu >= kMinMtu && config.mtu <= kMaxMtu);
    if (config.bridge) {
      const auto& bridge = *config.bridge;
      FUZZ_CHECK(vifd::protocol::is_interface_name(bridge.name));
      FUZZ_CHECK(bridge.open_vswitch_syntax() || bridge.name == bridge.value);
      FUZZ_CHECK(bridge.trunks.size() <= vifd::protocol::kMaxTrunkVlans);
      for (const auto vlan : bridge.trunks) {
        FUZZ_CHECK(vlan >= vifd::protocol::kMinVlanId && vlan <= vifd::protocol::kMaxVlanId);
      }
      if (bridge.vlan) {
        FUZZ_CHECK(*bridge.vlan >= vifd::protocol::kMinVlanId &&
                   *bridge.vlan <= vifd::protocol::kMaxVlanId);
      }
    }
    if (config.rate) {
      FUZZ_CHECK(config.rate->bytes >= 1 && config.rate->usec >= 1);
    }
  } catch (const vifd::protocol::XenstoreValueError& error) {
    check_value_error(error);
  }
}

void check_frontend_side(const KeyMap& keys) {
  const std::string_view dir = "/local/domain/1/device/vif/0";
  std::optional<FrontendDeviceConfig> config;
  try {
    config = parse_frontend_device_config(map_reader(keys), dir);
  } catch (const vifd::protocol::XenstoreValueError& error) {
    check_value_error(error);
  } catch (const std::runtime_error& error) {
    FUZZ_CHECK(printable(error.what()));
  }
  if (config) {
    // Outside the try: the accepted path must pass the check on its own.
    check_backend_path(key::kBackend, config->backend_path);
    FUZZ_CHECK(config->backend_path.starts_with("/local/domain/"));
    FUZZ_CHECK(config->backend_path.find("/..") == std::string::npos);
    FUZZ_CHECK(config->backend_domid <= 0x7FEF);
    FUZZ_CHECK(!config->mac.is_multicast());
  }
  try {
    const auto offer = parse_backend_offer(map_reader(keys), dir);
    FUZZ_CHECK(offer.max_queues >= 1 && offer.max_queues <= kMaxOfferedQueues);
    if (!offer.has_max_queues) {
      FUZZ_CHECK(offer.max_queues == 1);
    }
  } catch (const vifd::protocol::XenstoreValueError& error) {
    check_value_error(error);
  } catch (const std::runtime_error& error) {
    FUZZ_CHECK(printable(error.what()));
  }
  try {
    (void)parse_device_state(map_reader(keys), dir);
  } catch (const vifd::protocol::XenstoreValueError& error) {
    check_value_error(error);
  } catch (const std::runtime_error& error) {
    FUZZ_CHECK(printable(error.what()));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  const unsigned max_queues = 1 + in.take<std::uint8_t>() % 16;
  const unsigned mtu = kMinMtu + in.take<std::uint16_t>() % (kMaxMtu - kMinMtu + 1);
  const VifId id{static_cast<vifd::platform::DomId>(in.take<std::uint16_t>() % 0x8000),
                 in.take<std::uint16_t>()};
  KeyMap keys;
  while (!in.empty()) {
    const auto kind = in.take<std::uint8_t>();
    std::string name;
    switch (kind % 4) {
      case 0:
        name = in.take_string();
        break;
      case 1:
        name = kNames[in.take<std::uint8_t>() % kNames.size()];
        break;
      default:
        name = key::queue_key(in.take<std::uint8_t>() % 20, 2,
                              kNames[in.take<std::uint8_t>() % kNames.size()]);
        break;
    }
    keys[name] = std::string(in.take_string());
  }
  check_connection(keys, max_queues, mtu);
  check_backend_config(keys, id);
  check_frontend_side(keys);
  return 0;
}
