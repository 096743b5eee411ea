// The Xen ABI vifd speaks: the one place that includes Xen's public headers
// (netif rings, grant tables, event channels, xenbus states, the xenstore
// wire protocol).
//
// Every wire layout comes from Xen's own headers (Debian's libxen-dev), never
// from a copy, and the static_asserts below pin the sizes a peer written in C
// relies on. The rest of vifd uses the typed names and constants defined here.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>

// ring.h and netif.h are C headers that expect <stdint.h>, size_t and memcpy
// to be declared before they are included (see the top of xen/io/ring.h);
// xs_wire.h only defines its xsd_errors table when EINVAL is defined.
extern "C" {
#include <xen/event_channel.h>
#include <xen/grant_table.h>
#include <xen/io/netif.h>
#include <xen/io/ring.h>
#include <xen/io/xenbus.h>
#include <xen/io/xs_wire.h>
}

#include "common/protocol/grant_status.h"
#include "common/protocol/ids.h"
#include "common/protocol/sizes.h"

// ring.h leaves the barriers to the includer: for the legacy interface
// version (the default for code outside Xen) it defines xen_mb() as mb(),
// xen_rmb() as rmb() and xen_wmb() as wmb(), and those are never defined for
// userspace. vifd's ring views (common/protocol/ring.h) do not use the C
// macros, but we redefine the three names so that any use of ring.h's own
// RING_* macros gets correct C++ barriers instead of a compile error or, worse,
// a definition picked up from some other header:
//   xen_mb  -> seq_cst fence: a full barrier. Needed where a store must be
//              visible before a later load (publish a producer index, then
//              read the peer's event index); only a seq_cst fence orders
//              store->load (mfence on x86, dmb ish on Arm).
//   xen_rmb -> acquire fence: orders the load of a producer index before the
//              loads of the ring entries it covers (a superset of rmb's
//              load->load ordering).
//   xen_wmb -> release fence: orders the stores of ring entries before the
//              store of the producer index that publishes them (a superset
//              of wmb's store->store ordering).
// The fences only give C++ guarantees when the index itself is accessed
// atomically, which is why ring.h's views use std::atomic_ref for indices.
#undef xen_mb
#undef xen_rmb
#undef xen_wmb
#define xen_mb() ::vifd::protocol::full_barrier()
#define xen_rmb() ::vifd::protocol::read_barrier()
#define xen_wmb() ::vifd::protocol::write_barrier()

