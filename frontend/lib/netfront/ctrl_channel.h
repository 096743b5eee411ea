// The frontend end of the netif control ring (netif.h, "Control ring"),
// offered when the backend has feature-ctrl-ring: one shared ring page, one
// page for the lists the gref mapping messages carry, one event channel.
//
// Used for static grant mappings: after the backend connected, the frontend
// asks GET_GREF_MAPPING_SIZE and, when a queue's TX and RX pools fit, offers
// them with one ADD_GREF_MAPPING per queue (netfront.h). A backend that does
// not implement them (Linux netback answers NOT_SUPPORTED) or answers too
// small a size leaves the queue on grant copies; nothing else changes.
//
// Requests are answered synchronously with a bounded wait (call()), since a
// handful are sent per connection. Responses are copied out of the ring
// before they are looked at and matched by id; anything else (a producer
// index beyond what we asked, a reply that never comes) fails the call.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "common/platform/platform.h"
#include "common/protocol/ring.h"
#include "common/protocol/xen_abi.h"
#include "common/xenbus/netfront_keys.h"
#include "frontend/lib/netfront/shared_pages.h"

namespace vifd::frontend {

class CtrlChannel {
 public:
  // Entries of one ADD/DEL list: one page.
  static constexpr std::size_t kMaxListEntries =
      platform::kPageSize / sizeof(protocol::StaticGrant);

  // Shares the ring and list pages with `backend` and binds an unbound
  // port. Throws PlatformError.
  CtrlChannel(platform::Platform& platform, platform::GrantShare& share, platform::DomId backend);
  ~CtrlChannel();
  CtrlChannel(const CtrlChannel&) = delete;
  CtrlChannel& operator=(const CtrlChannel&) = delete;

  xenbus::FrontendCtrlRingKeys keys() const noexcept;

  // Sends one request and waits up to `timeout` for its response;
  // std::nullopt on timeout or a broken ring.
  std::optional<protocol::CtrlResponse> call(std::uint16_t type, std::uint32_t data0,
                                             std::uint32_t data1, std::uint32_t data2,
                                             std::chrono::milliseconds timeout);

  // The list page as entries (the frontend fills it before an ADD/DEL).
  std::span<protocol::StaticGrant> list() noexcept;
  platform::GrantRef list_ref() const noexcept { return pages_->ref(1); }

 private:
  std::unique_ptr<platform::EventChannels> events_;
  platform::EvtchnPort port_ = 0;
  std::unique_ptr<SharedPages> pages_;  // page 0: the ring, page 1: the list
  protocol::CtrlFrontRing ring_;
  std::uint16_t next_id_ = 0;
};

}  // namespace vifd::frontend
