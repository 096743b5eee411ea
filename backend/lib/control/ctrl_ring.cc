#include "backend/lib/control/ctrl_ring.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <system_error>

#include "backend/lib/control/log.h"
#include "common/platform/error.h"

namespace vifd::backend {

CtrlRing::CtrlRing(boost::asio::io_context& io, platform::Platform& platform, platform::DomId domid,
                   platform::GrantRef ref, platform::EvtchnPort remote_port, unsigned num_queues,
                   std::shared_ptr<FlowSteering> steering, bool resume,
                   std::function<void(const std::string&)> on_fatal,
                   std::vector<std::shared_ptr<GrefHandoff>> static_grants)
    : io_(io),
      domid_(domid),
      on_fatal_(std::move(on_fatal)),
      grants_(platform.open_grant_table()),
      event_fd_(io),
      unmask_timer_(io),
      serve_timer_(io),
      reclaim_timer_(io) {
  const platform::DomId domids[] = {domid};
  const platform::GrantRef refs[] = {ref};
  try {
    page_ = grants_->map(domids, refs, true);
  } catch (const platform::PlatformError& e) {
    throw std::runtime_error(
        fmt::format("ctrl-ring-ref: cannot map grant {} of domain {}: {}", ref, domid, e.what()));
  }
  try {
    events_ = platform.open_event_channels();
    local_port_ = events_->bind_interdomain(domid, remote_port);
  } catch (const platform::PlatformError& e) {
    grants_->unmap(page_, 1);
    throw std::runtime_error(fmt::format("event-channel-ctrl: cannot bind port {} of domain {}: {}",
                                         remote_port, domid, e.what()));
  }
  const std::span<std::byte> shared(static_cast<std::byte*>(page_), platform::kPageSize);
  ring_.emplace(resume ? protocol::CtrlBackRing::resume(shared) : protocol::CtrlBackRing(shared));
  hash_ = std::make_unique<HashControl>(*grants_, domid, num_queues, std::move(steering));
  if (!static_grants.empty()) {
    grefs_ = std::make_unique<GrefControl>(platform, *grants_, domid, std::move(static_grants));
  }
  event_fd_.assign(events_->fd());
  // Requests the frontend queued before we bound (its notification may have
  // gone nowhere) are answered now.
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) {
      serve();
    }
  });
  wait_for_event();
}

CtrlRing::~CtrlRing() {
  // The fd belongs to events_: Asio must forget it without closing it.
  boost::system::error_code ignored;
  event_fd_.cancel(ignored);
  event_fd_.release();
  alive_.reset();
  grefs_.reset();   // unmaps the static grants (the queues have stopped)
  events_.reset();  // closing the handle unbinds the port
  try {
    grants_->unmap(page_, 1);
  } catch (const platform::PlatformError& e) {
    control_log().error("unmapping the ctrl ring of domain {}: {}", domid_, e.what());
  }
}

void CtrlRing::wait_for_event() {
  event_fd_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
        if (alive.expired() || error) {
          return;
        }
        on_event();
      });
}

void CtrlRing::on_event() {
  ++wakeups_;
  // Includes the spurious event a fresh interdomain binding delivers.
  bool fired = false;
  while (const auto port = events_->pending()) {
    if (*port == local_port_) {
      fired = true;
    } else {
      events_->unmask(*port);
    }
  }
  const auto now = std::chrono::steady_clock::now();
  if (!serve_posted_ && last_serve_ && now - *last_serve_ < kRefillPace) {
    serve_after(*last_serve_ + kRefillPace - now);
  }
  if (serve_posted_) {
    // A paced turn is due: the ring waits for it, and the port stays masked
    // until then, so a frontend notifying in a loop buys no extra turn (it
    // only sets the masked port's pending bit).
    masked_until_paced_ = masked_until_paced_ || fired;
    wait_for_event();
    return;
  }
  const bool work = serve();
  if (failed_) {
    return;
  }
  if (fired) {
    if (work) {
      spurious_streak_ = 0;
    } else {
      ++spurious_events_;
      if (spurious_streak_ < 32) {
        ++spurious_streak_;
      }
    }
    if (spurious_streak_ < 2) {
      events_->unmask(local_port_);
    } else {
      // Late EOI with backoff, as the data path does: a frontend notifying
      // in a loop only sets the masked port's pending bit until then.
      const auto backoff = std::min<std::chrono::milliseconds>(
          std::chrono::milliseconds(std::int64_t{1} << std::min(spurious_streak_ - 2, 16U)),
          kSpuriousBackoffMax);
      unmask_timer_.expires_after(backoff);
      unmask_timer_.async_wait(
          [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
            if (alive.expired() || error || failed_) {
              return;
            }
            events_->unmask(local_port_);
          });
    }
  }
  wait_for_event();
}

bool CtrlRing::serve() {
  if (failed_) {
    return false;
  }
  // One ring of requests per call: a frontend that keeps the ring full gets
  // its next batch only after every other handler queued on the control
  // plane's io_context ran, never a loop of its own.
  std::array<protocol::CtrlRequest, protocol::kCtrlRingSizeOnePage> requests;
  const auto taken = ring_->take_requests(requests);
  if (taken.status == protocol::RingStatus::kProducerOverflow) {
    failed_ = true;
    boost::asio::post(io_, [on_fatal = on_fatal_] {
      on_fatal("ctrl-ring-ref: request producer index overflows the control ring");
    });
    return false;
  }
  std::size_t answered = 0;
  // take_requests consumed exactly these, so a response slot is owed to
  // each; push_response cannot refuse.
  const auto answer = [this](const protocol::CtrlRequest& request) {
    return grefs_ && GrefControl::handles(request.type) ? grefs_->handle(request)
                                                        : hash_->handle(request);
  };
  while (answered < taken.count && ring_->push_response(answer(requests[answered]))) {
    ++answered;
  }
  if (answered != 0) {
    reclaim_static_grants();
  }
  if (answered != 0 && ring_->push_responses_and_check_notify()) {
    if (const int rc = events_->notify(local_port_); rc < 0) {
      control_log().error("ctrl ring of domain {}: notify port {}: {}", domid_, local_port_,
                          std::generic_category().message(-rc));
    }
  }
  if (taken.count != 0) {
    last_serve_ = std::chrono::steady_clock::now();
  }
  // The ring was refilled while we answered it: the rest waits for a paced
  // turn.
  if (ring_->final_check_for_requests() && !serve_posted_) {
    serve_after(kRefillPace);
  }
  return taken.count != 0;
}

void CtrlRing::reclaim_static_grants() {
  if (!grefs_ || reclaim_posted_ || !grefs_->reclaim()) {
    return;
  }
  reclaim_posted_ = true;
  reclaim_timer_.expires_after(kReclaimPoll);
  reclaim_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
        if (alive.expired() || error) {
          return;
        }
        reclaim_posted_ = false;
        reclaim_static_grants();
      });
}

void CtrlRing::serve_after(std::chrono::steady_clock::duration delay) {
  // Configuring a hash takes a few requests; a frontend that keeps the ring
  // full, or notifies in a loop, gets at most one ring per kRefillPace, so
  // its cost to the control thread is bounded however fast it writes.
  serve_posted_ = true;
  serve_timer_.expires_after(delay);
  serve_timer_.async_wait(
      [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& error) {
        if (alive.expired() || error) {
          return;
        }
        serve_posted_ = false;
        serve();
        if (masked_until_paced_ && !failed_) {
          masked_until_paced_ = false;
          events_->unmask(local_port_);
        }
      });
}

}  // namespace vifd::backend
