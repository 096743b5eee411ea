// Layout of the simulated hypervisor's shared memory. Every process of a sim
// host maps these objects; they hold no pointers, only indices, so each
// process may map them at any address.
//
// Shared words are plain integers accessed through std::atomic_ref (see
// shared()), never through ordinary loads and stores: a peer process may
// change any of them at any time, exactly as a guest may change its grant
// table under Xen's feet.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "common/platform/types.h"
#include "common/protocol/xen_abi.h"

namespace vifd::sim::detail {

// Highest domid a guest may have: DOMID_FIRST_RESERVED - 1 (xen/xen.h).
inline constexpr std::uint32_t kMaxDomid = protocol::kDomidFirstReserved - 1;
// 32768 pages = 128 MiB of guest memory per domain (a sparse shm file).
inline constexpr std::uint32_t kPagesPerDomain = 32768;
// Xen's default gnttab_max_frames (64) x 512 v1 entries per 4 KiB frame.
inline constexpr std::uint32_t kGrantEntries = 32768;
// Refs 0..7 belong to the toolstack (xenstore, console), so a guest never
// allocates them.
inline constexpr std::uint32_t kReservedGrantRefs = protocol::kGrantNrReservedEntries;
inline constexpr std::uint32_t kPortsPerDomain = 4096;
// Event-channel handles of the whole host (one per open EventChannels).
inline constexpr std::uint32_t kMaxHandles = 1024;

inline constexpr std::uint64_t kHostMagic = 0x76696664'686f7374ULL;    // "vifdhost"
inline constexpr std::uint64_t kDomainMagic = 0x76696664'646f6d6eULL;  // "vifddomn"

template <typename T>
std::atomic_ref<T> shared(T& word) noexcept {
  static_assert(std::atomic_ref<T>::is_always_lock_free,
                "a word shared between processes must be lock-free");
  return std::atomic_ref<T>(word);
}

// A host-table entry packs (generation << 8 | state) into one word so that a
// reader sees the state and the incarnation it belongs to atomically. The
// generation grows on every create_domain: a process that cached a mapping
// of a domain compares whole words to notice a destroy-and-recreate.
enum class DomainState : std::uint8_t { kAbsent = 0, kCreating = 1, kAlive = 2, kDying = 3 };

constexpr std::uint64_t make_domain_word(std::uint64_t generation, DomainState state) noexcept {
  return (generation << 8) | static_cast<std::uint64_t>(state);
}
constexpr std::uint64_t domain_generation(std::uint64_t word) noexcept {
  return word >> 8;
}
constexpr DomainState domain_state(std::uint64_t word) noexcept {
  return static_cast<DomainState>(word & 0xFF);
}

// An event-channel handle of some process: the datagram socket DIR/ev/<index>
// and its doorbell (see sim_event_channels.h for the protocol). Its owner
// holds DIR/ev/<index>.lock for the handle's life (handle_slots.h): a slot
// in use whose lock is free belongs to a dead process.
struct HandleSlot {
  std::int32_t owner_pid;        // 0 = free; otherwise in use (informational pid)
  std::uint32_t incarnation;     // grows on each claim, so a stale token never matches
  std::uint32_t doorbell_armed;  // 1 = the owner waits for a datagram
  std::uint32_t domid;           // the domain whose port table the handle's ports are in
};

// A handle token, (incarnation << kHandleIndexBits) | index, names one
// incarnation of a handle slot in port tables.
inline constexpr std::uint32_t kHandleIndexBits = 10;
static_assert((1U << kHandleIndexBits) == kMaxHandles);

struct HostTable {
  std::uint64_t magic;
  std::uint64_t domains[kMaxDomid + 1];
  HandleSlot handles[kMaxHandles];
};

// Port states, as Xen's ECS_FREE / ECS_UNBOUND / ECS_INTERDOMAIN. kBusy marks
// a port claimed by a control-plane operation in progress, so that two
// processes never change one port at once without a shared mutex.
enum class PortState : std::uint32_t { kFree = 0, kBusy = 1, kUnbound = 2, kInterdomain = 3 };

// Delivery bits of a port (the receiver side), Linux /dev/xen/evtchn style.
inline constexpr std::uint32_t kPortMasked = 1U << 0;   // delivered, not yet unmasked
inline constexpr std::uint32_t kPortPending = 1U << 1;  // notified while masked
inline constexpr std::uint32_t kPortFired = 1U << 2;    // waiting for pending() to return it

struct PortSlot {
  std::uint32_t state;         // PortState
  std::uint32_t remote_domid;  // unbound: the domain allowed to bind; interdomain: the peer
  std::uint32_t remote_port;   // interdomain only
  std::uint32_t owner_handle;  // HandleSlot index of the handle that bound it
  std::uint32_t delivery;      // kPort* bits
};

// Grant handles of the host (one per open SimGrantTable or SimGrantShare,
// as a gntdev or gntalloc file): what each holds is kept here, not only in
// its process, so that when the process dies the kernel's part (gntdev
// unmaps every page still mapped, gntalloc ends every grant still shared)
// can be done for it (handle_slots.h). Its owner holds DIR/gnt/<index>.lock.
inline constexpr std::uint32_t kMaxGrantHandles = 1024;
static_assert((1U << kHandleIndexBits) == kMaxGrantHandles);
// Pages one map handle may hold mapped at once (a vif maps 2 per queue).
inline constexpr std::uint32_t kMapRecordsPerHandle = 4096;

enum class GrantHandleKind : std::uint32_t { kMap = 1, kShare = 2 };

// One page a map handle holds: a pin on (granter, ref) of the granter's
// incarnation `generation`.
struct MapRecord {
  std::uint32_t granter;  // domid + 1; 0 = a free record
  std::uint32_t generation;
  std::uint32_t ref;
  std::uint32_t reserved;
};

struct GrantHandleSlot {
  std::int32_t owner_pid;                // 0 = free; otherwise in use (informational pid)
  std::uint32_t incarnation;             // grows on each claim; names the holder in share_owner
  std::uint32_t domid;                   // the handle's own domain
  std::uint32_t kind;                    // GrantHandleKind
  MapRecord maps[kMapRecordsPerHandle];  // kMap only
};

struct GrantHandleTable {
  GrantHandleSlot slots[kMaxGrantHandles];
};

// Hypercall-equivalents counted against the calling domain.
struct alignas(64) SharedCounters {
  std::uint64_t grant_copy_calls;
  std::uint64_t grant_copy_segments;
  std::uint64_t grant_copy_bytes;
  std::uint64_t grant_map_calls;
  std::uint64_t grant_map_pages;
  std::uint64_t grant_unmap_calls;
  std::uint64_t grant_unmap_pages;
  std::uint64_t evtchn_notify_calls;
  std::uint64_t evtchn_events_delivered;
};

// Active grant entry word (Xen's struct active_grant_entry, reduced): pins
// taken by maps and in-flight copies of other domains, plus the bit that
// says the granter ended access while pinned, so the last unpin frees the
// page (Linux gntalloc's deferred free).
inline constexpr std::uint32_t kActivePinMask = 0x3FFFFFFF;
inline constexpr std::uint32_t kActiveEndRequested = 1U << 30;

struct DomainShared {
  std::uint64_t magic;
  std::uint32_t domid;
  std::uint32_t generation;  // equals domain_generation() of the host word that created it
  SharedCounters counters;
  std::uint64_t page_bitmap[kPagesPerDomain / 64];  // 1 = page in use
  std::uint64_t ref_bitmap[kGrantEntries / 64];     // 1 = grant ref allocated
  std::uint32_t active[kGrantEntries];
  std::uint32_t deferred_frame[kGrantEntries];  // page freed by the last unpin
  PortSlot ports[kPortsPerDomain];
  // The share handle token ((incarnation << kHandleIndexBits) | slot) that
  // granted each ref, 0 when none: what a dead process's gntalloc release
  // ends.
  std::uint32_t share_owner[kGrantEntries];
  // The guest-visible v1 grant table. The guest writes it; the hypervisor
  // side only reads it, through atomic_ref.
  grant_entry_v1_t grant_entries[kGrantEntries];
};

inline constexpr std::size_t kDomainMemoryBytes =
    static_cast<std::size_t>(kPagesPerDomain) * platform::kPageSize;

}  // namespace vifd::sim::detail
