// The thread that talks to the kernel about host ports (TAP devices).
//
// Every TAP ioctl (TUNSETCARRIER, TUNSETOFFLOAD, TUNSETQUEUE) and the close
// of a TAP's last queue takes the kernel's rtnl lock, which anything on the
// host may hold for a long time (a network namespace torn down, a bridge
// with many ports, another daemon's netlink dump): hundreds of milliseconds,
// seconds under load. Done on the control thread every vif shares, a guest
// that reconnects would make the whole control plane (the other guests'
// handshakes, the control socket) wait for the host's rtnl lock. The steps
// a guest can cause (connect: offloads, queue attach, carrier on;
// disconnect: carrier off; removal: closing the TAP) run here instead, one
// after another in the order they were submitted, so a vif's carrier-off
// can never overtake the carrier-on before it.
//
// A job owns what it touches (a shared HostPort, never a raw fd that the
// control thread could close and the kernel hand out again). Its outcome is
// posted back to the io_context.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "backend/lib/control/asio.h"

namespace vifd::backend {

class HostPortWorker {
 public:
  using Job = std::function<void()>;
  // Runs on the io_context: std::nullopt, or what the job threw.
  using Done = std::function<void(const std::optional<std::string>& error)>;

  struct Counters {
    std::uint64_t jobs_run = 0;
    std::uint64_t jobs_failed = 0;
    std::size_t pending = 0;    // submitted, not finished
    double longest_job_ms = 0;  // the worst wait the host imposed
  };

  explicit HostPortWorker(boost::asio::io_context& io);
  // Runs what is still queued (a TAP released last must still be closed),
  // then joins. Completions not yet delivered are dropped.
  ~HostPortWorker();
  HostPortWorker(const HostPortWorker&) = delete;
  HostPortWorker& operator=(const HostPortWorker&) = delete;

  // Queues `job` behind every job submitted before it.
  void submit(Job job, Done done = {});
  // Blocks the caller until every job submitted so far has run. For the
  // steps that must not overtake them and need the result at once
  // (creating a TAP whose name an old one, queued for closing, still holds).
  void drain();
  Counters counters() const;

 private:
  struct Entry {
    Job job;
    Done done;
  };
  void run();

  boost::asio::io_context& io_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<Entry> jobs_;
  bool running_job_ = false;
  bool stopping_ = false;
  Counters counters_;
  // Completions posted after the worker is gone are dropped. The thread
  // reads only the weak copy, which never changes.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  const std::weak_ptr<bool> alive_weak_ = alive_;
  std::thread thread_;
};

}  // namespace vifd::backend
