// How the pure parsers of a device's keys read them: one key relative to a
// device directory, std::nullopt when absent. The daemons pass a reader over
// xenstore (XenbusDevice); tests pass one over a plain map.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace vifd::xenbus {

using KeyReader = std::function<std::optional<std::string>(std::string_view key)>;

// Relative keys to values: a snapshot of a directory (XenbusDevice) or a
// test's keys.
using KeyMap = std::map<std::string, std::string, std::less<>>;

// A reader over a map of relative keys to values (tests, snapshots).
inline KeyReader map_reader(const std::map<std::string, std::string, std::less<>>& keys) {
  return [&keys](std::string_view key) -> std::optional<std::string> {
    const auto found = keys.find(key);
    if (found == keys.end()) {
      return std::nullopt;
    }
    return found->second;
  };
}

}  // namespace vifd::xenbus
