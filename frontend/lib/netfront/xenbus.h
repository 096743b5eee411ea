// The frontend's side of the xenbus handshake for one vif: which keys it
// reads, which it writes, and how each value is checked.
//
// Everything here is control plane: values read from xenstore are parsed
// with the strict parsers of common/protocol/xs_parse.h and a bad value is an
// exception naming the key. The backend's directory is written by the backend
// domain, which may be untrusted (`trusted` = 0), so its keys get the same
// treatment as a frontend's keys get in vifd.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/platform/types.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenstore/client.h"

namespace vifd::frontend {

// `/local/domain/<domid>/device/vif/<devid>`.
std::string frontend_path(platform::DomId domid, std::uint32_t devid);
// Where Linux's xenbus_dev_fatal() reports a device error:
// `/local/domain/<domid>/error/device/vif/<devid>/error`.
std::string frontend_error_path(platform::DomId domid, std::uint32_t devid);

// What the toolstack wrote into the frontend directory.
struct DeviceConfig {
  std::string backend_path;  // `backend`
  platform::DomId backend_domid = 0;
  protocol::MacAddress mac;
  unsigned mtu = 1500;  // `mtu`; libxl writes 1500 when none is configured
  bool trusted = true;  // `trusted`; absent means trusted, as in Linux netfront
};

// Reads and validates `backend`, `backend-id`, `mac`, `mtu`, `trusted`.
// Throws XenstoreValueError (bad value) or std::runtime_error (missing key),
// naming the key.
DeviceConfig read_device_config(xs::Client& xenstore, const std::string& frontend_dir);

// What the backend offers, read from its directory.
struct BackendFeatures {
  bool rx_copy = false;               // feature-rx-copy (required)
  bool sg = false;                    // feature-sg
  bool gso_tcpv4 = false;             // feature-gso-tcpv4
  bool gso_tcpv6 = false;             // feature-gso-tcpv6
  bool ipv6_csum_offload = false;     // feature-ipv6-csum-offload
  bool split_event_channels = false;  // feature-split-event-channels
  bool rx_notify = false;             // feature-rx-notify
  bool has_max_queues = false;        // multi-queue-max-queues present
  unsigned max_queues = 1;            // multi-queue-max-queues, 1 when absent
};

// Absent keys read as "not offered" (0), as Linux's xenbus_read_unsigned
// default; present keys must be well formed.
BackendFeatures read_backend_features(xs::Client& xenstore, const std::string& backend_dir);

// The backend's state; std::nullopt when the node is gone (device removed,
// including when its parent is no longer readable by us).
std::optional<protocol::XenbusState> read_backend_state(xs::Client& xenstore,
                                                        const std::string& backend_dir);

// What this frontend publishes for one queue.
struct QueueKeys {
  platform::GrantRef tx_ring_ref = 0;
  platform::GrantRef rx_ring_ref = 0;
  platform::EvtchnPort tx_port = 0;  // equal to rx_port without split channels
  platform::EvtchnPort rx_port = 0;
  bool split = false;
};

// The feature keys the frontend writes, each only when its data path takes
// what the key promises.
struct FrontendFeatures {
  bool sg = true;
  bool gso_tcpv4 = true;
  bool gso_tcpv6 = true;
  bool ipv6_csum_offload = true;
};

// Every key/value pair of a connect, relative to the frontend directory, in
// the order Linux netfront's talk_to_netback() writes them: per-queue keys
// flat for one queue or under queue-N/ for several, multi-queue-num-queues
// when the backend offers multi-queue, then the features. `state` is not
// included.
std::vector<std::pair<std::string, std::string>> connect_keys(const std::vector<QueueKeys>& queues,
                                                              bool backend_has_max_queues,
                                                              const FrontendFeatures& features);

// Every key connect_keys() may write (for clean-up on disconnect).
std::vector<std::string> all_connect_key_roots();

}  // namespace vifd::frontend
