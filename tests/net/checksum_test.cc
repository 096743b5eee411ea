// Frame parsing and software checksums: crafted frames, every truncation,
// random and mutated bytes (run under ASan to catch any read past the span).
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "common/net/packet_meta.h"
#include "tests/net/frame_builder.h"

namespace vifd::net {
namespace {

using vifd::net::testing::build_frame;
using vifd::net::testing::checksum_field;
using vifd::net::testing::checksum_field_offset;
using vifd::net::testing::Frame;
using vifd::net::testing::FrameSpec;
using vifd::net::testing::reference_l4_checksum;
using vifd::net::testing::reference_sum;

struct NamedSpec {
  const char* name;
  FrameSpec spec;
};

std::vector<NamedSpec> valid_specs() {
  std::vector<NamedSpec> specs;
  specs.push_back({"ipv4_tcp", {}});
  specs.push_back({"ipv4_udp", {.l4_protocol = IPPROTO_UDP}});
  specs.push_back({"ipv4_tcp_vlan", {.vlan = true}});
  specs.push_back({"ipv4_udp_vlan", {.l4_protocol = IPPROTO_UDP, .vlan = true}});
  specs.push_back({"ipv4_options_tcp_options", {.ipv4_options = 12, .tcp_options = 12}});
  specs.push_back({"ipv4_max_options", {.ipv4_options = 40, .tcp_options = 40}});
  specs.push_back({"ipv4_odd_payload", {.payload = 33}});
  specs.push_back({"ipv4_padded", {.payload = 2, .ethernet_padding = 12}});
  specs.push_back({"ipv6_tcp", {.ip_version = 6}});
  specs.push_back({"ipv6_udp", {.ip_version = 6, .l4_protocol = IPPROTO_UDP}});
  specs.push_back({"ipv6_tcp_vlan", {.ip_version = 6, .vlan = true}});
  specs.push_back(
      {"ipv6_extensions_tcp",
       {.ip_version = 6, .ipv6_extensions = {IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS}}});
  specs.push_back({"ipv6_ah_udp",
                   {.ip_version = 6,
                    .l4_protocol = IPPROTO_UDP,
                    .ipv6_extensions = {IPPROTO_DSTOPTS, IPPROTO_AH}}});
  specs.push_back({"ipv6_large", {.ip_version = 6, .payload = 9000}});
  return specs;
}

bool checksum_verifies(const Frame& frame) {
  return checksum_field(frame) == reference_l4_checksum(frame, frame.ip_end);
}

TEST(LocateChecksum, FindsTheL4HeaderOfEveryCraftedFrame) {
  for (const auto& [name, spec] : valid_specs()) {
    SCOPED_TRACE(name);
    const Frame frame = build_frame(spec);
    ChecksumLocation where;
    ASSERT_EQ(locate_checksum(frame.bytes, where), PacketStatus::kOk);
    EXPECT_EQ(where.csum_start, frame.l4_offset);
    EXPECT_EQ(where.csum_offset, spec.l4_protocol == IPPROTO_TCP ? 16 : 6);
    EXPECT_EQ(where.header_len, frame.l4_offset + frame.l4_header_len);
    EXPECT_EQ(where.ip_version, spec.ip_version);
    EXPECT_EQ(where.l4_protocol, spec.l4_protocol);
    EXPECT_TRUE(checksum_verifies(frame));
  }
}

TEST(LocateChecksum, ExplainsWhyAFrameHasNoChecksumToLocate) {
  struct Case {
    const char* name;
    Frame frame;
    PacketStatus expected;
  };
  std::vector<Case> cases;
  {
    Frame f = build_frame({});
    f.bytes[12] = 0x08;
    f.bytes[13] = 0x06;  // ARP
    cases.push_back({"arp", f, PacketStatus::kUnknownEthertype});
  }
  {
    Frame f = build_frame({.vlan = true});
    f.bytes[16] = 0x81;
    f.bytes[17] = 0x00;  // a second tag
    cases.push_back({"double_vlan", f, PacketStatus::kUnknownEthertype});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset] = 0x65;  // version 6 in an IPv4 ethertype
    cases.push_back({"ipv4_wrong_version", f, PacketStatus::kBadIpHeader});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset] = 0x44;  // IHL 4 words
    cases.push_back({"ipv4_short_ihl", f, PacketStatus::kBadIpHeader});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset + 2] = 0;
    f.bytes[f.ip_offset + 3] = 10;  // total length below the header
    cases.push_back({"ipv4_short_total_length", f, PacketStatus::kBadIpHeader});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset + 2] = 0xff;  // total length past the frame
    cases.push_back({"ipv4_long_total_length", f, PacketStatus::kTruncated});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset + 6] = 0x20;  // more fragments
    cases.push_back({"ipv4_more_fragments", f, PacketStatus::kIpFragment});
  }
  {
    Frame f = build_frame({});
    f.bytes[f.ip_offset + 6] = 0x00;
    f.bytes[f.ip_offset + 7] = 0x08;  // fragment offset 64
    cases.push_back({"ipv4_fragment_offset", f, PacketStatus::kIpFragment});
  }
  cases.push_back({"ipv4_icmp", build_frame({.l4_protocol = IPPROTO_ICMP}),
                   PacketStatus::kUnsupportedL4Protocol});
  {
    Frame f = build_frame({});
    f.bytes[f.l4_offset + 12] = 0x40;  // data offset 4 words
    cases.push_back({"tcp_short_data_offset", f, PacketStatus::kBadL4Header});
  }
  {
    Frame f = build_frame({.payload = 0});
    f.bytes[f.l4_offset + 12] = 0xf0;  // 60-byte header in a 20-byte segment
    cases.push_back({"tcp_options_past_end", f, PacketStatus::kTruncated});
  }
  cases.push_back({"ipv6_fragment",
                   build_frame({.ip_version = 6, .ipv6_extensions = {IPPROTO_FRAGMENT}}),
                   PacketStatus::kIpFragment});
  cases.push_back(
      {"ipv6_fragment_after_hopopts",
       build_frame({.ip_version = 6, .ipv6_extensions = {IPPROTO_HOPOPTS, IPPROTO_FRAGMENT}}),
       PacketStatus::kIpFragment});
  {
    Frame f = build_frame({.ip_version = 6, .ipv6_extensions = {IPPROTO_ROUTING}});
    f.bytes[f.ip_offset + 41] = 200;  // extension length past the payload
    cases.push_back({"ipv6_extension_too_long", f, PacketStatus::kTruncated});
  }
  {
    Frame f = build_frame({.ip_version = 6});
    f.bytes[f.ip_offset] = 0x40;
    cases.push_back({"ipv6_wrong_version", f, PacketStatus::kBadIpHeader});
  }
  {
    Frame f = build_frame({.ip_version = 6, .payload = 4, .ethernet_padding = 40});
    f.bytes[f.ip_offset + 4] = 0;
    f.bytes[f.ip_offset + 5] = 4;  // payload length shorter than the TCP header
    cases.push_back({"ipv6_payload_shorter_than_tcp", f, PacketStatus::kTruncated});
  }
  {
    Frame f = build_frame({.payload = 4, .ethernet_padding = 40});
    f.bytes[f.ip_offset + 2] = 0;
    f.bytes[f.ip_offset + 3] = 30;  // the TCP header would end in the padding
    cases.push_back({"ipv4_total_length_shorter_than_tcp", f, PacketStatus::kTruncated});
  }
  cases.push_back({"ipv6_no_next_header", build_frame({.ip_version = 6, .l4_protocol = 59}),
                   PacketStatus::kUnsupportedL4Protocol});
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    ChecksumLocation where;
    where.csum_start = 99;
    EXPECT_EQ(locate_checksum(c.frame.bytes, where), c.expected)
        << to_string(locate_checksum(c.frame.bytes, where));
    EXPECT_EQ(where.csum_start, 99) << "the output is only written on success";
  }
}

