#include "tests/backend/control_harness.h"

#include <dirent.h>
#include <fmt/format.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/protocol/ring.h"
#include "common/protocol/xen_abi.h"

namespace vifd::backend::testing {

using xs::Access;
using xs::Perm;

std::string backend_path(platform::DomId domid, std::uint32_t devid) {
  return fmt::format("/local/domain/0/backend/vif/{}/{}", domid, devid);
}

std::string frontend_path(platform::DomId domid, std::uint32_t devid) {
  return fmt::format("/local/domain/{}/device/vif/{}", domid, devid);
}

Toolstack::Toolstack(const vifd::testing::SimHostProcess& host) : xenstore_(host.xenstore(0)) {}

void Toolstack::attach(platform::DomId domid, std::uint32_t devid, const AttachOptions& options) {
  const std::string back = backend_path(domid, devid);
  const std::string front = frontend_path(domid, devid);
  std::map<std::string, std::string> backend_keys = {{"frontend", front},
                                                     {"frontend-id", std::to_string(domid)},
                                                     {"handle", std::to_string(devid)},
                                                     {"mac", options.mac},
                                                     {"online", "1"},
                                                     {"state", "1"},
                                                     {"type", "vif"},
                                                     {"hotplug-status", ""}};
  if (options.bridge) backend_keys["bridge"] = *options.bridge;
  if (options.script) backend_keys["script"] = *options.script;
  if (options.rate) backend_keys["rate"] = *options.rate;
  if (options.mtu) backend_keys["mtu"] = *options.mtu;
  for (const auto& [key, value] : options.backend_overrides) backend_keys[key] = value;
  const std::map<std::string, std::string> frontend_keys = {
      {"backend", back},    {"backend-id", "0"}, {"handle", std::to_string(devid)},
      {"mac", options.mac}, {"mtu", "1500"},     {"state", "1"},
      {"trusted", "1"}};
  // As libxl: the directories with their permissions first (children
  // inherit them), then the keys, all in one transaction.
  xenstore_.transact([&](xs::TxId tx) {
    xenstore_.mkdir(back, tx);
    xenstore_.set_perms(back, {Perm{0, Access::kNone}, Perm{domid, Access::kRead}}, tx);
    xenstore_.mkdir(front, tx);
    xenstore_.set_perms(front, {Perm{domid, Access::kNone}, Perm{0, Access::kRead}}, tx);
    for (const auto& [key, value] : backend_keys) xenstore_.write(back + "/" + key, value, tx);
    for (const auto& [key, value] : frontend_keys) xenstore_.write(front + "/" + key, value, tx);
  });
}

void Toolstack::request_detach(platform::DomId domid, std::uint32_t devid) {
  const std::string back = backend_path(domid, devid);
  xenstore_.transact([&](xs::TxId tx) {
    xenstore_.write(back + "/online", "0", tx);
    xenstore_.write(back + "/state", "5", tx);
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
  for (void* pages : pages_) share_->unshare(pages, 2);
  pages_.clear();
  for (const auto port : ports_) events_->unbind(port);
  ports_.clear();
}

std::byte* TestFrontend::tx_ring(unsigned queue) const {
  return static_cast<std::byte*>(pages_.at(queue));
}

void TestFrontend::connect(const FrontendOptions& options) {
  release();
  std::map<std::string, std::string> keys = {
      {"request-rx-copy", "1"},
      {"feature-rx-notify", "1"},
      {"feature-sg", options.sg ? "1" : "0"},
      {"feature-gso-tcpv4", options.gso ? "1" : "0"},
      {"feature-gso-tcpv6", options.gso ? "1" : "0"},
      {"feature-no-csum-offload", options.csum ? "0" : "1"},
      {"feature-ipv6-csum-offload", options.csum ? "1" : "0"}};
  if (options.queues > 1 || options.write_num_queues) {
    keys["multi-queue-num-queues"] = std::to_string(options.queues);
  }
  for (unsigned q = 0; q < options.queues; ++q) {
    const std::string prefix = options.queues == 1 ? "" : fmt::format("queue-{}/", q);
    platform::GrantRef refs[2] = {};
    void* pages = share_->share(0, refs, true);
    pages_.push_back(pages);
    auto* bytes = static_cast<std::byte*>(pages);
    protocol::FrontRing<protocol::TxRequest, protocol::TxResponse>::init(
        std::span<std::byte>(bytes, platform::kPageSize));
    protocol::FrontRing<protocol::RxRequest, protocol::RxResponse>::init(
        std::span<std::byte>(bytes + platform::kPageSize, platform::kPageSize));
    keys[prefix + "tx-ring-ref"] = std::to_string(refs[0]);
    keys[prefix + "rx-ring-ref"] = std::to_string(refs[1]);
    if (options.split_event_channels) {
      const auto tx = events_->bind_unbound(0);
      const auto rx = events_->bind_unbound(0);
      ports_.push_back(tx);
      ports_.push_back(rx);
      keys[prefix + "event-channel-tx"] = std::to_string(tx);
      keys[prefix + "event-channel-rx"] = std::to_string(rx);
    } else {
      const auto port = events_->bind_unbound(0);
      ports_.push_back(port);
      keys[prefix + "event-channel"] = std::to_string(port);
    }
  }
  for (const auto& [key, value] : options.overrides) keys[key] = value;
  const std::string front = frontend_path(domid_, devid_);
  xenstore_.transact([&](xs::TxId tx) {
    for (const auto& [key, value] : keys) {
      if (value.empty()) {
        xenstore_.rm(front + "/" + key, tx);
      } else {
        xenstore_.write(front + "/" + key, value, tx);
      }
    }
    xenstore_.write(front + "/state", "4", tx);
  });
}

void TestFrontend::set_state(int state) {
  xenstore_.write(frontend_path(domid_, devid_) + "/state", std::to_string(state));
}

std::optional<std::string> TestFrontend::read(const std::string& key) {
  return xenstore_.read(frontend_path(domid_, devid_) + "/" + key);
}

DaemonThread::DaemonThread(const vifd::testing::SimHostProcess& host, DaemonOptions options)
    : platform_(host.platform(0)), xenstore_(host.xenstore(0)) {
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
  if (stopped_) return;
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
  for (platform::DomId domid = 1; domid <= 3; ++domid) host_->create_domain(domid);
  toolstack_ = std::make_unique<Toolstack>(*host_);
}

std::string ControlPlaneTest::backend_key(platform::DomId domid, std::uint32_t devid,
                                          const std::string& key) {
  return toolstack_->xenstore().read(backend_path(domid, devid) + "/" + key).value_or("");
}

bool ControlPlaneTest::backend_state_becomes(platform::DomId domid, std::uint32_t devid,
                                             const std::string& state) {
  return static_cast<bool>(eventually([&] { return backend_key(domid, devid, "state") == state; }));
}

DaemonOptions ControlPlaneTest::options(unsigned max_queues) const {
  DaemonOptions options;
  options.max_queues = max_queues;
  return options;
}

std::size_t open_fd_count() {
  std::size_t count = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  while (::readdir(dir) != nullptr) ++count;
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
