// The capture ring alone: records in order across wraparound, a full ring
// drops and counts instead of waiting, several producer threads at once
// (run under ThreadSanitizer too), and the base64 the stream carries.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <thread>
#include <vector>

#include "backend/lib/datapath/capture_ring.h"
#include "common/protocol/base64.h"

namespace vifd::backend {
namespace {

// Records a frame of `length` bytes, each byte `fill`, as a queue thread
// does; false when the ring was full.
bool record(CaptureRing& ring, std::uint32_t length, std::uint8_t fill, std::int64_t time) {
  const CaptureRing::Reservation slot = ring.reserve();
  if (!slot) {
    return false;
  }
  const std::size_t captured = std::min<std::size_t>(length, ring.snaplen());
  std::memset(slot.data, fill, captured);
  ring.commit(slot, time, length, static_cast<std::uint32_t>(captured),
              fill % 2 == 0 ? CaptureDirection::kFromVif : CaptureDirection::kToVif);
  return true;
}

struct Seen {
  std::int64_t time;
  std::uint32_t length;
  std::vector<std::uint8_t> bytes;
  CaptureDirection direction;
};

std::vector<Seen> drain_all(CaptureRing& ring) {
  std::vector<Seen> seen;
  ring.drain(1U << 20, [&](const CaptureRecord& r) {
    seen.push_back({r.realtime_ns, r.original_length,
                    std::vector<std::uint8_t>(r.bytes.begin(), r.bytes.end()), r.direction});
  });
  return seen;
}

TEST(CaptureRing, SizesItsSlotsFromTheMemoryBudget) {
  const CaptureRing ring(1000, std::size_t{64} * 1000);
  EXPECT_EQ(ring.capacity(), 64U);
  EXPECT_EQ(ring.snaplen(), 1000U);
  EXPECT_EQ(CaptureRing(65536).capacity(), CaptureRing::kDefaultBudgetBytes / 65536);
  EXPECT_EQ(CaptureRing(65536, 1).capacity(), CaptureRing::kMinSlots);
}

TEST(CaptureRing, RefusesASnaplenOutsideItsBounds) {
  EXPECT_THROW(CaptureRing(13), std::invalid_argument);
  EXPECT_THROW(CaptureRing(65537), std::invalid_argument);
  EXPECT_NO_THROW(CaptureRing(14));
}

TEST(CaptureRing, KeepsOrderAndBytesAcrossManyWraparounds) {
  CaptureRing ring(64, std::size_t{8} * 64);
  ASSERT_EQ(ring.capacity(), 8U);
  std::uint8_t next = 0;
  std::uint8_t expected = 0;
  for (int round = 0; round < 50; ++round) {
    // A varying number per round, so head and tail wrap at every offset.
    const int batch = 1 + round % 8;
    for (int i = 0; i < batch; ++i) {
      ASSERT_TRUE(record(ring, 100, next, next));
      ++next;
    }
    const auto seen = drain_all(ring);
    ASSERT_EQ(seen.size(), static_cast<std::size_t>(batch));
    for (const Seen& s : seen) {
      EXPECT_EQ(s.time, expected);
      EXPECT_EQ(s.length, 100U) << "the original length, not the snapped one";
      ASSERT_EQ(s.bytes.size(), 64U) << "snapped at snaplen";
      EXPECT_TRUE(std::all_of(s.bytes.begin(), s.bytes.end(),
                              [&](std::uint8_t b) { return b == expected; }));
      EXPECT_EQ(s.direction,
                expected % 2 == 0 ? CaptureDirection::kFromVif : CaptureDirection::kToVif);
      ++expected;
    }
  }
  EXPECT_EQ(ring.recorded(), next);
  EXPECT_EQ(ring.dropped(), 0U);
}

TEST(CaptureRing, AFullRingDropsAndCountsInsteadOfWaiting) {
  CaptureRing ring(32, std::size_t{8} * 32);
  for (std::uint8_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(record(ring, 32, i, i));
  }
  for (std::uint8_t i = 0; i < 5; ++i) {
    EXPECT_FALSE(record(ring, 32, 0xEE, 0));
  }
  EXPECT_EQ(ring.dropped(), 5U);
  EXPECT_EQ(ring.recorded(), 8U);
  const auto seen = drain_all(ring);
  ASSERT_EQ(seen.size(), 8U);
  EXPECT_EQ(seen.back().bytes.front(), 7U) << "the dropped frames overwrote nothing";
  // Drained: room again.
  EXPECT_TRUE(record(ring, 32, 9, 9));
  EXPECT_EQ(drain_all(ring).size(), 1U);
}

TEST(CaptureRing, AnAbandonedSlotIsSkippedAndCountedAsDropped) {
  CaptureRing ring(32, std::size_t{8} * 32);
  ASSERT_TRUE(record(ring, 20, 1, 1));
  const CaptureRing::Reservation failed = ring.reserve();
  ASSERT_TRUE(failed);
  ring.abandon(failed);
  ASSERT_TRUE(record(ring, 20, 3, 3));
  const auto seen = drain_all(ring);
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].time, 1);
  EXPECT_EQ(seen[1].time, 3);
  EXPECT_EQ(ring.dropped(), 1U);
}

