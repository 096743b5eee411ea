#include "xenstore-tools/lib/xenstored/vif_sim.h"

#include <fmt/format.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/platform/sim/sim_host.h"
#include "common/xenstore/client.h"
#include "xenstore-tools/lib/xenstored/asio.h"
#include "xenstore-tools/lib/xenstored/paths.h"
#include "xenstore-tools/lib/xenstored/server.h"

namespace vifd::xenstored {
namespace {

// How soon after a process dies its event channels are closed.
constexpr std::chrono::milliseconds kReaperPeriod{100};

using platform::DomId;
using xs::Access;
using xs::Perm;

bool socket_accepts(const std::filesystem::path& path) {
  boost::asio::io_context io;
  boost::asio::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(boost::asio::local::stream_protocol::endpoint(path.string()), ec);
  return !ec;
}

xs::Client connect_dom0(const std::filesystem::path& dir) {
  const auto socket = sim::HostPaths{dir}.xenstored_socket();
  if (!socket_accepts(socket)) {
    throw std::runtime_error(
        fmt::format("no vif-sim host is running in {} ({} does not accept connections)",
                    dir.string(), socket.string()));
  }
  return xs::Client::open(socket.string());
}

void write_domain_tree(xs::Client& xs, DomId domid, const std::string& name) {
  const std::string home = domain_path(domid);
  // libxl's two permission sets: the guest may read its home but not write
  // it; the "rw" directories belong to the guest.
  const std::vector<Perm> read_only{{0, Access::kNone}, {domid, Access::kRead}};
  const std::vector<Perm> guest_owned{{domid, Access::kNone}};
  xs.transact([&](xs::TxId tx) {
    xs.rm(home, tx);
    xs.mkdir(home, tx);
    xs.set_perms(home, read_only, tx);
    xs.write(home + "/name", name, tx);
    xs.write(home + "/domid", std::to_string(domid), tx);
    xs.mkdir(home + "/control", tx);
    xs.set_perms(home + "/control", read_only, tx);
    for (const char* dir :
         {"device", "data", "drivers", "feature", "attr", "error", "control/shutdown"}) {
      xs.mkdir(home + "/" + dir, tx);
      xs.set_perms(home + "/" + dir, guest_owned, tx);
    }
  });
}

nlohmann::json counters_json(DomId domid, const sim::HypercallCounters& c) {
  return {{"domid", domid},
          {"grant_copy_calls", c.grant_copy_calls},
          {"grant_copy_segments", c.grant_copy_segments},
          {"grant_copy_bytes", c.grant_copy_bytes},
          {"grant_map_calls", c.grant_map_calls},
          {"grant_map_pages", c.grant_map_pages},
          {"grant_unmap_calls", c.grant_unmap_calls},
          {"grant_unmap_pages", c.grant_unmap_pages},
          {"evtchn_notify_calls", c.evtchn_notify_calls},
          {"evtchn_events_delivered", c.evtchn_events_delivered}};
}

}  // namespace

void run_host(const std::filesystem::path& dir, std::ostream& out) {
  const sim::HostPaths paths{dir};
  if (socket_accepts(paths.xenstored_socket())) {
    throw std::runtime_error(fmt::format("a vif-sim host is already running in {} ({} is live)",
                                         dir.string(), paths.xenstored_socket().string()));
  }
  sim::create_host(dir);
  try {
    boost::asio::io_context io;
    Server server(io, dir);
    server.start();
    // The kernel's side of a process death (sim::ProcessReaper): a dead
    // process's ports are closed within a sweep period.
    sim::ProcessReaper reaper(dir);
    boost::asio::steady_timer sweeps(io);
    std::function<void()> schedule_sweep = [&] {
      sweeps.expires_after(kReaperPeriod);
      sweeps.async_wait([&](boost::system::error_code ec) {
        if (ec) {
          return;
        }
        reaper.sweep();
        schedule_sweep();
      });
    };
    schedule_sweep();
    boost::asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      server.stop();
      sweeps.cancel();
      io.stop();
    });
    out << "vif-sim: host " << dir.string()
        << " ready, XENSTORED_PATH=" << paths.xenstored_socket().string() << std::endl;
    io.run();
    server.stop();
  } catch (...) {
    sim::destroy_host(dir);
    throw;
  }
  sim::destroy_host(dir);
}

void create_domain_command(const std::filesystem::path& dir, DomId domid,
                           const std::optional<std::string>& name, std::ostream& out) {
  auto xs = connect_dom0(dir);
  if (xs.is_domain_introduced(domid)) {
    throw std::runtime_error(fmt::format("domain {} already exists in {}", domid, dir.string()));
  }
  sim::create_domain(dir, domid);
  try {
    write_domain_tree(xs, domid, name.value_or("domu-" + std::to_string(domid)));
    xs.introduce_domain(domid);
  } catch (...) {
    sim::destroy_domain(dir, domid);
    throw;
  }
  out << "vif-sim: created domain " << domid
      << " (XENSTORED_PATH=" << sim::HostPaths{dir}.domain_xenstored_socket(domid).string() << ")"
      << std::endl;
}

void destroy_domain_command(const std::filesystem::path& dir, DomId domid, std::ostream& out) {
  auto xs = connect_dom0(dir);
  if (!xs.is_domain_introduced(domid)) {
    throw std::runtime_error(fmt::format("domain {} does not exist in {}", domid, dir.string()));
  }
  xs.release_domain(domid);
  xs.rm(domain_path(domid));
  // xl tears the domain's devices down; what is left of their backend
  // directories goes with the domain.
  const std::string backends = domain_path(0) + "/backend";
  if (auto types = xs.directory(backends)) {
    for (const auto& type : *types) xs.rm(backends + "/" + type + "/" + std::to_string(domid));
  }
  sim::destroy_domain(dir, domid);
  out << "vif-sim: destroyed domain " << domid << std::endl;
}

void list_command(const std::filesystem::path& dir, std::ostream& out) {
  auto xs = connect_dom0(dir);
  out << fmt::format("{:<24} {:>5}\n", "Name", "ID");
  std::vector<DomId> domids{0};
  for (DomId domid : sim::list_domains(dir)) {
    if (domid != 0) domids.push_back(domid);
  }
  for (DomId domid : domids) {
    const auto name = xs.read(domain_path(domid) + "/name");
    out << fmt::format("{:<24} {:>5}\n", name.value_or("-"), domid);
  }
}

void stats_command(const std::filesystem::path& dir, std::optional<DomId> domid, bool json,
                   std::ostream& out) {
  std::vector<DomId> domids;
  if (domid) {
    domids.push_back(*domid);
  } else {
    domids.push_back(0);
    for (DomId d : sim::list_domains(dir)) {
      if (d != 0) domids.push_back(d);
    }
  }
  nlohmann::json all = nlohmann::json::array();
  for (DomId d : domids) all.push_back(counters_json(d, sim::read_counters(dir, d)));
  if (json) {
    out << (domid ? all.front() : nlohmann::json{{"domains", all}}).dump(2) << std::endl;
    return;
  }
  for (const auto& entry : all) {
    out << "domain " << entry["domid"].get<int>() << ":\n";
    for (const auto& [key, value] : entry.items()) {
      if (key != "domid") out << fmt::format("  {:<26} {}\n", key, value.get<std::uint64_t>());
    }
  }
}

}  // namespace vifd::xenstored
