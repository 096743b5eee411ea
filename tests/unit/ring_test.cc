// Front and back views of one shared ring in one process, as FreeBSD's
// netback_unit_tests.c does: the test plays both peers (and, where needed, a
// hostile one writing the shared page directly).
#include "common/protocol/ring.h"

#include <gtest/gtest.h>

#include <array>
#include <cstring>
#include <vector>

namespace vifd::protocol {
namespace {

template <std::size_t Pages>
struct alignas(kPageSize) SharedPages {
  std::array<std::byte, Pages * kPageSize> bytes;
  std::span<std::byte> span() { return bytes; }
};

TxRequest make_tx(std::uint32_t seq) {
  TxRequest request{};
  request.gref = seq;
  request.offset = static_cast<std::uint16_t>(seq % 4096);
  request.flags = kTxfMoreData;
  request.id = static_cast<std::uint16_t>(seq);
  request.size = static_cast<std::uint16_t>(seq >> 16);
  return request;
}

void expect_tx_eq(const TxRequest& got, std::uint32_t seq) {
  const TxRequest want = make_tx(seq);
  EXPECT_EQ(got.gref, want.gref);
  EXPECT_EQ(got.offset, want.offset);
  EXPECT_EQ(got.flags, want.flags);
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.size, want.size);
}

TxResponse make_rsp(std::uint16_t id) {
  return TxResponse{id, kRspOkay};
}

// The test's view of the header as a C peer sees it.
netif_tx_sring* c_view(std::span<std::byte> bytes) {
  return reinterpret_cast<netif_tx_sring*>(bytes.data());
}

class TxRingTest : public ::testing::Test {
 protected:
  void SetUp() override { std::memset(page_.bytes.data(), 0xAA, page_.bytes.size()); }

  // Pushes `count` requests numbered from `first` and publishes them;
  // returns the notification decision.
  bool push(TxFrontRing& front, std::uint32_t first, std::uint32_t count) {
    for (std::uint32_t i = 0; i < count; ++i) {
      EXPECT_TRUE(front.push_request(make_tx(first + i)));
    }
    return front.push_requests_and_check_notify();
  }

  SharedPages<1> page_;
};

TEST_F(TxRingTest, InitWritesSharedRingInitState) {
  auto front = TxFrontRing::init(page_.span());
  const netif_tx_sring* s = c_view(page_.span());
  EXPECT_EQ(s->req_prod, 0U);
  EXPECT_EQ(s->rsp_prod, 0U);
  EXPECT_EQ(s->req_event, 1U);
  EXPECT_EQ(s->rsp_event, 1U);
  for (const auto b : s->pvt.pvt_pad) {
    EXPECT_EQ(b, 0);
  }
  for (const auto b : s->__pad) {
    EXPECT_EQ(b, 0);
  }
  EXPECT_EQ(front.size(), 256U);
  EXPECT_EQ(front.free_requests(), 256U);
}

TEST_F(TxRingTest, EmptyRingHasNothingToTake) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  std::array<TxRequest, 8> requests{};
  std::array<TxResponse, 8> responses{};
  EXPECT_EQ(back.take_requests(requests), (TakeResult{0, RingStatus::kOk}));
  EXPECT_EQ(back.pending_requests(), (TakeResult{0, RingStatus::kOk}));
  EXPECT_EQ(front.take_responses(responses), (TakeResult{0, RingStatus::kOk}));
  EXPECT_FALSE(back.final_check_for_requests());
  EXPECT_FALSE(front.final_check_for_responses());
  EXPECT_FALSE(front.full());
}

