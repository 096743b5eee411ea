#include "backend/lib/control/metrics_exposition.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

#include "backend/lib/datapath/queue_stats.h"
#include "common/protocol/xenbus_state.h"

namespace vifd::backend {
namespace {

std::string_view trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) {
    return {};
  }
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The q-value of one media range of an Accept header (1 when absent, 0 when
// malformed: a range we cannot read is not a preference).
double q_value(std::string_view parameters) {
  while (!parameters.empty()) {
    const auto semicolon = parameters.find(';');
    const std::string_view parameter = trim(parameters.substr(0, semicolon));
    parameters =
        semicolon == std::string_view::npos ? std::string_view{} : parameters.substr(semicolon + 1);
    const auto equals = parameter.find('=');
    if (equals == std::string_view::npos || !iequals(trim(parameter.substr(0, equals)), "q")) {
      continue;
    }
    const std::string_view number = trim(parameter.substr(equals + 1));
    // RFC 9110: 0, 0.xxx, 1 or 1.000.
    if (number.empty() || number.size() > 5 || (number[0] != '0' && number[0] != '1')) {
      return 0;
    }
    double value = number[0] - '0';
    double scale = 0.1;
    for (std::size_t i = 2; i < number.size(); ++i) {
      if (number[1] != '.' || std::isdigit(static_cast<unsigned char>(number[i])) == 0) {
        return 0;
      }
      value += (number[i] - '0') * scale;
      scale /= 10;
    }
    return std::min(value, 1.0);
  }
  return 1;
}

// ---- UTF-8 ----

// The length of the valid UTF-8 sequence starting text[0], or 0.
std::size_t utf8_sequence_length(std::string_view text) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = byte(0);
  std::size_t length = 0;
  unsigned char min_second = 0x80;
  unsigned char max_second = 0xBF;
  if (lead < 0x80) {
    return 1;
  }
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    min_second = lead == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    max_second = lead == 0xED ? 0x9F : 0xBF;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    min_second = lead == 0xF0 ? 0x90 : 0x80;
    max_second = lead == 0xF4 ? 0x8F : 0xBF;  // at most U+10FFFF
  } else {
    return 0;
  }
  if (text.size() < length || byte(1) < min_second || byte(1) > max_second) {
    return 0;
  }
  for (std::size_t i = 2; i < length; ++i) {
    if (byte(i) < 0x80 || byte(i) > 0xBF) {
      return 0;
    }
  }
  return length;
}

// ---- reading the stats answer ----
// The answer is built by this daemon, but a missing field reads as zero
// rather than throwing in the middle of a scrape.

std::uint64_t unsigned_at(const nlohmann::json& object, std::string_view group,
                          std::string_view key) {
  const nlohmann::json* node = &object;
  for (const std::string_view step : {group, key}) {
    if (step.empty()) {
      continue;
    }
    if (!node->is_object()) {
      return 0;
    }
    const auto found = node->find(step);
    if (found == node->end()) {
      return 0;
    }
    node = &*found;
  }
  if (node->is_number_unsigned()) {
    return node->get<std::uint64_t>();
  }
  if (node->is_number_integer() && node->get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(node->get<std::int64_t>());
  }
  if (node->is_boolean()) {
    return node->get<bool>() ? 1 : 0;
  }
  return 0;
}

std::string string_at(const nlohmann::json& object, std::string_view key) {
  const auto found = object.find(key);
  return found != object.end() && found->is_string() ? found->get<std::string>() : std::string();
}

// The XenbusState number of a state name in a vif's "state" (0, Unknown,
// when it is not one).
unsigned state_number(std::string_view name) {
  for (unsigned value = 0; value <= 8; ++value) {
    if (protocol::name(static_cast<protocol::XenbusState>(value)) == name) {
      return value;
    }
  }
  return 0;
}

// ---- writing ----

enum class Type { kCounter, kGauge };

class Writer {
 public:
  explicit Writer(ExpositionFormat format) : format_(format) {}

