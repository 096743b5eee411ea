// Guest TX (frontend -> backend), after Linux netback's netback.c: take a
// batch of requests (each copied out of the ring once), group and validate
// them (tx_parser), then either hand a packet to another vif through the
// switch (its grants, not its bytes) or copy the batch's TAP-bound packets
// with one grant-copy call into a preallocated arena and write them to the
// TAP with their virtio header. Every request gets exactly one response.
#include <algorithm>
#include <cstring>
#include <optional>
#include <system_error>

#include "backend/lib/datapath/queue_engine.h"
#include "common/net/tap_device.h"

namespace vifd::backend::detail {

using protocol::TxRequest;

namespace {

constexpr std::uint16_t kEthTypeIpv4 = 0x0800;
constexpr std::uint16_t kEthTypeIpv6 = 0x86DD;

std::span<const std::uint8_t, 6> destination_mac(const std::uint8_t* header) noexcept {
  return std::span<const std::uint8_t, 6>(header, 6);
}
std::span<const std::uint8_t, 6> source_mac(const std::uint8_t* header) noexcept {
  return std::span<const std::uint8_t, 6>(header + 6, 6);
}

// Whether a receiving vif can take the packet exactly as the sender's flags
// describe it; if not, it goes out the TAP and the host stack adapts it.
bool receiver_accepts(const VifFeatures& receiver, const TxPacket& packet,
                      std::uint16_t ethertype) noexcept {
  if (packet.gso) {
    const bool v4 = packet.gso->u.gso.type == protocol::kGsoTypeTcpv4;
    if (v4 ? !receiver.gso_tcpv4 : !receiver.gso_tcpv6) {
      return false;
    }
  }
  if ((packet.first_flags & protocol::kTxfCsumBlank) != 0) {
    if (ethertype == kEthTypeIpv4 && !receiver.csum_ipv4) {
      return false;
    }
    if (ethertype == kEthTypeIpv6 && !receiver.csum_ipv6) {
      return false;
    }
    if (ethertype != kEthTypeIpv4 && ethertype != kEthTypeIpv6) {
      return false;
    }
  }
  return receiver.sg || packet.total_length <= protocol::kPageSize;
}

std::uint16_t load_be16(std::span<const std::uint8_t> bytes, std::size_t at) noexcept {
  return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

std::uint32_t load_be32(std::span<const std::uint8_t> bytes, std::size_t at) noexcept {
  return static_cast<std::uint32_t>(load_be16(bytes, at)) << 16 | load_be16(bytes, at + 2);
}

bool allowed(std::span<const protocol::Ipv4Prefix> prefixes, std::uint32_t address) noexcept {
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const protocol::Ipv4Prefix& prefix) { return prefix.contains(address); });
}

// vif-bridge's rules for a vif with `ip` set (iptables -s per entry, plus
// "-p udp --sport 68 --dport 67" from any source for DHCP), on the header
// copy. iptables never sees ARP; the switch checks the sender protocol
// address too, allowing 0.0.0.0 (RFC 5227 probes). Other ethertypes pass,
// as they pass iptables. One VLAN tag is looked through. A header the copy
// does not hold is refused: it cannot be checked.
std::optional<DropReason> check_ipv4_source(
    std::span<const std::uint8_t> headers,
    std::span<const protocol::Ipv4Prefix> prefixes) noexcept {
  constexpr std::uint16_t kEthTypeArp = 0x0806;
  constexpr std::uint8_t kUdp = 17;
  std::size_t l3 = kEthernetHeaderSize;
  std::uint16_t ethertype = load_be16(headers, 12);
  if (ethertype == protocol::kEthTypeVlan || ethertype == protocol::kEthTypeQinQ) {
    if (headers.size() < l3 + protocol::kVlanTagLen) {
      return DropReason::kTxIpSourceNotAllowed;
    }
    ethertype = load_be16(headers, l3 + 2);
    l3 += protocol::kVlanTagLen;
  }
  if (ethertype == kEthTypeIpv4) {
    if (headers.size() < l3 + 20) {
      return DropReason::kTxIpSourceNotAllowed;
    }
    const std::size_t ihl = static_cast<std::size_t>(headers[l3] & 0x0F) * 4;
    if ((headers[l3] >> 4) != 4 || ihl < 20) {
      return DropReason::kTxIpSourceNotAllowed;
    }
    if (allowed(prefixes, load_be32(headers, l3 + 12))) {
      return std::nullopt;
    }
    const bool first_fragment = (load_be16(headers, l3 + 6) & 0x1FFF) == 0;
    const std::size_t udp = l3 + ihl;
    const bool dhcp_request = headers[l3 + 9] == kUdp && first_fragment &&
                              headers.size() >= udp + 4 && load_be16(headers, udp) == 68 &&
                              load_be16(headers, udp + 2) == 67;
    if (dhcp_request) {
      return std::nullopt;
    }
    return DropReason::kTxIpSourceNotAllowed;
  }
  if (ethertype == kEthTypeArp) {
    // htype(2) ptype(2) hlen(1) plen(1) oper(2) sha(hlen) spa(plen) ...
    if (headers.size() < l3 + 8) {
      return DropReason::kTxArpSenderNotAllowed;
    }
    if (load_be16(headers, l3 + 2) != kEthTypeIpv4) {
      return std::nullopt;
    }
    const std::size_t spa = l3 + 8 + headers[l3 + 4];
    if (headers[l3 + 5] != 4 || headers.size() < spa + 4) {
      return DropReason::kTxArpSenderNotAllowed;
    }
    const std::uint32_t sender = load_be32(headers, spa);
    if (sender == 0 || allowed(prefixes, sender)) {
      return std::nullopt;
    }
    return DropReason::kTxArpSenderNotAllowed;
  }
  return std::nullopt;
}

std::size_t flow_hash(const std::uint8_t* header) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over both MACs
  for (std::size_t i = 0; i < 12; ++i) {
    h = (h ^ header[i]) * 0x100000001b3ULL;
  }
  return static_cast<std::size_t>(h ^ (h >> 32));
}