TEST_F(TxRingTest, FrontFillsExactlyRingSizeThenRefuses) {
  auto front = TxFrontRing::init(page_.span());
  for (std::uint32_t i = 0; i < front.size(); ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  EXPECT_TRUE(front.full());
  EXPECT_EQ(front.free_requests(), 0U);
  EXPECT_FALSE(front.push_request(make_tx(999)));
  const std::array<TxRequest, 2> more{make_tx(1), make_tx(2)};
  EXPECT_EQ(front.push_requests(more), 0U);
  EXPECT_EQ(front.request_producer(), front.size());
}

TEST_F(TxRingTest, BatchedPushStopsAtFreeSlots) {
  auto front = TxFrontRing::init(page_.span());
  for (std::uint32_t i = 0; i < 250; ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  std::vector<TxRequest> batch;
  for (std::uint32_t i = 0; i < 10; ++i) {
    batch.push_back(make_tx(250 + i));
  }
  EXPECT_EQ(front.push_requests(batch), 6U);
  EXPECT_TRUE(front.full());
}

TEST_F(TxRingTest, RequestsInvisibleUntilPublished) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  ASSERT_TRUE(front.push_request(make_tx(1)));
  EXPECT_EQ(back.pending_requests().count, 0U);
  front.publish_requests();
  EXPECT_EQ(back.pending_requests().count, 1U);
}

TEST_F(TxRingTest, TakesInPartialBatchesInOrder) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 100, 10);
  std::array<TxRequest, 4> out{};
  std::vector<std::uint32_t> seen;
  for (const std::size_t expected : {4U, 4U, 2U, 0U}) {
    const TakeResult taken = back.take_requests(out);
    ASSERT_EQ(taken.status, RingStatus::kOk);
    ASSERT_EQ(taken.count, expected);
    for (std::size_t i = 0; i < taken.count; ++i) {
      seen.push_back(out[i].gref);
    }
  }
  ASSERT_EQ(seen.size(), 10U);
  for (std::uint32_t i = 0; i < 10; ++i) {
    EXPECT_EQ(seen[i], 100 + i);
  }
  EXPECT_EQ(back.request_consumer(), 10U);
  EXPECT_EQ(back.responses_owed(), 10U);
}

TEST_F(TxRingTest, EmptySpanTakesNothing) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 3);
  EXPECT_EQ(back.take_requests(std::span<TxRequest>{}), (TakeResult{0, RingStatus::kOk}));
  EXPECT_EQ(back.request_consumer(), 0U);
}

TEST_F(TxRingTest, TakenRequestIsACopy) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 7, 1);
  std::array<TxRequest, 1> out{};
  ASSERT_EQ(back.take_requests(out).count, 1U);
  // A hostile front rewrites the slot after we took it: our copy stands.
  c_view(page_.span())->ring[0].req.size = 0xFFFF;
  c_view(page_.span())->ring[0].req.gref = 0;
  expect_tx_eq(out[0], 7);
}

TEST_F(TxRingTest, ResponsesRoundTripAndFreeSlots) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  for (std::uint32_t i = 0; i < 256; ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  front.publish_requests();
  std::array<TxRequest, 256> requests{};
  ASSERT_EQ(back.take_requests(requests).count, 256U);
  for (std::uint16_t i = 0; i < 100; ++i) {
    ASSERT_TRUE(back.push_response(make_rsp(i)));
  }
  back.publish_responses();
  EXPECT_TRUE(front.full());  // responses not yet taken still hold their slots
  std::array<TxResponse, 256> responses{};
  const TakeResult taken = front.take_responses(responses);
  ASSERT_EQ(taken, (TakeResult{100, RingStatus::kOk}));
  for (std::uint16_t i = 0; i < 100; ++i) {
    EXPECT_EQ(responses[i].id, i);
    EXPECT_EQ(responses[i].status, kRspOkay);
  }
  EXPECT_EQ(front.free_requests(), 100U);
}

TEST_F(TxRingTest, BackRefusesResponsesNobodyAskedFor) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  EXPECT_FALSE(back.push_response(make_rsp(1)));
  push(front, 0, 3);
  std::array<TxRequest, 3> requests{};
  ASSERT_EQ(back.take_requests(requests).count, 3U);
  const std::array<TxResponse, 5> five{make_rsp(0), make_rsp(1), make_rsp(2), make_rsp(3),
                                       make_rsp(4)};
  EXPECT_EQ(back.push_responses(five), 3U);
  EXPECT_EQ(back.responses_owed(), 0U);
  EXPECT_FALSE(back.push_response(make_rsp(5)));
  EXPECT_EQ(back.response_producer(), 3U);
}

// ---- Notification hold-off ----------------------------------------------

TEST_F(TxRingTest, FirstRequestNotifiesFreshBack) {
  auto front = TxFrontRing::init(page_.span());
  EXPECT_TRUE(push(front, 0, 1));  // req_event starts at 1
}

