#include "common/xenbus/keys.h"

#include <fmt/format.h>

namespace vifd::xenbus::key {

std::string queue_prefix(unsigned index, unsigned queue_count) {
  return queue_count == 1 ? std::string() : fmt::format("{}{}/", kQueueDirectoryPrefix, index);
}

std::string queue_key(unsigned index, unsigned queue_count, std::string_view name) {
  return queue_prefix(index, queue_count) + std::string(name);
}

}  // namespace vifd::xenbus::key
