// The queue loop's fast path: a turn makes the system calls its wake-up
// asked for and no others, and the spurious-event backoff judges an event
// by what the guest produced, not by what this thread already took.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "backend/lib/datapath/switch.h"
#include "tests/backend/datapath_harness.h"
#include "tests/support/counting_event_channels.h"

namespace vifd::backend::testing {
namespace {

using vifd::testing::CountingEventChannels;

class FastPathTest : public ::testing::Test {
 protected:
  FastPathTest() : host_({1}), frontend_(host_, 1) {}

  void start(QueueOptions options = {}) {
    if (options.tap_fd < 0) {
      options.tap_fd = tap_.queue_fd();
    }
    options.wrap_events = [this](std::unique_ptr<platform::EventChannels> inner) {
      return std::make_unique<CountingEventChannels>(std::move(inner), pending_calls_);
    };
    backend_ = std::make_unique<BackendQueue>(host_, frontend_, options);
  }
  QueueStats stats() { return backend_->stats(); }

  // One TX request for a small frame, published without a notification.
  void push_quietly(std::uint16_t id) {
    const auto frame = ethernet_frame(test_mac(9), test_mac(1), 60, static_cast<std::uint8_t>(id));
    const std::size_t page = id % TestFrontend::kPages;
    std::memcpy(frontend_.tx_page(page), frame.data(), frame.size());
    const protocol::TxRequest request{frontend_.tx_page_ref(page), 0, 0, id, 60};
    ASSERT_TRUE(frontend_.tx().push_request(request));
    frontend_.tx().publish_requests();
  }

  SimHost host_;
  TestFrontend frontend_;
  FakeTap tap_;
  std::shared_ptr<std::atomic<std::uint64_t>> pending_calls_ =
      std::make_shared<std::atomic<std::uint64_t>>(0);
  std::unique_ptr<BackendQueue> backend_;
};

// A busy queue takes requests before it reads the notification that
// announced them; that notification brought work and must not count towards
// the backoff, or two in a row keep the guest's port masked for milliseconds.
TEST_F(FastPathTest, AnEventForRequestsAlreadyTakenIsNotSpurious) {
  frontend_.post_rx(32);
  start();
  // Binding the channel leaves an event pending, as on Xen: taken first.
  ASSERT_TRUE(eventually([&] { return stats().notifications_received >= 1; }));
  for (std::uint16_t round = 0; round < 4; ++round) {
    push_quietly(round);
    const std::uint64_t received = stats().notifications_received;
    // A frame from the host wakes the queue, which takes the request too.
    tap_.send(ethernet_frame(test_mac(1), test_mac(9), 60, static_cast<std::uint8_t>(round)));
    ASSERT_EQ(frontend_.wait_tx_responses(1).size(), 1U) << "round " << round;
    ASSERT_EQ(frontend_.wait_rx_responses(1).size(), 1U) << "round " << round;
    ASSERT_FALSE(tap_.receive().empty());
    // Only now the guest's notification for that request arrives.
    frontend_.notify();
    ASSERT_TRUE(eventually([&] { return stats().notifications_received > received; }));
  }
  const QueueStats s = stats();
  EXPECT_EQ(s.spurious_events, 0U);
  EXPECT_EQ(s.tx_packets, 4U);
  EXPECT_EQ(backend_->fatal_calls(), 0);
}

// The storm protection still holds: events after which the guest produced
// nothing are spurious, and the second in a row keeps the port masked.
TEST_F(FastPathTest, EventsWithoutNewRequestsAreStillSpurious) {
  start();
  // Binding the channel leaves an event pending, as on Xen: let it pass.
  ASSERT_TRUE(eventually([&] { return stats().notifications_received >= 1; }));
  const std::uint64_t bound = stats().notifications_received;
  push_quietly(0);
  frontend_.notify();
  ASSERT_EQ(frontend_.wait_tx_responses(1).size(), 1U);
  ASSERT_TRUE(eventually([&] { return stats().notifications_received > bound; }));
  const std::uint64_t before = stats().spurious_events;
  for (int i = 0; i < 3; ++i) {
    const std::uint64_t received = stats().notifications_received;
    frontend_.notify();
    ASSERT_TRUE(eventually([&] { return stats().notifications_received > received; }));
  }
  EXPECT_EQ(stats().spurious_events - before, 3U) << to_json(stats()).dump();
}

// Wake-ups by the TAP alone make no event-channel read: only what poll()
// reported readable is read.
TEST_F(FastPathTest, ATurnWokenByTheTapDoesNotReadTheEventChannel) {
  frontend_.post_rx(TestFrontend::kPages);
  start();
  tap_.send(ethernet_frame(test_mac(1), test_mac(9), 60, 0));
  ASSERT_EQ(frontend_.wait_rx_responses(1).size(), 1U);
  // post_rx's notification has been taken by now (its buffer carried the frame).
  const std::uint64_t calls = pending_calls_->load();
  const std::uint64_t turns = stats().loop_iterations;
  constexpr int kFrames = 20;
  for (int i = 1; i <= kFrames; ++i) {
    tap_.send(ethernet_frame(test_mac(1), test_mac(9), 60, static_cast<std::uint8_t>(i)));
    ASSERT_EQ(frontend_.wait_rx_responses(1).size(), 1U) << "frame " << i;
  }
  EXPECT_GE(stats().loop_iterations - turns, std::uint64_t{kFrames});
  EXPECT_EQ(pending_calls_->load() - calls, 0U);
}

// A turn the event channel woke does not read the TAP: the queue's TAP end is
// blocking here, so a read poll() did not ask for would stop the queue.
TEST_F(FastPathTest, ATurnWokenByTheEventChannelDoesNotReadTheTap) {
  int ends[2] = {-1, -1};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends), 0);
  QueueOptions options;
  options.tap_fd = ends[0];  // blocking
  start(options);
  constexpr std::size_t kFrames = 20;
  std::size_t answered = 0;
  for (std::size_t i = 0; i < kFrames; ++i) {
    // send_frame notifies when the ring asks, as a frontend does.
    frontend_.send_frame(
        ethernet_frame(test_mac(9), test_mac(1), 60, static_cast<std::uint8_t>(i)));
    answered += frontend_.wait_tx_responses(1).size();
    if (answered != i + 1) {
      break;
    }
  }
  EXPECT_EQ(answered, kFrames);
  EXPECT_EQ(stats().tap_writes, answered);
  // Closing the host end ends any read that blocked, so the queue can stop.
  ::close(ends[1]);
  backend_->stop();
  ::close(ends[0]);
}

