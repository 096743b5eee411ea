#include "backend/lib/control/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vifd::backend {

spdlog::logger& control_log() {
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("vifd")) {
      return existing;
    }
    auto created = spdlog::stderr_color_mt("vifd");
    created->set_level(spdlog::level::info);
    return created;
  }();
  return *logger;
}

}  // namespace vifd::backend
