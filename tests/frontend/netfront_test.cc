// The userspace netfront against a minimal netback in dom0 of a vif-sim host:
// handshake keys for every queue/event-channel layout, TX and RX frames with
// their flags and GSO slots, a hostile backend, backend close/reconnect and
// grant reuse.
#include "frontend/lib/netfront/netfront.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bit>
#include <numeric>
#include <optional>
#include <set>

#include "common/platform/error.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "frontend/lib/netfront/tap_pump.h"
#include "tests/frontend/test_backend.h"
#include "tests/support/counting_event_channels.h"

namespace vifd::frontend::testing {
namespace {

namespace key = xenbus::key;
using platform::kPageSize;
using protocol::XenbusState;
using KeySet = std::set<std::string, std::less<>>;

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) {
    bytes[i] = static_cast<std::uint8_t>(seed + i * 7 + i / 251);
  }
  return bytes;
}

// Counts grant-share calls: the proof that pages are shared once per connect.
class CountingShare : public platform::GrantShare {
 public:
  CountingShare(std::unique_ptr<platform::GrantShare> inner, std::size_t& calls)
      : inner_(std::move(inner)), calls_(calls) {}
  void* share(platform::DomId domid, std::span<platform::GrantRef> refs, bool writable) override {
    ++calls_;
    return inner_->share(domid, refs, writable);
  }
  void unshare(void* addr, std::size_t count) override { inner_->unshare(addr, count); }

 private:
  std::unique_ptr<platform::GrantShare> inner_;
  std::size_t& calls_;
};

class CountingPlatform : public platform::Platform {
 public:
  explicit CountingPlatform(std::unique_ptr<platform::Platform> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  platform::DomId self_domid() const override { return inner_->self_domid(); }
  std::unique_ptr<platform::GrantTable> open_grant_table() override {
    return inner_->open_grant_table();
  }
  std::unique_ptr<platform::GrantShare> open_grant_share() override {
    return std::make_unique<CountingShare>(inner_->open_grant_share(), share_calls);
  }
  std::unique_ptr<platform::EventChannels> open_event_channels() override {
    auto events = std::make_unique<vifd::testing::CountingEventChannels>(
        inner_->open_event_channels(), pending_calls);
    events->exact_readiness_as = exact_readiness_as;
    return events;
  }
  std::optional<std::string> xenstore_socket() const override { return inner_->xenstore_socket(); }

  std::size_t share_calls = 0;
  std::shared_ptr<std::atomic<std::uint64_t>> pending_calls =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  // What the queues' event channels say of their fd, when set (Xen's
  // exact readiness on the simulator).
  std::optional<bool> exact_readiness_as;

 private:
  std::unique_ptr<platform::Platform> inner_;
};

class NetfrontTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.create_domain(kGuest);
    auto dom0 = host_.xenstore(0);
    attach_vif(dom0, kGuest, 0);
    backend_ = std::make_unique<TestBackend>(host_, kGuest, 0);
    guest_ = std::make_unique<CountingPlatform>(host_.platform(kGuest));
  }

  std::unique_ptr<Netfront> start(const BackendOffer& offer = {}, NetfrontOptions options = {}) {
    backend_->offer(offer);
    auto front = std::make_unique<Netfront>(*guest_, host_.xenstore(kGuest), options);
    front->process_xenstore();
    return front;
  }

  // A connected device with one queue and the backend attached to it.
  std::unique_ptr<Netfront> start_connected(const BackendOffer& offer = {}) {
    auto front = start(offer);
    EXPECT_TRUE(front->connected()) << front->error();
    backend_->attach();
    backend_->set_state(XenbusState::kConnected);
    front->process_xenstore();
    return front;
  }

  KeySet frontend_keys() {
    KeySet keys;
    for (const auto& [key, value] : read_tree(backend_->xenstore(), backend_->frontend_path())) {
      keys.insert(key);
    }
    return keys;
  }

  void expect_failed(Netfront& front, const std::string& reason_part) {
    front.queue(0).poll({});
    EXPECT_TRUE(front.queue(0).failed());
    EXPECT_TRUE(front.check_failed());
    EXPECT_EQ(front.state(), NetfrontState::kFailed);
    EXPECT_NE(front.error().find(reason_part), std::string::npos) << front.error();
    EXPECT_EQ(backend_->frontend_value(key::kState), "6");
    const auto error = backend_->xenstore().read(xenbus::frontend_error_path({kGuest, 0}));
    ASSERT_TRUE(error.has_value());
    EXPECT_NE(error->find(reason_part), std::string::npos) << *error;
    EXPECT_EQ(front.queue_count(), 0U);
  }

  vifd::testing::SimHostProcess host_;
  std::unique_ptr<TestBackend> backend_;
  std::unique_ptr<CountingPlatform> guest_;
};

// ---- handshake -------------------------------------------------------------

struct Layout {
  unsigned queues;
  bool split;
};

class HandshakeTest : public NetfrontTest, public ::testing::WithParamInterface<Layout> {};

TEST_P(HandshakeTest, PublishesExactlyLinuxNetfrontKeys) {
  const Layout layout = GetParam();
  BackendOffer offer;
  offer.split = layout.split;
  NetfrontOptions options;
  options.queues = layout.queues;
  auto front = start(offer, options);
  ASSERT_TRUE(front->connected()) << front->error();
  EXPECT_EQ(front->queue_count(), layout.queues);

  const std::string_view toolstack_and_connect_keys[] = {key::kBackend,
                                                         key::kBackendId,
                                                         key::kHandle,
                                                         key::kMac,
                                                         key::kMtu,
                                                         key::kTrusted,
                                                         key::kState,
                                                         key::kMultiQueueNumQueues,
                                                         key::kRequestRxCopy,
                                                         key::kFeatureRxNotify,
                                                         key::kFeatureSg,
                                                         key::kFeatureGsoTcpv4,
                                                         key::kFeatureGsoTcpv6,
                                                         key::kFeatureIpv6CsumOffload};
  KeySet expected(std::begin(toolstack_and_connect_keys), std::end(toolstack_and_connect_keys));
  for (unsigned q = 0; q < layout.queues; ++q) {
    const auto queue_key = [&](std::string_view name) {
      return key::queue_key(q, layout.queues, name);
    };
    expected.insert(queue_key(key::kTxRingRef));
    expected.insert(queue_key(key::kRxRingRef));
    if (layout.split) {
      expected.insert(queue_key(key::kEventChannelTx));
      expected.insert(queue_key(key::kEventChannelRx));
    } else {
      expected.insert(queue_key(key::kEventChannel));
    }
  }
  EXPECT_EQ(frontend_keys(), expected);
  EXPECT_EQ(backend_->frontend_value(key::kState), "4");
  EXPECT_EQ(backend_->frontend_value(key::kMultiQueueNumQueues), std::to_string(layout.queues));
  for (const std::string_view name :
       {key::kRequestRxCopy, key::kFeatureRxNotify, key::kFeatureSg, key::kFeatureGsoTcpv4,
        key::kFeatureGsoTcpv6, key::kFeatureIpv6CsumOffload}) {
    EXPECT_EQ(backend_->frontend_value(name), "1") << name;
  }
  // What was published really names shared rings and unbound ports.
  ASSERT_NO_THROW(backend_->attach());
  EXPECT_EQ(backend_->queues().size(), layout.queues);
  for (auto& queue : backend_->queues()) {
    EXPECT_EQ(queue.rx->pending_requests().count, 256U) << "all RX buffers posted";
    EXPECT_EQ(queue.tx->pending_requests().count, 0U);
  }
}

