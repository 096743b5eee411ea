// The netfront's side of static grant mappings: with a backend that offers
// feature-ctrl-ring it publishes a control ring and, once the backend is
// Connected, offers each queue's TX pool (read-only) and RX pool with one
// ADD_GREF_MAPPING after GET_GREF_MAPPING_SIZE; it stays on grant copies when
// the backend answers NOT_SUPPORTED (Linux netback) or too small a size, and
// offers nothing with static_grants off.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/protocol/ring.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "frontend/lib/netfront/netfront.h"
#include "tests/frontend/test_backend.h"

namespace vifd::frontend::testing {
namespace {

namespace key = xenbus::key;
using protocol::XenbusState;

// dom0's end of the frontend's control ring, served on a thread.
class CtrlResponder {
 public:
  // Runs on the responder's thread, which it is given: the test's own
  // pointer to the responder is assigned only after the thread started.
  using Answer =
      std::function<protocol::CtrlResponse(const protocol::CtrlRequest&, CtrlResponder&)>;

  CtrlResponder(const vifd::testing::SimHostProcess& host, TestBackend& backend, Answer answer)
      : platform_(host.platform(0)),
        grants_(platform_->open_grant_table()),
        events_(platform_->open_event_channels()),
        answer_(std::move(answer)) {
    const auto ref =
        protocol::parse_uint("ctrl-ring-ref", backend.frontend_value(key::kCtrlRingRef).value(), 0,
                             0xFFFFFFFF)
            .value();
    const auto port =
        protocol::parse_uint("event-channel-ctrl",
                             backend.frontend_value(key::kEventChannelCtrl).value(), 1, 0xFFFF)
            .value();
    const platform::DomId domids[] = {kGuest};
    const platform::GrantRef refs[] = {static_cast<platform::GrantRef>(ref)};
    page_ = grants_->map(domids, refs, true);
    local_port_ = events_->bind_interdomain(kGuest, static_cast<platform::EvtchnPort>(port));
    ring_.emplace(std::span(static_cast<std::byte*>(page_), platform::kPageSize));
    thread_ = std::thread([this] { serve(); });
  }
  ~CtrlResponder() {
    stop_ = true;
    thread_.join();
    grants_->unmap(page_, 1);
  }

  // Copies `count` list entries out of the frontend's grant `ref`.
  std::vector<protocol::StaticGrant> read_list(platform::GrantRef ref, std::uint32_t count) {
    std::vector<protocol::StaticGrant> entries(count);
    platform::GrantCopySegment segment{};
    segment.source.foreign = {ref, 0, kGuest};
    segment.dest.virt = entries.data();
    segment.len = static_cast<std::uint16_t>(count * sizeof(protocol::StaticGrant));
    segment.flags = platform::kCopySourceGref;
    EXPECT_EQ(grants_->copy(std::span(&segment, 1)), 0);
    EXPECT_EQ(segment.status, platform::kGntstOkay);
    return entries;
  }

  std::vector<protocol::CtrlRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }

