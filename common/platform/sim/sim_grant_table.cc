#include "common/platform/sim/sim_grant_table.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/platform/error.h"
#include "common/platform/sim/grant_ops.h"

namespace vifd::sim::detail {

using platform::DomId;
using platform::GrantRef;
using platform::GrantStatus;
using platform::kPageSize;
using platform::PlatformError;

SimGrantTable::SimGrantTable(std::shared_ptr<const Host> host, DomId self)
    : host_(std::move(host)), self_(self), domains_(host_), slot_(nullptr), self_meta_(nullptr) {
  const auto view = domains_.find(self_);
  if (!view) {
    throw PlatformError(fmt::format("sim grant table: domain {} does not exist", self_), ESRCH);
  }
  self_meta_ = view->meta;
  handle_ = claim_grant_handle(*host_, domains_, self_, GrantHandleKind::kMap);
  slot_ = &host_->grant_handles().slots[handle_.index];
  free_records_.reserve(kMapRecordsPerHandle);
  for (std::uint32_t record = kMapRecordsPerHandle; record > 0; --record) {
    free_records_.push_back(record - 1);
  }
}

SimGrantTable::~SimGrantTable() {
  for (const auto& [address, pages] : mappings_) {
    ::munmap(reinterpret_cast<void*>(address), pages.size() * kPageSize);
    release_pages(pages);
  }
  release_grant_handle(*host_, handle_);
}

std::vector<std::uint32_t> SimGrantTable::take_records(std::size_t count) {
  std::lock_guard lock(mappings_mutex_);
  if (free_records_.size() < count) {
    throw PlatformError(
        fmt::format("sim grant map of {} pages: this handle already maps {} of "
                    "the {} pages one handle may map",
                    count, kMapRecordsPerHandle - free_records_.size(), kMapRecordsPerHandle),
        ENOSPC);
  }
  std::vector<std::uint32_t> taken(free_records_.end() - static_cast<std::ptrdiff_t>(count),
                                   free_records_.end());
  free_records_.resize(free_records_.size() - count);
  return taken;
}

void SimGrantTable::give_back_records(std::span<const std::uint32_t> records) noexcept {
  std::lock_guard lock(mappings_mutex_);
  free_records_.insert(free_records_.end(), records.begin(), records.end());
}

void SimGrantTable::release_pages(const std::vector<MappedPage>& pages) noexcept {
  for (const MappedPage& page : pages) {
    // Forgotten before the unpin: a record may outlive its pin by a moment
    // if we die now (a pin leaked), never name a pin already dropped.
    shared(slot_->maps[page.record].granter).store(0, std::memory_order_relaxed);
    // A granter destroyed (and perhaps recreated) since the map has no pin
    // of ours to release: its old table is gone with it.
    const auto view = domains_.find(page.domid);
    if (view && view->word == page.word) unpin_grant(*view->meta, page.ref);
  }
}

void* SimGrantTable::map(std::span<const DomId> domids, std::span<const GrantRef> refs,
                         bool writable) {
  if (domids.size() != refs.size() || refs.empty()) {
    throw PlatformError(
        fmt::format("sim grant map: {} domids for {} refs", domids.size(), refs.size()), EINVAL);
  }
  const std::size_t count = refs.size();
  count_hypercall(self_meta_->counters.grant_map_calls, 1);
  count_hypercall(self_meta_->counters.grant_map_pages, count);

  void* range = ::mmap(nullptr, count * kPageSize, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) {
    throw PlatformError(
        fmt::format("sim grant map: cannot reserve {} pages: {}", count, std::strerror(errno)),
        errno);
  }
  Mapping reservation(range, count * kPageSize);
  const std::vector<std::uint32_t> records = take_records(count);
  std::vector<MappedPage> pages;
  pages.reserve(count);
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);

  auto fail = [&](std::size_t index, std::int16_t status) {
    release_pages(pages);
    give_back_records(records);
    return PlatformError(
        fmt::format("sim grant map of {} pages: domain {} ref {} (entry {}): {}", count,
                    domids[index], refs[index], index, platform::grant_status_name(status)),
        EINVAL);
  };

