// Every xenstore key name of a netif device, said once.
//
// Names are relative to a device directory (the backend's
// /local/domain/<B>/backend/vif/<D>/<N> or the frontend's
// /local/domain/<D>/device/vif/<N>); the meaning of each is in Xen's
// xen/io/netif.h and docs/misc/xenstore-paths.pandoc. Per-queue keys live
// directly in the frontend directory for one queue and under "queue-<i>/"
// for several: queue_key() builds either form.
#pragma once

#include <string>
#include <string_view>

namespace vifd::xenbus::key {

// Every xenbus device, both directories.
inline constexpr std::string_view kState = "state";
inline constexpr std::string_view kOnline = "online";
inline constexpr std::string_view kError = "error";
inline constexpr std::string_view kHotplugStatus = "hotplug-status";
// Written by Xen's hotplug scripts next to hotplug-status when they fail.
inline constexpr std::string_view kHotplugError = "hotplug-error";

// Backend directory, written by the toolstack (libxl, vifctl).
inline constexpr std::string_view kFrontend = "frontend";
inline constexpr std::string_view kFrontendId = "frontend-id";
inline constexpr std::string_view kHandle = "handle";
inline constexpr std::string_view kMac = "mac";
inline constexpr std::string_view kMtu = "mtu";
inline constexpr std::string_view kBridge = "bridge";
inline constexpr std::string_view kScript = "script";
inline constexpr std::string_view kRate = "rate";
inline constexpr std::string_view kType = "type";
inline constexpr std::string_view kIp = "ip";
inline constexpr std::string_view kVifname = "vifname";
inline constexpr std::string_view kModel = "model";
inline constexpr std::string_view kGatewaydev = "gatewaydev";
// COLO's forwarding device (libxl writes it with colo_* keys).
inline constexpr std::string_view kForwarddev = "forwarddev";

// Frontend directory, written by the toolstack.
inline constexpr std::string_view kBackend = "backend";
inline constexpr std::string_view kBackendId = "backend-id";
inline constexpr std::string_view kTrusted = "trusted";

// Backend directory, written by the backend: what it offers.
inline constexpr std::string_view kFeatureSg = "feature-sg";
inline constexpr std::string_view kFeatureGsoTcpv4 = "feature-gso-tcpv4";
inline constexpr std::string_view kFeatureGsoTcpv6 = "feature-gso-tcpv6";
inline constexpr std::string_view kFeatureIpv6CsumOffload = "feature-ipv6-csum-offload";
inline constexpr std::string_view kFeatureRxCopy = "feature-rx-copy";
inline constexpr std::string_view kFeatureRxFlip = "feature-rx-flip";
inline constexpr std::string_view kFeatureSplitEventChannels = "feature-split-event-channels";
inline constexpr std::string_view kFeatureMulticastControl = "feature-multicast-control";
inline constexpr std::string_view kFeatureDynamicMulticastControl =
    "feature-dynamic-multicast-control";
inline constexpr std::string_view kFeatureCtrlRing = "feature-ctrl-ring";
inline constexpr std::string_view kMultiQueueMaxQueues = "multi-queue-max-queues";
// The backend honours the frontend's xdp-headroom (Linux netback since 5.9).
inline constexpr std::string_view kFeatureXdpHeadroom = "feature-xdp-headroom";

// Frontend directory, written by the frontend: what it takes, and its rings.
inline constexpr std::string_view kRequestRxCopy = "request-rx-copy";
inline constexpr std::string_view kRequestMulticastControl = "request-multicast-control";
inline constexpr std::string_view kFeatureRxNotify = "feature-rx-notify";
inline constexpr std::string_view kFeatureNoCsumOffload = "feature-no-csum-offload";
inline constexpr std::string_view kMultiQueueNumQueues = "multi-queue-num-queues";
inline constexpr std::string_view kCtrlRingRef = "ctrl-ring-ref";
inline constexpr std::string_view kEventChannelCtrl = "event-channel-ctrl";
// Per queue (see queue_key()).
inline constexpr std::string_view kTxRingRef = "tx-ring-ref";
inline constexpr std::string_view kRxRingRef = "rx-ring-ref";
inline constexpr std::string_view kEventChannel = "event-channel";
inline constexpr std::string_view kEventChannelTx = "event-channel-tx";
inline constexpr std::string_view kEventChannelRx = "event-channel-rx";
// The per-queue directories' names start with this, then the index.
inline constexpr std::string_view kQueueDirectoryPrefix = "queue-";
// Headroom Linux netfront asks for in front of each RX packet for XDP.
inline constexpr std::string_view kXdpHeadroom = "xdp-headroom";

// The directory prefix of queue `index`'s keys: "" when the frontend uses
// one queue (keys flat in its directory), "queue-<index>/" otherwise.
std::string queue_prefix(unsigned index, unsigned queue_count);
// queue_prefix() + name, e.g. "queue-1/tx-ring-ref".
std::string queue_key(unsigned index, unsigned queue_count, std::string_view name);

}  // namespace vifd::xenbus::key
