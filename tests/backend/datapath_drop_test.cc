// Every drop reason a queue counts is reachable and counted: the guest TX
// and RX drops that need a misbehaving host port (the fake TAP), a slow
// receiver on the switch, or a failing hypervisor (a fault-injecting grant
// table). Each test also checks the answer the frontend gets and that the
// queue keeps working afterwards.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "common/platform/error.h"
#include "common/platform/sim/sim_host.h"
#include "tests/backend/datapath_harness.h"

namespace vifd::backend::testing {
namespace {

using protocol::RxResponse;
using protocol::TxRequest;
using protocol::TxResponse;
using vifd::testing::GrantFaults;

struct OnExit {
  std::function<void()> run;
  ~OnExit() { run(); }
};

// A queue with the fake TAP as its host port.
class DropTest : public ::testing::Test {
 protected:
  DropTest() : host_({1}), frontend_(host_, 1) {}

  void start(QueueOptions options = {}) {
    options.tap_fd = tap_.queue_fd();
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  // The queue still carries traffic both ways.
  void expect_queue_works(std::uint8_t seed) {
    const auto out = ethernet_frame(test_mac(9), test_mac(1), 100, seed);
    frontend_.send_frame(out);
    EXPECT_EQ(tap_.receive(), out);
    const auto in = ethernet_frame(test_mac(1), test_mac(9), 100, seed);
    frontend_.post_rx(1);
    tap_.send(in);
    const auto responses = frontend_.wait_rx_responses(1);
    ASSERT_EQ(responses.size(), 1U);
    EXPECT_EQ(frontend_.frames_of(responses).at(0), in);
    EXPECT_EQ(backend_->fatal_calls(), 0);
  }

  SimHost host_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::unique_ptr<BackendQueue> backend_;
};

// ---- guest TX ----------------------------------------------------------------

TEST_F(DropTest, TxChecksumOffloadOnANonIpFrameIsDroppedWithOkay) {
  start();
  // csum_blank asks the backend to find the L4 checksum of a frame that has
  // no IP header: the offload cannot be set up.
  const auto frame = ethernet_frame(test_mac(9), test_mac(1), 100, 1);
  frontend_.send_frame(frame, protocol::kTxfCsumBlank | protocol::kTxfDataValidated);
  const auto responses = frontend_.wait_tx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, protocol::kRspOkay) << "netback answers OKAY for this drop";
  EXPECT_EQ(stats().drop(DropReason::kTxBadOffload), 1U);
  EXPECT_EQ(stats().tap_writes, 0U);
  EXPECT_FALSE(tap_.has_frame());
  expect_queue_works(2);
}

TEST_F(DropTest, TxTapWriteErrorIsCountedAndAnsweredOkay) {
  // A send buffer smaller than the frame: the write fails with EMSGSIZE, as
  // a TAP refuses a frame above its MTU, and not with EAGAIN (congestion).
  const int small = 4096;
  ASSERT_EQ(::setsockopt(tap_.queue_fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
  start();
  const auto frame = ethernet_frame(test_mac(9), test_mac(1), 9000, 1);
  const auto ids = frontend_.send_frame(frame);
  ASSERT_EQ(ids.size(), 3U);
  const auto responses = frontend_.wait_tx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  for (const TxResponse& response : responses) EXPECT_EQ(response.status, protocol::kRspOkay);
  const QueueStats s = stats();
  EXPECT_EQ(s.drop(DropReason::kTxTapError), 1U);
  EXPECT_EQ(s.drop(DropReason::kTxTapFull), 0U);
  EXPECT_EQ(s.tx_packets, 0U);
  expect_queue_works(2);
}

// ---- guest RX from the host port ---------------------------------------------

TEST_F(DropTest, RxGsoTheFrontendDidNotNegotiateIsDropped) {
  start();  // no feature-gso-tcpv4
  frontend_.post_rx(2);
  net::VirtioNetHdr gso{};
  gso.flags = net::kVirtioNetHdrFNeedsCsum;
  gso.gso_type = net::kVirtioNetHdrGsoTcpv4;
  gso.gso_size = 1448;
  gso.hdr_len = 54;
  gso.csum_start = 34;
  gso.csum_offset = 16;
  tap_.send(tcp4_frame(test_mac(1), test_mac(9), 1400), gso);
  const auto plain = ethernet_frame(test_mac(1), test_mac(9), 100, 1);
  tap_.send(plain);
  const auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), plain);
  const QueueStats s = stats();
  EXPECT_EQ(s.drop(DropReason::kRxGsoNotNegotiated), 1U);
  EXPECT_EQ(s.tap_reads, 2U);
  EXPECT_EQ(s.rx_packets, 1U);
  expect_queue_works(2);
}

TEST_F(DropTest, RxVirtioHeaderWithoutANetifEncodingIsDropped) {
  start();
  frontend_.post_rx(2);
  net::VirtioNetHdr udp{};
  udp.gso_type = net::kVirtioNetHdrGsoUdp;  // UFO: netif cannot carry it
  udp.gso_size = 1400;
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 100, 1), udp);
  const auto plain = ethernet_frame(test_mac(1), test_mac(9), 100, 2);
  tap_.send(plain);
  const auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), plain);
  EXPECT_EQ(stats().drop(DropReason::kRxBadOffload), 1U);
  expect_queue_works(3);
}

