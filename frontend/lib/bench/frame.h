// The frames vif-bench sends: Ethernet + IPv4 + UDP (or TCP for a GSO
// frame) with a recognisable IPv4 identification and TTL, so a sink counts
// only its own frames and not the kernel's chatter on a bridge or TAP
// (router solicitations, ARP). The IPv4 destination is an address nobody
// owns: a frame that reaches dom0's IP stack is dropped at the route
// lookup instead of being answered.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/net/packet_meta.h"
#include "common/protocol/mac_address.h"

namespace vifd::bench {

// Ethernet + IPv4 + TCP, the headers of a GSO frame.
inline constexpr std::size_t kGsoHeaderBytes = 14 + 20 + 20;
// Ethernet + IPv4 + UDP + the 8-byte sequence number: the smallest frame.
inline constexpr std::size_t kMinFrame = 14 + 20 + 8 + 8;
// netif's size field is 16 bits.
inline constexpr std::size_t kMaxFrame = 65535;
// Segment size of a GSO frame: what a 1500-byte MTU TCP stream carries.
inline constexpr std::uint16_t kGsoMss = 1448;

struct FrameSpec {
  protocol::MacAddress destination;
  protocol::MacAddress source;
  std::size_t length = 64;  // Ethernet frame without FCS
  bool gso = false;         // TCPv4 GSO with a partial checksum (length > MTU)
  std::uint16_t flow = 0;   // source port offset: separates queues' flows
};

struct Frame {
  std::vector<std::uint8_t> bytes;
  net::PacketMeta meta;  // GSO and partial checksum for a GSO frame
  // Unique per build_frame() call in this process: a sender may keep
  // pages that already hold this frame's bytes instead of copying them.
  std::uint64_t id = 0;
};

// Builds the frame; throws std::invalid_argument when the length is outside
// [kMinFrame, kMaxFrame] or a GSO frame is too short to carry one segment.
Frame build_frame(const FrameSpec& spec);

// Where the sequence number sits in a frame of this kind.
std::size_t sequence_offset(bool gso) noexcept;
// Writes `sequence` into a frame built by build_frame.
void set_sequence(std::span<std::uint8_t> frame, bool gso, std::uint64_t sequence) noexcept;

// Whether `head` (the first bytes of a received frame, at least kMinFrame
// of them for a sequence number) is one of ours; its sequence number when
// it is.
bool is_bench_frame(std::span<const std::uint8_t> head) noexcept;
std::optional<std::uint64_t> frame_sequence(std::span<const std::uint8_t> head) noexcept;

}  // namespace vifd::bench
