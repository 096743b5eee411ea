#include "backend/lib/control/capture_stream.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "backend/lib/control/log.h"
#include "backend/lib/datapath/switch.h"
#include "common/protocol/base64.h"

namespace vifd::backend {

namespace {

// Records per drain call: out is checked against the budget between calls.
constexpr std::size_t kDrainChunk = 64;

}  // namespace

CaptureStream::CaptureStream(std::shared_ptr<Switch> network_switch, xenbus::VifId id,
                             std::size_t snaplen, std::shared_ptr<std::size_t> live)
    : switch_(std::move(network_switch)), id_(id), live_(std::move(live)) {
  if (*live_ >= kMaxCaptures) {
    throw std::invalid_argument(
        fmt::format("cannot capture {}: {} captures already run in this vifd (the most allowed)",
                    xenbus::tap_name(id_), kMaxCaptures));
  }
  if (snaplen < CaptureRing::kMinSnaplen || snaplen > CaptureRing::kMaxSnaplen) {
    throw std::invalid_argument(fmt::format("bad snaplen {}: must be {}..{} bytes", snaplen,
                                            CaptureRing::kMinSnaplen, CaptureRing::kMaxSnaplen));
  }
  ring_ = std::make_unique<CaptureRing>(snaplen);
  switch_->start_capture(id_.domid, id_.devid, *ring_);
  started_ = true;
  ++*live_;
  control_log().info("{}: capture started (snaplen {}, {} slots)", xenbus::tap_name(id_), snaplen,
                     ring_->capacity());
}

CaptureStream::~CaptureStream() {
  if (!started_) {
    return;
  }
  // After this no queue thread touches the ring, which goes with us.
  switch_->stop_capture(*ring_);
  --*live_;
  try {
    control_log().info("{}: capture ended: {} frames recorded, {} dropped", xenbus::tap_name(id_),
                       ring_->recorded(), ring_->dropped());
  } catch (const std::exception&) {
    // A log line that cannot be formatted or written is not worth a crash.
  }
}

bool CaptureStream::pull(std::string& out, std::size_t budget) {
  // Read before draining: a ring is closed only after its last producer left,
  // so what the drain then finds is all there will be.
  const bool closed = ring_->closed();
  const auto append_frame = [&](const CaptureRecord& record) {
    out += fmt::format(R"({{"t":{},"len":{},"dir":"{}","data":")", record.realtime_ns,
                       record.original_length,
                       record.direction == CaptureDirection::kFromVif ? "from" : "to");
    protocol::base64_append(out, record.bytes);
    out += "\"}\n";
    ++sent_;
  };
  while (out.size() < budget) {
    if (ring_->drain(kDrainChunk, append_frame) == 0) {
      break;
    }
  }
  const std::uint64_t dropped = ring_->dropped();
  if (out.size() >= budget && !closed) {
    return true;  // more next time
  }
  if (closed && out.size() < budget) {
    const nlohmann::json end{{"ok", false},
                             {"error", fmt::format("{} went away (disconnected or removed): "
                                                   "capture ended",
                                                   xenbus::tap_name(id_))},
                             {"captured", sent_},
                             {"dropped", dropped}};
    out += end.dump() + "\n";
    return false;
  }
  if (dropped != reported_dropped_) {
    reported_dropped_ = dropped;
    out += fmt::format(R"({{"captured":{},"dropped":{}}})", sent_, dropped) + "\n";
  }
  return true;
}

}  // namespace vifd::backend
