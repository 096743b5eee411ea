#include "frontend/lib/bench/frame.h"

#include <fmt/format.h>

#include <atomic>
#include <cstring>
#include <stdexcept>

namespace vifd::bench {
namespace {

constexpr std::uint16_t kEtherTypeIpv4 = 0x0800;
constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
// The marks of a vif-bench frame: IPv4 identification "VB" and TTL 0x42.
constexpr std::uint16_t kIpId = 0x5642;
constexpr std::uint8_t kTtl = 0x42;
constexpr std::size_t kIpOffset = 14;
constexpr std::size_t kL4Offset = kIpOffset + 20;
constexpr std::uint16_t kSourcePort = 0x5642;
constexpr std::uint16_t kDiscardPort = 9;

void put16(std::uint8_t* at, std::uint16_t value) {
  at[0] = static_cast<std::uint8_t>(value >> 8);
  at[1] = static_cast<std::uint8_t>(value);
}

std::uint16_t get16(const std::uint8_t* at) {
  return static_cast<std::uint16_t>((at[0] << 8) | at[1]);
}

std::uint32_t sum16(const std::uint8_t* data, std::size_t length, std::uint32_t sum) {
  for (std::size_t i = 0; i + 1 < length; i += 2) {
    sum += get16(data + i);
  }
  if (length % 2 != 0) {
    sum += static_cast<std::uint32_t>(data[length - 1]) << 8;
  }
  return sum;
}

std::uint16_t fold(std::uint32_t sum) {
  while ((sum >> 16) != 0) {
    sum = (sum & 0xffffU) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(sum);
}

}  // namespace

Frame build_frame(const FrameSpec& spec) {
  if (spec.length < kMinFrame || spec.length > kMaxFrame) {
    throw std::invalid_argument(
        fmt::format("frame size {} outside [{}, {}]", spec.length, kMinFrame, kMaxFrame));
  }
  if (spec.gso && spec.length < kGsoHeaderBytes + kGsoMss + 1) {
    throw std::invalid_argument(
        fmt::format("a GSO frame of {} bytes carries less than two segments", spec.length));
  }
  static std::atomic<std::uint64_t> next_id{1};
  Frame frame;
  frame.id = next_id.fetch_add(1, std::memory_order_relaxed);
  frame.bytes.resize(spec.length);
  std::uint8_t* p = frame.bytes.data();
  std::memcpy(p, spec.destination.octets.data(), 6);
  std::memcpy(p + 6, spec.source.octets.data(), 6);
  put16(p + 12, kEtherTypeIpv4);

  std::uint8_t* ip = p + kIpOffset;
  const auto ip_length = static_cast<std::uint16_t>(spec.length - kIpOffset);
  ip[0] = 0x45;
  put16(ip + 2, ip_length);
  put16(ip + 4, kIpId);
  put16(ip + 6, 0x4000);  // DF
  ip[8] = kTtl;
  ip[9] = spec.gso ? kProtoTcp : kProtoUdp;
  // 10.99.0.200 -> 10.99.0.250: outside every address the scripts assign.
  const std::uint8_t source_ip[4] = {10, 99, 0, 200};
  const std::uint8_t destination_ip[4] = {10, 99, 0, 250};
  std::memcpy(ip + 12, source_ip, 4);
  std::memcpy(ip + 16, destination_ip, 4);
  put16(ip + 10, static_cast<std::uint16_t>(~fold(sum16(ip, 20, 0))));

  std::uint8_t* l4 = p + kL4Offset;
  const auto l4_length = static_cast<std::uint16_t>(spec.length - kL4Offset);
  put16(l4, static_cast<std::uint16_t>(kSourcePort + spec.flow));
  put16(l4 + 2, kDiscardPort);
  const std::size_t payload = sequence_offset(spec.gso) + 8;
  for (std::size_t i = payload; i < spec.length; ++i) {
    p[i] = static_cast<std::uint8_t>(i);
  }
  if (spec.gso) {
    l4[12] = 5 << 4;  // data offset: 20 bytes
    l4[13] = 0x18;    // PSH, ACK
    put16(l4 + 14, 0xffff);
    // Partial checksum: the pseudo-header sum, as a stack hands it to a
    // device that completes it (and segments the frame).
    std::uint32_t pseudo = sum16(ip + 12, 8, 0) + kProtoTcp + l4_length;
    put16(l4 + 16, fold(pseudo));
    frame.meta.checksum = net::ChecksumState::kPartial;
    frame.meta.csum_located = true;
    frame.meta.csum_start = static_cast<std::uint16_t>(kL4Offset);
    frame.meta.csum_offset = 16;
    frame.meta.gso_type = net::GsoType::kTcpv4;
    frame.meta.gso_size = kGsoMss;
    frame.meta.hdr_len = static_cast<std::uint16_t>(kGsoHeaderBytes);
  } else {
    put16(l4 + 4, l4_length);  // UDP checksum 0: none (IPv4)
  }
  return frame;
}

std::size_t sequence_offset(bool gso) noexcept {
  return gso ? kGsoHeaderBytes : kL4Offset + 8;
}

void set_sequence(std::span<std::uint8_t> frame, bool gso, std::uint64_t sequence) noexcept {
  const std::size_t at = sequence_offset(gso);
  if (frame.size() >= at + 8) {
    std::memcpy(frame.data() + at, &sequence, 8);
  }
}

bool is_bench_frame(std::span<const std::uint8_t> head) noexcept {
  if (head.size() < kL4Offset) {
    return false;
  }
  const std::uint8_t* ip = head.data() + kIpOffset;
  return get16(head.data() + 12) == kEtherTypeIpv4 && ip[0] == 0x45 && get16(ip + 4) == kIpId &&
         ip[8] == kTtl && (ip[9] == kProtoUdp || ip[9] == kProtoTcp);
}

std::optional<std::uint64_t> frame_sequence(std::span<const std::uint8_t> head) noexcept {
  if (!is_bench_frame(head)) {
    return std::nullopt;
  }
  const std::size_t at = sequence_offset(head[kIpOffset + 9] == kProtoTcp);
  if (head.size() < at + 8) {
    return std::nullopt;
  }
  std::uint64_t sequence = 0;
  std::memcpy(&sequence, head.data() + at, 8);
  return sequence;
}

}  // namespace vifd::bench
