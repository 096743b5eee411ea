#include "common/platform/sim/sim_event_channels.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/platform/error.h"
#include "common/platform/sim/handle_slots.h"
#include "common/platform/sim/port_ops.h"

namespace vifd::sim::detail {

using platform::DomId;
using platform::EvtchnPort;
using platform::PlatformError;

namespace {

constexpr std::uint32_t kHandleIndexMask = kMaxHandles - 1;

}  // namespace

SimEventChannels::SimEventChannels(std::shared_ptr<const Host> host, DomId self)
    : host_(host),
      self_(self),
      domains_(host),
      self_meta_(nullptr),
      handle_index_(0),
      token_(0),
      socket_(-1),
      ev_dir_((host->paths().dir / "ev").native()) {
  const auto view = domains_.find(self_);
  if (!view) {
    throw PlatformError(fmt::format("sim event channels: domain {} does not exist", self_), ESRCH);
  }
  self_meta_ = view->meta;
  socket_path_ = ev_dir_ + "/" + std::to_string(kMaxHandles - 1);
  check_socket_path(socket_path_);

  handle_ = claim_handle(*host_, domains_, self_);
  handle_index_ = handle_.index;
  token_ = handle_.token;
  socket_path_ = ev_dir_ + "/" + std::to_string(handle_index_);
  socket_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  // A socket file left by a process that died holding this slot.
  ::unlink(socket_path_.c_str());
  if (socket_ < 0 ||
      ::bind(socket_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    const int saved = errno;
    if (socket_ >= 0) ::close(socket_);
    release_handle(*host_, handle_);
    throw PlatformError(fmt::format("sim event channels: domain {}: cannot bind '{}': {}", self_,
                                    socket_path_, std::strerror(saved)),
                        saved);
  }
}

SimEventChannels::~SimEventChannels() {
  for (const EvtchnPort port : ports_) close_port(port);
  ::close(socket_);
  ::unlink(socket_path_.c_str());
  release_handle(*host_, handle_);
}

bool SimEventChannels::owns(EvtchnPort port) const noexcept {
  if (port == 0 || port >= kPortsPerDomain) return false;
  const PortSlot& slot = self_meta_->ports[port];
  const auto state = static_cast<PortState>(
      shared(const_cast<std::uint32_t&>(slot.state)).load(std::memory_order_acquire));
  return state != PortState::kFree &&
         shared(const_cast<std::uint32_t&>(slot.owner_handle)).load(std::memory_order_relaxed) ==
             token_;
}

EvtchnPort SimEventChannels::allocate_port(DomId remote_domid) {
  // Port 0 is never allocated, as in Xen.
  for (EvtchnPort port = 1; port < kPortsPerDomain; ++port) {
    PortSlot& slot = self_meta_->ports[port];
    if (!claim_port(slot, PortState::kFree)) continue;
    shared(slot.remote_domid).store(remote_domid, std::memory_order_relaxed);
    shared(slot.remote_port).store(0, std::memory_order_relaxed);
    shared(slot.owner_handle).store(token_, std::memory_order_relaxed);
    shared(slot.delivery).store(0, std::memory_order_relaxed);
    return port;  // still kBusy: the caller publishes its final state
  }
  throw PlatformError(fmt::format("sim event channels: domain {} has no free port (all {} used)",
                                  self_, kPortsPerDomain - 1),
                      ENOSPC);
}

EvtchnPort SimEventChannels::bind_unbound(DomId remote_domid) {
  const DomId remote = remote_domid == platform::kDomidSelf ? self_ : remote_domid;
  ports_.reserve(ports_.size() + 1);
  const EvtchnPort port = allocate_port(remote);
  publish_port(self_meta_->ports[port], PortState::kUnbound);
  ports_.push_back(port);
  return port;
}

EvtchnPort SimEventChannels::bind_interdomain(DomId remote_domid, EvtchnPort remote_port) {
  const DomId remote = remote_domid == platform::kDomidSelf ? self_ : remote_domid;
  const auto peer = domains_.find(remote);
  if (!peer) {
    throw PlatformError(fmt::format("sim bind_interdomain: domain {} does not exist", remote),
                        ESRCH);
  }
  if (remote_port == 0 || remote_port >= kPortsPerDomain) {
    throw PlatformError(fmt::format("sim bind_interdomain: port {} of domain {} is out of range",
                                    remote_port, remote),
                        EINVAL);
  }
  ports_.reserve(ports_.size() + 1);
  const EvtchnPort local = allocate_port(remote);
  PortSlot& local_slot = self_meta_->ports[local];
  PortSlot& remote_slot = peer->meta->ports[remote_port];
  auto give_up = [&](const char* why) {
    publish_port(local_slot, PortState::kFree);
    return PlatformError(fmt::format("sim bind_interdomain: domain {} port {} {} (binding from "
                                     "domain {})",
                                     remote, remote_port, why, self_),
                         EINVAL);
  };
  // Xen's evtchn_bind_interdomain: the remote port must be unbound and
  // offered to us.
  // A port still bound by a process that died is closed first, as the
  // kernel would have done at its death (handle_slots.h).
  if (!claim_port(remote_slot, PortState::kUnbound) &&
      !(reap_dead_binder(*peer->meta, remote_port) &&
        claim_port(remote_slot, PortState::kUnbound))) {
    throw give_up("is not unbound");
  }
  if (shared(remote_slot.remote_domid).load(std::memory_order_relaxed) != self_) {
    publish_port(remote_slot, PortState::kUnbound);
    throw give_up("is not offered to this domain");
  }
  shared(remote_slot.remote_port).store(local, std::memory_order_relaxed);
  publish_port(remote_slot, PortState::kInterdomain);
  shared(local_slot.remote_port).store(remote_port, std::memory_order_relaxed);
  publish_port(local_slot, PortState::kInterdomain);
  ports_.push_back(local);
  // As Xen does: notifications sent to the remote port while it was being
  // bound may be lost, so the new local port starts with an event.
  raise(*self_meta_, local);
  return local;
}

void SimEventChannels::close_port(EvtchnPort port) noexcept {
  detail::close_port(domains_, *self_meta_, self_, port);
}

bool SimEventChannels::reap_dead_binder(const DomainShared& remote,
                                        EvtchnPort remote_port) noexcept {
  const PortSlot& slot = remote.ports[remote_port];
  auto load = [](const std::uint32_t& word) {
    return shared(const_cast<std::uint32_t&>(word)).load(std::memory_order_acquire);
  };
  if (load(slot.state) != static_cast<std::uint32_t>(PortState::kInterdomain)) return false;
  const auto peer = domains_.find(static_cast<DomId>(load(slot.remote_domid)));
  const std::uint32_t peer_port = load(slot.remote_port);
  if (!peer || peer_port >= kPortsPerDomain) return false;
  const std::uint32_t token = load(peer->meta->ports[peer_port].owner_handle);
  return reap_handle_if_dead(*host_, domains_, token & kHandleIndexMask);
}

void SimEventChannels::unbind(EvtchnPort local_port) {
  const auto found = std::find(ports_.begin(), ports_.end(), local_port);
  if (found == ports_.end() || !owns(local_port)) {
    throw PlatformError(
        fmt::format("sim unbind: domain {} port {} is not bound by this handle", self_, local_port),
        EINVAL);
  }
  close_port(local_port);
  ports_.erase(found);
}

void SimEventChannels::ring_doorbell(std::uint32_t handle_token) noexcept {
  const std::uint32_t index = handle_token & kHandleIndexMask;
  HandleSlot& slot = host_->table().handles[index];
  // A token of a closed handle no longer matches: nobody listens there.
  if ((shared(slot.incarnation).load(std::memory_order_relaxed) << kHandleIndexBits | index) !=
      handle_token) {
    return;
  }
  // seq_cst pairs with the receiver's re-arm and re-scan in pending().
  if (shared(slot.doorbell_armed).exchange(0, std::memory_order_seq_cst) == 0) return;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s/%u", ev_dir_.c_str(), index);
  const char doorbell = 1;
  // Failure means the receiving process is gone (ECONNREFUSED/ENOENT); as on
  // Xen, an event for a dead receiver is simply never seen.
  const ssize_t sent = ::sendto(socket_, &doorbell, 1, MSG_DONTWAIT,
                                reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  static_cast<void>(sent);
}

void SimEventChannels::raise(DomainShared& domain, EvtchnPort port) noexcept {
  PortSlot& slot = domain.ports[port];
  auto delivery = shared(slot.delivery);
  std::uint32_t current = delivery.load(std::memory_order_relaxed);
  std::uint32_t next = 0;
  do {
    next =
        (current & kPortMasked) != 0 ? current | kPortPending : current | kPortMasked | kPortFired;
  } while (!delivery.compare_exchange_weak(current, next, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
  if ((current & kPortMasked) == 0) {
    ring_doorbell(shared(slot.owner_handle).load(std::memory_order_relaxed));
  }
}

int SimEventChannels::notify(EvtchnPort local_port) noexcept {
  if (!owns(local_port)) return -EINVAL;
  count_hypercall(self_meta_->counters.evtchn_notify_calls, 1);
  PortSlot& slot = self_meta_->ports[local_port];
  // Acquire: a port seen kInterdomain has its peer fields published.
  if (shared(slot.state).load(std::memory_order_acquire) !=
      static_cast<std::uint32_t>(PortState::kInterdomain)) {
    return 0;  // unbound (or its peer closed it): Xen drops the event
  }
  const auto peer_domid =
      static_cast<DomId>(shared(slot.remote_domid).load(std::memory_order_relaxed));
  const std::uint32_t peer_port = shared(slot.remote_port).load(std::memory_order_relaxed);
  const auto peer = domains_.find(peer_domid);
  if (!peer || peer_port >= kPortsPerDomain) return 0;  // dead peer: dropped
  PortSlot& peer_slot = peer->meta->ports[peer_port];
  // The peer end must still point back at us; a peer that rebound the port
  // elsewhere must not get our event.
  if (shared(peer_slot.state).load(std::memory_order_acquire) !=
          static_cast<std::uint32_t>(PortState::kInterdomain) ||
      shared(peer_slot.remote_domid).load(std::memory_order_relaxed) != self_ ||
      shared(peer_slot.remote_port).load(std::memory_order_relaxed) != local_port) {
    return 0;
  }
  raise(*peer->meta, peer_port);
  return 0;
}

std::optional<EvtchnPort> SimEventChannels::take_fired() noexcept {
  const std::size_t count = ports_.size();
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t at = (scan_from_ + i) % count;
    auto delivery = shared(self_meta_->ports[ports_[at]].delivery);
    if ((delivery.load(std::memory_order_seq_cst) & kPortFired) == 0) continue;
    if ((delivery.fetch_and(~kPortFired, std::memory_order_seq_cst) & kPortFired) != 0) {
      scan_from_ = at + 1;
      count_hypercall(self_meta_->counters.evtchn_events_delivered, 1);
      return ports_[at];
    }
  }
  return std::nullopt;
}

std::optional<EvtchnPort> SimEventChannels::pending() noexcept {
  // While a port is fired, the doorbell datagram stays queued, so fd()
  // stays readable; it is consumed only once nothing is left.
  if (const auto port = take_fired()) return port;
  char drain[16];
  while (::recv(socket_, drain, sizeof(drain), MSG_DONTWAIT) > 0) {
  }
  auto armed = shared(host_->table().handles[handle_index_].doorbell_armed);
  armed.store(1, std::memory_order_seq_cst);
  // Final check: a notifier that fired a port before seeing the re-armed
  // doorbell did not send a datagram, so look once more.
  const auto port = take_fired();
  // Others may still be fired: ring our own doorbell so fd() stays
  // readable for them (a spurious wake-up at worst).
  if (port) ring_doorbell(token_);
  return port;
}

int SimEventChannels::unmask(EvtchnPort local_port) noexcept {
  if (!owns(local_port)) return -EINVAL;
  auto delivery = shared(self_meta_->ports[local_port].delivery);
  std::uint32_t current = delivery.load(std::memory_order_relaxed);
  std::uint32_t next = 0;
  do {
    // An event that arrived while masked is delivered now, the port staying
    // masked for it; otherwise the port opens for the next notify.
    next = (current & kPortPending) != 0 ? (current & ~kPortPending) | kPortMasked | kPortFired
                                         : current & ~kPortMasked;
  } while (!delivery.compare_exchange_weak(current, next, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
  if ((current & kPortPending) != 0) ring_doorbell(token_);
  return 0;
}

}  // namespace vifd::sim::detail
