#include "backend/lib/datapath/capture_ring.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace vifd::backend {

CaptureRing::CaptureRing(std::size_t snaplen, std::size_t budget_bytes)
    : snaplen_(snaplen),
      slot_count_(std::max(kMinSlots, budget_bytes / std::max<std::size_t>(snaplen, 1))) {
  if (snaplen < kMinSnaplen || snaplen > kMaxSnaplen) {
    throw std::invalid_argument("snaplen " + std::to_string(snaplen) + " outside " +
                                std::to_string(kMinSnaplen) + ".." + std::to_string(kMaxSnaplen));
  }
  // Allocated here, on the control plane, and never again: producers only
  // write into these.
  slots_ = std::make_unique<Slot[]>(slot_count_);
  data_ = std::make_unique<std::uint8_t[]>(slot_count_ * snaplen_);
  for (std::size_t i = 0; i < slot_count_; ++i) {
    slots_[i].sequence.store(i, std::memory_order_relaxed);
  }
}

CaptureRing::~CaptureRing() = default;

CaptureRing::Reservation CaptureRing::reserve() noexcept {
  std::size_t position = tail_.load(std::memory_order_relaxed);
  for (;;) {
    Slot& slot = slots_[position % slot_count_];
    // Acquire: the consumer's release of this slot (it finished reading the
    // previous lap's bytes) happens before we overwrite them.
    const std::size_t sequence = slot.sequence.load(std::memory_order_acquire);
    const auto lag = static_cast<std::ptrdiff_t>(sequence - position);
    if (lag == 0) {
      if (tail_.compare_exchange_weak(position, position + 1, std::memory_order_relaxed)) {
        return Reservation{position, data_.get() + (position % slot_count_) * snaplen_};
      }
      // Another producer took it: position now holds the new tail.
    } else if (lag < 0) {
      // The slot still holds the previous lap's record: full. Not waiting is
      // the point.
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return Reservation{};
    } else {
      position = tail_.load(std::memory_order_relaxed);
    }
  }
}

void CaptureRing::commit(const Reservation& reservation, std::int64_t realtime_ns,
                         std::uint32_t original_length, std::uint32_t captured,
                         CaptureDirection direction) noexcept {
  Slot& slot = slots_[reservation.position % slot_count_];
  slot.realtime_ns = realtime_ns;
  slot.original_length = original_length;
  slot.captured = static_cast<std::uint32_t>(std::min<std::size_t>(captured, snaplen_));
  slot.direction = direction;
  slot.valid = true;
  recorded_.fetch_add(1, std::memory_order_relaxed);
  // Release: the fields and bytes above are visible to the consumer that
  // sees this sequence.
  slot.sequence.store(reservation.position + 1, std::memory_order_release);
}

void CaptureRing::abandon(const Reservation& reservation) noexcept {
  Slot& slot = slots_[reservation.position % slot_count_];
  slot.valid = false;
  dropped_.fetch_add(1, std::memory_order_relaxed);
  slot.sequence.store(reservation.position + 1, std::memory_order_release);
}

void CaptureRing::release_head(Slot& slot) noexcept {
  // Release: our reads of the slot happen before a producer's next writes.
  slot.sequence.store(head_ + slot_count_, std::memory_order_release);
  ++head_;
}

}  // namespace vifd::backend
