// What a vif's xenstore keys say to its backend, parsed and validated
// without any I/O.
//
// Two sets of keys feed a vif:
//  - the backend directory, written by the toolstack (libxl, vifctl) when the
//    device is created: who the frontend is, MAC, bridge, script, rate, mtu;
//  - the frontend directory, written by the guest when it connects: rings,
//    event channels, offload features, queue count. Hostile until proven
//    otherwise.
// Every parser reads through a KeyReader (key_reader.h), so it runs on a
// snapshot of a directory (XenbusDevice) or a plain map in tests, and
// throws protocol::XenstoreValueError whose ParseError names the key (the
// relative path below the directory, e.g. "queue-1/tx-ring-ref"): the vif
// writes that message into its `error` node.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/platform/types.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/netif_features.h"
#include "common/protocol/sizes.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/key_reader.h"
#include "common/xenbus/paths.h"

namespace vifd::xenbus {

// Bounds of the `mtu` key (common/protocol/sizes.h).
using protocol::kMaxMtu;
using protocol::kMinMtu;
using protocol::VifFeatures;
// Without feature-sg a packet must fit one RX slot: a plain Ethernet payload.
inline constexpr unsigned kMtuWithoutSg = 1500;

struct BackendConfig {
  std::string frontend_path;
  std::uint32_t handle = 0;
  protocol::MacAddress mac;
  // A Linux bridge or an Open vSwitch port (protocol::parse_bridge); the
  // hotplug script gets the key itself, unchanged.
  std::optional<protocol::BridgeSpec> bridge;
  std::optional<std::string> script;
  std::optional<protocol::RateLimit> rate;
  unsigned mtu = 1500;
  // The `ip` key (libxl's ip=): the IPv4 sources the guest may use, which
  // vif-bridge turns into iptables rules and the switch enforces on the fast
  // path. Empty when absent: any address.
  std::vector<protocol::Ipv4Prefix> ip;
};

// Validates the toolstack's keys of vif `id`. Throws XenstoreValueError.
BackendConfig parse_backend_config(const VifId& id, const KeyReader& backend);

// A key of the backend directory that the backend does not act on: one xl
// wrote for a feature vifd lacks (vifname, model, gatewaydev, a `type`
// other than vif, COLO's keys) or one nobody documents. For a log line:
// `key` and `value` are escaped and bounded (the directory's contents are
// not ours), `why` says what becomes of it.
struct IgnoredKey {
  std::string key;
  std::string value;
  std::string why;
  friend bool operator==(const IgnoredKey&, const IgnoredKey&) = default;
};
// At most kMaxIgnoredKeys, in key order; `more` counts the rest.
inline constexpr std::size_t kMaxIgnoredKeys = 16;
struct IgnoredKeys {
  std::vector<IgnoredKey> keys;
  std::size_t more = 0;
};
IgnoredKeys ignored_backend_keys(const KeyMap& backend);

// The keys and values a backend advertises before InitWait: everything the
// data path implements, and up to `max_queues` queues.
std::vector<std::pair<std::string, std::string>> backend_advertised_features(unsigned max_queues);

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
// The keys frontend_published_rings() reads.
std::vector<std::string> frontend_published_ring_keys();

// The largest xdp-headroom vifd serves. netif.h allows up to
// protocol::kMaxXdpHeadroom (0x7FFF), but the headroom goes in front of the
// data in the first RX slot, a 4 KiB page, which must still carry data;
// Linux netfront asks for 256 (XDP_PACKET_HEADROOM).
inline constexpr unsigned kMaxServedXdpHeadroom = protocol::kPageSize - 1;

// The frontend's xdp-headroom, read at connect and again while connected
// (Linux netfront rewrites it when an XDP program is attached or removed);
// absent reads as 0. Above kMaxServedXdpHeadroom is an error naming the key.
protocol::Result<std::uint16_t> frontend_xdp_headroom(const KeyReader& frontend);

// Validates the frontend's connect keys. `max_queues` is what we advertised
// in multi-queue-max-queues; `mtu` comes from the backend config. Throws
// XenstoreValueError naming the offending key.
FrontendConnection parse_frontend_connection(const KeyReader& frontend, unsigned max_queues,
                                             unsigned mtu);

// The frontend's request-multicast-control, which it may change while
// connected (feature-dynamic-multicast-control); absent reads as off, as
// netback's xenbus_read_unsigned(..., 0).
protocol::Result<bool> frontend_requests_multicast_control(const KeyReader& frontend);

}  // namespace vifd::xenbus
