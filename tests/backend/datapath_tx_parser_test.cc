// The TX request parser on its own: spans of hand-made requests, no rings.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "backend/lib/datapath/tx_parser.h"

namespace vifd::backend {
namespace {

using protocol::TxRequest;

TxRequest slot(std::uint16_t size, std::uint16_t flags = 0, std::uint16_t offset = 0,
               std::uint16_t id = 0) {
  TxRequest request{};
  request.gref = 100 + id;
  request.offset = offset;
  request.flags = flags;
  request.id = id;
  request.size = size;
  return request;
}

TxRequest extra_slot(std::uint8_t type, std::uint8_t flags = 0, std::uint16_t gso_size = 1448,
                     std::uint8_t gso_type = protocol::kGsoTypeTcpv4) {
  protocol::ExtraInfo extra{};
  extra.type = type;
  extra.flags = flags;
  extra.u.gso.size = gso_size;
  extra.u.gso.type = gso_type;
  TxRequest request{};
  std::memcpy(&request, &extra, sizeof(extra));
  return request;
}

// A packet of `slots` data slots of 100 bytes each.
std::vector<TxRequest> chain(std::size_t slots) {
  std::vector<TxRequest> requests;
  for (std::size_t i = 0; i < slots; ++i) {
    requests.push_back(slot(i == 0 ? static_cast<std::uint16_t>(100 * slots) : 100,
                            i + 1 < slots ? protocol::kTxfMoreData : 0, 0,
                            static_cast<std::uint16_t>(i)));
  }
  return requests;
}

TEST(TxParserTest, SingleSlotPacket) {
  const std::vector<TxRequest> requests{slot(60), slot(70)};
  const TxPacket packet = parse_tx_packet(requests);
  EXPECT_EQ(packet.verdict, TxVerdict::kPacket);
  EXPECT_EQ(packet.consumed, 1U);
  EXPECT_EQ(packet.data_slots, 1U);
  EXPECT_EQ(packet.first_size, 60);
  EXPECT_EQ(packet.total_length, 60U);
}

TEST(TxParserTest, MultiSlotPacketWithGsoExtra) {
  std::vector<TxRequest> requests{
      slot(5000, protocol::kTxfMoreData | protocol::kTxfExtraInfo | protocol::kTxfCsumBlank),
      extra_slot(protocol::kExtraTypeGso), slot(4000, 0, 0, 1)};
  const TxPacket packet = parse_tx_packet(requests);
  ASSERT_EQ(packet.verdict, TxVerdict::kPacket);
  EXPECT_EQ(packet.consumed, 3U);
  EXPECT_EQ(packet.extra_count, 1U);
  EXPECT_EQ(packet.data_slots, 2U);
  EXPECT_EQ(packet.data_slot_position(1), 2U);
  EXPECT_EQ(packet.first_size, 1000);
  ASSERT_TRUE(packet.gso.has_value());
  EXPECT_EQ(packet.gso->u.gso.size, 1448);
}

TEST(TxParserTest, EighteenDataSlotsPassNineteenAreDroppedTwentyOneFollowersAreFatal) {
  EXPECT_EQ(parse_tx_packet(chain(kMaxTxDataSlots)).verdict, TxVerdict::kPacket);
  const TxPacket nineteen = parse_tx_packet(chain(kMaxTxDataSlots + 1));
  EXPECT_EQ(nineteen.verdict, TxVerdict::kDrop);
  EXPECT_EQ(nineteen.drop_reason, DropReason::kTxTooManySlots);
  EXPECT_EQ(nineteen.consumed, kMaxTxDataSlots + 1) << "every slot of the packet is answered";
  const TxPacket malicious = parse_tx_packet(chain(kFatalTxFollowSlots + 2));
  EXPECT_EQ(malicious.verdict, TxVerdict::kFatal);
  EXPECT_EQ(malicious.fatal_reason, TxFatalReason::kTooManySlots);
}

TEST(TxParserTest, SizeErrorsAreDropsPageCrossingsAreFatal) {
  const TxPacket zero = parse_tx_packet(std::vector<TxRequest>{slot(0)});
  EXPECT_EQ(zero.verdict, TxVerdict::kDrop);
  EXPECT_EQ(zero.drop_reason, DropReason::kTxBadPacketSize);

  // The continuation claims more than the whole packet.
  const TxPacket larger =
      parse_tx_packet(std::vector<TxRequest>{slot(100, protocol::kTxfMoreData), slot(200)});
  EXPECT_EQ(larger.verdict, TxVerdict::kDrop);
  EXPECT_EQ(larger.drop_reason, DropReason::kTxSlotExceedsPacket);
  EXPECT_EQ(larger.consumed, 2U);

  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, 0, 4000)}).fatal_reason,
            TxFatalReason::kCrossesPage);
  EXPECT_EQ(
      parse_tx_packet(std::vector<TxRequest>{slot(300, protocol::kTxfMoreData), slot(100, 0, 4090)})
          .fatal_reason,
      TxFatalReason::kCrossesPage);
}

TEST(TxParserTest, UnpublishedSlotsAndBadExtrasAreFatal) {
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfMoreData)}).fatal_reason,
            TxFatalReason::kMissingSlots);
  EXPECT_EQ(
      parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfExtraInfo)}).fatal_reason,
      TxFatalReason::kMissingSlots);
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfExtraInfo),
                                                   extra_slot(protocol::kExtraTypeMax)})
                .fatal_reason,
            TxFatalReason::kBadExtraType);
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfExtraInfo),
                                                   extra_slot(protocol::kExtraTypeNone)})
                .fatal_reason,
            TxFatalReason::kBadExtraType);
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfExtraInfo),
                                                   extra_slot(protocol::kExtraTypeGso, 0, 0)})
                .fatal_reason,
            TxFatalReason::kBadGso);
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{slot(200, protocol::kTxfExtraInfo),
                                                   extra_slot(protocol::kExtraTypeGso, 0, 1448, 9)})
                .fatal_reason,
            TxFatalReason::kBadGso);
  // A chain of extras: MORE keeps the next slot an extra.
  EXPECT_EQ(parse_tx_packet(std::vector<TxRequest>{
                                slot(200, protocol::kTxfExtraInfo),
                                extra_slot(protocol::kExtraTypeGso, protocol::kExtraFlagMore)})
                .fatal_reason,
            TxFatalReason::kMissingSlots);
}

TEST(TxParserTest, MulticastCarrierIsNotAPacket) {
  const TxPacket packet = parse_tx_packet(std::vector<TxRequest>{
      slot(0, protocol::kTxfExtraInfo), extra_slot(protocol::kExtraTypeMcastAdd)});
  EXPECT_EQ(packet.verdict, TxVerdict::kMulticast);
  EXPECT_EQ(packet.consumed, 2U);
  EXPECT_TRUE(packet.mcast_add.has_value());
}

}  // namespace
}  // namespace vifd::backend
