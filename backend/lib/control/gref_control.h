// The static grant mapping messages of the netif control ring (netif.h,
// "Static Grants": GET_GREF_MAPPING_SIZE, ADD_GREF_MAPPING,
// DEL_GREF_MAPPING): the frontend names pages vifd keeps mapped, per queue,
// so the queue copies to and from them with memcpy instead of grant copies.
//
// Runs on the control plane, one request at a time. Each queue's mappings
// are published to its thread as an immutable GrefTable through the
// queue's GrefHandoff (backend/lib/datapath/gref_table.h); a page removed by
// DEL is unmapped only once its queue acknowledged a table without it, so a
// DEL racing a copy (or a frame forwarded through the switch) never unmaps
// a page under it. reclaim() does that unmapping; the owner calls it until
// it says nothing waits any more.
//
// Everything the frontend controls is checked: the list is copied out of
// its page once and validated before anything is mapped; an ADD is all or
// nothing (netif.h); a queue holds at most kMaxMappingsPerQueue pages,
// pages still waiting to be unmapped included, so a frontend that adds and
// deletes in a loop cannot make vifd hold more.
//
// An ADD list is mapped as one range per access mode (its writable entries
// in one grant-device mapping, its read-only ones in another), not a page
// at a time: every mapping is a VMA of vifd's, and vm.max_map_count (65530
// by default) is shared by every guest vifd serves. A queue holds at most
// kMaxRangesPerQueue ranges, so a frontend sending one-page lists cannot
// use more VMAs than that either. A range is unmapped as a whole, once all
// its pages were deleted and the queue acknowledged a table without them;
// until then its deleted pages still count as held.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "backend/lib/datapath/gref_table.h"
#include "common/platform/platform.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend {

// Why a request was refused (counted per vif; the frontend sees
// INVALID_PARAMETER, or an entry status for DEL).
enum class GrefRefusal : std::uint8_t {
  kBadQueue,           // queue index out of range
  kBadList,            // list size 0 or beyond one page, or the list page not copyable
  kBadFlags,           // an entry with flags other than readonly
  kDuplicate,          // a ref twice in one list, or already mapped on that queue
  kLimit,              // the queue would hold more than kMaxMappingsPerQueue pages
  kRangeLimit,         // the queue would hold more than kMaxRangesPerQueue mapped ranges
  kMapFailed,          // a ref the platform would not map (bad ref, revoked, wrong domain)
  kNotMapped,          // DEL of an entry that is not mapped (its status says so)
  kStatusWriteFailed,  // DEL could not write the statuses back to the list page
  kCount,
};
inline constexpr std::size_t kGrefRefusalCount = static_cast<std::size_t>(GrefRefusal::kCount);
std::string_view to_string(GrefRefusal refusal) noexcept;

class GrefControl {
 public:
  // Per queue; what GET_GREF_MAPPING_SIZE answers. A vif-front queue offers
  // its TX and RX pools (2 x 256 pages); the rest is headroom.
  static constexpr std::uint32_t kMaxMappingsPerQueue = 1024;
  // Mapped ranges per queue (each ADD makes one or two: writable and
  // read-only entries). vif-front needs two per queue.
  static constexpr std::uint32_t kMaxRangesPerQueue = 16;
  // Entries of one ADD/DEL list: one page of xen_netif_gref.
  static constexpr std::uint32_t kMaxListEntries =
      static_cast<std::uint32_t>(platform::kPageSize / sizeof(protocol::StaticGrant));

  // copier: copies the lists (and DEL statuses) from/to the frontend's
  // pages; platform: opens one grant-table handle per queue for the
  // mappings; handoffs[i]: queue i's. Publishes an empty table to each.
  GrefControl(platform::Platform& platform, platform::GrantTable& copier, platform::DomId frontend,
              std::vector<std::shared_ptr<GrefHandoff>> handoffs);
  // Unmaps every page: the queues must have stopped.
  ~GrefControl();
  GrefControl(const GrefControl&) = delete;
  GrefControl& operator=(const GrefControl&) = delete;

  static bool handles(std::uint16_t type) noexcept;
  protocol::CtrlResponse handle(const protocol::CtrlRequest& request);

  // Unmaps the pages and frees the tables no queue uses any more; true
  // while some still wait for a queue's acknowledgement.
  bool reclaim() noexcept;

  // Pages mapped and in use now (all queues); pages deleted but still
  // mapped (their range waits for its other pages or for the queue's
  // acknowledgement); mapped ranges (grant-device mappings); refusals.
  std::size_t mapped() const noexcept;
  std::size_t retiring() const noexcept;
  std::size_t ranges() const noexcept;
  std::uint64_t refused(GrefRefusal refusal) const noexcept {
    return refused_[static_cast<std::size_t>(refusal)];
  }
  std::uint64_t refused_total() const noexcept;

 private:
  struct Mapping {
    bool writable = false;
    void* page = nullptr;
    std::uint64_t range = 0;  // the key of its Range
  };
  // One grant-device mapping: the writable or the read-only entries of one
  // ADD list.
  struct Range {
    void* base = nullptr;
    std::uint32_t pages = 0;
    std::uint32_t live = 0;  // pages not deleted yet
    // Once every page was deleted: the first table without any of them.
    std::uint64_t retired_generation = 0;
  };
  struct QueueMappings {
    std::shared_ptr<GrefHandoff> handoff;
    std::unique_ptr<platform::GrantTable> grants;
    std::unordered_map<platform::GrantRef, Mapping> live;
    std::unordered_map<std::uint64_t, Range> ranges;
    std::uint64_t next_range = 1;
    std::uint32_t held_pages = 0;  // the pages of every range still mapped
    // Published tables, oldest first; the last is the current one.
    std::deque<std::unique_ptr<GrefTable>> tables;
    std::uint64_t next_generation = 1;
  };

  std::uint32_t add(std::uint32_t queue, platform::GrantRef list, std::uint32_t count);
  std::uint32_t del(std::uint32_t queue, platform::GrantRef list, std::uint32_t count,
                    std::uint32_t& removed);
  // Copies `count` entries out of the frontend's list page; false when the
  // size or the page is bad.
  bool read_list(platform::GrantRef list, std::uint32_t count,
                 std::span<protocol::StaticGrant> entries);
  void publish(QueueMappings& queue);
  void unmap(QueueMappings& queue, void* base, std::uint32_t pages) noexcept;
  std::uint32_t refuse(GrefRefusal refusal) noexcept;

  platform::GrantTable& copier_;
  platform::DomId frontend_;
  std::vector<QueueMappings> queues_;
  std::array<std::uint64_t, kGrefRefusalCount> refused_{};
};

}  // namespace vifd::backend
