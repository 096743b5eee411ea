// A capture of the frames the in-process switch forwards from and to one vif
// (vifctl capture): a preallocated, bounded ring of fixed-size slots that
// several queue threads fill and the control plane drains.
//
// The data path never waits for a capture: a producer that finds the ring
// full does not record the frame and counts it in dropped(). The ring is a
// bounded multi-producer single-consumer queue after Dmitry Vyukov's bounded
// MPMC queue: each slot carries a sequence number that says whose turn it is
// (a producer's for this lap, or the consumer's), so producers only contend
// on the tail index and nobody takes a lock.
//
// A producer reserves a slot, fills it (a grant copy writes the bytes
// straight into it) and commits it; between the two the consumer stops at
// that slot, which is what keeps the records in order.
//
// Lifetime: the switch hands producers a raw pointer, guarded by
// CaptureTaps (switch.h); the control plane frees a ring only after the
// switch withdrew it and no producer can still hold it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace vifd::backend {

// Which way a recorded frame went, seen from the captured vif.
enum class CaptureDirection : std::uint8_t {
  kFromVif,  // the vif's guest sent it; another vif received it
  kToVif,    // another vif sent it; the captured vif's guest received it
};

struct CaptureRecord {
  std::int64_t realtime_ns = 0;       // CLOCK_REALTIME when it was delivered
  std::uint32_t original_length = 0;  // the frame's length on the wire
  CaptureDirection direction = CaptureDirection::kFromVif;
  std::span<const std::uint8_t> bytes;  // the first min(length, snaplen) bytes
};

class CaptureRing {
 public:
  // Bytes of a frame recorded at most (tcpdump's -s): 64 KiB covers a GSO frame whole.
  static constexpr std::size_t kMaxSnaplen = 65536;
  static constexpr std::size_t kMinSnaplen = 14;  // an Ethernet header
  // Memory one capture may hold (slots of snaplen bytes each).
  static constexpr std::size_t kDefaultBudgetBytes = std::size_t{4} << 20;
  static constexpr std::size_t kMinSlots = 8;

  // Throws std::invalid_argument for a snaplen outside kMinSnaplen..kMaxSnaplen.
  explicit CaptureRing(std::size_t snaplen, std::size_t budget_bytes = kDefaultBudgetBytes);
  ~CaptureRing();
  CaptureRing(const CaptureRing&) = delete;
  CaptureRing& operator=(const CaptureRing&) = delete;

  std::size_t snaplen() const noexcept { return snaplen_; }
  std::size_t capacity() const noexcept { return slot_count_; }

  // ---- producers (queue threads) ----
  struct Reservation {
    std::size_t position = 0;
    std::uint8_t* data = nullptr;  // snaplen() bytes to fill; nullptr: ring full
    explicit operator bool() const noexcept { return data != nullptr; }
  };
  // A slot to fill, or an empty reservation (the frame counts as dropped).
  Reservation reserve() noexcept;
  // Publishes a filled slot: `captured` bytes of data, at most snaplen().
  void commit(const Reservation& reservation, std::int64_t realtime_ns,
              std::uint32_t original_length, std::uint32_t captured,
              CaptureDirection direction) noexcept;
  // Gives a reserved slot back unrecorded (its bytes could not be read);
  // it counts as dropped.
  void abandon(const Reservation& reservation) noexcept;
  // A frame that was not even offered a slot (e.g. no capture bytes could be read).
  void count_drop() noexcept { dropped_.fetch_add(1, std::memory_order_relaxed); }

  // ---- consumer (control plane, one thread) ----
  // Calls visit(const CaptureRecord&) for up to `max` committed records in
  // order, then frees their slots; returns how many it visited. Stops at a
  // slot still being filled.
  template <typename Visit>
  std::size_t drain(std::size_t max, Visit&& visit);

  std::uint64_t recorded() const noexcept { return recorded_.load(std::memory_order_relaxed); }
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

  // The captured vif went away: producers will never come back.
  void close() noexcept { closed_.store(true, std::memory_order_release); }
  bool closed() const noexcept { return closed_.load(std::memory_order_acquire); }

 private:
  struct Slot {
    // position: free for the producer of that position; position + 1:
    // committed, the consumer's.
    std::atomic<std::size_t> sequence{0};
    std::int64_t realtime_ns = 0;
    std::uint32_t original_length = 0;
    std::uint32_t captured = 0;
    CaptureDirection direction = CaptureDirection::kFromVif;
    bool valid = false;  // false: abandoned, skipped by the consumer
  };

  // Frees the consumer's slot at head_ for the producer one lap later.
  void release_head(Slot& slot) noexcept;

  std::size_t snaplen_;
  std::size_t slot_count_;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::uint8_t[]> data_;  // slot_count_ * snaplen_ bytes
  // Producers' next position; separate cache line from the consumer's.
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) std::size_t head_ = 0;  // consumer only
  std::atomic<std::uint64_t> recorded_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> closed_{false};
};

template <typename Visit>
std::size_t CaptureRing::drain(std::size_t max, Visit&& visit) {
  std::size_t visited = 0;
  while (visited < max) {
    Slot& slot = slots_[head_ % slot_count_];
    // Acquire: pairs with commit()/abandon()'s release, so the slot's fields
    // and bytes written before it are visible.
    if (slot.sequence.load(std::memory_order_acquire) != head_ + 1) {
      break;  // empty, or still being filled
    }
    if (slot.valid) {
      const CaptureRecord record{
          slot.realtime_ns, slot.original_length, slot.direction,
          std::span<const std::uint8_t>(data_.get() + (head_ % slot_count_) * snaplen_,
                                        slot.captured)};
      visit(record);
      ++visited;
    }
    release_head(slot);
  }
  return visited;
}

}  // namespace vifd::backend
