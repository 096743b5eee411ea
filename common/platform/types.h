// Identifiers and wire shapes shared by every platform implementation.
//
// The shapes mirror the Xen libraries exactly (see static_asserts in
// common/platform/xen/) so the xen implementation passes our arrays straight
// to libxengnttab without conversion.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vifd::platform {

using DomId = std::uint16_t;
using GrantRef = std::uint32_t;
using EvtchnPort = std::uint32_t;

inline constexpr std::size_t kPageSize = 4096;
inline constexpr DomId kDom0 = 0;
// DOMID_SELF / DOMID_INVALID as in xen/xen.h.
inline constexpr DomId kDomidSelf = 0x7FF0;
inline constexpr DomId kDomidInvalid = 0x7FF4;

// Grant status codes, identical to GNTST_* in xen/grant_table.h.
enum GrantStatus : std::int16_t {
  kGntstOkay = 0,
  kGntstGeneralError = -1,
  kGntstBadDomain = -2,
  kGntstBadGntref = -3,
  kGntstBadHandle = -4,
  kGntstBadVirtAddr = -5,
  kGntstBadDevAddr = -6,
  kGntstNoDeviceSpace = -7,
  kGntstPermissionDenied = -8,
  kGntstBadPage = -9,
  kGntstBadCopyArg = -10,
  kGntstAddressTooBig = -11,
  kGntstEagain = -12,
  kGntstNoSpace = -13,
};

// Human-readable name of a GNTST_* code, for error messages.
const char* grant_status_name(std::int16_t status) noexcept;

// Direction flags of a copy segment, identical to GNTCOPY_* in
// xen/grant_table.h: a set flag means that side is a foreign grant reference,
// a clear flag means it is a local virtual address.
inline constexpr std::uint16_t kCopySourceGref = 1U << 0;
inline constexpr std::uint16_t kCopyDestGref = 1U << 1;

// One side of a grant copy: a local address or a foreign {ref, offset, domid}.
union GrantCopyPtr {
  void* virt;
  struct Foreign {
    GrantRef ref;
    std::uint16_t offset;
    DomId domid;
  } foreign;
};

// Same layout as xengnttab_grant_copy_segment_t. offset + len must not exceed
// kPageSize on a foreign side; status receives a GNTST_* code per segment.
struct GrantCopySegment {
  GrantCopyPtr source;
  GrantCopyPtr dest;
  std::uint16_t len;
  std::uint16_t flags;
  std::int16_t status;
};

}  // namespace vifd::platform