  // Starts a family. `name` is without the `_total` a counter's samples
  // carry: OpenMetrics names the family so, the classic format names it
  // like its samples.
  void family(std::string_view name, Type type, std::string_view help) {
    sample_name_ = std::string(name);
    if (type == Type::kCounter) {
      sample_name_ += "_total";
    }
    const std::string_view family_name =
        format_ == ExpositionFormat::kOpenMetrics ? name : std::string_view(sample_name_);
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", family_name, help,
                   family_name, type == Type::kCounter ? "counter" : "gauge");
  }

  void sample(std::string_view labels, std::uint64_t value) {
    fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", sample_name_, labels, value);
  }
  void sample(std::string_view labels, double value) {
    fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", sample_name_, labels, value);
  }
  void sample(std::uint64_t value) {
    fmt::format_to(std::back_inserter(out_), "{} {}\n", sample_name_, value);
  }
  void sample(double value) {
    fmt::format_to(std::back_inserter(out_), "{} {}\n", sample_name_, value);
  }

  std::string finish() {
    if (format_ == ExpositionFormat::kOpenMetrics) {
      out_ += "# EOF\n";
    }
    return std::move(out_);
  }

 private:
  ExpositionFormat format_;
  std::string sample_name_;
  std::string out_;
};

struct VifView {
  const nlohmann::json* vif;
  std::string labels;  // domain, devid, bridge, tap
};

struct QueueView {
  const VifView* vif;
  const nlohmann::json* queue;
  std::string labels;  // the vif's and queue
};

// A per-queue counter read from the QueueStats JSON ({group:{key:n}} or
// {key:n} with an empty group).
struct QueueCounter {
  std::string_view name;
  std::string_view group;
  std::string_view key;
  std::string_view help;
};

constexpr std::array kQueueCounters{
    QueueCounter{"vifd_queue_tx_packets", "tx", "packets",
                 "Packets the guest sent that were accepted (to the TAP or the switch)."},
    QueueCounter{"vifd_queue_tx_bytes", "tx", "bytes", "Bytes of the accepted guest packets."},
    QueueCounter{"vifd_queue_rx_packets", "rx", "packets", "Packets delivered to the guest."},
    QueueCounter{"vifd_queue_rx_bytes", "rx", "bytes", "Bytes of the packets delivered."},
    QueueCounter{"vifd_queue_grant_copy_calls", "grant_copy", "calls",
                 "Grant-copy hypercalls (one per batch)."},
    QueueCounter{"vifd_queue_grant_copy_segments", "grant_copy", "segments",
                 "Grant-copy segments."},
    QueueCounter{"vifd_queue_grant_copy_bytes", "grant_copy", "bytes", "Bytes grant-copied."},
    QueueCounter{"vifd_queue_static_grant_memcpy_segments", "static_grants", "memcpy_segments",
                 "Copy segments served by memcpy through static grant mappings."},
    QueueCounter{"vifd_queue_static_grant_memcpy_bytes", "static_grants", "memcpy_bytes",
                 "Bytes copied by memcpy through static grant mappings."},
    QueueCounter{"vifd_queue_switch_forwarded_packets", "switch", "forwarded_packets",
                 "Guest packets the in-process switch delivered to another vif."},
    QueueCounter{"vifd_queue_switch_forwarded_segments", "switch", "forwarded_segments",
                 "TX slots of the packets forwarded by the switch."},
    QueueCounter{"vifd_queue_switch_received_packets", "switch", "received_packets",
                 "Packets received from another vif through the switch."},
    QueueCounter{"vifd_queue_switch_received_segments", "switch", "received_segments",
                 "Guest-to-guest grant-copy segments of the packets received."},
    QueueCounter{"vifd_queue_tap_writes", "tap", "writes", "Frames written to the TAP."},
    QueueCounter{"vifd_queue_tap_reads", "tap", "reads", "Frames read from the TAP."},
    QueueCounter{"vifd_queue_notifications_sent", "notifications", "sent",
                 "Event-channel notifications sent to the guest."},
    QueueCounter{"vifd_queue_notifications_received", "notifications", "received",
                 "Event-channel notifications received from the guest."},
    QueueCounter{"vifd_queue_rx_stalls", "", "rx_stalls",
                 "Times the guest posted no RX buffers for longer than the stall timeout."},
    QueueCounter{"vifd_queue_tx_credit_stalls", "", "tx_credit_stalls",
                 "Times the rate limit (the rate key) stopped guest TX."},
    QueueCounter{"vifd_queue_multicast_updates", "", "multicast_updates",
                 "Multicast filter additions and removals honoured."},
    QueueCounter{"vifd_queue_loop_iterations", "", "loop_iterations",
                 "Turns of the queue thread's loop."},
    QueueCounter{"vifd_queue_spurious_events", "", "spurious_events",
                 "Event-channel deliveries that brought no work."},
};

