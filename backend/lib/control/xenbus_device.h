// The xenbus side of one backend device ("the bus is not the device", as in
// QEMU's hw/xen/xen-bus.c): it owns the backend and frontend paths, the
// watches on them and the publishing of the backend state, so device code
// (Vif) names keys, never paths.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend/lib/control/xenstore_watcher.h"
#include "common/protocol/xenbus_state.h"

namespace vifd::backend {

class XenbusDevice {
 public:
  XenbusDevice(XenstoreWatcher& watcher, std::string backend_path);
  ~XenbusDevice();
  XenbusDevice(const XenbusDevice&) = delete;
  XenbusDevice& operator=(const XenbusDevice&) = delete;

  const std::string& backend_path() const { return backend_path_; }
  const std::string& frontend_path() const { return frontend_path_; }
  // Set once the backend's `frontend` key has been validated.
  void set_frontend_path(std::string path) { frontend_path_ = std::move(path); }

  // Keys relative to the device directories. Reads return std::nullopt for
  // an absent key (or an absent frontend directory).
  std::optional<std::string> read_backend(std::string_view key);
  std::optional<std::string> read_frontend(std::string_view key);
  bool backend_exists();
  void write_backend(std::string_view key, const std::string& value);
  void remove_backend(std::string_view key);

  // Writes the backend `state` key and remembers it, so that a watch event
  // caused by our own write can be told apart from a toolstack's write.
  // Like Linux's xenbus_switch_state() it writes only if the device still
  // exists, in one transaction, so a directory the toolstack removed is never
  // re-created; returns false then.
  bool publish_state(protocol::XenbusState state);
  // Writes several backend keys in one transaction, again only if the device
  // still exists; returns false when it does not.
  bool write_backend_if_present(const std::vector<std::pair<std::string, std::string>>& keys);
  std::optional<protocol::XenbusState> published_state() const { return published_; }
  // The backend `state` key as it is now in xenstore (std::nullopt when
  // absent or malformed).
  std::optional<protocol::XenbusState> read_backend_state();
  // The frontend `state` key; a missing or malformed key reads as Unknown
  // (0), as Linux's xenbus_read_driver_state() does.
  protocol::XenbusState read_frontend_state();

  // Watches the whole backend directory, the frontend's `state` key and the
  // frontend keys in `frontend_keys` (ones the frontend may change while
  // connected); the callback runs on the control-plane thread for each event.
  void watch(XenstoreWatcher::Callback on_change,
             const std::vector<std::string>& frontend_keys = {});
  void unwatch() noexcept;

  // Writes `error` (below the backend directory), as xenbus_dev_fatal does.
  void write_error(const std::string& message);

 private:
  std::string backend_key(std::string_view key) const;
  std::string frontend_key(std::string_view key) const;

  XenstoreWatcher& watcher_;
  xs::Client& client_;
  std::string backend_path_;
  std::string frontend_path_;
  std::optional<protocol::XenbusState> published_;
  std::vector<XenstoreWatcher::WatchId> watches_;
};

}  // namespace vifd::backend
