// The Toeplitz hash against Microsoft's RSS verification suite ("Verifying
// the RSS Hash Calculation"), the vectors netif.h's algorithm must meet: the
// well-known key, input = source address, destination address, then (for the
// TCP variants) source port, destination port, all in network byte order.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "backend/lib/datapath/flow_steering.h"
#include "backend/lib/datapath/toeplitz.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend {
namespace {

constexpr std::array<std::uint8_t, 40> kRssKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

struct RssVector {
  const char* destination;
  std::uint16_t destination_port;
  const char* source;
  std::uint16_t source_port;
  std::uint32_t address_hash;  // addresses only (IPV4 / IPV6)
  std::uint32_t tcp_hash;      // addresses and ports (IPV4_TCP / IPV6_TCP)
};

std::vector<std::uint8_t> address_bytes(int family, const char* text) {
  std::vector<std::uint8_t> bytes(family == AF_INET ? 4 : 16);
  EXPECT_EQ(::inet_pton(family, text, bytes.data()), 1) << text;
  return bytes;
}

void append_port(std::vector<std::uint8_t>& input, std::uint16_t port) {
  input.push_back(static_cast<std::uint8_t>(port >> 8));
  input.push_back(static_cast<std::uint8_t>(port & 0xFF));
}

void check(int family, const RssVector& v) {
  std::vector<std::uint8_t> input = address_bytes(family, v.source);
  const auto destination = address_bytes(family, v.destination);
  input.insert(input.end(), destination.begin(), destination.end());
  EXPECT_EQ(toeplitz_hash(kRssKey, input), v.address_hash) << v.source << " -> " << v.destination;
  append_port(input, v.source_port);
  append_port(input, v.destination_port);
  EXPECT_EQ(toeplitz_hash(kRssKey, input), v.tcp_hash)
      << v.source << ":" << v.source_port << " -> " << v.destination << ":" << v.destination_port;
}

TEST(ToeplitzHash, MatchesTheRssIpv4Vectors) {
  const RssVector vectors[] = {
      {"161.142.100.80", 1766, "66.9.149.187", 2794, 0x323e8fc2, 0x51ccc178},
      {"65.69.140.83", 4739, "199.92.111.2", 14230, 0xd718262a, 0xc626b0ea},
      {"12.22.207.184", 38024, "24.19.198.95", 12898, 0xd2d0a5de, 0x5c2b394a},
      {"209.142.163.6", 2217, "38.27.205.30", 48228, 0x82989176, 0xafc7327f},
      {"202.188.127.2", 1303, "153.39.163.191", 44251, 0x5d1809c5, 0x10e828a2},
  };
  for (const auto& v : vectors) check(AF_INET, v);
}

TEST(ToeplitzHash, MatchesTheRssIpv6Vectors) {
  const RssVector vectors[] = {
      {"3ffe:2501:200:3::1", 1766, "3ffe:2501:200:1fff::7", 2794, 0x2cc18cd5, 0x40207d3d},
      {"ff02::1", 4739, "3ffe:501:8::260:97ff:fe40:efab", 14230, 0x0f0c461c, 0xdde51bbf},
      {"fe80::200:f8ff:fe21:67cf", 38024, "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 44251, 0x4b61e985,
       0x02d1feef},
  };
  for (const auto& v : vectors) check(AF_INET6, v);
}

TEST(ToeplitzHash, MissingKeyOctetsCountAsZero) {
  const std::array<std::uint8_t, 12> input = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  // netif.h: a zero-size key makes every hash zero.
  EXPECT_EQ(toeplitz_hash({}, input), 0U);
  // A short key hashes as that key padded with zero octets.
  std::array<std::uint8_t, 40> padded{};
  for (std::size_t i = 0; i < 5; ++i) padded[i] = kRssKey[i];
  EXPECT_EQ(toeplitz_hash(std::span(kRssKey).first(5), input), toeplitz_hash(padded, input));
  EXPECT_NE(toeplitz_hash(padded, input), 0U);
}

// An Ethernet + IPv4 + TCP header for the first RSS vector.
std::vector<std::uint8_t> ipv4_tcp_frame() {
  std::vector<std::uint8_t> frame(14 + 20 + 20, 0);
  frame[12] = 0x08;   // IPv4
  frame[14] = 0x45;   // version 4, 20-byte header
  frame[14 + 9] = 6;  // TCP
  const auto source = address_bytes(AF_INET, "66.9.149.187");
  const auto destination = address_bytes(AF_INET, "161.142.100.80");
  std::copy(source.begin(), source.end(), frame.begin() + 14 + 12);
  std::copy(destination.begin(), destination.end(), frame.begin() + 14 + 16);
  frame[34] = 2794 >> 8;
  frame[35] = 2794 & 0xFF;
  frame[36] = 1766 >> 8;
  frame[37] = 1766 & 0xFF;
  return frame;
}

HashSnapshot toeplitz(std::uint32_t flags) {
  HashSnapshot hash;
  hash.toeplitz = true;
  hash.flags = flags;
  hash.key.assign(kRssKey.begin(), kRssKey.end());
  return hash;
}

TEST(FlowSteering, HashesTheFlowTheFrontendAskedFor) {
  const auto frame = ipv4_tcp_frame();
  // 0x51ccc178 (addresses and ports) and 0x323e8fc2 (addresses only).
  EXPECT_EQ(steer(toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP), frame, 4), 0x51ccc178U % 4);
  EXPECT_EQ(steer(toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4), frame, 3), 0x323e8fc2U % 3);
  // The mapping table decides the queue.
  HashSnapshot mapped = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
  mapped.mapping = {3, 2, 1, 0, 3, 2, 1, 0};
  EXPECT_EQ(steer(mapped, frame, 4), mapped.mapping[0x51ccc178U % 8]);
}

TEST(FlowSteering, LeavesUncoveredFramesToTheCaller) {
  const auto frame = ipv4_tcp_frame();
  EXPECT_EQ(steer(HashSnapshot{}, frame, 4), std::nullopt) << "no algorithm";
  EXPECT_EQ(steer(toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV6), frame, 4), std::nullopt)
      << "IPv4 not enabled";
  EXPECT_EQ(steer(toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP), std::span(frame).first(30), 4),
            std::nullopt)
      << "truncated IPv4 header";
  HashSnapshot mapped = toeplitz(XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP);
  mapped.mapping = {3};
  EXPECT_EQ(steer(mapped, frame, 2), std::nullopt) << "queue 3 of a port with 2";
}

}  // namespace
}  // namespace vifd::backend
