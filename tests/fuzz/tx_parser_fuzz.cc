// The guest TX request stream: whatever a frontend publishes on its TX ring,
// as the queue copies it out (up to one ring of requests), is parsed packet
// by packet until the end or a fatal verdict. Checks that every accepted
// packet is internally consistent: slot positions inside what was consumed,
// sizes adding up to the first request's total, every data slot inside its
// page, a GSO extra that the offload decoder (the TAP route) accepts too.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "backend/lib/datapath/tx_parser.h"
#include "common/net/packet_meta.h"
#include "common/protocol/xen_abi.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using vifd::backend::kEthernetHeaderSize;
using vifd::backend::kMaxTxDataSlots;
using vifd::backend::parse_tx_packet;
using vifd::backend::TxFatalReason;
using vifd::backend::TxPacket;
using vifd::backend::TxVerdict;
using vifd::protocol::kPageSize;
using vifd::protocol::kTxRingSizeOnePage;
using vifd::protocol::TxRequest;

void check_packet(std::span<const TxRequest> requests, const TxPacket& packet) {
  FUZZ_CHECK(packet.consumed >= 1 && packet.consumed <= requests.size());
  FUZZ_CHECK(packet.extra_count < packet.consumed);
  FUZZ_CHECK(packet.total_length == requests[0].size);
  if (packet.verdict == TxVerdict::kMulticast) {
    FUZZ_CHECK(packet.consumed == 1 + packet.extra_count);
    FUZZ_CHECK(packet.mcast_add.has_value() || packet.mcast_del.has_value());
    return;
  }
  FUZZ_CHECK(packet.data_slots >= 1);
  FUZZ_CHECK(packet.consumed == packet.extra_count + packet.data_slots);
  if (packet.verdict == TxVerdict::kDrop) {
    return;
  }

  FUZZ_CHECK(packet.verdict == TxVerdict::kPacket);
  FUZZ_CHECK(packet.data_slots <= kMaxTxDataSlots);
  FUZZ_CHECK(packet.first_size >= kEthernetHeaderSize);
  FUZZ_CHECK(std::size_t{requests[0].offset} + packet.first_size <= kPageSize);
  std::uint32_t total = packet.first_size;
  for (std::size_t n = 1; n < packet.data_slots; ++n) {
    const std::size_t position = packet.data_slot_position(n);
    FUZZ_CHECK(position > packet.extra_count && position < packet.consumed);
    const TxRequest& slot = requests[position];
    FUZZ_CHECK(std::size_t{slot.offset} + slot.size <= kPageSize);
    total += slot.size;
  }
  FUZZ_CHECK(total == packet.total_length);
  if (packet.gso) {
    // The same GSO extra must pass the metadata decoder every route uses.
    vifd::net::PacketMeta meta;
    FUZZ_CHECK(vifd::net::meta_from_netif_tx(packet.first_flags, &*packet.gso, meta) ==
               vifd::net::PacketStatus::kOk);
    FUZZ_CHECK(meta.gso_type != vifd::net::GsoType::kNone && meta.gso_size != 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<TxRequest> requests(
      std::min<std::size_t>(size / sizeof(TxRequest), kTxRingSizeOnePage));
  vifd::fuzz::Bytes bytes(data, size);
  for (auto& request : requests) {
    request = bytes.take<TxRequest>();
  }

  std::span<const TxRequest> rest(requests);
  while (!rest.empty()) {
    const TxPacket packet = parse_tx_packet(rest);
    if (packet.verdict == TxVerdict::kFatal) {
      FUZZ_CHECK(packet.fatal_reason != TxFatalReason::kNone);
      break;
    }
    check_packet(rest, packet);
    rest = rest.subspan(packet.consumed);
  }
  return 0;
}
