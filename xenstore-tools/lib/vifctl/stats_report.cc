#include "xenstore-tools/lib/vifctl/stats_report.h"

#include <fmt/format.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vifd::vifctl {
namespace {

std::uint64_t counter(const nlohmann::json& object, const char* group, const char* name) {
  if (!object.is_object()) return 0;
  const auto g = object.find(group);
  if (g == object.end() || !g->is_object()) return 0;
  const auto v = g->find(name);
  return v != g->end() && v->is_number_unsigned() ? v->get<std::uint64_t>() : 0;
}

std::uint64_t total(const nlohmann::json& object, const char* group) {
  std::uint64_t sum = 0;
  if (!object.is_object()) return 0;
  const auto g = object.find(group);
  if (g == object.end() || !g->is_object()) return 0;
  for (const auto& [key, value] : g->items()) {
    if (value.is_number_unsigned()) sum += value.get<std::uint64_t>();
  }
  return sum;
}

std::string nonzero_entries(const nlohmann::json& object, const char* group) {
  std::vector<std::string> parts;
  if (object.is_object() && object.contains(group) && object[group].is_object()) {
    for (const auto& [key, value] : object[group].items()) {
      if (value.is_number_unsigned() && value.get<std::uint64_t>() != 0) {
        parts.push_back(fmt::format("{}={}", key, value.get<std::uint64_t>()));
      }
    }
  }
  return parts.empty() ? "-" : fmt::format("{}", fmt::join(parts, " "));
}

std::string text_or(const nlohmann::json& object, const char* key, const char* fallback) {
  if (object.is_object() && object.contains(key) && object[key].is_string()) {
    return object[key].get<std::string>();
  }
  return fallback;
}

}  // namespace

nlohmann::json select_vifs(const nlohmann::json& response, const std::optional<VifId>& id) {
  nlohmann::json selected = nlohmann::json::array();
  if (!response.is_object() || !response.contains("vifs") || !response["vifs"].is_array()) {
    return selected;
  }
  for (const auto& vif : response["vifs"]) {
    if (!vif.is_object()) continue;
    if (id && (vif.value("domid", -1) != id->domid ||
               vif.value("devid", std::int64_t{-1}) != std::int64_t{id->devid})) {
      continue;
    }
    selected.push_back(vif);
  }
  return selected;
}

void print_stats_table(const nlohmann::json& vifs, std::ostream& out) {
  constexpr const char* kRow =
      "{:<7} {:>2} {:>11} {:>14} {:>11} {:>14} {:>8} {:>10} {:>11} {:>10} {:>10} {:>10} {:>10}\n";
  out << fmt::format(kRow, "vif", "q", "tx-pkts", "tx-bytes", "rx-pkts", "rx-bytes", "drops",
                     "gcopy-call", "gcopy-segs", "sw-fwd-pkt", "sw-fwd-seg", "notif-sent",
                     "notif-recv");
  std::vector<std::string> details;
  for (const auto& vif : vifs) {
    const std::string name = fmt::format("{}/{}", vif.value("domid", -1), vif.value("devid", -1));
    details.push_back(fmt::format("{}: {}, tap {}, switch {}", name, text_or(vif, "state", "?"),
                                  text_or(vif, "tap", "-"), text_or(vif, "switch", "-")));
    if (!vif.contains("queues") || !vif["queues"].is_array()) continue;
    for (const auto& q : vif["queues"]) {
      const auto index = q.is_object() ? q.value("index", 0) : 0;
      out << fmt::format(
          kRow, name, index, counter(q, "tx", "packets"), counter(q, "tx", "bytes"),
          counter(q, "rx", "packets"), counter(q, "rx", "bytes"), total(q, "drops"),
          counter(q, "grant_copy", "calls"), counter(q, "grant_copy", "segments"),
          counter(q, "switch", "forwarded_packets"), counter(q, "switch", "forwarded_segments"),
          counter(q, "notifications", "sent"), counter(q, "notifications", "received"));
      details.push_back(
          fmt::format("  q{} batch sizes: {}", index, nonzero_entries(q, "batch_histogram")));
      details.push_back(fmt::format("  q{} drops: {}", index, nonzero_entries(q, "drops")));
      const auto spurious = q.is_object() ? q.find("spurious_events") : q.end();
      details.push_back(fmt::format(
          "  q{} rx backlog: {}, spurious events: {}", index, nonzero_entries(q, "rx_backlog"),
          spurious != q.end() && spurious->is_number_unsigned() ? spurious->get<std::uint64_t>()
                                                                : 0));
      if (q.is_object() && q.contains("static_grants")) {
        // Pages the backend keeps mapped for this queue, and the copies
        // they turned from grant copies into memcpy.
        details.push_back(fmt::format(
            "  q{} static grants: {} pages mapped, {} memcpy segments, {} memcpy bytes", index,
            counter(q, "static_grants", "mappings"), counter(q, "static_grants", "memcpy_segments"),
            counter(q, "static_grants", "memcpy_bytes")));
      }
    }
  }
  for (const auto& line : details) out << line << '\n';
}

}  // namespace vifd::vifctl
