// The hypervisor's side of one grant entry, shared by map, copy and the
// granter's end of access. Lock-free across processes:
//
//  * A pin (map or in-flight copy) first increments the ref's active word,
//    THEN reads the guest's entry. The granter ending access first clears the
//    entry's flags, THEN reads the active word. Both pairs are seq_cst, so at
//    least one side sees the other: either the pin sees the cleared flags and
//    backs out, or the granter sees the pin and defers the free.
//  * A deferred free sets kActiveEndRequested, which also refuses new pins;
//    the unpin that brings the pin count to zero under that bit frees the
//    page and the ref. Exactly one unpin can do so.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/platform/sim/shm_layout.h"
#include "common/platform/types.h"

namespace vifd::sim::detail {

struct PinResult {
  platform::GrantStatus status;
  std::uint32_t frame;  // page index in the granter's memory when status is okay
};

// Checks (granter's ref) for access by `grantee` exactly as Xen's
// map_grant_ref / acquire_grant_for_copy do and pins it. The caller has
// already resolved the granter domain (GNTST_bad_domain is theirs).
//   ref out of range                        -> GNTST_bad_gntref
//   not GTF_permit_access, or other grantee -> GNTST_general_error
//   write access to a GTF_readonly grant    -> GNTST_general_error
//   frame outside the granter's memory      -> GNTST_bad_page
// (Xen's _set_status_v1 answers GNTST_general_error for the two
// permission cases, not GNTST_permission_denied.)
PinResult pin_grant(DomainShared& granter, platform::GrantRef ref, platform::DomId grantee,
                    bool write) noexcept;

// Releases a pin; frees the page if the granter ended access meanwhile.
void unpin_grant(DomainShared& granter, platform::GrantRef ref) noexcept;

// The granter ends access to `ref` (whose page is `frame`). Returns true if
// the page and ref were freed now, false if a pin defers the free.
bool end_foreign_access(DomainShared& granter, platform::GrantRef ref,
                        std::uint32_t frame) noexcept;

// Cross-process bitmap allocator (CAS per word, no lock). Takes `count`
// clear bits at index >= first into `out`; on shortage releases what it took
// and returns false.
bool allocate_bits(std::uint64_t* bitmap, std::uint32_t nbits, std::uint32_t first,
                   std::size_t count, std::vector<std::uint32_t>& out);
void free_bit(std::uint64_t* bitmap, std::uint32_t index) noexcept;

}  // namespace vifd::sim::detail
