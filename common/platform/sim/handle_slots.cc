#include "common/platform/sim/handle_slots.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <limits.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "common/platform/error.h"
#include "common/platform/sim/grant_ops.h"
#include "common/platform/sim/port_ops.h"

namespace vifd::sim::detail {

using platform::DomId;
using platform::PlatformError;

namespace {

// Takes the lock of slot `index` without waiting: the fd that holds it, or
// -1 when a live process holds it (or the file cannot be opened, which
// proves nothing and so counts as alive).
int try_lock_slot(const Host& host, const char* folder, std::uint32_t index) noexcept {
  char path[PATH_MAX];
  const int length =
      std::snprintf(path, sizeof(path), "%s/%s/%u.lock", host.paths().dir.c_str(), folder, index);
  if (length < 0 || static_cast<std::size_t>(length) >= sizeof(path)) {
    return -1;
  }
  const int fd = ::open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Closes every port the handle in `index` still has bound, as the kernel
// does when a /dev/xen/evtchn file is released. The caller holds the lock.
void close_ports_of(const Host& host, DomainCache& domains, std::uint32_t index) noexcept {
  HandleSlot& slot = host.table().handles[index];
  const std::uint32_t token =
      (shared(slot.incarnation).load(std::memory_order_relaxed) << kHandleIndexBits) | index;
  const auto domid = static_cast<DomId>(shared(slot.domid).load(std::memory_order_relaxed));
  const auto view = domains.find(domid);
  if (!view) {  // its domain is gone, and its ports with it
    return;
  }
  for (std::uint32_t port = 1; port < kPortsPerDomain; ++port) {
    PortSlot& candidate = view->meta->ports[port];
    const auto state =
        static_cast<PortState>(shared(candidate.state).load(std::memory_order_acquire));
    if (state != PortState::kUnbound && state != PortState::kInterdomain) {
      continue;
    }
    if (shared(candidate.owner_handle).load(std::memory_order_relaxed) != token) {
      continue;
    }
    close_port(domains, *view->meta, domid, port);
  }
}

bool pid_is_alive(std::int32_t pid) noexcept {
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

// gntdev's release: every page the dead handle still had mapped is
// unmapped, dropping its pin (a granter destroyed since holds no pin of ours).
void unpin_maps_of(DomainCache& domains, GrantHandleSlot& slot) noexcept {
  for (MapRecord& record : slot.maps) {
    const std::uint32_t granter = shared(record.granter).load(std::memory_order_relaxed);
    if (granter == 0) {
      continue;
    }
    const auto view = domains.find(static_cast<DomId>(granter - 1));
    if (view &&
        view->meta->generation == shared(record.generation).load(std::memory_order_relaxed)) {
      unpin_grant(*view->meta, shared(record.ref).load(std::memory_order_relaxed));
    }
    shared(record.granter).store(0, std::memory_order_relaxed);
  }
}

// gntalloc's release: every grant the dead handle still shared is ended
// (freed at once, or when the last mapper unmaps).
void end_shares_of(DomainCache& domains, const GrantHandleSlot& slot,
                   std::uint32_t token) noexcept {
  const auto view = domains.find(static_cast<DomId>(
      shared(const_cast<std::uint32_t&>(slot.domid)).load(std::memory_order_relaxed)));
  if (!view) {  // the domain is gone, and its grants with it
    return;
  }
  DomainShared& meta = *view->meta;
  for (std::uint32_t ref = 0; ref < kGrantEntries; ++ref) {
    if (shared(meta.share_owner[ref]).load(std::memory_order_relaxed) != token) {
      continue;
    }
    shared(meta.share_owner[ref]).store(0, std::memory_order_relaxed);
    end_foreign_access(meta, ref,
                       shared(meta.grant_entries[ref].frame).load(std::memory_order_relaxed));
  }
}

void release_grant_slot_contents(DomainCache& domains, GrantHandleSlot& slot,
                                 std::uint32_t index) noexcept {
  const std::uint32_t token =
      (shared(slot.incarnation).load(std::memory_order_relaxed) << kHandleIndexBits) | index;
  if (shared(slot.kind).load(std::memory_order_relaxed) ==
      static_cast<std::uint32_t>(GrantHandleKind::kMap)) {
    unpin_maps_of(domains, slot);
  } else {
    end_shares_of(domains, slot, token);
  }
}

}  // namespace

ClaimedHandle claim_grant_handle(const Host& host, DomainCache& domains, DomId self,
                                 GrantHandleKind kind) {
  GrantHandleTable& table = host.grant_handles();
  for (std::uint32_t index = 0; index < kMaxGrantHandles; ++index) {
    GrantHandleSlot& slot = table.slots[index];
    if (pid_is_alive(shared(slot.owner_pid).load(std::memory_order_acquire))) {
      continue;
    }
    const int lock_fd = try_lock_slot(host, "gnt", index);
    if (lock_fd < 0) {
      continue;
    }
    if (shared(slot.owner_pid).load(std::memory_order_acquire) != 0) {
      release_grant_slot_contents(domains, slot, index);  // left by a process that died
    }
    const std::uint32_t incarnation =
        shared(slot.incarnation).fetch_add(1, std::memory_order_relaxed) + 1;
    shared(slot.domid).store(self, std::memory_order_relaxed);
    shared(slot.kind).store(static_cast<std::uint32_t>(kind), std::memory_order_relaxed);
    shared(slot.owner_pid).store(::getpid(), std::memory_order_release);
    return {index, (incarnation << kHandleIndexBits) | index, lock_fd};
  }
  throw PlatformError(
      fmt::format("sim grants: all {} grant handles of the host are open", kMaxGrantHandles),
      EMFILE);
}

void release_grant_handle(const Host& host, const ClaimedHandle& handle) noexcept {
  shared(host.grant_handles().slots[handle.index].owner_pid).store(0, std::memory_order_release);
  ::close(handle.lock_fd);
}

bool reap_grant_handle_if_dead(const Host& host, DomainCache& domains,
                               std::uint32_t index) noexcept {
  if (index >= kMaxGrantHandles) {
    return false;
  }
  GrantHandleSlot& slot = host.grant_handles().slots[index];
  if (shared(slot.owner_pid).load(std::memory_order_acquire) == 0) {
    return false;
  }
  const int lock_fd = try_lock_slot(host, "gnt", index);
  if (lock_fd < 0) {
    return false;
  }
  const bool dead = shared(slot.owner_pid).load(std::memory_order_acquire) != 0;
  if (dead) {
    release_grant_slot_contents(domains, slot, index);
    shared(slot.owner_pid).store(0, std::memory_order_release);
  }
  ::close(lock_fd);
  return dead;
}

ClaimedHandle claim_handle(const Host& host, DomainCache& domains, DomId self) {
  HostTable& table = host.table();
  for (std::uint32_t index = 0; index < kMaxHandles; ++index) {
    HandleSlot& slot = table.handles[index];
    // A cheap first look: a slot whose pid runs is taken (at worst, a reused
    // pid hides a dead handle until a sweep finds its lock free).
    if (pid_is_alive(shared(slot.owner_pid).load(std::memory_order_acquire))) {
      continue;
    }
    const int lock_fd = try_lock_slot(host, "ev", index);
    if (lock_fd < 0) {
      continue;
    }
    if (shared(slot.owner_pid).load(std::memory_order_acquire) != 0) {
      close_ports_of(host, domains, index);  // left by a process that died
    }
    const std::uint32_t incarnation =
        shared(slot.incarnation).fetch_add(1, std::memory_order_relaxed) + 1;
    shared(slot.domid).store(self, std::memory_order_relaxed);
    // Armed: nothing is queued and the owner waits for the first doorbell.
    shared(slot.doorbell_armed).store(1, std::memory_order_seq_cst);
    shared(slot.owner_pid).store(::getpid(), std::memory_order_release);
    return {index, (incarnation << kHandleIndexBits) | index, lock_fd};
  }
  throw PlatformError(
      fmt::format("sim event channels: all {} handles of the host are open", kMaxHandles), EMFILE);
}

void release_handle(const Host& host, const ClaimedHandle& handle) noexcept {
  shared(host.table().handles[handle.index].owner_pid).store(0, std::memory_order_release);
  ::close(handle.lock_fd);
}

bool reap_handle_if_dead(const Host& host, DomainCache& domains, std::uint32_t index) noexcept {
  if (index >= kMaxHandles) {
    return false;
  }
  HandleSlot& slot = host.table().handles[index];
  if (shared(slot.owner_pid).load(std::memory_order_acquire) == 0) {
    return false;
  }
  const int lock_fd = try_lock_slot(host, "ev", index);
  if (lock_fd < 0) {
    return false;
  }
  // Re-checked under the lock: the owner may have closed it meanwhile.
  const bool dead = shared(slot.owner_pid).load(std::memory_order_acquire) != 0;
  if (dead) {
    close_ports_of(host, domains, index);
    shared(slot.owner_pid).store(0, std::memory_order_release);
  }
  ::close(lock_fd);
  return dead;
}

std::size_t reap_dead_handles(const Host& host, DomainCache& domains) noexcept {
  std::size_t reaped = 0;
  HostTable& table = host.table();
  for (std::uint32_t index = 0; index < kMaxHandles; ++index) {
    // The periodic sweep trusts a running pid (one kill(), no file opened);
    // a reused pid only delays the reaping to the next claim or bind.
    if (pid_is_alive(shared(table.handles[index].owner_pid).load(std::memory_order_acquire))) {
      continue;
    }
    if (reap_handle_if_dead(host, domains, index)) {
      ++reaped;
    }
  }
  GrantHandleTable& grants = host.grant_handles();
  for (std::uint32_t index = 0; index < kMaxGrantHandles; ++index) {
    if (pid_is_alive(shared(grants.slots[index].owner_pid).load(std::memory_order_acquire))) {
      continue;
    }
    if (reap_grant_handle_if_dead(host, domains, index)) {
      ++reaped;
    }
  }
  return reaped;
}

}  // namespace vifd::sim::detail
