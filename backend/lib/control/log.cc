#include "backend/lib/control/log.h"

#include "common/log/log.h"

namespace vifd::backend {

spdlog::logger& control_log() {
  static const std::shared_ptr<spdlog::logger> logger = log::named("vifd", spdlog::level::info);
  return *logger;
}

}  // namespace vifd::backend
