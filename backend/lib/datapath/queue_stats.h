// Per-queue counters of the data path and their JSON form (the schema of the
// vifd control socket, ISSUE3 decision 4).
//
// Every counter is written by exactly one thread, the queue thread, so an
// increment is a relaxed load + store (no read-modify-write, no lock); the
// control plane reads them with relaxed loads at any time. A snapshot is
// therefore not atomic as a whole, only each field is.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string_view>

namespace vifd::backend {

// Why a packet was dropped. A drop of a guest TX packet still answers every
// request (NETIF_RSP_ERROR for guest errors, NETIF_RSP_OKAY for congestion,
// as netback does).
enum class DropReason : std::uint8_t {
  // guest TX: malformed requests (xenvif_tx_err)
  kTxBadPacketSize,      // first slot shorter than an Ethernet header
  kTxSlotExceedsPacket,  // a continuation slot larger than what remains of the packet
  kTxTooManySlots,       // more than XEN_NETIF_NR_SLOTS_MIN data slots
  kTxGrantCopyFailed,    // a segment of the guest's packet failed (bad gref, ...)
  kTxBadOffload,         // checksum/GSO metadata that does not match the frame
  // guest TX: congestion and host port
  kTxTapFull,              // the TAP queue answered EAGAIN
  kTxTapError,             // any other TAP write error
  kTxNoHostPort,           // no TAP and no switch destination
  kTxSwitchInboxFull,      // the destination queue's inbox was full
  kTxSwitchDropped,        // the destination dropped it (no buffers, stopped, copy failed)
  kTxSwitchReceiverShare,  // the destination vif already holds its share of our TX ring
  // guest TX: what the switch refuses to admit (answered OKAY, like a
  // frame a bridge's filter drops)
  kTxSpoofedSourceMac,     // source MAC not the configured one (or another port's)
  kTxIpSourceNotAllowed,   // `ip` set: IPv4 source outside it (or header unreadable)
  kTxArpSenderNotAllowed,  // `ip` set: ARP sender address outside it
  kTxExceedsReceiverMtu,   // larger than the receiving vif's MTU (GSO: per segment)
  // guest RX
  kRxNoBuffers,          // backlog full (or stalled) while the guest posted no buffers
  kRxStallFlush,         // dropped from the backlog when the stall timer fired
  kRxDrainTimeout,       // waited longer than rx_drain_timeout for guest buffers
  kRxFrameTooLarge,      // needs more slots than the guest accepts (no sg, or > ring)
  kRxGsoNotNegotiated,   // GSO frame for a frontend without that GSO feature
  kRxBadOffload,         // checksum/GSO metadata that does not match the frame
  kRxTapOversize,        // the TAP had a frame larger than our buffers
  kRxTapError,           // a TAP read error other than EAGAIN
  kRxGrantCopyFailed,    // a segment into the guest's buffer failed
  kRxMulticastFiltered,  // multicast the frontend did not subscribe to
  kRxPortStopped,        // switch frame dropped because its sender or receiver stopped
  kCount,
};
inline constexpr std::size_t kDropReasonCount = static_cast<std::size_t>(DropReason::kCount);
std::string_view to_string(DropReason reason) noexcept;

// Packets per batch, both directions: 1, 2-3, 4-7, ..., 128-255, 256+.
inline constexpr std::size_t kBatchHistogramBuckets = 9;
std::size_t batch_histogram_bucket(std::size_t packets) noexcept;
std::string_view batch_histogram_label(std::size_t bucket) noexcept;

struct RingIndices {
  std::uint32_t tx_req_prod = 0;
  std::uint32_t tx_req_cons = 0;
  std::uint32_t tx_rsp_prod = 0;
  std::uint32_t rx_req_prod = 0;
  std::uint32_t rx_req_cons = 0;
  std::uint32_t rx_rsp_prod = 0;
};

// A plain snapshot of one queue's counters.
struct QueueStats {
  std::uint32_t index = 0;
  std::uint64_t tx_packets = 0;  // guest -> backend packets accepted (TAP or switch)
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_packets = 0;  // backend -> guest packets delivered
  std::uint64_t rx_bytes = 0;
  std::array<std::uint64_t, kDropReasonCount> drops{};
  std::uint64_t grant_copy_calls = 0;
  std::uint64_t grant_copy_segments = 0;
  std::uint64_t grant_copy_bytes = 0;
  // Static grant mappings: pages of this queue's frontend mapped now (as the
  // queue's adopted table has them), and the copy segments served by memcpy
  // through such mappings instead of a grant copy (not in grant_copy_*).
  std::uint64_t gref_mappings = 0;
  std::uint64_t mapped_copy_segments = 0;
  std::uint64_t mapped_copy_bytes = 0;
  // Switch, sender side: packets (and their TX slots) this queue handed to
  // another vif's queue and that were delivered there.
  std::uint64_t forwarded_packets = 0;
  std::uint64_t forwarded_segments = 0;
  // Switch, receiver side: packets received from another vif, and the
  // grant-copy segments with BOTH sides foreign that moved them.
  std::uint64_t switch_received_packets = 0;
  std::uint64_t switch_received_segments = 0;
  std::uint64_t tap_writes = 0;
  std::uint64_t tap_reads = 0;
  std::uint64_t notifications_sent = 0;
  std::uint64_t notifications_received = 0;
  std::array<std::uint64_t, kBatchHistogramBuckets> batch_histogram{};
  std::uint64_t rx_stalls = 0;
  std::uint64_t tx_credit_stalls = 0;   // times the rate limit stopped TX
  std::uint64_t multicast_updates = 0;  // MCAST_ADD/DEL extras honoured
  // Turns of the queue thread's loop (each one serves both rings once): a
  // turn that ends after some moment began after it or was already under
  // way, so two further turns mean everything before was looked at.
  std::uint64_t loop_iterations = 0;
  // Event-channel deliveries that brought no work (no TX request, no new RX
  // buffer): a notification storm shows here, and its ports then stay
  // masked for a growing backoff.
  std::uint64_t spurious_events = 0;
  // Bytes of the frames waiting for guest RX buffers, now and at most.
  std::uint64_t rx_backlog_bytes = 0;
  std::uint64_t rx_backlog_peak_bytes = 0;
  bool fatal_error = false;
  RingIndices ring{};