// The receiving vif's queue for a forwarded frame: its control-ring hash
// when it configured one that covers this flow, otherwise spread by MACs.
std::size_t receive_queue(const Switch::Port& port, const HashSnapshot* hash,
                          const std::uint8_t* header, std::size_t header_length) noexcept {
  if (hash != nullptr) {
    if (const auto queue = steer(*hash, std::span(header, header_length), port.queues.size())) {
      // Attach order need not be queue order.
      for (std::size_t i = 0; i < port.queues.size(); ++i) {
        if (port.queues[i]->queue_index() == *queue) {
          return i;
        }
      }
    }
  }
  return flow_hash(header) % port.queues.size();
}

}  // namespace

bool QueueEngine::tx_stage_requests() noexcept {
  if (tx_head_ != 0) {
    std::copy(tx_staging_.begin() + static_cast<std::ptrdiff_t>(tx_head_),
              tx_staging_.begin() + static_cast<std::ptrdiff_t>(tx_tail_), tx_staging_.begin());
    tx_tail_ -= tx_head_;
    tx_staged_base_ += static_cast<protocol::RingIndex>(tx_head_);
    tx_head_ = 0;
  }
  const auto taken = tx_.take_requests(std::span(tx_staging_).subspan(tx_tail_));
  if (taken.status == protocol::RingStatus::kProducerOverflow) {
    fatal("TX request producer index overflows the ring");
    return false;
  }
  tx_tail_ += taken.count;
  return true;
}

void QueueEngine::tx_answer(protocol::RingIndex index, std::uint16_t id,
                            std::int16_t status) noexcept {
  if (!tx_in_order_) {
    if (tx_response_count_ == tx_responses_.size()) {
      tx_flush_responses();
    }
    tx_responses_[tx_response_count_++] = {id, status};
    return;
  }
  const std::size_t at = index & (tx_answers_.size() - 1);
  tx_answers_[at] = {id, status};
  tx_answered_[at] = 1;
  ++tx_unpublished_answers_;
}

