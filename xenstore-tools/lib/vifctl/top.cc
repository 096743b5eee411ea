#include "xenstore-tools/lib/vifctl/top.h"

#include <fmt/format.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <utility>

#include "xenstore-tools/lib/vifctl/control_client.h"

namespace vifd::vifctl {
namespace {

using Clock = std::chrono::steady_clock;

std::uint64_t number(const nlohmann::json& object, const char* group, const char* key) {
  if (!object.is_object()) {
    return 0;
  }
  const auto g = object.find(group);
  if (g == object.end() || !g->is_object()) {
    return 0;
  }
  const auto v = g->find(key);
  return v != g->end() && v->is_number_unsigned() ? v->get<std::uint64_t>() : 0;
}

std::uint64_t drops(const nlohmann::json& queue) {
  std::uint64_t sum = 0;
  if (!queue.is_object()) {
    return 0;
  }
  const auto reasons = queue.find("drops");
  if (reasons == queue.end() || !reasons->is_object()) {
    return 0;
  }
  for (const auto& [reason, value] : reasons->items()) {
    if (value.is_number_unsigned()) {
      sum += value.get<std::uint64_t>();
    }
  }
  return sum;
}

// A vif's counters summed over its queues.
struct Totals {
  std::uint64_t tx_packets = 0, tx_bytes = 0, rx_packets = 0, rx_bytes = 0, drops = 0;
};

Totals totals(const nlohmann::json& vif) {
  Totals t;
  const auto queues = vif.find("queues");
  if (queues == vif.end() || !queues->is_array()) {
    return t;
  }
  for (const auto& queue : *queues) {
    t.tx_packets += number(queue, "tx", "packets");
    t.tx_bytes += number(queue, "tx", "bytes");
    t.rx_packets += number(queue, "rx", "packets");
    t.rx_bytes += number(queue, "rx", "bytes");
    t.drops += drops(queue);
  }
  return t;
}

std::string vif_name(const nlohmann::json& vif) {
  return fmt::format("{}/{}", vif.value("domid", -1), vif.value("devid", -1));
}

const nlohmann::json& vif_list(const nlohmann::json& answer) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  if (!answer.is_object()) {
    return kEmpty;
  }
  const auto vifs = answer.find("vifs");
  return vifs != answer.end() && vifs->is_array() ? *vifs : kEmpty;
}

// A rate from two readings of a counter that may have started over.
double rate(std::uint64_t before, std::uint64_t after, double seconds) {
  const std::uint64_t delta = after >= before ? after - before : after;
  return static_cast<double>(delta) / seconds;
}

std::string human(double value) {
  static constexpr std::array<const char*, 5> kUnits{"", "K", "M", "G", "T"};
  std::size_t unit = 0;
  while (value >= 1000.0 && unit + 1 < kUnits.size()) {
    value /= 1000.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f}", value) : fmt::format("{:.1f}{}", value, kUnits[unit]);
}

// Puts a terminal's stdin in non-canonical, no-echo mode (a key arrives
// at once and is not echoed over the table) and back when done.
class RawInput {
 public:
  explicit RawInput(bool enable) {
    if (enable && ::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      active_ = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
  }
  ~RawInput() {
    if (active_) {
      ::tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
    }
  }
  RawInput(const RawInput&) = delete;
  RawInput& operator=(const RawInput&) = delete;
  bool active() const { return active_; }

 private:
  termios saved_{};
  bool active_ = false;
};

// Waits until `deadline`; false when the view should end (q typed, a
// signal asked to stop, or stdin closed while it was read for keys).
bool wait_until(Clock::time_point deadline, const RawInput& input, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      return true;
    }
    pollfd pfd{.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, input.active() ? 1 : 0, static_cast<int>(left));
    if (ready < 0) {
      if (errno == EINTR) {
        continue;  // a signal: `stop` says whether to end
      }
      throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
    }
    if (ready > 0) {
      std::array<char, 64> keys{};
      const ssize_t n = ::read(STDIN_FILENO, keys.data(), keys.size());
      if (n <= 0) {
        return false;
      }
      for (ssize_t i = 0; i < n; ++i) {
        if (keys[static_cast<std::size_t>(i)] == 'q' || keys[static_cast<std::size_t>(i)] == 'Q') {
          return false;
        }
      }
    }
  }
  return false;
}

}  // namespace