  std::uint64_t drop(DropReason reason) const noexcept {
    return drops[static_cast<std::size_t>(reason)];
  }
  std::uint64_t total_drops() const noexcept;
};

// {"index", "tx":{...}, "rx":{...}, "drops":{reason:n} (nonzero reasons only),
//  "grant_copy", "switch", "tap", "notifications", "batch_histogram",
//  "rx_stalls", "tx_credit_stalls", "multicast_updates", "loop_iterations",
//  "spurious_events", "rx_backlog":{"bytes","peak_bytes"}, "fatal_error", "ring"}.
nlohmann::json to_json(const QueueStats& stats);

namespace detail {

// One single-writer counter (see the file comment).
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept { value_.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// The live counters, owned by the queue thread.
struct QueueCounters {
  Counter tx_packets, tx_bytes, rx_packets, rx_bytes;
  std::array<Counter, kDropReasonCount> drops;
  Counter grant_copy_calls, grant_copy_segments, grant_copy_bytes;
  Counter gref_mappings, mapped_copy_segments, mapped_copy_bytes;
  Counter forwarded_packets, forwarded_segments;
  Counter switch_received_packets, switch_received_segments;
  Counter tap_writes, tap_reads;
  Counter notifications_sent, notifications_received;
  std::array<Counter, kBatchHistogramBuckets> batch_histogram;
  Counter rx_stalls, tx_credit_stalls, multicast_updates;
  Counter loop_iterations;
  Counter spurious_events;
  Counter rx_backlog_bytes, rx_backlog_peak_bytes;
  Counter fatal_error;
  Counter tx_req_prod, tx_req_cons, tx_rsp_prod, rx_req_prod, rx_req_cons, rx_rsp_prod;

  void drop(DropReason reason, std::uint64_t n = 1) noexcept {
    drops[static_cast<std::size_t>(reason)].add(n);
  }
  void batch(std::size_t packets) noexcept {
    if (packets != 0) {
      batch_histogram[batch_histogram_bucket(packets)].add();
    }
  }
  QueueStats snapshot(std::uint32_t index) const noexcept;
};

}  // namespace detail
}  // namespace vifd::backend