TEST_F(TxRingTest, NoNotificationUntilBackRearms) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  EXPECT_TRUE(push(front, 0, 1));
  // The back is busy (has not run its final check): it will look again.
  EXPECT_FALSE(push(front, 1, 1));
  EXPECT_FALSE(push(front, 2, 5));
  std::array<TxRequest, 16> out{};
  EXPECT_EQ(back.take_requests(out).count, 7U);
  EXPECT_FALSE(back.final_check_for_requests());
  EXPECT_EQ(c_view(page_.span())->req_event, 8U);  // req_cons + 1
  EXPECT_TRUE(push(front, 7, 1));
}

TEST_F(TxRingTest, OneNotificationForABatch) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  EXPECT_FALSE(back.final_check_for_requests());
  for (std::uint32_t i = 0; i < 50; ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  EXPECT_TRUE(front.push_requests_and_check_notify());
  EXPECT_FALSE(front.push_requests_and_check_notify());  // nothing new
}

TEST_F(TxRingTest, NoNotificationWhenBackAskedForLater) {
  auto front = TxFrontRing::init(page_.span());
  // A back that wants a batch of 16 before being woken (netback's RX side
  // does this) sets req_event further ahead.
  c_view(page_.span())->req_event = 16;
  EXPECT_FALSE(push(front, 0, 15));
  EXPECT_TRUE(push(front, 15, 1));
}

TEST_F(TxRingTest, NoNotificationWhenEventIsBehind) {
  auto front = TxFrontRing::init(page_.span());
  push(front, 0, 4);
  c_view(page_.span())->req_event = 2;  // already passed: the back is awake
  EXPECT_FALSE(push(front, 4, 4));
}

TEST_F(TxRingTest, FinalCheckFindsRequestsPublishedWithoutNotification) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 1);
  std::array<TxRequest, 4> out{};
  ASSERT_EQ(back.take_requests(out).count, 1U);
  // The front publishes between our last take and our decision to sleep.
  ASSERT_TRUE(front.push_request(make_tx(1)));
  front.publish_requests();
  EXPECT_TRUE(back.final_check_for_requests());
  EXPECT_EQ(back.take_requests(out).count, 1U);
  EXPECT_FALSE(back.final_check_for_requests());
}

TEST_F(TxRingTest, FinalCheckForSeveralRequestsAsksToBeWokenWhenAllAreThere) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  EXPECT_FALSE(back.final_check_for_requests(3));
  EXPECT_EQ(c_view(page_.span())->req_event, 3U);
  ASSERT_TRUE(front.push_request(make_tx(0)));
  EXPECT_FALSE(front.push_requests_and_check_notify()) << "1 of 3: no notification";
  EXPECT_FALSE(back.final_check_for_requests(3));
  ASSERT_TRUE(front.push_request(make_tx(1)));
  ASSERT_TRUE(front.push_request(make_tx(2)));
  EXPECT_TRUE(front.push_requests_and_check_notify()) << "the third one notifies";
  EXPECT_TRUE(back.final_check_for_requests(3));
}

TEST_F(TxRingTest, ResponseNotificationFollowsRspEvent) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 8);
  std::array<TxRequest, 8> requests{};
  ASSERT_EQ(back.take_requests(requests).count, 8U);
  // rsp_event = 1 after init: the first response wakes the front.
  ASSERT_TRUE(back.push_response(make_rsp(0)));
  EXPECT_TRUE(back.push_responses_and_check_notify());
  // The front has not re-armed: no further notifications.
  ASSERT_TRUE(back.push_response(make_rsp(1)));
  EXPECT_FALSE(back.push_responses_and_check_notify());
  std::array<TxResponse, 8> responses{};
  EXPECT_EQ(front.take_responses(responses).count, 2U);
  EXPECT_FALSE(front.final_check_for_responses());
  EXPECT_EQ(c_view(page_.span())->rsp_event, 3U);
  const std::array<TxResponse, 3> batch{make_rsp(2), make_rsp(3), make_rsp(4)};
  ASSERT_EQ(back.push_responses(batch), 3U);
  EXPECT_TRUE(back.push_responses_and_check_notify());
  // A front that asks to be woken only later (rsp_event far ahead).
  c_view(page_.span())->rsp_event = 100;
  ASSERT_TRUE(back.push_response(make_rsp(5)));
  EXPECT_FALSE(back.push_responses_and_check_notify());
  EXPECT_TRUE(front.final_check_for_responses());
}

