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
#pragma once

#include <spdlog/logger.h>

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
#pragma GCC diagnostic pop
// clang-format on

#include "common/xenstore/client.h"

namespace vifd::xenbus {

class XenstoreWatcher {
 public:
  using Callback = std::function<void(const std::string& path)>;
  using WatchId = std::uint64_t;

  // `log` receives what cannot be reported to anyone else: failed unwatches
  // and exceptions escaping a callback.
  XenstoreWatcher(boost::asio::io_context& io, xs::Client& client, spdlog::logger& log);
  ~XenstoreWatcher();
  XenstoreWatcher(const XenstoreWatcher&) = delete;
  XenstoreWatcher& operator=(const XenstoreWatcher&) = delete;

  xs::Client& client() { return client_; }
  spdlog::logger& log() { return log_; }

  // Watches `path` and everything below it. As xenstored does, the first
  // event arrives right after registration.
  WatchId watch(const std::string& path, Callback callback);
  // Safe for an unknown or already removed id.
  void unwatch(WatchId id) noexcept;

 private:
  struct Registration {
    std::string path;
    std::string token;
    std::shared_ptr<Callback> callback;
  };

  void wait_for_events();
  void dispatch_pending();

  xs::Client& client_;
  spdlog::logger& log_;
  boost::asio::posix::stream_descriptor descriptor_;
  std::map<WatchId, Registration> watches_;
  WatchId next_id_ = 1;
  // Tokens are "vifd-<id>-<instance>": the instance keeps tokens of two
  // watchers sharing one client process apart.
  std::string token_prefix_;
};

}  // namespace vifd::xenbus
