// One netif queue of one vif: the TX and RX rings of a frontend, their event
// channel(s), and the thread that runs the data path for them.
//
// Contract between the control plane (backend/lib/control) and the data path
// (backend/lib/datapath): the control plane validates everything it read from
// xenstore, maps the rings, binds the event channels and opens the host port,
// then hands them over in a QueueSetup. From start() to stop() only the queue
// thread touches the rings; the control plane only reads stats() and may call
// stop() (which joins the thread) before it unmaps and unbinds.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/lib/datapath/queue_stats.h"
#include "common/platform/event_channels.h"
#include "common/platform/grant_table.h"
#include "common/protocol/mac_address.h"
#include "common/protocol/netif_features.h"
#include "common/protocol/xs_parse.h"

namespace vifd::backend {

class Switch;
class MulticastFilter;
class FlowSteering;
class GrefHandoff;
namespace detail {
class QueueEngine;
}

// What the frontend negotiated; validated by the control plane.
using protocol::VifFeatures;

struct QueueSetup {
  platform::DomId frontend_domid = 0;
  std::uint32_t devid = 0;
  std::uint32_t queue_index = 0;
  // Mapped shared rings; the control plane keeps the mappings until after
  // stop() returns.
  std::span<std::byte> tx_shared_ring;
  std::span<std::byte> rx_shared_ring;
  // Handles owned by the queue (one per queue so each thread polls its own).
  std::unique_ptr<platform::EventChannels> events;
  platform::EvtchnPort tx_port = 0;  // equal to rx_port without split channels
  platform::EvtchnPort rx_port = 0;
  std::unique_ptr<platform::GrantTable> grants;
  // This queue's fd of the vif's TAP (IFF_VNET_HDR), or -1 without a host port.
  // Owned by the TAP device object of the control plane; valid until stop().
  int tap_fd = -1;
  VifFeatures features;
  std::optional<protocol::RateLimit> rate;  // the backend `rate` key
  protocol::MacAddress guest_mac;           // the backend `mac` key
  // The in-process switch this vif is a port of, or nullptr.
  Switch* network_switch = nullptr;
  // What the switch admits from this vif. Without learning every frame must
  // carry guest_mac as its source (the operator lets guests that bridge
  // learn); with allowed_ipv4 (the backend `ip` key) IPv4 sources and ARP
  // senders must be in it, as vif-bridge's iptables rules demand. Both are
  // checked on every frame of a vif on a switch, whichever way it leaves.
  bool mac_learning = false;
  std::vector<protocol::Ipv4Prefix> allowed_ipv4;
  // Re-attach to a ring a previous vifd served: continue from its indices.
  bool resume = false;
  // Called once, from the queue thread, when the frontend broke the protocol
  // badly enough that the vif must be disconnected (xenvif_fatal_tx_err).
  // The callee must only post work to its own thread.
  std::function<void(const std::string& reason)> on_fatal_error;

  // ---- Data-path tuning; the defaults suit a daemon, tests shorten them ----
  // Frames waiting for guest RX buffers before further ones are dropped
  // (rx_no_buffers).
  std::size_t rx_backlog_frames = 256;
  // Bytes those frames may hold, a GSO frame counting its whole length
  // (netback's XENVIF_RX_QUEUE_BYTES): what a guest that stops posting
  // buffers can make dom0 hold, and the sender grants it can pin. A frame is
  // admitted while the backlog plus the frame fit, or into an empty backlog.
  std::size_t rx_backlog_bytes = std::size_t{512} * 1024;
  // How long one frame may wait for guest RX buffers before it is dropped
  // (rx_drain_timeout, netback's rx_drain_timeout_msecs): a guest that posts
  // a buffer now and then would otherwise hold forwarded frames, and the
  // sender's TX slots with them, for as long as it likes.
  std::chrono::milliseconds rx_drain_timeout{250};
  // How long frames may wait while the guest posts no RX buffer at all
  // before the queue counts a stall, drops its backlog and drops arrivals
  // until the guest posts again (netback's rx_stall_timeout).
  std::chrono::milliseconds rx_stall_timeout{10000};
  // Frames other vifs may queue for this queue through the switch.
  std::size_t switch_inbox_frames = 512;
  // The share, in percent of this queue's TX ring, of slots that frames
  // waiting in one receiving vif may hold; beyond it frames to that vif are
  // dropped here (tx_switch_receiver_share), so a receiver that drains
  // slowly cannot keep this guest from reaching everyone else.
  unsigned switch_receiver_share_percent = 50;
  // Notification storms: an event that brought no work is spurious; from
  // the second in a row the port stays masked for 1 ms, doubling up to this
  // (netback's late EOI with XEN_EOI_FLAG_SPURIOUS). Real work resets it.
  std::chrono::milliseconds spurious_event_backoff_max{8};
  // The vif's multicast subscriptions, shared by its queues so that an
  // MCAST_ADD on one queue filters RX on all, and the control plane turns
  // filtering on and off through it (request-multicast-control changes while
  // connected). nullptr: this queue keeps its own, enabled as
  // features.multicast_control says.
  std::shared_ptr<MulticastFilter> multicast_filter;
  // The vif's receive-side hash configuration (control ring); the switch
  // uses it to pick this vif's queue for frames from other vifs. nullptr:
  // no control ring, frames are spread by MAC addresses.
  std::shared_ptr<const FlowSteering> flow_steering;
  // The vif's RX headroom (the frontend's xdp-headroom), shared by its
  // queues so the control plane can follow a change while connected; read
  // once per turn. nullptr: features.xdp_headroom, fixed.
  std::shared_ptr<const std::atomic<std::uint16_t>> xdp_headroom;
  // This queue's static grant mappings (ctrl ring ADD/DEL_GREF_MAPPING),
  // published by the control plane; nullptr: none, every copy is a grant
  // copy.
  std::shared_ptr<GrefHandoff> static_grants;
};

// The data path's logger ("datapath", warn by default), apart from the
// control plane's so the two can be tuned separately.
std::shared_ptr<spdlog::logger> datapath_log();

// "domain D vif V queue Q": how every message about a queue names it.
std::string queue_context(const QueueSetup& setup);

// The data path of one queue: a thread that serves the TX and RX rings.
// Control-plane object: construct, start(), stats(), stop() from one thread.
class Queue {
 public:
  // Validates the setup (rings, handles, ports); throws std::invalid_argument
  // naming the domid/devid/queue. Nothing runs until start().
  explicit Queue(QueueSetup setup);
  // Stops the thread if it still runs.
  ~Queue();
  Queue(const Queue&) = delete;
  Queue& operator=(const Queue&) = delete;

  // Attaches to the switch (if any) and starts the queue thread.
  void start();
  // Detaches from the switch, completes or drops every frame in flight
  // through it, joins the thread. Idempotent. When it returns no grant of
  // this frontend is copied again and the rings, event channels and TAP fd
  // are no longer used: the control plane may unmap and unbind.
  void stop();
  bool running() const noexcept;

  // True once the frontend broke the protocol (on_fatal_error was called).
  bool failed() const noexcept;

  // A snapshot of the counters and ring indices; callable at any time.
  QueueStats stats() const noexcept;
  // The same, in the control socket's schema (ISSUE3 decision 4).
  nlohmann::json stats_json() const;

 private:
  std::unique_ptr<detail::QueueEngine> engine_;
};

}  // namespace vifd::backend
