#include "common/platform/sim/port_ops.h"

#include <thread>

namespace vifd::sim::detail {

bool claim_port(PortSlot& port, PortState expected) noexcept {
  auto want = static_cast<std::uint32_t>(expected);
  // acq_rel: acquire the fields the previous owner published; the release
  // half orders nothing we rely on but keeps the CAS symmetric.
  return shared(port.state)
      .compare_exchange_strong(want, static_cast<std::uint32_t>(PortState::kBusy),
                               std::memory_order_acq_rel, std::memory_order_relaxed);
}

void publish_port(PortSlot& port, PortState state) noexcept {
  shared(port.state).store(static_cast<std::uint32_t>(state), std::memory_order_release);
}

void unlink_peer_port(DomainShared& peer, std::uint32_t peer_port, std::uint32_t closing_domid,
                      std::uint32_t closing_port) noexcept {
  if (peer_port >= kPortsPerDomain) return;
  PortSlot& port = peer.ports[peer_port];
  // The peer's own control plane may hold the port busy for a moment (it is
  // unbinding it itself); wait it out, a claim never spans a blocking call.
  for (;;) {
    if (claim_port(port, PortState::kInterdomain)) break;
    if (shared(port.state).load(std::memory_order_acquire) !=
        static_cast<std::uint32_t>(PortState::kBusy)) {
      return;  // already free or unbound: nothing links it to us any more
    }
    std::this_thread::yield();
  }
  const bool points_at_us =
      shared(port.remote_domid).load(std::memory_order_relaxed) == closing_domid &&
      shared(port.remote_port).load(std::memory_order_relaxed) == closing_port;
  if (!points_at_us) {
    publish_port(port, PortState::kInterdomain);
    return;
  }
  shared(port.remote_port).store(0, std::memory_order_relaxed);
  publish_port(port, PortState::kUnbound);
}

void close_port(DomainCache& domains, DomainShared& owner, platform::DomId owner_domid,
                std::uint32_t port) noexcept {
  if (port >= kPortsPerDomain) {
    return;
  }
  PortSlot& slot = owner.ports[port];
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
        static_cast<platform::DomId>(shared(slot.remote_domid).load(std::memory_order_relaxed));
    const std::uint32_t peer_port = shared(slot.remote_port).load(std::memory_order_relaxed);
    if (const auto peer = domains.find(peer_domid)) {
      unlink_peer_port(*peer->meta, peer_port, owner_domid, port);
    }
  }
  shared(slot.owner_handle).store(0, std::memory_order_relaxed);
  shared(slot.delivery).store(0, std::memory_order_relaxed);
  publish_port(slot, PortState::kFree);
}

}  // namespace vifd::sim::detail
