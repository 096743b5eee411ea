// Static grant mappings (netif.h, "Static Grants"): frontend pages vifd keeps
// mapped, looked up by grant ref on the data path, so a grant-copy segment
// whose foreign side names a mapped page is served by memcpy in vifd's own
// address space instead of a grant operation.
//
// The control plane (GrefControl, on the ctrl ring) owns the mappings and
// builds each table; one queue thread reads one table at a time through its
// GrefHandoff, without a lock:
//  * publish(): the control plane stores a new immutable table (release)
//    and wakes the queue;
//  * the queue adopts the newest table at the top of a loop turn, where no
//    copy of its own is under way, and acknowledges generation G once it
//    holds no pointer into a page of an older table (a frame it forwarded
//    through the switch carries such pointers until the receiver completes
//    it);
//  * the control plane unmaps a page only once the first table without it
//    is acknowledged, and frees older tables likewise.
// So a page is never unmapped under a copy, and the data path neither
// allocates nor waits for the control plane.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "common/platform/types.h"

namespace vifd::backend {

struct GrefEntry {
  platform::GrantRef ref = 0;
  bool writable = false;
  std::uint8_t* page = nullptr;  // the mapping in vifd; nullptr marks a free slot
};

// An immutable grant ref -> mapped page lookup (open addressing, at most half
// full, so a miss ends after a short probe).
class GrefTable {
 public:
  // entries: distinct refs, each with its page.
  GrefTable(std::uint64_t generation, std::span<const GrefEntry> entries);

  const GrefEntry* find(platform::GrantRef ref) const noexcept {
    if (size_ == 0) {
      return nullptr;
    }
    for (std::size_t i = hash(ref) & mask_;; i = (i + 1) & mask_) {
      const GrefEntry& slot = slots_[i];
      if (slot.page == nullptr) {
        return nullptr;
      }
      if (slot.ref == ref) {
        return &slot;
      }
    }
  }
  std::size_t size() const noexcept { return size_; }
  std::uint64_t generation() const noexcept { return generation_; }

 private:
  static std::size_t hash(platform::GrantRef ref) noexcept {
    // Fibonacci hashing: frontends grant runs of consecutive refs.
    return static_cast<std::size_t>((std::uint64_t{ref} * 0x9E3779B97F4A7C15ULL) >> 32);
  }

  std::uint64_t generation_;
  std::size_t size_;
  std::size_t mask_ = 0;
  std::vector<GrefEntry> slots_;
};

// The exchange between the control plane and one queue thread (see the file
// comment). Generations start at 1; 0 means "none yet".
class GrefHandoff {
 public:
  GrefHandoff();
  ~GrefHandoff();
  GrefHandoff(const GrefHandoff&) = delete;
  GrefHandoff& operator=(const GrefHandoff&) = delete;

  // ---- control plane ----
  // `table` must stay valid until acknowledged() passes its generation.
  void publish(const GrefTable* table) noexcept;
  std::uint64_t acknowledged() const noexcept { return acked_.load(std::memory_order_acquire); }

  // ---- queue thread ----
  const GrefTable* latest() const noexcept { return published_.load(std::memory_order_acquire); }
  void acknowledge(std::uint64_t generation) noexcept {
    acked_.store(generation, std::memory_order_release);
  }
  // Readable after a publish(); the queue polls it.
  int wake_fd() const noexcept { return wake_fd_; }
  void consume_wake() noexcept;

 private:
  std::atomic<const GrefTable*> published_{nullptr};
  std::atomic<std::uint64_t> acked_{0};
  int wake_fd_ = -1;
};

}  // namespace vifd::backend
