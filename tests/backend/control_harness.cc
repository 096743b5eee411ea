#include "tests/backend/control_harness.h"

#include <dirent.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/protocol/ring.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend::testing {

using xenbus::join;
using xs::Access;
using xs::Perm;

std::string backend_path(platform::DomId domid, std::uint32_t devid) {
  return xenbus::backend_path(0, {domid, devid});
}

std::string frontend_path(platform::DomId domid, std::uint32_t devid) {
  return xenbus::frontend_path({domid, devid});
}

KeyValues key_values(std::initializer_list<std::pair<std::string_view, std::string_view>> entries) {
  KeyValues values;
  for (const auto& [name, value] : entries) {
    values.emplace(name, value);
  }
  return values;
}

Toolstack::Toolstack(const vifd::testing::SimHostProcess& host) : xenstore_(host.xenstore(0)) {}

void Toolstack::attach(platform::DomId domid, std::uint32_t devid, const AttachOptions& options) {
  const std::string back = backend_path(domid, devid);
  const std::string front = frontend_path(domid, devid);
  KeyValues backend_keys = key_values({{key::kFrontend, front},
                                       {key::kFrontendId, std::to_string(domid)},
                                       {key::kHandle, std::to_string(devid)},
                                       {key::kMac, options.mac},
                                       {key::kOnline, "1"},
                                       {key::kState, "1"},
                                       {key::kType, "vif"},
                                       {key::kHotplugStatus, ""}});
  const auto set = [&backend_keys](std::string_view name, const std::optional<std::string>& value) {
    if (value) {
      backend_keys[std::string(name)] = *value;
    }
  };
  set(key::kBridge, options.bridge);
  set(key::kScript, options.script);
  set(key::kRate, options.rate);
  set(key::kMtu, options.mtu);
  for (const auto& [name, value] : options.backend_overrides) {
    backend_keys[name] = value;
  }
  const KeyValues frontend_keys = key_values({{key::kBackend, back},
                                              {key::kBackendId, "0"},
                                              {key::kHandle, std::to_string(devid)},
                                              {key::kMac, options.mac},
                                              {key::kMtu, "1500"},
                                              {key::kState, "1"},
                                              {key::kTrusted, "1"}});
  // As libxl: the directories with their permissions first (children
  // inherit them), then the keys, all in one transaction.
  xenstore_.transact([&](xs::TxId tx) {
    xenstore_.mkdir(back, tx);
    xenstore_.set_perms(back, {Perm{0, Access::kNone}, Perm{domid, Access::kRead}}, tx);
    xenstore_.mkdir(front, tx);
    xenstore_.set_perms(front, {Perm{domid, Access::kNone}, Perm{0, Access::kRead}}, tx);
    for (const auto& [name, value] : backend_keys) {
      xenstore_.write(join(back, name), value, tx);
    }
    for (const auto& [name, value] : frontend_keys) {
      xenstore_.write(join(front, name), value, tx);
    }
  });
}

void Toolstack::request_detach(platform::DomId domid, std::uint32_t devid) {
  const std::string back = backend_path(domid, devid);
  xenstore_.transact([&](xs::TxId tx) {
    xenstore_.write(join(back, key::kOnline), "0", tx);
    xenstore_.write(join(back, key::kState), "5", tx);
  });
}

void Toolstack::remove(platform::DomId domid, std::uint32_t devid) {
  xenstore_.transact([&](xs::TxId tx) {
    xenstore_.rm(backend_path(domid, devid), tx);
    xenstore_.rm(frontend_path(domid, devid), tx);
  });
}

TestFrontend::TestFrontend(const vifd::testing::SimHostProcess& host, platform::DomId domid,
                           std::uint32_t devid)
    : domid_(domid),
      devid_(devid),
      platform_(host.platform(domid)),
      share_(platform_->open_grant_share()),
      events_(platform_->open_event_channels()),
      xenstore_(host.xenstore(domid)) {}

TestFrontend::~TestFrontend() {
  release();
}

void TestFrontend::release() {
  for (void* pages : pages_) {
    share_->unshare(pages, 2);
  }
  pages_.clear();
  for (const auto port : ports_) {
    events_->unbind(port);
  }
  ports_.clear();
}

std::byte* TestFrontend::tx_ring(unsigned queue) const {
  return static_cast<std::byte*>(pages_.at(queue));
}

