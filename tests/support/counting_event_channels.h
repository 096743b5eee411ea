// An EventChannels that forwards to another and counts pending() calls:
// each is a system call on Xen (a read of the event-channel fd), so tests
// of "no read the wake-up did not ask for" count them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

#include "common/platform/event_channels.h"

namespace vifd::testing {

class CountingEventChannels : public platform::EventChannels {
 public:
  CountingEventChannels(std::unique_ptr<platform::EventChannels> inner,
                        std::shared_ptr<std::atomic<std::uint64_t>> pending_calls)
      : inner_(std::move(inner)), pending_calls_(std::move(pending_calls)) {}

  int fd() const noexcept override { return inner_->fd(); }
  platform::EvtchnPort bind_unbound(platform::DomId remote_domid) override {
    return inner_->bind_unbound(remote_domid);
  }
  platform::EvtchnPort bind_interdomain(platform::DomId remote_domid,
                                        platform::EvtchnPort remote_port) override {
    return inner_->bind_interdomain(remote_domid, remote_port);
  }
  void unbind(platform::EvtchnPort local_port) override { inner_->unbind(local_port); }
  int notify(platform::EvtchnPort local_port) noexcept override {
    return inner_->notify(local_port);
  }
  std::optional<platform::EvtchnPort> pending() noexcept override {
    pending_calls_->fetch_add(1, std::memory_order_relaxed);
    return inner_->pending();
  }
  int unmask(platform::EvtchnPort local_port) noexcept override {
    return inner_->unmask(local_port);
  }
  bool readable_exactly_while_pending() const noexcept override {
    return exact_readiness_as.value_or(inner_->readable_exactly_while_pending());
  }

  // Set: what readable_exactly_while_pending() answers instead of the inner
  // channels (to run a Xen-only path on the simulator).
  std::optional<bool> exact_readiness_as;

 private:
  std::unique_ptr<platform::EventChannels> inner_;
  std::shared_ptr<std::atomic<std::uint64_t>> pending_calls_;
};

}  // namespace vifd::testing
