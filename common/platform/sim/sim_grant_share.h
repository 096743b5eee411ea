// Frontend-side grant sharing of the simulator (the model of libxengntshr /
// Linux gntalloc): grant pages of this domain's memory to another domain.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "common/platform/grant_share.h"
#include "common/platform/sim/domain_cache.h"
#include "common/platform/sim/handle_slots.h"

namespace vifd::sim::detail {

class SimGrantShare final : public platform::GrantShare {
 public:
  SimGrantShare(std::shared_ptr<const Host> host, platform::DomId self);
  // Like closing a gntalloc handle: every grant still shared is ended.
  ~SimGrantShare() override;

  void* share(platform::DomId domid, std::span<platform::GrantRef> refs_out,
              bool writable) override;
  void unshare(void* addr, std::size_t count) override;

 private:
  struct SharedPage {
    platform::GrantRef ref;
    std::uint32_t frame;
  };

  void end_access(const std::vector<SharedPage>& pages) noexcept;

  std::shared_ptr<const Host> host_;
  platform::DomId self_;
  DomainCache domains_;
  ClaimedHandle handle_;
  std::mutex shares_mutex_;
  std::map<std::uintptr_t, std::vector<SharedPage>> shares_;
};

}  // namespace vifd::sim::detail