INSTANTIATE_TEST_SUITE_P(QueuesAndChannels, HandshakeTest,
                         ::testing::Values(Layout{1, true}, Layout{1, false}, Layout{4, true},
                                           Layout{4, false}),
                         [](const auto& param_info) {
                           return std::to_string(param_info.param.queues) + "Queues" +
                                  (param_info.param.split ? "Split" : "Shared");
                         });

TEST_F(NetfrontTest, BackendWithoutMultiQueueGetsNoQueueKey) {
  BackendOffer offer;
  offer.max_queues.reset();
  offer.split = false;
  NetfrontOptions options;
  options.queues = 4;
  auto front = start(offer, options);
  ASSERT_TRUE(front->connected());
  EXPECT_EQ(front->queue_count(), 1U);
  const auto keys = frontend_keys();
  EXPECT_FALSE(keys.contains(key::kMultiQueueNumQueues));
  EXPECT_TRUE(keys.contains(key::kEventChannel));
  EXPECT_TRUE(keys.contains(key::kTxRingRef));
}

TEST_F(NetfrontTest, QueuesCappedByBackendMaximum) {
  BackendOffer offer;
  offer.max_queues = 2;
  NetfrontOptions options;
  options.queues = 4;
  auto front = start(offer, options);
  ASSERT_TRUE(front->connected());
  EXPECT_EQ(front->queue_count(), 2U);
  EXPECT_EQ(backend_->frontend_value(key::kMultiQueueNumQueues), "2");
}

TEST_F(NetfrontTest, DisabledFeaturesAreAdvertisedAsZero) {
  NetfrontOptions options;
  options.features.sg = false;
  options.features.gso_tcpv4 = false;
  auto front = start({}, options);
  ASSERT_TRUE(front->connected());
  EXPECT_EQ(backend_->frontend_value(key::kFeatureSg), "0");
  EXPECT_EQ(backend_->frontend_value(key::kFeatureGsoTcpv4), "0");
  EXPECT_EQ(backend_->frontend_value(key::kFeatureGsoTcpv6), "1");
}

TEST_F(NetfrontTest, WaitsForBackendInitWait) {
  auto front = std::make_unique<Netfront>(*guest_, host_.xenstore(kGuest), NetfrontOptions{});
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kWaitingForBackend);
  EXPECT_EQ(backend_->frontend_value(key::kState), "1");
  EXPECT_FALSE(backend_->frontend_value(key::kTxRingRef).has_value());
  backend_->offer({});
  front->process_xenstore();
  EXPECT_TRUE(front->connected());
  EXPECT_EQ(front->config().mac.to_string(), kGuestMac);
  EXPECT_EQ(front->config().mtu, 1500U);
  EXPECT_TRUE(front->config().trusted);
}

TEST_F(NetfrontTest, BackendWithoutRxCopyFailsTheDevice) {
  BackendOffer offer;
  offer.rx_copy = false;
  auto front = start(offer);
  EXPECT_EQ(front->state(), NetfrontState::kFailed);
  EXPECT_NE(front->error().find(key::kFeatureRxCopy), std::string::npos);
  EXPECT_EQ(backend_->frontend_value(key::kState), "6");
}

TEST_F(NetfrontTest, MalformedMacIsRefusedNamingTheKey) {
  auto dom0 = host_.xenstore(0);
  dom0.write(xenbus::join(backend_->frontend_path(), key::kMac), "ff:ff:ff:ff:ff:ff");
  try {
    Netfront front(*guest_, host_.xenstore(kGuest), NetfrontOptions{});
    FAIL() << "a multicast MAC was accepted";
  } catch (const protocol::XenstoreValueError& error) {
    EXPECT_NE(std::string(error.what()).find("/" + std::string(key::kMac)), std::string::npos)
        << error.what();
  }
}

// ---- TX ---------------------------------------------------------------------

TEST_F(NetfrontTest, TxSingleSlotFrameArrivesWithFlagsAndBytes) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto frame = pattern(100, 3);
  net::PacketMeta meta;
  meta.checksum = net::ChecksumState::kPartial;
  ASSERT_EQ(queue.send(frame, meta), TxStatus::kOk);
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].size, 100U);
  EXPECT_EQ(requests[0].offset, 0U);
  EXPECT_EQ(requests[0].flags, protocol::kTxfCsumBlank | protocol::kTxfDataValidated);
  std::vector<std::uint8_t> copied(100);
  backend_->copy_from_guest(requests[0].gref, requests[0].offset, copied);
  EXPECT_EQ(copied, frame);

  EXPECT_EQ(queue.tx_free_pages(), 255U);
  backend_->respond_tx(0, {{requests[0].id, protocol::kRspOkay}});
  EXPECT_FALSE(queue.poll({}).failed);
  EXPECT_EQ(queue.tx_free_pages(), 256U);
  EXPECT_EQ(queue.stats().tx_packets, 1U);
  EXPECT_EQ(queue.stats().tx_bytes, 100U);
}

TEST_F(NetfrontTest, TxGsoFrameUsesExtraSlotAndContinuations) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto frame = pattern(10000, 9);
  net::PacketMeta meta;
  meta.checksum = net::ChecksumState::kPartial;
  meta.gso_type = net::GsoType::kTcpv4;
  meta.gso_size = 1448;
  ASSERT_EQ(queue.send(frame, meta), TxStatus::kOk);
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 4U) << "first, GSO extra, two continuations";
  EXPECT_EQ(requests[0].size, 10000U);
  EXPECT_EQ(requests[0].flags, protocol::kTxfCsumBlank | protocol::kTxfDataValidated |
                                   protocol::kTxfExtraInfo | protocol::kTxfMoreData);
  protocol::ExtraInfo extra{};
  std::memcpy(&extra, &requests[1], sizeof(extra));
  EXPECT_EQ(extra.type, protocol::kExtraTypeGso);
  EXPECT_EQ(extra.flags, 0U);
  EXPECT_EQ(extra.u.gso.type, protocol::kGsoTypeTcpv4);
  EXPECT_EQ(extra.u.gso.size, 1448U);
  EXPECT_EQ(requests[2].size, 4096U);
  EXPECT_EQ(requests[2].flags, protocol::kTxfMoreData);
  EXPECT_EQ(requests[3].size, 10000U - 2 * 4096U);
  EXPECT_EQ(requests[3].flags, 0U);
  // The first slot holds what the continuations leave: 4096 bytes.
  std::vector<std::uint8_t> copied(frame.size());
  backend_->copy_from_guest(requests[0].gref, 0, std::span(copied).subspan(0, 4096));
  backend_->copy_from_guest(requests[2].gref, 0, std::span(copied).subspan(4096, 4096));
  backend_->copy_from_guest(requests[3].gref, 0, std::span(copied).subspan(8192));
  EXPECT_EQ(copied, frame);

  backend_->respond_tx(0, {{requests[0].id, protocol::kRspOkay},
                           {0, protocol::kRspNull},
                           {requests[2].id, protocol::kRspOkay},
                           {requests[3].id, protocol::kRspOkay}});
  EXPECT_FALSE(queue.poll({}).failed);
  EXPECT_EQ(queue.tx_free_pages(), 256U);
}

