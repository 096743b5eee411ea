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

}  // namespace vifd::sim::detail
