#include "backend/lib/control/vif_backend_daemon.h"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <thread>
#include <vector>

#include "backend/lib/control/control_socket.h"
#include "backend/lib/control/log.h"
#include "backend/lib/datapath/switch.h"

namespace vifd::backend {
namespace {

std::vector<std::string> split_path(std::string_view relative) {
  std::vector<std::string> parts;
  while (!relative.empty()) {
    const auto slash = relative.find('/');
    parts.emplace_back(relative.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    relative.remove_prefix(slash + 1);
  }
  return parts;
}

}  // namespace

unsigned default_max_queues() {
  const unsigned cpus = std::max(1U, std::thread::hardware_concurrency());
  return std::min(4U, cpus);
}

VifBackendDaemon::VifBackendDaemon(boost::asio::io_context& io, platform::Platform& platform,
                                   xs::Client& xenstore, DaemonOptions options)
    : io_(io),
      platform_(platform),
      options_(std::move(options)),
      base_path_(fmt::format("/local/domain/{}/backend/vif", platform.self_domid())),
      watcher_(io, xenstore),
      environment_{io, watcher_, platform, options_.max_queues, nullptr} {
  if (options_.fast_path) {
    environment_.switch_for = [this](const std::string& bridge) { return switch_for(bridge); };
  }
}

VifBackendDaemon::~VifBackendDaemon() {
  control_socket_.reset();
  vifs_.clear();
}

void VifBackendDaemon::start() {
  if (started_) {
    return;
  }
  started_ = true;
  if (!options_.control_socket.empty()) {
    control_socket_ = std::make_unique<ControlSocket>(
        io_, options_.control_socket,
        [this](const std::string& line) { return handle_request(line); });
  }
  control_log().info(
      "serving {} (domains: {}, max queues {}, fast path {})", base_path_,
      options_.domains.empty() ? "all" : fmt::format("{}", fmt::join(options_.domains, ",")),
      options_.max_queues, options_.fast_path ? "on" : "off");
  // The first event (sent on registration) runs the initial scan.
  watcher_.watch(base_path_, [this](const std::string& path) { on_change(path); });
}

void VifBackendDaemon::shutdown(bool close_vifs) {
  control_socket_.reset();
  for (auto& [id, vif] : vifs_) {
    vif->shutdown(close_vifs);
  }
  vifs_.clear();
  started_ = false;
}

void VifBackendDaemon::on_change(const std::string& path) {
  if (path.size() <= base_path_.size() || !path.starts_with(base_path_ + "/")) {
    scan_all();
    return;
  }
  const auto parts = split_path(std::string_view(path).substr(base_path_.size() + 1));
  if (parts.size() == 1) {
    scan_domain(parts[0]);
  } else if (parts.size() >= 2) {
    check_vif(parts[0], parts[1]);
  }
}

void VifBackendDaemon::scan_all() {
  const auto domains = watcher_.client().directory(base_path_).value_or(std::vector<std::string>{});
  for (const auto& domid_name : domains) {
    scan_domain(domid_name);
  }
  // Vifs whose whole domain directory went away.
  std::vector<VifId> gone;
  for (const auto& [id, vif] : vifs_) {
    if (std::find(domains.begin(), domains.end(), std::to_string(id.domid)) == domains.end()) {
      gone.push_back(id);
    }
  }
  for (const auto& id : gone) {
    control_log().info("{}: backend directory removed", tap_name(id));
    vifs_.erase(id);
  }
}

void VifBackendDaemon::scan_domain(const std::string& domid_name) {
  const auto devices = watcher_.client()
                           .directory(base_path_ + "/" + domid_name)
                           .value_or(std::vector<std::string>{});
  for (const auto& devid_name : devices) {
    check_vif(domid_name, devid_name);
  }
  std::vector<VifId> known;
  for (const auto& [id, vif] : vifs_) {
    if (std::to_string(id.domid) == domid_name) {
      known.push_back(id);
    }
  }
  for (const auto& id : known) {
    check_vif(domid_name, std::to_string(id.devid));
  }
}

std::optional<VifId> VifBackendDaemon::parse_vif_names(const std::string& domid_name,
                                                       const std::string& devid_name) {
  const auto domid = protocol::parse_domid("domid", domid_name);
  const auto devid = protocol::parse_uint("devid", devid_name, 0, kMaxDevid);
  if (domid && devid) {
    return VifId{domid.value(), static_cast<std::uint32_t>(devid.value())};
  }
  const std::string name = domid_name + "/" + devid_name;
  if (ignored_names_.insert(name).second) {
    control_log().warn("ignoring {}/{}: {}", base_path_, name,
                       domid ? devid.error().message() : domid.error().message());
  }
  return std::nullopt;
}

void VifBackendDaemon::check_vif(const std::string& domid_name, const std::string& devid_name) {
  const auto id = parse_vif_names(domid_name, devid_name);
  if (!id || (!options_.domains.empty() && !options_.domains.contains(id->domid))) {
    return;
  }
  const std::string path = fmt::format("{}/{}/{}", base_path_, id->domid, id->devid);
  xs::Client& client = watcher_.client();
  const auto it = vifs_.find(*id);
  if (it != vifs_.end()) {
    if (!client.read(path)) {
      control_log().info("{}: backend directory removed", tap_name(*id));
      vifs_.erase(it);
    }
    return;
  }
  // libxl writes a device in one transaction with `state` among its keys; a
  // directory without it is still being written by a non-transactional tool.
  if (!client.read(path + "/state")) {
    return;
  }
  control_log().info("{}: new vif at {}", tap_name(*id), path);
  auto vif = std::make_unique<Vif>(environment_, *id, path);
  Vif& started = *vif;
  vifs_.emplace(*id, std::move(vif));
  try {
    started.start();
  } catch (const std::exception& e) {
    // start() reports configuration problems itself; this is xenstore
    // failing underneath (e.g. the device vanished mid-way).
    control_log().error("{}: {}", tap_name(*id), e.what());
  }
}

std::shared_ptr<Switch> VifBackendDaemon::switch_for(const std::string& bridge) {
  auto& slot = switches_[bridge];
  if (auto existing = slot.lock()) {
    return existing;
  }
  auto created = std::make_shared<Switch>(bridge);
  slot = created;
  return created;
}

nlohmann::json VifBackendDaemon::describe(const std::optional<VifId>& only) const {
  nlohmann::json vifs = nlohmann::json::array();
  for (const auto& [id, vif] : vifs_) {
    if (!only || *only == id) {
      vifs.push_back(vif->describe());
    }
  }
  return vifs;
}

nlohmann::json VifBackendDaemon::handle_request(const std::string& line) const {
  const auto error = [](const std::string& message) {
    return nlohmann::json{{"ok", false}, {"error", message}};
  };
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_discarded() || !request.is_object()) {
    return error("request is not a JSON object");
  }
  const auto command = request.find("command");
  if (command == request.end() || !command->is_string()) {
    return error("missing \"command\"");
  }
  if (*command == "stats") {
    return {{"ok", true}, {"vifs", describe(std::nullopt)}};
  }
  if (*command == "show") {
    const auto domid = request.find("domid");
    const auto devid = request.find("devid");
    if (domid == request.end() || !domid->is_number_unsigned() || devid == request.end() ||
        !devid->is_number_unsigned()) {
      return error("\"show\" needs unsigned \"domid\" and \"devid\"");
    }
    const auto domid_value = domid->get<std::uint64_t>();
    const auto devid_value = devid->get<std::uint64_t>();
    if (domid_value >= platform::kDomidSelf || devid_value > kMaxDevid) {
      return error("no such vif");
    }
    const VifId id{static_cast<platform::DomId>(domid_value),
                   static_cast<std::uint32_t>(devid_value)};
    if (!vifs_.contains(id)) {
      return error(fmt::format("no vif {}/{}", id.domid, id.devid));
    }
    return {{"ok", true}, {"vifs", describe(id)}};
  }
  return error("unknown command");
}

}  // namespace vifd::backend
