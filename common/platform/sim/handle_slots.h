// Handle slots (event channels, grant maps, grant shares) and the death of
// the process that owns one.
//
// On Xen, the kernel releases what a device file holds when its last
// reference goes, however the process ended: Linux evtchn_release() closes
// every bound port (EVTCHNOP_close), so an interdomain peer's port goes back
// to unbound and a new process may bind it again; gntdev unmaps every page
// still mapped; gntalloc ends every grant still shared. The simulator
// models that with a lock the kernel also drops on death: the owner of slot
// <index> holds an flock on DIR/ev/<index>.lock (DIR/gnt/<index>.lock for a
// grant handle) for the handle's whole life; the lock goes with the
// process's files at exit, before it is even a zombie. A slot still marked
// in use whose lock can be taken belongs to a dead process; whoever notices
// first (a new handle claiming the slot, a bind that finds the remote port
// still bound, vif-sim's periodic sweep) releases what the dead handle held
// while holding the lock, so two reapers never race.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/platform/sim/domain_cache.h"
#include "common/platform/types.h"

namespace vifd::sim::detail {

struct ClaimedHandle {
  std::uint32_t index = 0;
  std::uint32_t token = 0;  // (incarnation << kHandleIndexBits) | index
  int lock_fd = -1;
};

// Claims a free slot (or one a dead process left, closing its ports first)
// for a handle of domain `self`. Throws PlatformError when every slot is in
// use by a live process.
ClaimedHandle claim_handle(const Host& host, DomainCache& domains, platform::DomId self);

// Gives the slot up once the handle closed its ports itself.
void release_handle(const Host& host, const ClaimedHandle& handle) noexcept;

// Closes the ports of the handle in slot `index` if its process is dead and
// frees the slot; true if it did.
bool reap_handle_if_dead(const Host& host, DomainCache& domains, std::uint32_t index) noexcept;

// The same for grant handles (DIR/gnt/<index>.lock): a dead map handle's
// pins are dropped (gntdev's release unmaps every page), a dead share
// handle's grants are ended (gntalloc's release). A pin or grant taken in
// the few instructions between the operation and its record, or an
// in-flight grant copy's pin, is not covered.
ClaimedHandle claim_grant_handle(const Host& host, DomainCache& domains, platform::DomId self,
                                 GrantHandleKind kind);
void release_grant_handle(const Host& host, const ClaimedHandle& handle) noexcept;
bool reap_grant_handle_if_dead(const Host& host, DomainCache& domains,
                               std::uint32_t index) noexcept;

// reap_handle_if_dead() and reap_grant_handle_if_dead() on every slot in
// use whose pid no longer runs; returns how many were reaped.
std::size_t reap_dead_handles(const Host& host, DomainCache& domains) noexcept;

}  // namespace vifd::sim::detail
