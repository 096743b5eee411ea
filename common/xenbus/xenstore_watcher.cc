#include "common/xenbus/xenstore_watcher.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <exception>

namespace vifd::xenbus {
namespace {

std::atomic<std::uint64_t> next_instance{1};

}  // namespace

XenstoreWatcher::XenstoreWatcher(boost::asio::io_context& io, xs::Client& client,
                                 spdlog::logger& log)
    : io_(io),
      client_(client),
      log_(log),
      descriptor_(io, client.fileno()),
      token_prefix_(fmt::format("vifd-{}-", next_instance.fetch_add(1))) {
  wait_for_events();
}

XenstoreWatcher::~XenstoreWatcher() {
  alive_.reset();
  for (auto& [id, registration] : watches_) {
    if (connection_lost_) {
      break;
    }
    if (registration.suspended) {
      continue;  // not registered in xenstored
    }
    try {
      client_.unwatch(registration.path, registration.token);
    } catch (const xs::XsError& e) {
      log_.warn("unwatching {}: {}", registration.path, e.what());
    }
  }
  // The fd belongs to the xenstore client: cancel our wait, then let go of
  // it without closing.
  boost::system::error_code ignored;
  descriptor_.cancel(ignored);
  descriptor_.release();
}

XenstoreWatcher::WatchId XenstoreWatcher::watch(const std::string& path, Callback callback,
                                                Delivery delivery, Clock::duration min_interval,
                                                FloodLimit flood_limit) {
  const WatchId id = next_id_++;
  Registration registration;
  registration.path = path;
  registration.token = token_prefix_ + std::to_string(id);
  registration.callback = std::make_shared<Callback>(std::move(callback));
  registration.delivery = delivery;
  registration.min_interval =
      delivery == Delivery::kCoalesced ? min_interval : Clock::duration::zero();
  if (delivery == Delivery::kCoalesced) {
    registration.flood_limit = flood_limit;
  }
  registration.window_start = Clock::now();
  client_.watch(registration.path, registration.token);
  watches_.emplace(id, std::move(registration));
  return id;
}

void XenstoreWatcher::unwatch(WatchId id) noexcept {
  const auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  if (!connection_lost_ && !it->second.suspended) {
    try {
      client_.unwatch(it->second.path, it->second.token);
    } catch (const xs::XsError& e) {
      log_.warn("unwatching {}: {}", it->second.path, e.what());
    }
  }
  watches_.erase(it);
}

XenstoreWatcher::Counters XenstoreWatcher::counters(WatchId id) const {
  const auto it = watches_.find(id);
  return it == watches_.end() ? Counters{} : it->second.counters;
}

void XenstoreWatcher::wait_for_events() {
  descriptor_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                         [this](const boost::system::error_code& error) {
                           if (error) {
                             return;  // cancelled: the watcher is going away
                           }
                           continue_dispatch();
                         });
}

void XenstoreWatcher::continue_dispatch() {
  if (!dispatch_pending()) {
    wait_for_events();
    return;
  }
  // More may be queued inside the client, where the fd need not tell (a
  // client without a reader thread): come back after everything already
  // posted has run.
  boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_)] {
    if (!alive.expired()) {
      continue_dispatch();
    }
  });
}

bool XenstoreWatcher::dispatch_pending() {
  for (std::size_t taken = 0; taken < kEventsPerTurn; ++taken) {
    auto event = client_.check_watch();
    if (!event) {
      return false;
    }
    if (!event->token.starts_with(token_prefix_)) {
      continue;
    }
    WatchId id = 0;
    const std::string_view digits = std::string_view(event->token).substr(token_prefix_.size());
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (ec != std::errc() || end != digits.data() + digits.size()) {
      continue;
    }
    const auto it = watches_.find(id);
    if (it == watches_.end()) {
      continue;  // removed while the event was queued
    }
    Registration& registration = it->second;
    ++registration.counters.received;
    suspend_if_flooded(id, registration);
    if (registration.delivery == Delivery::kCoalesced) {
      if (registration.pending) {
        ++registration.counters.coalesced;
        continue;
      }
      registration.pending = true;
    }
    schedule(id, registration, std::move(event->path));
  }
  return true;
}