TEST(LocateChecksum, EveryTruncationIsRejectedWithoutReadingPastTheSpan) {
  for (const auto& [name, spec] : valid_specs()) {
    SCOPED_TRACE(name);
    const Frame frame = build_frame(spec);
    for (std::size_t length = 0; length < frame.ip_end; ++length) {
      // An exact-size heap copy: ASan reports any read past its end.
      std::vector<std::uint8_t> truncated(frame.bytes.begin(),
                                          frame.bytes.begin() + static_cast<long>(length));
      ChecksumLocation where;
      EXPECT_NE(locate_checksum(truncated, where), PacketStatus::kOk) << "length " << length;
      PacketMeta meta;
      meta.checksum = ChecksumState::kPartial;
      EXPECT_NE(prepare_offload(truncated, meta), PacketStatus::kOk) << "length " << length;
    }
  }
}

TEST(LocateChecksum, OnTheFirstBytesFindsWhatTheWholeFrameGives) {
  for (const auto& [name, spec] : valid_specs()) {
    SCOPED_TRACE(name);
    const Frame frame = build_frame(spec);
    ChecksumLocation whole;
    ASSERT_EQ(locate_checksum(frame.bytes, whole), PacketStatus::kOk);
    for (std::size_t length = 0; length <= frame.bytes.size(); ++length) {
      // An exact-size heap copy of the start: ASan reports any read past it.
      const std::vector<std::uint8_t> headers(frame.bytes.begin(),
                                              frame.bytes.begin() + static_cast<long>(length));
      ChecksumLocation where;
      const PacketStatus status = locate_checksum(headers, frame.bytes.size(), where);
      if (length < whole.header_len) {
        EXPECT_EQ(status, PacketStatus::kTruncated) << "length " << length;
        continue;
      }
      ASSERT_EQ(status, PacketStatus::kOk) << "length " << length;
      EXPECT_EQ(where.csum_start, whole.csum_start);
      EXPECT_EQ(where.header_len, whole.header_len);
    }
    // Lengths the headers declare are still checked against the frame.
    ChecksumLocation where;
    EXPECT_EQ(
        locate_checksum(std::span(frame.bytes).first(whole.header_len), frame.ip_end - 1, where),
        PacketStatus::kTruncated);
  }
}

