#include "frontend/lib/netfront/xenbus.h"

#include <cerrno>

#include "common/xenbus/paths.h"

namespace vifd::frontend {
namespace {

xenbus::KeyReader reader(xs::Client& xenstore, const std::string& dir) {
  return [&xenstore, &dir](std::string_view key) { return xenstore.read(xenbus::join(dir, key)); };
}

}  // namespace

DeviceConfig read_device_config(xs::Client& xenstore, const std::string& frontend_dir) {
  return xenbus::parse_frontend_device_config(reader(xenstore, frontend_dir), frontend_dir);
}

BackendFeatures read_backend_features(xs::Client& xenstore, const std::string& backend_dir) {
  return xenbus::parse_backend_offer(reader(xenstore, backend_dir), backend_dir);
}

std::optional<protocol::XenbusState> read_backend_state(xs::Client& xenstore,
                                                        const std::string& backend_dir) {
  const auto read = [&xenstore, &backend_dir](std::string_view key) -> std::optional<std::string> {
    try {
      return xenstore.read(xenbus::join(backend_dir, key));
    } catch (const xs::XsError& error) {
      // Once the toolstack removed the backend directory, the lookup walks
      // into its parent, which only dom0 may read: the device is gone.
      if (error.errno_value() != EACCES) throw;
      return std::nullopt;
    }
  };
  return xenbus::parse_device_state(read, backend_dir);
}

}  // namespace vifd::frontend