void XenstoreWatcher::schedule(WatchId id, Registration& registration, std::string path) {
  const Clock::time_point due = registration.last_delivery + registration.min_interval;
  if (registration.min_interval == Clock::duration::zero() || Clock::now() >= due) {
    boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), id, path = std::move(path)] {
      if (!alive.expired()) {
        deliver(id, path);
      }
    });
    return;
  }
  ++registration.counters.paced;
  if (!registration.pacing_timer) {
    registration.pacing_timer = std::make_unique<boost::asio::steady_timer>(io_);
  }
  registration.pacing_timer->expires_at(due);
  registration.pacing_timer->async_wait(
      [this, alive = std::weak_ptr<bool>(alive_), id,
       path = std::move(path)](const boost::system::error_code& error) {
        // Cancelled: the watch (and its timer) went away.
        if (!error && !alive.expired()) {
          deliver(id, path);
        }
      });
}

void XenstoreWatcher::suspend_if_flooded(WatchId id, Registration& registration) {
  const FloodLimit& limit = registration.flood_limit;
  if (limit.events == 0 || registration.suspended || connection_lost_) {
    return;
  }
  const Clock::time_point now = Clock::now();
  if (now - registration.window_start > limit.window) {
    registration.window_start = now;
    registration.window_events = 0;
  }
  if (++registration.window_events <= limit.events) {
    return;
  }
  try {
    client_.unwatch(registration.path, registration.token);
  } catch (const xs::XsError& e) {
    // Still registered, as far as we know: keep serving it coalesced.
    log_.warn("suspending the flooded watch on {}: {}", registration.path, e.what());
    return;
  }
  registration.suspended = true;
  ++registration.counters.suspended;
  const bool flood_goes_on = registration.suspension != Clock::duration::zero() &&
                             now - registration.resumed_at <= limit.window;
  registration.suspension = flood_goes_on
                                ? std::min(2 * registration.suspension, limit.longest_suspension)
                                : limit.first_suspension;
  const auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  // The first suspension is worth an operator's attention; a flood that goes
  // on would otherwise write a line per second.
  log_.log(registration.counters.suspended == 1 ? spdlog::level::warn : spdlog::level::debug,
           "watch on {} suspended for {} ms: more than {} events in {} ms ({} suspension(s) so "
           "far)",
           registration.path, ms(registration.suspension), limit.events, ms(limit.window),
           registration.counters.suspended);
  resume_later(id, registration);
}

void XenstoreWatcher::resume_later(WatchId id, Registration& registration) {
  if (!registration.resume_timer) {
    registration.resume_timer = std::make_unique<boost::asio::steady_timer>(io_);
  }
  registration.resume_timer->expires_after(registration.suspension);
  registration.resume_timer->async_wait(
      [this, alive = std::weak_ptr<bool>(alive_), id](const boost::system::error_code& error) {
        // Cancelled: the watch (and its timer) went away.
        if (!error && !alive.expired()) {
          resume(id);
        }
      });
}

void XenstoreWatcher::resume(WatchId id) {
  const auto it = watches_.find(id);
  if (it == watches_.end() || connection_lost_) {
    return;
  }
  Registration& registration = it->second;
  try {
    // xenstored answers with the registration's event: the callback re-reads
    // whatever changed while the watch was away.
    client_.watch(registration.path, registration.token);
  } catch (const xs::XsError& e) {
    log_.warn(
        "watching {} again after a flood: {}; trying again in {} ms", registration.path, e.what(),
        std::chrono::duration_cast<std::chrono::milliseconds>(registration.suspension).count());
    resume_later(id, registration);
    return;
  }
  registration.suspended = false;
  registration.resumed_at = Clock::now();
  registration.window_start = registration.resumed_at;
  registration.window_events = 0;
}

void XenstoreWatcher::deliver(WatchId id, const std::string& path) {
  const auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;  // removed while the callback was posted
  }
  it->second.pending = false;
  ++it->second.counters.delivered;
  // Hold the callback: it may unwatch itself while it runs.
  const std::shared_ptr<Callback> callback = it->second.callback;
  // A handler that lets an exception escape is a bug in that handler, but
  // it must not take the whole control plane (every other vif) down.
  try {
    (*callback)(path);
  } catch (const std::exception& e) {
    log_.error("watch handler for {}: {}", path, e.what());
  }
  // Paced from the callback's end: the next one starts at least the interval
  // after this one returned, however long it ran. (The callback may have
  // removed its watch.)
  const auto after = watches_.find(id);
  if (after != watches_.end()) {
    after->second.last_delivery = Clock::now();
  }
}

}  // namespace vifd::xenbus
