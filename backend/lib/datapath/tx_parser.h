// Guest TX request parsing: groups requests already copied out of the ring
// into packets and validates them, the way Linux netback's
// xenvif_tx_build_gops / xenvif_get_extras / xenvif_count_requests do.
//
// Pure: works on a span of copies, never on shared memory, so every field is
// read exactly once by construction and the parser is testable without I/O.
// Its verdicts follow netback's two kinds of guest error:
//   drop  : answer every slot of the packet with NETIF_RSP_ERROR (extras
//           NETIF_RSP_NULL) and go on with the next packet (xenvif_tx_err);
//   fatal : the frontend is broken or hostile; stop serving it
//           (xenvif_fatal_tx_err).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "backend/lib/datapath/queue_stats.h"
#include "common/protocol/sizes.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend {

// Data slots of one packet accepted without question (XEN_NETIF_NR_SLOTS_MIN,
// netback's XEN_NETBK_LEGACY_SLOTS_MAX); more are dropped.
inline constexpr std::size_t kMaxTxDataSlots = protocol::kNrSlotsMin;
// Continuation slots from which netback calls the frontend malicious
// (fatal_skb_slots, FATAL_SKB_SLOTS_DEFAULT).
inline constexpr std::size_t kFatalTxFollowSlots = 20;
inline constexpr std::size_t kEthernetHeaderSize = protocol::kEthHeaderLen;

enum class TxVerdict : std::uint8_t {
  kPacket,     // a valid packet: first slot, extras, continuation slots
  kMulticast,  // an MCAST_ADD/DEL carrier: answer, do not transmit
  kDrop,       // answer every slot with an error (drop_reason says why)
  kFatal,      // disconnect the frontend (fatal_reason says why)
};

enum class TxFatalReason : std::uint8_t {
  kNone,
  kMissingSlots,  // more_data/extra_info promise slots that were not published
  kTooManySlots,  // kFatalTxFollowSlots or more continuation slots
  kCrossesPage,   // offset + size beyond the granted page
  kBadExtraType,  // extra-info type 0 or unknown
  kBadGso,        // GSO extra with size 0 or an unknown type
};
const char* to_string(TxFatalReason reason) noexcept;

struct TxPacket {
  TxVerdict verdict = TxVerdict::kPacket;
  DropReason drop_reason = DropReason::kTxBadPacketSize;
  TxFatalReason fatal_reason = TxFatalReason::kNone;
  // Requests of the span this packet occupies: first + extras + continuation.
  std::size_t consumed = 0;
  std::size_t extra_count = 0;
  // Data slots: index 0 is the first request (position 0 of the span), the
  // others follow the extras. size of data_slot 0 is the first slot's own
  // bytes (the request's size field minus the continuation sizes).
  std::size_t data_slots = 0;
  std::uint32_t total_length = 0;  // the first request's size field
  std::uint16_t first_size = 0;    // bytes carried by the first slot itself
  std::uint16_t first_flags = 0;
  std::optional<protocol::ExtraInfo> gso;
  std::optional<protocol::ExtraInfo> mcast_add;
  std::optional<protocol::ExtraInfo> mcast_del;

  // Position in the span of data slot `n` (0 <= n < data_slots).
  std::size_t data_slot_position(std::size_t n) const noexcept {
    return n == 0 ? 0 : extra_count + n;
  }
};

// Parses the packet that starts at requests[0]. `requests` must hold every
// request the frontend published that we have not yet parsed: a packet that
// runs past its end is fatal (netback: "Missing extra info", "Asked for N
// slots but exceeds this limit"), since a frontend publishes whole packets.
TxPacket parse_tx_packet(std::span<const protocol::TxRequest> requests) noexcept;

// The extra-info slot a TX request slot holds (the ring slot is a union).
protocol::ExtraInfo extra_from_slot(const protocol::TxRequest& slot) noexcept;

}  // namespace vifd::backend
