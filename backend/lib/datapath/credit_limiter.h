// The `rate` credit limit of guest TX, as Linux netback's tx_credit_exceeded
// and tx_add_credit: every `usec` microseconds the queue may send `bytes`
// more; a packet larger than the credit waits for the next window. The first
// request of a packet names the packet's total size, so the check happens
// before any of its slots are processed.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/protocol/xs_parse.h"

namespace vifd::backend {

class CreditLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // Without a rate the limiter never refuses.
  CreditLimiter(std::optional<protocol::RateLimit> rate, Clock::time_point now) noexcept;

  bool enabled() const noexcept { return rate_.has_value(); }

  // Takes `size` bytes of credit, or returns false and remembers when the
  // next window opens (refill_time()). Refuses everything until then, as
  // netback does while its credit timer is pending.
  bool try_consume(std::uint32_t size, Clock::time_point now) noexcept;

  // When a refused packet may be retried; meaningful after a refusal.
  Clock::time_point refill_time() const noexcept { return window_start_ + window_; }
  bool waiting(Clock::time_point now) const noexcept { return waiting_ && now < refill_time(); }
  std::uint64_t remaining() const noexcept { return remaining_; }

 private:
  void add_credit(std::uint32_t next_size) noexcept;

  std::optional<protocol::RateLimit> rate_;
  Clock::duration window_{};
  Clock::time_point window_start_;
  std::uint64_t remaining_ = 0;
  bool waiting_ = false;
};

}  // namespace vifd::backend
