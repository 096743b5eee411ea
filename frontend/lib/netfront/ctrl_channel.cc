#include "frontend/lib/netfront/ctrl_channel.h"

#include <poll.h>

#include <array>

namespace vifd::frontend {

CtrlChannel::CtrlChannel(platform::Platform& platform, platform::GrantShare& share,
                         platform::DomId backend)
    : events_(platform.open_event_channels()),
      port_(events_->bind_unbound(backend)),
      pages_(std::make_unique<SharedPages>(share, backend, 2, true)),
      ring_(protocol::CtrlFrontRing::init(pages_->page(0))) {}

CtrlChannel::~CtrlChannel() = default;

xenbus::FrontendCtrlRingKeys CtrlChannel::keys() const noexcept {
  return {pages_->ref(0), port_};
}

std::span<protocol::StaticGrant> CtrlChannel::list() noexcept {
  return {reinterpret_cast<protocol::StaticGrant*>(pages_->page(1).data()), kMaxListEntries};
}

std::optional<protocol::CtrlResponse> CtrlChannel::call(std::uint16_t type, std::uint32_t data0,
                                                        std::uint32_t data1, std::uint32_t data2,
                                                        std::chrono::milliseconds timeout) {
  protocol::CtrlRequest request{};
  request.id = ++next_id_;
  request.type = type;
  request.data[0] = data0;
  request.data[1] = data1;
  request.data[2] = data2;
  if (!ring_.push_request(request)) {
    return std::nullopt;
  }
  if (ring_.push_requests_and_check_notify()) {
    events_->notify(port_);
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<protocol::CtrlResponse, 8> responses;
  for (;;) {
    const auto taken = ring_.take_responses(responses);
    if (taken.status != protocol::RingStatus::kOk) {
      return std::nullopt;
    }
    for (std::size_t i = 0; i < taken.count; ++i) {
      // Copied out of the ring by take_responses; a stale id is skipped.
      if (responses[i].id == request.id) {
        return responses[i];
      }
    }
    if (taken.count == 0 && ring_.final_check_for_responses()) {
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return std::nullopt;
    }
    pollfd entry{events_->fd(), POLLIN, 0};
    ::poll(&entry, 1, static_cast<int>(std::min<long>(left.count(), 50)));
    while (const auto port = events_->pending()) {
      events_->unmask(*port);
    }
  }
}

}  // namespace vifd::frontend
