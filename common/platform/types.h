// Identifiers and wire shapes shared by every platform implementation.
//
// The shapes mirror the Xen libraries exactly (see static_asserts in
// common/platform/xen/) so the xen implementation passes our arrays straight
// to libxengnttab without conversion.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/protocol/grant_status.h"
#include "common/protocol/ids.h"
#include "common/protocol/sizes.h"

namespace vifd::platform {

// The identifiers belong to the protocol layer (the parsers produce them);
// the platform names them too so its interfaces read platform::DomId.
using protocol::DomId;
using protocol::EvtchnPort;
using protocol::GrantRef;
using protocol::kDom0;
using protocol::kDomidInvalid;
using protocol::kDomidSelf;
using protocol::kPageSize;

// Grant status codes: protocol::GrantStatus, named here as platform::kGntst*.
using protocol::grant_status_name;
using protocol::GrantStatus;
using enum protocol::GrantStatus;

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