void QueueEngine::tx_flush_responses(bool force) noexcept {
  // Answers are published in request order: the requests answered are then
  // exactly those before rsp_prod and the slots after it still hold the
  // others, so a vifd that resumes the ring after a crash
  // (BackRing::resume) takes again exactly the requests left unanswered,
  // never one already answered (a frontend takes a second answer for an id
  // as a broken backend, Linux netfront included). Only a forwarded frame
  // completes out of order. When one has held later answers back for
  // kTxHoldLimit (a receiver that posts no buffers), they go out, and
  // answers go out as they come until every request taken is answered, so
  // a silent receiver never pins the sender's ring; a resume is exact
  // again from then on.
  if (tx_in_order_) {
    const std::size_t mask = tx_answers_.size() - 1;
    const protocol::RingIndex end = tx_.request_consumer();
    for (; tx_unpublished_from_ != end && tx_answered_[tx_unpublished_from_ & mask] != 0;
         ++tx_unpublished_from_) {
      tx_responses_[tx_response_count_++] = tx_answers_[tx_unpublished_from_ & mask];
      tx_answered_[tx_unpublished_from_ & mask] = 0;
      --tx_unpublished_answers_;
    }
    if (tx_unpublished_answers_ == 0) {
      tx_held_since_.reset();
    } else {
      const Clock::time_point now = Clock::now();
      if (!tx_held_since_) {
        tx_held_since_ = now;
      }
      if (force || now - *tx_held_since_ >= kTxHoldLimit) {
        for (protocol::RingIndex index = tx_unpublished_from_; index != end; ++index) {
          if (tx_answered_[index & mask] == 0) {
            continue;
          }
          tx_responses_[tx_response_count_++] = tx_answers_[index & mask];
          tx_answered_[index & mask] = 0;
        }
        tx_unpublished_answers_ = 0;
        tx_held_since_.reset();
        tx_in_order_ = false;
      }
    }
  }
  if (tx_response_count_ != 0) {
    const std::span<const protocol::TxResponse> responses(tx_responses_.data(), tx_response_count_);
    const std::size_t pushed = tx_.push_responses(responses);
    if (pushed != tx_response_count_ && log_limiter_.allow(Clock::now())) {
      // Every answer is for a consumed request; fewer slots than answers
      // means our own accounting is broken.
      log_->critical("{}: {} TX responses but {} owed", context_, tx_response_count_, pushed);
    }
    tx_response_count_ = 0;
    if (tx_.push_responses_and_check_notify()) {
      notify_tx_ = true;
    }
  }
  if (!tx_in_order_ && tx_.response_producer() == tx_.request_consumer()) {
    tx_in_order_ = true;
    tx_unpublished_from_ = tx_.request_consumer();
  }
}

void QueueEngine::tx_respond(std::size_t position, const TxPacket& packet,
                             std::int16_t status) noexcept {
  tx_answer_slots(tx_staged_base_ + static_cast<protocol::RingIndex>(position), packet.consumed,
                  packet.extra_count, status, [&](std::size_t data_position) {
                    return tx_staging_[position + data_position].id;
                  });
}

void QueueEngine::tx_handle_multicast(std::size_t position, const TxPacket& packet) noexcept {
  std::int16_t status = protocol::kRspOkay;
  if (multicast_->enabled()) {
    if (packet.mcast_add) {
      const std::span<const std::uint8_t, 6> mac(packet.mcast_add->u.mcast.addr);
      if (!multicast_->add(mac)) {
        status = protocol::kRspError;  // filter full (-ENOSPC)
      }
    }
    if (packet.mcast_del) {
      multicast_->remove(std::span<const std::uint8_t, 6>(packet.mcast_del->u.mcast.addr));
    }
    counters_.multicast_updates.add();
  }
  tx_respond(position, packet, status);
}

