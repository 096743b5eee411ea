// A vif's host port: its TAP and which of the TAP's queues are attached.
//
// Created, configured and closed on the HostPortWorker (each of those steps
// takes the kernel's rtnl lock); the control thread only reads the name and
// the queue fds, which do not change after creation. Shared between the vif
// and the worker's jobs, so a job never touches an fd the vif has closed.
#pragma once

#include <cstddef>

#include "backend/lib/control/tap_queues.h"
#include "common/net/tap_device.h"

namespace vifd::backend {

struct HostPort {
  explicit HostPort(const net::TapOptions& options) : tap(options), queues(tap) {}
  net::TapDevice tap;
  TapQueueAttachment queues;
};

// What a connection asks of the host port before its queues start: the
// offloads its frontend takes, its queue count attached, the carrier on.
struct HostPortSetting {
  net::TapOffloads offloads;
  std::size_t queues = 0;

  friend bool operator==(const HostPortSetting&, const HostPortSetting&) = default;
};

}  // namespace vifd::backend
