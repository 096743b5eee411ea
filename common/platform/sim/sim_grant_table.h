// Backend-side grant tables of the simulator (the model of libxengnttab):
// map/unmap pages of other domains and batched grant copy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "common/platform/grant_table.h"
#include "common/platform/sim/domain_cache.h"
#include "common/platform/sim/handle_slots.h"

namespace vifd::sim::detail {

class SimGrantTable final : public platform::GrantTable {
 public:
  SimGrantTable(std::shared_ptr<const Host> host, platform::DomId self);
  // Like closing a gntdev handle: whatever is still mapped is unmapped.
  ~SimGrantTable() override;

  void* map(std::span<const platform::DomId> domids, std::span<const platform::GrantRef> refs,
            bool writable) override;
  void unmap(void* addr, std::size_t count) override;
  int copy(std::span<platform::GrantCopySegment> segments) noexcept override;

 private:
  struct MappedPage {
    platform::DomId domid;
    platform::GrantRef ref;
    std::uint64_t word;    // the granter incarnation the pin was taken on
    std::uint32_t record;  // its MapRecord in our grant handle slot
  };
  struct Side {
    std::byte* address = nullptr;
    DomainShared* pinned = nullptr;  // granter whose ref we pinned, if foreign
    platform::GrantRef ref = 0;
  };

  platform::GrantStatus resolve(const platform::GrantCopyPtr& ptr, bool foreign, bool write,
                                Side& side) noexcept;
  std::int16_t copy_one(const platform::GrantCopySegment& segment) noexcept;
  void release_pages(const std::vector<MappedPage>& pages) noexcept;
  // `count` free MapRecords of our slot, or throws (gntdev's limit).
  std::vector<std::uint32_t> take_records(std::size_t count);
  void give_back_records(std::span<const std::uint32_t> records) noexcept;

  std::shared_ptr<const Host> host_;
  platform::DomId self_;
  DomainCache domains_;
  ClaimedHandle handle_;
  GrantHandleSlot* slot_;
  DomainShared* self_meta_;  // where our hypercalls are counted
  std::mutex mappings_mutex_;
  std::map<std::uintptr_t, std::vector<MappedPage>> mappings_;
  std::vector<std::uint32_t> free_records_;  // under mappings_mutex_
};

}  // namespace vifd::sim::detail