TEST_F(NetfrontTest, TxPoolPagesAreGrantedReadOnly) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  ASSERT_EQ(queue.send(pattern(60, 1), {}), TxStatus::kOk);
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 1U);
  auto table = host_.platform(0)->open_grant_table();
  const platform::DomId domids[] = {kGuest};
  const platform::GrantRef refs[] = {requests[0].gref};
  EXPECT_THROW(table->map(domids, refs, true), platform::PlatformError);
  void* mapped = table->map(domids, refs, false);
  table->unmap(mapped, 1);
}

TEST_F(NetfrontTest, TxRefusesWhatTheBackendDidNotOffer) {
  BackendOffer offer;
  offer.sg = false;
  auto front = start_connected(offer);
  NetfrontQueue& queue = front->queue(0);
  EXPECT_EQ(queue.send(pattern(5000, 1), {}), TxStatus::kNeedsScatterGather);
  net::PacketMeta gso;
  gso.checksum = net::ChecksumState::kPartial;
  gso.gso_type = net::GsoType::kTcpv6;
  gso.gso_size = 1400;
  EXPECT_EQ(queue.send(pattern(3000, 1), gso), TxStatus::kGsoNotNegotiated);
  EXPECT_EQ(queue.send({}, {}), TxStatus::kBadLength);
  EXPECT_EQ(queue.tx_free_pages(), 256U) << "refused frames return their pages";
  EXPECT_FALSE(front->tx_offloads().tso4);
}

TEST_F(NetfrontTest, TxReservationLandsInGrantedPages) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto pages = queue.reserve_tx(65536);
  ASSERT_EQ(pages.size(), 16U);
  const auto frame = pattern(6000, 5);
  std::memcpy(pages[0].data(), frame.data(), 4096);
  std::memcpy(pages[1].data(), frame.data() + 4096, 6000 - 4096);
  ASSERT_EQ(queue.commit_tx(6000, {}), TxStatus::kOk);
  EXPECT_EQ(queue.tx_free_pages(), 254U) << "unused reserved pages are released";
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 2U);
  std::vector<std::uint8_t> copied(6000);
  backend_->copy_from_guest(requests[0].gref, 0, std::span(copied).subspan(0, 4096));
  backend_->copy_from_guest(requests[1].gref, 0, std::span(copied).subspan(4096));
  EXPECT_EQ(copied, frame);
}

TEST_F(NetfrontTest, TxRingFullReportsNoSpace) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  std::size_t sent = 0;
  while (queue.send(pattern(64, 1), {}) == TxStatus::kOk) {
    ++sent;
  }
  // One slot stays free for a GSO extra-info slot.
  EXPECT_EQ(sent, 255U);
  EXPECT_EQ(queue.send(pattern(64, 1), {}), TxStatus::kNoSpace);
}

// TX responses only free pool pages: the backend is asked to notify when
// half of what is in flight is answered, not on every response, so a stream
// costs one wake-up per half ring instead of one per batch.
TEST_F(NetfrontTest, TxCompletionsNotifyOncePerHalfOfWhatIsInFlight) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  for (int i = 0; i < 16; ++i) {
    ASSERT_EQ(queue.send(pattern(100, 1), {}), TxStatus::kOk);
  }
  queue.flush_tx();
  EXPECT_FALSE(queue.poll({}).more_work);
  EXPECT_EQ(queue.tx_event_batch(), 8U);
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 16U);
  protocol::TxBackRing& ring = *backend_->queues()[0].tx;
  for (std::size_t i = 0; i < 7; ++i) {
    ASSERT_TRUE(ring.push_response({requests[i].id, protocol::kRspOkay}));
  }
  EXPECT_FALSE(ring.push_responses_and_check_notify()) << "7 of 16 answered: no wake-up yet";
  ASSERT_TRUE(ring.push_response({requests[7].id, protocol::kRspOkay}));
  EXPECT_TRUE(ring.push_responses_and_check_notify()) << "the 8th of 16 asks for one";
  EXPECT_FALSE(queue.poll({}).more_work);
  EXPECT_EQ(queue.tx_free_pages(), 248U);
  EXPECT_EQ(queue.tx_event_batch(), 4U) << "8 still in flight";
}

// A single frame in flight (a ping, or the last pages the TAP waits for)
// still gets its completion notified at once.
TEST_F(NetfrontTest, TxLoneFrameCompletionIsNotified) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  ASSERT_EQ(queue.send(pattern(100, 1), {}), TxStatus::kOk);
  queue.flush_tx();
  EXPECT_FALSE(queue.poll({}).more_work);
  EXPECT_EQ(queue.tx_event_batch(), 1U);
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 1U);
  protocol::TxBackRing& ring = *backend_->queues()[0].tx;
  ASSERT_TRUE(ring.push_response({requests[0].id, protocol::kRspOkay}));
  EXPECT_TRUE(ring.push_responses_and_check_notify());
}

// ---- RX ---------------------------------------------------------------------

TEST_F(NetfrontTest, RxFrameIsDeliveredZeroCopyAndRePosted) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto frame = pattern(1514, 4);
  backend_->deliver_rx(0, frame, protocol::kRxfDataValidated);
  std::vector<std::vector<std::uint8_t>> received;
  std::vector<net::PacketMeta> metas;
  const protocol::RingIndex before = queue.rx_request_producer();
  const auto result = queue.poll([&](const RxFrame& rx) {
    ASSERT_EQ(rx.segments.size(), 1U);
    received.emplace_back(rx.segments[0].begin(), rx.segments[0].end());
    metas.push_back(rx.meta);
  });
  EXPECT_FALSE(result.failed);
  ASSERT_EQ(received.size(), 1U);
  EXPECT_EQ(received[0], frame);
  EXPECT_EQ(metas[0].checksum, net::ChecksumState::kValidated);
  EXPECT_EQ(queue.rx_request_producer(), before + 1) << "the page went back to the backend";
  EXPECT_EQ(backend_->queues()[0].rx->pending_requests().count, 256U);
  EXPECT_EQ(queue.stats().rx_packets, 1U);
  EXPECT_EQ(queue.stats().rx_bytes, 1514U);
}

