// Which queues of a multi-queue TAP the kernel may steer frames to.
//
// vifd opens multi-queue-max-queues fds when it creates the TAP (before
// InitWait, when the frontend has not chosen its queue count yet). The kernel
// spreads host-to-guest frames over every ATTACHED fd, so once the frontend
// picks N queues the fds beyond N are detached (TUNSETQUEUE
// IFF_DETACH_QUEUE): frames are never steered to a queue no thread reads.
// A detached fd still keeps the device alive and can be attached again on
// reconnect.
#pragma once

#include <vector>

#include "common/net/tap_device.h"

namespace vifd::backend {

class TapQueueAttachment {
 public:
  // All queues of a freshly created TAP are attached.
  explicit TapQueueAttachment(const net::TapDevice& tap);

  // Attaches queues [0, count) and detaches the others. Throws
  // std::system_error naming the interface and queue.
  void use_first(const net::TapDevice& tap, std::size_t count);

 private:
  std::vector<bool> attached_;
};

}  // namespace vifd::backend
