#include "common/log/log.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <mutex>

namespace vifd::log {
namespace {

// "%*": the sd-daemon priority prefix, then "[logger] " for a named logger
// (the default logger has no name).
class JournalPrefix final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& message, const std::tm& /*time*/,
              spdlog::memory_buf_t& out) override {
    const char prefix[] = {'<', static_cast<char>('0' + journal_priority(message.level)), '>'};
    out.append(prefix, prefix + sizeof prefix);
    if (message.logger_name.size() != 0) {
      out.push_back('[');
      out.append(message.logger_name.data(),
                 message.logger_name.data() + message.logger_name.size());
      constexpr std::string_view kClose = "] ";
      out.append(kClose.data(), kClose.data() + kClose.size());
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPrefix>();
  }
};

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

}  // namespace

std::shared_ptr<spdlog::logger> named(const std::string& name,
                                      spdlog::level::level_enum initial_level) {
  // spdlog::get and stderr_color_mt are each thread-safe, but the pair is
  // not: two first callers would both create, and the second would throw.
  static std::mutex mutex;
  const std::lock_guard lock(mutex);
  if (auto existing = spdlog::get(name)) {
    return existing;
  }
  // Created through the registry, so it takes the format set_format chose.
  auto created = spdlog::stderr_color_mt(name);
  created->set_level(initial_level);
  return created;
}

void default_to_stderr() {
  auto logger =
      std::make_shared<spdlog::logger>("", std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  logger->set_level(spdlog::default_logger()->level());
  spdlog::set_default_logger(std::move(logger));
}

std::optional<Format> parse_format(std::string_view text) {
  if (text == "auto") {
    return Format::kAuto;
  }
  if (text == "plain") {
    return Format::kPlain;
  }
  if (text == "journal") {
    return Format::kJournal;
  }
  return std::nullopt;
}

bool stderr_is_journal() {
  const char* value = std::getenv("JOURNAL_STREAM");
  if (value == nullptr) {
    return false;
  }
  const std::string_view text(value);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (!parse_number(text.substr(0, colon), device) ||
      !parse_number(text.substr(colon + 1), inode)) {
    return false;
  }
  struct stat status {};
  if (::fstat(STDERR_FILENO, &status) != 0) {
    return false;
  }
  return static_cast<unsigned long long>(status.st_dev) == device &&
         static_cast<unsigned long long>(status.st_ino) == inode;
}

int journal_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::critical:
    case spdlog::level::err:
      return 3;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::info:
      return 6;
    default:
      return 7;
  }
}

Format set_format(Format format) {
  if (format == Format::kAuto) {
    format = stderr_is_journal() ? Format::kJournal : Format::kPlain;
  }
  if (format == Format::kJournal) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPrefix>('*').set_pattern("%*%v");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_formatter(std::make_unique<spdlog::pattern_formatter>());
  }
  return format;
}

}  // namespace vifd::log