TEST_F(DropTest, RxFrameLargerThanTheBuffersIsDropped) {
  start();  // MTU 1500, no GSO: buffers of 1500 + 18 bytes
  frontend_.post_rx(2);
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 2000, 1));
  const auto plain = ethernet_frame(test_mac(1), test_mac(9), 1518, 2);
  tap_.send(plain);
  const auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), plain) << "the largest frame that fits";
  const QueueStats s = stats();
  EXPECT_EQ(s.drop(DropReason::kRxTapOversize), 1U);
  EXPECT_EQ(s.tap_reads, 2U);
  expect_queue_works(3);
}

TEST_F(DropTest, RxTapReadErrorIsCountedAndReadingGoesOn) {
  start();
  frontend_.post_rx(1);
  // Shorter than a virtio header: tap_read reports EPROTO.
  const std::vector<std::uint8_t> runt{1, 2, 3, 4};
  tap_.send_raw(runt);
  const auto plain = ethernet_frame(test_mac(1), test_mac(9), 100, 1);
  tap_.send(plain);
  const auto responses = frontend_.wait_rx_responses(1);
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), plain);
  EXPECT_EQ(stats().drop(DropReason::kRxTapError), 1U);
  expect_queue_works(2);
}

TEST_F(DropTest, RxMulticastTheFrontendDidNotSubscribeToIsFiltered) {
  QueueOptions options;
  options.features.multicast_control = true;
  start(options);
  const protocol::MacAddress subscribed{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x01}};
  const protocol::MacAddress other{{0x01, 0x00, 0x5e, 0x00, 0x00, 0x02}};
  const protocol::MacAddress broadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  protocol::ExtraInfo add{};
  add.type = protocol::kExtraTypeMcastAdd;
  std::memcpy(add.u.mcast.addr, subscribed.octets.data(), 6);
  std::vector<TxRequest> requests{{0, 0, protocol::kTxfExtraInfo, 5, 0}, {}};
  std::memcpy(&requests[1], &add, sizeof(add));
  frontend_.push_raw(requests);
  ASSERT_EQ(frontend_.wait_tx_responses(2).size(), 2U);

  frontend_.post_rx(3);
  const auto filtered = ethernet_frame(other, test_mac(9), 100, 1);
  const auto wanted = ethernet_frame(subscribed, test_mac(9), 100, 2);
  const auto everyone = ethernet_frame(broadcast, test_mac(9), 100, 3);
  tap_.send(filtered);
  tap_.send(wanted);
  tap_.send(everyone);
  const auto responses = frontend_.wait_rx_responses(2);
  ASSERT_EQ(responses.size(), 2U);
  const auto frames = frontend_.frames_of(responses);
  EXPECT_EQ(frames.at(0), wanted);
  EXPECT_EQ(frames.at(1), everyone) << "broadcast always passes";
  const QueueStats s = stats();
  EXPECT_EQ(s.drop(DropReason::kRxMulticastFiltered), 1U);
  EXPECT_EQ(s.tap_reads, 3U);
  expect_queue_works(4);
}

// ---- hypervisor failures -------------------------------------------------------

TEST_F(DropTest, RxGrantCopyFailureAnswersThatBufferWithAnError) {
  auto faults = std::make_shared<GrantFaults>();
  start({.grant_faults = faults});
  frontend_.post_rx(3);
  // The copy into the second posted buffer fails in the hypervisor.
  faults->fail_segments(vifd::testing::segments_touching(frontend_.rx_page_ref(1)),
                        platform::kGntstBadPage);
  std::vector<std::vector<std::uint8_t>> sent;
  for (std::uint8_t i = 0; i < 3; ++i) {
    sent.push_back(ethernet_frame(test_mac(1), test_mac(9), 200, i));
    tap_.send(sent.back());
  }
  const auto responses = frontend_.wait_rx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  EXPECT_EQ(responses[0].status, 200);
  EXPECT_EQ(responses[1].id, 1);
  EXPECT_EQ(responses[1].status, protocol::kRspError);
  EXPECT_EQ(responses[2].status, 200);
  EXPECT_EQ(frontend_.frames_of(std::span(responses).first(1)).at(0), sent[0]);
  EXPECT_EQ(frontend_.frames_of(std::span(responses).last(1)).at(0), sent[2]);
  EXPECT_EQ(faults->failed_segments(), 1U);
  const QueueStats s = stats();
  EXPECT_EQ(s.drop(DropReason::kRxGrantCopyFailed), 1U);
  EXPECT_EQ(s.rx_packets, 2U);
  faults->clear();
  expect_queue_works(5);
}

