// Offload metadata between its two encodings and the frame parsing behind
// it: a virtio_net_hdr a TAP (or a dom0 process writing to it) hands us, the
// netif flags and GSO extra a guest puts on its first TX request, and the
// frame itself. Accepted metadata must survive the round trip through the
// other encoding unchanged; a located checksum must lie inside the frame; a
// checksum finished in software must verify; whatever adapt_to_peer lets
// through must be something the peer negotiated.
#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/net/packet_meta.h"
#include "common/protocol/xen_abi.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace vifd::net;  // NOLINT(google-build-using-namespace)

void check_virtio(const VirtioNetHdr& hdr) {
  PacketMeta meta;
  if (meta_from_virtio(hdr, meta) != PacketStatus::kOk) {
    return;
  }
  FUZZ_CHECK((meta.gso_type == GsoType::kNone) == (meta.gso_size == 0));
  if (meta.checksum == ChecksumState::kPartial) {
    FUZZ_CHECK(meta.csum_located);
    FUZZ_CHECK(std::uint32_t{meta.csum_start} + meta.csum_offset + 2 <= 0xFFFF);
  }
  VirtioNetHdr back{};
  FUZZ_CHECK(meta_to_virtio(meta, back) == PacketStatus::kOk);
  PacketMeta again;
  FUZZ_CHECK(meta_from_virtio(back, again) == PacketStatus::kOk);
  FUZZ_CHECK(again == meta);
}

void check_netif(std::uint16_t flags, const vifd::protocol::ExtraInfo& extra, bool with_extra) {
  const auto* gso = with_extra ? &extra : nullptr;
  PacketMeta tx;
  if (meta_from_netif_tx(flags, gso, tx) == PacketStatus::kOk) {
    FUZZ_CHECK((tx.gso_type == GsoType::kNone) == (tx.gso_size == 0));
    FUZZ_CHECK(!tx.csum_located);
    // Re-encoded as a frontend would, it decodes to the same metadata.
    vifd::protocol::ExtraInfo encoded{};
    if (tx.gso_type != GsoType::kNone) {
      fill_gso_extra(tx, encoded);
    }
    const std::uint16_t reflags = netif_tx_flags(tx);
    FUZZ_CHECK(((reflags & kNetTxExtraInfo) != 0) == (tx.gso_type != GsoType::kNone));
    PacketMeta again;
    FUZZ_CHECK(meta_from_netif_tx(reflags, tx.gso_type != GsoType::kNone ? &encoded : nullptr,
                                  again) == PacketStatus::kOk);
    FUZZ_CHECK(again == tx);
  }
  PacketMeta rx;
  if (meta_from_netif_rx(flags, gso, rx) == PacketStatus::kOk) {
    vifd::protocol::ExtraInfo encoded{};
    if (rx.gso_type != GsoType::kNone) {
      fill_gso_extra(rx, encoded);
    }
    PacketMeta again;
    FUZZ_CHECK(meta_from_netif_rx(netif_rx_flags(rx),
                                  rx.gso_type != GsoType::kNone ? &encoded : nullptr,
                                  again) == PacketStatus::kOk);
    FUZZ_CHECK(again == rx);
  }
}

void check_frame(std::span<const std::uint8_t> input) {
  ChecksumLocation where;
  if (locate_checksum(input, where) != PacketStatus::kOk) {
    return;
  }
  FUZZ_CHECK(where.ip_version == 4 || where.ip_version == 6);
  FUZZ_CHECK(where.l4_protocol == IPPROTO_TCP || where.l4_protocol == IPPROTO_UDP);
  FUZZ_CHECK(where.csum_offset == (where.l4_protocol == IPPROTO_TCP ? 16 : 6));
  FUZZ_CHECK(where.csum_start < where.header_len && where.header_len <= input.size());
  FUZZ_CHECK(std::size_t{where.csum_start} + where.csum_offset + 2 <= where.header_len);

  // Seed the pseudo-header sum P as a partial sender does, finish it as a
  // receiver without offload would: the segment then sums to ~P (RFC 1071;
  // 0 and 0xffff are the same number in ones' complement).
  std::vector<std::uint8_t> frame(input.begin(), input.end());
  if (seed_pseudo_header_checksum(frame, where) != PacketStatus::kOk) {
    return;
  }
  const std::size_t field = std::size_t{where.csum_start} + where.csum_offset;
  const unsigned pseudo = (unsigned{frame[field]} << 8) | frame[field + 1];
  FUZZ_CHECK(finish_checksum(frame, where.csum_start, where.csum_offset) == PacketStatus::kOk);
  const unsigned sum = ones_complement_sum(std::span(frame).subspan(where.csum_start));
  FUZZ_CHECK(sum % 0xFFFF == (~pseudo & 0xFFFFU) % 0xFFFF);
}

void check_offload(std::span<const std::uint8_t> input, const VirtioNetHdr& hdr,
                   std::uint8_t peer_bits) {
  PacketMeta meta;
  if (meta_from_virtio(hdr, meta) != PacketStatus::kOk) {
    return;
  }
  std::vector<std::uint8_t> frame(input.begin(), input.end());
  PacketMeta prepared = meta;
  if (prepare_offload(frame, prepared) == PacketStatus::kOk && meta.gso_type != GsoType::kNone) {
    FUZZ_CHECK(prepared.checksum == ChecksumState::kPartial && prepared.csum_located);
    FUZZ_CHECK(prepared.hdr_len <= frame.size());
    FUZZ_CHECK(std::size_t{prepared.csum_start} + prepared.csum_offset + 2 <= frame.size());
  }
  const PeerOffloads peer{(peer_bits & 1) != 0, (peer_bits & 2) != 0, (peer_bits & 4) != 0,
                          (peer_bits & 8) != 0};
  PacketMeta adapted = meta;
  std::vector<std::uint8_t> out(input.begin(), input.end());
  if (adapt_to_peer(out, adapted, peer) != PacketStatus::kOk) {
    return;
  }
  if (adapted.gso_type == GsoType::kTcpv4) {
    FUZZ_CHECK(peer.tso4);
  }
  if (adapted.gso_type == GsoType::kTcpv6) {
    FUZZ_CHECK(peer.tso6);
  }
  if (adapted.checksum == ChecksumState::kPartial) {
    FUZZ_CHECK(adapted.csum_located);
    FUZZ_CHECK(peer.csum_ipv4 || peer.csum_ipv6);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  vifd::fuzz::Bytes in(data, size);
  const auto hdr = in.take<VirtioNetHdr>();
  const auto flags = in.take<std::uint16_t>();
  const auto extra = in.take<vifd::protocol::ExtraInfo>();
  const auto choices = in.take<std::uint8_t>();
  const auto frame = in.rest();

  check_virtio(hdr);
  check_netif(flags, extra, (choices & 0x10) != 0);
  check_frame(frame);
  check_offload(frame, hdr, choices);
  return 0;
}