TEST_F(TxRingTest, BatchedFinalCheckAsksForAWakeUpAfterCountResponses) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  EXPECT_TRUE(push(front, 0, 8));
  EXPECT_EQ(front.outstanding_requests(), 8U);
  std::array<TxRequest, 8> requests{};
  ASSERT_EQ(back.take_requests(requests).count, 8U);
  EXPECT_FALSE(front.final_check_for_responses(4));
  EXPECT_EQ(c_view(page_.span())->rsp_event, 4U);
  for (std::uint16_t id = 0; id < 3; ++id) ASSERT_TRUE(back.push_response(make_rsp(id)));
  EXPECT_FALSE(back.push_responses_and_check_notify());
  // Three waiting, fewer than asked for: still nothing to do yet.
  EXPECT_FALSE(front.final_check_for_responses(4));
  ASSERT_TRUE(back.push_response(make_rsp(3)));
  EXPECT_TRUE(back.push_responses_and_check_notify());
  // Already there: true, and the event index is left alone.
  EXPECT_TRUE(front.final_check_for_responses(4));
  EXPECT_EQ(c_view(page_.span())->rsp_event, 4U);
  // 0 means 1, as the plain final check.
  std::array<TxResponse, 8> responses{};
  EXPECT_EQ(front.take_responses(responses).count, 4U);
  EXPECT_EQ(front.outstanding_requests(), 4U);
  EXPECT_FALSE(front.final_check_for_responses(0));
  EXPECT_EQ(c_view(page_.span())->rsp_event, 5U);
  // A hostile back's producer beyond our requests reads as work.
  c_view(page_.span())->rsp_prod = 0x12345678;
  EXPECT_TRUE(front.final_check_for_responses(2));
  EXPECT_EQ(front.take_responses(responses).status, RingStatus::kProducerOverflow);
}

TEST_F(TxRingTest, NotificationIgnoresScribbledProducerIndex) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 2);
  std::array<TxRequest, 2> requests{};
  ASSERT_EQ(back.take_requests(requests).count, 2U);
  EXPECT_FALSE(front.final_check_for_responses());  // rsp_event = 1
  // A hostile front moves *our* rsp_prod; we decide from what we published.
  c_view(page_.span())->rsp_prod = 0x12345678;
  ASSERT_TRUE(back.push_response(make_rsp(0)));
  EXPECT_TRUE(back.push_responses_and_check_notify());
}

// ---- Hostile producers ---------------------------------------------------

TEST_F(TxRingTest, RequestProducerBeyondRingSizeIsReported) {
  TxFrontRing::init(page_.span());  // the front's view is not needed: it is hostile
  TxBackRing back(page_.span());
  c_view(page_.span())->req_prod = 257;
  std::array<TxRequest, 8> out{};
  EXPECT_EQ(back.take_requests(out), (TakeResult{0, RingStatus::kProducerOverflow}));
  EXPECT_EQ(back.pending_requests(), (TakeResult{0, RingStatus::kProducerOverflow}));
  EXPECT_EQ(back.request_consumer(), 0U);
  EXPECT_TRUE(back.final_check_for_requests());  // "work": the take reports it
  c_view(page_.span())->req_prod = 256;          // exactly a full ring is legal
  EXPECT_EQ(back.take_requests(out), (TakeResult{8, RingStatus::kOk}));
}

TEST_F(TxRingTest, RequestProducerCountsUnansweredRequests) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 200);
  std::array<TxRequest, 200> out{};
  ASSERT_EQ(back.take_requests(out).count, 200U);
  // 200 taken but unanswered + 57 new > 256 slots: impossible for a front.
  c_view(page_.span())->req_prod = 257;
  EXPECT_EQ(back.take_requests(out).status, RingStatus::kProducerOverflow);
  c_view(page_.span())->req_prod = 256;
  EXPECT_EQ(back.take_requests(out), (TakeResult{56, RingStatus::kOk}));
}

