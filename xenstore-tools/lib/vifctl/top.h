// vifctl top: a live per-vif view of vifd's packet, byte and drop rates,
// each the difference of two `stats` snapshots over the vifd's monotonic
// time between them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace vifd::vifctl {

// One vif's rates, per second; tx is what the guest sent, rx what it
// received (as in vifctl stats).
struct TopRow {
  std::string vif;  // DOMID/DEVID
  std::string state;
  double tx_packets = 0;
  double tx_bytes = 0;
  double rx_packets = 0;
  double rx_bytes = 0;
  double drops = 0;
};

// The rates of every vif of `current` since `previous` (two `stats`
// answers), over `seconds`. A vif absent from `previous` counts from zero
// (it appeared meanwhile); a counter that went back (the guest reconnected
// and its queues started over) counts from zero too.
std::vector<TopRow> top_rows(const nlohmann::json& previous, const nlohmann::json& current,
                             double seconds);

// The seconds between two `stats` answers by their `monotonic_ns`, or
// `fallback` when one lacks it (an older vifd) or they are not in order.
double snapshot_interval(const nlohmann::json& previous, const nlohmann::json& current,
                         double fallback);

// The table: a header, one row per vif, a total line. `human` prints byte
// rates with K/M/G suffixes (a terminal); otherwise every rate is a plain
// integer, for scripts.
void print_top(const std::vector<TopRow>& rows, bool human, std::ostream& out);

struct TopOptions {
  std::chrono::milliseconds interval{1000};
  // Frames to print before exiting; std::nullopt runs until q or Ctrl-C.
  std::optional<unsigned> count;
};

// Runs the view against the control socket. On a terminal (out_is_tty) the
// screen is redrawn each interval and `q` on stdin exits; otherwise frames
// are printed one after the other, separated by a blank line. Returns the
// exit status; `stop` (SIGINT/SIGTERM) ends it cleanly.
int top_command(const std::string& control_socket, const TopOptions& options, bool out_is_tty,
                std::ostream& out, const std::atomic<bool>& stop);

}  // namespace vifd::vifctl