// A poll without `events` (the loop woke for the TAP, not for the event
// channel) reads no event: what the ring holds is delivered all the same,
// and the event stays for the next poll that reads it.
TEST_F(NetfrontTest, PollReadsEventsOnlyWhenAsked) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  queue.poll({});  // the events of the connect
  const std::uint64_t events = queue.stats().events_received;
  backend_->deliver_rx(0, pattern(200, 1), 0);
  std::size_t frames = 0;
  EXPECT_FALSE(queue.poll([&](const RxFrame&) { ++frames; }, false).failed);
  EXPECT_EQ(frames, 1U);
  EXPECT_EQ(queue.stats().events_received, events);
  pollfd fd{queue.event_fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&fd, 1, 0), 1) << "the event is still there to be read";
  queue.poll({});
  EXPECT_EQ(queue.stats().events_received, events + 1);
}

// Consumed RX buffers go back in one push with at most one notification,
// however many frames the poll delivered.
TEST_F(NetfrontTest, RxBuffersAreRePostedInOnePushWithOneNotification) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  for (int i = 0; i < 8; ++i) {
    backend_->deliver_rx(0, pattern(1000, 1), 0);
  }
  // The backend is out of requests it wants and asks to be told of new ones.
  protocol::RxBackRing& ring = *backend_->queues()[0].rx;
  EXPECT_TRUE(ring.final_check_for_requests()) << "248 buffers still posted";
  std::vector<protocol::RxRequest> rest(248);
  ASSERT_EQ(ring.take_requests(rest).count, 248U);
  EXPECT_FALSE(ring.final_check_for_requests());
  const std::uint64_t sent = queue.stats().notifications_sent;
  const protocol::RingIndex before = queue.rx_request_producer();
  std::size_t frames = 0;
  queue.poll([&](const RxFrame&) { ++frames; });
  EXPECT_EQ(frames, 8U);
  EXPECT_EQ(queue.rx_request_producer(), before + 8);
  EXPECT_EQ(queue.stats().notifications_sent, sent + 1);
  EXPECT_EQ(ring.pending_requests().count, 8U);
}

// Xen's event fd is readable exactly while a port waits in it: one port is
// read per wake-up, without the read that would find nothing (poll()
// reports the fd again for another port).
TEST_F(NetfrontTest, OnXenOnePortIsReadPerWakeUp) {
  guest_->exact_readiness_as = true;
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  for (int i = 0; i < 4; ++i) {
    queue.poll({});  // the connect's events, one per poll
  }
  backend_->deliver_rx(0, pattern(200, 1), 0);
  guest_->pending_calls->store(0);
  std::size_t frames = 0;
  EXPECT_FALSE(queue.poll([&](const RxFrame&) { ++frames; }).failed);
  EXPECT_EQ(frames, 1U);
  EXPECT_EQ(guest_->pending_calls->load(), 1U);
}

// The simulator's event fd may stay readable after the last port was
// taken: there the events are read until none is left.
TEST_F(NetfrontTest, OnTheSimulatorEventsAreReadUntilNoneIsLeft) {
  ASSERT_FALSE(guest_->open_event_channels()->readable_exactly_while_pending());
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  queue.poll({});
  backend_->deliver_rx(0, pattern(200, 1), 0);
  guest_->pending_calls->store(0);
  queue.poll({});
  EXPECT_EQ(guest_->pending_calls->load(), 2U) << "the port, then the read that finds none";
}

TEST_F(NetfrontTest, RxSegmentsPointIntoSharedPages) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  backend_->deliver_rx(0, pattern(200, 1), 0);
  const auto requests = backend_->take_rx(0, 0);
  std::uint8_t* first = nullptr;
  queue.poll([&](const RxFrame& rx) { first = rx.segments[0].data(); });
  ASSERT_NE(first, nullptr);
  // The backend writes through the grant straight into what we were given.
  const auto next = backend_->take_rx(0, 255);
  const auto rerun = backend_->take_rx(0, 1);  // the re-posted page, id 0 again
  ASSERT_EQ(rerun.size(), 1U);
  EXPECT_EQ(rerun[0].id, 0U);
  const std::uint8_t marker[] = {0xAB, 0xCD};
  backend_->copy_to_guest(rerun[0].gref, 0, marker);
  EXPECT_EQ(first[0], 0xAB);
  EXPECT_EQ(first[1], 0xCD);
}

TEST_F(NetfrontTest, RxMultiSlotGsoFrameCarriesMeta) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto frame = pattern(9000, 2);
  backend_->deliver_rx(0, frame, protocol::kRxfCsumBlank | protocol::kRxfDataValidated,
                       protocol::kGsoTypeTcpv6, 1440);
  std::vector<std::uint8_t> joined;
  net::PacketMeta meta;
  std::size_t frames = 0;
  queue.poll([&](const RxFrame& rx) {
    ++frames;
    EXPECT_EQ(rx.segments.size(), 3U);
    EXPECT_EQ(rx.length, 9000U);
    for (const auto segment : rx.segments) {
      joined.insert(joined.end(), segment.begin(), segment.end());
    }
    meta = rx.meta;
  });
  ASSERT_EQ(frames, 1U);
  EXPECT_EQ(joined, frame);
  EXPECT_EQ(meta.checksum, net::ChecksumState::kPartial);
  EXPECT_EQ(meta.gso_type, net::GsoType::kTcpv6);
  EXPECT_EQ(meta.gso_size, 1440U);
  EXPECT_EQ(backend_->queues()[0].rx->pending_requests().count, 256U)
      << "three data pages and the extra slot's page re-posted";
}

TEST_F(NetfrontTest, RxErrorResponseDropsOnlyThatFrame) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto requests = backend_->take_rx(0, 1);
  protocol::RxResponse error{};
  error.id = requests[0].id;
  error.status = protocol::kRspError;
  backend_->respond_rx(0, {error});
  backend_->deliver_rx(0, pattern(60, 1), 0);
  std::size_t frames = 0;
  EXPECT_FALSE(queue.poll([&](const RxFrame&) { ++frames; }).failed);
  EXPECT_EQ(frames, 1U);
  EXPECT_EQ(queue.stats().rx_dropped, 1U);
  EXPECT_TRUE(front->connected());
}

TEST_F(NetfrontTest, ThousandRoundTripsShareNoNewPages) {
  auto front = start_connected();
  const std::size_t shares_after_connect = guest_->share_calls;
  EXPECT_EQ(shares_after_connect, 3U) << "rings, TX pool, RX pool: one call each";
  NetfrontQueue& queue = front->queue(0);
  std::size_t received = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(queue.send(pattern(1000, static_cast<std::uint8_t>(i)), {}), TxStatus::kOk);
    queue.flush_tx();
    const auto requests = backend_->take_tx(0);
    ASSERT_EQ(requests.size(), 1U);
    backend_->respond_tx(0, {{requests[0].id, protocol::kRspOkay}});
    backend_->deliver_rx(0, pattern(1000, static_cast<std::uint8_t>(i)), 0);
    queue.poll([&](const RxFrame&) { ++received; });
  }
  EXPECT_EQ(received, 1000U);
  EXPECT_EQ(guest_->share_calls, shares_after_connect);
  EXPECT_EQ(queue.tx_free_pages(), 256U);
}

