#include "xenstore-tools/lib/vifctl/vif_nodes.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "common/protocol/xenbus_state.h"
#include "common/xenbus/keys.h"
#include "common/xenbus/paths.h"

namespace vifd::vifctl {
namespace {

namespace key = xenbus::key;
using protocol::XenbusState;
using xenbus::join;

Node make_node(std::string_view name, std::string value) {
  return Node{std::string(name), std::move(value)};
}

void write_dir(xs::Client& xs, xs::TxId tx, const std::string& dir, const std::vector<Node>& nodes,
               const std::vector<xs::Perm>& perms) {
  for (const auto& node : nodes) {
    const std::string path = join(dir, node.key);
    xs.write(path, node.value, tx);
    // Set explicitly rather than relying on inheritance: xenstored
    // implementations differ in whose id a new node's owner gets, and the
    // guest must never own a backend key.
    xs.set_perms(path, perms, tx);
  }
}

std::uint32_t next_free_devid(xs::Client& xs, xs::TxId tx, const VifSpec& spec) {
  std::uint32_t next = 0;
  const VifPaths base = vif_paths(spec.backend_domid, VifId{spec.domid, 0});
  const auto parent = [](const std::string& path) { return path.substr(0, path.rfind('/')); };
  // libxl consults only its private copy; the frontend and backend
  // directories are checked as well so a vif created by another tool is
  // never overwritten.
  for (const auto& dir : {parent(base.libxl), parent(base.frontend), parent(base.backend)}) {
    for (const auto devid : numeric_children(xs, dir, tx)) {
      if (devid == static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max())) {
        throw std::runtime_error(fmt::format("no free devid for domain {} ({} is in use under {})",
                                             spec.domid, devid, dir));
      }
      next = std::max(next, devid + 1);
    }
  }
  return next;
}

}  // namespace

VifPaths vif_paths(platform::DomId backend_domid, VifId id) {
  return VifPaths{
      .backend = xenbus::backend_path(backend_domid, id),
      .frontend = xenbus::frontend_path(id),
      .libxl = xenbus::libxl_path(id),
  };
}

AttachPlan plan_attach(const VifSpec& spec, std::uint32_t devid) {
  AttachPlan plan;
  plan.id = VifId{spec.domid, devid};
  plan.paths = vif_paths(spec.backend_domid, plan.id);
  const std::string state = protocol::to_xenstore_value(XenbusState::kInitialising);
  const std::string handle = std::to_string(devid);
  const std::string mac = spec.mac.to_string();

  auto& back = plan.backend;
  back.push_back(make_node(key::kFrontend, plan.paths.frontend));
  if (spec.script) back.push_back(make_node(key::kScript, *spec.script));
  back.push_back(make_node(key::kMac, mac));
  if (spec.rate) {
    back.push_back(make_node(key::kRate, fmt::format("{},{}", spec.rate->bytes, spec.rate->usec)));
  }
  if (spec.mtu != kDefaultMtu) back.push_back(make_node(key::kMtu, std::to_string(spec.mtu)));
  if (spec.bridge) back.push_back(make_node(key::kBridge, *spec.bridge));
  back.push_back(make_node(key::kHandle, handle));
  back.push_back(make_node(key::kType, "vif"));
  back.push_back(make_node(key::kHotplugStatus, ""));
  back.push_back(make_node(key::kFrontendId, std::to_string(spec.domid)));
  back.push_back(make_node(key::kOnline, "1"));
  back.push_back(make_node(key::kState, state));

  plan.frontend = {make_node(key::kBackend, plan.paths.backend),
                   make_node(key::kHandle, handle),
                   make_node(key::kMac, mac),
                   make_node(key::kTrusted, "1"),
                   make_node(key::kBackendId, std::to_string(spec.backend_domid)),
                   make_node(key::kState, state)};
  plan.frontend_read_only = {make_node(key::kMtu, std::to_string(spec.mtu))};

  plan.backend_perms = {{spec.backend_domid, xs::Access::kNone}, {spec.domid, xs::Access::kRead}};
  plan.frontend_perms = {{spec.domid, xs::Access::kNone}, {spec.backend_domid, xs::Access::kRead}};
  return plan;
}