bool QueueEngine::tx_round(Clock::time_point now) noexcept {
  if (failed()) {
    return false;
  }
  if (!tx_stage_requests()) {
    return false;
  }
  if (endpoint_) {
    // Completions that came during the previous round: their answers go
    // out with this round's, their slots are free for this batch.
    tx_take_completions();
  }
  tx_batch_time_ = now;
  std::size_t work_count = 0;
  std::size_t arena_used = 0;
  credit_blocked_ = false;
  while (tx_head_ < tx_tail_) {
    const TxRequest& first = tx_staging_[tx_head_];
    // The arena holds less than a ring of full pages: a batch of large
    // packets ends where it is full, the rest waits for the next round.
    if (arena_used + first.size > tx_arena_size_) {
      break;
    }
    const bool was_waiting = credit_.waiting(now);
    if (!credit_.try_consume(first.size, now)) {
      if (!was_waiting) {
        counters_.tx_credit_stalls.add();
      }
      credit_blocked_ = true;
      break;
    }
    const TxPacket packet = parse_tx_packet(
        std::span<const TxRequest>(tx_staging_).subspan(tx_head_, tx_tail_ - tx_head_));
    switch (packet.verdict) {
      case TxVerdict::kFatal:
        fatal(to_string(packet.fatal_reason));
        return false;
      case TxVerdict::kDrop:
        tx_respond(tx_head_, packet, protocol::kRspError);
        counters_.drop(packet.drop_reason);
        if (log_limiter_.allow(now)) {
          log_->warn("{}: TX packet dropped: {}", context_, to_string(packet.drop_reason));
        }
        break;
      case TxVerdict::kMulticast:
        tx_handle_multicast(tx_head_, packet);
        break;
      case TxVerdict::kPacket: {
        TxWork& work = tx_work_[work_count++];
        work = TxWork{};
        work.position = tx_head_;
        work.packet = packet;
        work.arena_offset = static_cast<std::uint32_t>(arena_used);
        arena_used += packet.total_length;
        break;
      }
    }
    tx_head_ += packet.consumed;
  }
  if (work_count != 0) {
    counters_.batch(work_count);
    tx_route(work_count);
    tx_to_tap(work_count);
    for (SwitchEndpoint* destination : tx_woken_) {
      destination->wake_if_sleeping();
    }
    tx_woken_.clear();
  }
  tx_flush_responses();
  if (credit_blocked_) {
    return false;
  }
  return tx_head_ < tx_tail_ || tx_.pending_requests().count != 0;
}

void QueueEngine::tx_route(std::size_t work_count) noexcept {
  // The switch needs the start of each packet: its Ethernet header to admit
  // the frame and look up its destination, more for `ip` filtering. A vif
  // alone on its switch without `ip` peeks at nothing: everything goes to
  // the TAP and tx_to_tap admits it on the full copy.
  if (!endpoint_ || !topology_) {
    return;
  }
  const bool forwarding = topology_->ports.size() >= 2;
  const bool filtering = !setup_.allowed_ipv4.empty();
  if (!forwarding && !filtering) {
    return;
  }
  tx_peek(work_count, filtering ? kForwardHeaderBytes : kEthernetHeaderSize, false);
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.copy_failed || !tx_admit(work) || !forwarding) {
      continue;
    }
    const std::uint8_t* header = tx_arena_.get() + work.arena_offset;
    const auto destination = destination_mac(header);
    if ((destination[0] & 0x01U) != 0) {
      continue;  // broadcast/multicast: the bridge floods
    }
    const PortTag tag = setup_.network_switch->lookup(destination);
    if (tag == 0 || tag == port_tag_) {
      continue;
    }
    const Switch::Port* port = topology_->find(tag);
    if (port == nullptr || port->queues.empty()) {
      continue;
    }
    work.receiver = port;
    work.route = TxWork::Route::kForward;
    work.hash = port->steering ? port->steering->current() : nullptr;
  }
  // Offload metadata is validated on the packet's headers, and a receiver
  // that configured a hash needs the IP and TCP headers: a second peek for
  // those frames only, so other forwarded frames cost dom0 just the
  // Ethernet header.
  tx_peek(work_count, kForwardHeaderBytes, true);
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.route == TxWork::Route::kForward) {
      tx_check_forward(work);
    }
  }
  tx_choose_receive_queues(work_count);
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.route != TxWork::Route::kForward) {
      continue;
    }
    const std::size_t slots = work.packet.data_slots + work.packet.extra_count;
    std::uint16_t& held = receiver_slots_[work.receiver->tag];
    if (held + slots > receiver_share_slots_) {
      // Frames delivered since the top of the turn no longer count: their
      // completions may be waiting for this thread.
      tx_take_completions();
    }
    if (held + slots > receiver_share_slots_) {
      // That vif drains slower than we send: beyond its share, its frames
      // are dropped here so the rest of the ring keeps reaching the others.
      work.route = TxWork::Route::kDrop;
      counters_.drop(DropReason::kTxSwitchReceiverShare);
      tx_respond(work.position, work.packet, protocol::kRspOkay);
      continue;
    }
    if (tx_forward(work)) {
      held = static_cast<std::uint16_t>(held + slots);
      continue;
    }
    // Congestion, not a guest error: netback answers OKAY for such drops.
    tx_drop(work, DropReason::kTxSwitchInboxFull, protocol::kRspOkay);
  }
}

