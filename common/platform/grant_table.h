// Backend side of grant tables: map foreign pages and copy through grants.
// Shaped after libxengnttab; one object = one xengnttab handle.
#pragma once

#include <span>

#include "common/platform/types.h"

namespace vifd::platform {

class GrantTable {
 public:
  virtual ~GrantTable() = default;
  GrantTable() = default;
  GrantTable(const GrantTable&) = delete;
  GrantTable& operator=(const GrantTable&) = delete;

  // Maps refs[i] granted by domids[i] into one contiguous range of
  // refs.size() pages (one hypercall-equivalent for the whole batch).
  // domids.size() must equal refs.size(). Throws PlatformError naming the
  // first failing (domid, ref) and its GNTST_* code; nothing stays mapped
  // on failure.
  virtual void* map(std::span<const DomId> domids, std::span<const GrantRef> refs,
                    bool writable) = 0;

  // Unmaps a range returned by map(); count must be the mapped page count.
  // Throws PlatformError when addr/count do not name a mapping.
  virtual void unmap(void* addr, std::size_t count) = 0;

  // Executes all segments as one batch. Returns 0 when the batch was
  // processed (each segment's status then holds its own GNTST_* code) or a
  // negative errno when the batch as a whole was rejected. Never throws and
  // never allocates: this is the per-batch data-path call.
  virtual int copy(std::span<GrantCopySegment> segments) noexcept = 0;
};

}  // namespace vifd::platform