std::vector<std::uint32_t> numeric_children(xs::Client& xs, const std::string& path, xs::TxId tx) {
  std::vector<std::uint32_t> result;
  const auto names = xs.directory(path, tx);
  if (!names) return result;
  for (const auto& name : *names) {
    const auto value =
        protocol::parse_uint(path, name, 0, std::numeric_limits<std::uint32_t>::max());
    if (value) result.push_back(static_cast<std::uint32_t>(value.value()));
  }
  std::sort(result.begin(), result.end());
  return result;
}

AttachPlan write_attach(xs::Client& xs, const VifSpec& spec) {
  AttachPlan plan;
  xs.transact([&](xs::TxId tx) {
    const std::string guest_home = xenbus::domain_path(spec.domid);
    if (!xs.read(join(guest_home, "domid"), tx) && !xs.directory(guest_home, tx)) {
      throw std::runtime_error(
          fmt::format("domain {} does not exist ({} is not in xenstore)", spec.domid, guest_home));
    }
    // The backend's half would be written under a home nobody serves.
    const std::string backend_home = xenbus::domain_path(spec.backend_domid);
    if (!xs.directory(backend_home, tx)) {
      throw std::runtime_error(
          fmt::format("backend domain {} does not exist ({} is not in xenstore)",
                      spec.backend_domid, backend_home));
    }
    const std::uint32_t devid = spec.devid ? *spec.devid : next_free_devid(xs, tx, spec);
    plan = plan_attach(spec, devid);
    // A vif exists while the toolstack's copy or the backend directory does.
    // A frontend directory alone is a guest's leftover (a frontend that wrote
    // its state after detach removed it; the guest owns device/): replaced,
    // as libxl__device_generic_add replaces it.
    for (const auto& path : {plan.paths.libxl, plan.paths.backend}) {
      if (xs.directory(path, tx)) {
        throw std::runtime_error(
            fmt::format("vif {}/{} already exists ({})", spec.domid, devid, path));
      }
    }
    if (xs.directory(plan.paths.frontend, tx)) xs.rm(plan.paths.frontend, tx);
    // The toolstack's copy: the frontend and backend paths plus every
    // backend key, so detach works from it even if a backend scribbled on
    // its own directory.
    xs.write(join(plan.paths.libxl, key::kFrontend), plan.paths.frontend, tx);
    xs.write(join(plan.paths.libxl, key::kBackend), plan.paths.backend, tx);
    for (const auto& written : plan.backend) {
      xs.write(join(plan.paths.libxl, written.key), written.value, tx);
    }

    xs.mkdir(plan.paths.frontend, tx);
    xs.set_perms(plan.paths.frontend, plan.frontend_perms, tx);
    write_dir(xs, tx, plan.paths.frontend, plan.frontend, plan.frontend_perms);
    write_dir(xs, tx, plan.paths.frontend, plan.frontend_read_only, plan.backend_perms);

    xs.mkdir(plan.paths.backend, tx);
    xs.set_perms(plan.paths.backend, plan.backend_perms, tx);
    write_dir(xs, tx, plan.paths.backend, plan.backend, plan.backend_perms);
  });
  return plan;
}

bool request_close(xs::Client& xs, const VifPaths& paths) {
  bool exists = false;
  xs.transact([&](xs::TxId tx) {
    exists = xs.read(join(paths.backend, key::kState), tx).has_value();
    if (!exists) return;
    xs.write(join(paths.backend, key::kOnline), "0", tx);
    xs.write(join(paths.backend, key::kState), protocol::to_xenstore_value(XenbusState::kClosing),
             tx);
  });
  return exists;
}

void remove_vif(xs::Client& xs, const VifPaths& paths) {
  xs.transact([&](xs::TxId tx) {
    for (const auto& path : {paths.frontend, paths.backend, paths.libxl}) {
      if (xs.directory(path, tx)) xs.rm(path, tx);
    }
    // libxl__xs_path_cleanup also drops the emptied backend/vif/<D>, so
    // listings do not show a guest without vifs.
    const std::string guest_dir = paths.backend.substr(0, paths.backend.rfind('/'));
    const auto left = xs.directory(guest_dir, tx);
    if (left && left->empty()) xs.rm(guest_dir, tx);
  });
}

}  // namespace vifd::vifctl
