// A Queue driven by a hand-written frontend over the simulator, with a
// SOCK_SEQPACKET socket pair standing in for the TAP fd (one datagram per
// frame, virtio header first, exactly what tap_write produces): guest TX
// delivery, hostile frontends, the rate limit and multicast control.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "backend/lib/datapath/multicast_filter.h"
#include "common/net/packet_meta.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

using protocol::TxRequest;
using protocol::TxResponse;

class QueueTest : public ::testing::Test {
 protected:
  QueueTest() : host_({1}), frontend_(host_, 1) {}

  void start(QueueOptions options = {}) {
    options.tap_fd = tap_.queue_fd();
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  SimHost host_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::unique_ptr<BackendQueue> backend_;
};

TEST_F(QueueTest, SingleAndMultiSlotFramesReachTheHostPortIntact) {
  start();
  const auto small = ethernet_frame(test_mac(9), test_mac(1), 60, 1);
  const auto large = ethernet_frame(test_mac(9), test_mac(1), 9000, 2);
  frontend_.send_frame(small);
  const auto ids = frontend_.send_frame(large, 0, nullptr, 1000);
  ASSERT_EQ(ids.size(), 9U);
  EXPECT_EQ(tap_.receive(), small);
  EXPECT_EQ(tap_.receive(), large);
  const auto responses = frontend_.wait_tx_responses(10);
  ASSERT_EQ(responses.size(), 10U);
  for (const TxResponse& response : responses) EXPECT_EQ(response.status, protocol::kRspOkay);
  ASSERT_TRUE(eventually([&] { return stats().tx_packets == 2; }));
  const QueueStats s = stats();
  EXPECT_EQ(s.tx_bytes, 60U + 9000U);
  EXPECT_EQ(s.tap_writes, 2U);
  EXPECT_EQ(s.total_drops(), 0U);
  EXPECT_GE(s.grant_copy_segments, 10U);
  EXPECT_LE(s.grant_copy_calls, 2U) << "one grant-copy call per batch";
  EXPECT_GE(s.notifications_received, 1U);
  EXPECT_EQ(s.ring.tx_rsp_prod, 10U);
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

TEST_F(QueueTest, ABatchIsOneGrantCopyCall) {
  start();
  // Publish 32 frames at once: the queue takes them as one batch.
  std::vector<TxRequest> requests;
  for (std::uint16_t i = 0; i < 32; ++i) {
    const auto frame = ethernet_frame(test_mac(9), test_mac(1), 100, static_cast<std::uint8_t>(i));
    std::memcpy(frontend_.tx_page(i), frame.data(), frame.size());
    requests.push_back({frontend_.tx_page_ref(i), 0, 0, i, 100});
  }
  frontend_.push_raw(requests);
  ASSERT_EQ(frontend_.wait_tx_responses(32).size(), 32U);
  for (int i = 0; i < 32; ++i) ASSERT_FALSE(tap_.receive().empty());
  const QueueStats s = stats();
  EXPECT_EQ(s.tx_packets, 32U);
  EXPECT_EQ(s.grant_copy_calls, 1U);
  EXPECT_EQ(s.grant_copy_segments, 32U);
  EXPECT_EQ(s.batch_histogram[batch_histogram_bucket(32)], 1U);
  EXPECT_EQ(s.notifications_sent, 1U) << "notifications are batched";
}

TEST_F(QueueTest, GsoFrameKeepsItsMetadataOnTheHostPort) {
  start();
  // IPv4/TCP header, then payload; csum_blank as netfront sends it.
  auto frame = ethernet_frame(test_mac(9), test_mac(1), 14 + 20 + 20 + 5000, 3);
  frame[12] = 0x08;
  frame[13] = 0x00;
  std::uint8_t* ip = frame.data() + 14;
  std::memset(ip, 0, 40);
  ip[0] = 0x45;
  const std::uint16_t total = 20 + 20 + 5000;
  ip[2] = total >> 8;
  ip[3] = total & 0xFF;
  ip[8] = 64;
  ip[9] = 6;  // TCP
  ip[12] = 10;
  ip[15] = 1;
  ip[16] = 10;
  ip[19] = 2;
  ip[20 + 12] = 5 << 4;  // data offset
  protocol::ExtraInfo gso{};
  gso.type = protocol::kExtraTypeGso;
  gso.u.gso.size = 1448;
  gso.u.gso.type = protocol::kGsoTypeTcpv4;
  frontend_.send_frame(frame, protocol::kTxfCsumBlank | protocol::kTxfDataValidated, &gso, 2048);
  net::VirtioNetHdr header{};
  const auto received = tap_.receive(&header);
  ASSERT_EQ(received.size(), frame.size());
  net::PacketMeta meta;
  ASSERT_EQ(net::meta_from_virtio(header, meta), net::PacketStatus::kOk);
  EXPECT_EQ(meta.gso_type, net::GsoType::kTcpv4);
  EXPECT_EQ(meta.gso_size, 1448);
  EXPECT_EQ(meta.checksum, net::ChecksumState::kPartial);
  EXPECT_EQ(meta.csum_start, 34);
  EXPECT_EQ(meta.csum_offset, 16);
  // Everything but the checksum field (seeded with the pseudo-header sum).
  EXPECT_TRUE(std::equal(received.begin(), received.begin() + 50, frame.begin()));
  EXPECT_TRUE(std::equal(received.begin() + 52, received.end(), frame.begin() + 52));
  const auto responses = frontend_.wait_tx_responses(4);
  ASSERT_EQ(responses.size(), 4U);  // 3 data slots + the extra
  int nulls = 0;
  for (const TxResponse& response : responses) {
    if (response.status == protocol::kRspNull)
      ++nulls;
    else
      EXPECT_EQ(response.status, protocol::kRspOkay);
  }
  EXPECT_EQ(nulls, 1) << "the extra slot is answered with NETIF_RSP_NULL";
}

// ---- hostile frontends ----------------------------------------------------

TEST_F(QueueTest, ZeroSizeFirstSlotIsAnErrorNotFatal) {
  start();
  const std::vector<TxRequest> requests{{frontend_.tx_page_ref(0), 0, 0, 7, 0}};
  frontend_.push_raw(requests);
  const auto responses = frontend_.wait_tx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].id, 7);
  EXPECT_EQ(responses[0].status, protocol::kRspError);
  EXPECT_TRUE(eventually([&] { return stats().drop(DropReason::kTxBadPacketSize) == 1; }));
  // The queue goes on: a good frame afterwards is delivered.
  const auto frame = ethernet_frame(test_mac(9), test_mac(1), 100, 4);
  frontend_.send_frame(frame);
  EXPECT_EQ(tap_.receive(), frame);
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

TEST_F(QueueTest, BadGrantRefIsAnErrorResponse) {
  start();
  const std::vector<TxRequest> requests{{4000, 0, 0, 3, 100}};
  frontend_.push_raw(requests);
  const auto responses = frontend_.wait_tx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, protocol::kRspError);
  EXPECT_TRUE(eventually([&] { return stats().drop(DropReason::kTxGrantCopyFailed) == 1; }));
  EXPECT_EQ(stats().tap_writes, 0U);
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

TEST_F(QueueTest, ContinuationLargerThanThePacketIsAnError) {
  start();
  const std::vector<TxRequest> requests{
      {frontend_.tx_page_ref(0), 0, protocol::kTxfMoreData, 1, 100},
      {frontend_.tx_page_ref(1), 0, 0, 2, 500}};
  frontend_.push_raw(requests);
  const auto responses = frontend_.wait_tx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  for (const auto& response : responses) EXPECT_EQ(response.status, protocol::kRspError);
  EXPECT_TRUE(eventually([&] { return stats().drop(DropReason::kTxSlotExceedsPacket) == 1; }));
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

TEST_F(QueueTest, NineteenSlotsAreDroppedWithAnErrorPerSlot) {
  start();
  std::vector<TxRequest> requests;
  for (std::uint16_t i = 0; i < 19; ++i) {
    requests.push_back({frontend_.tx_page_ref(i), 0,
                        static_cast<std::uint16_t>(i < 18 ? protocol::kTxfMoreData : 0), i,
                        static_cast<std::uint16_t>(i == 0 ? 1900 : 100)});
  }
  frontend_.push_raw(requests);
  const auto responses = frontend_.wait_tx_responses(19);
  ASSERT_EQ(responses.size(), 19U);
  for (const auto& response : responses) EXPECT_EQ(response.status, protocol::kRspError);
  EXPECT_TRUE(eventually([&] { return stats().drop(DropReason::kTxTooManySlots) == 1; }));
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

class FatalTest : public QueueTest {
 protected:
  void expect_fatal(const std::string& reason_part) {
    ASSERT_TRUE(eventually([&] { return backend_->fatal_calls() == 1; }));
    EXPECT_NE(backend_->fatal_reason().find(reason_part), std::string::npos)
        << backend_->fatal_reason();
    EXPECT_TRUE(backend_->queue().failed());
    EXPECT_TRUE(stats().fatal_error);
    // Further garbage changes nothing: the callback fired once, nothing is
    // answered or written any more. A disabled queue keeps its port masked,
    // so no notification wakes it; stop() does, and its thread publishes the
    // ring indices once more on the way out, after this push: the request
    // is seen there, still unconsumed.
    const std::vector<TxRequest> more{{frontend_.tx_page_ref(0), 0, 0, 99, 100}};
    frontend_.push_raw(more);
    frontend_.notify();
    const std::uint32_t answered = stats().ring.tx_rsp_prod;
    backend_->stop();
    const QueueStats s = stats();
    EXPECT_EQ(s.ring.tx_req_prod, s.ring.tx_req_cons + 1) << "the request was left in the ring";
    EXPECT_EQ(s.ring.tx_rsp_prod, answered);
    EXPECT_EQ(backend_->fatal_calls(), 1);
    EXPECT_EQ(s.tap_writes, 0U);
    EXPECT_FALSE(tap_.has_frame());
  }
};

TEST_F(FatalTest, SlotCrossingItsPageIsFatal) {
  start();
  const std::vector<TxRequest> requests{{frontend_.tx_page_ref(0), 4000, 0, 1, 200}};
  frontend_.push_raw(requests);
  expect_fatal("page");
  EXPECT_TRUE(frontend_.wait_tx_responses(0).empty());
}

TEST_F(FatalTest, TooManySlotsIsFatal) {
  start();
  std::vector<TxRequest> requests;
  for (std::uint16_t i = 0; i < 22; ++i) {
    requests.push_back({frontend_.tx_page_ref(i), 0,
                        static_cast<std::uint16_t>(i < 21 ? protocol::kTxfMoreData : 0), i,
                        static_cast<std::uint16_t>(i == 0 ? 2200 : 100)});
  }
  frontend_.push_raw(requests);
  expect_fatal("slots");
}

TEST_F(FatalTest, BadExtraTypeIsFatal) {
  start();
  protocol::ExtraInfo extra{};
  extra.type = 77;
  const auto frame = ethernet_frame(test_mac(9), test_mac(1), 100, 5);
  frontend_.send_frame(frame, 0, &extra);
  expect_fatal("extra");
}

TEST_F(FatalTest, ProducerOverflowIsFatal) {
  start();
  // A request producer a thousand slots ahead of a 256-slot ring.
  std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(frontend_.tx_ring_page()))
      .store(1000);
  frontend_.notify();
  ASSERT_TRUE(eventually([&] { return backend_->fatal_calls() == 1; }))
      << "the queue must notice the overflow on its next look";
  EXPECT_NE(backend_->fatal_reason().find("overflow"), std::string::npos);
}

// ---- rate limit and multicast control ---------------------------------------

TEST_F(QueueTest, RateLimitStallsOnCreditAndStillDeliversEverything) {
  // 1000 bytes per 20 ms window; five 600-byte frames need several windows.
  start({.rate = protocol::RateLimit{1000, 20000}});
  for (std::uint8_t i = 0; i < 5; ++i) {
    frontend_.send_frame(ethernet_frame(test_mac(9), test_mac(1), 600, i));
  }
  const auto responses = frontend_.wait_tx_responses(5);
  ASSERT_EQ(responses.size(), 5U);
  for (const auto& response : responses) EXPECT_EQ(response.status, protocol::kRspOkay);
  const QueueStats s = stats();
  EXPECT_GE(s.tx_credit_stalls, 2U);
  EXPECT_EQ(s.tx_packets, 5U);
}

TEST_F(QueueTest, MulticastControlUpdatesTheSharedFilter) {
  auto filter = std::make_shared<MulticastFilter>();
  QueueOptions options;
  options.features.multicast_control = true;
  options.tap_fd = tap_.queue_fd();
  // Build by hand to share the filter with the test.
  backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  protocol::ExtraInfo add{};
  add.type = protocol::kExtraTypeMcastAdd;
  const std::uint8_t group[6] = {0x01, 0x00, 0x5e, 0x00, 0x00, 0x01};
  std::memcpy(add.u.mcast.addr, group, 6);
  std::vector<TxRequest> requests{{0, 0, protocol::kTxfExtraInfo, 5, 0}, {}};
  std::memcpy(&requests[1], &add, sizeof(add));
  frontend_.push_raw(requests);
  const auto responses = frontend_.wait_tx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  EXPECT_EQ(responses[0].id, 5);
  EXPECT_EQ(responses[0].status, protocol::kRspOkay);
  EXPECT_EQ(responses[1].status, protocol::kRspNull);
  EXPECT_TRUE(eventually([&] { return stats().multicast_updates == 1; }));
  EXPECT_EQ(stats().tap_writes, 0U) << "a multicast carrier is not a packet";
}

TEST_F(QueueTest, StatsJsonFollowsTheControlSocketSchema) {
  start();
  frontend_.send_frame(ethernet_frame(test_mac(9), test_mac(1), 100, 1));
  ASSERT_EQ(frontend_.wait_tx_responses(1).size(), 1U);
  ASSERT_TRUE(eventually([&] { return stats().tx_packets == 1; }));
  const auto json = backend_->queue().stats_json();
  EXPECT_EQ(json["index"], 0);
  EXPECT_EQ(json["tx"]["packets"], 1);
  EXPECT_EQ(json["tx"]["bytes"], 100);
  EXPECT_TRUE(json["drops"].is_object());
  EXPECT_EQ(json["grant_copy"]["calls"], 1);
  EXPECT_EQ(json["switch"]["forwarded_packets"], 0);
  EXPECT_TRUE(json["notifications"].contains("sent"));
  EXPECT_EQ(json["batch_histogram"]["1"], 1);
  EXPECT_TRUE(json["batch_histogram"].contains("256+"));
  EXPECT_EQ(json["rx_stalls"], 0);
  EXPECT_GE(json["loop_iterations"], 1);
  EXPECT_EQ(json["ring"]["tx_req_prod"], 1);
  EXPECT_EQ(json["ring"]["tx_req_cons"], 1);
  EXPECT_EQ(json["ring"]["tx_rsp_prod"], 1);
}

TEST_F(QueueTest, StopIsIdempotentAndStopsServing) {
  start();
  ASSERT_TRUE(backend_->settle());
  backend_->stop();
  backend_->stop();
  EXPECT_FALSE(backend_->queue().running());
  const std::uint64_t turns = stats().loop_iterations;
  const auto frame = ethernet_frame(test_mac(9), test_mac(1), 100, 1);
  frontend_.send_frame(frame);
  frontend_.notify();
  // The thread is joined: nothing turns, nothing is answered or written.
  EXPECT_EQ(stats().loop_iterations, turns);
  EXPECT_EQ(stats().tx_packets, 0U);
  EXPECT_FALSE(tap_.has_frame());
  // The request is still in the ring, unanswered: a queue that takes the
  // ring over delivers it, once.
  backend_.reset();
  start({.resume = true});
  EXPECT_EQ(tap_.receive(), frame);
  const auto responses = frontend_.wait_tx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, protocol::kRspOkay);
  ASSERT_TRUE(backend_->settle());
  EXPECT_EQ(stats().tx_packets, 1U);
  EXPECT_FALSE(tap_.has_frame());
}

}  // namespace
}  // namespace vifd::backend::testing