void QueueEngine::tx_peek(std::size_t work_count, std::size_t bytes, bool forward_only) noexcept {
  static_assert(kSteeringHeaderBytes <= kForwardHeaderBytes);
  std::size_t count = 0;
  for (std::size_t w = 0; w < work_count; ++w) {
    const TxWork& work = tx_work_[w];
    if (work.copy_failed) {
      continue;
    }
    std::size_t wanted = bytes;
    if (forward_only) {
      if (work.route != TxWork::Route::kForward) {
        continue;
      }
      const bool offload =
          work.packet.gso.has_value() || (work.packet.first_flags & protocol::kTxfCsumBlank) != 0;
      const bool steered = work.hash && work.hash->toeplitz && work.hash->flags != 0;
      if (!offload) {
        wanted = steered ? kSteeringHeaderBytes : 0;
      }
    } else if (work.route != TxWork::Route::kTap) {
      continue;
    } else if (work.packet.gso.has_value() ||
               (work.packet.first_flags & protocol::kTxfCsumBlank) != 0) {
      // A forwarded offload frame's metadata is checked on its headers: take
      // them now rather than in a second grant-copy call after routing.
      wanted = std::max(bytes, kForwardHeaderBytes);
    }
    // The parser keeps offset + first_size within the granted page.
    const std::size_t length = std::min<std::size_t>(work.packet.first_size, wanted);
    if (length <= work.header_copied) {
      continue;
    }
    const TxRequest& first = tx_staging_[work.position];
    auto& segment = tx_segments_[count];
    segment = {};
    segment.source.foreign = {first.gref,
                              static_cast<std::uint16_t>(first.offset + work.header_copied),
                              setup_.frontend_domid};
    segment.dest.virt = tx_arena_.get() + work.arena_offset + work.header_copied;
    segment.len = static_cast<std::uint16_t>(length - work.header_copied);
    segment.flags = platform::kCopySourceGref;
    tx_segment_owner_[count++] = static_cast<std::uint32_t>(w);
  }
  if (count == 0) {
    return;
  }
  grant_copy(std::span(tx_segments_.data(), count));
  for (std::size_t s = 0; s < count; ++s) {
    TxWork& work = tx_work_[tx_segment_owner_[s]];
    if (tx_segments_[s].status != platform::kGntstOkay) {
      // A grant the frontend cannot back: tx_to_tap answers it ERROR.
      work.copy_failed = true;
      work.route = TxWork::Route::kTap;
      continue;
    }
    work.header_copied = static_cast<std::uint16_t>(work.header_copied + tx_segments_[s].len);
  }
}

void QueueEngine::tx_drop(TxWork& work, DropReason reason, std::int16_t status) noexcept {
  work.route = TxWork::Route::kDrop;
  counters_.drop(reason);
  tx_respond(work.position, work.packet, status);
}

bool QueueEngine::tx_admit(TxWork& work) noexcept {
  const std::uint8_t* header = tx_arena_.get() + work.arena_offset;
  const auto source = source_mac(header);
  std::optional<DropReason> refused;
  if (setup_.mac_learning || setup_.guest_mac.is_zero()) {
    if (setup_.network_switch->learn(source, port_tag_) == LearnResult::kPinnedElsewhere) {
      refused = DropReason::kTxSpoofedSourceMac;
    }
  } else if (!std::equal(source.begin(), source.end(), setup_.guest_mac.octets.begin())) {
    refused = DropReason::kTxSpoofedSourceMac;
  }
  if (!refused && !setup_.allowed_ipv4.empty()) {
    refused = check_ipv4_source(std::span(header, work.header_copied), setup_.allowed_ipv4);
  }
  if (!refused) {
    return true;
  }
  // Answered OKAY: to the guest this is a frame a filter on the bridge
  // dropped, not a malformed request.
  tx_drop(work, *refused, protocol::kRspOkay);
  const Clock::time_point now = Clock::now();
  if (log_limiter_.allow(now)) {
    log_->warn("{}: TX frame refused by switch {}: {}", context_, setup_.network_switch->name(),
               to_string(*refused));
  }
  return false;
}

