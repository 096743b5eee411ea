// A GrantTable that forwards to a real one and fails the operations a test
// chooses, so that the paths a hypervisor failure takes (a copy segment with
// a GNTST_* error, a copy batch refused as a whole, a map that throws) can be
// driven on purpose instead of waiting for Xen to misbehave.
//
// The plan (GrantFaults) is shared: the test keeps it and may change it at
// any time, while the code under test owns the FaultyGrantTable and calls it
// from its own thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "common/platform/grant_table.h"

namespace vifd::testing {

class GrantFaults {
 public:
  // Sees each segment with its index among all segments the table was asked
  // to copy (from 0).
  using SegmentFilter =
      std::function<bool(std::uint64_t index, const platform::GrantCopySegment& segment)>;
  // Sees the index of a copy() or map() call among all such calls (from 0).
  using CallFilter = std::function<bool(std::uint64_t call)>;

  // Segments `which` selects are not copied and report `status` (a GNTST_*
  // code); the rest of their batch is copied as usual.
  void fail_segments(SegmentFilter which, std::int16_t status = platform::kGntstGeneralError);
  // copy() calls `which` selects are refused as a whole: nothing is copied
  // and the call returns -error, as a failing ioctl does.
  void refuse_copies(CallFilter which, int error);
  // map() calls `which` selects throw PlatformError with the GNTST_* code
  // `status` and map nothing.
  void fail_maps(CallFilter which, std::int16_t status = platform::kGntstBadGntref);
  // Back to forwarding everything.
  void clear();

  // What was failed so far.
  std::uint64_t failed_segments() const;
  std::uint64_t refused_copies() const;
  std::uint64_t failed_maps() const;

 private:
  friend class FaultyGrantTable;

  mutable std::mutex mutex_;
  SegmentFilter segment_filter_;
  std::int16_t segment_status_ = platform::kGntstGeneralError;
  CallFilter copy_filter_;
  int copy_error_ = 0;
  CallFilter map_filter_;
  std::int16_t map_status_ = platform::kGntstBadGntref;
  std::uint64_t segments_seen_ = 0;
  std::uint64_t copies_seen_ = 0;
  std::uint64_t maps_seen_ = 0;
  std::uint64_t failed_segments_ = 0;
  std::uint64_t refused_copies_ = 0;
  std::uint64_t failed_maps_ = 0;
};

class FaultyGrantTable final : public platform::GrantTable {
 public:
  FaultyGrantTable(std::unique_ptr<platform::GrantTable> real, std::shared_ptr<GrantFaults> faults);

  void* map(std::span<const platform::DomId> domids, std::span<const platform::GrantRef> refs,
            bool writable) override;
  void unmap(void* addr, std::size_t count) override;
  // Takes a lock, may allocate and runs the filters (which may block): fine
  // for tests, unlike the data-path contract of the real implementations.
  int copy(std::span<platform::GrantCopySegment> segments) noexcept override;

 private:
  std::unique_ptr<platform::GrantTable> real_;
  std::shared_ptr<GrantFaults> faults_;
};

// Filters for the common cases.
// Segments whose foreign source or destination is `ref`.
GrantFaults::SegmentFilter segments_touching(platform::GrantRef ref);
// Exactly the n-th call (from 0).
GrantFaults::CallFilter nth_call(std::uint64_t n);

}  // namespace vifd::testing