struct VifCounter {
  std::string_view name;
  std::string_view key;
  std::string_view help;
};

constexpr std::array kVifCounters{
    VifCounter{"vifd_vif_watch_events_handled", "watch_events_handled",
               "Xenstore watch callbacks run for the vif."},
    VifCounter{"vifd_vif_watch_events_coalesced", "watch_events_coalesced",
               "Watch events dropped while a callback for the same watch was pending."},
    VifCounter{"vifd_vif_watch_events_paced", "watch_events_paced",
               "Watch callbacks held back to keep one watch's callbacks apart."},
    VifCounter{"vifd_vif_watch_suspensions", "watch_suspensions",
               "Times a frontend watch was suspended because its events came too fast."},
    VifCounter{"vifd_vif_reconnects_paced", "reconnects_paced",
               "Frontend reconnects that had to wait for the reconnect pacing."},
};

std::string vif_labels(const nlohmann::json& vif) {
  const auto bridge = vif.find("bridge");
  const std::string bridge_name =
      bridge != vif.end() && bridge->is_string() ? bridge->get<std::string>() : std::string();
  return fmt::format(R"(domain="{}",devid="{}",bridge="{}",tap="{}")",
                     unsigned_at(vif, "", "domid"), unsigned_at(vif, "", "devid"),
                     escape_label_value(bridge_name), escape_label_value(string_at(vif, "tap")));
}

}  // namespace

ExpositionFormat negotiate_format(std::string_view accept_header) {
  double openmetrics = 0;
  double text = 0;
  while (!accept_header.empty()) {
    const auto comma = accept_header.find(',');
    const std::string_view range = accept_header.substr(0, comma);
    accept_header =
        comma == std::string_view::npos ? std::string_view{} : accept_header.substr(comma + 1);
    const auto semicolon = range.find(';');
    const std::string_view media_type = trim(range.substr(0, semicolon));
    const double q =
        semicolon == std::string_view::npos ? 1.0 : q_value(range.substr(semicolon + 1));
    if (iequals(media_type, "application/openmetrics-text")) {
      openmetrics = std::max(openmetrics, q);
    } else if (iequals(media_type, "text/plain")) {
      text = std::max(text, q);
    }
  }
  return openmetrics > 0 && openmetrics >= text ? ExpositionFormat::kOpenMetrics
                                                : ExpositionFormat::kPrometheusText;
}

