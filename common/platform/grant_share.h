// Frontend side of grant tables: share own pages with another domain.
// Shaped after libxengntshr (Linux gntalloc); one object = one handle.
#pragma once

#include <span>

#include "common/platform/types.h"

namespace vifd::platform {

class GrantShare {
 public:
  virtual ~GrantShare() = default;
  GrantShare() = default;
  GrantShare(const GrantShare&) = delete;
  GrantShare& operator=(const GrantShare&) = delete;

  // Allocates refs_out.size() zeroed pages, grants each to `domid`
  // (read-only unless writable), writes the refs into refs_out and returns a
  // pointer to the pages, contiguous in this process. Throws PlatformError.
  virtual void* share(DomId domid, std::span<GrantRef> refs_out, bool writable) = 0;

  // Ends the grants and releases the pages of a range returned by share().
  // As with gntalloc, a page still mapped by the grantee is released only
  // once the grantee unmaps it. Throws PlatformError on a bad range.
  virtual void unshare(void* addr, std::size_t count) = 0;
};

}  // namespace vifd::platform