// ---- hostile backend ----------------------------------------------------------
// The backend is not trusted: each behaviour below either costs only the
// frame it concerns (dropped and counted) or fails the device with an error
// node naming the cause; the frontend never loops, leaks or reads outside
// what it validated. ctest label `hostile`.

class NetfrontHostileTest : public NetfrontTest {};

TEST_F(NetfrontHostileTest, TxResponseWithUnknownIdFailsTheDevice) {
  auto front = start_connected();
  ASSERT_EQ(front->queue(0).send(pattern(64, 1), {}), TxStatus::kOk);
  front->queue(0).flush_tx();
  const auto requests = backend_->take_tx(0);
  backend_->respond_tx(0, {{static_cast<std::uint16_t>(requests[0].id + 1), protocol::kRspOkay}});
  expect_failed(*front, "not outstanding");
}

TEST_F(NetfrontHostileTest, TxResponseIdOutOfRangeFailsTheDevice) {
  auto front = start_connected();
  ASSERT_EQ(front->queue(0).send(pattern(64, 1), {}), TxStatus::kOk);
  front->queue(0).flush_tx();
  backend_->take_tx(0);
  backend_->respond_tx(0, {{4000, protocol::kRspOkay}});
  expect_failed(*front, "out of range");
}

TEST_F(NetfrontHostileTest, DuplicateTxResponseFailsTheDevice) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  ASSERT_EQ(queue.send(pattern(64, 1), {}), TxStatus::kOk);
  ASSERT_EQ(queue.send(pattern(64, 2), {}), TxStatus::kOk);
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 2U);
  backend_->respond_tx(
      0, {{requests[0].id, protocol::kRspOkay}, {requests[0].id, protocol::kRspOkay}});
  expect_failed(*front, "not outstanding");
}

TEST_F(NetfrontHostileTest, TxResponseWithUnknownStatusFailsTheDevice) {
  auto front = start_connected();
  ASSERT_EQ(front->queue(0).send(pattern(64, 1), {}), TxStatus::kOk);
  front->queue(0).flush_tx();
  const auto requests = backend_->take_tx(0);
  backend_->respond_tx(0, {{requests[0].id, 77}});
  expect_failed(*front, "unknown status");
}

TEST_F(NetfrontHostileTest, RxOffsetPlusSizeBeyondPageFailsTheDevice) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 1);
  protocol::RxResponse response{};
  response.id = requests[0].id;
  response.offset = 4000;
  response.status = 200;
  backend_->respond_rx(0, {response});
  expect_failed(*front, "exceeds the page");
}

TEST_F(NetfrontHostileTest, RxResponseWithWrongIdFailsTheDevice) {
  auto front = start_connected();
  backend_->take_rx(0, 1);
  protocol::RxResponse response{};
  response.id = 17;
  response.status = 60;
  backend_->respond_rx(0, {response});
  expect_failed(*front, "expected 0");
}

TEST_F(NetfrontHostileTest, RxPacketOfTooManySlotsFailsTheDevice) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 40);
  std::vector<protocol::RxResponse> responses;
  responses.reserve(requests.size());
  for (const auto& request : requests) {
    protocol::RxResponse response{};
    response.id = request.id;
    response.status = 100;
    response.flags = protocol::kRxfMoreData;
    responses.push_back(response);
  }
  backend_->respond_rx(0, responses);
  expect_failed(*front, "more than 32 slots");
}

TEST_F(NetfrontHostileTest, RxProducerOverflowFailsTheDevice) {
  auto front = start_connected();
  // rsp_prod (word 2 of the shared ring) far beyond anything posted.
  auto* words = static_cast<std::uint32_t*>(backend_->queues()[0].rx_page);
  std::atomic_ref<std::uint32_t>(words[2]).store(1000);
  expect_failed(*front, "producer");
}

TEST_F(NetfrontHostileTest, TxProducerOverflowFailsTheDevice) {
  auto front = start_connected();
  auto* words = static_cast<std::uint32_t*>(backend_->queues()[0].tx_page);
  std::atomic_ref<std::uint32_t>(words[2]).store(5);
  expect_failed(*front, "producer");
}

TEST_F(NetfrontHostileTest, FailedDeviceRecoversWhenBackendReturnsToInitWait) {
  auto front = start_connected();
  auto* words = static_cast<std::uint32_t*>(backend_->queues()[0].tx_page);
  std::atomic_ref<std::uint32_t>(words[2]).store(5);
  expect_failed(*front, "producer");
  backend_->detach();
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kFailed) << "backend still Connected: no reconnect";
  backend_->set_state(XenbusState::kClosed);
  front->process_xenstore();
  backend_->offer({});
  front->process_xenstore();
  EXPECT_TRUE(front->connected());
  EXPECT_EQ(front->connect_count(), 2U);
}

protocol::RxResponse rx_slot(std::uint16_t id, std::int16_t status, std::uint16_t flags,
                             std::uint16_t offset = 0) {
  protocol::RxResponse response{};
  response.id = id;
  response.offset = offset;
  response.status = status;
  response.flags = flags;
  return response;
}

protocol::RxResponse rx_extra(std::uint8_t type, bool more) {
  protocol::ExtraInfo extra{};
  extra.type = type;
  extra.flags = more ? protocol::kExtraFlagMore : 0;
  if (type == protocol::kExtraTypeGso) {
    extra.u.gso.type = protocol::kGsoTypeTcpv4;
    extra.u.gso.size = 1448;
  }
  return std::bit_cast<protocol::RxResponse>(extra);
}

TEST_F(NetfrontHostileTest, RxExtraInfoChainThatNeverEndsFailsTheDevice) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 12);
  std::vector<protocol::RxResponse> responses{rx_slot(requests[0].id, 60, protocol::kRxfExtraInfo)};
  // Every extra says "another follows".
  for (std::size_t i = 1; i < requests.size(); ++i) {
    responses.push_back(rx_extra(protocol::kExtraTypeGso, true));
  }
  backend_->respond_rx(0, responses);
  expect_failed(*front, "extra-info chain");
}

TEST_F(NetfrontHostileTest, RxErrorSlotsCountAgainstTheSlotLimit) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 40);
  std::vector<protocol::RxResponse> responses;
  responses.reserve(requests.size());
  for (const auto& request : requests) {
    responses.push_back(rx_slot(request.id, protocol::kRspError, protocol::kRxfMoreData));
  }
  backend_->respond_rx(0, responses);
  expect_failed(*front, "more than 32 slots");
}

TEST_F(NetfrontHostileTest, RxZeroLengthContinuationsCountAgainstTheSlotLimit) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 40);
  std::vector<protocol::RxResponse> responses;
  responses.reserve(requests.size());
  for (const auto& request : requests) {
    responses.push_back(rx_slot(request.id, 0, protocol::kRxfMoreData));
  }
  backend_->respond_rx(0, responses);
  expect_failed(*front, "more than 32 slots");
}

