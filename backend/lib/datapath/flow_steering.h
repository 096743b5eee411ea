// Where a frame for a multi-queue vif goes when the frontend configured a
// hash over its control ring (netif.h: algorithm, hash types, key, mapping
// table): the receive queue = mapping[toeplitz(flow) % size], or the hash
// modulo the number of queues when there is no table.
//
// The control plane (HashControl) publishes each new configuration as an
// immutable HashSnapshot swapped in whole; the data path loads the current
// one when it steers a frame and never takes a lock that the control plane
// holds (the same atomic<shared_ptr> publication as Switch::topology).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace vifd::backend {

struct HashSnapshot {
  bool toeplitz = false;          // XEN_NETIF_CTRL_HASH_ALGORITHM_TOEPLITZ selected
  std::uint32_t flags = 0;        // XEN_NETIF_CTRL_HASH_TYPE_* hashed
  std::vector<std::uint8_t> key;  // missing octets count as zero
  // Hash -> queue, each entry validated < the vif's queue count; empty
  // means the hash modulo the number of queues.
  std::vector<std::uint32_t> mapping;
};

// Bytes of a frame the steering decision may look at: Ethernet, an IPv4
// header with options or an IPv6 header, and the TCP ports.
inline constexpr std::size_t kSteeringHeaderBytes = 14 + 60 + 4;

class FlowSteering {
 public:
  FlowSteering() : snapshot_(std::make_shared<const HashSnapshot>()) {}
  void publish(std::shared_ptr<const HashSnapshot> next) noexcept {
    snapshot_.store(std::move(next));
  }
  std::shared_ptr<const HashSnapshot> current() const noexcept { return snapshot_.load(); }

 private:
  std::atomic<std::shared_ptr<const HashSnapshot>> snapshot_;
};

// The queue `head` (the start of an Ethernet frame) hashes to, or
// std::nullopt when the configuration does not cover this frame (no
// algorithm, a protocol or hash type not enabled, a truncated header): the
// caller then chooses as it did without a hash.
std::optional<std::uint32_t> steer(const HashSnapshot& hash, std::span<const std::uint8_t> head,
                                   std::size_t queue_count) noexcept;

}  // namespace vifd::backend