TEST_F(TxRingTest, RequestProducerMovedBackwardsIsReported) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 10);
  std::array<TxRequest, 10> out{};
  ASSERT_EQ(back.take_requests(out).count, 10U);
  const std::array<TxResponse, 4> rsp{make_rsp(0), make_rsp(1), make_rsp(2), make_rsp(3)};
  ASSERT_EQ(back.push_responses(rsp), 4U);
  back.publish_responses();
  // Between our response producer (4) and request consumer (10).
  c_view(page_.span())->req_prod = 6;
  EXPECT_EQ(back.take_requests(out), (TakeResult{0, RingStatus::kProducerOverflow}));
  c_view(page_.span())->req_prod = 0xFFFFFFFF;
  EXPECT_EQ(back.take_requests(out), (TakeResult{0, RingStatus::kProducerOverflow}));
  EXPECT_EQ(back.request_consumer(), 10U);
}

TEST_F(TxRingTest, ResponseProducerBeyondPublishedRequestsIsReported) {
  auto front = TxFrontRing::init(page_.span());
  TxBackRing back(page_.span());
  push(front, 0, 5);
  ASSERT_TRUE(front.push_request(make_tx(5)));  // written, not published
  std::array<TxResponse, 8> out{};
  c_view(page_.span())->rsp_prod = 6;
  EXPECT_EQ(front.take_responses(out), (TakeResult{0, RingStatus::kProducerOverflow}));
  EXPECT_EQ(front.pending_responses().status, RingStatus::kProducerOverflow);
  c_view(page_.span())->rsp_prod = 5;
  EXPECT_EQ(front.take_responses(out), (TakeResult{5, RingStatus::kOk}));
  c_view(page_.span())->rsp_prod = 4;  // backwards
  EXPECT_EQ(front.take_responses(out), (TakeResult{0, RingStatus::kProducerOverflow}));
  EXPECT_EQ(front.response_consumer(), 5U);
}

// ---- Index wrap-around at 2^32 ---------------------------------------------

class TxRingWrapTest : public ::testing::TestWithParam<RingIndex> {
 protected:
  SharedPages<1> page_;
};

TEST_P(TxRingWrapTest, ManyRoundsAcrossTheWrap) {
  const RingIndex start = GetParam();
  auto front = TxFrontRing::init(page_.span(), start);
  TxBackRing back(page_.span(), start);
  EXPECT_EQ(c_view(page_.span())->req_event, start + 1);
  std::uint32_t next_seq = 0;
  std::uint32_t expect_seq = 0;
  std::array<TxRequest, 64> requests{};
  std::array<TxResponse, 256> responses{};
  // Varying batch sizes so slot positions and index wrap fall at different
  // points in a batch.
  for (int round = 0; round < 40; ++round) {
    const std::uint32_t count = 1 + static_cast<std::uint32_t>(round * 37) % front.free_requests();
    for (std::uint32_t i = 0; i < count; ++i) {
      ASSERT_TRUE(front.push_request(make_tx(next_seq++)));
    }
    // Neither side re-arms here, so only the very first push of each
    // direction finds the initial event index (start + 1) in range.
    EXPECT_EQ(front.push_requests_and_check_notify(), round == 0);
    for (;;) {
      const TakeResult taken = back.take_requests(requests);
      ASSERT_EQ(taken.status, RingStatus::kOk);
      if (taken.count == 0) {
        break;
      }
      for (std::size_t i = 0; i < taken.count; ++i) {
        expect_tx_eq(requests[i], expect_seq);
        ASSERT_TRUE(back.push_response(make_rsp(static_cast<std::uint16_t>(expect_seq))));
        ++expect_seq;
      }
    }
    EXPECT_EQ(back.push_responses_and_check_notify(), round == 0);
    const TakeResult got = front.take_responses(responses);
    ASSERT_EQ(got, (TakeResult{count, RingStatus::kOk}));
    EXPECT_EQ(front.free_requests(), front.size());
  }
  EXPECT_EQ(expect_seq, next_seq);
  EXPECT_EQ(back.request_consumer(), start + next_seq);
}

