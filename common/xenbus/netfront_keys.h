// The frontend's side of a netif device's keys, as pure functions: what it
// reads from its own directory (written by the toolstack) and from the
// backend's (written by the backend domain), and what it writes to connect.
//
// Every reader goes through a KeyReader of keys relative to one directory;
// `dir` only names the keys in errors. Values are parsed with the strict
// parsers of common/protocol/xs_parse.h and a bad value is an exception
// naming the key: the backend domain may be untrusted (`trusted` = 0), so its
// keys get the same treatment as a frontend's keys get in vifd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/platform/types.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenbus/key_reader.h"

namespace vifd::xenbus {

// What the toolstack wrote into the frontend directory.
struct FrontendDeviceConfig {
  std::string backend_path;  // `backend`
  platform::DomId backend_domid = 0;
  protocol::MacAddress mac;
  unsigned mtu = 1500;  // `mtu`; libxl writes 1500 when none is configured
  bool trusted = true;  // `trusted`; absent means trusted, as in Linux netfront
};

// Reads and validates `backend` (see check_backend_path), `backend-id`,
// `mac`, `mtu`, `trusted` of the frontend directory `dir`. Throws
// protocol::XenstoreValueError (bad value) or std::runtime_error (missing
// key), naming the key.
FrontendDeviceConfig parse_frontend_device_config(const KeyReader& read, std::string_view dir);

// A backend path is used only to build further paths; anything that is not a
// plain absolute path below a domain's directory is refused (runtime_error
// naming `key`), so a hostile value cannot point the frontend at nodes
// outside /local/domain.
void check_backend_path(std::string_view key, std::string_view path);

// What the backend offers, read from its directory.
struct BackendOffer {
  bool rx_copy = false;               // feature-rx-copy (required)
  bool sg = false;                    // feature-sg
  bool gso_tcpv4 = false;             // feature-gso-tcpv4
  bool gso_tcpv6 = false;             // feature-gso-tcpv6
  bool ipv6_csum_offload = false;     // feature-ipv6-csum-offload
  bool split_event_channels = false;  // feature-split-event-channels
  bool rx_notify = false;             // feature-rx-notify
  bool xdp_headroom = false;          // feature-xdp-headroom: honours xdp-headroom
  bool ctrl_ring = false;             // feature-ctrl-ring
  bool has_max_queues = false;        // multi-queue-max-queues present
  unsigned max_queues = 1;            // multi-queue-max-queues, 1 when absent
};

// Most queues a backend may offer that we take: Linux caps queues at the
// vCPU count; 64 is far above any such count here and keeps a hostile value
// from making us share thousands of pages.
inline constexpr unsigned kMaxOfferedQueues = 64;

// Absent keys read as "not offered" (0), as Linux's xenbus_read_unsigned
// default; present keys must be well formed.
BackendOffer parse_backend_offer(const KeyReader& read, std::string_view dir);

// The `state` of the directory `dir`; std::nullopt when the node is absent.
std::optional<protocol::XenbusState> parse_device_state(const KeyReader& read,
                                                        std::string_view dir);

// What the frontend publishes for one queue.
struct FrontendQueueKeys {
  platform::GrantRef tx_ring_ref = 0;
  platform::GrantRef rx_ring_ref = 0;
  platform::EvtchnPort tx_port = 0;  // equal to rx_port without split channels
  platform::EvtchnPort rx_port = 0;
  bool split = false;
};

// The control ring the frontend offers when the backend has feature-ctrl-ring.
struct FrontendCtrlRingKeys {
  platform::GrantRef ring_ref = 0;  // ctrl-ring-ref
  platform::EvtchnPort port = 0;    // event-channel-ctrl
};

// The feature keys the frontend writes, each only when its data path takes
// what the key promises.
struct FrontendFeatures {
  bool sg = true;
  bool gso_tcpv4 = true;
  bool gso_tcpv6 = true;
  bool ipv6_csum_offload = true;
  // Bytes the backend is asked to leave free in front of each RX packet
  // (xdp-headroom, what Linux netfront writes when an XDP program runs);
  // 0 writes no key. Only for a backend offering feature-xdp-headroom.
  std::uint16_t xdp_headroom = 0;
};

// Every key/value pair of a connect, relative to the frontend directory, in
// the order Linux netfront's talk_to_netback() writes them: per-queue keys
// flat for one queue or under queue-N/ for several, multi-queue-num-queues
// when the backend offers multi-queue, then the features. `state` is not
// included. With ctrl_ring, its two keys come after the queues' keys.
std::vector<std::pair<std::string, std::string>> connect_keys(
    const std::vector<FrontendQueueKeys>& queues, bool backend_has_max_queues,
    const FrontendFeatures& features,
    const std::optional<FrontendCtrlRingKeys>& ctrl_ring = std::nullopt);

// Every key connect_keys() may write flat in the frontend directory (for
// clean-up on disconnect); the per-queue directories are the children for
// which is_queue_directory() holds.
std::vector<std::string> all_connect_key_roots();

// Whether `child` of a frontend directory is a per-queue directory
// ("queue-<i>").
bool is_queue_directory(std::string_view child);

}  // namespace vifd::xenbus
