// A process-local, lazily filled table of other domains' shared objects
// (grant table, ports, counters and guest memory), for the data path.
//
// find() never allocates: every slot exists from construction and a mapping
// is made on first use with mmap. When a domain is destroyed and recreated,
// the slot is re-mapped in place (MAP_FIXED over the same addresses), so a
// pointer another thread obtained earlier never dangles; at worst it reads
// the new incarnation's memory, which only a thread racing a domain's
// destruction can observe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "common/platform/sim/host.h"

namespace vifd::sim::detail {

struct DomainView {
  DomainShared* meta;
  std::byte* memory;   // kDomainMemoryBytes of guest memory
  std::uint64_t word;  // host-table word of the incarnation mapped
};

class DomainCache {
 public:
  explicit DomainCache(std::shared_ptr<const Host> host);
  ~DomainCache();
  DomainCache(const DomainCache&) = delete;
  DomainCache& operator=(const DomainCache&) = delete;

  // The live incarnation of `domid`, or nullopt when it does not exist, is
  // being destroyed, or cannot be mapped (GNTST_bad_domain to callers).
  std::optional<DomainView> find(platform::DomId domid) noexcept;

  // True while `word` is still the live incarnation of `domid`.
  bool still_current(platform::DomId domid, std::uint64_t word) const noexcept {
    return host_->domain_word(domid) == word;
  }

  const Host& host() const noexcept { return *host_; }

 private:
  struct Slot {
    std::uint64_t word;  // written under remap_mutex_, read lock-free (atomic_ref)
    DomainShared* meta;
    std::byte* memory;
  };

  std::shared_ptr<const Host> host_;
  std::unique_ptr<Slot[]> slots_;
  std::mutex remap_mutex_;
};

}  // namespace vifd::sim::detail
