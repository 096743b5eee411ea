// Named stderr loggers, one per subsystem ("vifd", "datapath"). The first
// caller creates a logger, every later one gets the same object, so a library
// and the main that sets its level from the command line share it.
//
// How lines look is decided here, once, for every logger of the process:
// the plain format (timestamp, logger, level) on a terminal or a file, or
// the journal format when stderr is systemd's journal stream. journald
// stamps each line itself and files it at the priority of the sd-daemon(3)
// prefix ("<3>" error ... "<7>" debug); without the prefix every line would
// be filed at info.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace vifd::log {

// The logger `name`, created at `initial_level` on first use; later calls
// return it unchanged. Thread-safe.
std::shared_ptr<spdlog::logger> named(const std::string& name,
                                      spdlog::level::level_enum initial_level);

// Makes spdlog's default logger (what spdlog::info() writes to) an unnamed
// stderr logger like the named ones, instead of spdlog's stdout one: a
// program logging through it then has its lines where every other daemon
// of the project has them. Call before set_format.
void default_to_stderr();

enum class Format {
  kAuto,     // journal when stderr_is_journal(), else plain
  kPlain,    // "[time] [logger] [level] message"
  kJournal,  // "<priority>[logger] message", no timestamp
};

// "auto", "plain" or "journal".
std::optional<Format> parse_format(std::string_view text);
inline constexpr std::string_view kFormatNames = "auto, plain or journal";

// True when JOURNAL_STREAM ("<device>:<inode>", set by systemd) names the
// file stderr is: the check sd_journal_stream_fd(3) recommends, so a child
// that inherited the variable but not the stream keeps the plain format.
bool stderr_is_journal();

// The sd-daemon(3) priority of a level: 3 for error and critical, 4 warning,
// 6 info, 7 debug and trace.
int journal_priority(spdlog::level::level_enum level);

// Applies `format` to every logger, present and future (the default logger
// too); kAuto is resolved here. Returns the format now in use.
Format set_format(Format format);

}  // namespace vifd::log
