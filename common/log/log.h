// Named stderr loggers, one per subsystem ("vifd", "datapath"). The first
// caller creates a logger, every later one gets the same object, so a library
// and the main that sets its level from the command line share it.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace vifd::log {

// The logger `name`, created at `initial_level` on first use; later calls
// return it unchanged. Thread-safe.
std::shared_ptr<spdlog::logger> named(const std::string& name,
                                      spdlog::level::level_enum initial_level);

}  // namespace vifd::log
