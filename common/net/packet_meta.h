// Offload metadata of one Ethernet frame (checksum state, GSO) and its
// translations between the two encodings vifd speaks:
//
//   host side  : struct virtio_net_hdr, prepended to every frame on a TAP
//                opened with IFF_VNET_HDR (see common/net/tap_device.h);
//   guest side : netif request/response flags plus an optional
//                XEN_NETIF_EXTRA_TYPE_GSO extra-info slot.
//
// netif's csum_blank carries no offsets: whoever receives such a frame must
// find the L4 header itself (Linux does it in skb_checksum_setup()).
// locate_checksum() and prepare_offload() are that step; finish_checksum()
// completes a partial checksum in software for a peer that cannot take one.
//
// Every function here runs per packet: noexcept, no allocation, and every
// function that reads a frame treats it as hostile (bounds-checked against
// the span, never reads past it, reports what was wrong as a PacketStatus).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

// The netif extra-info slot (xen/io/netif.h). Declared, not included, so that
// this header does not drag Xen's ring.h (which needs barrier macros defined
// by the includer) into every user; packet_meta.cc includes the definition.
struct netif_extra_info;

namespace vifd::net {

// netif flag bits and GSO codes. Values mirror xen/io/netif.h; packet_meta.cc
// static_asserts each one against that header.
inline constexpr std::uint16_t kNetTxCsumBlank = 1U << 0;      // NETTXF_csum_blank
inline constexpr std::uint16_t kNetTxDataValidated = 1U << 1;  // NETTXF_data_validated
inline constexpr std::uint16_t kNetTxMoreData = 1U << 2;       // NETTXF_more_data
inline constexpr std::uint16_t kNetTxExtraInfo = 1U << 3;      // NETTXF_extra_info
inline constexpr std::uint16_t kNetRxDataValidated = 1U << 0;  // NETRXF_data_validated
inline constexpr std::uint16_t kNetRxCsumBlank = 1U << 1;      // NETRXF_csum_blank
inline constexpr std::uint16_t kNetRxMoreData = 1U << 2;       // NETRXF_more_data
inline constexpr std::uint16_t kNetRxExtraInfo = 1U << 3;      // NETRXF_extra_info
inline constexpr std::uint8_t kNetifExtraTypeGso = 1;          // XEN_NETIF_EXTRA_TYPE_GSO
inline constexpr std::uint8_t kNetifGsoTypeNone = 0;           // XEN_NETIF_GSO_TYPE_NONE
inline constexpr std::uint8_t kNetifGsoTypeTcpv4 = 1;          // XEN_NETIF_GSO_TYPE_TCPV4
inline constexpr std::uint8_t kNetifGsoTypeTcpv6 = 2;          // XEN_NETIF_GSO_TYPE_TCPV6

// How far the L4 checksum of a frame is trustworthy.
enum class ChecksumState : std::uint8_t {
  kNone,       // nothing known: the receiver verifies it (or the protocol has none)
  kPartial,    // checksum field holds only the pseudo-header sum; someone must
               // sum from csum_start to the end of the frame and store the result
  kValidated,  // already verified (or computed locally): the receiver may skip it
};

enum class GsoType : std::uint8_t { kNone, kTcpv4, kTcpv6 };

struct PacketMeta {
  ChecksumState checksum = ChecksumState::kNone;
  // True when csum_start/csum_offset are known. A frame that arrived with
  // netif csum_blank is `partial` but not located until prepare_offload().
  bool csum_located = false;
  std::uint16_t csum_start = 0;   // from the start of the Ethernet header
  std::uint16_t csum_offset = 0;  // from csum_start to the 16-bit checksum field
  GsoType gso_type = GsoType::kNone;
  std::uint16_t gso_size = 0;  // MSS: payload bytes per segment; nonzero iff GSO
  // Bytes of Ethernet + IP + L4 headers, or 0 when unknown. netif does not
  // carry it; virtio uses it as a hint only.
  std::uint16_t hdr_len = 0;

