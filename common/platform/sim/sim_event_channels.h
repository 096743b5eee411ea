// Event channels of the simulator (the model of libxenevtchn with Linux
// /dev/xen/evtchn semantics).
//
// Delivery protocol. Every port has delivery bits in its domain's shared
// port table (kPortMasked, kPortPending, kPortFired); every handle has a
// unix datagram socket DIR/ev/<index> (its fd) and a doorbell word.
//  * notify() on the sender raises the peer port: if it is masked, the event
//    is remembered as pending; otherwise the port becomes masked and fired,
//    and if the owning handle's doorbell is armed, the sender disarms it and
//    sends one datagram.
//  * pending() on the receiver returns a fired port (clearing kPortFired);
//    when none is fired it drains the socket, re-arms the doorbell and looks
//    again (the final-check idiom, seq_cst on both sides).
//  * unmask() turns a pending event into a fresh fired one.
// A datagram is a doorbell, not a port number: a handle has at most one in
// flight, so the receive queue (net.unix.max_dgram_qlen, often 10) never
// overflows however many ports the handle owns, and no event is lost.
//
// Threads: notify() and unmask() may be called from any thread; the bind
// calls, unbind() and pending() of one handle must not run concurrently
// (one handle per event loop, as with a xenevtchn handle).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/platform/event_channels.h"
#include "common/platform/sim/domain_cache.h"
#include "common/platform/sim/handle_slots.h"

namespace vifd::sim::detail {

class SimEventChannels final : public platform::EventChannels {
 public:
  SimEventChannels(std::shared_ptr<const Host> host, platform::DomId self);
  // Like closing /dev/xen/evtchn: every port still bound is closed.
  ~SimEventChannels() override;

  int fd() const noexcept override { return socket_; }
  platform::EvtchnPort bind_unbound(platform::DomId remote_domid) override;
  platform::EvtchnPort bind_interdomain(platform::DomId remote_domid,
                                        platform::EvtchnPort remote_port) override;
  void unbind(platform::EvtchnPort local_port) override;
  int notify(platform::EvtchnPort local_port) noexcept override;
  std::optional<platform::EvtchnPort> pending() noexcept override;
  int unmask(platform::EvtchnPort local_port) noexcept override;

 private:
  platform::EvtchnPort allocate_port(platform::DomId remote_domid);
  bool owns(platform::EvtchnPort port) const noexcept;
  void raise(DomainShared& domain, platform::EvtchnPort port) noexcept;
  void ring_doorbell(std::uint32_t handle_token) noexcept;
  std::optional<platform::EvtchnPort> take_fired() noexcept;
  void close_port(platform::EvtchnPort port) noexcept;
  // The remote port is bound to a port of a dead process: closes that
  // process's ports; true if it did (the remote port is unbound again).
  bool reap_dead_binder(const DomainShared& remote, platform::EvtchnPort remote_port) noexcept;

  std::shared_ptr<const Host> host_;
  platform::DomId self_;
  DomainCache domains_;
  DomainShared* self_meta_;
  ClaimedHandle handle_;
  std::uint32_t handle_index_;
  std::uint32_t token_;  // (incarnation << 10) | index: names this handle in port slots
  int socket_;
  std::string socket_path_;
  std::string ev_dir_;
  std::vector<platform::EvtchnPort> ports_;  // bound by this handle
  std::size_t scan_from_ = 0;                // round-robin start of take_fired()
};

}  // namespace vifd::sim::detail
