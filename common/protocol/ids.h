// Identifiers every layer passes around: a domain, a grant reference, an
// event-channel port. Their widths are the ones of Xen's public headers
// (domid_t, grant_ref_t, evtchn_port_t), checked in xen_abi.h.
#pragma once

#include <cstdint>

namespace vifd::protocol {

using DomId = std::uint16_t;
using GrantRef = std::uint32_t;
using EvtchnPort = std::uint32_t;

inline constexpr DomId kDom0 = 0;
// DOMID_SELF / DOMID_INVALID as in xen/xen.h.
inline constexpr DomId kDomidSelf = 0x7FF0;
inline constexpr DomId kDomidInvalid = 0x7FF4;

}  // namespace vifd::protocol
