#include "common/xenbus/xenbus_device.h"

#include <fmt/format.h>

#include <cerrno>

#include "common/xenbus/keys.h"

namespace vifd::xenbus {

XenbusDevice::XenbusDevice(XenstoreWatcher& watcher, platform::DomId backend_domid, VifId id)
    : watcher_(watcher),
      client_(watcher.client()),
      id_(id),
      backend_path_(xenbus::backend_path(backend_domid, id)) {}

XenbusDevice::~XenbusDevice() {
  unwatch();
}

void XenbusDevice::use_frontend() {
  frontend_path_ = xenbus::frontend_path(id_);
}

std::optional<KeyMap> XenbusDevice::read_keys(const std::string& dir) {
  std::optional<KeyMap> snapshot;
  client_.transact([&](xs::TxId tx) {
    snapshot.reset();  // a retried transaction starts over
    const auto names = client_.directory(dir, tx);
    if (!names) {
      return;
    }
    KeyMap keys;
    const auto add = [&](const std::string& key, std::string value) {
      if (keys.size() == kMaxSnapshotKeys) {
        throw xs::XsError(fmt::format("{}: more than {} keys", dir, kMaxSnapshotKeys), E2BIG);
      }
      keys.emplace(key, std::move(value));
    };
    for (const auto& name : *names) {
      const std::string path = join(dir, name);
      auto value = client_.read(path, tx);
      if (!value) {
        continue;  // listed but gone: cannot happen inside a transaction
      }
      // Only a directory node (empty value, as xenstored creates missing
      // parents) can hold keys; leaves cost no extra request.
      const bool may_have_children = value->empty();
      add(name, std::move(*value));
      if (!may_have_children) {
        continue;
      }
      for (const auto& child : client_.directory(path, tx).value_or(std::vector<std::string>{})) {
        if (auto child_value = client_.read(join(path, child), tx)) {
          add(join(name, child), std::move(*child_value));
        }
      }
    }
    snapshot = std::move(keys);
  });
  return snapshot;
}

std::optional<KeyMap> XenbusDevice::read_backend_keys() {
  return read_keys(backend_path_);
}

std::optional<KeyMap> XenbusDevice::read_frontend_keys() {
  if (frontend_path_.empty()) {
    return std::nullopt;
  }
  return read_keys(frontend_path_);
}

std::optional<KeyMap> XenbusDevice::read_backend(const std::vector<std::string_view>& keys) {
  std::optional<KeyMap> values;
  client_.transact([&](xs::TxId tx) {
    values.reset();  // a retried transaction starts over
    KeyMap read;
    for (const auto key : keys) {
      if (auto value = client_.read(join(backend_path_, key), tx)) {
        read.emplace(key, std::move(*value));
      }
    }
    // `state` is the one key every live device has (libxl writes it
    // first); without it, tell a removed directory from a partial one.
    if (!read.contains(key::kState) && !client_.read(backend_path_, tx)) {
      return;
    }
    values = std::move(read);
  });
  return values;
}

std::optional<std::string> XenbusDevice::read_frontend(std::string_view key) {
  if (frontend_path_.empty()) {
    return std::nullopt;
  }
  return client_.read(join(frontend_path_, key));
}

void XenbusDevice::remove_backend(std::string_view key) {
  client_.rm(join(backend_path_, key));
}

bool XenbusDevice::write_backend_if_present(
    const std::vector<std::pair<std::string, std::string>>& keys) {
  bool present = false;
  client_.transact([&](xs::TxId tx) {
    // `state` is the one key every live device has (libxl writes it first).
    present = client_.read(join(backend_path_, key::kState), tx).has_value();
    if (!present) {
      return;
    }
    for (const auto& [key, value] : keys) {
      client_.write(join(backend_path_, key), value, tx);
    }
  });
  return present;
}

bool XenbusDevice::publish_state(protocol::XenbusState state) {
  published_ = state;
  return write_backend_if_present({{std::string(key::kState), protocol::to_xenstore_value(state)}});
}

void XenbusDevice::watch(ChangeCallback on_change,
                         const std::vector<std::string_view>& frontend_keys) {
  unwatch();
  constexpr auto kCoalesced = XenstoreWatcher::Delivery::kCoalesced;
  const auto on = [&on_change](DeviceChange change) {
    return [on_change, change](const std::string&) { on_change(change); };
  };
  watches_.push_back(watcher_.watch(backend_path_, on({DeviceChange::Side::kBackend, {}}),
                                    kCoalesced, kWatchMinInterval));
  if (!frontend_path_.empty()) {
    std::vector<std::string_view> keys{key::kState};
    keys.insert(keys.end(), frontend_keys.begin(), frontend_keys.end());
    for (const auto key : keys) {
      watches_.push_back(watcher_.watch(join(frontend_path_, key),
                                        on({DeviceChange::Side::kFrontend, key}), kCoalesced,
                                        kWatchMinInterval, kFrontendWatchFloodLimit));
    }
  }
}

XenstoreWatcher::Counters XenbusDevice::watch_counters() const {
  XenstoreWatcher::Counters sum;
  for (const auto id : watches_) {
    const auto counters = watcher_.counters(id);
    sum.delivered += counters.delivered;
    sum.coalesced += counters.coalesced;
    sum.paced += counters.paced;
    sum.received += counters.received;
    sum.suspended += counters.suspended;
  }
  return sum;
}

void XenbusDevice::unwatch() noexcept {
  for (const auto id : watches_) {
    watcher_.unwatch(id);
  }
  watches_.clear();
}

void XenbusDevice::write_error(const std::string& message) {
  try {
    write_backend_if_present({{std::string(key::kError), message}});
  } catch (const xs::XsError& e) {
    // The directory may be gone already (toolstack removed the device).
    watcher_.log().warn("{}: cannot write error node: {}", backend_path_, e.what());
  }
}

}  // namespace vifd::xenbus
