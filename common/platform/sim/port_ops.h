// Port-table operations shared by the event-channel handle and by
// destroy_domain. A port is changed only by whoever moved it to kBusy with a
// CAS, so two processes never edit one port at once and no process-shared
// mutex (which a crashed process could leave locked) is needed.
#pragma once

#include "common/platform/sim/domain_cache.h"
#include "common/platform/sim/shm_layout.h"

namespace vifd::sim::detail {

// CAS `port` from `expected` to kBusy; true when this caller now owns it.
bool claim_port(PortSlot& port, PortState expected) noexcept;

// Ends a claim: the fields written before are published with the state
// (release), so a reader that sees `state` (acquire) sees them too.
void publish_port(PortSlot& port, PortState state) noexcept;

// The peer end `peer_port` of an interdomain channel whose other end
// (closing_domid, closing_port) is closing becomes unbound and bindable again
// by closing_domid, as ECS_INTERDOMAIN -> ECS_UNBOUND in Xen's
// evtchn_close(). Does nothing when the peer no longer points back at us.
void unlink_peer_port(DomainShared& peer, std::uint32_t peer_port, std::uint32_t closing_domid,
                      std::uint32_t closing_port) noexcept;

// EVTCHNOP_close of port `port` of `owner` (domain `owner_domid`): the port
// becomes free and an interdomain peer becomes unbound (unlink_peer_port).
// Does nothing when the port is already free (its domain was destroyed).
void close_port(DomainCache& domains, DomainShared& owner, platform::DomId owner_domid,
                std::uint32_t port) noexcept;

}  // namespace vifd::sim::detail
