#include "tests/net/frame_builder.h"

#include <stdexcept>

namespace vifd::net::testing {
namespace {

void put16(std::vector<std::uint8_t>& bytes, std::size_t at, std::size_t value) {
  bytes[at] = static_cast<std::uint8_t>((value >> 8) & 0xff);
  bytes[at + 1] = static_cast<std::uint8_t>(value & 0xff);
}

}  // namespace

std::uint16_t reference_sum(const std::vector<std::uint8_t>& bytes) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < bytes.size(); i += 2) {
    const std::uint32_t high = bytes[i];
    const std::uint32_t low = i + 1 < bytes.size() ? bytes[i + 1] : 0;
    sum += (high << 8) | low;
    sum = (sum & 0xffff) + (sum >> 16);
  }
  return static_cast<std::uint16_t>(sum);
}

std::size_t checksum_field_offset(const Frame& frame) {
  return frame.l4_offset + (frame.l4_protocol == 17 ? 6 : 16);
}

std::uint16_t checksum_field(const Frame& frame) {
  const std::size_t at = checksum_field_offset(frame);
  return static_cast<std::uint16_t>((frame.bytes[at] << 8) | frame.bytes[at + 1]);
}

std::uint16_t reference_l4_checksum(const Frame& frame, std::size_t end) {
  const auto& b = frame.bytes;
  const bool ipv4 = (b.at(frame.ip_offset) >> 4) == 4;
  const std::size_t l4_length = end - frame.l4_offset;
  // The pseudo-header, laid out field by field as RFC 793 / RFC 8200 draw it.
  std::vector<std::uint8_t> data;
  if (ipv4) {
    data.resize(12, 0);
    for (std::size_t i = 0; i < 8; ++i) data.at(i) = b.at(frame.ip_offset + 12 + i);
    data.at(9) = frame.l4_protocol;
    data.at(10) = static_cast<std::uint8_t>(l4_length >> 8);
    data.at(11) = static_cast<std::uint8_t>(l4_length & 0xff);
  } else {
    data.resize(40, 0);
    for (std::size_t i = 0; i < 32; ++i) data.at(i) = b.at(frame.ip_offset + 8 + i);
    for (std::size_t i = 0; i < 4; ++i) {
      data.at(32 + i) = static_cast<std::uint8_t>((l4_length >> (24 - 8 * i)) & 0xff);
    }
    data.at(39) = frame.l4_protocol;
  }
  const std::size_t pseudo_len = data.size();
  for (std::size_t i = frame.l4_offset; i < end; ++i) data.push_back(b.at(i));
  const std::size_t field = pseudo_len + checksum_field_offset(frame) - frame.l4_offset;
  data.at(field) = 0;
  data.at(field + 1) = 0;
  std::uint16_t checksum = static_cast<std::uint16_t>(~reference_sum(data));
  if (checksum == 0) checksum = 0xffff;
  return checksum;
}

Frame build_frame(const FrameSpec& spec) {
  Frame frame;
  auto& b = frame.bytes;
  // Ethernet: locally administered addresses.
  const bool ipv4 = spec.ip_version == 4;
  b.assign(spec.vlan ? 18 : 14, 0);
  b.at(0) = 0x02;
  b.at(5) = 0x02;
  b.at(6) = 0x02;
  b.at(11) = 0x01;
  if (spec.vlan) {
    b.at(12) = 0x81;
    b.at(15) = 0x2a;  // VLAN 42
  }
  b.at(b.size() - 2) = ipv4 ? 0x08 : 0x86;
  b.at(b.size() - 1) = ipv4 ? 0x00 : 0xdd;
  frame.ip_offset = b.size();

  const bool tcp = spec.l4_protocol == 6;
  const bool udp = spec.l4_protocol == 17;
  frame.l4_protocol = spec.l4_protocol;
  frame.l4_header_len = tcp ? 20 + spec.tcp_options : 8;
  const std::size_t l4_length = frame.l4_header_len + spec.payload;
  if (ipv4) {
    const std::size_t header_len = 20 + spec.ipv4_options;
    b.resize(b.size() + header_len, 0);
    b[frame.ip_offset] = static_cast<std::uint8_t>(0x40 | (header_len / 4));
    put16(b, frame.ip_offset + 2, header_len + l4_length);
    b[frame.ip_offset + 6] = 0x40;  // don't fragment
    b[frame.ip_offset + 8] = 64;
    b[frame.ip_offset + 9] = spec.l4_protocol;
    const std::uint8_t addresses[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    for (std::size_t i = 0; i < 8; ++i) b[frame.ip_offset + 12 + i] = addresses[i];
    for (std::size_t i = 0; i < spec.ipv4_options; ++i) b[frame.ip_offset + 20 + i] = 1;  // NOP
    std::vector<std::uint8_t> header(b.begin() + static_cast<long>(frame.ip_offset), b.end());
    put16(b, frame.ip_offset + 10, static_cast<std::uint16_t>(~reference_sum(header)));
  } else {
    const std::size_t extensions = spec.ipv6_extensions.size() * 8;
    b.resize(b.size() + 40 + extensions, 0);
    b[frame.ip_offset] = 0x60;
    put16(b, frame.ip_offset + 4, extensions + l4_length);
    b[frame.ip_offset + 6] =
        spec.ipv6_extensions.empty() ? spec.l4_protocol : spec.ipv6_extensions.front();
    b[frame.ip_offset + 7] = 64;
    for (std::size_t i = 0; i < 16; ++i) {
      b[frame.ip_offset + 8 + i] = static_cast<std::uint8_t>(0xf0 + i);
      b[frame.ip_offset + 24 + i] = static_cast<std::uint8_t>(0x20 + i);
    }
    for (std::size_t i = 0; i < spec.ipv6_extensions.size(); ++i) {
      const std::size_t at = frame.ip_offset + 40 + i * 8;
      b[at] = i + 1 < spec.ipv6_extensions.size() ? spec.ipv6_extensions[i + 1] : spec.l4_protocol;
      // Length byte 0: 8 bytes both for the 8-byte-unit headers ((0 + 1) * 8)
      // and for AH, counted in 4-byte words minus 2 ((0 + 2) * 4).
      b[at + 1] = 0;
    }
  }
  frame.l4_offset = b.size();
  b.resize(b.size() + l4_length, 0);
  if (tcp) {
    put16(b, frame.l4_offset, 40000);
    put16(b, frame.l4_offset + 2, 5001);
    b[frame.l4_offset + 12] = static_cast<std::uint8_t>((frame.l4_header_len / 4) << 4);
    b[frame.l4_offset + 13] = 0x18;  // PSH|ACK
    for (std::size_t i = 0; i < spec.tcp_options; ++i) b[frame.l4_offset + 20 + i] = 1;
  } else if (udp) {
    put16(b, frame.l4_offset, 40000);
    put16(b, frame.l4_offset + 2, 5001);
    put16(b, frame.l4_offset + 4, l4_length);
  }
  for (std::size_t i = 0; i < spec.payload; ++i) {
    b[frame.l4_offset + frame.l4_header_len + i] = static_cast<std::uint8_t>(i * 7 + 3);
  }
  frame.ip_end = b.size();
  if (tcp || udp) {
    put16(b, checksum_field_offset(frame), reference_l4_checksum(frame, frame.ip_end));
  }
  b.resize(b.size() + spec.ethernet_padding, 0);
  return frame;
}

}  // namespace vifd::net::testing