TEST(PrepareOffload, OnTheFirstBytesSeedsWhatTheWholeFrameWouldGet) {
  Frame frame = build_frame({.payload = 4000});
  std::vector<std::uint8_t> whole = frame.bytes;
  PacketMeta whole_meta;
  whole_meta.gso_type = GsoType::kTcpv4;
  whole_meta.gso_size = 1448;
  ASSERT_EQ(prepare_offload(whole, whole_meta), PacketStatus::kOk);
  std::vector<std::uint8_t> headers(frame.bytes.begin(), frame.bytes.begin() + 128);
  PacketMeta meta;
  meta.gso_type = GsoType::kTcpv4;
  meta.gso_size = 1448;
  ASSERT_EQ(prepare_offload(headers, frame.bytes.size(), meta), PacketStatus::kOk);
  EXPECT_EQ(meta, whole_meta);
  EXPECT_TRUE(std::equal(headers.begin(), headers.end(), whole.begin()));
}

TEST(OnesComplementSum, MatchesTheReferenceForEveryLengthAndAlignment) {
  std::mt19937 random(1071);
  std::vector<std::uint8_t> bytes(300);
  for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
  for (std::size_t offset = 0; offset < 4; ++offset) {
    for (std::size_t length = 0; offset + length <= bytes.size(); ++length) {
      const std::vector<std::uint8_t> slice(bytes.begin() + static_cast<long>(offset),
                                            bytes.begin() + static_cast<long>(offset + length));
      ASSERT_EQ(ones_complement_sum(std::span(bytes).subspan(offset, length)), reference_sum(slice))
          << "offset " << offset << " length " << length;
    }
  }
  const std::vector<std::uint8_t> all_ones(70000, 0xff);
  EXPECT_EQ(ones_complement_sum(all_ones), reference_sum(all_ones));
}

