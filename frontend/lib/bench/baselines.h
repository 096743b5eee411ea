// The limits vifd is measured against, in the same run on the same machine:
//  * memcpy: frames of the given size copied one after the other from one
//    buffer to another, both much larger than the last-level cache (the
//    one-copy limit: vifd copies every byte once);
//  * spsc: a netif-like pair of rings between two threads of this process,
//    requests one way and responses back, the consumer copying each frame
//    once, with no grant checks and no notifications (both threads poll):
//    the protocol's limit without the hypervisor.
#pragma once

#include <chrono>
#include <cstddef>

#include "frontend/lib/bench/report.h"

namespace vifd::bench {

// The last-level cache size from sysfs, 0 when unknown.
std::size_t last_level_cache_bytes();

class MemcpyBaseline {
 public:
  // Allocates and touches two buffers of `buffer_bytes` each.
  explicit MemcpyBaseline(std::size_t buffer_bytes);
  ~MemcpyBaseline();
  MemcpyBaseline(const MemcpyBaseline&) = delete;
  MemcpyBaseline& operator=(const MemcpyBaseline&) = delete;

  BaselineResult run(std::size_t frame, std::chrono::duration<double> duration);

 private:
  std::size_t bytes_;
  std::byte* source_ = nullptr;
  std::byte* destination_ = nullptr;
};

BaselineResult run_spsc_baseline(std::size_t frame, std::chrono::duration<double> duration);

}  // namespace vifd::bench
