#include <gtest/gtest.h>

#include <chrono>

#include "backend/lib/control/reconnect_pacer.h"

namespace vifd::backend {
namespace {

using namespace std::chrono_literals;
using Clock = ReconnectPacer::Clock;

TEST(ReconnectPacer, BurstThenOnePerInterval) {
  ReconnectPacer pacer(3, 100ms);
  const Clock::time_point t0{};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pacer.allows(t0)) << "reconnect " << i << " of the burst";
    pacer.take(t0);
  }
  EXPECT_FALSE(pacer.allows(t0));
  EXPECT_EQ(pacer.wait(t0), Clock::duration(100ms));
  EXPECT_FALSE(pacer.allows(t0 + 99ms));
  EXPECT_EQ(pacer.wait(t0 + 60ms), Clock::duration(40ms));
  EXPECT_TRUE(pacer.allows(t0 + 100ms));
  pacer.take(t0 + 100ms);
  EXPECT_FALSE(pacer.allows(t0 + 150ms));
  EXPECT_TRUE(pacer.allows(t0 + 200ms));
}

TEST(ReconnectPacer, SustainedRateIsOnePerInterval) {
  ReconnectPacer pacer(4, 250ms);
  Clock::time_point now{};
  int taken = 0;
  // A frontend retrying every millisecond for ten seconds.
  for (int ms = 0; ms < 10'000; ++ms, now += 1ms) {
    if (pacer.allows(now)) {
      pacer.take(now);
      ++taken;
    }
  }
  EXPECT_EQ(taken, 4 + 10'000 / 250 - 1);
}

TEST(ReconnectPacer, AnIdleBucketRefillsOnlyToItsBurst) {
  ReconnectPacer pacer(2, 100ms);
  const Clock::time_point t0{};
  pacer.take(t0);
  pacer.take(t0);
  // An hour of calm earns the burst back, not an hour of reconnects.
  const auto later = t0 + 1h;
  int taken = 0;
  while (pacer.allows(later)) {
    pacer.take(later);
    ++taken;
  }
  EXPECT_EQ(taken, 2);
  EXPECT_EQ(pacer.wait(later), Clock::duration(100ms));
}

TEST(ReconnectPacer, TimeGoingBackwardsEarnsNothing) {
  ReconnectPacer pacer(1, 100ms);
  const Clock::time_point t0 = Clock::time_point{} + 1h;
  pacer.take(t0);
  EXPECT_FALSE(pacer.allows(t0 - 10min));
  EXPECT_TRUE(pacer.allows(t0 + 100ms));
}

}  // namespace
}  // namespace vifd::backend
