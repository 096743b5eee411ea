// The xenbus side of one backend device ("the bus is not the device", as in
// QEMU's hw/xen/xen-bus.c): it owns the backend and frontend paths, the
// watches on them and the publishing of the backend state, so device code
// (vifd's Vif) names keys, never paths.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/platform/types.h"
#include "common/protocol/xenbus_state.h"
#include "common/xenbus/key_reader.h"
#include "common/xenbus/paths.h"
#include "common/xenbus/xenstore_watcher.h"

namespace vifd::xenbus {

// Which watch of a device fired (XenbusDevice::watch).
struct DeviceChange {
  enum class Side { kBackend, kFrontend };
  Side side = Side::kBackend;
  // For the frontend: the watched key ("state", or one of the frontend_keys
  // given to watch()). Empty for the backend, whose whole directory is
  // watched.
  std::string_view key;
};

class XenbusDevice {
 public:
  using ChangeCallback = std::function<void(const DeviceChange& change)>;

  // The device `id` served by backend domain `backend_domid`.
  XenbusDevice(XenstoreWatcher& watcher, platform::DomId backend_domid, VifId id);
  ~XenbusDevice();
  XenbusDevice(const XenbusDevice&) = delete;
  XenbusDevice& operator=(const XenbusDevice&) = delete;

  const std::string& backend_path() const { return backend_path_; }
  // Empty until use_frontend().
  const std::string& frontend_path() const { return frontend_path_; }
  // From now on the frontend directory (xenbus::frontend_path) is read and
  // watched. Call once the backend's `frontend` key has been validated to
  // name it: until then a toolstack-written path is not trusted.
  void use_frontend();

  // A snapshot of every key of the backend (or frontend) directory, read in
  // one transaction so the values are consistent with each other: keys
  // relative to the directory ("state", "queue-1/tx-ring-ref": one level of
  // subdirectories, those whose node value is empty). std::nullopt when the
  // directory does not exist (or, for the frontend, before use_frontend()).
  // A directory of more than kMaxSnapshotKeys entries throws: no device
  // needs that many, and a hostile frontend must not make every watch event
  // cost thousands of reads.
  std::optional<KeyMap> read_backend_keys();
  std::optional<KeyMap> read_frontend_keys();
  static constexpr std::size_t kMaxSnapshotKeys = 512;

  // Only the named backend keys (those present), read in one transaction;
  // std::nullopt when the directory does not exist. What a watch event
  // needs, at a cost that does not grow with what else the directory holds.
  std::optional<KeyMap> read_backend(const std::vector<std::string_view>& keys);
  // One frontend key; std::nullopt when absent (or before use_frontend()).
  std::optional<std::string> read_frontend(std::string_view key);

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

  // Watches the whole backend directory, the frontend's `state` key and the
  // frontend keys in `frontend_keys` (ones the frontend may change while
  // connected; the views must outlive the watches). Each watch is coalesced
  // (XenstoreWatcher::Delivery::kCoalesced): at most one callback per watch
  // is pending on the watcher's thread, and paced (kWatchMinInterval), so a
  // frontend rewriting its keys in a loop costs at most one re-read per
  // key per interval, not one per write. The frontend's watches, which the
  // guest fires at will, are also suspended while their events come faster
  // than kFrontendWatchFloodLimit (see XenstoreWatcher::FloodLimit): a
  // netfront writes each of these keys a few times per connection.
  static constexpr std::chrono::milliseconds kWatchMinInterval{2};
  static constexpr XenstoreWatcher::FloodLimit kFrontendWatchFloodLimit{
      .events = 64,
      .window = std::chrono::milliseconds(100),
      .first_suspension = std::chrono::milliseconds(100),
      .longest_suspension = std::chrono::seconds(1)};
  void watch(ChangeCallback on_change, const std::vector<std::string_view>& frontend_keys = {});
  void unwatch() noexcept;
  // Summed over the current watches.
  XenstoreWatcher::Counters watch_counters() const;

  // Writes `error` (below the backend directory), as xenbus_dev_fatal does.
  void write_error(const std::string& message);

 private:
  std::optional<KeyMap> read_keys(const std::string& dir);

  XenstoreWatcher& watcher_;
  xs::Client& client_;
  VifId id_;
  std::string backend_path_;
  std::string frontend_path_;
  std::optional<protocol::XenbusState> published_;
  std::vector<XenstoreWatcher::WatchId> watches_;
};

}  // namespace vifd::xenbus