void TestFrontend::connect(const FrontendOptions& options) {
  release();
  KeyValues keys = key_values({{key::kRequestRxCopy, "1"},
                               {key::kFeatureRxNotify, "1"},
                               {key::kFeatureSg, options.sg ? "1" : "0"},
                               {key::kFeatureGsoTcpv4, options.gso ? "1" : "0"},
                               {key::kFeatureGsoTcpv6, options.gso ? "1" : "0"},
                               {key::kFeatureNoCsumOffload, options.csum ? "0" : "1"},
                               {key::kFeatureIpv6CsumOffload, options.csum ? "1" : "0"}});
  if (options.queues > 1 || options.write_num_queues) {
    keys[std::string(key::kMultiQueueNumQueues)] = std::to_string(options.queues);
  }
  for (unsigned q = 0; q < options.queues; ++q) {
    const auto queue_key = [&](std::string_view name) {
      return key::queue_key(q, options.queues, name);
    };
    platform::GrantRef refs[2] = {};
    void* pages = share_->share(0, refs, true);
    pages_.push_back(pages);
    auto* bytes = static_cast<std::byte*>(pages);
    protocol::FrontRing<protocol::TxRequest, protocol::TxResponse>::init(
        std::span<std::byte>(bytes, platform::kPageSize));
    protocol::FrontRing<protocol::RxRequest, protocol::RxResponse>::init(
        std::span<std::byte>(bytes + platform::kPageSize, platform::kPageSize));
    keys[queue_key(key::kTxRingRef)] = std::to_string(refs[0]);
    keys[queue_key(key::kRxRingRef)] = std::to_string(refs[1]);
    if (options.split_event_channels) {
      const auto tx = events_->bind_unbound(0);
      const auto rx = events_->bind_unbound(0);
      ports_.push_back(tx);
      ports_.push_back(rx);
      keys[queue_key(key::kEventChannelTx)] = std::to_string(tx);
      keys[queue_key(key::kEventChannelRx)] = std::to_string(rx);
    } else {
      const auto port = events_->bind_unbound(0);
      ports_.push_back(port);
      keys[queue_key(key::kEventChannel)] = std::to_string(port);
    }
  }
  for (const auto& [name, value] : options.overrides) {
    keys[name] = value;
  }
  const std::string front = frontend_path(domid_, devid_);
  xenstore_.transact([&](xs::TxId tx) {
    for (const auto& [name, value] : keys) {
      if (value.empty()) {
        xenstore_.rm(join(front, name), tx);
      } else {
        xenstore_.write(join(front, name), value, tx);
      }
    }
    xenstore_.write(join(front, key::kState), "4", tx);
  });
}

void TestFrontend::set_state(int state) {
  xenstore_.write(join(frontend_path(domid_, devid_), key::kState), std::to_string(state));
}

std::optional<std::string> TestFrontend::read(std::string_view name) {
  return xenstore_.read(join(frontend_path(domid_, devid_), name));
}

DaemonThread::DaemonThread(const vifd::testing::SimHostProcess& host, DaemonOptions options,
                           std::unique_ptr<platform::Platform> platform)
    : platform_(platform ? std::move(platform) : host.platform(0)), xenstore_(host.xenstore(0)) {
  daemon_ = std::make_unique<VifBackendDaemon>(io_, *platform_, xenstore_, std::move(options));
  thread_ = std::thread([this] {
    daemon_->start();
    io_.run();
  });
}

DaemonThread::~DaemonThread() {
  stop(false);
}

void DaemonThread::stop(bool close_vifs) {
  if (stopped_) {
    return;
  }
  stopped_ = true;
  boost::asio::post(io_, [this, close_vifs] {
    daemon_->shutdown(close_vifs);
    io_.stop();
  });
  thread_.join();
  daemon_.reset();
}

void ControlPlaneTest::SetUp() {
  ASSERT_EQ(::getuid(), 0U) << "vifd creates TAPs: the control-plane tests need root";
  ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "unshare(CLONE_NEWNET): " << std::strerror(errno);
  host_ = std::make_unique<vifd::testing::SimHostProcess>();
  for (platform::DomId domid = 1; domid <= 3; ++domid) {
    host_->create_domain(domid);
  }
  toolstack_ = std::make_unique<Toolstack>(*host_);
}

std::string ControlPlaneTest::backend_key(platform::DomId domid, std::uint32_t devid,
                                          std::string_view name) {
  return toolstack_->xenstore().read(join(backend_path(domid, devid), name)).value_or("");
}

bool ControlPlaneTest::backend_state_becomes(platform::DomId domid, std::uint32_t devid,
                                             const std::string& state) {
  return static_cast<bool>(
      eventually([&] { return backend_key(domid, devid, key::kState) == state; }));
}

DaemonOptions ControlPlaneTest::options(unsigned max_queues) const {
  DaemonOptions options;
  options.max_queues = max_queues;
  return options;
}

nlohmann::json ask_control_socket(const std::string& socket_path, const std::string& request,
                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  const auto remaining_ms = [&deadline] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
  };
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return nullptr;
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path.copy(address.sun_path, sizeof address.sun_path - 1);
  std::string response;
  bool answered = false;
  // A unix-socket connect completes at once or fails (EAGAIN: backlog full).
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
    const std::string line = request + "\n";
    std::size_t sent = 0;
    while (sent < line.size() && remaining_ms() > 0) {
      pollfd writable{fd, POLLOUT, 0};
      if (::poll(&writable, 1, remaining_ms()) <= 0) {
        break;
      }
      const ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) {
        break;
      }
      sent += static_cast<std::size_t>(n);
    }
    while (sent == line.size() && remaining_ms() > 0) {
      pollfd readable{fd, POLLIN, 0};
      if (::poll(&readable, 1, remaining_ms()) <= 0) {
        break;
      }
      char chunk[4096];
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        break;
      }
      response.append(chunk, static_cast<std::size_t>(n));
      if (response.find('\n') != std::string::npos) {
        answered = true;
        break;
      }
    }
  }
  ::close(fd);
  if (!answered) {
    return nullptr;
  }
  response.resize(response.find('\n'));
  return nlohmann::json::parse(response, nullptr, false);
}

std::size_t open_fd_count() {
  std::size_t count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (::readdir(dir) != nullptr) {
    ++count;
  }
  ::closedir(dir);
  return count;
}

std::size_t resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::size_t kib = 0;
      fields >> kib;
      return kib;
    }
  }
  return 0;
}

}  // namespace vifd::backend::testing
