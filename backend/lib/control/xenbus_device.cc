#include "backend/lib/control/xenbus_device.h"

#include "backend/lib/control/log.h"

namespace vifd::backend {

XenbusDevice::XenbusDevice(XenstoreWatcher& watcher, std::string backend_path)
    : watcher_(watcher), client_(watcher.client()), backend_path_(std::move(backend_path)) {}

XenbusDevice::~XenbusDevice() {
  unwatch();
}

std::string XenbusDevice::backend_key(std::string_view key) const {
  return backend_path_ + "/" + std::string(key);
}

std::string XenbusDevice::frontend_key(std::string_view key) const {
  return frontend_path_ + "/" + std::string(key);
}

std::optional<std::string> XenbusDevice::read_backend(std::string_view key) {
  return client_.read(backend_key(key));
}

std::optional<std::string> XenbusDevice::read_frontend(std::string_view key) {
  if (frontend_path_.empty()) {
    return std::nullopt;
  }
  return client_.read(frontend_key(key));
}

bool XenbusDevice::backend_exists() {
  return client_.read(backend_path_).has_value();
}

void XenbusDevice::write_backend(std::string_view key, const std::string& value) {
  client_.write(backend_key(key), value);
}

void XenbusDevice::remove_backend(std::string_view key) {
  client_.rm(backend_key(key));
}

bool XenbusDevice::write_backend_if_present(
    const std::vector<std::pair<std::string, std::string>>& keys) {
  bool present = false;
  client_.transact([&](xs::TxId tx) {
    // `state` is the one key every live device has (libxl writes it first).
    present = client_.read(backend_key("state"), tx).has_value();
    if (!present) {
      return;
    }
    for (const auto& [key, value] : keys) {
      client_.write(backend_key(key), value, tx);
    }
  });
  return present;
}

bool XenbusDevice::publish_state(protocol::XenbusState state) {
  published_ = state;
  return write_backend_if_present({{"state", protocol::to_xenstore_value(state)}});
}

std::optional<protocol::XenbusState> XenbusDevice::read_backend_state() {
  const auto text = read_backend("state");
  if (!text) {
    return std::nullopt;
  }
  const auto state = protocol::parse_xenbus_state("state", *text);
  if (!state) {
    return std::nullopt;
  }
  return state.value();
}

protocol::XenbusState XenbusDevice::read_frontend_state() {
  const auto text = read_frontend("state");
  if (!text) {
    return protocol::XenbusState::kUnknown;
  }
  return protocol::parse_xenbus_state("state", *text).value_or(protocol::XenbusState::kUnknown);
}

void XenbusDevice::watch(XenstoreWatcher::Callback on_change,
                         const std::vector<std::string>& frontend_keys) {
  unwatch();
  watches_.push_back(watcher_.watch(backend_path_, on_change));
  if (!frontend_path_.empty()) {
    watches_.push_back(watcher_.watch(frontend_key("state"), on_change));
    for (const auto& key : frontend_keys) {
      watches_.push_back(watcher_.watch(frontend_key(key), on_change));
    }
  }
}

void XenbusDevice::unwatch() noexcept {
  for (const auto id : watches_) {
    watcher_.unwatch(id);
  }
  watches_.clear();
}

void XenbusDevice::write_error(const std::string& message) {
  try {
    write_backend_if_present({{"error", message}});
  } catch (const xs::XsError& e) {
    // The directory may be gone already (toolstack removed the device).
    control_log().warn("{}: cannot write error node: {}", backend_path_, e.what());
  }
}

}  // namespace vifd::backend
