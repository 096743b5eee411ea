#include "backend/lib/datapath/tx_parser.h"

#include <cstring>

namespace vifd::backend {

using protocol::ExtraInfo;
using protocol::TxRequest;

const char* to_string(TxFatalReason reason) noexcept {
  switch (reason) {
    case TxFatalReason::kNone:
      return "none";
    case TxFatalReason::kMissingSlots:
      return "packet promises slots that were not published";
    case TxFatalReason::kTooManySlots:
      return "malicious number of slots in one packet";
    case TxFatalReason::kCrossesPage:
      return "slot crosses its page boundary";
    case TxFatalReason::kBadExtraType:
      return "invalid extra-info type";
    case TxFatalReason::kBadGso:
      return "invalid GSO extra (size 0 or unknown type)";
  }
  return "unknown";
}

ExtraInfo extra_from_slot(const TxRequest& slot) noexcept {
  static_assert(sizeof(ExtraInfo) <= sizeof(TxRequest));
  ExtraInfo extra{};
  std::memcpy(&extra, &slot, sizeof(extra));
  return extra;
}

namespace {

TxPacket fatal(TxFatalReason reason) noexcept {
  TxPacket packet;
  packet.verdict = TxVerdict::kFatal;
  packet.fatal_reason = reason;
  return packet;
}

}  // namespace

TxPacket parse_tx_packet(std::span<const TxRequest> requests) noexcept {
  if (requests.empty()) return fatal(TxFatalReason::kMissingSlots);
  const TxRequest& first = requests[0];
  TxPacket packet;
  packet.total_length = first.size;
  packet.first_flags = first.flags;
  std::size_t position = 1;

  // xenvif_get_extras: a chain of extra-info slots, each naming its type.
  if ((first.flags & protocol::kTxfExtraInfo) != 0) {
    bool more = true;
    while (more) {
      if (position >= requests.size()) return fatal(TxFatalReason::kMissingSlots);
      const ExtraInfo extra = extra_from_slot(requests[position]);
      ++position;
      if (extra.type == protocol::kExtraTypeNone || extra.type >= protocol::kExtraTypeMax) {
        return fatal(TxFatalReason::kBadExtraType);
      }
      if (extra.type == protocol::kExtraTypeGso) packet.gso = extra;
      if (extra.type == protocol::kExtraTypeMcastAdd) packet.mcast_add = extra;
      if (extra.type == protocol::kExtraTypeMcastDel) packet.mcast_del = extra;
      // XEN_NETIF_EXTRA_TYPE_HASH carries the frontend's flow hash: vifd
      // hashes flows itself, so it is accepted and ignored.
      more = (extra.flags & protocol::kExtraFlagMore) != 0;
    }
  }
  packet.extra_count = position - 1;

  // A multicast update rides on a request that is not a packet: netback
  // answers it and moves on without looking at more_data.
  if (packet.mcast_add || packet.mcast_del) {
    packet.verdict = TxVerdict::kMulticast;
    packet.consumed = position;
    return packet;
  }

  // xenvif_count_requests: continuation slots until one without more_data.
  std::uint32_t remaining = first.size;
  std::size_t follow = 0;
  bool dropped = false;
  bool more = (first.flags & protocol::kTxfMoreData) != 0;
  while (more) {
    if (position + follow >= requests.size()) return fatal(TxFatalReason::kMissingSlots);
    if (follow >= kFatalTxFollowSlots) return fatal(TxFatalReason::kTooManySlots);
    if (!dropped && follow + 1 >= kMaxTxDataSlots) {
      dropped = true;
      packet.drop_reason = DropReason::kTxTooManySlots;
    }
    const TxRequest& slot = requests[position + follow];
    // A continuation larger than what is left means the 16-bit total
    // overflowed (a frame of 64 KiB or more) or the sizes are inconsistent.
    if (!dropped && slot.size > remaining) {
      dropped = true;
      packet.drop_reason = DropReason::kTxSlotExceedsPacket;
    }
    if (!dropped) remaining -= slot.size;
    ++follow;
    if (slot.offset + slot.size > protocol::kPageSize) {
      return fatal(TxFatalReason::kCrossesPage);
    }
    more = (slot.flags & protocol::kTxfMoreData) != 0;
  }
  packet.consumed = position + follow;
  packet.data_slots = 1 + follow;
  if (dropped) {
    packet.verdict = TxVerdict::kDrop;
    return packet;
  }
  // What is left is the first slot's own data; it must hold the Ethernet
  // header the switch and the host stack read.
  if (remaining < kEthernetHeaderSize) {
    packet.verdict = TxVerdict::kDrop;
    packet.drop_reason = DropReason::kTxBadPacketSize;
    return packet;
  }
  if (first.offset + remaining > protocol::kPageSize) {
    return fatal(TxFatalReason::kCrossesPage);
  }
  packet.first_size = static_cast<std::uint16_t>(remaining);
  // xenvif_set_skb_gso: a GSO extra must name a size and a known type.
  if (packet.gso) {
    const auto& gso = packet.gso->u.gso;
    if (gso.size == 0 ||
        (gso.type != protocol::kGsoTypeTcpv4 && gso.type != protocol::kGsoTypeTcpv6)) {
      return fatal(TxFatalReason::kBadGso);
    }
  }
  // The total length needs no check against 65535 + ETH_HLEN: it is the
  // 16-bit size field of the first request, and the continuation sizes were
  // checked to fit in it.
  packet.verdict = TxVerdict::kPacket;
  return packet;
}

}  // namespace vifd::backend