std::string_view content_type(ExpositionFormat format) {
  return format == ExpositionFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string escape_label_value(std::string_view value) {
  std::string escaped;
  escaped.reserve(value.size());
  while (!value.empty()) {
    const std::size_t length = utf8_sequence_length(value);
    if (length == 0) {
      escaped += "\xEF\xBF\xBD";  // U+FFFD for a byte that starts no valid sequence
      value.remove_prefix(1);
      continue;
    }
    if (length == 1) {
      switch (value[0]) {
        case '\\':
          escaped += "\\\\";
          break;
        case '"':
          escaped += "\\\"";
          break;
        case '\n':
          escaped += "\\n";
          break;
        default:
          escaped += value[0];
      }
    } else {
      escaped.append(value.substr(0, length));
    }
    value.remove_prefix(length);
  }
  return escaped;
}

std::string render_metrics(const nlohmann::json& stats, ExpositionFormat format) {
  std::vector<VifView> vifs;
  if (const auto list = stats.find("vifs"); list != stats.end() && list->is_array()) {
    vifs.reserve(list->size());
    for (const auto& vif : *list) {
      if (vif.is_object()) {
        vifs.push_back({&vif, vif_labels(vif)});
      }
    }
  }
  std::vector<QueueView> queues;
  for (const VifView& vif : vifs) {
    const auto list = vif.vif->find("queues");
    if (list == vif.vif->end() || !list->is_array()) {
      continue;
    }
    for (const auto& queue : *list) {
      queues.push_back(
          {&vif, &queue,
           fmt::format("{},queue=\"{}\"", vif.labels, unsigned_at(queue, "", "index"))});
    }
  }

  Writer out(format);

  // ---- daemon ----
  out.family("vifd_vifs", Type::kGauge, "Vifs this vifd serves, in any state.");
  out.sample(std::uint64_t{vifs.size()});
  const nlohmann::json empty = nlohmann::json::object();
  const auto worker_found = stats.find("host_port_worker");
  const nlohmann::json& worker = worker_found != stats.end() ? *worker_found : empty;
  out.family("vifd_host_port_worker_jobs_run", Type::kCounter,
             "TAP steps (taking the kernel's rtnl lock) run by the host-port worker.");
  out.sample(unsigned_at(worker, "", "jobs_run"));
  out.family("vifd_host_port_worker_jobs_failed", Type::kCounter, "TAP steps that failed.");
  out.sample(unsigned_at(worker, "", "jobs_failed"));
  out.family("vifd_host_port_worker_jobs_pending", Type::kGauge,
             "TAP steps submitted and not finished.");
  out.sample(unsigned_at(worker, "", "jobs_pending"));
  out.family("vifd_host_port_worker_longest_job_seconds", Type::kGauge,
             "The longest TAP step so far (a host holding rtnl shows here).");
  const auto longest = worker.find("longest_job_ms");
  out.sample(longest != worker.end() && longest->is_number() ? longest->get<double>() / 1000.0
                                                             : 0.0);

  if (const auto endpoint = stats.find("metrics_endpoint");
      endpoint != stats.end() && endpoint->is_object()) {
    out.family("vifd_metrics_scrapes", Type::kCounter, "Metrics requests answered (200).");
    out.sample(unsigned_at(*endpoint, "", "scrapes"));
    out.family("vifd_metrics_bad_requests", Type::kCounter,
               "Metrics requests refused (4xx: malformed, oversized, wrong method or path).");
    out.sample(unsigned_at(*endpoint, "", "bad_requests"));
    out.family("vifd_metrics_timeouts", Type::kCounter,
               "Metrics connections closed because a request or the reading of an answer took "
               "too long.");
    out.sample(unsigned_at(*endpoint, "", "timeouts"));
    out.family("vifd_metrics_connections_evicted", Type::kCounter,
               "Metrics connections closed to admit a newer one.");
    out.sample(unsigned_at(*endpoint, "", "connections_evicted"));
  }

  // ---- per vif ----
  out.family("vifd_vif_state", Type::kGauge,
             "XenbusState of the backend (1 Initialising, 2 InitWait, 4 Connected, 5 Closing, "
             "6 Closed).");
  for (const VifView& vif : vifs) {
    out.sample(vif.labels, std::uint64_t{state_number(string_at(*vif.vif, "state"))});
  }
  out.family("vifd_vif_failed", Type::kGauge,
             "1 while the vif has an error (vifctl show prints it), else 0.");
  for (const VifView& vif : vifs) {
    out.sample(vif.labels, std::uint64_t{vif.vif->contains("error") ? 1U : 0U});
  }
  out.family("vifd_vif_queues", Type::kGauge, "Queues of the vif's connection (0 unconnected).");
  for (const VifView& vif : vifs) {
    const auto list = vif.vif->find("queues");
    out.sample(vif.labels,
               std::uint64_t{list != vif.vif->end() && list->is_array() ? list->size() : 0});
  }
  out.family("vifd_vif_captures", Type::kGauge, "vifctl capture sessions recording the vif.");
  for (const VifView& vif : vifs) {
    out.sample(vif.labels, unsigned_at(*vif.vif, "", "captures"));
  }
  for (const VifCounter& counter : kVifCounters) {
    out.family(counter.name, Type::kCounter, counter.help);
    for (const VifView& vif : vifs) {
      out.sample(vif.labels, unsigned_at(*vif.vif, "", counter.key));
    }
  }
  // Sums over the queues of the connection: what `vifctl top` turns into
  // rates. They restart from zero when the guest reconnects, as the
  // queues' own counters do.
  const auto vif_sum = [&](const VifView& vif,
                           const std::function<std::uint64_t(const nlohmann::json&)>& value) {
    std::uint64_t sum = 0;
    for (const QueueView& queue : queues) {
      if (queue.vif == &vif) {
        sum += value(*queue.queue);
      }
    }
    return sum;
  };
  for (const QueueCounter& counter : std::span(kQueueCounters).first(4)) {
    const std::string name = fmt::format("vifd_vif{}", counter.name.substr(10));
    out.family(name, Type::kCounter, fmt::format("{} Sum over the vif's queues.", counter.help));
    for (const VifView& vif : vifs) {
      out.sample(vif.labels, vif_sum(vif, [&](const nlohmann::json& queue) {
                   return unsigned_at(queue, counter.group, counter.key);
                 }));
    }
  }
  out.family("vifd_vif_drops", Type::kCounter,
             "Packets dropped, every reason, sum over the vif's queues.");
  for (const VifView& vif : vifs) {
    out.sample(vif.labels, vif_sum(vif, [](const nlohmann::json& queue) {
                 std::uint64_t sum = 0;
                 for (std::size_t i = 0; i < kDropReasonCount; ++i) {
                   sum += unsigned_at(queue, "drops", to_string(static_cast<DropReason>(i)));
                 }
                 return sum;
               }));
  }

  // ---- per queue ----
  for (const QueueCounter& counter : kQueueCounters) {
    out.family(counter.name, Type::kCounter, counter.help);
    for (const QueueView& queue : queues) {
      out.sample(queue.labels, unsigned_at(*queue.queue, counter.group, counter.key));
    }
  }
  out.family("vifd_queue_drops", Type::kCounter,
             "Packets dropped, by reason (docs/operator-guide.md lists the reasons).");
  for (const QueueView& queue : queues) {
    for (std::size_t i = 0; i < kDropReasonCount; ++i) {
      const std::string_view reason = to_string(static_cast<DropReason>(i));
      out.sample(fmt::format("{},reason=\"{}\"", queue.labels, reason),
                 unsigned_at(*queue.queue, "drops", reason));
    }
  }
  out.family("vifd_queue_batches", Type::kCounter,
             "Batches of packets handled at once, both directions, by size range.");
  for (const QueueView& queue : queues) {
    for (std::size_t i = 0; i < kBatchHistogramBuckets; ++i) {
      const std::string_view size = batch_histogram_label(i);
      out.sample(fmt::format("{},size=\"{}\"", queue.labels, size),
                 unsigned_at(*queue.queue, "batch_histogram", size));
    }
  }
  out.family("vifd_queue_static_grant_mappings", Type::kGauge,
             "Frontend pages the queue keeps mapped (static grant mappings).");
  for (const QueueView& queue : queues) {
    out.sample(queue.labels, unsigned_at(*queue.queue, "static_grants", "mappings"));
  }
  out.family("vifd_queue_rx_backlog_bytes", Type::kGauge,
             "Bytes of frames waiting for the guest's RX buffers.");
  for (const QueueView& queue : queues) {
    out.sample(queue.labels, unsigned_at(*queue.queue, "rx_backlog", "bytes"));
  }
  out.family("vifd_queue_rx_backlog_peak_bytes", Type::kGauge,
             "The largest RX backlog so far, in bytes.");
  for (const QueueView& queue : queues) {
    out.sample(queue.labels, unsigned_at(*queue.queue, "rx_backlog", "peak_bytes"));
  }
  out.family("vifd_queue_fatal_error", Type::kGauge,
             "1 once the queue stopped on a fatal guest error, else 0.");
  for (const QueueView& queue : queues) {
    out.sample(queue.labels, unsigned_at(*queue.queue, "", "fatal_error"));
  }
  return out.finish();
}

}  // namespace vifd::backend