std::vector<TopRow> top_rows(const nlohmann::json& previous, const nlohmann::json& current,
                             double seconds) {
  if (!(seconds > 0)) {
    throw std::invalid_argument("top_rows: the interval must be positive");
  }
  std::map<std::string, Totals> before;
  for (const auto& vif : vif_list(previous)) {
    if (vif.is_object()) {
      before[vif_name(vif)] = totals(vif);
    }
  }
  std::vector<TopRow> rows;
  for (const auto& vif : vif_list(current)) {
    if (!vif.is_object()) {
      continue;
    }
    TopRow row;
    row.vif = vif_name(vif);
    row.state =
        vif.contains("state") && vif["state"].is_string() ? vif["state"].get<std::string>() : "?";
    const Totals after = totals(vif);
    const auto found = before.find(row.vif);
    const Totals start = found != before.end() ? found->second : Totals{};
    row.tx_packets = rate(start.tx_packets, after.tx_packets, seconds);
    row.tx_bytes = rate(start.tx_bytes, after.tx_bytes, seconds);
    row.rx_packets = rate(start.rx_packets, after.rx_packets, seconds);
    row.rx_bytes = rate(start.rx_bytes, after.rx_bytes, seconds);
    row.drops = rate(start.drops, after.drops, seconds);
    rows.push_back(std::move(row));
  }
  return rows;
}

double snapshot_interval(const nlohmann::json& previous, const nlohmann::json& current,
                         double fallback) {
  const auto time = [](const nlohmann::json& answer) -> std::optional<std::int64_t> {
    if (!answer.is_object()) {
      return std::nullopt;
    }
    const auto found = answer.find("monotonic_ns");
    if (found == answer.end() || !found->is_number_integer()) {
      return std::nullopt;
    }
    return found->get<std::int64_t>();
  };
  const auto before = time(previous);
  const auto after = time(current);
  if (!before || !after || *after <= *before) {
    return fallback;
  }
  return static_cast<double>(*after - *before) / 1e9;
}

void print_top(const std::vector<TopRow>& rows, bool human_units, std::ostream& out) {
  constexpr const char* kRow = "{:<9} {:<13} {:>10} {:>12} {:>10} {:>12} {:>9}\n";
  out << fmt::format(kRow, "VIF", "STATE", "TX-PKT/s", "TX-BYTES/s", "RX-PKT/s", "RX-BYTES/s",
                     "DROPS/s");
  const auto packets = [&](double value) {
    return human_units ? human(value) : fmt::format("{:.0f}", value);
  };
  TopRow total{.vif = "total", .state = fmt::format("{} vifs", rows.size())};
  for (const TopRow& row : rows) {
    out << fmt::format(kRow, row.vif, row.state, packets(row.tx_packets), packets(row.tx_bytes),
                       packets(row.rx_packets), packets(row.rx_bytes), packets(row.drops));
    total.tx_packets += row.tx_packets;
    total.tx_bytes += row.tx_bytes;
    total.rx_packets += row.rx_packets;
    total.rx_bytes += row.rx_bytes;
    total.drops += row.drops;
  }
  out << fmt::format(kRow, total.vif, total.state, packets(total.tx_packets),
                     packets(total.tx_bytes), packets(total.rx_packets), packets(total.rx_bytes),
                     packets(total.drops));
}

int top_command(const std::string& control_socket, const TopOptions& options, bool out_is_tty,
                std::ostream& out, const std::atomic<bool>& stop) {
  if (options.interval.count() <= 0) {
    throw std::invalid_argument("--interval must be more than 0 seconds");
  }
  const nlohmann::json request{{"command", "stats"}};
  // Keys are read only when the view is on a terminal.
  const RawInput keys(out_is_tty);

  auto previous_at = Clock::now();
  nlohmann::json previous = control_request(control_socket, request);
  unsigned frames = 0;
  auto next = previous_at + options.interval;
  while (!options.count || frames < *options.count) {
    if (!wait_until(next, keys, stop)) {
      break;
    }
    const auto current_at = Clock::now();
    nlohmann::json current = control_request(control_socket, request);
    const double measured = std::chrono::duration<double>(current_at - previous_at).count();
    const double seconds = snapshot_interval(previous, current, measured);
    const auto rows = top_rows(previous, current, seconds);
    if (out_is_tty) {
      out << "\x1b[H\x1b[2J";  // home, clear screen
    } else if (frames > 0) {
      out << '\n';
    }
    out << fmt::format("vifd {}: {} vifs, rates over {:.2f} s{}\n", control_socket, rows.size(),
                       seconds, out_is_tty ? " (q quits)" : "");
    print_top(rows, out_is_tty, out);
    out.flush();
    ++frames;
    previous = std::move(current);
    previous_at = current_at;
    next += options.interval;
    // Behind (a slow vifd, a suspended terminal): the next frame is one
    // interval from now rather than a burst of catch-up frames.
    if (next < Clock::now()) {
      next = Clock::now() + options.interval;
    }
  }
  return 0;
}

}  // namespace vifd::vifctl
