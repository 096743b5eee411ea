#include "xenstore-tools/lib/vifctl/commands.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <variant>
#include <vector>

#include "common/protocol/xenbus_state.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "xenstore-tools/lib/vifctl/control_client.h"
#include "xenstore-tools/lib/vifctl/domains.h"
#include "xenstore-tools/lib/vifctl/hotplug.h"
#include "xenstore-tools/lib/vifctl/inventory.h"
#include "xenstore-tools/lib/vifctl/stats_report.h"
#include "xenstore-tools/lib/vifctl/vif_nodes.h"

namespace vifd::vifctl {
namespace {

using protocol::XenbusState;

std::string state_text(const std::optional<XenbusState>& state) {
  return state ? fmt::format("{} ({})", static_cast<unsigned>(*state), protocol::name(*state))
               : std::string("missing");
}

std::string state_cell(const nlohmann::json& state) {
  if (state.is_null()) return "-";
  return fmt::format("{}", state.value("name", std::string("?")));
}

// Guest-written strings (the frontend's mac, hostile values) reach the
// operator's terminal only escaped: no escape sequences, no control bytes.
std::string string_cell(const nlohmann::json& value) {
  return value.is_string() && !value.get<std::string>().empty()
             ? protocol::escape_for_display(value.get<std::string>())
             : "-";
}

// Numbers and flags as found; "-" for an absent key.
std::string value_cell(const nlohmann::json& value) {
  return value.is_null() ? std::string("-") : dump_json(value, -1);
}

platform::DomId backend_of(Session& session, const std::optional<std::string>& backend_domid) {
  return backend_domid ? resolve_domain(session.xs, "--backend-domid", *backend_domid)
                       : session.self_domid;
}

// A backend's `error` text on the operator's terminal: escaped, bounded.
std::string error_text(const std::string& error) {
  return protocol::escape_for_display(error, 512);
}

// The devid of the guest's vif with `mac`, from the toolstack's copy (which
// the guest cannot change), else from the backend directories of the
// session's domain (a vif another tool made).
std::uint32_t devid_of_mac(Session& session, platform::DomId domid,
                           const protocol::MacAddress& mac) {
  const auto parent = [](const std::string& path) { return path.substr(0, path.rfind('/')); };
  const VifPaths base = vif_paths(session.self_domid, VifId{domid, 0});
  std::vector<std::uint32_t> matches;
  for (const auto& dir : {parent(base.libxl), parent(base.backend)}) {
    for (const auto devid : numeric_children(session.xs, dir)) {
      const auto text = session.xs.read(
          xenbus::join(xenbus::join(dir, std::to_string(devid)), xenbus::key::kMac));
      if (!text) {
        continue;
      }
      const auto found = protocol::parse_mac(xenbus::key::kMac, *text);
      if (found && found.value() == mac &&
          std::find(matches.begin(), matches.end(), devid) == matches.end()) {
        matches.push_back(devid);
      }
    }
    if (!matches.empty()) {
      break;
    }
  }
  if (matches.empty()) {
    throw std::runtime_error(
        fmt::format("domain {} has no vif with MAC {}", domid, mac.to_string()));
  }
  if (matches.size() > 1) {
    throw std::runtime_error(
        fmt::format("domain {} has {} vifs with MAC {} (devids {}); give the devid", domid,
                    matches.size(), mac.to_string(), fmt::join(matches, ", ")));
  }
  return matches.front();
}

// Whether vifd answers on the session's control socket, and the vifs it
// serves. Only meaningful for the session's own domain: another backend
// domain's vifd has its own socket there.
struct VifdProbe {
  bool running = false;
  std::string reason;  // why not
  nlohmann::json vifs = nlohmann::json::array();
};

VifdProbe probe_vifd(const Session& session) {
  VifdProbe probe;
  try {
    probe.vifs =
        select_vifs(control_request(session.control_socket, {{"command", "stats"}}), std::nullopt);
    probe.running = true;
  } catch (const std::runtime_error& e) {
    probe.reason = e.what();
  }
  return probe;
}

bool serves(const VifdProbe& probe, unsigned domid, unsigned devid) {
  return std::any_of(probe.vifs.begin(), probe.vifs.end(), [&](const nlohmann::json& vif) {
    return vif.value("domid", -1) == static_cast<int>(domid) &&
           vif.value("devid", std::int64_t{-1}) == static_cast<std::int64_t>(devid);
  });
}

// A vifd that serves `domid` for this domain holds an instance lock even
// when its control socket does not answer (stuck, or a per-domain vifd with
// a socket of its own). The file names are vifd's (backend/lib/control/
// instance_lock.h).
bool instance_locked(const Session& session, platform::DomId domid) {
  if (session.lock_dir.empty()) {
    return false;
  }
  const std::filesystem::path dir = session.lock_dir;
  return lock_held(dir / fmt::format("vifd-backend-{}.lock", session.self_domid)).value_or(false) ||
         lock_held(dir / fmt::format("vifd-backend-{}-domain-{}.lock", session.self_domid, domid))
             .value_or(false);
}

}  // namespace

int attach_command(Session& session, const AttachOptions& options) {
  AttachArguments arguments = options.arguments;
  arguments.domid = std::to_string(resolve_domain(session.xs, "DOMAIN", arguments.domid));
  if (arguments.backend_domid) {
    arguments.backend_domid =
        std::to_string(resolve_domain(session.xs, "--backend-domid", *arguments.backend_domid));
  }
  const VifSpec spec = make_vif_spec(arguments, session.self_domid, options.script_dir);
  // Before anything is written: a vif for a domain that is not there would
  // leave nodes behind (and a TAP, when its backend is served).
  require_running_domain(session.platform, spec.domid, "domain");
  require_running_domain(session.platform, spec.backend_domid, "backend domain");
  const AttachPlan plan = write_attach(session.xs, spec);
  const VifId id = plan.id;
  fmt::print(session.out, "vifctl: vif {}/{} attached: backend {}, mac {}\n", id.domid, id.devid,
             plan.paths.backend, spec.mac.to_string());
  if (!options.wait) return 0;

  // libxl waits for InitWait before running the hotplug script: the backend
  // has created vif<D>.<N> by then, which vif-bridge needs. A backend that
  // refuses the vif says so at once; no point waiting out the timeout.
  const BackendAnswer answer =
      wait_for_backend_ready(session.xs, plan.paths.backend, kBackendStateTimeout);
  if (answer.refused()) {
    const std::string why = answer.error
                                ? error_text(*answer.error)
                                : (answer.directory_gone ? std::string("its directory was removed")
                                                         : std::string("no error given"));
    fmt::print(session.err,
               "vifctl: vif {}/{}: the backend refused it: {} (state {}); `vifctl detach {}/{}` "
               "removes the nodes\n",
               id.domid, id.devid, why, state_text(answer.state), id.domid, id.devid);
    return 1;
  }
  if (!answer.ready()) {
    fmt::print(session.err,
               "vifctl: vif {}/{}: backend did not reach InitWait within {} s (state {}); is vifd "
               "running for domain {}? `vifctl detach {}/{}` removes the nodes\n",
               id.domid, id.devid, kBackendStateTimeout.count(), state_text(answer.state),
               spec.backend_domid, id.domid, id.devid);
    return 1;
  }
  fmt::print(session.out, "vifctl: vif {}/{}: backend in {}\n", id.domid, id.devid,
             state_text(answer.state));
  if (spec.script) {
    const auto result = run_hotplug_script(*spec.script, "online", id);
    if (!result.ok()) {
      fmt::print(session.err, "vifctl: vif {}/{}: hotplug script {} online {}\n", id.domid,
                 id.devid, *spec.script, result.describe());
      return 1;
    }
    fmt::print(session.out, "vifctl: vif {}/{}: {} online succeeded\n", id.domid, id.devid,
               *spec.script);
  }
  return 0;
}

int detach_command(Session& session, const std::string& vif, bool wait,
                   const std::optional<std::string>& device) {
  const VifSelector selector = parse_vif_selector("VIF", vif, device);
  VifId id;
  id.domid = resolve_domain(session.xs, "VIF", selector.domain);
  id.devid = std::holds_alternative<std::uint32_t>(selector.device)
                 ? std::get<std::uint32_t>(selector.device)
                 : devid_of_mac(session, id.domid, std::get<protocol::MacAddress>(selector.device));
  // Which backend serves it and which script it ran are read from the
  // toolstack's private copy: the backend domain cannot rewrite /libxl.
  VifPaths paths = vif_paths(session.self_domid, id);
  const auto recorded_backend = session.xs.read(xenbus::join(paths.libxl, xenbus::key::kBackend));
  if (recorded_backend) paths.backend = *recorded_backend;
  const auto script = session.xs.read(xenbus::join(paths.libxl, xenbus::key::kScript));

  if (!request_close(session.xs, paths)) {
    if (!session.xs.directory(paths.frontend) && !session.xs.directory(paths.libxl)) {
      throw std::runtime_error(fmt::format("vif {}/{} does not exist ({} is not in xenstore)",
                                           id.domid, id.devid, paths.backend));
    }
  } else if (wait) {
    const auto state = wait_for_state(session.xs, xenbus::join(paths.backend, xenbus::key::kState),
                                      XenbusState::kClosed, kBackendStateTimeout);
    if (state != XenbusState::kClosed) {
      // As `xl network-detach` after its timeout: the nodes go anyway, the
      // operator is told the backend did not answer.
      fmt::print(session.err,
                 "vifctl: vif {}/{}: backend did not reach Closed within {} s (state {}); "
                 "removing the nodes anyway\n",
                 id.domid, id.devid, kBackendStateTimeout.count(), state_text(state));
    }
  }
  int status = 0;
  if (script) {
    const auto result = run_hotplug_script(*script, "offline", id);
    if (!result.ok()) {
      fmt::print(session.err, "vifctl: vif {}/{}: hotplug script {} offline {}\n", id.domid,
                 id.devid, *script, result.describe());
      status = 1;
    }
  }
  remove_vif(session.xs, paths);
  fmt::print(session.out, "vifctl: vif {}/{} detached\n", id.domid, id.devid);
  return status;
}

int list_command(Session& session, const std::optional<std::string>& backend_domid, bool json) {
  const platform::DomId backend = backend_of(session, backend_domid);
  auto vifs = list_vifs(session.xs, backend);
  // The control socket is this domain's vifd: another backend domain's
  // vifd cannot be asked from here.
  const bool ours = backend == session.self_domid;
  const VifdProbe probe = ours ? probe_vifd(session) : VifdProbe{};
  for (auto& vif : vifs) {
    if (!ours) {
      vif["vifd"] = nullptr;
    } else if (!probe.running) {
      vif["vifd"] = instance_locked(session, vif["domid"].get<platform::DomId>()) ? "no answer"
                                                                                  : "not running";
    } else {
      vif["vifd"] = serves(probe, vif["domid"].get<unsigned>(), vif["devid"].get<unsigned>())
                        ? "serving"
                        : "not serving";
    }
  }
  if (ours && !probe.running && !vifs.empty()) {
    const bool any_locked = std::any_of(vifs.begin(), vifs.end(), [](const nlohmann::json& vif) {
      return vif["vifd"] == "no answer";
    });
    // The states are what vifd last wrote: nobody may be acting on them.
    fmt::print(
        session.err, "vifctl: {} ({}): the states below may be stale\n",
        any_locked ? "a vifd holds its instance lock but does not answer" : "vifd is not running",
        protocol::escape_for_display(probe.reason, 512));
  }
  if (json) {
    session.out << dump_json(vifs) << '\n';
    return 0;
  }
  constexpr const char* kRow = "{:<8} {:<13} {:<13} {:<17} {:<10} {:<9} {:<11} {}\n";
  fmt::print(session.out, kRow, "vif", "backend", "frontend", "mac", "bridge", "hotplug", "vifd",
             "error");
  for (const auto& vif : vifs) {
    fmt::print(session.out, kRow,
               fmt::format("{}/{}", vif["domid"].get<unsigned>(), vif["devid"].get<unsigned>()),
               state_cell(vif["backend_state"]), state_cell(vif["frontend_state"]),
               string_cell(vif["mac"]), string_cell(vif["bridge"]),
               string_cell(vif["hotplug_status"]), string_cell(vif["vifd"]),
               vif["error"].is_string() ? error_text(vif["error"].get<std::string>()) : "-");
  }
  return 0;
}

int show_command(Session& session, const std::string& vif,
                 const std::optional<std::string>& backend_domid, bool json) {
  const VifId id = resolve_vif_id(session.xs, "DOMAIN/DEVID", vif);
  const platform::DomId backend = backend_of(session, backend_domid);
  nlohmann::json shown = show_vif(session.xs, backend, id);
  try {
    const auto response = control_request(
        session.control_socket, {{"command", "show"}, {"domid", id.domid}, {"devid", id.devid}});
    const auto vifs = select_vifs(response, id);
    shown["vifd"] = vifs.empty() ? nlohmann::json(nullptr) : vifs.front();
    shown["vifd_running"] = true;
  } catch (const ControlUnavailable& e) {
    shown["vifd"] = nullptr;
    shown["vifd_error"] = e.what();
    // Nothing listens on the socket: for this domain's own vifs, with no
    // instance lock held either, vifd is not running, whatever state it
    // left in xenstore.
    shown["vifd_running"] = backend == session.self_domid && !instance_locked(session, id.domid)
                                ? nlohmann::json(false)
                                : nlohmann::json(nullptr);
  } catch (const ControlTimeout& e) {
    shown["vifd"] = nullptr;
    shown["vifd_error"] = e.what();
    shown["vifd_running"] = nullptr;  // there, but not answering
  } catch (const std::runtime_error& e) {
    // It answered, without this vif; xenstore alone is still worth showing.
    shown["vifd"] = nullptr;
    shown["vifd_error"] = e.what();
    shown["vifd_running"] = true;
  }
  if (json) {
    session.out << dump_json(shown) << '\n';
    return 0;
  }
  const auto& back = shown["backend"];
  const auto& front = shown["frontend"];
  fmt::print(session.out, "vif {}/{}\n", id.domid, id.devid);
  fmt::print(session.out, "  backend  {}  state {}  online {}  hotplug-status {}\n",
             back["path"].get<std::string>(), state_cell(back["state"]), value_cell(back["online"]),
             string_cell(back["hotplug_status"]));
  fmt::print(session.out, "           mac {}  bridge {}  script {}  mtu {}  rate {}\n",
             string_cell(back["mac"]), string_cell(back["bridge"]), string_cell(back["script"]),
             value_cell(back["mtu"]), string_cell(back["rate"]));
  fmt::print(session.out, "           features {}\n", dump_json(back["features"], -1));
  if (back["error"].is_string()) {
    fmt::print(session.out, "  error    {}\n", error_text(back["error"].get<std::string>()));
  }
  fmt::print(session.out, "  frontend {}  state {}  mac {}  mtu {}\n",
             front["path"].get<std::string>(), state_cell(front["state"]),
             string_cell(front["mac"]), value_cell(front["mtu"]));
  fmt::print(session.out, "           features {}\n", dump_json(front["features"], -1));
  for (const auto& queue : front["queues"]) {
    fmt::print(session.out, "  queue    {}\n", dump_json(queue, -1));
  }
  if (shown["vifd"].is_null()) {
    fmt::print(session.out, "  vifd     {}{}\n",
               shown["vifd_running"] == false ? "NOT RUNNING, the states above are stale: " : "",
               shown.contains("vifd_error")
                   ? protocol::escape_for_display(shown["vifd_error"].get<std::string>(), 512)
                   : std::string("does not know this vif"));
  } else {
    const auto& live = shown["vifd"];
    for (const auto& q : live.value("queues", nlohmann::json::array())) {
      fmt::print(session.out, "  ring q{}  {}\n", q.value("index", 0),
                 dump_json(q.value("ring", nlohmann::json::object()), -1));
    }
    print_stats_table(nlohmann::json::array({live}), session.out);
  }
  return 0;
}

int stats_command(Session& session, const std::optional<std::string>& vif, bool json) {
  std::optional<VifId> id;
  if (vif) {
    id = resolve_vif_id(session.xs, "DOMAIN/DEVID", *vif);
  }
  const auto response = control_request(session.control_socket, {{"command", "stats"}});
  const auto vifs = select_vifs(response, id);
  if (id && vifs.empty()) {
    throw std::runtime_error(
        fmt::format("vifd ({}) serves no vif {}/{}", session.control_socket, id->domid, id->devid));
  }
  // Devices a kernel backend driver (xen-netback) serves, which vifd leaves
  // alone: shown with the whole table, not for one vif.
  nlohmann::json left_to_kernel = nlohmann::json::array();
  if (const auto it = response.find("left_to_kernel");
      !id && it != response.end() && it->is_array()) {
    left_to_kernel = *it;
  }
  if (json) {
    nlohmann::json answer{{"vifs", vifs}};
    if (!id) {
      answer["left_to_kernel"] = left_to_kernel;
    }
    session.out << dump_json(answer) << '\n';
    return 0;
  }
  print_stats_table(vifs, session.out);
  for (const auto& device : left_to_kernel) {
    session.out << fmt::format("vif {}/{}: left alone, served by the kernel's backend driver {}\n",
                               device.value("domid", 0U), device.value("devid", 0U),
                               device.value("driver", std::string("?")));
  }
  return 0;
}

}  // namespace vifd::vifctl