TEST_P(TxRingWrapTest, FullRingAndNotificationAcrossTheWrap) {
  const RingIndex start = GetParam();
  auto front = TxFrontRing::init(page_.span(), start);
  TxBackRing back(page_.span(), start);
  for (std::uint32_t i = 0; i < 256; ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  EXPECT_FALSE(front.push_request(make_tx(256)));
  EXPECT_TRUE(front.push_requests_and_check_notify());
  std::array<TxRequest, 256> out{};
  ASSERT_EQ(back.take_requests(out), (TakeResult{256, RingStatus::kOk}));
  for (std::uint32_t i = 0; i < 256; ++i) {
    expect_tx_eq(out[i], i);
  }
  EXPECT_FALSE(back.final_check_for_requests());
  EXPECT_EQ(c_view(page_.span())->req_event, start + 257);
  // Overflow detection is by difference, so it works across the wrap too.
  c_view(page_.span())->req_prod = start + 257;
  EXPECT_EQ(back.take_requests(out).status, RingStatus::kProducerOverflow);
}

INSTANTIATE_TEST_SUITE_P(Starts, TxRingWrapTest,
                         ::testing::Values(0U, 0x7FFFFFF0U, 0xFFFFFFF0U, 0xFFFFFF80U, 0xFFFFFFFFU));

// ---- Geometry and other ring types -----------------------------------------

TEST(RingGeometryTest, SizesMatchRingH) {
  using TxShared = SharedRing<TxRequest, TxResponse>;
  using RxShared = SharedRing<RxRequest, RxResponse>;
  EXPECT_EQ(TxShared::entries_for_bytes(4096), 256U);
  EXPECT_EQ(TxShared::entries_for_bytes(2 * 4096), 512U);
  EXPECT_EQ(TxShared::entries_for_bytes(4 * 4096), 1024U);
  EXPECT_EQ(TxShared::entries_for_bytes(8 * 4096), 2048U);
  EXPECT_EQ(RxShared::entries_for_bytes(4096), 256U);
  EXPECT_EQ(RxShared::entries_for_bytes(2 * 4096), 512U);
  EXPECT_EQ(TxShared::entries_for_bytes(64 + 12), 1U);
  EXPECT_EQ(TxShared::entries_for_bytes(64 + 11), 0U);
  EXPECT_EQ(TxShared::entries_for_bytes(0), 0U);
}

TEST(RingGeometryTest, RejectsMemoryWithoutASlot) {
  SharedPages<1> page;
  EXPECT_THROW(TxBackRing(page.span().first(70)), std::invalid_argument);
  EXPECT_THROW(TxFrontRing::init(page.span().first(10)), std::invalid_argument);
  EXPECT_THROW(TxBackRing(page.span().subspan(1)), std::invalid_argument);  // misaligned
}

template <std::size_t Pages>
void fill_and_drain_multi_page() {
  SharedPages<Pages> pages;
  constexpr RingIndex kStart = 0xFFFFFF00U;
  auto front = TxFrontRing::init(pages.span(), kStart);
  TxBackRing back(pages.span(), kStart);
  const RingIndex size = front.size();
  ASSERT_EQ(size, static_cast<RingIndex>(256 * Pages));
  for (RingIndex i = 0; i < size; ++i) {
    ASSERT_TRUE(front.push_request(make_tx(i)));
  }
  EXPECT_TRUE(front.full());
  EXPECT_TRUE(front.push_requests_and_check_notify());
  std::vector<TxRequest> out(size + 1);
  ASSERT_EQ(back.take_requests(out), (TakeResult{size, RingStatus::kOk}));
  for (RingIndex i = 0; i < size; ++i) {
    expect_tx_eq(out[i], i);
  }
  std::vector<TxResponse> rsp(size);
  for (RingIndex i = 0; i < size; ++i) {
    rsp[i] = make_rsp(static_cast<std::uint16_t>(i));
  }
  ASSERT_EQ(back.push_responses(rsp), size);
  EXPECT_TRUE(back.push_responses_and_check_notify());
  std::vector<TxResponse> got(size);
  ASSERT_EQ(front.take_responses(got), (TakeResult{size, RingStatus::kOk}));
  for (RingIndex i = 0; i < size; ++i) {
    EXPECT_EQ(got[i].id, static_cast<std::uint16_t>(i));
  }
  // The highest slot is where a C peer's ring[size - 1] is.
  const std::size_t last_slot_offset = kSharedRingHeaderSize + (size - 1) * sizeof(TxRequest);
  TxRequest raw{};
  std::memcpy(&raw, pages.bytes.data() + last_slot_offset, sizeof(raw));
  // Index start + i landed there; its response overwrote the first 4 bytes
  // (id, status) and left the request's own id field intact.
  const RingIndex i = (size - 1 - (kStart & (size - 1))) & (size - 1);
  EXPECT_EQ(raw.id, static_cast<std::uint16_t>(i));
  EXPECT_EQ(raw.gref, i);  // response id i, status kRspOkay (0)
}

TEST(RingGeometryTest, MultiPageTwo) {
  fill_and_drain_multi_page<2>();
}
TEST(RingGeometryTest, MultiPageFour) {
  fill_and_drain_multi_page<4>();
}
TEST(RingGeometryTest, MultiPageEight) {
  fill_and_drain_multi_page<8>();
}

TEST(RingResumeTest, BackResumesFromPublishedResponses) {
  SharedPages<1> page;
  auto front = TxFrontRing::init(page.span(), 0xFFFFFFFEU);
  {
    TxBackRing back(page.span(), 0xFFFFFFFEU);
    for (std::uint32_t i = 0; i < 5; ++i) {
      ASSERT_TRUE(front.push_request(make_tx(i)));
    }
    front.publish_requests();
    std::array<TxRequest, 5> out{};
    ASSERT_EQ(back.take_requests(out).count, 5U);
    const std::array<TxResponse, 3> rsp{make_rsp(0), make_rsp(1), make_rsp(2)};
    ASSERT_EQ(back.push_responses(rsp), 3U);
    back.publish_responses();
  }  // the backend process dies here
  auto back = TxBackRing::resume(page.span());
  EXPECT_EQ(back.request_consumer(), 1U);  // 0xFFFFFFFE + 3
  std::array<TxRequest, 5> out{};
  ASSERT_EQ(back.take_requests(out), (TakeResult{2, RingStatus::kOk}));
  expect_tx_eq(out[0], 3);
  expect_tx_eq(out[1], 4);
}

TEST(CtrlRingTest, AsymmetricEntrySizes) {
  SharedPages<1> page;
  auto front = CtrlFrontRing::init(page.span());
  CtrlBackRing back(page.span());
  EXPECT_EQ(front.size(), 128U);
  CtrlRequest request{};
  request.id = 9;
  request.type = XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS;
  request.data[2] = 0xDEADBEEF;
  ASSERT_TRUE(front.push_request(request));
  EXPECT_TRUE(front.push_requests_and_check_notify());
  std::array<CtrlRequest, 1> got{};
  ASSERT_EQ(back.take_requests(got).count, 1U);
  EXPECT_EQ(got[0].id, 9);
  EXPECT_EQ(got[0].data[2], 0xDEADBEEFU);
  CtrlResponse response{};
  response.id = 9;
  response.status = XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED;
  response.data = 77;
  ASSERT_TRUE(back.push_response(response));
  EXPECT_TRUE(back.push_responses_and_check_notify());
  std::array<CtrlResponse, 1> answer{};
  ASSERT_EQ(front.take_responses(answer).count, 1U);
  EXPECT_EQ(answer[0].status, static_cast<std::uint32_t>(XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED));
  EXPECT_EQ(answer[0].data, 77U);
}

TEST(RxRingTest, RequestsAndResponsesShareSlots) {
  SharedPages<1> page;
  auto front = RxFrontRing::init(page.span());
  RxBackRing back(page.span());
  for (std::uint16_t i = 0; i < 256; ++i) {
    ASSERT_TRUE(front.push_request(RxRequest{i, 0, static_cast<grant_ref_t>(1000U + i)}));
  }
  EXPECT_TRUE(front.push_requests_and_check_notify());
  std::array<RxRequest, 256> buffers{};
  ASSERT_EQ(back.take_requests(buffers).count, 256U);
  for (std::uint16_t i = 0; i < 256; ++i) {
    EXPECT_EQ(buffers[i].gref, 1000U + i);
    RxResponse response{};
    response.id = buffers[i].id;
    response.offset = 0;
    response.flags = kRxfDataValidated;
    response.status = 1514;  // bytes received
    ASSERT_TRUE(back.push_response(response));
  }
  EXPECT_TRUE(back.push_responses_and_check_notify());
  std::array<RxResponse, 256> received{};
  ASSERT_EQ(front.take_responses(received).count, 256U);
  for (std::uint16_t i = 0; i < 256; ++i) {
    EXPECT_EQ(received[i].id, i);
    EXPECT_EQ(received[i].status, 1514);
  }
}

}  // namespace
}  // namespace vifd::protocol

