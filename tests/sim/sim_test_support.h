// A throw-away sim host per test, and a forked child acting as a domain.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#include "common/platform/platform.h"
#include "common/platform/sim/host.h"
#include "common/platform/sim/sim_host.h"
#include "common/platform/sim/sim_platform.h"

namespace vifd::sim::testing {

// A host in a fresh /tmp directory with domains 1 and 2 besides dom0.
class SimHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/vsim-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    create_host(dir_);
    create_domain(dir_, 1);
    create_domain(dir_, 2);
  }
  void TearDown() override {
    destroy_host(dir_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<platform::Platform> join(platform::DomId domid) const {
    return platform::make_sim_platform(dir_.native(), domid);
  }

  // The hypervisor's active word of (domid, ref): pins and the deferred-free bit.
  std::uint32_t active_word(platform::DomId domid, platform::GrantRef ref) const {
    auto host = detail::Host::open(dir_);
    auto [mapping, meta] = host->map_domain_meta(domid);
    return detail::shared(meta->active[ref]).load();
  }
  bool page_in_use(platform::DomId domid, std::uint32_t frame) const {
    auto host = detail::Host::open(dir_);
    auto [mapping, meta] = host->map_domain_meta(domid);
    return (detail::shared(meta->page_bitmap[frame / 64]).load() >> (frame % 64) & 1) != 0;
  }
  std::uint32_t granted_frame(platform::DomId domid, platform::GrantRef ref) const {
    auto host = detail::Host::open(dir_);
    auto [mapping, meta] = host->map_domain_meta(domid);
    return detail::shared(meta->grant_entries[ref].frame).load();
  }

  std::filesystem::path dir_;
};

// A child process that runs `body` and exits with its result; killed and
// reaped if the test ends before it does.
class Child {
 public:
  explicit Child(const std::function<int()>& body) {
    pid_ = ::fork();
    if (pid_ == 0) {
      int rc = 1;
      try {
        rc = body();
      } catch (const std::exception& error) {
        std::fprintf(stderr, "child: %s\n", error.what());
        rc = 2;
      }
      ::_exit(rc);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool started() const { return pid_ > 0; }
  // kill -9 and reap: the child dies holding whatever it holds.
  void kill_now() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  // The child's exit status, or -1 if it did not exit normally.
  int wait() {
    int status = 0;
    const pid_t reaped = ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return reaped > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
};

// Both ends of a pipe, closed on destruction.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() {
    int fds[2];
    if (::pipe(fds) == 0) {
      read_end = fds[0];
      write_end = fds[1];
    }
  }
  ~Pipe() {
    ::close(read_end);
    ::close(write_end);
  }
  template <typename T>
  bool send(const T& value) const {
    return ::write(write_end, &value, sizeof(value)) == static_cast<ssize_t>(sizeof(value));
  }
  template <typename T>
  bool receive(T& value) const {
    std::size_t got = 0;
    auto* bytes = reinterpret_cast<char*>(&value);
    while (got < sizeof(value)) {
      const ssize_t n = ::read(read_end, bytes + got, sizeof(value) - got);
      if (n <= 0) return false;
      got += static_cast<std::size_t>(n);
    }
    return true;
  }
};

}  // namespace vifd::sim::testing
