#include "common/platform/xen/kernel_backends.h"

#include <fmt/format.h>

#include <algorithm>
#include <system_error>

namespace vifd::platform {

std::optional<std::string> bound_kernel_backend(const std::filesystem::path& sysfs_root,
                                                std::string_view type, DomId domid,
                                                std::uint32_t devid) {
  const std::filesystem::path device =
      sysfs_root / "bus/xen-backend/devices" / fmt::format("{}-{}-{}", type, domid, devid);
  const std::filesystem::path link = device / "driver";
  std::error_code error;
  // The link points at .../bus/xen-backend/drivers/<driver name>.
  const std::filesystem::path target = std::filesystem::read_symlink(link, error);
  if (error) {
    return std::nullopt;  // no driver bound (or no such device)
  }
  std::string description = target.filename().string();
  // The module that registered the driver, when sysfs says (module link).
  const std::filesystem::path module =
      std::filesystem::read_symlink(device / "driver" / "module", error);
  if (!error && !module.filename().empty()) {
    std::string name = module.filename().string();
    std::ranges::replace(name, '_', '-');  // xen_netback -> xen-netback, as modprobe names it
    description += fmt::format(" ({})", name);
  }
  return fmt::format("{}, {}", description, link.string());
}

}  // namespace vifd::platform
