// A netif control ring between a test frontend (domain 1: shared ring page,
// unbound port, FrontRing) and vifd's CtrlRing (dom0) on an io_context the
// test drives: requests go through the shared page and the event channel,
// responses come back the same way.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/lib/control/ctrl_ring.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

class CtrlRingTest : public ControlPlaneTest {
 protected:
  void SetUp() override {
    ControlPlaneTest::SetUp();
    backend_platform_ = host().platform(0);
    frontend_platform_ = host().platform(1);
    share_ = frontend_platform_->open_grant_share();
    events_ = frontend_platform_->open_event_channels();
    ring_page_ = share_->share(0, std::span(&ring_ref_, 1), true);
    data_page_ = share_->share(0, std::span(&data_ref_, 1), false);
    front_.emplace(protocol::CtrlFrontRing::init(
        std::span(static_cast<std::byte*>(ring_page_), platform::kPageSize)));
    port_ = events_->bind_unbound(0);
  }
  void TearDown() override {
    ctrl_.reset();
    share_->unshare(ring_page_, 1);
    share_->unshare(data_page_, 1);
  }

  // static_grants: serve the gref mapping messages (one handoff per queue);
  // without, they are NOT_SUPPORTED.
  void start(unsigned queues = 4, bool static_grants = false) {
    std::vector<std::shared_ptr<GrefHandoff>> handoffs;
    for (unsigned i = 0; static_grants && i < queues; ++i) {
      handoffs.push_back(std::make_shared<GrefHandoff>());
    }
    handoffs_ = handoffs;
    ctrl_ = std::make_unique<CtrlRing>(
        io_, *backend_platform_, 1, ring_ref_, port_, queues, std::make_shared<FlowSteering>(),
        false, [this](const std::string& reason) { fatal_ = reason; }, handoffs);
  }

  // Sends the requests and runs the backend until all are answered.
  std::vector<protocol::CtrlResponse> exchange(const std::vector<protocol::CtrlRequest>& requests) {
    EXPECT_EQ(front_->push_requests(requests), requests.size());
    if (front_->push_requests_and_check_notify()) events_->notify(port_);
    std::vector<protocol::CtrlResponse> responses;
    std::array<protocol::CtrlResponse, 128> batch;
    EXPECT_TRUE(eventually([&] {
      io_.poll();
      io_.restart();
      const auto taken = front_->take_responses(batch);
      responses.insert(responses.end(), batch.begin(),
                       batch.begin() + static_cast<std::ptrdiff_t>(taken.count));
      return responses.size() >= requests.size();
    }));
    return responses;
  }

  static protocol::CtrlRequest request(std::uint16_t id, std::uint16_t type, std::uint32_t a = 0,
                                       std::uint32_t b = 0, std::uint32_t c = 0) {
    protocol::CtrlRequest r{};
    r.id = id;
    r.type = type;
    r.data[0] = a;
    r.data[1] = b;
    r.data[2] = c;
    return r;
  }

  boost::asio::io_context io_;
  std::unique_ptr<platform::Platform> backend_platform_;
  std::unique_ptr<platform::Platform> frontend_platform_;
  std::unique_ptr<platform::GrantShare> share_;
  std::unique_ptr<platform::EventChannels> events_;
  platform::GrantRef ring_ref_ = 0;
  platform::GrantRef data_ref_ = 0;
  void* ring_page_ = nullptr;
  void* data_page_ = nullptr;
  std::optional<protocol::CtrlFrontRing> front_;
  platform::EvtchnPort port_ = 0;
  std::vector<std::shared_ptr<GrefHandoff>> handoffs_;
  std::unique_ptr<CtrlRing> ctrl_;
  std::optional<std::string> fatal_;
};