void QueueEngine::tx_check_forward(TxWork& work) noexcept {
  const TxPacket& packet = work.packet;
  const Switch::Port& port = *work.receiver;
  const std::span<std::uint8_t> headers(tx_arena_.get() + work.arena_offset, work.header_copied);
  net::PacketMeta meta;
  net::PacketStatus status =
      net::meta_from_netif_tx(packet.first_flags, packet.gso ? &*packet.gso : nullptr, meta);
  if (status == net::PacketStatus::kOk) {
    status = net::prepare_offload(headers, packet.total_length, meta);
  }
  if (status == net::PacketStatus::kTruncated && work.header_copied < packet.total_length) {
    // Headers beyond what the switch copies (a long IPv6 extension chain,
    // headers split over slots): the TAP path copies the whole frame and
    // decides.
    work.route = TxWork::Route::kTap;
    work.hash.reset();
    return;
  }
  if (status != net::PacketStatus::kOk) {
    // What tx_to_tap does with the same frame.
    tx_drop(work, DropReason::kTxBadOffload, protocol::kRspOkay);
    if (log_limiter_.allow(Clock::now())) {
      log_->warn("{}: TX offload metadata rejected: {}", context_, net::to_string(status));
    }
    return;
  }
  const std::uint16_t ethertype = static_cast<std::uint16_t>(headers[12] << 8 | headers[13]);
  if (!receiver_accepts(port.features, packet, ethertype)) {
    // The host stack adapts it (checksums, segmentation) on the way.
    work.route = TxWork::Route::kTap;
    work.hash.reset();
    return;
  }
  // As a Linux bridge's is_skb_forwardable(): the receiver's MTU plus an
  // Ethernet header and one VLAN tag; a GSO packet by its segments.
  const std::size_t limit =
      std::size_t{port.features.mtu} + kEthernetHeaderSize + protocol::kVlanTagLen;
  const bool fits = meta.gso_type == net::GsoType::kNone
                        ? packet.total_length <= limit
                        : std::size_t{meta.hdr_len} + meta.gso_size <= limit;
  if (!fits) {
    tx_drop(work, DropReason::kTxExceedsReceiverMtu, protocol::kRspOkay);
    return;
  }
  work.meta = meta;
}

void QueueEngine::tx_choose_receive_queues(std::size_t work_count) noexcept {
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.route != TxWork::Route::kForward) {
      work.hash.reset();
      continue;
    }
    const Switch::Port& port = *work.receiver;
    const std::uint8_t* header = tx_arena_.get() + work.arena_offset;
    work.destination =
        port.queues[receive_queue(port, work.hash.get(), header, work.header_copied)].get();
    work.hash.reset();
  }
}

