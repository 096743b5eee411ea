#include "common/service/notify.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

namespace vifd::service {
namespace {

void send(const std::string& message) {
  // A failed notification (the manager went away, a full socket) changes
  // nothing the daemon can act on: it keeps serving and systemd judges it
  // by the notifications that do arrive.
  static_cast<void>(sd_notify(0, message.c_str()));
}

std::string status_line(std::string_view status) {
  std::string line = "STATUS=";
  // One notification is newline-separated assignments: a newline inside the
  // status would start a new (bogus) assignment.
  for (const char c : status) {
    line.push_back(c == '\n' ? ' ' : c);
  }
  return line;
}

}  // namespace

void notify_ready(std::string_view status) {
  send("READY=1\n" + status_line(status));
}

void notify_status(std::string_view status) {
  send(status_line(status));
}

void notify_stopping(std::string_view status) {
  send("STOPPING=1\n" + status_line(status));
}

void notify_watchdog() {
  send("WATCHDOG=1");
}

std::optional<std::chrono::microseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) {
    return std::nullopt;
  }
  return std::chrono::microseconds(usec / 2);
}

}  // namespace vifd::service
