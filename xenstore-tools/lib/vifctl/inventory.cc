#include "xenstore-tools/lib/vifctl/inventory.h"

#include <fmt/format.h>

#include <limits>
#include <stdexcept>

#include "common/protocol/xenbus_state.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"

namespace vifd::vifctl {
namespace {

namespace key = xenbus::key;
using xenbus::join;

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

bool is_feature_key(const std::string& name) {
  return name.starts_with("feature-") || name.starts_with("multi-queue-") ||
         name == key::kRequestRxCopy || name == key::kXdpHeadroom;
}

nlohmann::json features_json(xs::Client& xs, const std::string& dir) {
  nlohmann::json features = nlohmann::json::object();
  const auto keys = xs.directory(dir);
  if (!keys) return features;
  for (const auto& name : *keys) {
    if (is_feature_key(name)) features[name] = value_json(xs, join(dir, name));
  }
  return features;
}

// Queue `index` of `count`; each key is shown under its xenstore name.
nlohmann::json queue_json(xs::Client& xs, const std::string& frontend, unsigned index,
                          unsigned count) {
  nlohmann::json queue{{"index", index}};
  for (const std::string_view name : {key::kTxRingRef, key::kRxRingRef, key::kEventChannel,
                                      key::kEventChannelTx, key::kEventChannelRx}) {
    auto value = value_json(xs, join(frontend, key::queue_key(index, count, name)));
    if (!value.is_null()) queue[std::string(name)] = std::move(value);
  }
  return queue;
}

// netif.h: with multi-queue-num-queues > 1 every queue's keys live under
// queue-<i>/, otherwise at the top of the frontend directory.
nlohmann::json queues_json(xs::Client& xs, const std::string& frontend) {
  nlohmann::json queues = nlohmann::json::array();
  unsigned count = 1;
  if (const auto text = xs.read(join(frontend, key::kMultiQueueNumQueues))) {
    // A guest can write anything; cap what we are willing to walk.
    count = static_cast<unsigned>(
        protocol::parse_uint(key::kMultiQueueNumQueues, *text, 1, 64).value_or(1));
  }
  if (count == 1) {
    auto queue = queue_json(xs, frontend, 0, count);
    if (queue.size() > 1) queues.push_back(std::move(queue));
    return queues;
  }
  for (unsigned i = 0; i < count; ++i) {
    queues.push_back(queue_json(xs, frontend, i, count));
  }
  return queues;
}

}  // namespace

std::string dump_json(const nlohmann::json& value, int indent) {
  return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json list_vifs(xs::Client& xs, platform::DomId backend_domid) {
  nlohmann::json vifs = nlohmann::json::array();
  const std::string root = xenbus::backend_vif_root(backend_domid);
  for (const auto domid : numeric_children(xs, root)) {
    if (domid > std::numeric_limits<platform::DomId>::max()) continue;
    for (const auto devid : numeric_children(xs, join(root, std::to_string(domid)))) {
      const auto paths =
          vif_paths(backend_domid, VifId{static_cast<platform::DomId>(domid), devid});
      // The frontend path the toolstack recorded, not one the guest could
      // redirect.
      const auto frontend = xs.read(join(paths.backend, key::kFrontend)).value_or(paths.frontend);
      vifs.push_back({{"domid", domid},
                      {"devid", devid},
                      {"backend_state", state_json(xs, join(paths.backend, key::kState))},
                      {"frontend_state", state_json(xs, join(frontend, key::kState))},
                      {"mac", string_json(xs, join(paths.backend, key::kMac))},
                      {"bridge", string_json(xs, join(paths.backend, key::kBridge))},
                      {"script", string_json(xs, join(paths.backend, key::kScript))},
                      {"online", value_json(xs, join(paths.backend, key::kOnline))},
                      {"hotplug_status", string_json(xs, join(paths.backend, key::kHotplugStatus))},
                      {"error", string_json(xs, join(paths.backend, key::kError))}});
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
  const auto frontend = xs.read(join(paths.backend, key::kFrontend)).value_or(paths.frontend);
  nlohmann::json backend{
      {"path", paths.backend},
      {"state", state_json(xs, join(paths.backend, key::kState))},
      {"online", value_json(xs, join(paths.backend, key::kOnline))},
      {"hotplug_status", string_json(xs, join(paths.backend, key::kHotplugStatus))},
      {"mac", string_json(xs, join(paths.backend, key::kMac))},
      {"bridge", string_json(xs, join(paths.backend, key::kBridge))},
      {"script", string_json(xs, join(paths.backend, key::kScript))},
      {"mtu", value_json(xs, join(paths.backend, key::kMtu))},
      {"rate", string_json(xs, join(paths.backend, key::kRate))},
      {"error", string_json(xs, join(paths.backend, key::kError))},
      {"features", features_json(xs, paths.backend)}};
  nlohmann::json front{{"path", frontend},
                       {"state", state_json(xs, join(frontend, key::kState))},
                       {"mac", string_json(xs, join(frontend, key::kMac))},
                       {"mtu", value_json(xs, join(frontend, key::kMtu))},
                       {"features", features_json(xs, frontend)},
                       {"queues", queues_json(xs, frontend)}};
  return {{"domid", id.domid}, {"devid", id.devid}, {"backend", backend}, {"frontend", front}};
}

}  // namespace vifd::vifctl
