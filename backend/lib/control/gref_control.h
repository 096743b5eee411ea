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

  // Pages mapped now (all queues), waiting to be unmapped, and refusals.
  std::size_t mapped() const noexcept;
  std::size_t retiring() const noexcept;
  std::uint64_t refused(GrefRefusal refusal) const noexcept {
    return refused_[static_cast<std::size_t>(refusal)];
  }
  std::uint64_t refused_total() const noexcept;

 private:
  struct Mapping {
    bool writable = false;
    void* page = nullptr;
  };
  struct Retired {
    std::uint64_t generation = 0;  // the first table without it
    void* page = nullptr;
  };
  struct QueueMappings {
    std::shared_ptr<GrefHandoff> handoff;
    std::unique_ptr<platform::GrantTable> grants;
    std::unordered_map<platform::GrantRef, Mapping> live;
    std::vector<Retired> retired;
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
  void unmap(QueueMappings& queue, void* page) noexcept;
  std::uint32_t refuse(GrefRefusal refusal) noexcept;

  platform::GrantTable& copier_;
  platform::DomId frontend_;
  std::vector<QueueMappings> queues_;
  std::array<std::uint64_t, kGrefRefusalCount> refused_{};
};

}  // namespace vifd::backend