TEST_F(NetfrontHostileTest, RxBadExtraTypesDropOnlyThoseFrames) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  // A repeated GSO extra, then an extra of an unknown type: each costs its
  // own frame. A good frame follows.
  const auto requests = backend_->take_rx(0, 5);
  backend_->respond_rx(
      0, {rx_slot(requests[0].id, 60, protocol::kRxfExtraInfo),
          rx_extra(protocol::kExtraTypeGso, true), rx_extra(protocol::kExtraTypeGso, false),
          rx_slot(requests[3].id, 60, protocol::kRxfExtraInfo), rx_extra(9, false)});
  backend_->deliver_rx(0, pattern(70, 1), 0);
  std::vector<std::size_t> lengths;
  EXPECT_FALSE(queue.poll([&](const RxFrame& rx) { lengths.push_back(rx.length); }).failed);
  EXPECT_EQ(lengths, std::vector<std::size_t>{70});
  EXPECT_EQ(queue.stats().rx_bad_extra, 2U);
  EXPECT_EQ(queue.stats().rx_dropped, 2U);
  EXPECT_TRUE(front->connected());
  EXPECT_EQ(backend_->queues()[0].rx->pending_requests().count, 256U) << "every page re-posted";
}

TEST_F(NetfrontHostileTest, RxXdpExtraMustNameTheFirstSlotsOffset) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  const auto xdp_extra = [](std::uint16_t headroom) {
    protocol::ExtraInfo extra{};
    extra.type = protocol::kExtraTypeXdp;
    extra.u.pad[0] = headroom;
    return std::bit_cast<protocol::RxResponse>(extra);
  };
  // Data at 256 announced as 256: delivered from there. Data at 0
  // announced as 256: the frame is dropped as a bad extra.
  const auto requests = backend_->take_rx(0, 4);
  const auto payload = pattern(60, 3);
  backend_->copy_to_guest(requests[0].gref, 256, payload);
  backend_->respond_rx(0,
                       {rx_slot(requests[0].id, 60, protocol::kRxfExtraInfo, 256), xdp_extra(256),
                        rx_slot(requests[2].id, 60, protocol::kRxfExtraInfo, 0), xdp_extra(256)});
  std::vector<std::vector<std::uint8_t>> received;
  EXPECT_FALSE(queue
                   .poll([&](const RxFrame& rx) {
                     ASSERT_EQ(rx.segments.size(), 1U);
                     received.emplace_back(rx.segments[0].begin(), rx.segments[0].end());
                   })
                   .failed);
  ASSERT_EQ(received.size(), 1U);
  EXPECT_EQ(received[0], payload);
  EXPECT_EQ(queue.stats().rx_headroom_packets, 1U);
  EXPECT_EQ(queue.stats().rx_bad_extra, 1U);
  EXPECT_EQ(queue.stats().rx_dropped, 1U);
  EXPECT_TRUE(front->connected());
}

TEST_F(NetfrontHostileTest, RxFrameAbove64KiBIsDroppedAndCounted) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  // 17 full slots: 69632 bytes, more than netif's 16-bit size can describe.
  const auto requests = backend_->take_rx(0, 17);
  std::vector<protocol::RxResponse> responses;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const std::uint16_t more = i + 1 < requests.size() ? protocol::kRxfMoreData : 0;
    responses.push_back(rx_slot(requests[i].id, 4096, more));
  }
  backend_->respond_rx(0, responses);
  backend_->deliver_rx(0, pattern(80, 1), 0);
  std::vector<std::size_t> lengths;
  EXPECT_FALSE(queue.poll([&](const RxFrame& rx) { lengths.push_back(rx.length); }).failed);
  EXPECT_EQ(lengths, std::vector<std::size_t>{80});
  EXPECT_EQ(queue.stats().rx_too_long, 1U);
  EXPECT_EQ(queue.stats().rx_dropped, 1U);
  EXPECT_TRUE(front->connected());
}

TEST_F(NetfrontHostileTest, RxResponseIdBeyondTheRingFailsTheDevice) {
  auto front = start_connected();
  backend_->take_rx(0, 1);
  backend_->respond_rx(0, {rx_slot(300, 60, 0)});
  expect_failed(*front, "carries id 300");
}

TEST_F(NetfrontHostileTest, RxOffsetBeyondThePageFailsEvenWithZeroSize) {
  auto front = start_connected();
  const auto requests = backend_->take_rx(0, 1);
  backend_->respond_rx(0, {rx_slot(requests[0].id, 0, 0, 5000)});
  expect_failed(*front, "offset 5000");
}

TEST_F(NetfrontHostileTest, TxNullResponsesForDataSlotsStillFreeThePages) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  // More frames than the pool has pages: a leak would stop TX at 256.
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(queue.send(pattern(64, static_cast<std::uint8_t>(i)), {}), TxStatus::kOk) << i;
    queue.flush_tx();
    const auto requests = backend_->take_tx(0);
    ASSERT_EQ(requests.size(), 1U);
    backend_->respond_tx(0, {{requests[0].id, protocol::kRspNull}});
    ASSERT_FALSE(queue.poll({}).failed) << queue.failure();
  }
  EXPECT_EQ(queue.tx_free_pages(), 256U);
  EXPECT_EQ(queue.stats().tx_null_responses, 300U);
  EXPECT_TRUE(front->connected());
}

TEST_F(NetfrontHostileTest, TxGsoFrameAnsweredWithNullAndErrorsFreesEveryPage) {
  auto front = start_connected();
  NetfrontQueue& queue = front->queue(0);
  net::PacketMeta meta;
  meta.checksum = net::ChecksumState::kPartial;
  meta.gso_type = net::GsoType::kTcpv4;
  meta.gso_size = 1448;
  ASSERT_EQ(queue.send(pattern(10000, 4), meta), TxStatus::kOk);
  queue.flush_tx();
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 4U);
  // The extra's NULL carries a stale id, as Linux netback leaves it; the
  // data slots get NULL and DROPPED.
  backend_->respond_tx(0, {{requests[0].id, protocol::kRspOkay},
                           {requests[2].id, protocol::kRspNull},
                           {requests[2].id, protocol::kRspNull},
                           {requests[3].id, protocol::kRspDropped}});
  EXPECT_FALSE(queue.poll({}).failed) << queue.failure();
  EXPECT_EQ(queue.tx_free_pages(), 256U);
  EXPECT_EQ(queue.stats().tx_null_responses, 1U);
  EXPECT_EQ(queue.stats().tx_error_responses, 1U);
}

TEST_F(NetfrontHostileTest, TxNullResponseNamingNoOutstandingPageFailsTheDevice) {
  auto front = start_connected();
  ASSERT_EQ(front->queue(0).send(pattern(64, 1), {}), TxStatus::kOk);
  front->queue(0).flush_tx();
  const auto requests = backend_->take_tx(0);
  backend_->respond_tx(0, {{static_cast<std::uint16_t>(requests[0].id + 5), protocol::kRspNull}});
  expect_failed(*front, "not outstanding");
}

