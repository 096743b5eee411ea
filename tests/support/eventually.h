// Waiting in tests for something another thread or process brings about.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

namespace vifd::testing {

// Generous on purpose: the bound only keeps a broken component from hanging
// the test, it is not a timing assertion, and CI machines are shared.
inline constexpr std::chrono::milliseconds kEventuallyBound{20000};

// Polls `condition` until it holds or `bound` passes. Usable as a bool and
// in ASSERT_TRUE/EXPECT_TRUE, where a failure says how long it waited.
inline ::testing::AssertionResult eventually(const std::function<bool()>& condition,
                                             std::chrono::milliseconds bound = kEventuallyBound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (condition()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "still false after " << bound.count() << " ms";
}

}  // namespace vifd::testing