TEST(FinishChecksum, CompletesAPartialChecksumForEveryCraftedFrame) {
  for (const auto& [name, spec] : valid_specs()) {
    SCOPED_TRACE(name);
    if (spec.ethernet_padding != 0) continue;  // a partial checksum covers the whole frame
    Frame frame = build_frame(spec);
    const std::uint16_t expected = checksum_field(frame);
    ChecksumLocation where;
    ASSERT_EQ(locate_checksum(frame.bytes, where), PacketStatus::kOk);
    // What a CHECKSUM_PARTIAL sender hands over: only the pseudo-header sum.
    ASSERT_EQ(seed_pseudo_header_checksum(frame.bytes, where), PacketStatus::kOk);
    EXPECT_NE(checksum_field(frame), expected);
    ASSERT_EQ(finish_checksum(frame.bytes, where.csum_start, where.csum_offset), PacketStatus::kOk);
    EXPECT_EQ(checksum_field(frame), expected);
    EXPECT_TRUE(checksum_verifies(frame));
  }
}

TEST(FinishChecksum, RefusesAFieldOutsideTheFrame) {
  std::vector<std::uint8_t> frame(60, 0);
  EXPECT_EQ(finish_checksum(frame, 50, 9), PacketStatus::kChecksumOutOfRange);
  EXPECT_EQ(finish_checksum(frame, 58, 0), PacketStatus::kOk);
  EXPECT_EQ(finish_checksum(frame, 0xffff, 0xffff), PacketStatus::kChecksumOutOfRange);
}

TEST(PrepareOffload, LocatesANetifPartialChecksum) {
  Frame frame = build_frame({.vlan = true, .ipv4_options = 4});
  PacketMeta meta;
  ASSERT_EQ(meta_from_netif_tx(kNetTxCsumBlank | kNetTxDataValidated, nullptr, meta),
            PacketStatus::kOk);
  ASSERT_EQ(prepare_offload(frame.bytes, meta), PacketStatus::kOk);
  EXPECT_TRUE(meta.csum_located);
  EXPECT_EQ(meta.csum_start, 14 + 4 + 24);
  EXPECT_EQ(meta.csum_offset, 16);
  VirtioNetHdr hdr{};
  EXPECT_EQ(meta_to_virtio(meta, hdr), PacketStatus::kOk);
}

TEST(PrepareOffload, GsoWithoutPartialChecksumGetsThePseudoHeaderSeeded) {
  Frame frame = build_frame({.ip_version = 6, .payload = 4000});
  const std::uint16_t full = checksum_field(frame);
  PacketMeta meta;
  meta.gso_type = GsoType::kTcpv6;
  meta.gso_size = 1440;
  ASSERT_EQ(prepare_offload(frame.bytes, meta), PacketStatus::kOk);
  EXPECT_EQ(meta.checksum, ChecksumState::kPartial);
  EXPECT_EQ(meta.hdr_len, frame.l4_offset + 20);
  ASSERT_EQ(finish_checksum(frame.bytes, meta.csum_start, meta.csum_offset), PacketStatus::kOk);
  EXPECT_EQ(checksum_field(frame), full);
}

TEST(PrepareOffload, RefusesGsoThatDoesNotMatchTheFrame) {
  struct Case {
    FrameSpec spec;
    GsoType gso;
  };
  const Case cases[] = {{{.ip_version = 6}, GsoType::kTcpv4},
                        {{.ip_version = 4}, GsoType::kTcpv6},
                        {{.l4_protocol = IPPROTO_UDP}, GsoType::kTcpv4}};
  for (const Case& c : cases) {
    Frame frame = build_frame(c.spec);
    PacketMeta meta;
    meta.checksum = ChecksumState::kPartial;
    meta.gso_type = c.gso;
    meta.gso_size = 1000;
    EXPECT_EQ(prepare_offload(frame.bytes, meta), PacketStatus::kGsoProtocolMismatch);
  }
}

TEST(AdaptToPeer, FinishesChecksumsThePeerCannotTake) {
  struct Case {
    int ip_version;
    PeerOffloads peer;
    bool finished;
  };
  const Case cases[] = {
      {4, {}, true},
      {6, {}, true},
      {4, {.csum_ipv4 = true}, false},
      {6, {.csum_ipv4 = true}, true},
      {6, {.csum_ipv6 = true}, false},
  };
  for (const Case& c : cases) {
    Frame frame = build_frame({.ip_version = c.ip_version});
    const std::uint16_t full = checksum_field(frame);
    ChecksumLocation where;
    ASSERT_EQ(locate_checksum(frame.bytes, where), PacketStatus::kOk);
    ASSERT_EQ(seed_pseudo_header_checksum(frame.bytes, where), PacketStatus::kOk);
    PacketMeta meta;
    meta.checksum = ChecksumState::kPartial;
    ASSERT_EQ(adapt_to_peer(frame.bytes, meta, c.peer), PacketStatus::kOk);
    if (c.finished) {
      EXPECT_EQ(meta.checksum, ChecksumState::kNone);
      EXPECT_EQ(checksum_field(frame), full);
    } else {
      EXPECT_EQ(meta.checksum, ChecksumState::kPartial);
      EXPECT_TRUE(meta.csum_located);
      EXPECT_NE(checksum_field(frame), full);
    }
  }
}

