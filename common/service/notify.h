// What a daemon tells its service manager (sd_notify(3)): readiness, a
// status line, that it is stopping, and watchdog pings. Every call is a
// no-op when the process was not started with NOTIFY_SOCKET (a shell, a
// test, a Type=simple unit), so callers need no branch of their own.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace vifd::service {

// READY=1 with STATUS=<status>.
void notify_ready(std::string_view status);
// STATUS=<status>.
void notify_status(std::string_view status);
// STOPPING=1 with STATUS=<status>.
void notify_stopping(std::string_view status);
// WATCHDOG=1.
void notify_watchdog();

// How often to send WATCHDOG=1: half of WATCHDOG_USEC when the service
// manager watches this process (WATCHDOG_PID unset or ours), as
// sd_watchdog_enabled(3) recommends; std::nullopt when it does not.
std::optional<std::chrono::microseconds> watchdog_interval();

}  // namespace vifd::service
