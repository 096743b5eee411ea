// Pages this domain grants to its backend, owned RAII-style: shared once at
// connect, unshared when the connection ends.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "common/platform/grant_share.h"
#include "common/platform/types.h"

namespace vifd::frontend {

class SharedPages {
 public:
  // Shares `count` zeroed pages with `domid` in one call (one grant-share
  // hypercall-equivalent). Throws PlatformError.
  SharedPages(platform::GrantShare& share, platform::DomId domid, std::size_t count, bool writable);
  ~SharedPages();
  SharedPages(const SharedPages&) = delete;
  SharedPages& operator=(const SharedPages&) = delete;

  std::size_t count() const noexcept { return refs_.size(); }
  platform::GrantRef ref(std::size_t page) const noexcept { return refs_[page]; }
  std::span<std::byte> page(std::size_t index) const noexcept {
    return {base_ + index * platform::kPageSize, platform::kPageSize};
  }

 private:
  platform::GrantShare& share_;
  std::vector<platform::GrantRef> refs_;
  std::byte* base_ = nullptr;
};

}  // namespace vifd::frontend