TEST(AdaptToPeer, RefusesGsoThePeerDidNotNegotiate) {
  Frame frame = build_frame({.payload = 3000});
  PacketMeta meta;
  meta.checksum = ChecksumState::kPartial;
  meta.gso_type = GsoType::kTcpv4;
  meta.gso_size = 1448;
  EXPECT_EQ(adapt_to_peer(frame.bytes, meta, {.csum_ipv4 = true, .tso6 = true}),
            PacketStatus::kGsoNotSupportedByPeer);
  EXPECT_EQ(adapt_to_peer(frame.bytes, meta, {.csum_ipv4 = true, .tso4 = true}), PacketStatus::kOk);
}

// Random bytes, and valid frames with random bytes changed: every function
// that parses a frame must return a status and stay inside the span.
TEST(HostileFrames, RandomAndMutatedBytesNeverEscapeTheSpan) {
  std::mt19937 random(20240611);
  std::vector<Frame> seeds;
  for (const auto& named : valid_specs()) seeds.push_back(build_frame(named.spec));
  int located = 0;
  for (int round = 0; round < 40000; ++round) {
    std::vector<std::uint8_t> bytes;
    if (round % 2 == 0) {
      bytes.resize(random() % 160);
      for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
      // Steer half of the random frames past the Ethernet header.
      if (bytes.size() >= 15 && round % 4 == 0) {
        const bool v4 = (random() % 2) == 0;
        bytes[12] = v4 ? 0x08 : 0x86;
        bytes[13] = v4 ? 0x00 : 0xdd;
        bytes[14] = static_cast<std::uint8_t>((v4 ? 0x40 : 0x60) | (bytes[14] & 0x0f));
      }
    } else {
      const Frame& seed = seeds[random() % seeds.size()];
      // Mostly whole frames (to reach the deeper headers), sometimes cut.
      const std::size_t length =
          round % 8 == 1 ? random() % (seed.bytes.size() + 1) : seed.bytes.size();
      bytes.assign(seed.bytes.begin(), seed.bytes.begin() + static_cast<long>(length));
      const int flips = 1 + static_cast<int>(random() % 4);
      for (int i = 0; i < flips && !bytes.empty(); ++i) {
        bytes[random() % std::min<std::size_t>(bytes.size(), 120)] =
            static_cast<std::uint8_t>(random());
      }
    }
    ChecksumLocation where;
    if (locate_checksum(bytes, where) == PacketStatus::kOk) {
      ++located;
      ASSERT_LE(std::size_t{where.csum_start} + where.csum_offset + 2, bytes.size());
      ASSERT_LE(where.header_len, bytes.size());
    }
    PacketMeta meta;
    meta.checksum = ChecksumState::kPartial;
    meta.gso_type = static_cast<GsoType>(random() % 3);
    meta.gso_size = meta.gso_type == GsoType::kNone ? 0 : 1000;
    const PeerOffloads peer{.csum_ipv4 = (random() % 2) == 0,
                            .csum_ipv6 = (random() % 2) == 0,
                            .tso4 = true,
                            .tso6 = true};
    if (adapt_to_peer(bytes, meta, peer) == PacketStatus::kOk &&
        meta.checksum == ChecksumState::kPartial) {
      ASSERT_LE(std::size_t{meta.csum_start} + meta.csum_offset + 2, bytes.size());
    }
  }
  EXPECT_GT(located, 1000) << "the mutations should leave many frames parseable";
}

}  // namespace
}  // namespace vifd::net