// ---- lifecycle -------------------------------------------------------------------

TEST_F(NetfrontTest, BackendClosingDisconnectsAndInitWaitReconnects) {
  auto front = start_connected();
  const std::size_t shares = guest_->share_calls;
  backend_->set_state(XenbusState::kClosing);
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kClosed);
  EXPECT_EQ(backend_->frontend_value(key::kState), "6");
  EXPECT_FALSE(backend_->frontend_value(key::kTxRingRef).has_value()) << "stale refs removed";
  EXPECT_EQ(front->queue_count(), 0U);
  backend_->detach();
  backend_->set_state(XenbusState::kClosed);
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kClosed);

  backend_->offer({});
  front->process_xenstore();
  ASSERT_TRUE(front->connected());
  EXPECT_EQ(front->connect_count(), 2U);
  EXPECT_EQ(guest_->share_calls, 2 * shares) << "a new connection shares new pages once";
  backend_->attach();
  ASSERT_EQ(front->queue(0).send(pattern(80, 3), {}), TxStatus::kOk);
  front->queue(0).flush_tx();
  EXPECT_EQ(backend_->take_tx(0).size(), 1U);
}

TEST_F(NetfrontTest, BackendRemovedDisconnects) {
  auto front = start_connected();
  backend_->detach();
  backend_->xenstore().rm(backend_->backend_path());
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kClosed);
  EXPECT_EQ(backend_->frontend_value(key::kState), "6");
}

TEST_F(NetfrontTest, CloseGoesClosingThenClosed) {
  auto front = start_connected();
  backend_->set_state(XenbusState::kClosing);
  front->close(std::chrono::milliseconds(2000));
  EXPECT_EQ(front->state(), NetfrontState::kClosed);
  EXPECT_EQ(backend_->frontend_value(key::kState), "6");
  EXPECT_FALSE(backend_->frontend_value(key::kRxRingRef).has_value());
  backend_->offer({});
  front->process_xenstore();
  EXPECT_EQ(front->state(), NetfrontState::kClosed) << "a closed device stays closed";
}

TEST_F(NetfrontTest, MultiQueueTrafficUsesEveryQueue) {
  BackendOffer offer;
  NetfrontOptions options;
  options.queues = 4;
  auto front = start(offer, options);
  ASSERT_EQ(front->queue_count(), 4U);
  backend_->attach();
  for (std::size_t q = 0; q < 4; ++q) {
    ASSERT_EQ(front->queue(q).send(pattern(100 + q, 1), {}), TxStatus::kOk);
    front->queue(q).flush_tx();
    const auto requests = backend_->take_tx(q);
    ASSERT_EQ(requests.size(), 1U);
    EXPECT_EQ(requests[0].size, 100U + q);
    backend_->deliver_rx(q, pattern(70 + q, 2), 0);
    std::size_t length = 0;
    front->queue(q).poll([&](const RxFrame& rx) { length = rx.length; });
    EXPECT_EQ(length, 70U + q);
  }
}

// ---- TAP pump (a datagram socketpair stands in for the TAP fd) ------------------

// Ethernet + IPv4 + TCP (20-byte headers) with `payload` bytes of data.
std::vector<std::uint8_t> tcp4_frame(std::size_t payload) {
  std::vector<std::uint8_t> frame = pattern(14 + 20 + 20 + payload, 1);
  frame[12] = 0x08;
  frame[13] = 0x00;
  const std::size_t ip_total = 20 + 20 + payload;
  frame[14] = 0x45;
  frame[15] = 0;
  frame[16] = static_cast<std::uint8_t>(ip_total >> 8);
  frame[17] = static_cast<std::uint8_t>(ip_total);
  frame[20] = 0x40;  // don't fragment, offset 0
  frame[21] = 0;
  frame[23] = 6;               // TCP
  frame[14 + 20 + 12] = 0x50;  // data offset 5 words
  return frame;
}

class SocketPair {
 public:
  SocketPair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0, fds_), 0); }
  ~SocketPair() {
    ::close(fds_[0]);
    ::close(fds_[1]);
  }
  int tap() const { return fds_[0]; }   // the daemon's end
  int host() const { return fds_[1]; }  // the kernel's end

 private:
  int fds_[2] = {-1, -1};
};

TEST_F(NetfrontTest, PumpMovesTapGsoFrameIntoTxRing) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(NetfrontQueue::kMaxFrame);
  const auto frame = tcp4_frame(9000);
  net::VirtioNetHdr header{};
  header.flags = net::kVirtioNetHdrFNeedsCsum;
  header.gso_type = net::kVirtioNetHdrGsoTcpv4;
  header.hdr_len = 54;
  header.gso_size = 1448;
  header.csum_start = 34;
  header.csum_offset = 16;
  std::vector<std::uint8_t> datagram(sizeof(header));
  std::memcpy(datagram.data(), &header, sizeof(header));
  datagram.insert(datagram.end(), frame.begin(), frame.end());
  ASSERT_EQ(::send(pair.host(), datagram.data(), datagram.size(), 0),
            static_cast<ssize_t>(datagram.size()));
  bool drained = false;
  EXPECT_EQ(pump.tap_to_ring(pair.tap(), front->queue(0), 64, drained), 1U);
  EXPECT_TRUE(drained);
  EXPECT_EQ(pump.stats().tap_to_ring, 1U);
  const auto requests = backend_->take_tx(0);
  ASSERT_EQ(requests.size(), 4U) << "9054 bytes: first, GSO extra, two continuations";
  EXPECT_EQ(requests[0].size, frame.size());
  EXPECT_EQ(requests[0].flags, protocol::kTxfCsumBlank | protocol::kTxfDataValidated |
                                   protocol::kTxfExtraInfo | protocol::kTxfMoreData);
  protocol::ExtraInfo extra{};
  std::memcpy(&extra, &requests[1], sizeof(extra));
  EXPECT_EQ(extra.u.gso.size, 1448U);
  std::vector<std::uint8_t> copied(frame.size());
  std::size_t done = 0;
  for (const std::size_t index : {0U, 2U, 3U}) {
    const std::size_t bytes = std::min<std::size_t>(kPageSize, frame.size() - done);
    backend_->copy_from_guest(requests[index].gref, 0, std::span(copied).subspan(done, bytes));
    done += bytes;
  }
  EXPECT_EQ(copied, frame);
}

TEST_F(NetfrontTest, PumpDropsOversizeTapFrame) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(1500 + 18);
  std::vector<std::uint8_t> datagram(sizeof(net::VirtioNetHdr) + 3000, 0);
  ASSERT_GT(::send(pair.host(), datagram.data(), datagram.size(), 0), 0);
  bool drained = false;
  pump.tap_to_ring(pair.tap(), front->queue(0), 64, drained);
  EXPECT_EQ(pump.stats().drop_oversize, 1U);
  EXPECT_EQ(front->queue(0).tx_free_pages(), 256U);
  EXPECT_TRUE(backend_->take_tx(0).empty());
}

