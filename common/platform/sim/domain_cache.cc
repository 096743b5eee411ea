#include "common/platform/sim/domain_cache.h"

#include <sys/mman.h>

namespace vifd::sim::detail {

using platform::DomId;

DomainCache::DomainCache(std::shared_ptr<const Host> host)
    : host_(std::move(host)), slots_(std::make_unique<Slot[]>(kMaxDomid + 1)) {}

DomainCache::~DomainCache() {
  for (std::uint32_t domid = 0; domid <= kMaxDomid; ++domid) {
    const Slot& slot = slots_[domid];
    if (slot.meta != nullptr) ::munmap(slot.meta, sizeof(DomainShared));
    if (slot.memory != nullptr) ::munmap(slot.memory, kDomainMemoryBytes);
  }
}

std::optional<DomainView> DomainCache::find(DomId domid) noexcept {
  if (domid > kMaxDomid) return std::nullopt;
  const std::uint64_t word = host_->domain_word(domid);
  if (domain_state(word) != DomainState::kAlive) return std::nullopt;
  Slot& slot = slots_[domid];
  // Acquire pairs with the release below: a matching word means meta and
  // memory were published for exactly this incarnation.
  if (shared(slot.word).load(std::memory_order_acquire) == word) {
    return DomainView{slot.meta, slot.memory, word};
  }

  std::lock_guard lock(remap_mutex_);
  if (shared(slot.word).load(std::memory_order_relaxed) == word) {
    return DomainView{slot.meta, slot.memory, word};
  }
  void* meta = map_shm(host_->domain_object_name(domid, DomainObject::kMeta), sizeof(DomainShared),
                       slot.meta);
  if (meta == nullptr) return std::nullopt;
  slot.meta = static_cast<DomainShared*>(meta);
  void* memory = map_shm(host_->domain_object_name(domid, DomainObject::kMemory),
                         kDomainMemoryBytes, slot.memory);
  if (memory == nullptr) return std::nullopt;
  slot.memory = static_cast<std::byte*>(memory);
  // The objects we opened may belong to a later incarnation than `word`
  // (destroyed and recreated meanwhile): trust them only when their stamp
  // says they are the one the host table named.
  if (shared(slot.meta->magic).load(std::memory_order_acquire) != kDomainMagic ||
      slot.meta->generation != static_cast<std::uint32_t>(domain_generation(word))) {
    return std::nullopt;
  }
  shared(slot.word).store(word, std::memory_order_release);
  return DomainView{slot.meta, slot.memory, word};
}

}  // namespace vifd::sim::detail
