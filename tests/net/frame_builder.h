// Crafted Ethernet frames for the common/net tests, and a deliberately plain
// RFC 1071 checksum to compare the production code against.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vifd::net::testing {

struct FrameSpec {
  int ip_version = 4;
  std::uint8_t l4_protocol = 6;                 // IPPROTO_TCP or IPPROTO_UDP (or anything)
  bool vlan = false;                            // one 802.1Q tag
  std::size_t ipv4_options = 0;                 // bytes, multiple of 4
  std::size_t tcp_options = 0;                  // bytes, multiple of 4
  std::vector<std::uint8_t> ipv6_extensions{};  // next-header codes, 8 bytes each
  std::size_t payload = 64;
  std::size_t ethernet_padding = 0;  // bytes after the IP packet
};

struct Frame {
  std::vector<std::uint8_t> bytes;
  std::size_t ip_offset = 0;
  std::size_t l4_offset = 0;
  std::size_t l4_header_len = 0;
  std::size_t ip_end = 0;  // end of the IP packet (before padding)
  std::uint8_t l4_protocol = 0;
};

// Builds a frame whose L4 checksum field is the correct full checksum.
Frame build_frame(const FrameSpec& spec);

// Sum of big-endian 16-bit words, one at a time, odd byte padded.
std::uint16_t reference_sum(const std::vector<std::uint8_t>& bytes);
// The L4 checksum the frame should carry over [l4_offset, end), computed
// from an explicit pseudo-header; UDP's zero result is sent as 0xffff.
std::uint16_t reference_l4_checksum(const Frame& frame, std::size_t end);
std::uint16_t checksum_field(const Frame& frame);
std::size_t checksum_field_offset(const Frame& frame);

}  // namespace vifd::net::testing