TEST(CaptureRing, TheConsumerStopsAtASlotStillBeingFilled) {
  CaptureRing ring(32, std::size_t{8} * 32);
  const CaptureRing::Reservation first = ring.reserve();
  ASSERT_TRUE(first);
  ASSERT_TRUE(record(ring, 20, 2, 2));
  EXPECT_TRUE(drain_all(ring).empty()) << "records stay in order";
  std::memset(first.data, 1, 20);
  ring.commit(first, 1, 20, 20, CaptureDirection::kToVif);
  const auto seen = drain_all(ring);
  ASSERT_EQ(seen.size(), 2U);
  EXPECT_EQ(seen[0].time, 1);
  EXPECT_EQ(seen[1].time, 2);
}

// Several queue threads forwarding to one captured vif at once, the control
// thread draining meanwhile: every record arrives whole, each producer's in
// its own order, and recorded + dropped accounts for every attempt.
TEST(CaptureRing, SeveralProducersAndOneConsumer) {
  constexpr int kProducers = 4;
  constexpr int kPerProducer = 20000;
  CaptureRing ring(48, std::size_t{64} * 48);
  std::atomic<int> running{kProducers};
  std::vector<std::thread> producers;
  producers.reserve(kProducers);
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      for (int i = 0; i < kPerProducer; ++i) {
        const CaptureRing::Reservation slot = ring.reserve();
        if (!slot) {
          continue;
        }
        // Producer id in every byte, sequence in the timestamp.
        std::memset(slot.data, p, 48);
        ring.commit(slot, static_cast<std::int64_t>(p) << 32 | i, 48, 48,
                    CaptureDirection::kFromVif);
      }
      running.fetch_sub(1);
    });
  }
  std::map<int, std::int64_t> last;
  std::uint64_t consumed = 0;
  bool torn = false;
  bool reordered = false;
  const auto consume = [&](const CaptureRecord& r) {
    const int p = static_cast<int>(r.realtime_ns >> 32);
    const std::int64_t i = r.realtime_ns & 0xFFFFFFFF;
    torn = torn || r.bytes.size() != 48 ||
           !std::all_of(r.bytes.begin(), r.bytes.end(), [&](std::uint8_t b) { return b == p; });
    if (last.contains(p) && last[p] >= i) {
      reordered = true;
    }
    last[p] = i;
    ++consumed;
  };
  while (running.load() != 0) {
    ring.drain(16, consume);
  }
  for (auto& producer : producers) {
    producer.join();
  }
  ring.drain(1U << 20, consume);
  EXPECT_FALSE(torn);
  EXPECT_FALSE(reordered);
  EXPECT_EQ(consumed, ring.recorded());
  EXPECT_EQ(ring.recorded() + ring.dropped(), std::uint64_t{kProducers} * kPerProducer);
  EXPECT_GT(consumed, 0U);
}

TEST(Base64, RoundTripsEveryLengthAndRejectsWhatIsNotBase64) {
  std::string out;
  protocol::base64_append(out, std::vector<std::uint8_t>{'f', 'o', 'o', 'b', 'a'});
  EXPECT_EQ(out, "Zm9vYmE=");
  out.clear();
  protocol::base64_append(out, std::vector<std::uint8_t>{'f', 'o', 'o', 'b'});
  EXPECT_EQ(out, "Zm9vYg==");
  for (std::size_t length = 0; length < 70; ++length) {
    std::vector<std::uint8_t> bytes(length);
    for (std::size_t i = 0; i < length; ++i) {
      bytes[i] = static_cast<std::uint8_t>(i * 37 + length);
    }
    std::string text;
    protocol::base64_append(text, bytes);
    const auto back = protocol::base64_decode(text);
    ASSERT_TRUE(back) << length;
    EXPECT_EQ(*back, bytes) << length;
  }
  EXPECT_FALSE(protocol::base64_decode("Zm9"));
  EXPECT_FALSE(protocol::base64_decode("Zm9v!A=="));
}

}  // namespace
}  // namespace vifd::backend
