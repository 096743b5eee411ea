// A front thread and a back thread push 10 million requests (and as many
// responses) through one shared page, each sleeping only after the
// final-check idiom and woken only when push_*_and_check_notify() says so.
// A missing or misplaced barrier shows up as a lost wake-up (both threads
// asleep: ctest's timeout ends the run) or as a request seen out of order or
// with stale contents.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>

#include "common/protocol/ring.h"

namespace vifd::protocol {
namespace {

constexpr std::uint32_t kRequests = 10'000'000;
// Start so that the indices wrap at 2^32 half-way through the run.
constexpr RingIndex kStart = 0xFFFFFFFFU - kRequests / 2;

// Stand-in for one direction of an event channel: a pending bit, no futex or
// condition variable. Setting it is a full barrier, as the notify hypercall
// is on Xen.
class PendingFlag {
 public:
  void notify() {
    sent_.fetch_add(1, std::memory_order_relaxed);
    pending_.store(true, std::memory_order_seq_cst);
  }
  void wait() {
    while (!pending_.exchange(false, std::memory_order_seq_cst)) {
      std::this_thread::yield();
    }
  }
  std::uint64_t sent() const { return sent_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> pending_{false};
  std::atomic<std::uint64_t> sent_{0};
};

TxRequest request_for(std::uint32_t seq) {
  TxRequest request{};
  request.gref = seq;
  request.offset = static_cast<std::uint16_t>(seq & 0x0FFF);
  request.flags = static_cast<std::uint16_t>(seq >> 20);
  request.id = static_cast<std::uint16_t>(seq);
  request.size = static_cast<std::uint16_t>(seq >> 16);
  return request;
}

bool matches(const TxRequest& got, std::uint32_t seq) {
  const TxRequest want = request_for(seq);
  return got.gref == want.gref && got.offset == want.offset && got.flags == want.flags &&
         got.id == want.id && got.size == want.size;
}

struct alignas(kPageSize) Page {
  std::array<std::byte, kPageSize> bytes{};
};

TEST(RingConcurrencyTest, TenMillionRequestsWithFinalCheckWakeups) {
  Page page;
  auto front = TxFrontRing::init(page.bytes, kStart);
  TxBackRing back(page.bytes, kStart);
  PendingFlag to_back;
  PendingFlag to_front;
  std::atomic<std::uint64_t> back_errors{0};
  std::atomic<std::uint64_t> back_sleeps{0};
  std::uint64_t front_errors = 0;
  std::uint64_t front_sleeps = 0;

  std::thread back_thread([&] {
    std::array<TxRequest, 32> requests{};
    std::array<TxResponse, 32> responses{};
    std::uint32_t next = 0;
    while (next < kRequests) {
      const TakeResult taken = back.take_requests(requests);
      if (taken.status != RingStatus::kOk) {
        back_errors.fetch_add(1);
        return;
      }
      for (std::size_t i = 0; i < taken.count; ++i) {
        if (!matches(requests[i], next)) {
          back_errors.fetch_add(1);
        }
        responses[i] = TxResponse{requests[i].id, kRspOkay};
        ++next;
      }
      if (taken.count > 0) {
        if (back.push_responses(std::span(responses).first(taken.count)) != taken.count) {
          back_errors.fetch_add(1);
        }
        if (back.push_responses_and_check_notify()) {
          to_front.notify();
        }
      } else if (!back.final_check_for_requests()) {
        back_sleeps.fetch_add(1);
        to_back.wait();
      }
    }
  });

  std::array<TxRequest, 64> batch{};
  std::array<TxResponse, 64> responses{};
  std::uint32_t sent = 0;
  std::uint32_t answered = 0;
  std::uint32_t batch_size = 1;
  while (answered < kRequests) {
    // Batch sizes cycle 1..64 so pushes and takes fall at every slot offset.
    batch_size = batch_size % batch.size() + 1;
    const std::uint32_t want = std::min({batch_size, kRequests - sent, front.free_requests()});
    for (std::uint32_t i = 0; i < want; ++i) {
      batch[i] = request_for(sent + i);
    }
    const std::size_t pushed = front.push_requests(std::span(batch).first(want));
    sent += static_cast<std::uint32_t>(pushed);
    if (pushed > 0 && front.push_requests_and_check_notify()) {
      to_back.notify();
    }

    const TakeResult got = front.take_responses(responses);
    if (got.status != RingStatus::kOk) {
      ++front_errors;
      break;
    }
    for (std::size_t i = 0; i < got.count; ++i) {
      if (responses[i].id != static_cast<std::uint16_t>(answered) ||
          responses[i].status != kRspOkay) {
        ++front_errors;
      }
      ++answered;
    }
    if (pushed == 0 && got.count == 0 && !front.final_check_for_responses()) {
      ++front_sleeps;
      to_front.wait();
    }
  }
  back_thread.join();

  EXPECT_EQ(front_errors, 0U);
  EXPECT_EQ(back_errors.load(), 0U);
  EXPECT_EQ(sent, kRequests);
  EXPECT_EQ(answered, kRequests);
  EXPECT_EQ(back.request_consumer(), kStart + kRequests);
  EXPECT_EQ(front.response_consumer(), kStart + kRequests);
  EXPECT_EQ(front.free_requests(), front.size());
  std::printf(
      "requests %u, front->back notifications %lu, back->front notifications %lu, "
      "back sleeps %lu, front sleeps %lu\n",
      kRequests, static_cast<unsigned long>(to_back.sent()),
      static_cast<unsigned long>(to_front.sent()), static_cast<unsigned long>(back_sleeps.load()),
      static_cast<unsigned long>(front_sleeps));
}

}  // namespace
}  // namespace vifd::protocol
