// Paces a frontend's reconnects (Closed -> Initialising) on one vif.
#pragma once

#include <chrono>
#include <cstdint>

namespace vifd::backend {

// A token bucket: `burst` reconnects at once, then one per `interval`.
//
// Each connect and disconnect costs the control thread every guest shares
// (ring mappings, TAP queues, queue threads started and joined). A frontend
// cycling through Closed -> Initialising -> Connected as fast as it can
// would spend that thread on itself; pacing its reconnects bounds what it
// can take (one connect per interval) while a guest that reconnects now and
// then (resume, driver reload) never waits.
class ReconnectPacer {
 public:
  using Clock = std::chrono::steady_clock;

  static constexpr unsigned kDefaultBurst = 4;
  static constexpr std::chrono::milliseconds kDefaultInterval{250};

  explicit ReconnectPacer(unsigned burst = kDefaultBurst,
                          std::chrono::milliseconds interval = kDefaultInterval);

  // Whether a reconnect may start at `now`.
  bool allows(Clock::time_point now);
  // Takes the token of a reconnect that starts at `now` (allows() was true).
  void take(Clock::time_point now);
  // How long from `now` until allows() is true (zero when it is).
  Clock::duration wait(Clock::time_point now);

  // Reconnects that had to wait.
  std::uint64_t paced() const { return paced_; }
  void count_paced() { ++paced_; }

 private:
  void refill(Clock::time_point now);

  unsigned burst_;
  Clock::duration interval_;
  unsigned tokens_;
  Clock::time_point refilled_{};
  bool started_ = false;
  std::uint64_t paced_ = 0;
};

}  // namespace vifd::backend
