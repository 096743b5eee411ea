// What a vif's xenstore keys say, parsed and validated without any I/O.
//
// Two sets of keys feed a vif:
//  - the backend directory, written by the toolstack (libxl, vifctl) when the
//    device is created: who the frontend is, MAC, bridge, script, rate, mtu;
//  - the frontend directory, written by the guest when it connects: rings,
//    event channels, offload features, queue count. Hostile until proven
//    otherwise.
// Both parsers read through a KeyReader so they are unit-testable on a map,
// and both throw protocol::XenstoreValueError whose ParseError names the key
// (the relative path below the directory, e.g. "queue-1/tx-ring-ref"): the
// vif writes that message into its `error` node.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend/lib/datapath/queue.h"
#include "common/platform/types.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/sizes.h"
#include "common/protocol/xs_parse.h"

namespace vifd::backend {

// Reads one key relative to a device directory; std::nullopt when absent.
using KeyReader = std::function<std::optional<std::string>(std::string_view key)>;

// The identity of a vif: /local/domain/<self>/backend/vif/<domid>/<devid>.
struct VifId {
  platform::DomId domid = 0;
  std::uint32_t devid = 0;
  friend auto operator<=>(const VifId&, const VifId&) = default;
};

// The host interface name Xen's hotplug scripts expect: vif<domid>.<devid>.
std::string tap_name(const VifId& id);
// The frontend directory libxl creates for this vif.
std::string expected_frontend_path(const VifId& id);

// Largest devid we accept: keeps "vif<domid>.<devid>" within IFNAMSIZ - 1.
inline constexpr std::uint32_t kMaxDevid = 65535;
// MTU bounds, shared with the frontend and vifctl.
using protocol::kMaxMtu;
using protocol::kMinMtu;

struct BackendConfig {
  std::string frontend_path;
  std::uint32_t handle = 0;
  protocol::MacAddress mac;
  std::optional<std::string> bridge;
  std::optional<std::string> script;
  std::optional<protocol::RateLimit> rate;
  unsigned mtu = 1500;
};

// Validates the toolstack's keys of vif `id`. Throws XenstoreValueError.
BackendConfig parse_backend_config(const VifId& id, const KeyReader& backend);

// One queue's rings and event channels as the frontend published them.
struct QueueConnection {
  platform::GrantRef tx_ring_ref = 0;
  platform::GrantRef rx_ring_ref = 0;
  platform::EvtchnPort tx_port = 0;
  platform::EvtchnPort rx_port = 0;  // == tx_port without split event channels
  bool split_event_channels = false;
};

// The control ring a frontend offers when we advertise feature-ctrl-ring.
struct CtrlRingConnection {
  platform::GrantRef ring_ref = 0;  // ctrl-ring-ref
  platform::EvtchnPort port = 0;    // event-channel-ctrl
};

struct FrontendConnection {
  VifFeatures features;
  std::vector<QueueConnection> queues;
  // Optional for the frontend: absent when it publishes neither key.
  std::optional<CtrlRingConnection> ctrl_ring;
};

// Whether the frontend has published its rings (netfront writes them before
// it switches to Initialised/Connected, in one transaction).
bool frontend_published_rings(const KeyReader& frontend);

// Validates the frontend's connect keys. `max_queues` is what we advertised
// in multi-queue-max-queues; `mtu` comes from the backend config. Throws
// XenstoreValueError naming the offending key.
FrontendConnection parse_frontend_connection(const KeyReader& frontend, unsigned max_queues,
                                             unsigned mtu);

}  // namespace vifd::backend