 private:
  void serve() {
    std::array<protocol::CtrlRequest, 8> batch;
    while (!stop_) {
      const auto taken = ring_->take_requests(batch);
      for (std::size_t i = 0; i < taken.count; ++i) {
        {
          std::lock_guard lock(mutex_);
          requests_.push_back(batch[i]);
        }
        // One slot per request taken: it cannot be refused.
        EXPECT_TRUE(ring_->push_response(answer_(batch[i], *this)));
      }
      if (taken.count != 0 && ring_->push_responses_and_check_notify()) {
        events_->notify(local_port_);
      }
      while (const auto port = events_->pending()) {
        events_->unmask(*port);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::unique_ptr<platform::Platform> platform_;
  std::unique_ptr<platform::GrantTable> grants_;
  std::unique_ptr<platform::EventChannels> events_;
  Answer answer_;
  void* page_ = nullptr;
  platform::EvtchnPort local_port_ = 0;
  std::optional<protocol::CtrlBackRing> ring_;
  std::mutex mutex_;
  std::vector<protocol::CtrlRequest> requests_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

protocol::CtrlResponse reply(const protocol::CtrlRequest& request, std::uint32_t status,
                             std::uint32_t data = 0) {
  protocol::CtrlResponse response{};
  response.id = request.id;
  response.type = request.type;
  response.status = status;
  response.data = data;
  return response;
}

class StaticGrantsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.create_domain(kGuest);
    auto dom0 = host_.xenstore(0);
    attach_vif(dom0, kGuest, 0);
    backend_ = std::make_unique<TestBackend>(host_, kGuest, 0);
    guest_ = host_.platform(kGuest);
  }

  // Connects with a ctrl-ring offering backend answering with `answer`.
  std::unique_ptr<Netfront> connect(CtrlResponder::Answer answer, NetfrontOptions options = {}) {
    BackendOffer offer;
    offer.ctrl_ring = true;
    backend_->offer(offer);
    auto front = std::make_unique<Netfront>(*guest_, host_.xenstore(kGuest), options);
    front->process_xenstore();
    EXPECT_TRUE(front->connected()) << front->error();
    if (options.static_grants) {
      responder_ = std::make_unique<CtrlResponder>(host_, *backend_, std::move(answer));
    }
    backend_->attach();
    backend_->set_state(XenbusState::kConnected);
    front->process_xenstore();
    return front;
  }

  vifd::testing::SimHostProcess host_;
  std::unique_ptr<TestBackend> backend_;
  std::unique_ptr<platform::Platform> guest_;
  std::unique_ptr<CtrlResponder> responder_;
};

TEST_F(StaticGrantsTest, BothPoolsAreOfferedOnceWhenTheBackendKeepsEnough) {
  std::vector<protocol::StaticGrant> offered;
  std::uint32_t list_queue = 99;
  std::mutex list_mutex;  // the answer runs on the responder's thread
  auto front = connect([&](const protocol::CtrlRequest& request, CtrlResponder& responder) {
    if (request.type == XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE) {
      return reply(request, XEN_NETIF_CTRL_STATUS_SUCCESS, 1024);
    }
    const std::lock_guard lock(list_mutex);
    list_queue = request.data[0];
    offered = responder.read_list(request.data[1], request.data[2]);
    return reply(request, XEN_NETIF_CTRL_STATUS_SUCCESS);
  });
  EXPECT_EQ(front->static_grants_mapped(), 2 * NetfrontQueue::kRingSize);
  const auto requests = responder_->requests();
  ASSERT_EQ(requests.size(), 2U);
  EXPECT_EQ(requests[0].type, XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE);
  EXPECT_EQ(requests[1].type, XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING);
  {
    const std::lock_guard lock(list_mutex);
    EXPECT_EQ(list_queue, 0U);
  }
  const std::vector<protocol::StaticGrant> list = [&] {
    const std::lock_guard lock(list_mutex);
    return offered;
  }();
  ASSERT_EQ(list.size(), 2 * NetfrontQueue::kRingSize);
  std::set<platform::GrantRef> refs;
  for (std::size_t i = 0; i < list.size(); ++i) {
    refs.insert(list[i].ref);
    // The TX pool is granted read-only, and says so.
    EXPECT_EQ(list[i].flags, i < NetfrontQueue::kRingSize ? XEN_NETIF_CTRLF_GREF_readonly : 0U)
        << "entry " << i;
  }
  EXPECT_EQ(refs.size(), list.size()) << "every pool page once";
  EXPECT_EQ(list[0].ref, front->queue(0).tx_pool_ref(0));
  EXPECT_EQ(list[NetfrontQueue::kRingSize].ref, front->queue(0).rx_pool_ref(0));
  // Offered once: another xenstore event sends nothing more.
  front->process_xenstore();
  EXPECT_EQ(responder_->requests().size(), 2U);
}

TEST_F(StaticGrantsTest, ABackendThatDoesNotSupportThemKeepsGrantCopies) {
  auto front = connect([](const protocol::CtrlRequest& request, CtrlResponder&) {
    return reply(request, XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED);
  });
  EXPECT_TRUE(front->connected());
  EXPECT_EQ(front->static_grants_mapped(), 0U);
  const auto requests = responder_->requests();
  ASSERT_EQ(requests.size(), 1U) << "no ADD after NOT_SUPPORTED";
  EXPECT_EQ(requests[0].type, XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE);
}

TEST_F(StaticGrantsTest, TooSmallAMappingSizeKeepsGrantCopies) {
  auto front = connect([](const protocol::CtrlRequest& request, CtrlResponder&) {
    return reply(request, XEN_NETIF_CTRL_STATUS_SUCCESS, 64);
  });
  EXPECT_EQ(front->static_grants_mapped(), 0U);
  EXPECT_EQ(responder_->requests().size(), 1U);
}

TEST_F(StaticGrantsTest, TurnedOffNoControlRingIsOffered) {
  NetfrontOptions options;
  options.static_grants = false;
  auto front = connect({}, options);
  EXPECT_FALSE(backend_->frontend_value(key::kCtrlRingRef).has_value());
  EXPECT_FALSE(backend_->frontend_value(key::kEventChannelCtrl).has_value());
  EXPECT_EQ(front->static_grants_mapped(), 0U);
}

}  // namespace
}  // namespace vifd::frontend::testing