TEST_F(DropTest, ARefusedCopyBatchFailsEveryFrameOfItAndOnlyThose) {
  auto faults = std::make_shared<GrantFaults>();
  start({.grant_faults = faults});
  // The queue's first grant copy is this RX delivery: refuse it as a whole.
  faults->refuse_copies(vifd::testing::nth_call(0), EFAULT);
  frontend_.post_rx(1);
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 100, 1));
  const auto failed = frontend_.wait_rx_responses(1);
  ASSERT_EQ(failed.size(), 1U);
  EXPECT_EQ(failed[0].status, protocol::kRspError);
  EXPECT_EQ(faults->refused_copies(), 1U);
  EXPECT_EQ(stats().drop(DropReason::kRxGrantCopyFailed), 1U);
  expect_queue_works(2);
}

TEST(GrantFaultsTest, AChosenMapThrowsAndMapsNothing) {
  SimHost host({1});
  TestFrontend frontend(host, 1);
  const auto dom0 = host.join(0);
  auto faults = std::make_shared<GrantFaults>();
  vifd::testing::FaultyGrantTable table(dom0->open_grant_table(), faults);
  faults->fail_maps(vifd::testing::nth_call(0), platform::kGntstBadGntref);
  const std::array<platform::DomId, 1> domids{1};
  const std::array<platform::GrantRef, 1> refs{frontend.tx_ring_ref()};
  EXPECT_THROW(table.map(domids, refs, true), platform::PlatformError);
  EXPECT_EQ(sim::read_counters(host.dir(), 0).grant_map_calls, 0U);
  void* ring = table.map(domids, refs, true);
  ASSERT_NE(ring, nullptr);
  EXPECT_EQ(faults->failed_maps(), 1U);
  table.unmap(ring, 1);
}

// ---- guest TX through the switch -------------------------------------------------

TEST(SwitchDropTest, AFullInboxDropsWithOkayAndOnlyWhatDidNotFit) {
  SimHost host({1, 2});
  Switch network_switch("xenbr0");
  TestFrontend sender_frontend(host, 1);
  TestFrontend receiver_frontend(host, 2);
  QueueOptions options;
  options.features.sg = true;
  options.network_switch = &network_switch;
  options.mac = test_mac(1);
  BackendQueue sender(host, sender_frontend, options);
  // The receiver's inbox holds 4 frames, and its thread is held inside its
  // first grant copy (a slow hypervisor call), so nothing drains the inbox.
  auto faults = std::make_shared<GrantFaults>();
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool first = true;
  faults->fail_segments([&, released](std::uint64_t, const platform::GrantCopySegment&) {
    if (first) {
      first = false;
      entered.set_value();
      released.wait();
    }
    return false;
  });
  options.mac = test_mac(2);
  options.switch_inbox_frames = 4;
  options.grant_faults = faults;
  BackendQueue receiver(host, receiver_frontend, options);
  // Destroyed before the receiver: a failing assertion must not leave its
  // thread held while the receiver's destructor joins it.
  std::once_flag released_once;
  const auto let_go = [&] { std::call_once(released_once, [&] { release.set_value(); }); };
  const OnExit guard{let_go};

  receiver_frontend.post_rx(1);
  const auto held = ethernet_frame(test_mac(2), test_mac(1), 100, 0);
  sender_frontend.send_frame(held);
  ASSERT_EQ(entered.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);

  // 16 frames in one batch: 4 fit the inbox, 12 are dropped at once.
  std::vector<TxRequest> requests;
  std::vector<std::vector<std::uint8_t>> frames;
  for (std::uint16_t i = 0; i < 16; ++i) {
    frames.push_back(ethernet_frame(test_mac(2), test_mac(1), 100, static_cast<std::uint8_t>(i)));
    std::memcpy(sender_frontend.tx_page(10 + i), frames.back().data(), frames.back().size());
    requests.push_back(
        {sender_frontend.tx_page_ref(10 + i), 0, 0, static_cast<std::uint16_t>(100 + i), 100});
  }
  sender_frontend.push_raw(requests);
  const auto dropped = sender_frontend.wait_tx_responses(12);
  ASSERT_EQ(dropped.size(), 12U);
  for (const TxResponse& response : dropped) {
    EXPECT_EQ(response.status, protocol::kRspOkay) << "congestion, not a guest error";
    EXPECT_GE(response.id, 104) << "the first four fit the inbox";
  }
  EXPECT_EQ(sender.stats().drop(DropReason::kTxSwitchInboxFull), 12U);

  // Released, the receiver delivers the held frame and the four in its inbox.
  let_go();
  receiver_frontend.post_rx(8);
  const auto received = receiver_frontend.wait_rx_responses(5);
  ASSERT_EQ(received.size(), 5U);
  const auto delivered = receiver_frontend.frames_of(received);
  EXPECT_EQ(delivered.at(0), held);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(delivered.at(i + 1), frames[i]);
  ASSERT_TRUE(eventually([&] { return sender.stats().forwarded_packets == 5; }));
  EXPECT_EQ(sender_frontend.wait_tx_responses(5).size(), 5U);
  EXPECT_EQ(sender.stats().drop(DropReason::kTxSwitchInboxFull), 12U);
  EXPECT_EQ(receiver.stats().total_drops(), 0U);
}

}  // namespace
}  // namespace vifd::backend::testing
