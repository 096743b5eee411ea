#include "xenstore-tools/lib/vifctl/commands.h"

#include <fmt/format.h>
#include <fmt/ostream.h>

#include <nlohmann/json.hpp>

#include "common/protocol/xenbus_state.h"
#include "common/protocol/xs_parse.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"
#include "xenstore-tools/lib/vifctl/control_client.h"
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
  return backend_domid ? parse_domid_argument("--backend-domid", *backend_domid)
                       : session.self_domid;
}

}  // namespace

int attach_command(Session& session, const AttachOptions& options) {
  const VifSpec spec = make_vif_spec(options.arguments, session.self_domid);
  const AttachPlan plan = write_attach(session.xs, spec);
  const VifId id = plan.id;
  fmt::print(session.out, "vifctl: vif {}/{} attached: backend {}, mac {}\n", id.domid, id.devid,
             plan.paths.backend, spec.mac.to_string());
  if (!options.wait) return 0;

  // libxl waits for InitWait before running the hotplug script: the backend
  // has created vif<D>.<N> by then, which vif-bridge needs.
  const auto state =
      wait_for_state(session.xs, xenbus::join(plan.paths.backend, xenbus::key::kState),
                     XenbusState::kInitWait, kBackendStateTimeout);
  if (state != XenbusState::kInitWait && state != XenbusState::kConnected) {
    fmt::print(session.err,
               "vifctl: vif {}/{}: backend did not reach InitWait within {} s (state {}); is vifd "
               "running for domain {}? `vifctl detach {}/{}` removes the nodes\n",
               id.domid, id.devid, kBackendStateTimeout.count(), state_text(state),
               spec.backend_domid, id.domid, id.devid);
    return 1;
  }
  fmt::print(session.out, "vifctl: vif {}/{}: backend in {}\n", id.domid, id.devid,
             state_text(state));
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

int detach_command(Session& session, const std::string& vif, bool wait) {
  const VifId id = parse_vif_id("DOMID/DEVID", vif);
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
  const auto vifs = list_vifs(session.xs, backend_of(session, backend_domid));
  if (json) {
    session.out << dump_json(vifs) << '\n';
    return 0;
  }
  constexpr const char* kRow = "{:<8} {:<13} {:<13} {:<17} {:<10} {}\n";
  fmt::print(session.out, kRow, "vif", "backend", "frontend", "mac", "bridge", "hotplug");
  for (const auto& vif : vifs) {
    fmt::print(session.out, kRow,
               fmt::format("{}/{}", vif["domid"].get<unsigned>(), vif["devid"].get<unsigned>()),
               state_cell(vif["backend_state"]), state_cell(vif["frontend_state"]),
               string_cell(vif["mac"]), string_cell(vif["bridge"]),
               string_cell(vif["hotplug_status"]));
  }
  return 0;
}

int show_command(Session& session, const std::string& vif,
                 const std::optional<std::string>& backend_domid, bool json) {
  const VifId id = parse_vif_id("DOMID/DEVID", vif);
  nlohmann::json shown = show_vif(session.xs, backend_of(session, backend_domid), id);
  try {
    const auto response = control_request(
        session.control_socket, {{"command", "show"}, {"domid", id.domid}, {"devid", id.devid}});
    const auto vifs = select_vifs(response, id);
    shown["vifd"] = vifs.empty() ? nlohmann::json(nullptr) : vifs.front();
  } catch (const std::runtime_error& e) {
    // xenstore alone is still worth showing; say why the live part is missing.
    shown["vifd"] = nullptr;
    shown["vifd_error"] = e.what();
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
  fmt::print(session.out, "  frontend {}  state {}  mac {}  mtu {}\n",
             front["path"].get<std::string>(), state_cell(front["state"]),
             string_cell(front["mac"]), value_cell(front["mtu"]));
  fmt::print(session.out, "           features {}\n", dump_json(front["features"], -1));
  for (const auto& queue : front["queues"]) {
    fmt::print(session.out, "  queue    {}\n", dump_json(queue, -1));
  }
  if (shown["vifd"].is_null()) {
    fmt::print(session.out, "  vifd     {}\n",
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
  if (vif) id = parse_vif_id("DOMID/DEVID", *vif);
  const auto response = control_request(session.control_socket, {{"command", "stats"}});
  const auto vifs = select_vifs(response, id);
  if (id && vifs.empty()) {
    throw std::runtime_error(
        fmt::format("vifd ({}) serves no vif {}/{}", session.control_socket, id->domid, id->devid));
  }
  if (json) {
    session.out << dump_json(nlohmann::json{{"vifs", vifs}}) << '\n';
    return 0;
  }
  print_stats_table(vifs, session.out);
  return 0;
}

}  // namespace vifd::vifctl
