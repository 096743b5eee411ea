#include "common/platform/sim/sim_event_channels.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "common/platform/error.h"
#include "common/platform/sim/port_ops.h"

namespace vifd::sim::detail {

using platform::DomId;
using platform::EvtchnPort;
using platform::PlatformError;

namespace {

constexpr std::uint32_t kHandleIndexMask = kMaxHandles - 1;

bool process_is_gone(std::int32_t pid) noexcept {
  return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Claims a free handle slot, or the slot of a process that died without
// closing its handle. Returns the slot index.
std::uint32_t claim_handle_slot(HostTable& table) {
  const std::int32_t self_pid = ::getpid();
  for (std::uint32_t index = 0; index < kMaxHandles; ++index) {
    auto owner = shared(table.handles[index].owner_pid);
    std::int32_t current = owner.load(std::memory_order_acquire);
    if (current != 0 && !process_is_gone(current)) continue;
    if (owner.compare_exchange_strong(current, self_pid, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
      return index;
    }
  }
  throw PlatformError(
      fmt::format("sim event channels: all {} handles of the host are open", kMaxHandles), EMFILE);
}

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

  handle_index_ = claim_handle_slot(host_->table());
  HandleSlot& slot = host_->table().handles[handle_index_];
  const std::uint32_t incarnation =
      shared(slot.incarnation).fetch_add(1, std::memory_order_relaxed) + 1;
  token_ = (incarnation << kHandleIndexBits) | handle_index_;
  // Armed: nothing is queued and we wait for the first doorbell.
  shared(slot.doorbell_armed).store(1, std::memory_order_seq_cst);

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
    shared(slot.owner_pid).store(0, std::memory_order_release);
    throw PlatformError(fmt::format("sim event channels: domain {}: cannot bind '{}': {}", self_,
                                    socket_path_, std::strerror(saved)),
                        saved);
  }
}

SimEventChannels::~SimEventChannels() {
  for (const EvtchnPort port : ports_) close_port(port);
  ::close(socket_);
  ::unlink(socket_path_.c_str());
  shared(host_->table().handles[handle_index_].owner_pid).store(0, std::memory_order_release);
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
  if (!claim_port(remote_slot, PortState::kUnbound)) throw give_up("is not unbound");
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
  PortSlot& slot = self_meta_->ports[port];
  PortState was = PortState::kFree;
  for (;;) {
    if (claim_port(slot, PortState::kInterdomain)) {
      was = PortState::kInterdomain;
      break;
    }
    if (claim_port(slot, PortState::kUnbound)) {
      was = PortState::kUnbound;
      break;
    }
    // kFree: the domain was destroyed under us. kBusy: a peer is unlinking
    // it right now; wait, its claim never spans a blocking call.
    if (shared(slot.state).load(std::memory_order_acquire) ==
        static_cast<std::uint32_t>(PortState::kFree)) {
      return;
    }
    std::this_thread::yield();
  }
  if (was == PortState::kInterdomain) {
    const auto peer_domid =
        static_cast<DomId>(shared(slot.remote_domid).load(std::memory_order_relaxed));
    const std::uint32_t peer_port = shared(slot.remote_port).load(std::memory_order_relaxed);
    if (const auto peer = domains_.find(peer_domid)) {
      unlink_peer_port(*peer->meta, peer_port, self_, port);
    }
  }
  shared(slot.owner_handle).store(0, std::memory_order_relaxed);
  shared(slot.delivery).store(0, std::memory_order_relaxed);
  publish_port(slot, PortState::kFree);
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
