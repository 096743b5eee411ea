// Metadata translations: virtio_net_hdr <-> PacketMeta <-> netif flags + GSO
// extra, over every flag combination.
#include "common/net/packet_meta.h"

#include <endian.h>
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/protocol/xen_abi.h"

namespace vifd::net {
namespace {

std::vector<PacketMeta> all_valid_metas() {
  std::vector<PacketMeta> metas;
  for (const auto checksum :
       {ChecksumState::kNone, ChecksumState::kPartial, ChecksumState::kValidated}) {
    for (const auto gso : {GsoType::kNone, GsoType::kTcpv4, GsoType::kTcpv6}) {
      for (const bool located : {false, true}) {
        if (located && checksum != ChecksumState::kPartial) continue;
        PacketMeta meta;
        meta.checksum = checksum;
        meta.csum_located = located;
        meta.csum_start = located ? 34 : 0;
        meta.csum_offset = located ? 16 : 0;
        meta.gso_type = gso;
        meta.gso_size = gso == GsoType::kNone ? 0 : 1448;
        meta.hdr_len = gso == GsoType::kNone ? 0 : 66;
        metas.push_back(meta);
      }
    }
  }
  return metas;
}

TEST(VirtioMeta, EveryHeaderCombinationDecodesAsSpecified) {
  const std::uint8_t flag_sets[] = {0, kVirtioNetHdrFNeedsCsum, kVirtioNetHdrFDataValid,
                                    kVirtioNetHdrFNeedsCsum | kVirtioNetHdrFDataValid};
  const std::uint8_t gso_types[] = {kVirtioNetHdrGsoNone,
                                    kVirtioNetHdrGsoTcpv4,
                                    kVirtioNetHdrGsoTcpv6,
                                    kVirtioNetHdrGsoUdp,
                                    kVirtioNetHdrGsoTcpv4 | kVirtioNetHdrGsoEcn,
                                    kVirtioNetHdrGsoTcpv6 | kVirtioNetHdrGsoEcn,
                                    5,
                                    0x7f};
  for (const auto flags : flag_sets) {
    for (const auto gso_type : gso_types) {
      for (const std::uint16_t gso_size : {0, 1448}) {
        VirtioNetHdr hdr{};
        hdr.flags = flags;
        hdr.gso_type = gso_type;
        hdr.gso_size = htole16(gso_size);
        hdr.hdr_len = htole16(54);
        hdr.csum_start = htole16(34);
        hdr.csum_offset = htole16(16);
        PacketMeta meta;
        meta.gso_size = 7;  // must stay untouched on failure
        const PacketStatus status = meta_from_virtio(hdr, meta);
        SCOPED_TRACE(testing::Message()
                     << "flags=" << int{flags} << " gso=" << int{gso_type} << " size=" << gso_size);
        const bool tcp_gso = gso_type == kVirtioNetHdrGsoTcpv4 || gso_type == kVirtioNetHdrGsoTcpv6;
        if (gso_type != kVirtioNetHdrGsoNone && !tcp_gso) {
          EXPECT_EQ(status, PacketStatus::kUnsupportedGsoType);
          EXPECT_EQ(meta.gso_size, 7);
          continue;
        }
        if (tcp_gso && gso_size == 0) {
          EXPECT_EQ(status, PacketStatus::kZeroGsoSize);
          continue;
        }
        ASSERT_EQ(status, PacketStatus::kOk);
        if ((flags & kVirtioNetHdrFNeedsCsum) != 0) {
          EXPECT_EQ(meta.checksum, ChecksumState::kPartial);
          EXPECT_TRUE(meta.csum_located);
          EXPECT_EQ(meta.csum_start, 34);
          EXPECT_EQ(meta.csum_offset, 16);
        } else if ((flags & kVirtioNetHdrFDataValid) != 0) {
          EXPECT_EQ(meta.checksum, ChecksumState::kValidated);
          EXPECT_FALSE(meta.csum_located);
        } else {
          EXPECT_EQ(meta.checksum, ChecksumState::kNone);
        }
        if (tcp_gso) {
          EXPECT_EQ(meta.gso_type,
                    gso_type == kVirtioNetHdrGsoTcpv4 ? GsoType::kTcpv4 : GsoType::kTcpv6);
          EXPECT_EQ(meta.gso_size, gso_size);
          EXPECT_EQ(meta.hdr_len, 54);
        } else {
          EXPECT_EQ(meta.gso_type, GsoType::kNone);
          EXPECT_EQ(meta.gso_size, 0);
          EXPECT_EQ(meta.hdr_len, 0);
        }
      }
    }
  }
}

TEST(VirtioMeta, RejectsChecksumOffsetsThatOverflow) {
  VirtioNetHdr hdr{};
  hdr.flags = kVirtioNetHdrFNeedsCsum;
  hdr.csum_start = htole16(0xfff0);
  hdr.csum_offset = htole16(0x20);
  PacketMeta meta;
  EXPECT_EQ(meta_from_virtio(hdr, meta), PacketStatus::kChecksumOutOfRange);
}

TEST(VirtioMeta, RoundTripsEveryLocatedMeta) {
  for (const PacketMeta& meta : all_valid_metas()) {
    VirtioNetHdr hdr{};
    const PacketStatus status = meta_to_virtio(meta, hdr);
    if (meta.checksum == ChecksumState::kPartial && !meta.csum_located) {
      EXPECT_EQ(status, PacketStatus::kChecksumNotLocated);
      continue;
    }
    ASSERT_EQ(status, PacketStatus::kOk);
    PacketMeta back;
    ASSERT_EQ(meta_from_virtio(hdr, back), PacketStatus::kOk);
    EXPECT_EQ(back, meta);
  }
}

TEST(VirtioMeta, FieldsAreLittleEndianOnTheWire) {
  PacketMeta meta;
  meta.checksum = ChecksumState::kPartial;
  meta.csum_located = true;
  meta.csum_start = 0x0122;
  meta.csum_offset = 0x0010;
  meta.gso_type = GsoType::kTcpv6;
  meta.gso_size = 0x05a8;
  meta.hdr_len = 0x0056;
  VirtioNetHdr hdr{};
  ASSERT_EQ(meta_to_virtio(meta, hdr), PacketStatus::kOk);
  std::uint8_t raw[kVirtioNetHdrSize];
  std::memcpy(raw, &hdr, sizeof(raw));
  const std::uint8_t expected[kVirtioNetHdrSize] = {1, 4, 0x56, 0, 0xa8, 0x05, 0x22, 0x01, 0x10, 0};
  EXPECT_EQ(0, std::memcmp(raw, expected, sizeof(raw)));
}

// Expected checksum state after a trip through netif: the offsets never
// travel (csum_blank has none), nor does hdr_len.
PacketMeta after_netif(PacketMeta meta) {
  meta.csum_located = false;
  meta.csum_start = 0;
  meta.csum_offset = 0;
  meta.hdr_len = 0;
  return meta;
}

TEST(NetifMeta, TxRoundTripsEveryMeta) {
  for (const PacketMeta& meta : all_valid_metas()) {
    const std::uint16_t flags = netif_tx_flags(meta);
    EXPECT_EQ((flags & kNetTxExtraInfo) != 0, meta.gso_type != GsoType::kNone);
    EXPECT_EQ((flags & kNetTxMoreData), 0);
    netif_extra_info extra{};
    const netif_extra_info* gso = nullptr;
    if (meta.gso_type != GsoType::kNone) {
      fill_gso_extra(meta, extra);
      gso = &extra;
    }
    PacketMeta back;
    ASSERT_EQ(meta_from_netif_tx(flags, gso, back), PacketStatus::kOk);
    EXPECT_EQ(back, after_netif(meta));
  }
}

TEST(NetifMeta, RxRoundTripsEveryMeta) {
  for (const PacketMeta& meta : all_valid_metas()) {
    const std::uint16_t flags = netif_rx_flags(meta);
    EXPECT_EQ((flags & kNetRxExtraInfo) != 0, meta.gso_type != GsoType::kNone);
    netif_extra_info extra{};
    const netif_extra_info* gso = nullptr;
    if (meta.gso_type != GsoType::kNone) {
      fill_gso_extra(meta, extra);
      gso = &extra;
    }
    PacketMeta back;
    ASSERT_EQ(meta_from_netif_rx(flags, gso, back), PacketStatus::kOk);
    EXPECT_EQ(back, after_netif(meta));
  }
}

TEST(NetifMeta, FlagsMatchWhatLinuxNetfrontAndNetbackSend) {
  PacketMeta partial;
  partial.checksum = ChecksumState::kPartial;
  EXPECT_EQ(netif_tx_flags(partial), NETTXF_csum_blank | NETTXF_data_validated);
  EXPECT_EQ(netif_rx_flags(partial), NETRXF_csum_blank | NETRXF_data_validated);
  PacketMeta validated;
  validated.checksum = ChecksumState::kValidated;
  EXPECT_EQ(netif_tx_flags(validated), NETTXF_data_validated);
  EXPECT_EQ(netif_rx_flags(validated), NETRXF_data_validated);
  EXPECT_EQ(netif_tx_flags(PacketMeta{}), 0);
  EXPECT_EQ(netif_rx_flags(PacketMeta{}), 0);
}

TEST(NetifMeta, GsoExtraIsFilledCompletely) {
  PacketMeta meta;
  meta.gso_type = GsoType::kTcpv6;
  meta.gso_size = 8948;
  netif_extra_info extra;
  std::memset(&extra, 0xa5, sizeof(extra));
  fill_gso_extra(meta, extra);
  EXPECT_EQ(extra.type, XEN_NETIF_EXTRA_TYPE_GSO);
  EXPECT_EQ(extra.flags, 0);
  EXPECT_EQ(extra.u.gso.size, 8948);
  EXPECT_EQ(extra.u.gso.type, XEN_NETIF_GSO_TYPE_TCPV6);
  EXPECT_EQ(extra.u.gso.pad, 0);
  EXPECT_EQ(extra.u.gso.features, 0);
}

TEST(NetifMeta, EveryFlagAndExtraCombinationDecodesAsSpecified) {
  struct ExtraCase {
    bool present;
    std::uint8_t extra_type;
    std::uint8_t gso_type;
    std::uint16_t size;
    PacketStatus expected;
  };
  const ExtraCase extras[] = {
      {false, 0, 0, 0, PacketStatus::kOk},
      {true, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4, 1448, PacketStatus::kOk},
      {true, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV6, 1428, PacketStatus::kOk},
      {true, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_NONE, 1448,
       PacketStatus::kUnsupportedGsoType},
      {true, XEN_NETIF_EXTRA_TYPE_GSO, 3, 1448, PacketStatus::kUnsupportedGsoType},
      {true, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4, 0, PacketStatus::kZeroGsoSize},
      {true, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_GSO_TYPE_TCPV4, 1448,
       PacketStatus::kBadExtraType},
  };
  for (bool tx : {true, false}) {
    for (std::uint16_t flags = 0; flags < 16; ++flags) {
      for (const ExtraCase& c : extras) {
        netif_extra_info extra{};
        extra.type = c.extra_type;
        extra.u.gso.type = c.gso_type;
        extra.u.gso.size = c.size;
        PacketMeta meta;
        meta.gso_size = 7;
        const PacketStatus status =
            tx ? meta_from_netif_tx(flags, c.present ? &extra : nullptr, meta)
               : meta_from_netif_rx(flags, c.present ? &extra : nullptr, meta);
        SCOPED_TRACE(testing::Message()
                     << (tx ? "tx" : "rx") << " flags=" << flags << " extra=" << int{c.extra_type}
                     << "/" << int{c.gso_type} << "/" << c.size);
        ASSERT_EQ(status, c.expected);
        if (status != PacketStatus::kOk) {
          EXPECT_EQ(meta.gso_size, 7);
          continue;
        }
        const std::uint16_t blank = tx ? kNetTxCsumBlank : kNetRxCsumBlank;
        const std::uint16_t valid = tx ? kNetTxDataValidated : kNetRxDataValidated;
        const ChecksumState expected = (flags & blank) != 0   ? ChecksumState::kPartial
                                       : (flags & valid) != 0 ? ChecksumState::kValidated
                                                              : ChecksumState::kNone;
        EXPECT_EQ(meta.checksum, expected);
        EXPECT_FALSE(meta.csum_located);
        if (c.present) {
          EXPECT_EQ(meta.gso_type,
                    c.gso_type == XEN_NETIF_GSO_TYPE_TCPV4 ? GsoType::kTcpv4 : GsoType::kTcpv6);
          EXPECT_EQ(meta.gso_size, c.size);
        } else {
          EXPECT_EQ(meta.gso_type, GsoType::kNone);
        }
      }
    }
  }
}

TEST(PacketStatusNames, EveryStatusHasADistinctName) {
  std::vector<std::string> names;
  for (int value = 0; value <= static_cast<int>(PacketStatus::kGsoNotSupportedByPeer); ++value) {
    const std::string name = to_string(static_cast<PacketStatus>(value));
    EXPECT_NE(name, "unknown");
    for (const auto& seen : names) EXPECT_NE(seen, name);
    names.push_back(name);
  }
}

}  // namespace
}  // namespace vifd::net