  friend bool operator==(const PacketMeta&, const PacketMeta&) = default;
};

// Why a frame or its metadata could not be used. Callers count these per
// reason; to_string() gives the name for logs and stats.
enum class PacketStatus : std::uint8_t {
  kOk,
  kTruncated,              // a header runs past the end of the frame
  kUnknownEthertype,       // not IPv4/IPv6 (after at most one VLAN tag)
  kBadIpHeader,            // wrong version, header or total length inconsistent
  kIpFragment,             // a fragment has no L4 header to checksum
  kUnsupportedL4Protocol,  // neither TCP nor UDP
  kBadL4Header,            // e.g. TCP data offset below 5 words
  kUnsupportedGsoType,     // not TCPv4/TCPv6 (UDP, ECN), or unknown netif code
  kZeroGsoSize,            // GSO requested with MSS 0
  kBadExtraType,           // the slot handed in as GSO extra is not one
  kGsoProtocolMismatch,    // GSO type disagrees with the frame's IP version / L4
  kChecksumNotLocated,     // partial checksum without csum_start/csum_offset
  kChecksumOutOfRange,     // csum_start/csum_offset point outside the frame
  kGsoNotSupportedByPeer,  // the peer did not negotiate this GSO type
};

const char* to_string(PacketStatus status) noexcept;

// ---- host side: virtio_net_hdr (little-endian fields, see TapDevice) --------

// The header vifd exchanges with TAP devices: the 10-byte legacy layout
// (struct virtio_net_hdr, virtio 1.x spec section 5.1.6) without num_buffers,
// since vifd never negotiates VIRTIO_NET_F_MRG_RXBUF. Defined here because
// <linux/virtio_net.h> does not compile as C++ (a field named `class`).
// The 16-bit fields are little-endian on the wire (TapDevice sets
// TUNSETVNETLE); the conversions below do the byte swapping.
struct VirtioNetHdr {
  std::uint8_t flags;
  std::uint8_t gso_type;
  std::uint16_t hdr_len;
  std::uint16_t gso_size;
  std::uint16_t csum_start;
  std::uint16_t csum_offset;
};
inline constexpr std::size_t kVirtioNetHdrSize = sizeof(VirtioNetHdr);
static_assert(kVirtioNetHdrSize == 10);

inline constexpr std::uint8_t kVirtioNetHdrFNeedsCsum = 1;  // VIRTIO_NET_HDR_F_NEEDS_CSUM
inline constexpr std::uint8_t kVirtioNetHdrFDataValid = 2;  // VIRTIO_NET_HDR_F_DATA_VALID
inline constexpr std::uint8_t kVirtioNetHdrGsoNone = 0;     // VIRTIO_NET_HDR_GSO_NONE
inline constexpr std::uint8_t kVirtioNetHdrGsoTcpv4 = 1;    // VIRTIO_NET_HDR_GSO_TCPV4
inline constexpr std::uint8_t kVirtioNetHdrGsoUdp = 3;      // VIRTIO_NET_HDR_GSO_UDP
inline constexpr std::uint8_t kVirtioNetHdrGsoTcpv6 = 4;    // VIRTIO_NET_HDR_GSO_TCPV6
inline constexpr std::uint8_t kVirtioNetHdrGsoEcn = 0x80;   // VIRTIO_NET_HDR_GSO_ECN

// Fails with kUnsupportedGsoType (UDP, UFO, ECN), kZeroGsoSize, or
// kChecksumOutOfRange when csum_start + csum_offset + 2 overflows 16 bits.
PacketStatus meta_from_virtio(const VirtioNetHdr& hdr, PacketMeta& out) noexcept;
// Fails with kChecksumNotLocated for a partial checksum whose offsets are
// unknown (run prepare_offload() first).
PacketStatus meta_to_virtio(const PacketMeta& meta, VirtioNetHdr& out) noexcept;

// ---- guest side: netif flags + GSO extra ----------------------------------

// Flags for the first TX request of a packet (frontend -> backend):
// partial -> csum_blank|data_validated (as Linux netfront sends it),
// validated -> data_validated, GSO -> extra_info. The caller adds more_data.
std::uint16_t netif_tx_flags(const PacketMeta& meta) noexcept;
// Flags for the first RX response of a packet (backend -> frontend), same
// mapping with NETRXF_* bits (as Linux netback sends it).
std::uint16_t netif_rx_flags(const PacketMeta& meta) noexcept;

// Fills a GSO extra-info slot for meta (which must have gso_type != none):
// type GSO, flags 0 (the caller sets XEN_NETIF_EXTRA_FLAG_MORE when another
// extra follows), size, type, pad and features zeroed.
void fill_gso_extra(const PacketMeta& meta, netif_extra_info& out) noexcept;

// Decode a packet's metadata from its first request/response flags and the
// GSO extra that came with it (nullptr when none). The result is `partial`
// but not located when csum_blank is set. `gso_extra` must already be a copy
// out of the shared ring (the caller copies once, then validates).
PacketStatus meta_from_netif_tx(std::uint16_t flags, const netif_extra_info* gso_extra,
                                PacketMeta& out) noexcept;
PacketStatus meta_from_netif_rx(std::uint16_t flags, const netif_extra_info* gso_extra,
                                PacketMeta& out) noexcept;

// ---- frame parsing and software checksums ----------------------------------

struct ChecksumLocation {
  std::uint16_t csum_start = 0;   // offset of the L4 header in the frame
  std::uint16_t csum_offset = 0;  // 16 for TCP, 6 for UDP
  std::uint16_t header_len = 0;   // end of the L4 header (TCP options included)
  std::uint8_t ip_version = 0;    // 4 or 6
  std::uint8_t l4_protocol = 0;   // IPPROTO_TCP or IPPROTO_UDP
};

// Finds the L4 checksum field of an Ethernet frame: Ethernet with at most one
// 802.1Q/802.1ad tag, IPv4 (options allowed, fragments refused) or IPv6
// (hop-by-hop, routing, destination-options and AH headers skipped; a
// fragment header refused), then a complete TCP or UDP header. The IP total
// length must fit in the frame (trailing Ethernet padding is allowed).
PacketStatus locate_checksum(std::span<const std::uint8_t> frame, ChecksumLocation& out) noexcept;
// The same when only the first bytes of a frame of `frame_length` bytes are
// at hand (the switch's copy of a frame's headers): the lengths the headers
// declare are checked against frame_length, every byte read lies in
// `headers`, and the whole L4 header must be in it. kTruncated when
// `headers` ends too early, whether or not the frame does.
PacketStatus locate_checksum(std::span<const std::uint8_t> headers, std::size_t frame_length,
                             ChecksumLocation& out) noexcept;

// The 16-bit ones' complement sum (RFC 1071) of bytes, not complemented,
// in network byte order as a host integer.
std::uint16_t ones_complement_sum(std::span<const std::uint8_t> bytes) noexcept;

// Completes a CHECKSUM_PARTIAL frame: the field at csum_start + csum_offset
// holds the folded pseudo-header sum; sums from csum_start to the end of the
// frame (exactly as Linux's skb_checksum_help) and stores the complement,
// writing 0xffff for a zero result (0 would mean "no checksum" to UDP).
PacketStatus finish_checksum(std::span<std::uint8_t> frame, std::uint16_t csum_start,
                             std::uint16_t csum_offset) noexcept;

// Stores the folded pseudo-header sum (addresses, protocol, L4 length = bytes
// from csum_start to the end of the frame) in the checksum field: what a
// CHECKSUM_PARTIAL sender leaves there. Used when a GSO frame arrives without
// csum_blank (Linux netback recomputes it the same way) and by tests.
PacketStatus seed_pseudo_header_checksum(std::span<std::uint8_t> frame,
                                         const ChecksumLocation& where) noexcept;

// Makes meta usable by a consumer that needs offsets (a TAP, or software
// checksumming): for a partial checksum that is not located, or for any GSO
// frame, parses the frame, checks that GSO matches TCP over the right IP
// version, fills csum_start/csum_offset and hdr_len. A GSO frame without a
// partial checksum becomes partial with the pseudo-header sum seeded into the
// frame (netback's "recalculate_partial_csum").
PacketStatus prepare_offload(std::span<std::uint8_t> frame, PacketMeta& meta) noexcept;
// The same on the first bytes of a frame (see locate_checksum above); a seeded
// pseudo-header sum is written into `headers`.
PacketStatus prepare_offload(std::span<std::uint8_t> headers, std::size_t frame_length,
                             PacketMeta& meta) noexcept;

// What the receiving side of a hop has negotiated.
struct PeerOffloads {
  bool csum_ipv4 = false;  // takes partial IPv4 TCP/UDP checksums
  bool csum_ipv6 = false;  // takes partial IPv6 TCP/UDP checksums
  bool tso4 = false;
  bool tso6 = false;
};

// Brings a frame down to what the peer can take: a partial checksum the peer
// cannot take is finished in software (the result is ChecksumState::kNone, as
// after Linux's skb_checksum_help). GSO the peer cannot take is refused with
// kGsoNotSupportedByPeer: vifd does not segment in software, so offloads
// must only be advertised to the sending side when every receiver takes them.
PacketStatus adapt_to_peer(std::span<std::uint8_t> frame, PacketMeta& meta,
                           const PeerOffloads& peer) noexcept;

}  // namespace vifd::net
