#include "backend/lib/datapath/credit_limiter.h"

#include <algorithm>
#include <limits>

namespace vifd::backend {

CreditLimiter::CreditLimiter(std::optional<protocol::RateLimit> rate,
                             Clock::time_point now) noexcept
    : rate_(rate), window_start_(now) {
  if (rate_) {
    window_ = std::chrono::microseconds(rate_->usec);
    remaining_ = rate_->bytes;
  }
}

void CreditLimiter::add_credit(std::uint32_t next_size) noexcept {
  // netback lets one packet larger than a window's credit through (up to
  // 128 KiB), else such a packet could never be sent; it never banks more
  // than that or one window's credit.
  const std::uint64_t max_burst =
      std::max<std::uint64_t>(std::min<std::uint64_t>(next_size, 131072), rate_->bytes);
  std::uint64_t max_credit = remaining_ + rate_->bytes;
  if (max_credit < remaining_) max_credit = std::numeric_limits<std::uint64_t>::max();
  remaining_ = std::min(max_credit, max_burst);
}

bool CreditLimiter::try_consume(std::uint32_t size, Clock::time_point now) noexcept {
  if (!rate_) return true;
  if (waiting_ && now < refill_time()) return false;
  if (now >= refill_time()) {
    window_start_ = now;
    add_credit(size);
  }
  waiting_ = false;
  if (size > remaining_) {
    // Retried when this window ends (refill_time()), with a new credit.
    waiting_ = true;
    return false;
  }
  remaining_ -= size;
  return true;
}

}  // namespace vifd::backend
