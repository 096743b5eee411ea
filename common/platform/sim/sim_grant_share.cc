#include "common/platform/sim/sim_grant_share.h"

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
using platform::kPageSize;
using platform::PlatformError;

SimGrantShare::SimGrantShare(std::shared_ptr<const Host> host, DomId self)
    : host_(host), self_(self), domains_(std::move(host)) {
  if (!domains_.find(self_)) {
    throw PlatformError(fmt::format("sim grant share: domain {} does not exist", self_), ESRCH);
  }
  handle_ = claim_grant_handle(*host_, domains_, self_, GrantHandleKind::kShare);
}

SimGrantShare::~SimGrantShare() {
  for (const auto& [address, pages] : shares_) {
    ::munmap(reinterpret_cast<void*>(address), pages.size() * kPageSize);
    end_access(pages);
  }
  release_grant_handle(*host_, handle_);
}

void SimGrantShare::end_access(const std::vector<SharedPage>& pages) noexcept {
  // A destroyed domain's table and pool died with it; nothing to end.
  const auto self = domains_.find(self_);
  if (!self) return;
  for (const SharedPage& page : pages) {
    // Disowned first: should we die here, no reaper ends it a second time.
    shared(self->meta->share_owner[page.ref]).store(0, std::memory_order_relaxed);
    end_foreign_access(*self->meta, page.ref, page.frame);
  }
}

void* SimGrantShare::share(DomId domid, std::span<GrantRef> refs_out, bool writable) {
  const std::size_t count = refs_out.size();
  if (count == 0) throw PlatformError("sim grant share: zero pages requested", EINVAL);
  const auto self = domains_.find(self_);
  if (!self) {
    throw PlatformError(fmt::format("sim grant share: domain {} does not exist", self_), ESRCH);
  }
  DomainShared& meta = *self->meta;

  std::vector<std::uint32_t> frames;
  std::vector<std::uint32_t> refs;
  if (!allocate_bits(meta.page_bitmap, kPagesPerDomain, 0, count, frames)) {
    throw PlatformError(fmt::format("sim grant share: domain {} has no {} free pages for domain {}",
                                    self_, count, domid),
                        ENOMEM);
  }
  if (!allocate_bits(meta.ref_bitmap, kGrantEntries, kReservedGrantRefs, count, refs)) {
    for (const std::uint32_t frame : frames) free_bit(meta.page_bitmap, frame);
    throw PlatformError(fmt::format("sim grant share: domain {} has no {} free grant refs for "
                                    "domain {}",
                                    self_, count, domid),
                        ENOSPC);
  }
  auto give_back = [&] {
    for (const std::uint32_t frame : frames) free_bit(meta.page_bitmap, frame);
    for (const std::uint32_t ref : refs) free_bit(meta.ref_bitmap, ref);
  };

  // Our own view of the pages: each page of the pool mapped at its place in
  // one reserved range, so the caller gets contiguous memory.
  void* range = ::mmap(nullptr, count * kPageSize, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  const int fd = ::shm_open(host_->domain_object_name(self_, DomainObject::kMemory).c_str(),
                            O_RDWR | O_CLOEXEC, 0);
  if (range == MAP_FAILED || fd < 0) {
    const int saved = errno;
    if (range != MAP_FAILED) ::munmap(range, count * kPageSize);
    if (fd >= 0) ::close(fd);
    give_back();
    throw PlatformError(fmt::format("sim grant share: domain {}: cannot map {} pages: {}", self_,
                                    count, std::strerror(saved)),
                        saved);
  }
  for (std::size_t i = 0; i < count; ++i) {
    void* page =
        ::mmap(static_cast<std::byte*>(range) + i * kPageSize, kPageSize, PROT_READ | PROT_WRITE,
               MAP_SHARED | MAP_FIXED, fd, static_cast<off_t>(frames[i]) * kPageSize);
    if (page == MAP_FAILED) {
      const int saved = errno;
      ::close(fd);
      ::munmap(range, count * kPageSize);
      give_back();
      throw PlatformError(fmt::format("sim grant share: domain {}: cannot map page {}: {}", self_,
                                      frames[i], std::strerror(saved)),
                          saved);
    }
  }
  ::close(fd);
  // Pages come back to the pool with their last owner's data; gntalloc
  // hands out zeroed pages.
  std::memset(range, 0, count * kPageSize);

  std::vector<SharedPage> pages(count);
  const std::uint16_t flags = GTF_permit_access | (writable ? 0 : GTF_readonly);
  for (std::size_t i = 0; i < count; ++i) {
    grant_entry_v1_t& entry = meta.grant_entries[refs[i]];
    // As a guest does (Linux gnttab_grant_foreign_access_ref): frame and
    // domid first, then the flags with release, so a mapper that sees
    // GTF_permit_access also sees which page and for whom.
    shared(entry.frame).store(frames[i], std::memory_order_relaxed);
    // Owned (with its frame in place) before it is granted: a reaper ends
    // what we die holding.
    shared(meta.share_owner[refs[i]]).store(handle_.token, std::memory_order_relaxed);
    shared(entry.domid).store(domid, std::memory_order_relaxed);
    shared(entry.flags).store(flags, std::memory_order_release);
    refs_out[i] = refs[i];
    pages[i] = {refs[i], frames[i]};
  }
  std::lock_guard lock(shares_mutex_);
  shares_.emplace(reinterpret_cast<std::uintptr_t>(range), std::move(pages));
  return range;
}

void SimGrantShare::unshare(void* addr, std::size_t count) {
  std::vector<SharedPage> pages;
  {
    std::lock_guard lock(shares_mutex_);
    const auto found = shares_.find(reinterpret_cast<std::uintptr_t>(addr));
    if (found == shares_.end() || found->second.size() != count) {
      throw PlatformError(fmt::format("sim grant unshare: {} pages at {} is not a share of domain "
                                      "{}'s handle",
                                      count, addr, self_),
                          EINVAL);
    }
    pages = std::move(found->second);
    shares_.erase(found);
  }
  ::munmap(addr, count * kPageSize);
  end_access(pages);
}

}  // namespace vifd::sim::detail
