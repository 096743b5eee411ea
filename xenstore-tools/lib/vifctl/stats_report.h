// Rendering of vifd's per-queue counters (the QueueStats JSON the data path
// publishes on the control socket) as a table for people.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {

// Keeps only the vif `id` (all when std::nullopt) of a stats response's
// "vifs" array; a response without one gives an empty array.
nlohmann::json select_vifs(const nlohmann::json& response, const std::optional<VifId>& id);

// One row per queue (packets, bytes, drops, grant-copy calls and segments,
// switch-forwarded packets and segments, notifications), then each queue's
// batch-size histogram and drops by reason. Missing counters print as 0, so
// an older vifd still renders.
void print_stats_table(const nlohmann::json& vifs, std::ostream& out);

}  // namespace vifd::vifctl
