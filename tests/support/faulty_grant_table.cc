#include "tests/support/faulty_grant_table.h"

#include <fmt/format.h>

#include <utility>
#include <vector>

#include "common/platform/error.h"

namespace vifd::testing {

void GrantFaults::fail_segments(SegmentFilter which, std::int16_t status) {
  std::lock_guard lock(mutex_);
  segment_filter_ = std::move(which);
  segment_status_ = status;
}

void GrantFaults::refuse_copies(CallFilter which, int error) {
  std::lock_guard lock(mutex_);
  copy_filter_ = std::move(which);
  copy_error_ = error;
}

void GrantFaults::fail_maps(CallFilter which, std::int16_t status) {
  std::lock_guard lock(mutex_);
  map_filter_ = std::move(which);
  map_status_ = status;
}

void GrantFaults::clear() {
  std::lock_guard lock(mutex_);
  segment_filter_ = nullptr;
  copy_filter_ = nullptr;
  map_filter_ = nullptr;
}

std::uint64_t GrantFaults::failed_segments() const {
  std::lock_guard lock(mutex_);
  return failed_segments_;
}

std::uint64_t GrantFaults::refused_copies() const {
  std::lock_guard lock(mutex_);
  return refused_copies_;
}

std::uint64_t GrantFaults::failed_maps() const {
  std::lock_guard lock(mutex_);
  return failed_maps_;
}

FaultyGrantTable::FaultyGrantTable(std::unique_ptr<platform::GrantTable> real,
                                   std::shared_ptr<GrantFaults> faults)
    : real_(std::move(real)), faults_(std::move(faults)) {}

void* FaultyGrantTable::map(std::span<const platform::DomId> domids,
                            std::span<const platform::GrantRef> refs, bool writable) {
  GrantFaults::CallFilter which;
  std::uint64_t call = 0;
  std::int16_t status = 0;
  {
    std::lock_guard lock(faults_->mutex_);
    call = faults_->maps_seen_++;
    which = faults_->map_filter_;
    status = faults_->map_status_;
  }
  // Filters run unlocked: one may block (to hold the caller inside the call)
  // while the test inspects the plan.
  if (which && which(call)) {
    {
      std::lock_guard lock(faults_->mutex_);
      ++faults_->failed_maps_;
    }
    throw platform::PlatformError(
        fmt::format("grant map of ref {} from domain {}: {} (injected)", refs.empty() ? 0 : refs[0],
                    domids.empty() ? 0 : domids[0], platform::grant_status_name(status)),
        0);
  }
  return real_->map(domids, refs, writable);
}

void FaultyGrantTable::unmap(void* addr, std::size_t count) {
  real_->unmap(addr, count);
}

int FaultyGrantTable::copy(std::span<platform::GrantCopySegment> segments) noexcept {
  GrantFaults::CallFilter refuse;
  GrantFaults::SegmentFilter fail;
  std::uint64_t call = 0;
  std::uint64_t first_index = 0;
  std::int16_t status = 0;
  int error = 0;
  {
    std::lock_guard lock(faults_->mutex_);
    call = faults_->copies_seen_++;
    first_index = faults_->segments_seen_;
    faults_->segments_seen_ += segments.size();
    refuse = faults_->copy_filter_;
    fail = faults_->segment_filter_;
    status = faults_->segment_status_;
    error = faults_->copy_error_;
  }
  if (refuse && refuse(call)) {
    std::lock_guard lock(faults_->mutex_);
    ++faults_->refused_copies_;
    return -error;
  }
  // A failed segment goes to the real table with length 0 (copies nothing,
  // keeps the batch one call) and gets its length and injected status back.
  std::vector<std::pair<std::size_t, std::uint16_t>> failed;
  if (fail) {
    for (std::size_t i = 0; i < segments.size(); ++i) {
      if (!fail(first_index + i, segments[i])) continue;
      failed.emplace_back(i, segments[i].len);
      segments[i].len = 0;
    }
  }
  const int rc = real_->copy(segments);
  for (const auto& [i, len] : failed) {
    segments[i].len = len;
    segments[i].status = status;
  }
  std::lock_guard lock(faults_->mutex_);
  faults_->failed_segments_ += failed.size();
  return rc;
}

GrantFaults::SegmentFilter segments_touching(platform::GrantRef ref) {
  return [ref](std::uint64_t, const platform::GrantCopySegment& segment) {
    return ((segment.flags & platform::kCopySourceGref) != 0 &&
            segment.source.foreign.ref == ref) ||
           ((segment.flags & platform::kCopyDestGref) != 0 && segment.dest.foreign.ref == ref);
  };
}

GrantFaults::CallFilter nth_call(std::uint64_t n) {
  return [n](std::uint64_t call) { return call == n; };
}

}  // namespace vifd::testing
