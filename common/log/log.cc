#include "common/log/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace vifd::log {

std::shared_ptr<spdlog::logger> named(const std::string& name,
                                      spdlog::level::level_enum initial_level) {
  // spdlog::get and stderr_color_mt are each thread-safe, but the pair is
  // not: two first callers would both create, and the second would throw.
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  auto created = spdlog::stderr_color_mt(name);
  created->set_level(initial_level);
  return created;
}

}  // namespace vifd::log
