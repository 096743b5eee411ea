// A simulated domU's vif as a vif-bench port: the frontend library's
// Netfront, connected with the requested number of queues. Frames go out
// round robin over the queues, one flow per queue.
#pragma once

#include <chrono>
#include <cstdint>
#include <unordered_map>

#include "common/platform/platform.h"
#include "common/xenstore/client.h"
#include "frontend/lib/bench/port.h"
#include "frontend/lib/netfront/netfront.h"

namespace vifd::bench {

class NetfrontPort final : public Port {
 public:
  // Connects device/vif/<devid> of the platform's domain; throws
  // std::runtime_error when it is not Connected within `timeout`.
  // `static_grants`: offer the pools as static grant mappings (the backend
  // may still decline; static_grants_mapped() says what it took).
  NetfrontPort(platform::Platform& platform, xs::Client xenstore, std::uint32_t devid,
               unsigned queues, bool static_grants, std::chrono::milliseconds timeout);
  // An orderly close, then a wait (bounded) until the backend is Closed
  // too, so the next connection of this vif starts from a clean state
  // instead of looking like a dead instance that must be reset first.
  ~NetfrontPort() override;

  std::string name() const override;
  protocol::MacAddress mac() const override { return front_.config().mac; }
  std::size_t send(std::span<Frame> frames, std::size_t budget) override;
  void receive() override;
  void wait_fds(std::vector<pollfd>& fds) override;

  unsigned queue_count() const noexcept { return static_cast<unsigned>(front_.queue_count()); }

 private:
  void check_alive();
  void fill(std::span<const std::span<std::uint8_t>> pages, const Frame& frame, std::uint64_t id);

  std::string name_;
  // A connection of our own for watching the backend close after front_ did.
  xs::Client watcher_;
  frontend::Netfront front_;
  std::size_t next_queue_ = 0;
  // TX pool pages already holding a given frame's bytes beyond its first
  // page (frame id and slot): a page is rewritten only when it held
  // something else, so a 64 KiB frame does not cost the generator a 64 KiB
  // copy per packet (a real guest's data would be in place already).
  std::unordered_map<const std::uint8_t*, std::uint64_t> primed_;
};

}  // namespace vifd::bench
