#include "backend/lib/control/host_port_worker.h"

#include <pthread.h>

#include <exception>
#include <utility>

namespace vifd::backend {

HostPortWorker::HostPortWorker(boost::asio::io_context& io) : io_(io) {
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "vifd-hostport");
    run();
  });
}

HostPortWorker::~HostPortWorker() {
  alive_.reset();
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void HostPortWorker::submit(Job job, Done done) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(Entry{std::move(job), std::move(done)});
    ++counters_.pending;
  }
  wake_.notify_one();
}

void HostPortWorker::drain() {
  std::unique_lock lock(mutex_);
  drained_.wait(lock, [this] { return jobs_.empty() && !running_job_; });
}

HostPortWorker::Counters HostPortWorker::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

void HostPortWorker::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) {
      return;  // stopping, and everything queued has run
    }
    Entry entry = std::move(jobs_.front());
    jobs_.pop_front();
    running_job_ = true;
    lock.unlock();

    const auto began = std::chrono::steady_clock::now();
    std::optional<std::string> error;
    try {
      entry.job();
    } catch (const std::exception& e) {
      error = e.what();
    }
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
    // The job's captures (a HostPort among them) go here, on this thread:
    // closing a TAP's last queue takes the rtnl lock too.
    entry.job = nullptr;
    const bool failed = error.has_value();
    if (entry.done) {
      boost::asio::post(
          io_, [alive = alive_weak_, done = std::move(entry.done), error = std::move(error)] {
            if (!alive.expired()) {
              done(error);
            }
          });
    }

    lock.lock();
    running_job_ = false;
    ++counters_.jobs_run;
    if (failed) {
      ++counters_.jobs_failed;
    }
    --counters_.pending;
    if (ms > counters_.longest_job_ms) {
      counters_.longest_job_ms = ms;
    }
    if (jobs_.empty()) {
      drained_.notify_all();
    }
  }
}

}  // namespace vifd::backend
