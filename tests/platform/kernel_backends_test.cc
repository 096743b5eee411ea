// bound_kernel_backend() on a sysfs tree laid out as Linux's: a xen-backend
// device is served by a kernel driver exactly when its `driver` link exists.
#include "common/platform/xen/kernel_backends.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace vifd::platform {
namespace {

namespace fs = std::filesystem;

class KernelBackendsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "vifd-sysfs-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { fs::remove_all(root_); }

  // /sys/bus/xen-backend/devices/NAME, bound to `driver` (registered by
  // `module`) when given, as the driver core links them.
  void add_device(const std::string& name, const std::string& driver = "",
                  const std::string& module = "") {
    const fs::path bus = root_ / "bus/xen-backend";
    const fs::path device = root_ / "devices/xen-backend" / name;
    fs::create_directories(device);
    fs::create_directories(bus / "devices");
    fs::create_directory_symlink(fs::path("../../../devices/xen-backend") / name,
                                 bus / "devices" / name);
    if (driver.empty()) {
      return;
    }
    const fs::path driver_dir = bus / "drivers" / driver;
    if (!fs::exists(driver_dir)) {
      fs::create_directories(driver_dir);
      if (!module.empty()) {
        fs::create_directories(root_ / "module" / module);
        fs::create_directory_symlink(fs::path("../../../../module") / module,
                                     driver_dir / "module");
      }
    }
    fs::create_directory_symlink(fs::path("../../../bus/xen-backend/drivers") / driver,
                                 device / "driver");
  }

  fs::path root_;
};

TEST_F(KernelBackendsTest, NoXenBackendBusMeansNoKernelBackend) {
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 5, 0), std::nullopt);
}

TEST_F(KernelBackendsTest, ADeviceWithoutADriverIsFree) {
  // xen-netback not loaded: the bus still lists the device.
  add_device("vif-5-0");
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 5, 0), std::nullopt);
}

TEST_F(KernelBackendsTest, ABoundDeviceNamesItsDriverModuleAndLink) {
  add_device("vif-5-0", "vif", "xen_netback");
  const auto bound = bound_kernel_backend(root_, "vif", 5, 0);
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(*bound,
            "vif (xen-netback), " + (root_ / "bus/xen-backend/devices/vif-5-0/driver").string());
}

TEST_F(KernelBackendsTest, ADriverWithoutAModuleLinkIsStillNamed) {
  add_device("vif-7-1", "vif");  // built into the kernel: no module link
  const auto bound = bound_kernel_backend(root_, "vif", 7, 1);
  ASSERT_TRUE(bound.has_value());
  EXPECT_EQ(bound->rfind("vif, ", 0), 0U) << *bound;
}

TEST_F(KernelBackendsTest, OnlyTheNamedDeviceCounts) {
  add_device("vif-5-0", "vif", "xen_netback");
  add_device("vbd-6-51712", "vbd", "xen_blkback");
  add_device("vif-6-0");
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 6, 0), std::nullopt);
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 5, 1), std::nullopt);
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 50, 0), std::nullopt);
  EXPECT_EQ(bound_kernel_backend(root_, "vif", 6, 51712), std::nullopt);
  EXPECT_TRUE(bound_kernel_backend(root_, "vbd", 6, 51712).has_value());
}

}  // namespace
}  // namespace vifd::platform
