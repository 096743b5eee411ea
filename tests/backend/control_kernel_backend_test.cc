// vifd and a kernel backend driver on one host: a device the kernel's
// xen-netback is bound to is neither served nor written by vifd, whether
// the kernel had it first or took it while vifd served it; once the kernel
// lets go, vifd serves it without waiting for a xenstore event.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/net/link.h"
#include "tests/backend/control_harness.h"

namespace vifd::backend::testing {
namespace {

using namespace std::chrono_literals;

// dom0's simulated platform, with a kernel backend driver bound to the
// devices the test names (what /sys/bus/xen-backend says on Linux).
class KernelBackendPlatform : public platform::Platform {
 public:
  struct Bindings {
    std::mutex mutex;
    std::map<std::pair<platform::DomId, std::uint32_t>, std::string> bound;
    void bind(platform::DomId domid, std::uint32_t devid) {
      const std::lock_guard lock(mutex);
      bound[{domid, devid}] = "vif (xen-netback), test";
    }
    void unbind(platform::DomId domid, std::uint32_t devid) {
      const std::lock_guard lock(mutex);
      bound.erase({domid, devid});
    }
  };

  KernelBackendPlatform(std::unique_ptr<platform::Platform> inner,
                        std::shared_ptr<Bindings> bindings)
      : inner_(std::move(inner)), bindings_(std::move(bindings)) {}
  std::string name() const override { return inner_->name(); }
  platform::DomId self_domid() const override { return inner_->self_domid(); }
  std::unique_ptr<platform::GrantTable> open_grant_table() override {
    return inner_->open_grant_table();
  }
  std::unique_ptr<platform::GrantShare> open_grant_share() override {
    return inner_->open_grant_share();
  }
  std::unique_ptr<platform::EventChannels> open_event_channels() override {
    return inner_->open_event_channels();
  }
  std::optional<std::string> xenstore_socket() const override { return inner_->xenstore_socket(); }
  std::optional<platform::DomainStatus> domain_status(platform::DomId domid) override {
    return inner_->domain_status(domid);
  }
  std::optional<std::string> kernel_backend_driver(std::string_view type, platform::DomId domid,
                                                   std::uint32_t devid) override {
    const std::lock_guard lock(bindings_->mutex);
    const auto it = bindings_->bound.find({domid, devid});
    if (type != "vif" || it == bindings_->bound.end()) {
      return std::nullopt;
    }
    return it->second;
  }

 private:
  std::unique_ptr<platform::Platform> inner_;
  std::shared_ptr<Bindings> bindings_;
};

class KernelBackendTest : public ControlPlaneTest {
 protected:
  std::unique_ptr<DaemonThread> start_vifd() {
    return std::make_unique<DaemonThread>(
        host(), options(1), std::make_unique<KernelBackendPlatform>(host().platform(0), bindings_));
  }
  static nlohmann::json left_to_kernel(DaemonThread& vifd) {
    return vifd.call([&] { return vifd.daemon().stats_snapshot()["left_to_kernel"]; });
  }
  static bool serves(DaemonThread& vifd, platform::DomId domid) {
    const auto vifs = vifd.call([&] { return vifd.daemon().describe(std::nullopt); });
    for (const auto& vif : vifs) {
      if (vif["domid"] == domid) {
        return true;
      }
    }
    return false;
  }

  std::shared_ptr<KernelBackendPlatform::Bindings> bindings_ =
      std::make_shared<KernelBackendPlatform::Bindings>();
};

TEST_F(KernelBackendTest, ADeviceTheKernelServesIsLeftAloneUntilItLetsGo) {
  bindings_->bind(1, 0);
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  auto vifd = start_vifd();
  // The other guest is served as usual; the kernel's device is not touched.
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  EXPECT_EQ(backend_key(1, 0, key::kState), "1");
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
  EXPECT_FALSE(net::link_exists("vif1.0")) << "the kernel's netdev needs that name";
  EXPECT_FALSE(serves(*vifd, 1));
  const nlohmann::json held = left_to_kernel(*vifd);
  ASSERT_EQ(held.size(), 1U) << held.dump();
  EXPECT_EQ(held[0]["domid"], 1);
  EXPECT_EQ(held[0]["devid"], 0);
  EXPECT_EQ(held[0]["driver"], "vif (xen-netback), test");

  // xen-netback unloaded: nothing need be written to xenstore for vifd to
  // notice (its periodic look), and it serves the device from the start.
  bindings_->unbind(1, 0);
  ASSERT_TRUE(eventually([&] { return backend_key(1, 0, key::kState) == "2"; }, 5s));
  EXPECT_TRUE(net::link_exists("vif1.0"));
  EXPECT_TRUE(left_to_kernel(*vifd).empty());
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  EXPECT_TRUE(backend_state_becomes(1, 0, "4")) << backend_key(1, 0, key::kError);
}

TEST_F(KernelBackendTest, TheKernelTakingAServedDeviceMakesVifdLetGoWithoutAWrite) {
  toolstack_->attach(1, 0);
  toolstack_->attach(2, 0);
  auto vifd = start_vifd();
  ASSERT_TRUE(backend_state_becomes(1, 0, "2"));
  ASSERT_TRUE(backend_state_becomes(2, 0, "2"));
  TestFrontend frontend(host(), 1, 0);
  frontend.connect();
  ASSERT_TRUE(backend_state_becomes(1, 0, "4"));
  ASSERT_TRUE(net::link_exists("vif1.0"));

  // xen-netback loaded: its probe binds the device and writes its keys, as
  // netback_probe() does (features, then InitWait).
  bindings_->bind(1, 0);
  xs::Client kernel = host().xenstore(0);
  kernel.write(backend_path(1, 0) + "/feature-sg", "1");
  kernel.write(backend_path(1, 0) + "/state", "2");
  ASSERT_TRUE(eventually([&] { return !serves(*vifd, 1); }, 5s));
  EXPECT_TRUE(eventually([&] { return !net::link_exists("vif1.0"); }, 5s))
      << "vifd's TAP would keep the kernel's netdev from its name";
  // vifd wrote nothing after letting go: the kernel's InitWait stands.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(backend_key(1, 0, key::kState), "2");
  EXPECT_EQ(backend_key(1, 0, key::kError), "");
  EXPECT_EQ(left_to_kernel(*vifd).size(), 1U);
  // The other guest is still served.
  EXPECT_TRUE(serves(*vifd, 2));
  EXPECT_EQ(backend_key(2, 0, key::kState), "2");
}

}  // namespace
}  // namespace vifd::backend::testing