namespace vifd::protocol {
namespace {

// Our views against Xen's own C macros on the same page: the layout and the
// notification arithmetic agree with ring.h, and ring.h's macros compile
// with the barriers xen_abi.h supplies.
TEST(RingInteropTest, OurFrontAgainstXenMacroBack) {
  SharedPages<1> page;
  auto front = TxFrontRing::init(page.span(), 0xFFFFFFFDU);
  netif_tx_back_ring_t c_back;
  BACK_RING_ATTACH(&c_back, c_view(page.span()), 0xFFFFFFFDU, kPageSize);
  EXPECT_EQ(RING_SIZE(&c_back), front.size());

  int work = 0;
  RING_FINAL_CHECK_FOR_REQUESTS(&c_back, work);
  EXPECT_FALSE(work);
  for (std::uint32_t i = 0; i < 5; ++i) ASSERT_TRUE(front.push_request(make_tx(i)));
  EXPECT_TRUE(front.push_requests_and_check_notify());
  RING_FINAL_CHECK_FOR_REQUESTS(&c_back, work);
  ASSERT_TRUE(work);
  for (std::uint32_t i = 0; i < 5; ++i) {
    TxRequest request{};
    RING_COPY_REQUEST(&c_back, c_back.req_cons, &request);
    ++c_back.req_cons;
    expect_tx_eq(request, i);
    RING_GET_RESPONSE(&c_back, c_back.rsp_prod_pvt)->id = request.id;
    RING_GET_RESPONSE(&c_back, c_back.rsp_prod_pvt)->status = kRspOkay;
    ++c_back.rsp_prod_pvt;
  }
  int notify = 0;
  RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&c_back, notify);
  EXPECT_TRUE(notify);  // rsp_event is still at start + 1
  std::array<TxResponse, 8> responses{};
  ASSERT_EQ(front.take_responses(responses), (TakeResult{5, RingStatus::kOk}));
  EXPECT_EQ(responses[4].id, 4);
  EXPECT_EQ(front.request_producer(), 2U);  // wrapped
}

TEST(RingInteropTest, XenMacroFrontAgainstOurBack) {
  SharedPages<1> page;
  netif_tx_front_ring_t c_front;
  XEN_FRONT_RING_INIT(&c_front, c_view(page.span()), kPageSize);
  TxBackRing back(page.span());
  EXPECT_FALSE(back.final_check_for_requests());
  for (std::uint32_t i = 0; i < 3; ++i) {
    *RING_GET_REQUEST(&c_front, c_front.req_prod_pvt) = make_tx(i);
    ++c_front.req_prod_pvt;
  }
  int notify = 0;
  RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&c_front, notify);
  EXPECT_TRUE(notify);
  std::array<TxRequest, 3> requests{};
  ASSERT_EQ(back.take_requests(requests), (TakeResult{3, RingStatus::kOk}));
  for (std::uint32_t i = 0; i < 3; ++i) {
    expect_tx_eq(requests[i], i);
    ASSERT_TRUE(back.push_response(make_rsp(requests[i].id)));
  }
  EXPECT_TRUE(back.push_responses_and_check_notify());
  int work = 0;
  RING_FINAL_CHECK_FOR_RESPONSES(&c_front, work);
  ASSERT_TRUE(work);
  EXPECT_FALSE(RING_RESPONSE_PROD_OVERFLOW(&c_front, c_front.sring->rsp_prod));
  EXPECT_EQ(c_front.sring->rsp_prod - c_front.rsp_cons, 3U);
  EXPECT_EQ(RING_GET_RESPONSE(&c_front, 2)->id, 2);
}

}  // namespace
}  // namespace vifd::protocol
