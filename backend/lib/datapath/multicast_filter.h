// The multicast addresses a frontend subscribed to with MCAST_ADD/MCAST_DEL
// extra-info slots (feature-multicast-control), shared by the queues of one
// vif: any queue's TX may update it, any queue's RX reads it.
//
// Lock-free: each entry is one atomic word holding a MAC and a valid bit, so
// readers never wait and the writers (TX threads of one vif) race only by
// compare-and-swap. At most 64 addresses, netback's XEN_NETBK_MCAST_MAX.
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

 private:
  static std::uint64_t encode(std::span<const std::uint8_t, 6> mac) noexcept;

  std::array<std::atomic<std::uint64_t>, kCapacity> entries_{};
};

}  // namespace vifd::backend
