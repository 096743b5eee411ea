// The backend end of a netif control ring (netif.h, "Control ring"): one
// shared page the frontend grants (ctrl-ring-ref) and one event channel
// (event-channel-ctrl), served on the control-plane io_context.
//
// Why the io_context and not a thread of its own: the ring carries a handful
// of configuration messages per connection, each answered in microseconds
// (at most one grant copy), so an Asio wait on the channel's fd costs nothing
// and needs no synchronisation with the rest of the vif's control plane. The
// data path only ever sees the result, HashControl's immutable snapshot.
//
// Every request is copied out of the shared page once (take_requests) and
// answered by HashControl, or GrefControl for the static grant mappings; a producer index that
// overflows the ring is a fatal guest error for the vif. Each handler serves at most one ring of
// requests and queues the rest behind the other guests' work; a channel that
// keeps firing without requests stays masked for a growing backoff (up to
// 8 ms), so a notification storm cannot keep the io_context busy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/lib/control/asio.h"
#include "backend/lib/control/gref_control.h"
#include "backend/lib/control/hash_control.h"
#include "common/platform/platform.h"
#include "common/protocol/ring.h"

namespace vifd::backend {

class CtrlRing {
 public:
  // Maps `ref` of `domid` and binds its `remote_port` (resume: a previous
  // vifd served this ring; continue after the responses it published, as
  // the data rings do, instead of answering old requests again); throws
  // std::runtime_error naming ctrl-ring-ref or event-channel-ctrl. on_fatal
  // is posted (never called from inside the ring's handlers), so it may
  // destroy this object. static_grants: one handoff per queue to serve the
  // gref mapping messages with; empty: they are answered NOT_SUPPORTED.
  // Destroy this object only after those queues stopped (it unmaps their
  // pages).
  CtrlRing(boost::asio::io_context& io, platform::Platform& platform, platform::DomId domid,
           platform::GrantRef ref, platform::EvtchnPort remote_port, unsigned num_queues,
           std::shared_ptr<FlowSteering> steering, bool resume,
           std::function<void(const std::string&)> on_fatal,
           std::vector<std::shared_ptr<GrefHandoff>> static_grants = {});
  ~CtrlRing();
  CtrlRing(const CtrlRing&) = delete;
  CtrlRing& operator=(const CtrlRing&) = delete;

  const HashControl& hash() const { return *hash_; }
  // nullptr when static grant mappings are not offered.
  const GrefControl* static_grants() const { return grefs_.get(); }
  // Handler runs for the event channel, and events that brought no request.
  std::uint64_t wakeups() const { return wakeups_; }
  std::uint64_t spurious_events() const { return spurious_events_; }

 private:
  // An event that brought no request is spurious; from the second in a row
  // the port stays masked 1 ms, doubling up to this.
  static constexpr std::chrono::milliseconds kSpuriousBackoffMax{8};

  void wait_for_event();
  void on_event();
  // Answers up to one ring of requests; true when there were any.
  bool serve();
  // Queues a serve() after `delay` (serve_posted_ until it runs).
  void serve_after(std::chrono::steady_clock::duration delay);
  // Unmaps what DEL removed once the queues let go of it, polling until
  // nothing waits (a queue acknowledges within a loop turn).
  void reclaim_static_grants();

  boost::asio::io_context& io_;
  platform::DomId domid_;
  std::function<void(const std::string&)> on_fatal_;
  std::unique_ptr<platform::GrantTable> grants_;
  void* page_ = nullptr;
  std::unique_ptr<platform::EventChannels> events_;
  platform::EvtchnPort local_port_ = 0;
  std::optional<protocol::CtrlBackRing> ring_;
  std::unique_ptr<HashControl> hash_;
  std::unique_ptr<GrefControl> grefs_;
  boost::asio::posix::stream_descriptor event_fd_;
  boost::asio::steady_timer unmask_timer_;
  // Paces the serving of a ring its frontend keeps full.
  boost::asio::steady_timer serve_timer_;
  static constexpr std::chrono::milliseconds kRefillPace{2};
  boost::asio::steady_timer reclaim_timer_;
  bool reclaim_posted_ = false;
  static constexpr std::chrono::milliseconds kReclaimPoll{1};
  unsigned spurious_streak_ = 0;
  std::uint64_t wakeups_ = 0;
  std::uint64_t spurious_events_ = 0;
  bool failed_ = false;
  // A serve() for the rest of a full ring is queued on the io_context.
  bool serve_posted_ = false;
  // Our port fired while a paced turn was due: that turn unmasks it.
  bool masked_until_paced_ = false;
  // When a turn last found requests: the next one comes kRefillPace later.
  std::optional<std::chrono::steady_clock::time_point> last_serve_;
  // Handlers still queued when this object goes check it first.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace vifd::backend
