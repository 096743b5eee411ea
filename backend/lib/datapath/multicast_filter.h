// The multicast addresses a frontend subscribed to with MCAST_ADD/MCAST_DEL
// extra-info slots (feature-multicast-control), shared by the queues of one
// vif: any queue's TX may update it, any queue's RX reads it.
//
// Lock-free: each entry is one atomic word holding a MAC and a valid bit, so
// readers never wait and the writers (TX threads of one vif) race only by
// compare-and-swap. At most 64 addresses, netback's XEN_NETBK_MCAST_MAX.
//
// Whether filtering applies at all is the frontend's request-multicast-control
// key, which it may change while connected (feature-dynamic-multicast-control).
// The control plane flips `enabled` and the queues read it where they filter: one
// atomic flag, so the per-packet path never shares a lock with xenstore work.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vifd::backend {

class MulticastFilter {
 public:
  static constexpr std::size_t kCapacity = 64;

  // False when the filter is full (netback answers that request with an error).
  bool add(std::span<const std::uint8_t, 6> mac) noexcept;
  // Removing an address that is not there succeeds, as in netback.
  void remove(std::span<const std::uint8_t, 6> mac) noexcept;
  bool contains(std::span<const std::uint8_t, 6> mac) const noexcept;
  std::size_t size() const noexcept;

  // Relaxed ordering is enough: the flag guards no other data, and a batch
  // that still sees the old value is as if the change came a moment later.
  void set_enabled(bool enabled) noexcept { enabled_.store(enabled, std::memory_order_relaxed); }
  bool enabled() const noexcept { return enabled_.load(std::memory_order_relaxed); }

 private:
  static std::uint64_t encode(std::span<const std::uint8_t, 6> mac) noexcept;

  std::array<std::atomic<std::uint64_t>, kCapacity> entries_{};
  std::atomic<bool> enabled_{false};
};

}  // namespace vifd::backend