namespace vifd::protocol {

inline void full_barrier() noexcept {
  std::atomic_thread_fence(std::memory_order_seq_cst);
}
inline void read_barrier() noexcept {
  std::atomic_thread_fence(std::memory_order_acquire);
}
inline void write_barrier() noexcept {
  std::atomic_thread_fence(std::memory_order_release);
}

// ThreadSanitizer does not model fences (GCC says so with -Wtsan), so under
// it a relaxed index access plus a fence is no happens-before edge and every
// page a peer fills before publishing its index would be reported as raced.
// Under TSan the ring views therefore load indices and slots with acquire
// and store them with release, which is at least as strong as relaxed plus
// the fences they keep: the same ordering, made visible to the tool.
#if defined(__SANITIZE_THREAD__)
inline constexpr bool kThreadSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif
#else
inline constexpr bool kThreadSanitizer = false;
#endif
inline constexpr std::memory_order kRingLoadOrder =
    kThreadSanitizer ? std::memory_order_acquire : std::memory_order_relaxed;
inline constexpr std::memory_order kRingStoreOrder =
    kThreadSanitizer ? std::memory_order_release : std::memory_order_relaxed;

// ---- Wire types ---------------------------------------------------------

using TxRequest = netif_tx_request;
using TxResponse = netif_tx_response;
using RxRequest = netif_rx_request;
using RxResponse = netif_rx_response;
using ExtraInfo = netif_extra_info;
using CtrlRequest = xen_netif_ctrl_request;
using CtrlResponse = xen_netif_ctrl_response;
// An entry of an ADD/DEL_GREF_MAPPING list (netif.h, "Static Grants").
using StaticGrant = xen_netif_gref;

// A C peer (Linux netfront/netback, FreeBSD, Windows PV drivers) lays these
// out by the same header; a different size would silently shift every slot.
static_assert(sizeof(TxRequest) == 12);
static_assert(sizeof(TxResponse) == 4);
static_assert(sizeof(RxRequest) == 8);
static_assert(sizeof(RxResponse) == 8);
static_assert(sizeof(ExtraInfo) == 8);
static_assert(sizeof(CtrlRequest) == 16);
static_assert(sizeof(CtrlResponse) == 12);
static_assert(sizeof(StaticGrant) == 8);
// An extra-info slot occupies a TX request slot (and an RX response slot).
static_assert(sizeof(ExtraInfo) <= sizeof(TxRequest));
static_assert(sizeof(ExtraInfo) <= sizeof(RxResponse));

static_assert(kPageSize == std::size_t{1} << XEN_PAGE_SHIFT);
static_assert(kMaxMtu + kEthHeaderLen == XEN_NETIF_MAX_TX_SIZE);
// Offset of ring[] in struct xxx_sring: four indices plus 48 bytes of padding.
inline constexpr std::size_t kSharedRingHeaderSize = offsetof(netif_tx_sring, ring);
static_assert(kSharedRingHeaderSize == 64);
static_assert(offsetof(netif_rx_sring, ring) == kSharedRingHeaderSize);
static_assert(offsetof(xen_netif_ctrl_sring, ring) == kSharedRingHeaderSize);

// One-page ring sizes (NET_TX_RING_SIZE / NET_RX_RING_SIZE in Linux).
inline constexpr unsigned kTxRingSizeOnePage = __CONST_RING_SIZE(netif_tx, kPageSize);
inline constexpr unsigned kRxRingSizeOnePage = __CONST_RING_SIZE(netif_rx, kPageSize);
inline constexpr unsigned kCtrlRingSizeOnePage = __CONST_RING_SIZE(xen_netif_ctrl, kPageSize);
static_assert(kTxRingSizeOnePage == 256);
static_assert(kRxRingSizeOnePage == 256);
static_assert(kCtrlRingSizeOnePage == 128);

// ---- TX request flags (netif_tx_request.flags) ---------------------------
inline constexpr std::uint16_t kTxfCsumBlank = NETTXF_csum_blank;
inline constexpr std::uint16_t kTxfDataValidated = NETTXF_data_validated;
inline constexpr std::uint16_t kTxfMoreData = NETTXF_more_data;
inline constexpr std::uint16_t kTxfExtraInfo = NETTXF_extra_info;

// ---- RX response flags (netif_rx_response.flags) -------------------------
inline constexpr std::uint16_t kRxfDataValidated = NETRXF_data_validated;
inline constexpr std::uint16_t kRxfCsumBlank = NETRXF_csum_blank;
inline constexpr std::uint16_t kRxfMoreData = NETRXF_more_data;
inline constexpr std::uint16_t kRxfExtraInfo = NETRXF_extra_info;
inline constexpr std::uint16_t kRxfGsoPrefix = NETRXF_gso_prefix;

// ---- Extra-info slots ----------------------------------------------------
inline constexpr std::uint8_t kExtraTypeNone = XEN_NETIF_EXTRA_TYPE_NONE;
inline constexpr std::uint8_t kExtraTypeGso = XEN_NETIF_EXTRA_TYPE_GSO;
inline constexpr std::uint8_t kExtraTypeMcastAdd = XEN_NETIF_EXTRA_TYPE_MCAST_ADD;
inline constexpr std::uint8_t kExtraTypeMcastDel = XEN_NETIF_EXTRA_TYPE_MCAST_DEL;
inline constexpr std::uint8_t kExtraTypeHash = XEN_NETIF_EXTRA_TYPE_HASH;
// One past the largest valid type: a type >= this is a malformed slot.
inline constexpr std::uint8_t kExtraTypeMax = XEN_NETIF_EXTRA_TYPE_MAX;
inline constexpr std::uint8_t kExtraFlagMore = XEN_NETIF_EXTRA_FLAG_MORE;
// RX headroom for XDP (Linux 5.9's netif.h; the Xen 4.17 header Debian ships
// predates it): the backend announces the headroom of a packet in an extra of
// this type, its first u16 (u.xdp.headroom, where the older union has
// u.pad[0]). kExtraTypeMax above is one past HASH and so excludes it.
inline constexpr std::uint8_t kExtraTypeXdp = XEN_NETIF_EXTRA_TYPE_HASH + 1;

inline constexpr std::uint8_t kGsoTypeNone = XEN_NETIF_GSO_TYPE_NONE;
inline constexpr std::uint8_t kGsoTypeTcpv4 = XEN_NETIF_GSO_TYPE_TCPV4;
inline constexpr std::uint8_t kGsoTypeTcpv6 = XEN_NETIF_GSO_TYPE_TCPV6;

// ---- Response status codes -----------------------------------------------
inline constexpr std::int16_t kRspDropped = NETIF_RSP_DROPPED;
inline constexpr std::int16_t kRspError = NETIF_RSP_ERROR;
inline constexpr std::int16_t kRspOkay = NETIF_RSP_OKAY;
// Written for extra-info slots, which get no real response.
inline constexpr std::int16_t kRspNull = NETIF_RSP_NULL;

// ---- Limits --------------------------------------------------------------
// Slots per packet every backend must accept (old Linux MAX_SKB_FRAGS + 1).
inline constexpr unsigned kNrSlotsMin = XEN_NETIF_NR_SLOTS_MIN;
// Largest total packet size a TX request chain may describe (size is u16).
inline constexpr unsigned kMaxTxSize = XEN_NETIF_MAX_TX_SIZE;

// ---- Grant tables --------------------------------------------------------
// Refs 0..7 are reserved for the toolstack (console and xenstore pages);
// guest grant allocators (Linux, FreeBSD, mini-os) never hand them out.
inline constexpr std::uint32_t kGrantNrReservedEntries = GNTTAB_NR_RESERVED_ENTRIES;
// Linux's INVALID_GRANT_REF sentinel; never a real entry (tables are far
// smaller than 2^32 entries).
inline constexpr std::uint32_t kGrantInvalidRef = 0xFFFFFFFFU;

static_assert(sizeof(GrantRef) == sizeof(grant_ref_t));
static_assert(kGntstOkay == GNTST_okay);
static_assert(kGntstGeneralError == GNTST_general_error);
static_assert(kGntstBadDomain == GNTST_bad_domain);
static_assert(kGntstBadGntref == GNTST_bad_gntref);
static_assert(kGntstBadHandle == GNTST_bad_handle);
static_assert(kGntstBadVirtAddr == GNTST_bad_virt_addr);
static_assert(kGntstBadDevAddr == GNTST_bad_dev_addr);
static_assert(kGntstNoDeviceSpace == GNTST_no_device_space);
static_assert(kGntstPermissionDenied == GNTST_permission_denied);
static_assert(kGntstBadPage == GNTST_bad_page);
static_assert(kGntstBadCopyArg == GNTST_bad_copy_arg);
static_assert(kGntstAddressTooBig == GNTST_address_too_big);
static_assert(kGntstEagain == GNTST_eagain);
static_assert(kGntstNoSpace == GNTST_no_space);

// ---- Event channels and domains ------------------------------------------
// No event-channel ABI (2-level or FIFO) has ports at or above this.
inline constexpr std::uint32_t kEvtchnMaxPorts = EVTCHN_FIFO_NR_CHANNELS;
// Domain ids at or above this are special (DOMID_SELF, DOMID_IO, ...).
inline constexpr std::uint16_t kDomidFirstReserved = DOMID_FIRST_RESERVED;

static_assert(sizeof(EvtchnPort) == sizeof(evtchn_port_t));
static_assert(sizeof(DomId) == sizeof(domid_t));
static_assert(kDomidSelf == DOMID_SELF);
static_assert(kDomidInvalid == DOMID_INVALID);

}  // namespace vifd::protocol
