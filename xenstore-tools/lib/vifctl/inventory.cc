#include "xenstore-tools/lib/vifctl/inventory.h"

#include <fmt/format.h>

#include <limits>
#include <stdexcept>

#include "common/protocol/xenbus_state.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"

namespace vifd::vifctl {
namespace {

// A node's value as JSON: absent -> null, a "%u" number -> number, else the
// raw string.
nlohmann::json value_json(xs::Client& xs, const std::string& path) {
  const auto text = xs.read(path);
  if (!text) return nullptr;
  const auto number =
      protocol::parse_uint(path, *text, 0, std::numeric_limits<std::uint64_t>::max());
  if (number) return number.value();
  return *text;
}

nlohmann::json string_json(xs::Client& xs, const std::string& path) {
  const auto text = xs.read(path);
  if (!text) return nullptr;
  return *text;
}

nlohmann::json state_json(xs::Client& xs, const std::string& path) {
  const auto text = xs.read(path);
  if (!text) return nullptr;
  const auto state = protocol::parse_xenbus_state(path, *text);
  if (!state) return {{"value", nullptr}, {"name", "invalid"}, {"raw", *text}};
  return {{"value", static_cast<unsigned>(state.value())},
          {"name", std::string(protocol::name(state.value()))}};
}

bool is_feature_key(const std::string& key) {
  return key.starts_with("feature-") || key.starts_with("multi-queue-") ||
         key == "request-rx-copy" || key == "xdp-headroom";
}

nlohmann::json features_json(xs::Client& xs, const std::string& dir) {
  nlohmann::json features = nlohmann::json::object();
  const auto keys = xs.directory(dir);
  if (!keys) return features;
  for (const auto& key : *keys) {
    if (is_feature_key(key)) features[key] = value_json(xs, dir + "/" + key);
  }
  return features;
}

nlohmann::json queue_json(xs::Client& xs, const std::string& dir, std::uint64_t index) {
  nlohmann::json queue{{"index", index}};
  for (const char* key :
       {"tx-ring-ref", "rx-ring-ref", "event-channel", "event-channel-tx", "event-channel-rx"}) {
    auto value = value_json(xs, dir + "/" + key);
    if (!value.is_null()) queue[key] = std::move(value);
  }
  return queue;
}

// netif.h: with multi-queue-num-queues > 1 every queue's keys live under
// queue-<i>/, otherwise at the top of the frontend directory.
nlohmann::json queues_json(xs::Client& xs, const std::string& frontend) {
  nlohmann::json queues = nlohmann::json::array();
  std::uint64_t count = 1;
  if (const auto text = xs.read(frontend + "/multi-queue-num-queues")) {
    // A guest can write anything; cap what we are willing to walk.
    count = protocol::parse_uint("multi-queue-num-queues", *text, 1, 64).value_or(1);
  }
  if (count == 1) {
    auto queue = queue_json(xs, frontend, 0);
    if (queue.size() > 1) queues.push_back(std::move(queue));
    return queues;
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    queues.push_back(queue_json(xs, fmt::format("{}/queue-{}", frontend, i), i));
  }
  return queues;
}

}  // namespace

std::string dump_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json list_vifs(xs::Client& xs, platform::DomId backend_domid) {
  nlohmann::json vifs = nlohmann::json::array();
  const std::string root = backend_vif_root(backend_domid);
  for (const auto domid : numeric_children(xs, root)) {
    if (domid > std::numeric_limits<platform::DomId>::max()) continue;
    for (const auto devid : numeric_children(xs, fmt::format("{}/{}", root, domid))) {
      const auto paths =
          vif_paths(backend_domid, VifId{static_cast<platform::DomId>(domid), devid});
      // The frontend path the toolstack recorded, not one the guest could
      // redirect.
      const auto frontend = xs.read(paths.backend + "/frontend").value_or(paths.frontend);
      vifs.push_back({{"domid", domid},
                      {"devid", devid},
                      {"backend_state", state_json(xs, paths.backend + "/state")},
                      {"frontend_state", state_json(xs, frontend + "/state")},
                      {"mac", string_json(xs, paths.backend + "/mac")},
                      {"bridge", string_json(xs, paths.backend + "/bridge")},
                      {"script", string_json(xs, paths.backend + "/script")},
                      {"online", value_json(xs, paths.backend + "/online")},
                      {"hotplug_status", string_json(xs, paths.backend + "/hotplug-status")}});
    }
  }
  return vifs;
}

nlohmann::json show_vif(xs::Client& xs, platform::DomId backend_domid, VifId id) {
  const auto paths = vif_paths(backend_domid, id);
  if (!xs.directory(paths.backend)) {
    throw std::runtime_error(fmt::format("vif {}/{} does not exist ({} is not in xenstore)",
                                         id.domid, id.devid, paths.backend));
  }
  const auto frontend = xs.read(paths.backend + "/frontend").value_or(paths.frontend);
  nlohmann::json backend{{"path", paths.backend},
                         {"state", state_json(xs, paths.backend + "/state")},
                         {"online", value_json(xs, paths.backend + "/online")},
                         {"hotplug_status", string_json(xs, paths.backend + "/hotplug-status")},
                         {"mac", string_json(xs, paths.backend + "/mac")},
                         {"bridge", string_json(xs, paths.backend + "/bridge")},
                         {"script", string_json(xs, paths.backend + "/script")},
                         {"mtu", value_json(xs, paths.backend + "/mtu")},
                         {"rate", string_json(xs, paths.backend + "/rate")},
                         {"features", features_json(xs, paths.backend)}};
  nlohmann::json front{{"path", frontend},
                       {"state", state_json(xs, frontend + "/state")},
                       {"mac", string_json(xs, frontend + "/mac")},
                       {"mtu", value_json(xs, frontend + "/mtu")},
                       {"features", features_json(xs, frontend)},
                       {"queues", queues_json(xs, frontend)}};
  return {{"domid", id.domid}, {"devid", id.devid}, {"backend", backend}, {"frontend", front}};
}

}  // namespace vifd::vifctl