TEST_F(NetfrontTest, PumpWritesMultiSlotGsoFrameWithLocatedChecksum) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(NetfrontQueue::kMaxFrame);
  const auto frame = tcp4_frame(9000);
  backend_->deliver_rx(0, frame, protocol::kRxfCsumBlank | protocol::kRxfDataValidated,
                       protocol::kGsoTypeTcpv4, 1448);
  const int tap = pair.tap();
  front->queue(0).poll([&](const RxFrame& rx) { pump.ring_to_tap(tap, rx); });
  EXPECT_EQ(pump.stats().ring_to_tap, 1U);
  EXPECT_EQ(pump.stats().rx_linearized, 0U) << "headers were all in the first slot";
  std::vector<std::uint8_t> datagram(70000);
  const ssize_t n = ::recv(pair.host(), datagram.data(), datagram.size(), 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(net::VirtioNetHdr) + frame.size()));
  net::VirtioNetHdr header{};
  std::memcpy(&header, datagram.data(), sizeof(header));
  EXPECT_EQ(header.flags, net::kVirtioNetHdrFNeedsCsum);
  EXPECT_EQ(header.gso_type, net::kVirtioNetHdrGsoTcpv4);
  EXPECT_EQ(header.gso_size, 1448U);
  EXPECT_EQ(header.csum_start, 34U);
  EXPECT_EQ(header.csum_offset, 16U);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), datagram.begin() + sizeof(header)));
}

// The largest GSO frame netif carries (16 slots) reaches the TAP as one
// write with its virtio header: the guest's TCP gets it whole.
TEST_F(NetfrontTest, PumpWritesA64KiBGsoFrameInOneWrite) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(NetfrontQueue::kMaxFrame);
  const auto frame = tcp4_frame(65000);
  backend_->deliver_rx(0, frame, protocol::kRxfCsumBlank | protocol::kRxfDataValidated,
                       protocol::kGsoTypeTcpv4, 1448);
  const int tap = pair.tap();
  std::size_t slots = 0;
  front->queue(0).poll([&](const RxFrame& rx) {
    slots = rx.segments.size();
    pump.ring_to_tap(tap, rx);
  });
  EXPECT_EQ(slots, 16U);
  EXPECT_EQ(pump.stats().ring_to_tap, 1U);
  EXPECT_EQ(pump.stats().ring_to_tap_bytes, frame.size());
  std::vector<std::uint8_t> datagram(70000);
  const ssize_t n = ::recv(pair.host(), datagram.data(), datagram.size(), 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(net::VirtioNetHdr) + frame.size()));
  net::VirtioNetHdr header{};
  std::memcpy(&header, datagram.data(), sizeof(header));
  EXPECT_EQ(header.gso_type, net::kVirtioNetHdrGsoTcpv4);
  EXPECT_EQ(header.gso_size, 1448U);
  EXPECT_EQ(header.flags, net::kVirtioNetHdrFNeedsCsum);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), datagram.begin() + sizeof(header)));
}

// The backend keeps write access to the RX pages: the offload is located in
// the pump's private copy of the headers and that copy is what the TAP gets;
// nothing is written into the backend's page.
TEST_F(NetfrontHostileTest, RxOffloadIsLocatedOnAPrivateCopyNotInTheBackendsPage) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(NetfrontQueue::kMaxFrame);
  const auto frame = tcp4_frame(1000);
  // GSO without csum_blank: the pseudo-header sum must be seeded.
  backend_->deliver_rx(0, frame, protocol::kRxfDataValidated, protocol::kGsoTypeTcpv4, 1448);
  const int tap = pair.tap();
  std::vector<std::uint8_t> page_after;
  front->queue(0).poll([&](const RxFrame& rx) {
    pump.ring_to_tap(tap, rx);
    ASSERT_EQ(rx.segments.size(), 1U);
    page_after.assign(rx.segments[0].begin(), rx.segments[0].end());
  });
  ASSERT_EQ(pump.stats().ring_to_tap, 1U);
  EXPECT_EQ(page_after, frame) << "the backend's page was written to";
  std::vector<std::uint8_t> datagram(70000);
  const ssize_t n = ::recv(pair.host(), datagram.data(), datagram.size(), 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(net::VirtioNetHdr) + frame.size()));
  net::VirtioNetHdr header{};
  std::memcpy(&header, datagram.data(), sizeof(header));
  EXPECT_EQ(header.csum_start, 34U);
  EXPECT_EQ(header.csum_offset, 16U);
  EXPECT_EQ(header.gso_type, net::kVirtioNetHdrGsoTcpv4);
  std::vector<std::uint8_t> expected = frame;
  net::ChecksumLocation where;
  ASSERT_EQ(net::locate_checksum(expected, where), net::PacketStatus::kOk);
  ASSERT_EQ(net::seed_pseudo_header_checksum(expected, where), net::PacketStatus::kOk);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), datagram.begin() + sizeof(header)))
      << "the TAP gets the checked copy with the seeded sum";
}

TEST_F(NetfrontHostileTest, RxHeadersSplitAcrossSlotsAreParsedFromTheCopy) {
  auto front = start_connected();
  SocketPair pair;
  TapPump pump(NetfrontQueue::kMaxFrame);
  const auto frame = tcp4_frame(3000);
  // The IP header straddles the slot boundary: 40 bytes, then the rest.
  const auto requests = backend_->take_rx(0, 2);
  backend_->copy_to_guest(requests[0].gref, 0, std::span(frame).first(40));
  backend_->copy_to_guest(requests[1].gref, 0, std::span(frame).subspan(40));
  backend_->respond_rx(
      0, {rx_slot(requests[0].id, 40,
                  protocol::kRxfCsumBlank | protocol::kRxfDataValidated | protocol::kRxfMoreData),
          rx_slot(requests[1].id, static_cast<std::int16_t>(frame.size() - 40), 0)});
  const int tap = pair.tap();
  front->queue(0).poll([&](const RxFrame& rx) { pump.ring_to_tap(tap, rx); });
  ASSERT_EQ(pump.stats().ring_to_tap, 1U);
  EXPECT_EQ(pump.stats().rx_linearized, 0U) << "only the header prefix was copied";
  std::vector<std::uint8_t> datagram(70000);
  const ssize_t n = ::recv(pair.host(), datagram.data(), datagram.size(), 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(net::VirtioNetHdr) + frame.size()));
  net::VirtioNetHdr header{};
  std::memcpy(&header, datagram.data(), sizeof(header));
  EXPECT_EQ(header.flags, net::kVirtioNetHdrFNeedsCsum);
  EXPECT_EQ(header.csum_start, 34U);
  EXPECT_EQ(header.csum_offset, 16U);
  EXPECT_TRUE(std::equal(frame.begin(), frame.end(), datagram.begin() + sizeof(header)));
}

}  // namespace
}  // namespace vifd::frontend::testing
