#include "backend/lib/control/reconnect_pacer.h"

#include <algorithm>

namespace vifd::backend {

ReconnectPacer::ReconnectPacer(unsigned burst, std::chrono::milliseconds interval)
    : burst_(std::max(burst, 1U)),
      interval_(std::max(interval, std::chrono::milliseconds(1))),
      tokens_(burst_) {}

void ReconnectPacer::refill(Clock::time_point now) {
  if (!started_) {
    started_ = true;
    refilled_ = now;
    return;
  }
  if (now <= refilled_) {
    return;
  }
  const auto earned = static_cast<std::uint64_t>((now - refilled_) / interval_);
  if (earned == 0) {
    return;
  }
  if (tokens_ + earned >= burst_) {
    tokens_ = burst_;
    refilled_ = now;
  } else {
    tokens_ += static_cast<unsigned>(earned);
    refilled_ += interval_ * static_cast<Clock::rep>(earned);
  }
}

bool ReconnectPacer::allows(Clock::time_point now) {
  refill(now);
  return tokens_ > 0;
}

void ReconnectPacer::take(Clock::time_point now) {
  refill(now);
  if (tokens_ == burst_) {
    refilled_ = now;  // a full bucket earned nothing while it waited
  }
  if (tokens_ > 0) {
    --tokens_;
  }
}

ReconnectPacer::Clock::duration ReconnectPacer::wait(Clock::time_point now) {
  refill(now);
  if (tokens_ > 0) {
    return Clock::duration::zero();
  }
  return refilled_ + interval_ - now;
}

}  // namespace vifd::backend
