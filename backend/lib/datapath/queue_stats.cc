#include "backend/lib/datapath/queue_stats.h"

#include <bit>
#include <nlohmann/json.hpp>
#include <string>

namespace vifd::backend {

std::string_view to_string(DropReason reason) noexcept {
  switch (reason) {
    case DropReason::kTxBadPacketSize:
      return "tx_bad_packet_size";
    case DropReason::kTxSlotExceedsPacket:
      return "tx_slot_exceeds_packet";
    case DropReason::kTxTooManySlots:
      return "tx_too_many_slots";
    case DropReason::kTxGrantCopyFailed:
      return "tx_grant_copy_failed";
    case DropReason::kTxBadOffload:
      return "tx_bad_offload";
    case DropReason::kTxTapFull:
      return "tx_tap_full";
    case DropReason::kTxTapError:
      return "tx_tap_error";
    case DropReason::kTxNoHostPort:
      return "tx_no_host_port";
    case DropReason::kTxSwitchInboxFull:
      return "tx_switch_inbox_full";
    case DropReason::kTxSwitchDropped:
      return "tx_switch_dropped";
    case DropReason::kTxSwitchReceiverShare:
      return "tx_switch_receiver_share";
    case DropReason::kTxSpoofedSourceMac:
      return "tx_spoofed_source_mac";
    case DropReason::kTxIpSourceNotAllowed:
      return "tx_ip_source_not_allowed";
    case DropReason::kTxArpSenderNotAllowed:
      return "tx_arp_sender_not_allowed";
    case DropReason::kTxExceedsReceiverMtu:
      return "tx_exceeds_receiver_mtu";
    case DropReason::kRxNoBuffers:
      return "rx_no_buffers";
    case DropReason::kRxStallFlush:
      return "rx_stall_flush";
    case DropReason::kRxDrainTimeout:
      return "rx_drain_timeout";
    case DropReason::kRxFrameTooLarge:
      return "rx_frame_too_large";
    case DropReason::kRxGsoNotNegotiated:
      return "rx_gso_not_negotiated";
    case DropReason::kRxBadOffload:
      return "rx_bad_offload";
    case DropReason::kRxTapOversize:
      return "rx_tap_oversize";
    case DropReason::kRxTapError:
      return "rx_tap_error";
    case DropReason::kRxGrantCopyFailed:
      return "rx_grant_copy_failed";
    case DropReason::kRxMulticastFiltered:
      return "rx_multicast_filtered";
    case DropReason::kRxPortStopped:
      return "rx_port_stopped";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

std::size_t batch_histogram_bucket(std::size_t packets) noexcept {
  if (packets == 0) return 0;
  const std::size_t bucket = static_cast<std::size_t>(std::bit_width(packets)) - 1;
  return bucket < kBatchHistogramBuckets ? bucket : kBatchHistogramBuckets - 1;
}

std::string_view batch_histogram_label(std::size_t bucket) noexcept {
  static constexpr std::array<std::string_view, kBatchHistogramBuckets> kLabels = {
      "1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255", "256+"};
  return bucket < kLabels.size() ? kLabels[bucket] : "?";
}

std::uint64_t QueueStats::total_drops() const noexcept {
  std::uint64_t total = 0;
  for (const std::uint64_t n : drops) total += n;
  return total;
}

nlohmann::json to_json(const QueueStats& stats) {
  nlohmann::json drops = nlohmann::json::object();
  for (std::size_t i = 0; i < kDropReasonCount; ++i) {
    if (stats.drops[i] != 0) {
      drops[std::string(to_string(static_cast<DropReason>(i)))] = stats.drops[i];
    }
  }
  nlohmann::json histogram = nlohmann::json::object();
  for (std::size_t i = 0; i < kBatchHistogramBuckets; ++i) {
    histogram[std::string(batch_histogram_label(i))] = stats.batch_histogram[i];
  }
  return {
      {"index", stats.index},
      {"tx", {{"packets", stats.tx_packets}, {"bytes", stats.tx_bytes}}},
      {"rx", {{"packets", stats.rx_packets}, {"bytes", stats.rx_bytes}}},
      {"drops", drops},
      {"grant_copy",
       {{"calls", stats.grant_copy_calls},
        {"segments", stats.grant_copy_segments},
        {"bytes", stats.grant_copy_bytes}}},
      {"static_grants",
       {{"mappings", stats.gref_mappings},
        {"memcpy_segments", stats.mapped_copy_segments},
        {"memcpy_bytes", stats.mapped_copy_bytes}}},
      {"switch",
       {{"forwarded_packets", stats.forwarded_packets},
        {"forwarded_segments", stats.forwarded_segments},
        {"received_packets", stats.switch_received_packets},
        {"received_segments", stats.switch_received_segments}}},
      {"tap", {{"writes", stats.tap_writes}, {"reads", stats.tap_reads}}},
      {"notifications",
       {{"sent", stats.notifications_sent}, {"received", stats.notifications_received}}},
      {"batch_histogram", histogram},
      {"rx_stalls", stats.rx_stalls},
      {"tx_credit_stalls", stats.tx_credit_stalls},
      {"multicast_updates", stats.multicast_updates},
      {"loop_iterations", stats.loop_iterations},
      {"spurious_events", stats.spurious_events},
      {"rx_backlog",
       {{"bytes", stats.rx_backlog_bytes}, {"peak_bytes", stats.rx_backlog_peak_bytes}}},
      {"fatal_error", stats.fatal_error},
      {"ring",
       {{"tx_req_prod", stats.ring.tx_req_prod},
        {"tx_req_cons", stats.ring.tx_req_cons},
        {"tx_rsp_prod", stats.ring.tx_rsp_prod},
        {"rx_req_prod", stats.ring.rx_req_prod},
        {"rx_req_cons", stats.ring.rx_req_cons},
        {"rx_rsp_prod", stats.ring.rx_rsp_prod}}},
  };
}

namespace detail {

QueueStats QueueCounters::snapshot(std::uint32_t index) const noexcept {
  QueueStats s;
  s.index = index;
  s.tx_packets = tx_packets.get();
  s.tx_bytes = tx_bytes.get();
  s.rx_packets = rx_packets.get();
  s.rx_bytes = rx_bytes.get();
  for (std::size_t i = 0; i < kDropReasonCount; ++i) s.drops[i] = drops[i].get();
  s.grant_copy_calls = grant_copy_calls.get();
  s.grant_copy_segments = grant_copy_segments.get();
  s.grant_copy_bytes = grant_copy_bytes.get();
  s.gref_mappings = gref_mappings.get();
  s.mapped_copy_segments = mapped_copy_segments.get();
  s.mapped_copy_bytes = mapped_copy_bytes.get();
  s.forwarded_packets = forwarded_packets.get();
  s.forwarded_segments = forwarded_segments.get();
  s.switch_received_packets = switch_received_packets.get();
  s.switch_received_segments = switch_received_segments.get();
  s.tap_writes = tap_writes.get();
  s.tap_reads = tap_reads.get();
  s.notifications_sent = notifications_sent.get();
  s.notifications_received = notifications_received.get();
  for (std::size_t i = 0; i < kBatchHistogramBuckets; ++i) {
    s.batch_histogram[i] = batch_histogram[i].get();
  }
  s.rx_stalls = rx_stalls.get();
  s.tx_credit_stalls = tx_credit_stalls.get();
  s.multicast_updates = multicast_updates.get();
  s.loop_iterations = loop_iterations.get();
  s.spurious_events = spurious_events.get();
  s.rx_backlog_bytes = rx_backlog_bytes.get();
  s.rx_backlog_peak_bytes = rx_backlog_peak_bytes.get();
  s.fatal_error = fatal_error.get() != 0;
  const auto index32 = [](const Counter& c) { return static_cast<std::uint32_t>(c.get()); };
  s.ring = {index32(tx_req_prod), index32(tx_req_cons), index32(tx_rsp_prod),
            index32(rx_req_prod), index32(rx_req_cons), index32(rx_rsp_prod)};
  return s;
}

}  // namespace detail
}  // namespace vifd::backend