TEST_F(CtrlRingTest, ServesTheGrefMappingMessagesWhenTheVifOffersThem) {
  start(2, true);
  ASSERT_NE(ctrl_->static_grants(), nullptr);
  // The list (in the read-only data page) names the data page itself.
  auto* list = static_cast<protocol::StaticGrant*>(data_page_);
  list[0] = {data_ref_, XEN_NETIF_CTRLF_GREF_readonly, 0};
  const auto responses = exchange({
      request(1, XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE, 1),
      request(2, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 1, data_ref_, 1),
      request(3, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING, 2, data_ref_, 1),
  });
  ASSERT_EQ(responses.size(), 3U);
  EXPECT_EQ(responses[0].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(responses[0].data, GrefControl::kMaxMappingsPerQueue);
  EXPECT_EQ(responses[1].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(responses[2].status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER) << "no queue 2";
  EXPECT_EQ(ctrl_->static_grants()->mapped(), 1U);
  ASSERT_NE(handoffs_[1]->latest(), nullptr);
  EXPECT_NE(handoffs_[1]->latest()->find(data_ref_), nullptr);
  // The hash messages are still HashControl's.
  EXPECT_EQ(exchange({request(4, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS)}).at(0).status,
            XEN_NETIF_CTRL_STATUS_SUCCESS);
  ctrl_.reset();
  EXPECT_EQ(handoffs_[1]->latest(), nullptr) << "unmapped with the ring";
}

TEST_F(CtrlRingTest, AnswersEachRequestThroughTheRing) {
  start(4);
  auto* data = static_cast<std::uint8_t*>(data_page_);
  for (std::uint8_t i = 0; i < 40; ++i) data[i] = static_cast<std::uint8_t>(0xA0 + i);
  const auto responses = exchange({
      request(1, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS),
      request(2, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ),
      request(3, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP),
      request(4, XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS, 1U << 7),
      request(5, XEN_NETIF_CTRL_TYPE_SET_HASH_KEY, data_ref_, 40),
      request(6, XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE),
      // No static grant handoffs given: a vif without them.
      request(7, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING),
      request(8, 12345),
  });
  ASSERT_EQ(responses.size(), 8U);
  const std::uint32_t expected_status[] = {
      XEN_NETIF_CTRL_STATUS_SUCCESS,       XEN_NETIF_CTRL_STATUS_SUCCESS,
      XEN_NETIF_CTRL_STATUS_SUCCESS,       XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER,
      XEN_NETIF_CTRL_STATUS_SUCCESS,       XEN_NETIF_CTRL_STATUS_SUCCESS,
      XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED, XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED};
  for (std::size_t i = 0; i < responses.size(); ++i) {
    EXPECT_EQ(responses[i].id, i + 1);
    EXPECT_EQ(responses[i].status, expected_status[i]) << "request " << i + 1;
  }
  EXPECT_EQ(responses[0].data, HashControl::kSupportedFlags);
  EXPECT_EQ(responses[5].data, HashControl::kMaxMappingSize);

  const auto snapshot = ctrl_->hash().snapshot();
  EXPECT_TRUE(snapshot->toeplitz);
  EXPECT_EQ(snapshot->flags, std::uint32_t{XEN_NETIF_CTRL_HASH_TYPE_IPV4_TCP});
  ASSERT_EQ(snapshot->key.size(), 40U);
  EXPECT_EQ(snapshot->key[0], 0xA0);
  EXPECT_FALSE(fatal_);

  // A second round on the same ring (the backend re-armed its wait).
  const auto more = exchange({request(9, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 4)});
  ASSERT_EQ(more.size(), 1U);
  EXPECT_EQ(more[0].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_EQ(ctrl_->hash().snapshot()->mapping.size(), 4U);
}

TEST_F(CtrlRingTest, AFrontendKeepingTheRingFullGetsOneRingPerHandler) {
  start(4);
  // The hostile frontend refills the ring as fast as it is answered.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> answered{0};
  std::thread flood([&] {
    std::array<protocol::CtrlResponse, 128> batch;
    std::vector<protocol::CtrlRequest> requests(128,
                                                request(1, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS));
    while (!stop.load()) {
      answered += front_->take_responses(batch).count;
      const std::size_t room = front_->free_requests();
      if (room != 0) {
        EXPECT_EQ(front_->push_requests(std::span(requests).first(room)), room);
        // Notified whatever the ring asked for: a flooder does not care.
        static_cast<void>(front_->push_requests_and_check_notify());
        events_->notify(port_);
      }
    }
  });
  // Another guest's work on the same io_context: a timer every millisecond.
  boost::asio::steady_timer timer(io_);
  std::chrono::steady_clock::duration worst{};
  std::size_t ticks = 0;
  std::function<void()> arm = [&] {
    const auto due = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
    timer.expires_at(due);
    timer.async_wait([&, due](const boost::system::error_code& error) {
      if (error) return;
      worst = std::max(worst, std::chrono::steady_clock::now() - due);
      ++ticks;
      arm();
    });
  };
  arm();
  io_.run_for(std::chrono::milliseconds(500));
  stop.store(true);
  flood.join();
  const auto worst_ms = std::chrono::duration<double, std::milli>(worst).count();
  std::printf(
      "[ ctrl     ] flood: %llu requests answered in 500 ms; a neighbour's timer ran %zu "
      "times, at worst %.1f ms late\n",
      static_cast<unsigned long long>(answered.load()), ticks, worst_ms);
  EXPECT_GT(answered.load(), 128U) << "the flood is served, one ring per handler";
  EXPECT_LT(worst_ms, 100.0);
  EXPECT_GT(ticks, 50U);
  EXPECT_FALSE(fatal_);
}

TEST_F(CtrlRingTest, ANotificationStormCostsTheControlPlaneBoundedWakeups) {
  start(4);
  // About 40,000 notifications a second, none with a request, while the
  // io_context runs.
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> sent{0};
  std::thread storm([&] {
    while (!stop.load()) {
      for (int i = 0; i < 40; ++i) events_->notify(port_);
      sent += 40;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  const auto start_time = std::chrono::steady_clock::now();
  io_.run_for(std::chrono::milliseconds(500));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  stop.store(true);
  storm.join();
  io_.restart();
  const double wakeups_per_second = static_cast<double>(ctrl_->wakeups()) / seconds;
  std::printf(
      "[ ctrl     ] storm: %.0f notifications/s, %.0f wake-ups/s of the control plane, "
      "%llu spurious\n",
      static_cast<double>(sent.load()) / seconds, wakeups_per_second,
      static_cast<unsigned long long>(ctrl_->spurious_events()));
  EXPECT_LE(wakeups_per_second, 1000.0);
  EXPECT_GT(ctrl_->spurious_events(), 1U);
  // Requests after the storm are answered (within the backoff).
  const auto responses = exchange({request(1, XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS)});
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, XEN_NETIF_CTRL_STATUS_SUCCESS);
  EXPECT_FALSE(fatal_);
}

TEST_F(CtrlRingTest, ProducerOverflowIsFatalForTheVif) {
  start(1);
  // A hostile req_prod: far more requests than the ring holds.
  auto* sring = static_cast<std::uint32_t*>(ring_page_);
  sring[0] = 1000;  // req_prod
  events_->notify(port_);
  EXPECT_TRUE(eventually([&] {
    io_.poll();
    io_.restart();
    return fatal_.has_value();
  }));
  ASSERT_TRUE(fatal_);
  EXPECT_NE(fatal_->find(key::kCtrlRingRef), std::string::npos) << *fatal_;
}

TEST_F(CtrlRingTest, BadRingRefOrPortNamesTheKey) {
  try {
    CtrlRing bad(io_, *backend_platform_, 1, 4000, port_, 1, std::make_shared<FlowSteering>(),
                 false, [](const std::string&) {});
    ADD_FAILURE() << "mapped a grant that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(key::kCtrlRingRef), std::string::npos) << e.what();
  }
  try {
    CtrlRing bad(io_, *backend_platform_, 1, ring_ref_, 999, 1, std::make_shared<FlowSteering>(),
                 false, [](const std::string&) {});
    ADD_FAILURE() << "bound a port that was not offered";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(key::kEventChannelCtrl), std::string::npos) << e.what();
  }
}

// The whole path: vifd advertises feature-ctrl-ring, the frontend publishes
// ctrl-ring-ref and event-channel-ctrl with its queues, and the vif's ring
// answers on the daemon's control plane.
TEST_F(CtrlRingTest, VifServesTheControlRingTheFrontendPublished) {
  DaemonThread vifd(host(), options(4));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  EXPECT_EQ(backend_key(1, 0, key::kFeatureCtrlRing), "1");

  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.queues = 2;
  frontend_options.overrides[std::string(key::kCtrlRingRef)] = std::to_string(ring_ref_);
  frontend_options.overrides[std::string(key::kEventChannelCtrl)] = std::to_string(port_);
  frontend.connect(frontend_options);
  ASSERT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
  const auto vifs = vifd.call([&] { return vifd.daemon().describe(VifId{1, 0}); });
  EXPECT_EQ(vifs[0]["features"]["ctrl_ring"], true);

  const std::array<std::uint32_t, 4> valid = {1, 0, 1, 0};
  std::memcpy(data_page_, valid.data(), sizeof valid);
  auto responses = exchange({
      request(1, XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM, XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ),
      request(2, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE, 4),
      request(3, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, data_ref_, 4, 0),
  });
  ASSERT_EQ(responses.size(), 3U);
  for (const auto& response : responses) {
    EXPECT_EQ(response.status, XEN_NETIF_CTRL_STATUS_SUCCESS) << "request " << response.id;
  }
  // Queue 2 of a vif with 2 queues.
  const std::array<std::uint32_t, 1> out_of_range = {2};
  std::memcpy(data_page_, out_of_range.data(), sizeof out_of_range);
  responses = exchange({request(4, XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING, data_ref_, 1, 0)});
  ASSERT_EQ(responses.size(), 1U);
  EXPECT_EQ(responses[0].status, XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER);
  EXPECT_EQ(backend_key(1, 0, key::kState), "4");
}

TEST_F(CtrlRingTest, HostileCtrlRingKeysCloseTheVifNamingTheKey) {
  DaemonThread vifd(host(), options(4));
  toolstack_->attach(1, 0);
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  FrontendOptions frontend_options;
  frontend_options.overrides[std::string(key::kCtrlRingRef)] = std::to_string(ring_ref_);
  frontend_options.overrides[std::string(key::kEventChannelCtrl)] = "not-a-port";
  frontend.connect(frontend_options);
  ASSERT_TRUE(eventually([&] {
    const auto state = backend_key(1, 0, key::kState);
    return state == "5" || state == "6";
  }));
  EXPECT_NE(backend_key(1, 0, key::kError).find(key::kEventChannelCtrl), std::string::npos)
      << backend_key(1, 0, key::kError);
}

}  // namespace
}  // namespace vifd::backend::testing