bool QueueEngine::tx_forward(TxWork& work) noexcept {
  if (free_forwards_.empty()) {
    return false;
  }
  const TxPacket& packet = work.packet;
  ForwardDescriptor frame;
  frame.meta = work.meta;
  const std::uint32_t handle = free_forwards_.back();
  PendingForward& pending = pending_forwards_[handle];
  pending.data_slots = static_cast<std::uint8_t>(packet.data_slots);
  pending.extra_count = static_cast<std::uint8_t>(packet.extra_count);
  pending.length = packet.total_length;
  pending.receiver = work.receiver->tag;
  pending.first_index = tx_staged_base_ + static_cast<protocol::RingIndex>(work.position);
  frame.sender = endpoint_.get();
  frame.sent = tx_batch_time_;
  frame.handle = handle;
  frame.sender_domid = setup_.frontend_domid;
  frame.slot_count = static_cast<std::uint16_t>(packet.data_slots);
  frame.length = packet.total_length;
  // What was checked travels with the descriptor; the grants supply the rest.
  frame.header_length = work.header_copied;
  std::memcpy(frame.header.data(), tx_arena_.get() + work.arena_offset, work.header_copied);
  bool mapped = false;
  for (std::size_t n = 0; n < packet.data_slots; ++n) {
    const TxRequest& request = tx_staging_[work.position + packet.data_slot_position(n)];
    pending.ids[n] = request.id;
    const std::uint16_t size = n == 0 ? packet.first_size : request.size;
    // The receiver copies from our mapping of the page (one memcpy when its
    // buffer is mapped too) instead of from the grant.
    const std::uint8_t* bytes = mapped_bytes(request.gref, request.offset, size);
    mapped = mapped || bytes != nullptr;
    frame.slots[n] = {request.gref, request.offset, size, bytes};
  }
  endpoint_->begin_forward();
  if (!work.destination->push_frame(frame)) {
    endpoint_->cancel_forward();
    return false;
  }
  pending.gref_generation = mapped ? grefs_->generation() : 0;
  if (mapped) {
    ++gref_forwards_current_;
  }
  pending.in_use = true;
  free_forwards_.pop_back();
  counters_.tx_packets.add();
  counters_.tx_bytes.add(packet.total_length);
  if (std::find(tx_woken_.begin(), tx_woken_.end(), work.destination) == tx_woken_.end()) {
    if (tx_woken_.size() == tx_woken_.capacity()) {
      work.destination->wake_if_sleeping();
    } else {
      tx_woken_.push_back(work.destination);
    }
  }
  return true;
}

void QueueEngine::tx_to_tap(std::size_t work_count) noexcept {
  std::size_t count = 0;
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.route != TxWork::Route::kTap || work.copy_failed) {
      continue;
    }
    if (setup_.tap_fd < 0) {
      work.route = TxWork::Route::kDrop;
      counters_.drop(DropReason::kTxNoHostPort);
      tx_respond(work.position, work.packet, protocol::kRspOkay);
      continue;
    }
    std::uint8_t* destination = tx_arena_.get() + work.arena_offset;
    for (std::size_t n = 0; n < work.packet.data_slots; ++n) {
      const TxRequest& request = tx_staging_[work.position + work.packet.data_slot_position(n)];
      std::uint16_t offset = request.offset;
      std::uint16_t size = n == 0 ? work.packet.first_size : request.size;
      if (n == 0 && work.header_copied != 0) {
        // The switch already copied the start of the frame into place.
        offset = static_cast<std::uint16_t>(offset + work.header_copied);
        size = static_cast<std::uint16_t>(size - work.header_copied);
        destination += work.header_copied;
      }
      if (size == 0) {
        continue;
      }
      auto& segment = tx_segments_[count];
      segment = {};
      segment.source.foreign = {request.gref, offset, setup_.frontend_domid};
      segment.dest.virt = destination;
      segment.len = size;
      segment.flags = platform::kCopySourceGref;
      tx_segment_owner_[count++] = static_cast<std::uint32_t>(w);
      destination += size;
    }
  }
  grant_copy(std::span(tx_segments_.data(), count));
  for (std::size_t s = 0; s < count; ++s) {
    if (tx_segments_[s].status != platform::kGntstOkay) {
      tx_work_[tx_segment_owner_[s]].copy_failed = true;
    }
  }

  // TAP writes may hand the kernel any offload: writes are not limited by
  // the TAP's TUNSETOFFLOAD set, which only governs what it sends us.
  constexpr net::PeerOffloads kTapTakesAll{true, true, true, true};
  const Clock::time_point now = Clock::now();
  for (std::size_t w = 0; w < work_count; ++w) {
    TxWork& work = tx_work_[w];
    if (work.copy_failed) {
      // A grant the frontend cannot back (bad ref, not granted to us):
      // netback's xenvif_tx_check_gop answers NETIF_RSP_ERROR.
      counters_.drop(DropReason::kTxGrantCopyFailed);
      tx_respond(work.position, work.packet, protocol::kRspError);
      if (log_limiter_.allow(now)) {
        log_->warn("{}: TX grant copy failed", context_);
      }
      continue;
    }
    if (work.route != TxWork::Route::kTap) {
      continue;
    }
    // A switch port's frame that tx_route did not peek at (the vif is alone
    // on its switch) is admitted here, on the copy about to be written.
    if (endpoint_ && work.header_copied == 0 && !tx_admit(work)) {
      continue;
    }
    const std::span<std::uint8_t> frame(tx_arena_.get() + work.arena_offset,
                                        work.packet.total_length);
    net::PacketMeta meta;
    net::VirtioNetHdr header{};
    net::PacketStatus status = net::meta_from_netif_tx(
        work.packet.first_flags, work.packet.gso ? &*work.packet.gso : nullptr, meta);
    if (status == net::PacketStatus::kOk) {
      status = net::prepare_offload(frame, meta);
    }
    if (status == net::PacketStatus::kOk) {
      status = net::adapt_to_peer(frame, meta, kTapTakesAll);
    }
    if (status == net::PacketStatus::kOk) {
      status = net::meta_to_virtio(meta, header);
    }
    if (status != net::PacketStatus::kOk) {
      // netback drops a frame whose checksum cannot be set up after having
      // answered OKAY; so do we.
      counters_.drop(DropReason::kTxBadOffload);
      tx_respond(work.position, work.packet, protocol::kRspOkay);
      if (log_limiter_.allow(now)) {
        log_->warn("{}: TX offload metadata rejected: {}", context_, net::to_string(status));
      }
      continue;
    }
    const net::TapIoResult written = net::tap_write(setup_.tap_fd, header, frame);
    if (written.status == net::TapIoStatus::kOk) {
      counters_.tap_writes.add();
      counters_.tx_packets.add();
      counters_.tx_bytes.add(frame.size());
    } else if (written.status == net::TapIoStatus::kWouldBlock) {
      counters_.drop(DropReason::kTxTapFull);
    } else {
      counters_.drop(DropReason::kTxTapError);
      if (log_limiter_.allow(now)) {
        log_->error("{}: TAP write: {}", context_, std::generic_category().message(written.error));
      }
    }
    tx_respond(work.position, work.packet, protocol::kRspOkay);
  }
}

