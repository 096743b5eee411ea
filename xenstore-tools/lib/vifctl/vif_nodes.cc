#include "xenstore-tools/lib/vifctl/vif_nodes.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "common/protocol/xenbus_state.h"

namespace vifd::vifctl {
namespace {

using protocol::XenbusState;

std::string domain_path(platform::DomId domid) {
  return fmt::format("/local/domain/{}", domid);
}

void write_dir(xs::Client& xs, xs::TxId tx, const std::string& dir, const std::vector<Node>& nodes,
               const std::vector<xs::Perm>& perms) {
  for (const auto& node : nodes) {
    const std::string path = dir + "/" + node.key;
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

std::string backend_vif_root(platform::DomId backend_domid) {
  return domain_path(backend_domid) + "/backend/vif";
}

VifPaths vif_paths(platform::DomId backend_domid, VifId id) {
  return VifPaths{
      .backend = fmt::format("{}/{}/{}", backend_vif_root(backend_domid), id.domid, id.devid),
      .frontend = fmt::format("{}/device/vif/{}", domain_path(id.domid), id.devid),
      .libxl = fmt::format("/libxl/{}/device/vif/{}", id.domid, id.devid),
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
  back.push_back({"frontend", plan.paths.frontend});
  if (spec.script) back.push_back({"script", *spec.script});
  back.push_back({"mac", mac});
  if (spec.rate) back.push_back({"rate", fmt::format("{},{}", spec.rate->bytes, spec.rate->usec)});
  if (spec.mtu != kDefaultMtu) back.push_back({"mtu", std::to_string(spec.mtu)});
  if (spec.bridge) back.push_back({"bridge", *spec.bridge});
  back.push_back({"handle", handle});
  back.push_back({"type", "vif"});
  back.push_back({"hotplug-status", ""});
  back.push_back({"frontend-id", std::to_string(spec.domid)});
  back.push_back({"online", "1"});
  back.push_back({"state", state});

  plan.frontend = {{"backend", plan.paths.backend},
                   {"handle", handle},
                   {"mac", mac},
                   {"trusted", "1"},
                   {"backend-id", std::to_string(spec.backend_domid)},
                   {"state", state}};
  plan.frontend_read_only = {{"mtu", std::to_string(spec.mtu)}};

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
    const std::string guest_home = domain_path(spec.domid);
    if (!xs.read(guest_home + "/domid", tx) && !xs.directory(guest_home, tx)) {
      throw std::runtime_error(
          fmt::format("domain {} does not exist ({} is not in xenstore)", spec.domid, guest_home));
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
    xs.write(plan.paths.libxl + "/frontend", plan.paths.frontend, tx);
    xs.write(plan.paths.libxl + "/backend", plan.paths.backend, tx);
    for (const auto& node : plan.backend) {
      xs.write(plan.paths.libxl + "/" + node.key, node.value, tx);
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
    exists = xs.read(paths.backend + "/state", tx).has_value();
    if (!exists) return;
    xs.write(paths.backend + "/online", "0", tx);
    xs.write(paths.backend + "/state", protocol::to_xenstore_value(XenbusState::kClosing), tx);
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
