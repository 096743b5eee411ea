#include "common/net/packet_meta.h"

#include <endian.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

#include "common/protocol/sizes.h"
#include "common/protocol/xen_abi.h"

namespace vifd::net {

static_assert(kNetTxCsumBlank == NETTXF_csum_blank);
static_assert(kNetTxDataValidated == NETTXF_data_validated);
static_assert(kNetTxMoreData == NETTXF_more_data);
static_assert(kNetTxExtraInfo == NETTXF_extra_info);
static_assert(kNetRxDataValidated == NETRXF_data_validated);
static_assert(kNetRxCsumBlank == NETRXF_csum_blank);
static_assert(kNetRxMoreData == NETRXF_more_data);
static_assert(kNetRxExtraInfo == NETRXF_extra_info);
static_assert(kNetifExtraTypeGso == XEN_NETIF_EXTRA_TYPE_GSO);
static_assert(kNetifGsoTypeNone == XEN_NETIF_GSO_TYPE_NONE);
static_assert(kNetifGsoTypeTcpv4 == XEN_NETIF_GSO_TYPE_TCPV4);
static_assert(kNetifGsoTypeTcpv6 == XEN_NETIF_GSO_TYPE_TCPV6);

namespace {

using protocol::kEthHeaderLen;
using protocol::kEthTypeQinQ;
using protocol::kEthTypeVlan;
using protocol::kVlanTagLen;
constexpr std::uint16_t kEthTypeIpv4 = 0x0800;
constexpr std::uint16_t kEthTypeIpv6 = 0x86dd;
constexpr std::size_t kIpv4MinHeaderLen = 20;
constexpr std::size_t kIpv6HeaderLen = 40;
constexpr std::size_t kTcpMinHeaderLen = 20;
constexpr std::size_t kUdpHeaderLen = 8;
constexpr std::uint16_t kTcpChecksumOffset = 16;
constexpr std::uint16_t kUdpChecksumOffset = 6;
// A 16-bit csum_start/hdr_len cannot describe anything past this.
constexpr std::size_t kMaxOffset = 0xffff;

std::uint16_t load_be16(std::span<const std::uint8_t> bytes, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((bytes[at] << 8) | bytes[at + 1]);
}

void store_be16(std::span<std::uint8_t> bytes, std::size_t at, std::uint16_t value) noexcept {
  bytes[at] = static_cast<std::uint8_t>(value >> 8);
  bytes[at + 1] = static_cast<std::uint8_t>(value & 0xff);
}

std::uint16_t fold(std::uint64_t sum) noexcept {
  while ((sum >> 16) != 0) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// Sums the L4 pseudo-header; the addresses are summed as they lie in the frame.
std::uint64_t pseudo_header_sum(std::span<const std::uint8_t> frame, const ChecksumLocation& where,
                                std::size_t ip_offset, std::size_t l4_length) noexcept {
  std::uint64_t sum = where.l4_protocol;
  sum += l4_length;
  if (where.ip_version == 4) {
    sum += ones_complement_sum(frame.subspan(ip_offset + 12, 8));
  } else {
    sum += ones_complement_sum(frame.subspan(ip_offset + 8, 32));
  }
  return sum;
}

// Finds the IP header after the Ethernet header and at most one VLAN tag.
PacketStatus locate_ip_header(std::span<const std::uint8_t> frame, std::size_t& ip_offset,
                              std::uint16_t& ethertype) noexcept {
  if (frame.size() < kEthHeaderLen) return PacketStatus::kTruncated;
  ethertype = load_be16(frame, 12);
  ip_offset = kEthHeaderLen;
  if (ethertype == kEthTypeVlan || ethertype == kEthTypeQinQ) {
    if (frame.size() < kEthHeaderLen + kVlanTagLen) return PacketStatus::kTruncated;
    ethertype = load_be16(frame, 16);
    ip_offset += kVlanTagLen;
  }
  if (ethertype != kEthTypeIpv4 && ethertype != kEthTypeIpv6) {
    return PacketStatus::kUnknownEthertype;
  }
  return PacketStatus::kOk;
}

// Both IP parsers return the L4 offset and the end of the IP packet: L4
// headers are bounded by the packet, not by the frame, whose tail may be
// Ethernet padding.
// `frame` holds the bytes at hand, `frame_length` (>= frame.size()) is how
// long the frame is: lengths a header declares are checked against the
// latter, every byte read lies in the former.
PacketStatus locate_ipv4_payload(std::span<const std::uint8_t> frame, std::size_t frame_length,
                                 std::size_t ip_offset, std::size_t& l4_offset, std::size_t& ip_end,
                                 std::uint8_t& protocol) noexcept {
  if (frame.size() - ip_offset < kIpv4MinHeaderLen) return PacketStatus::kTruncated;
  const std::uint8_t version_ihl = frame[ip_offset];
  if ((version_ihl >> 4) != 4) return PacketStatus::kBadIpHeader;
  const std::size_t header_len = static_cast<std::size_t>(version_ihl & 0x0f) * 4;
  if (header_len < kIpv4MinHeaderLen) return PacketStatus::kBadIpHeader;
  if (frame.size() - ip_offset < header_len) return PacketStatus::kTruncated;
  const std::size_t total_len = load_be16(frame, ip_offset + 2);
  if (total_len < header_len) return PacketStatus::kBadIpHeader;
  if (frame_length - ip_offset < total_len) return PacketStatus::kTruncated;
  // More-fragments set or a nonzero offset: the L4 header is in the first
  // fragment only and the checksum covers the reassembled datagram.
  if ((load_be16(frame, ip_offset + 6) & 0x3fff) != 0) return PacketStatus::kIpFragment;
  protocol = frame[ip_offset + 9];
  l4_offset = ip_offset + header_len;
  ip_end = ip_offset + total_len;
  return PacketStatus::kOk;
}

PacketStatus locate_ipv6_payload(std::span<const std::uint8_t> frame, std::size_t frame_length,
                                 std::size_t ip_offset, std::size_t& l4_offset, std::size_t& ip_end,
                                 std::uint8_t& protocol) noexcept {
  if (frame.size() - ip_offset < kIpv6HeaderLen) return PacketStatus::kTruncated;
  if ((frame[ip_offset] >> 4) != 6) return PacketStatus::kBadIpHeader;
  const std::size_t payload_len = load_be16(frame, ip_offset + 4);
  if (frame_length - ip_offset - kIpv6HeaderLen < payload_len) return PacketStatus::kTruncated;
  // Only bytes inside the declared payload belong to the packet; Ethernet
  // padding after it must not be parsed as headers.
  const std::size_t end = ip_offset + kIpv6HeaderLen + payload_len;
  ip_end = end;
  std::uint8_t next = frame[ip_offset + 6];
  std::size_t at = ip_offset + kIpv6HeaderLen;
  // Every extension header is at least 8 bytes long, so the loop ends after
  // at most payload_len / 8 iterations whatever the frame holds.
  for (;;) {
    switch (next) {
      case IPPROTO_HOPOPTS:
      case IPPROTO_ROUTING:
      case IPPROTO_DSTOPTS: {
        if (end - at < 8 || at + 2 > frame.size()) return PacketStatus::kTruncated;
        const std::size_t len = (static_cast<std::size_t>(frame[at + 1]) + 1) * 8;
        if (end - at < len) return PacketStatus::kTruncated;
        next = frame[at];
        at += len;
        break;
      }
      case IPPROTO_AH: {
        if (end - at < 8 || at + 2 > frame.size()) return PacketStatus::kTruncated;
        const std::size_t len = (static_cast<std::size_t>(frame[at + 1]) + 2) * 4;
        if (end - at < len) return PacketStatus::kTruncated;
        next = frame[at];
        at += len;
        break;
      }
      case IPPROTO_FRAGMENT:
        return PacketStatus::kIpFragment;
      default:
        protocol = next;
        l4_offset = at;
        return PacketStatus::kOk;
    }
  }
}

PacketStatus decode_gso_extra(const netif_extra_info* gso_extra, PacketMeta& out) noexcept {
  if (gso_extra == nullptr) return PacketStatus::kOk;
  if (gso_extra->type != XEN_NETIF_EXTRA_TYPE_GSO) return PacketStatus::kBadExtraType;
  switch (gso_extra->u.gso.type) {
    case XEN_NETIF_GSO_TYPE_TCPV4:
      out.gso_type = GsoType::kTcpv4;
      break;
    case XEN_NETIF_GSO_TYPE_TCPV6:
      out.gso_type = GsoType::kTcpv6;
      break;
    default:
      return PacketStatus::kUnsupportedGsoType;
  }
  if (gso_extra->u.gso.size == 0) return PacketStatus::kZeroGsoSize;
  out.gso_size = gso_extra->u.gso.size;
  return PacketStatus::kOk;
}

}  // namespace

const char* to_string(PacketStatus status) noexcept {
  switch (status) {
    case PacketStatus::kOk:
      return "ok";
    case PacketStatus::kTruncated:
      return "truncated";
    case PacketStatus::kUnknownEthertype:
      return "unknown_ethertype";
    case PacketStatus::kBadIpHeader:
      return "bad_ip_header";
    case PacketStatus::kIpFragment:
      return "ip_fragment";
    case PacketStatus::kUnsupportedL4Protocol:
      return "unsupported_l4_protocol";
    case PacketStatus::kBadL4Header:
      return "bad_l4_header";
    case PacketStatus::kUnsupportedGsoType:
      return "unsupported_gso_type";
    case PacketStatus::kZeroGsoSize:
      return "zero_gso_size";
    case PacketStatus::kBadExtraType:
      return "bad_extra_type";
    case PacketStatus::kGsoProtocolMismatch:
      return "gso_protocol_mismatch";
    case PacketStatus::kChecksumNotLocated:
      return "checksum_not_located";
    case PacketStatus::kChecksumOutOfRange:
      return "checksum_out_of_range";
    case PacketStatus::kGsoNotSupportedByPeer:
      return "gso_not_supported_by_peer";
  }
  return "unknown";
}

// ---- virtio -----------------------------------------------------------------

PacketStatus meta_from_virtio(const VirtioNetHdr& hdr, PacketMeta& out) noexcept {
  PacketMeta meta;
  if ((hdr.flags & kVirtioNetHdrFNeedsCsum) != 0) {
    meta.checksum = ChecksumState::kPartial;
    meta.csum_located = true;
    meta.csum_start = le16toh(hdr.csum_start);
    meta.csum_offset = le16toh(hdr.csum_offset);
    if (std::size_t{meta.csum_start} + meta.csum_offset + 2 > kMaxOffset) {
      return PacketStatus::kChecksumOutOfRange;
    }
  } else if ((hdr.flags & kVirtioNetHdrFDataValid) != 0) {
    meta.checksum = ChecksumState::kValidated;
  }
  switch (hdr.gso_type) {
    case kVirtioNetHdrGsoNone:
      break;
    case kVirtioNetHdrGsoTcpv4:
      meta.gso_type = GsoType::kTcpv4;
      break;
    case kVirtioNetHdrGsoTcpv6:
      meta.gso_type = GsoType::kTcpv6;
      break;
    default:
      // UDP/UFO/USO and the ECN bit have no netif encoding; TapDevice never
      // enables the TUN offloads that would produce them.
      return PacketStatus::kUnsupportedGsoType;
  }
  if (meta.gso_type != GsoType::kNone) {
    meta.gso_size = le16toh(hdr.gso_size);
    if (meta.gso_size == 0) return PacketStatus::kZeroGsoSize;
    meta.hdr_len = le16toh(hdr.hdr_len);
  }
  out = meta;
  return PacketStatus::kOk;
}

PacketStatus meta_to_virtio(const PacketMeta& meta, VirtioNetHdr& out) noexcept {
  VirtioNetHdr hdr{};
  switch (meta.checksum) {
    case ChecksumState::kNone:
      break;
    case ChecksumState::kPartial:
      if (!meta.csum_located) return PacketStatus::kChecksumNotLocated;
      hdr.flags = kVirtioNetHdrFNeedsCsum;
      hdr.csum_start = htole16(meta.csum_start);
      hdr.csum_offset = htole16(meta.csum_offset);
      break;
    case ChecksumState::kValidated:
      hdr.flags = kVirtioNetHdrFDataValid;
      break;
  }
  switch (meta.gso_type) {
    case GsoType::kNone:
      hdr.gso_type = kVirtioNetHdrGsoNone;
      break;
    case GsoType::kTcpv4:
      hdr.gso_type = kVirtioNetHdrGsoTcpv4;
      break;
    case GsoType::kTcpv6:
      hdr.gso_type = kVirtioNetHdrGsoTcpv6;
      break;
  }
  if (meta.gso_type != GsoType::kNone) {
    if (meta.gso_size == 0) return PacketStatus::kZeroGsoSize;
    hdr.gso_size = htole16(meta.gso_size);
    hdr.hdr_len = htole16(meta.hdr_len);
  }
  out = hdr;
  return PacketStatus::kOk;
}

// ---- netif ------------------------------------------------------------------

std::uint16_t netif_tx_flags(const PacketMeta& meta) noexcept {
  std::uint16_t flags = 0;
  if (meta.checksum == ChecksumState::kPartial) {
    flags |= kNetTxCsumBlank | kNetTxDataValidated;
  } else if (meta.checksum == ChecksumState::kValidated) {
    flags |= kNetTxDataValidated;
  }
  if (meta.gso_type != GsoType::kNone) flags |= kNetTxExtraInfo;
  return flags;
}

std::uint16_t netif_rx_flags(const PacketMeta& meta) noexcept {
  std::uint16_t flags = 0;
  if (meta.checksum == ChecksumState::kPartial) {
    flags |= kNetRxCsumBlank | kNetRxDataValidated;
  } else if (meta.checksum == ChecksumState::kValidated) {
    flags |= kNetRxDataValidated;
  }
  if (meta.gso_type != GsoType::kNone) flags |= kNetRxExtraInfo;
  return flags;
}

void fill_gso_extra(const PacketMeta& meta, netif_extra_info& out) noexcept {
  std::memset(&out, 0, sizeof(out));
  out.type = XEN_NETIF_EXTRA_TYPE_GSO;
  out.u.gso.size = meta.gso_size;
  switch (meta.gso_type) {
    case GsoType::kNone:
      out.u.gso.type = XEN_NETIF_GSO_TYPE_NONE;
      break;
    case GsoType::kTcpv4:
      out.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
      break;
    case GsoType::kTcpv6:
      out.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV6;
      break;
  }
}

PacketStatus meta_from_netif_tx(std::uint16_t flags, const netif_extra_info* gso_extra,
                                PacketMeta& out) noexcept {
  PacketMeta meta;
  if ((flags & kNetTxCsumBlank) != 0) {
    meta.checksum = ChecksumState::kPartial;
  } else if ((flags & kNetTxDataValidated) != 0) {
    meta.checksum = ChecksumState::kValidated;
  }
  if (const PacketStatus status = decode_gso_extra(gso_extra, meta); status != PacketStatus::kOk) {
    return status;
  }
  out = meta;
  return PacketStatus::kOk;
}

PacketStatus meta_from_netif_rx(std::uint16_t flags, const netif_extra_info* gso_extra,
                                PacketMeta& out) noexcept {
  PacketMeta meta;
  if ((flags & kNetRxCsumBlank) != 0) {
    meta.checksum = ChecksumState::kPartial;
  } else if ((flags & kNetRxDataValidated) != 0) {
    meta.checksum = ChecksumState::kValidated;
  }
  if (const PacketStatus status = decode_gso_extra(gso_extra, meta); status != PacketStatus::kOk) {
    return status;
  }
  out = meta;
  return PacketStatus::kOk;
}

// ---- frame parsing ----------------------------------------------------------

PacketStatus locate_checksum(std::span<const std::uint8_t> frame, ChecksumLocation& out) noexcept {
  return locate_checksum(frame, frame.size(), out);
}

PacketStatus locate_checksum(std::span<const std::uint8_t> headers, std::size_t frame_length,
                             ChecksumLocation& out) noexcept {
  if (headers.size() > frame_length) return PacketStatus::kTruncated;
  const std::span<const std::uint8_t> frame = headers;
  std::size_t ip_offset = 0;
  std::uint16_t ethertype = 0;
  if (const PacketStatus status = locate_ip_header(frame, ip_offset, ethertype);
      status != PacketStatus::kOk) {
    return status;
  }
  std::size_t l4_offset = 0;
  std::size_t ip_end = 0;
  std::uint8_t protocol = 0;
  const PacketStatus ip_status =
      ethertype == kEthTypeIpv4
          ? locate_ipv4_payload(frame, frame_length, ip_offset, l4_offset, ip_end, protocol)
          : locate_ipv6_payload(frame, frame_length, ip_offset, l4_offset, ip_end, protocol);
  if (ip_status != PacketStatus::kOk) return ip_status;

  ChecksumLocation where;
  where.ip_version = ethertype == kEthTypeIpv4 ? 4 : 6;
  where.l4_protocol = protocol;
  const std::size_t available = ip_end - l4_offset;
  std::size_t l4_header_len = 0;
  // The whole L4 header must be at hand, not only inside the packet.
  if (l4_offset > frame.size()) return PacketStatus::kTruncated;
  const std::size_t at_hand = std::min(available, frame.size() - l4_offset);
  if (protocol == IPPROTO_TCP) {
    if (at_hand < kTcpMinHeaderLen) return PacketStatus::kTruncated;
    l4_header_len = static_cast<std::size_t>(frame[l4_offset + 12] >> 4) * 4;
    if (l4_header_len < kTcpMinHeaderLen) return PacketStatus::kBadL4Header;
    if (at_hand < l4_header_len) return PacketStatus::kTruncated;
    where.csum_offset = kTcpChecksumOffset;
  } else if (protocol == IPPROTO_UDP) {
    if (at_hand < kUdpHeaderLen) return PacketStatus::kTruncated;
    l4_header_len = kUdpHeaderLen;
    where.csum_offset = kUdpChecksumOffset;
  } else {
    return PacketStatus::kUnsupportedL4Protocol;
  }
  if (l4_offset + l4_header_len > kMaxOffset) return PacketStatus::kChecksumOutOfRange;
  where.csum_start = static_cast<std::uint16_t>(l4_offset);
  where.header_len = static_cast<std::uint16_t>(l4_offset + l4_header_len);
  out = where;
  return PacketStatus::kOk;
}

std::uint16_t ones_complement_sum(std::span<const std::uint8_t> bytes) noexcept {
  // RFC 1071 section 2(B): the sum is independent of byte order, so add
  // native-endian 32-bit words into a 64-bit accumulator (no carry lost for
  // any frame shorter than 16 GiB) and swap once at the end.
  std::uint64_t sum = 0;
  std::size_t at = 0;
  for (; bytes.size() - at >= 4; at += 4) {
    std::uint32_t word = 0;
    std::memcpy(&word, bytes.data() + at, sizeof(word));
    sum += word;
  }
  if (bytes.size() - at >= 2) {
    std::uint16_t half = 0;
    std::memcpy(&half, bytes.data() + at, sizeof(half));
    sum += half;
    at += 2;
  }
  if (at < bytes.size()) {
    // A trailing odd byte is the high-order byte of a zero-padded word.
    const std::uint8_t pad[2] = {bytes[at], 0};
    std::uint16_t half = 0;
    std::memcpy(&half, pad, sizeof(half));
    sum += half;
  }
  return be16toh(fold(sum));
}

PacketStatus finish_checksum(std::span<std::uint8_t> frame, std::uint16_t csum_start,
                             std::uint16_t csum_offset) noexcept {
  const std::size_t field = std::size_t{csum_start} + csum_offset;
  if (field + 2 > frame.size()) return PacketStatus::kChecksumOutOfRange;
  const std::uint16_t sum = ones_complement_sum(frame.subspan(csum_start));
  std::uint16_t checksum = static_cast<std::uint16_t>(~sum);
  if (checksum == 0) checksum = 0xffff;
  store_be16(frame, field, checksum);
  return PacketStatus::kOk;
}

namespace {

PacketStatus seed_pseudo_header(std::span<std::uint8_t> frame, std::size_t frame_length,
                                const ChecksumLocation& where) noexcept {
  const std::size_t field = std::size_t{where.csum_start} + where.csum_offset;
  if (field + 2 > frame.size()) return PacketStatus::kChecksumOutOfRange;
  // Re-derive the IP header position rather than trusting the caller's
  // location to describe this frame: the addresses are read from it.
  std::size_t ip_offset = 0;
  std::uint16_t ethertype = 0;
  if (const PacketStatus status = locate_ip_header(frame, ip_offset, ethertype);
      status != PacketStatus::kOk) {
    return status;
  }
  const bool ipv4 = ethertype == kEthTypeIpv4;
  if ((ipv4 ? 4 : 6) != where.ip_version) return PacketStatus::kBadIpHeader;
  const std::size_t ip_header_min = ipv4 ? kIpv4MinHeaderLen : kIpv6HeaderLen;
  if (ip_offset + ip_header_min > where.csum_start) return PacketStatus::kChecksumOutOfRange;
  const std::size_t l4_length = frame_length - where.csum_start;
  const std::uint16_t sum = fold(pseudo_header_sum(frame, where, ip_offset, l4_length));
  store_be16(frame, field, sum);
  return PacketStatus::kOk;
}

}  // namespace

PacketStatus seed_pseudo_header_checksum(std::span<std::uint8_t> frame,
                                         const ChecksumLocation& where) noexcept {
  return seed_pseudo_header(frame, frame.size(), where);
}

PacketStatus prepare_offload(std::span<std::uint8_t> frame, PacketMeta& meta) noexcept {
  return prepare_offload(frame, frame.size(), meta);
}

PacketStatus prepare_offload(std::span<std::uint8_t> headers, std::size_t frame_length,
                             PacketMeta& meta) noexcept {
  const std::span<std::uint8_t> frame = headers;
  const bool needs_location = (meta.checksum == ChecksumState::kPartial && !meta.csum_located) ||
                              meta.gso_type != GsoType::kNone;
  if (!needs_location) return PacketStatus::kOk;
  ChecksumLocation where;
  if (const PacketStatus status = locate_checksum(frame, frame_length, where);
      status != PacketStatus::kOk) {
    return status;
  }
  if (meta.gso_type != GsoType::kNone) {
    const std::uint8_t expected_version = meta.gso_type == GsoType::kTcpv4 ? 4 : 6;
    if (where.l4_protocol != IPPROTO_TCP || where.ip_version != expected_version) {
      return PacketStatus::kGsoProtocolMismatch;
    }
    if (meta.gso_size == 0) return PacketStatus::kZeroGsoSize;
    meta.hdr_len = where.header_len;
    if (meta.checksum != ChecksumState::kPartial) {
      if (const PacketStatus status = seed_pseudo_header(frame, frame_length, where);
          status != PacketStatus::kOk) {
        return status;
      }
      meta.checksum = ChecksumState::kPartial;
    }
  }
  meta.csum_located = true;
  meta.csum_start = where.csum_start;
  meta.csum_offset = where.csum_offset;
  return PacketStatus::kOk;
}

PacketStatus adapt_to_peer(std::span<std::uint8_t> frame, PacketMeta& meta,
                           const PeerOffloads& peer) noexcept {
  if (meta.gso_type == GsoType::kTcpv4 && !peer.tso4) return PacketStatus::kGsoNotSupportedByPeer;
  if (meta.gso_type == GsoType::kTcpv6 && !peer.tso6) return PacketStatus::kGsoNotSupportedByPeer;
  if (meta.checksum != ChecksumState::kPartial) return PacketStatus::kOk;
  if (const PacketStatus status = prepare_offload(frame, meta); status != PacketStatus::kOk) {
    return status;
  }
  // The IP version decides which negotiated feature applies; read it from the
  // frame (csum_start from a virtio header says nothing about it).
  std::size_t ip_offset = 0;
  std::uint16_t ethertype = 0;
  if (const PacketStatus status = locate_ip_header(frame, ip_offset, ethertype);
      status != PacketStatus::kOk) {
    return status;
  }
  const bool peer_takes_partial = ethertype == kEthTypeIpv4 ? peer.csum_ipv4 : peer.csum_ipv6;
  if (peer_takes_partial) return PacketStatus::kOk;
  if (meta.gso_type != GsoType::kNone) {
    // Unreachable with a consistent peer (TSO implies checksum offload), but a
    // GSO frame cannot lose its partial checksum: segmentation needs it.
    return PacketStatus::kGsoNotSupportedByPeer;
  }
  if (const PacketStatus status = finish_checksum(frame, meta.csum_start, meta.csum_offset);
      status != PacketStatus::kOk) {
    return status;
  }
  meta.checksum = ChecksumState::kNone;
  meta.csum_located = false;
  meta.csum_start = 0;
  meta.csum_offset = 0;
  return PacketStatus::kOk;
}

}  // namespace vifd::net
