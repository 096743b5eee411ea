#include "backend/lib/datapath/multicast_filter.h"

namespace vifd::backend {

namespace {
constexpr std::uint64_t kValid = std::uint64_t{1} << 48;
}

std::uint64_t MulticastFilter::encode(std::span<const std::uint8_t, 6> mac) noexcept {
  std::uint64_t word = kValid;
  for (std::size_t i = 0; i < 6; ++i) word |= std::uint64_t{mac[i]} << (8 * i);
  return word;
}

bool MulticastFilter::add(std::span<const std::uint8_t, 6> mac) noexcept {
  const std::uint64_t word = encode(mac);
  if (contains(mac)) return true;
  for (auto& entry : entries_) {
    std::uint64_t expected = 0;
    if (entry.compare_exchange_strong(expected, word, std::memory_order_acq_rel)) return true;
    // Another queue of this vif added the same address meanwhile.
    if (expected == word) return true;
  }
  return false;
}

void MulticastFilter::remove(std::span<const std::uint8_t, 6> mac) noexcept {
  const std::uint64_t word = encode(mac);
  for (auto& entry : entries_) {
    std::uint64_t expected = word;
    entry.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }
}

bool MulticastFilter::contains(std::span<const std::uint8_t, 6> mac) const noexcept {
  const std::uint64_t word = encode(mac);
  for (const auto& entry : entries_) {
    if (entry.load(std::memory_order_acquire) == word) return true;
  }
  return false;
}

std::size_t MulticastFilter::size() const noexcept {
  std::size_t n = 0;
  for (const auto& entry : entries_) {
    if (entry.load(std::memory_order_relaxed) != 0) ++n;
  }
  return n;
}

}  // namespace vifd::backend