  for (std::size_t i = 0; i < count; ++i) {
    const auto view = domains_.find(domids[i]);
    if (!view) throw fail(i, platform::kGntstBadDomain);
    const PinResult pin = pin_grant(*view->meta, refs[i], self_, writable);
    if (pin.status != platform::kGntstOkay) throw fail(i, pin.status);
    // Recorded where a reaper finds it should we die holding the pin.
    MapRecord& record = slot_->maps[records[i]];
    shared(record.ref).store(refs[i], std::memory_order_relaxed);
    shared(record.generation).store(view->meta->generation, std::memory_order_relaxed);
    shared(record.granter)
        .store(static_cast<std::uint32_t>(domids[i]) + 1, std::memory_order_relaxed);
    pages.push_back({domids[i], refs[i], view->word, records[i]});

    // Map the granted page itself (not a copy): the granter and we share it.
    const ShmName name = domains_.host().domain_object_name(domids[i], DomainObject::kMemory);
    const int fd = ::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
    // Opened after the pin: if the name now belongs to a newer incarnation,
    // the host word has changed and we must not map its memory.
    if (fd < 0 || !domains_.still_current(domids[i], view->word)) {
      if (fd >= 0) ::close(fd);
      throw fail(i, platform::kGntstBadDomain);
    }
    void* page = ::mmap(static_cast<std::byte*>(range) + i * kPageSize, kPageSize, prot,
                        MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(pin.frame) * kPageSize);
    ::close(fd);
    if (page == MAP_FAILED) throw fail(i, platform::kGntstGeneralError);
  }

  std::lock_guard lock(mappings_mutex_);
  mappings_.emplace(reinterpret_cast<std::uintptr_t>(range), std::move(pages));
  return reservation.release();
}

void SimGrantTable::unmap(void* addr, std::size_t count) {
  std::vector<MappedPage> pages;
  {
    std::lock_guard lock(mappings_mutex_);
    const auto found = mappings_.find(reinterpret_cast<std::uintptr_t>(addr));
    if (found == mappings_.end() || found->second.size() != count) {
      throw PlatformError(fmt::format("sim grant unmap: {} pages at {} is not a mapping of this "
                                      "handle",
                                      count, addr),
                          EINVAL);
    }
    pages = std::move(found->second);
    mappings_.erase(found);
  }
  count_hypercall(self_meta_->counters.grant_unmap_calls, 1);
  count_hypercall(self_meta_->counters.grant_unmap_pages, count);
  ::munmap(addr, count * kPageSize);
  release_pages(pages);
  std::vector<std::uint32_t> records;
  records.reserve(pages.size());
  for (const MappedPage& page : pages) {
    records.push_back(page.record);
  }
  give_back_records(records);
}

GrantStatus SimGrantTable::resolve(const platform::GrantCopyPtr& ptr, bool foreign, bool write,
                                   Side& side) noexcept {
  if (!foreign) {
    side.address = static_cast<std::byte*>(ptr.virt);
    return platform::kGntstOkay;
  }
  const DomId domid = ptr.foreign.domid == platform::kDomidSelf ? self_ : ptr.foreign.domid;
  const auto view = domains_.find(domid);
  if (!view) return platform::kGntstBadDomain;
  const PinResult pin = pin_grant(*view->meta, ptr.foreign.ref, self_, write);
  if (pin.status != platform::kGntstOkay) return pin.status;
  side.pinned = view->meta;
  side.ref = ptr.foreign.ref;
  side.address =
      view->memory + static_cast<std::size_t>(pin.frame) * kPageSize + ptr.foreign.offset;
  return platform::kGntstOkay;
}

std::int16_t SimGrantTable::copy_one(const platform::GrantCopySegment& segment) noexcept {
  const bool source_foreign = (segment.flags & platform::kCopySourceGref) != 0;
  const bool dest_foreign = (segment.flags & platform::kCopyDestGref) != 0;
  Side source;
  Side dest;
  // Xen's order (gnttab_copy_one): claim the source, then the destination,
  // then check the page bounds of the copy itself.
  GrantStatus status = resolve(segment.source, source_foreign, false, source);
  if (status == platform::kGntstOkay) status = resolve(segment.dest, dest_foreign, true, dest);
  if (status == platform::kGntstOkay &&
      ((source_foreign && segment.source.foreign.offset + segment.len > kPageSize) ||
       (dest_foreign && segment.dest.foreign.offset + segment.len > kPageSize))) {
    status = platform::kGntstBadCopyArg;
  }
  if (status == platform::kGntstOkay && segment.len != 0) {
    // memmove: both sides may be grants of one page (a guest may grant a
    // page twice), so they may overlap.
    std::memmove(dest.address, source.address, segment.len);
  }
  if (source.pinned != nullptr) unpin_grant(*source.pinned, source.ref);
  if (dest.pinned != nullptr) unpin_grant(*dest.pinned, dest.ref);
  return status;
}

int SimGrantTable::copy(std::span<platform::GrantCopySegment> segments) noexcept {
  std::uint64_t bytes = 0;
  for (platform::GrantCopySegment& segment : segments) {
    segment.status = copy_one(segment);
    if (segment.status == platform::kGntstOkay) bytes += segment.len;
  }
  count_hypercall(self_meta_->counters.grant_copy_calls, 1);
  count_hypercall(self_meta_->counters.grant_copy_segments, segments.size());
  count_hypercall(self_meta_->counters.grant_copy_bytes, bytes);
  return 0;
}

}  // namespace vifd::sim::detail
