// Xenstore watches on an io_context (a daemon's control plane).
//
// One xs::Client per control plane; its watch fd (Client::fileno) is waited
// on with an Asio stream_descriptor, so watch callbacks run as ordinary
// handlers on the control-plane thread and never block it: events are
// drained with the non-blocking check_watch().
//
// Each watch() gets its own token; a callback receives the path that fired.
// Callbacks may add or remove watches (including their own) while running,
// and events still queued for a removed watch are dropped.
//
// Every callback runs as a handler of its own, posted to the io_context, and
// at most kEventsPerTurn events are taken from the client per turn: one
// watch firing without pause cannot keep the loop from the control socket
// or from other devices' handlers. A coalesced watch (what a device whose
// peer may be hostile asks for, as Linux's xenbus drops events while one is
// pending for a watch) has at most one callback pending: events arriving
// meanwhile are dropped and counted, since the callback re-reads what it
// needs anyway. The pending mark is cleared before the callback runs, so a
// change made while it runs still gets an event of its own.
//
// Coalescing bounds the callbacks, not the events: each write to a watched
// node still wakes xenstored's connection, libxenstore's reader thread and
// this loop. A coalesced watch given a FloodLimit is therefore suspended
// (unwatched in xenstored) when its events come faster than the limit, and
// registered again after a back-off that doubles while the flood goes on;
// the registration's own event then delivers one callback that re-reads
// the node. A guest rewriting its keys in a loop so costs this process a
// few hundred events and one unwatch/watch pair per second, and only its
// own device waits (at most longest_suspension) for a change to be seen.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

// clang-format off
// GCC 12 at -O2 reports -Wnull-dereference inside Asio's scheduler after
// inlining (see backend/lib/control/asio.h); disabled for Asio's headers only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#pragma GCC diagnostic pop
// clang-format on

#include "common/xenstore/client.h"

namespace vifd::xenbus {

// When a coalesced XenstoreWatcher watch is suspended: more than `events` events within
// `window`. Suspended first for `first_suspension`, doubled on every
// suspension that follows within `window` of the watch's return, up to
// `longest_suspension`. events == 0: never suspended.
struct WatchFloodLimit {
  std::uint32_t events = 0;
  std::chrono::steady_clock::duration window{};
  std::chrono::steady_clock::duration first_suspension{};
  std::chrono::steady_clock::duration longest_suspension{};
};

class XenstoreWatcher {
 public:
  using Callback = std::function<void(const std::string& path)>;
  using WatchId = std::uint64_t;
  using Clock = std::chrono::steady_clock;

  enum class Delivery {
    kEveryEvent,  // one callback per event, with its path
    kCoalesced,   // at most one callback pending per watch
  };

  struct Counters {
    std::uint64_t delivered = 0;  // callbacks run
    std::uint64_t coalesced = 0;  // events dropped while a callback was pending
    std::uint64_t paced = 0;      // callbacks held back to keep min_interval
    std::uint64_t received = 0;   // events taken from the client
    std::uint64_t suspended = 0;  // times the watch was suspended for a flood
  };

  using FloodLimit = WatchFloodLimit;

  // Events taken from the client before the loop gets a turn.
  static constexpr std::size_t kEventsPerTurn = 64;

  // `log` receives what cannot be reported to anyone else: failed unwatches
  // and exceptions escaping a callback.
  XenstoreWatcher(boost::asio::io_context& io, xs::Client& client, spdlog::logger& log);
  ~XenstoreWatcher();
  XenstoreWatcher(const XenstoreWatcher&) = delete;
  XenstoreWatcher& operator=(const XenstoreWatcher&) = delete;

  xs::Client& client() { return client_; }
  spdlog::logger& log() { return log_; }

  // Watches `path` and everything below it. As xenstored does, the first
  // event arrives right after registration. `min_interval` and
  // `flood_limit` apply to a coalesced watch only.
  WatchId watch(const std::string& path, Callback callback,
                Delivery delivery = Delivery::kEveryEvent,
                Clock::duration min_interval = Clock::duration::zero(),
                FloodLimit flood_limit = {});
  // Safe for an unknown or already removed id.
  void unwatch(WatchId id) noexcept;
  // The connection to xenstored is gone, and its watches with it: unwatch
  // (and the destructor) no longer ask xenstored, which could only fail.
  void connection_lost() noexcept { connection_lost_ = true; }
  // Zero for an unknown id.
  Counters counters(WatchId id) const;

 private:
  struct Registration {
    std::string path;
    std::string token;
    std::shared_ptr<Callback> callback;
    Delivery delivery = Delivery::kEveryEvent;
    Clock::duration min_interval = Clock::duration::zero();
    bool pending = false;
    Clock::time_point last_delivery;
    // Made on the first paced callback; destroyed (its wait cancelled) with
    // the registration.
    std::unique_ptr<boost::asio::steady_timer> pacing_timer;
    FloodLimit flood_limit;
    Clock::time_point window_start;
    std::uint32_t window_events = 0;
    // Unwatched in xenstored until resume_timer fires.
    bool suspended = false;
    Clock::duration suspension = Clock::duration::zero();
    Clock::time_point resumed_at;
    std::unique_ptr<boost::asio::steady_timer> resume_timer;
    Counters counters;
  };

  void wait_for_events();
  // Takes up to kEventsPerTurn events; true when there may be more.
  bool dispatch_pending();
  void continue_dispatch();
  void schedule(WatchId id, Registration& registration, std::string path);
  // Counts an event against the flood limit and suspends the watch when it
  // is exceeded.
  void suspend_if_flooded(WatchId id, Registration& registration);
  void resume_later(WatchId id, Registration& registration);
  void resume(WatchId id);
  void deliver(WatchId id, const std::string& path);

  boost::asio::io_context& io_;
  xs::Client& client_;
  spdlog::logger& log_;
  boost::asio::posix::stream_descriptor descriptor_;
  std::map<WatchId, Registration> watches_;
  WatchId next_id_ = 1;
  // Tokens are "vifd-<id>-<instance>": the instance keeps tokens of two
  // watchers sharing one client process apart.
  std::string token_prefix_;
  // Handlers posted by this watcher hold it weakly: they may still be queued
  // when it is destroyed.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool connection_lost_ = false;
};

}  // namespace vifd::xenbus
