#include "backend/lib/control/vif_backend_daemon.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend/lib/control/capture_stream.h"
#include "backend/lib/control/control_socket.h"
#include "backend/lib/control/instance_lock.h"
#include "backend/lib/control/log.h"
#include "backend/lib/control/metrics_exposition.h"
#include "backend/lib/datapath/switch.h"
#include "common/xenbus/keys.h"

namespace vifd::backend {
namespace {

// The vif a "show" or "capture" request names (unsigned "domid" and
// "devid", within what Xen allows), or the error to answer.
struct RequestedVif {
  std::optional<VifId> id;
  std::string error;
};

RequestedVif requested_vif(const nlohmann::json& request, std::string_view command) {
  const auto domid = request.find("domid");
  const auto devid = request.find("devid");
  if (domid == request.end() || !domid->is_number_unsigned() || devid == request.end() ||
      !devid->is_number_unsigned()) {
    return {std::nullopt, fmt::format("\"{}\" needs unsigned \"domid\" and \"devid\"", command)};
  }
  const auto domid_value = domid->get<std::uint64_t>();
  const auto devid_value = devid->get<std::uint64_t>();
  if (domid_value >= platform::kDomidSelf || devid_value > xenbus::kMaxDevid) {
    return {std::nullopt, "no such vif"};
  }
  return {VifId{static_cast<platform::DomId>(domid_value), static_cast<std::uint32_t>(devid_value)},
          {}};
}

// Every command the control socket answers (an unknown one lists them).
constexpr std::array<std::string_view, 3> kControlCommands{"stats", "show", "capture"};

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
      base_path_(xenbus::backend_vif_root(platform.self_domid())),
      watcher_(io, xenstore, control_log()),
      host_ports_(io),
      environment_{io,
                   watcher_,
                   platform,
                   host_ports_,
                   options_.max_queues,
                   nullptr,
                   options_.rx_backlog_bytes,
                   options_.rx_drain_timeout} {
  environment_.switch_policy = options_.switch_policy;
  if (options_.fast_path) {
    environment_.switch_for = [this](const std::string& bridge) { return switch_for(bridge); };
  }
}

VifBackendDaemon::~VifBackendDaemon() {
  probe_timer_.reset();
  metrics_server_.reset();
  control_socket_.reset();
  vifs_.clear();
  host_ports_.drain();  // their TAPs are gone before another vifd may start
  instance_lock_.reset();
}

void VifBackendDaemon::start() {
  if (started_) {
    return;
  }
  if (!options_.lock_dir.empty()) {
    instance_lock_ =
        std::make_unique<InstanceLock>(options_.lock_dir, platform_.self_domid(), options_.domains);
  }
  started_ = true;
  if (!options_.control_socket.empty()) {
    control_socket_ = std::make_unique<ControlSocket>(
        io_, options_.control_socket,
        [this](const std::string& line) { return handle_control(line); });
  }
  if (!options_.metrics_socket.empty() || !options_.metrics_listen.empty()) {
    metrics_server_ = std::make_unique<MetricsServer>(
        io_, options_.metrics_socket, options_.metrics_listen,
        [this](ExpositionFormat format) { return render_metrics(stats_snapshot(), format); });
  }
  control_log().info(
      "serving {} (domains: {}, max queues {}, fast path {})", base_path_,
      options_.domains.empty() ? "all" : fmt::format("{}", fmt::join(options_.domains, ",")),
      options_.max_queues, options_.fast_path ? "on" : "off");
  // The first event (sent on registration) runs the initial scan.
  watcher_.watch(base_path_, [this](const std::string& path) { on_change(path); });
}

void VifBackendDaemon::shutdown(bool close_vifs) {
  probe_timer_.reset();
  kernel_recheck_timer_.reset();
  kernel_recheck_pending_ = false;
  metrics_server_.reset();
  control_socket_.reset();
  for (auto& [id, vif] : vifs_) {
    vif->shutdown(close_vifs);
  }
  vifs_.clear();
  host_ports_.drain();     // the TAPs they released are closed
  instance_lock_.reset();  // only now may the next vifd adopt the vifs
  started_ = false;
}

void VifBackendDaemon::on_change(const std::string& path) {
  const std::string prefix = base_path_ + "/";
  if (!path.starts_with(prefix) || path.size() == prefix.size()) {
    scan_all();
    if (!ready_) {
      on_initial_scan();
    }
    return;
  }
  const std::string_view relative = std::string_view(path).substr(prefix.size());
  if (relative.find('/') == std::string_view::npos) {
    scan_domain(std::string(relative));  // a domain's directory
  } else if (const auto id = parse_vif_path(path)) {
    check_vif(*id);
  }
}

void VifBackendDaemon::on_initial_scan() {
  ready_ = true;
  reported_vifs_ = vifs_.size();
  if (options_.on_ready) {
    options_.on_ready(status_line());
  }
  if (options_.xenstore_probe_interval.count() > 0) {
    probe_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    schedule_probe();
  }
}

std::string VifBackendDaemon::status_line() const {
  return fmt::format("serving {} vif(s) under {}", vifs_.size(), base_path_);
}

void VifBackendDaemon::schedule_probe() {
  probe_timer_->expires_after(options_.xenstore_probe_interval);
  probe_timer_->async_wait([this](const boost::system::error_code& error) {
    if (!error) {  // cancelled: shutting down
      probe_xenstore();
    }
  });
}

void VifBackendDaemon::probe_xenstore() {
  try {
    // Any request will do; the base path is ours to read on every host.
    static_cast<void>(watcher_.client().read(base_path_));
  } catch (const xs::XsError& e) {
    probe_timer_.reset();
    watcher_.connection_lost();
    if (options_.on_xenstore_lost) {
      options_.on_xenstore_lost(e.what());
    }
    return;
  }
  if (vifs_.size() != reported_vifs_) {
    reported_vifs_ = vifs_.size();
    if (options_.on_status) {
      options_.on_status(status_line());
    }
  }
  schedule_probe();
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
  const std::string domain_dir = xenbus::join(base_path_, domid_name);
  const auto devices = watcher_.client().directory(domain_dir).value_or(std::vector<std::string>{});
  for (const auto& devid_name : devices) {
    if (const auto id = parse_vif_path(xenbus::join(domain_dir, devid_name))) {
      check_vif(*id);
    }
  }
  std::vector<VifId> known;
  for (const auto& [id, vif] : vifs_) {
    if (std::to_string(id.domid) == domid_name) {
      known.push_back(id);
    }
  }
  for (const auto& id : known) {
    check_vif(id);
  }
}

std::optional<VifId> VifBackendDaemon::parse_vif_path(const std::string& path) {
  if (const auto id = xenbus::parse_backend_path(platform_.self_domid(), path)) {
    return id;
  }
  // Report the device directory, not each key below it.
  const std::string_view relative = std::string_view(path).substr(base_path_.size() + 1);
  const auto second_slash = relative.find('/', relative.find('/') + 1);
  const std::string device = xenbus::join(base_path_, relative.substr(0, second_slash));
  if (ignored_names_.insert(device).second) {
    control_log().warn("ignoring {}: not <domid>/<devid> in canonical decimal, devid <= {}", device,
                       xenbus::kMaxDevid);
  }
  return std::nullopt;
}

void VifBackendDaemon::check_vif(VifId id) {
  if (!options_.domains.empty() && !options_.domains.contains(id.domid)) {
    return;
  }
  if (const auto driver = platform_.kernel_backend_driver("vif", id.domid, id.devid)) {
    leave_to_kernel(id, *driver);
    return;
  }
  if (const auto held = left_to_kernel_.find(id); held != left_to_kernel_.end()) {
    control_log().info("{}: no longer bound to the kernel's {}", tap_name(id), held->second);
    left_to_kernel_.erase(held);
  }
  const std::string path = xenbus::backend_path(platform_.self_domid(), id);
  xs::Client& client = watcher_.client();
  const auto it = vifs_.find(id);
  if (it != vifs_.end()) {
    if (!client.read(path)) {
      control_log().info("{}: backend directory removed", tap_name(id));
      vifs_.erase(it);
    }
    return;
  }
  // libxl writes a device in one transaction with `state` among its keys; a
  // directory without it is still being written by a non-transactional tool.
  if (!client.read(xenbus::join(path, xenbus::key::kState))) {
    return;
  }
  control_log().info("{}: new vif at {}", tap_name(id), path);
  auto vif = std::make_unique<Vif>(environment_, id);
  Vif& started = *vif;
  vifs_.emplace(id, std::move(vif));
  try {
    started.start();
  } catch (const std::exception& e) {
    // start() reports configuration problems itself; this is xenstore
    // failing underneath (e.g. the device vanished mid-way).
    control_log().error("{}: {}", tap_name(id), e.what());
  }
}

void VifBackendDaemon::leave_to_kernel(VifId id, const std::string& driver) {
  if (const auto it = vifs_.find(id); it != vifs_.end()) {
    // The kernel probed the device under us (xen-netback loaded while vifd
    // ran): two backends would map its rings and write its state. The
    // kernel's is the one the toolstack and the guest now deal with, so vifd
    // lets go without a write (a Closed from vifd would close the kernel's
    // connection); dropping the Vif unmaps its rings and removes the TAP
    // whose name the kernel's netdev needs.
    control_log().error(
        "{}: the kernel's backend driver was bound to this device while vifd served it ({}): "
        "vifd lets go of it without writing to it; unload and block xen-netback to serve it "
        "with vifd (see vifd(8))",
        tap_name(id), driver);
    vifs_.erase(it);
  } else if (!left_to_kernel_.contains(id)) {
    control_log().warn(
        "{}: served by the kernel's backend driver ({}): vifd leaves it alone; unload and block "
        "xen-netback to serve it with vifd (see vifd(8))",
        tap_name(id), driver);
  }
  left_to_kernel_[id] = driver;
  schedule_kernel_recheck();
}

void VifBackendDaemon::schedule_kernel_recheck() {
  if (kernel_recheck_pending_ || !started_) {
    return;
  }
  if (!kernel_recheck_timer_) {
    kernel_recheck_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
  }
  kernel_recheck_pending_ = true;
  kernel_recheck_timer_->expires_after(kKernelRecheckInterval);
  kernel_recheck_timer_->async_wait([this](const boost::system::error_code& error) {
    if (error) {
      return;  // cancelled: shutting down
    }
    kernel_recheck_pending_ = false;
    std::vector<VifId> held;
    for (const auto& [id, driver] : left_to_kernel_) {
      held.push_back(id);
    }
    for (const VifId id : held) {
      check_vif(id);  // re-arms the timer while any is still held
    }
  });
}

nlohmann::json VifBackendDaemon::left_to_kernel_json() const {
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& [id, driver] : left_to_kernel_) {
    devices.push_back({{"domid", id.domid}, {"devid", id.devid}, {"driver", driver}});
  }
  return devices;
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

nlohmann::json VifBackendDaemon::stats_snapshot() const {
  // Taken first: the counters read below are at least as new as it.
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  const HostPortWorker::Counters host_ports = host_ports_.counters();
  nlohmann::json answer{
      {"ok", true},
      {"monotonic_ns", std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()},
      {"vifs", describe(std::nullopt)},
      // Devices vifd leaves alone because a kernel backend driver serves them.
      {"left_to_kernel", left_to_kernel_json()},
      // A host holding the rtnl lock shows here (longest job, pending).
      {"host_port_worker",
       {{"jobs_run", host_ports.jobs_run},
        {"jobs_failed", host_ports.jobs_failed},
        {"jobs_pending", host_ports.pending},
        {"longest_job_ms", host_ports.longest_job_ms}}}};
  if (metrics_server_) {
    const MetricsServerCounters& metrics = metrics_server_->counters();
    answer["metrics_endpoint"] = {{"scrapes", metrics.scrapes},
                                  {"bad_requests", metrics.bad_requests},
                                  {"timeouts", metrics.timeouts},
                                  {"connections_evicted", metrics.connections_evicted}};
  }
  return answer;
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
    return stats_snapshot();
  }
  if (*command == "show") {
    const RequestedVif requested = requested_vif(request, "show");
    if (!requested.id) {
      return error(requested.error);
    }
    const VifId id = *requested.id;
    if (!vifs_.contains(id)) {
      return error(fmt::format("no vif {}/{}", id.domid, id.devid));
    }
    return {{"ok", true}, {"vifs", describe(id)}};
  }
  return error(fmt::format("unknown command \"{}\" (commands: {})",
                           command->get<std::string>().substr(0, 64),
                           fmt::join(kControlCommands, ", ")));
}

ControlReply VifBackendDaemon::handle_control(const std::string& line) {
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (request.is_object()) {
    const auto command = request.find("command");
    if (command != request.end() && *command == "capture") {
      return start_capture(request);
    }
  }
  return handle_request(line);
}

ControlReply VifBackendDaemon::start_capture(const nlohmann::json& request) {
  const auto error = [](const std::string& message) {
    return nlohmann::json{{"ok", false}, {"error", message}};
  };
  const RequestedVif requested = requested_vif(request, "capture");
  if (!requested.id) {
    return error(requested.error);
  }
  std::size_t snaplen = CaptureRing::kMaxSnaplen;
  if (const auto field = request.find("snaplen"); field != request.end()) {
    if (!field->is_number_unsigned()) {
      return error("\"snaplen\" must be an unsigned number of bytes");
    }
    const auto value = field->get<std::uint64_t>();
    if (value < CaptureRing::kMinSnaplen || value > CaptureRing::kMaxSnaplen) {
      return error(fmt::format("bad snaplen {}: must be {}..{} bytes", value,
                               CaptureRing::kMinSnaplen, CaptureRing::kMaxSnaplen));
    }
    snaplen = static_cast<std::size_t>(value);
  }
  const VifId id = *requested.id;
  const auto vif = vifs_.find(id);
  if (vif == vifs_.end()) {
    return error(fmt::format("no vif {}/{} ({})", id.domid, id.devid, tap_name(id)));
  }
  const std::shared_ptr<Switch>& network_switch = vif->second->network_switch();
  if (!network_switch) {
    return error(fmt::format(
        "{} is not a port of vifd's switch (fast path off for it, or no bridge): all its "
        "frames pass its TAP, so tcpdump -i {} sees them",
        tap_name(id), tap_name(id)));
  }
  try {
    auto stream = std::make_shared<CaptureStream>(network_switch, id, snaplen, live_captures_);
    nlohmann::json answer{{"ok", true},
                          {"capture", tap_name(id)},
                          {"switch", network_switch->name()},
                          {"snaplen", snaplen},
                          {"slots", stream->ring().capacity()}};
    return ControlReply(std::move(answer), std::move(stream));
  } catch (const std::invalid_argument& e) {
    return error(e.what());
  }
}

}  // namespace vifd::backend
