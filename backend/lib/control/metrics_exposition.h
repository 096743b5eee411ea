// vifd's counters in the Prometheus text exposition format (version 0.0.4)
// and in OpenMetrics 1.0.0, rendered from the answer of the control socket's
// `stats` command: the numbers a scrape shows are the ones `vifctl stats
// --json` shows, taken from the same snapshot code.
//
// Pure functions of their arguments, so the format is tested without
// sockets. Label values (bridge names come from xenstore, written by the
// toolstack or, in a driver domain, by whoever controls it) are escaped and
// never trusted to be UTF-8.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace vifd::backend {

enum class ExpositionFormat {
  kPrometheusText,  // text/plain; version=0.0.4
  kOpenMetrics,     // application/openmetrics-text; version=1.0.0
};

// The format an HTTP Accept header asks for: OpenMetrics when it names
// application/openmetrics-text (with a q-value above 0), the classic text
// format otherwise, as Prometheus servers expect from exporters.
ExpositionFormat negotiate_format(std::string_view accept_header);

// The Content-Type of a response in `format`.
std::string_view content_type(ExpositionFormat format);

// A label value as the exposition formats quote it: backslash, double quote
// and newline escaped; bytes that are not UTF-8 replaced by U+FFFD.
std::string escape_label_value(std::string_view value);

// Every metric family (see docs/operator-guide.md, "Metrics") from a `stats`
// answer ({"vifs":[...],"host_port_worker":{...}}). Families are contiguous,
// each with HELP and TYPE; every drop reason is present for every queue,
// zero or not. OpenMetrics output ends with "# EOF".
std::string render_metrics(const nlohmann::json& stats, ExpositionFormat format);

}  // namespace vifd::backend
