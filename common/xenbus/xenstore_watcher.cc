#include "common/xenbus/xenstore_watcher.h"

#include <fmt/format.h>

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
                                                Delivery delivery, Clock::duration min_interval) {
  const WatchId id = next_id_++;
  Registration registration;
  registration.path = path;
  registration.token = token_prefix_ + std::to_string(id);
  registration.callback = std::make_shared<Callback>(std::move(callback));
  registration.delivery = delivery;
  registration.min_interval =
      delivery == Delivery::kCoalesced ? min_interval : Clock::duration::zero();
  client_.watch(registration.path, registration.token);
  watches_.emplace(id, std::move(registration));
  return id;
}

void XenstoreWatcher::unwatch(WatchId id) noexcept {
  const auto it = watches_.find(id);
  if (it == watches_.end()) {
    return;
  }
  if (!connection_lost_) {
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
