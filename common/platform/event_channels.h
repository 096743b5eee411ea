// Event channels, shaped after libxenevtchn with Linux /dev/xen/evtchn
// semantics: one handle is one pollable fd; a port that delivered an event
// stays masked until unmask() is called, further notifications meanwhile are
// remembered (pending) and delivered on unmask.
#pragma once

#include <optional>

#include "common/platform/types.h"

namespace vifd::platform {

class EventChannels {
 public:
  virtual ~EventChannels() = default;
  EventChannels() = default;
  EventChannels(const EventChannels&) = delete;
  EventChannels& operator=(const EventChannels&) = delete;

  // Readable (POLLIN) whenever pending() has a port to return.
  virtual int fd() const noexcept = 0;

  // Control plane; throw PlatformError naming the domid/port on failure.
  virtual EvtchnPort bind_unbound(DomId remote_domid) = 0;
  virtual EvtchnPort bind_interdomain(DomId remote_domid, EvtchnPort remote_port) = 0;
  virtual void unbind(EvtchnPort local_port) = 0;

  // Data plane: return 0 or a negative errno, never throw.
  virtual int notify(EvtchnPort local_port) noexcept = 0;
  // Next delivered port, or std::nullopt when none is pending (non-blocking).
  virtual std::optional<EvtchnPort> pending() noexcept = 0;
  virtual int unmask(EvtchnPort local_port) noexcept = 0;

  // True when fd() is readable exactly while pending() has a port to return
  // (Linux /dev/xen/evtchn: readable while its port ring is not empty): a
  // caller woken once may take one port and leave the next to poll(),
  // saving the read that would find nothing. False (the safe default) when
  // the fd may stay readable after the last port was taken: drain pending()
  // until it returns std::nullopt.
  virtual bool readable_exactly_while_pending() const noexcept { return false; }
};

}  // namespace vifd::platform