void QueueEngine::tx_process_completions() noexcept {
  if (!endpoint_) {
    return;
  }
  tx_take_completions();
  tx_flush_responses();
}

void QueueEngine::tx_take_completions() noexcept {
  ForwardCompletion completion;
  while (endpoint_->pop_completion(completion)) {
    if (completion.handle >= pending_forwards_.size() ||
        !pending_forwards_[completion.handle].in_use) {
      continue;  // cannot happen: handles come from our own descriptors
    }
    PendingForward& pending = pending_forwards_[completion.handle];
    const std::int16_t status =
        completion.result == ForwardResult::kCopyFailed ? protocol::kRspError : protocol::kRspOkay;
    tx_answer_slots(
        pending.first_index, std::size_t{pending.extra_count} + std::size_t{pending.data_slots},
        pending.extra_count, status, [&](std::size_t data_position) {
          // Data slot n sits at position extra_count + n (n >= 1).
          return pending.ids[data_position == 0 ? 0 : data_position - pending.extra_count];
        });
    switch (completion.result) {
      case ForwardResult::kDelivered:
        counters_.forwarded_packets.add();
        counters_.forwarded_segments.add(pending.data_slots);
        break;
      case ForwardResult::kDropped:
        counters_.drop(DropReason::kTxSwitchDropped);
        break;
      case ForwardResult::kCopyFailed:
        counters_.drop(DropReason::kTxGrantCopyFailed);
        break;
    }
    receiver_slots_[pending.receiver] = static_cast<std::uint16_t>(
        receiver_slots_[pending.receiver] - pending.data_slots - pending.extra_count);
    if (pending.gref_generation != 0) {
      if (grefs_ != nullptr && pending.gref_generation == grefs_->generation()) {
        --gref_forwards_current_;
      } else {
        --gref_forwards_older_;
      }
      pending.gref_generation = 0;
    }
    pending.in_use = false;
    free_forwards_.push_back(completion.handle);
  }
}

}  // namespace vifd::backend::detail
