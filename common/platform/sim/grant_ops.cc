#include "common/platform/sim/grant_ops.h"

#include <bit>

namespace vifd::sim::detail {

using platform::GrantStatus;

namespace {

void free_granted_page(DomainShared& granter, platform::GrantRef ref,
                       std::uint32_t frame) noexcept {
  if (frame < kPagesPerDomain) free_bit(granter.page_bitmap, frame);
  free_bit(granter.ref_bitmap, ref);
}

}  // namespace

PinResult pin_grant(DomainShared& granter, platform::GrantRef ref, platform::DomId grantee,
                    bool write) noexcept {
  if (ref >= kGrantEntries) return {platform::kGntstBadGntref, 0};
  auto active = shared(granter.active[ref]);
  std::uint32_t current = active.load(std::memory_order_relaxed);
  do {
    // An entry whose granter already ended access takes no new pins (its
    // flags are clear anyway); a full pin count is refused as Xen refuses
    // to overflow act->pin.
    if ((current & kActiveEndRequested) != 0 || (current & kActivePinMask) == kActivePinMask) {
      return {platform::kGntstGeneralError, 0};
    }
  } while (!active.compare_exchange_weak(current, current + 1, std::memory_order_seq_cst,
                                         std::memory_order_relaxed));

  grant_entry_v1_t& entry = granter.grant_entries[ref];
  // seq_cst: ordered after our pin (see the header). It also acquires the
  // guest's frame and domid, which a guest writes before the flags.
  const std::uint16_t flags = shared(entry.flags).load(std::memory_order_seq_cst);
  const std::uint16_t domid = shared(entry.domid).load(std::memory_order_relaxed);
  const std::uint32_t frame = shared(entry.frame).load(std::memory_order_relaxed);
  GrantStatus status = platform::kGntstOkay;
  if ((flags & GTF_type_mask) != GTF_permit_access || domid != grantee) {
    status = platform::kGntstGeneralError;
  } else if (write && (flags & GTF_readonly) != 0) {
    status = platform::kGntstGeneralError;
  } else if (frame >= kPagesPerDomain) {
    status = platform::kGntstBadPage;
  }
  if (status != platform::kGntstOkay) {
    unpin_grant(granter, ref);
    return {status, 0};
  }
  return {platform::kGntstOkay, frame};
}

void unpin_grant(DomainShared& granter, platform::GrantRef ref) noexcept {
  auto active = shared(granter.active[ref]);
  // acq_rel: the acquire half makes the granter's deferred_frame (written
  // before its release CAS that set kActiveEndRequested) visible to us.
  const std::uint32_t before = active.fetch_sub(1, std::memory_order_acq_rel);
  if (before == (kActiveEndRequested | 1U)) {
    const std::uint32_t frame = shared(granter.deferred_frame[ref]).load(std::memory_order_relaxed);
    // No pin can be taken while kActiveEndRequested is set, so nobody races
    // this reset; release publishes it before the ref is reusable.
    active.store(0, std::memory_order_release);
    free_granted_page(granter, ref, frame);
  }
}

bool end_foreign_access(DomainShared& granter, platform::GrantRef ref,
                        std::uint32_t frame) noexcept {
  // seq_cst store then seq_cst load: see the header.
  shared(granter.grant_entries[ref].flags).store(0, std::memory_order_seq_cst);
  auto active = shared(granter.active[ref]);
  std::uint32_t current = active.load(std::memory_order_seq_cst);
  for (;;) {
    if ((current & kActivePinMask) == 0) {
      // Unpinned: a pin racing us will see the cleared flags and back out
      // without touching anything but its own increment.
      free_granted_page(granter, ref, frame);
      return true;
    }
    shared(granter.deferred_frame[ref]).store(frame, std::memory_order_relaxed);
    if (active.compare_exchange_weak(current, current | kActiveEndRequested,
                                     std::memory_order_seq_cst, std::memory_order_seq_cst)) {
      return false;
    }
  }
}

bool allocate_bits(std::uint64_t* bitmap, std::uint32_t nbits, std::uint32_t first,
                   std::size_t count, std::vector<std::uint32_t>& out) {
  const std::size_t start = out.size();
  for (std::uint32_t word_index = first / 64; word_index < nbits / 64 && out.size() - start < count;
       ++word_index) {
    auto word = shared(bitmap[word_index]);
    // Bits below `first` in its word count as taken.
    const std::uint64_t reserved =
        word_index == first / 64 && first % 64 != 0 ? (~0ULL >> (64 - first % 64)) : 0;
    std::uint64_t current = word.load(std::memory_order_relaxed);
    while (out.size() - start < count && ((current | reserved) != ~0ULL)) {
      const int bit = std::countr_one(current | reserved);
      const std::uint64_t mask = 1ULL << bit;
      // acquire: pairs with free_bit's release, so whatever the previous
      // owner did to the page/ref happened before we reuse it.
      if (word.compare_exchange_weak(current, current | mask, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
        out.push_back(word_index * 64 + static_cast<std::uint32_t>(bit));
        current |= mask;
      }
    }
  }
  if (out.size() - start == count) return true;
  for (std::size_t i = start; i < out.size(); ++i) free_bit(bitmap, out[i]);
  out.resize(start);
  return false;
}

void free_bit(std::uint64_t* bitmap, std::uint32_t index) noexcept {
  shared(bitmap[index / 64]).fetch_and(~(1ULL << (index % 64)), std::memory_order_release);
}

}  // namespace vifd::sim::detail
