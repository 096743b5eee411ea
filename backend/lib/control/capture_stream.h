// `vifctl capture`'s end in vifd: a capture of the frames the in-process
// switch forwards from and to one vif, streamed on the control-socket
// connection that asked for it.
//
// The stream is JSON lines after the answer (docs/operator-guide.md,
// "vifd control socket"):
//   {"t":NS,"len":N,"dir":"from"|"to","data":BASE64}   one forwarded frame
//   {"captured":N,"dropped":M}                          whenever drops grew
//   {"ok":false,"error":...,"captured":N,"dropped":M}   the vif went away
// The ring (CaptureRing) is the only memory the capture holds; the queue
// threads fill it and never wait for it, pull() drains it on the control
// thread. Destroying the stream (its connection closed) stops the capture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "backend/lib/control/control_socket.h"
#include "backend/lib/datapath/capture_ring.h"
#include "common/xenbus/paths.h"

namespace vifd::backend {

class Switch;

class CaptureStream : public ControlStream {
 public:
  // Captures of a whole daemon at most (each holds one ring's memory).
  static constexpr std::size_t kMaxCaptures = 4;

  // Starts capturing vif `id` on `network_switch`. `live` counts the
  // daemon's captures; throws std::invalid_argument naming the vif (not a
  // port, already captured, too many captures) or the bad snaplen.
  CaptureStream(std::shared_ptr<Switch> network_switch, xenbus::VifId id, std::size_t snaplen,
                std::shared_ptr<std::size_t> live);
  ~CaptureStream() override;
  CaptureStream(const CaptureStream&) = delete;
  CaptureStream& operator=(const CaptureStream&) = delete;

  bool pull(std::string& out, std::size_t budget) override;

  const CaptureRing& ring() const { return *ring_; }

 private:
  std::shared_ptr<Switch> switch_;
  xenbus::VifId id_;
  std::shared_ptr<std::size_t> live_;
  std::unique_ptr<CaptureRing> ring_;
  std::uint64_t sent_ = 0;
  std::uint64_t reported_dropped_ = 0;
  bool started_ = false;
};

}  // namespace vifd::backend