// A frame waiting for three RX buffers asks for one notification when the
// third is posted, not one per buffer.
TEST_F(FastPathTest, AFrameWaitingForBuffersAsksForAllItNeedsAtOnce) {
  QueueOptions options;
  options.features.sg = true;
  options.features.mtu = 9000;
  options.features.rx_notify = true;
  start(options);
  const auto frame = ethernet_frame(test_mac(1), test_mac(9), 9000, 3);  // 3 pages
  tap_.send(frame);
  // req_event, the ring's second word: where the backend wants a notification.
  const auto req_event = [&] {
    std::uint32_t value = 0;
    std::memcpy(&value, frontend_.rx_ring_page() + 4, sizeof(value));
    return value;
  };
  ASSERT_TRUE(eventually([&] {
    return stats().rx_backlog_bytes == frame.size() && req_event() == 3;
  })) << "req_event "
      << req_event();
  int notifications = 0;
  for (std::uint16_t id = 0; id < 3; ++id) {
    protocol::RxRequest request{};
    request.id = id;
    request.gref = frontend_.rx_page_ref(id);
    ASSERT_TRUE(frontend_.rx().push_request(request));
    if (frontend_.rx().push_requests_and_check_notify()) {
      ++notifications;
      frontend_.notify();
    }
  }
  EXPECT_EQ(notifications, 1);
  const auto responses = frontend_.wait_rx_responses(3);
  ASSERT_EQ(responses.size(), 3U);
  EXPECT_EQ(frontend_.frames_of(responses).at(0), frame);
}

bool readable(int fd) {
  pollfd entry{fd, POLLIN, 0};
  return ::poll(&entry, 1, 0) == 1;
}

// A sender writes the receiver's eventfd only when the receiver said it is
// about to sleep; a receiver that is awake finds the frame on its own.
TEST(SwitchWakeTest, APushWakesOnlyAnOwnerAboutToSleep) {
  SwitchEndpoint endpoint(1, 0, 0, VifFeatures{}, 8, 8);
  const ForwardDescriptor frame{};
  ForwardDescriptor popped{};
  // Before its loop runs, the owner counts as asleep.
  ASSERT_TRUE(endpoint.push_frame(frame));
  endpoint.wake_if_sleeping();
  EXPECT_TRUE(readable(endpoint.wake_fd()));
  endpoint.consume_wake();
  // Awake (between poll() and its next arm): no write.
  endpoint.disarm_wake();
  ASSERT_TRUE(endpoint.push_frame(frame));
  endpoint.wake_if_sleeping();
  EXPECT_FALSE(readable(endpoint.wake_fd()));
  // Arming with a frame waiting says so, so the owner does not block on it.
  EXPECT_FALSE(endpoint.arm_wake());
  ASSERT_TRUE(endpoint.pop_frame(popped));
  ASSERT_TRUE(endpoint.pop_frame(popped));
  // Armed with empty inboxes: the next push writes.
  EXPECT_TRUE(endpoint.arm_wake());
  ASSERT_TRUE(endpoint.push_frame(frame));
  endpoint.wake_if_sleeping();
  EXPECT_TRUE(readable(endpoint.wake_fd()));
  // Completions follow the same rule.
  endpoint.consume_wake();
  endpoint.disarm_wake();
  endpoint.begin_forward();
  const std::array<ForwardCompletion, 1> done{};
  endpoint.post_completions(done);
  EXPECT_FALSE(readable(endpoint.wake_fd()));
  EXPECT_FALSE(endpoint.arm_wake());
}

}  // namespace
}  // namespace vifd::backend::testing
