// vif-bench: a packet generator and sink on the simulated Xen host, built on
// the frontend library, so vifd's own limits show without a guest TCP stack
// in the way. It joins the sim host as the domUs it drives (instead of
// vif-front), and as dom0 through packet sockets on vifd's TAPs. See
// docs/man/vif-bench.1 and scripts/bench.
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/cli/command_line.h"
#include "common/log/log.h"
#include "common/platform/sim/sim_host.h"
#include "common/platform/sim/sim_platform.h"
#include "common/xenstore/client.h"
#include "frontend/lib/bench/arguments.h"
#include "frontend/lib/bench/baselines.h"
#include "frontend/lib/bench/frame.h"
#include "frontend/lib/bench/matrix.h"
#include "frontend/lib/bench/netfront_port.h"
#include "frontend/lib/bench/packet_port.h"
#include "frontend/lib/bench/report.h"
#include "frontend/lib/bench/runner.h"
#include "xenstore-tools/lib/vifctl/control_client.h"

namespace {

namespace bench = vifd::bench;
using vifd::cli::kExitFailure;
using vifd::cli::kExitUsage;

struct Options {
  std::string sim_dir;
  std::vector<unsigned> domains{1, 2};
  std::uint32_t devid = 0;
  std::string dom0_netns;
  std::string paths = "all";
  std::string sizes = "64,512,1500,9000,64k";
  std::string queues = "1,2,4";
  std::string grants = "copy";
  double seconds = 2.0;
  std::size_t window = 256;
  std::size_t pings = 1000;
  std::string baselines = "memcpy,spsc,veth";
  std::vector<std::string> veth;  // NETNS:IFNAME of each end
  std::size_t memcpy_mib = 0;     // 0: from the last-level cache size
  std::optional<int> vifd_pid;
  std::string control_socket;
  std::string json;
  std::string table;
};

void progress(const std::string& line) {
  fmt::print(stderr, "vif-bench: {}\n", line);
}

std::optional<double> process_cpu_seconds(int pid) {
  std::ifstream file(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!std::getline(file, text)) {
    return std::nullopt;
  }
  // The command name may hold spaces: fields count from the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> values;
  std::string value;
  while (fields >> value) {
    values.push_back(value);
  }
  // Field 3 (state) is values[0]: utime is field 14, stime field 15.
  if (values.size() < 13) {
    return std::nullopt;
  }
  const double ticks = std::stod(values[11]) + std::stod(values[12]);
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// vifd's counters summed over every vif and queue (what `vifctl stats
// --json` prints), the host's hypercall counters of dom0 (`vif-sim stats 0`)
// and vifd's CPU time.
std::optional<bench::BackendSample> sample_backend(const Options& options) {
  bench::BackendSample sample;
  try {
    const auto response =
        vifd::vifctl::control_request(options.control_socket, {{"command", "stats"}});
    for (const auto& vif : response.at("vifs")) {
      for (const auto& queue : vif.at("queues")) {
        sample.grant_copy_calls += queue.at("grant_copy").at("calls").get<std::uint64_t>();
        sample.grant_copy_segments += queue.at("grant_copy").at("segments").get<std::uint64_t>();
        sample.notifications += queue.at("notifications").at("sent").get<std::uint64_t>() +
                                queue.at("notifications").at("received").get<std::uint64_t>();
        for (const auto& [reason, count] : queue.at("drops").items()) {
          sample.drops[reason] += count.get<std::uint64_t>();
        }
      }
    }
    const auto host = vifd::sim::read_counters(options.sim_dir, vifd::platform::kDom0);
    sample.hypervisor_copy_calls = host.grant_copy_calls;
    sample.hypervisor_notify_calls = host.evtchn_notify_calls;
  } catch (const std::exception& error) {
    progress(fmt::format("no vifd counters: {}", error.what()));
    return std::nullopt;
  }
  if (options.vifd_pid) {
    sample.cpu_seconds = process_cpu_seconds(*options.vifd_pid);
  }
  return sample;
}

class Bench {
 public:
  explicit Bench(Options options) : options_(std::move(options)) {
    for (const unsigned domid : options_.domains) {
      platforms_.push_back(vifd::platform::make_sim_platform(
          options_.sim_dir, static_cast<vifd::platform::DomId>(domid)));
    }
  }

  void run_matrix(const std::vector<bench::Cell>& cells) {
    std::size_t index = 0;
    while (index < cells.size()) {
      // One connection serves every size of a (path, queues, grants) group.
      std::size_t end = index;
      while (end < cells.size() && cells[end].path == cells[index].path &&
             cells[end].queues == cells[index].queues && cells[end].grants == cells[index].grants) {
        ++end;
      }
      run_group(std::vector<bench::Cell>(cells.begin() + static_cast<std::ptrdiff_t>(index),
                                         cells.begin() + static_cast<std::ptrdiff_t>(end)));
      index = end;
    }
  }

  void run_baselines(const std::vector<std::size_t>& sizes) {
    const auto seconds = std::chrono::duration<double>(options_.seconds);
    if (wants("memcpy")) {
      std::size_t bytes = options_.memcpy_mib << 20;
      if (bytes == 0) {
        // Four times the last-level cache per buffer, within [64 MiB, 1 GiB].
        bytes = std::clamp<std::size_t>(bench::last_level_cache_bytes() * 4, 64 << 20, 1 << 30);
      }
      progress(fmt::format("baseline memcpy: two {} MiB buffers (last-level cache {} KiB)",
                           bytes >> 20, bench::last_level_cache_bytes() >> 10));
      bench::MemcpyBaseline memcpy_baseline(bytes);
      for (const std::size_t size : sizes) {
        add_baseline(memcpy_baseline.run(size, seconds));
      }
    }
    if (wants("spsc")) {
      for (const std::size_t size : sizes) {
        add_baseline(bench::run_spsc_baseline(size, seconds));
      }
    }
    if (wants("veth")) {
      run_veth(sizes);
    }
  }

  bench::Report& report() { return report_; }

 private:
  bool wants(const std::string& name) const {
    return ("," + options_.baselines + ",").find("," + name + ",") != std::string::npos;
  }

  void add_baseline(const bench::BaselineResult& result) {
    progress(fmt::format("baseline {} {}: {:.3f} Mpps {:.3f} Gbit/s", result.name,
                         bench::size_label(result.frame), result.mpps, result.gbit_per_sec));
    report_.baselines.push_back(result);
  }

  bench::ThroughputOptions throughput_options() const {
    bench::ThroughputOptions throughput;
    throughput.measure = std::chrono::duration<double>(options_.seconds);
    throughput.warmup = std::chrono::duration<double>(std::min(0.3, options_.seconds / 4));
    throughput.window = options_.window;
    return throughput;
  }

  void run_veth(const std::vector<std::size_t>& sizes) {
    if (options_.veth.size() != 2) {
      report_.veth_method = "not measured (no --veth NETNS:IFNAME,NETNS:IFNAME)";
      progress("baseline veth skipped: no --veth");
      return;
    }
    const auto [ns_a, if_a] = bench::parse_veth_end(options_.veth[0]);
    const auto [ns_b, if_b] = bench::parse_veth_end(options_.veth[1]);
    report_.veth_method = fmt::format(
        "raw frames over a veth pair, {} in {} -> {} in {}: AF_PACKET sendmmsg with "
        "PACKET_QDISC_BYPASS and a virtio-net header (64k frames as one TCPv4 GSO frame), "
        "AF_PACKET recvmmsg with MSG_TRUNC on the peer (128 bytes copied per frame); the same "
        "generator and sink code as the dom0 paths, paced by the same window",
        if_a, ns_a.empty() ? "this namespace" : ns_a, if_b, ns_b.empty() ? "this namespace" : ns_b);
    bench::PacketPort a(ns_a, if_a);
    bench::PacketPort b(ns_b, if_b);
    const auto none = []() -> std::optional<bench::BackendSample> { return std::nullopt; };
    for (const std::size_t size : sizes) {
      std::vector<bench::Frame> frames{
          bench::build_frame({b.mac(), a.mac(), size, size > bench::kLargestPlainFrame, 0})};
      const auto result = bench::run_throughput(a, b, frames, ++epoch_, throughput_options(), none);
      bench::BaselineResult baseline{"veth", size, 0, 0};
      if (result.seconds > 0) {
        baseline.mpps = static_cast<double>(result.received_packets) / result.seconds / 1e6;
        baseline.gbit_per_sec =
            static_cast<double>(result.received_bytes) * 8 / result.seconds / 1e9;
      }
      add_baseline(baseline);
    }
  }

  std::unique_ptr<bench::NetfrontPort> connect(std::size_t domain, unsigned queues,
                                               bench::Grants grants) {
    auto& platform = *platforms_.at(domain);
    auto xenstore = vifd::xs::Client::open(platform.xenstore_socket());
    auto port = std::make_unique<bench::NetfrontPort>(platform, std::move(xenstore), options_.devid,
                                                      queues, grants == bench::Grants::kMapped,
                                                      std::chrono::seconds(10));
    if (port->queue_count() != queues) {
      throw std::runtime_error(fmt::format("{}: the backend granted {} queue(s), not {}",
                                           port->name(), port->queue_count(), queues));
    }
    return port;
  }

  std::string tap_name() const {
    return fmt::format("vif{}.{}", options_.domains.at(0), options_.devid);
  }

  void run_group(const std::vector<bench::Cell>& cells) {
    const bench::Cell& first = cells.front();
    const std::string group = fmt::format("{} {} queue(s) grants={}", bench::to_string(first.path),
                                          first.queues, bench::to_string(first.grants));
    progress(fmt::format("{}: connecting", group));
    // Ports live only as long as the group: the next group reconnects with
    // its own queue count.
    std::unique_ptr<bench::Port> generator;
    std::unique_ptr<bench::Port> sink;
    try {
      switch (first.path) {
        case bench::Path::kDomuToDomu:
          generator = connect(0, first.queues, first.grants);
          sink = connect(1, first.queues, first.grants);
          break;
        case bench::Path::kDomuToDom0:
          generator = connect(0, first.queues, first.grants);
          sink = std::make_unique<bench::PacketPort>(options_.dom0_netns, tap_name());
          break;
        case bench::Path::kDom0ToDomu:
          sink = connect(0, first.queues, first.grants);
          generator = std::make_unique<bench::PacketPort>(options_.dom0_netns, tap_name());
          break;
      }
    } catch (const std::exception& error) {
      progress(fmt::format("{}: {}", group, error.what()));
      for (const bench::Cell& cell : cells) {
        bench::CellResult result;
        result.cell = cell;
        result.error = error.what();
        report_.cells.push_back(result);
      }
      return;
    }
    const auto sample = [this] { return sample_backend(options_); };
    for (const bench::Cell& cell : cells) {
      bench::CellResult result;
      result.cell = cell;
      try {
        std::vector<bench::Frame> frames;
        for (unsigned flow = 0; flow < cell.queues; ++flow) {
          frames.push_back(bench::build_frame({sink->mac(), generator->mac(), cell.frame,
                                               cell.gso(), static_cast<std::uint16_t>(flow)}));
        }
        const auto measured = bench::run_throughput(*generator, *sink, frames, ++epoch_,
                                                    throughput_options(), sample);
        result.seconds = measured.seconds;
        result.sent_packets = measured.sent_packets;
        result.received_total = measured.received_total;
        result.received_packets = measured.received_packets;
        result.received_bytes = measured.received_bytes;
        result.stale_packets = measured.stale_packets;
        result.foreign_packets = measured.foreign_packets;
        result.backend = measured.backend;
        if (cell.frame == cells.front().frame && options_.pings > 0) {
          result.latency = pingpong(*generator, *sink);
        }
      } catch (const std::exception& error) {
        result.error = error.what();
      }
      print_cell(group, result);
      report_.cells.push_back(result);
      if (!result.error.empty() && !generator_alive(*generator, *sink)) {
        break;
      }
    }
  }

  static bool generator_alive(bench::Port& generator, bench::Port& sink) {
    try {
      generator.receive();
      sink.receive();
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  bench::Latency pingpong(bench::Port& a, bench::Port& b) {
    const bench::Frame forward = bench::build_frame({b.mac(), a.mac(), 64, false, 0});
    const bench::Frame back = bench::build_frame({a.mac(), b.mac(), 64, false, 0});
    return bench::run_pingpong(a, b, forward, back, ++epoch_, options_.pings,
                               std::chrono::milliseconds(200));
  }

  void print_cell(const std::string& group, const bench::CellResult& result) {
    if (!result.error.empty()) {
      progress(fmt::format("{} {}: failed: {}", group, bench::size_label(result.cell.frame),
                           result.error));
      return;
    }
    const bench::Derived d = bench::derive(result);
    std::string line = fmt::format(
        "{} {}: {:.3f} Mpps {:.3f} Gbit/s, sent {} received {} ({} in {:.2f} s)", group,
        bench::size_label(result.cell.frame), d.mpps, d.gbit_per_sec, result.sent_packets,
        result.received_total, result.received_packets, result.seconds);
    if (d.copy_calls_per_packet) {
      line += fmt::format(", gcopy/pkt {:.3f}", *d.copy_calls_per_packet);
    }
    if (d.notifications_per_packet) {
      line += fmt::format(", notif/pkt {:.3f}", *d.notifications_per_packet);
    }
    if (result.backend) {
      for (const auto& [reason, count] : result.backend->drops) {
        line += fmt::format(", vifd dropped {} {}", count, reason);
      }
    }
    if (result.latency) {
      line += fmt::format(", rtt p50 {:.1f} us p99 {:.1f} us", result.latency->p50_us,
                          result.latency->p99_us);
    }
    progress(line);
  }

  Options options_;
  std::vector<std::unique_ptr<vifd::platform::Platform>> platforms_;
  bench::Report report_;
  // Each measurement's frames carry their own epoch (see run_throughput).
  std::uint32_t epoch_ = 0;
};

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream file(path);
  file << text;
  if (!file.flush()) {
    throw std::runtime_error("cannot write " + path);
  }
}

int run(int argc, char** argv) {
  CLI::App app{
      "vif-bench: packet generator and sink on a simulated Xen host (vif-sim), measuring vifd "
      "frame rates, counters per packet, CPU and ping-pong latency against baselines"};
  Options options;
  if (const char* dir = std::getenv("VIF_SIM_DIR")) {
    options.sim_dir = dir;
  }
  app.add_option("--sim-dir", options.sim_dir,
                 "the vif-sim host directory (default: $VIF_SIM_DIR)");
  app.add_option("--domains", options.domains,
                 "the two domUs to drive: the sender (and the domU of the dom0 paths), then the "
                 "domu-domu receiver (default 1,2)")
      ->delimiter(',')
      ->expected(2);
  app.add_option("--devid", options.devid, "their vif's devid (default 0)");
  app.add_option("--dom0-netns", options.dom0_netns,
                 "network namespace of vifd's TAPs (default: this one)");
  app.add_option("--paths", options.paths, "domu-domu,domu-dom0,dom0-domu or all (default all)");
  app.add_option("--sizes", options.sizes,
                 "Ethernet frame sizes; 64k is a 65535-byte TCPv4 GSO frame (default "
                 "64,512,1500,9000,64k)");
  app.add_option("--queues", options.queues, "queue counts (default 1,2,4)");
  app.add_option("--grants", options.grants,
                 "how vifd reaches the buffers: copy (grant copies), mapped (static grant "
                 "mappings, memcpy), or copy,mapped (default copy)");
  app.add_option("--seconds", options.seconds, "measured seconds per cell (default 2)")
      ->check(CLI::Range(0.05, 600.0));
  app.add_option("--window", options.window,
                 "frames in flight the generator may have (default 256)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--pings", options.pings,
                 "ping-pong round trips per path and queue count, 0 for none (default 1000)");
  app.add_option("--baselines", options.baselines,
                 "memcpy,spsc,veth, or none (default memcpy,spsc,veth)");
  app.add_option("--veth", options.veth,
                 "the veth baseline's ends: NETNS:IFNAME,NETNS:IFNAME (sender first)")
      ->delimiter(',')
      ->expected(2);
  app.add_option("--memcpy-mib", options.memcpy_mib,
                 "size of each memcpy buffer in MiB (default: 4x the last-level cache, 64-1024)");
  app.add_option("--vifd-pid", options.vifd_pid, "vifd's pid, for its CPU time per GB and packet");
  app.add_option("--control-socket", options.control_socket,
                 "vifd's control socket (default: <sim-dir>/vifd.sock)");
  app.add_option("--json", options.json, "write the results as JSON to this file");
  app.add_option("--table", options.table, "also write the text table to this file");
  vifd::cli::add_common_flags(app, "vif-bench");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }
  vifd::log::default_to_stderr();
  spdlog::set_level(spdlog::level::warn);

  std::vector<bench::Cell> cells;
  std::vector<std::size_t> sizes;
  try {
    sizes = bench::parse_sizes(options.sizes);
    cells = bench::build_matrix(bench::parse_paths(options.paths),
                                bench::parse_queues(options.queues, 16),
                                bench::parse_grants(options.grants), sizes);
    bench::check_domains(options.domains);
    for (const std::string& end : options.veth) {
      bench::parse_veth_end(end);
    }
    bench::check_memcpy_mib(options.memcpy_mib,
                            static_cast<std::size_t>(::sysconf(_SC_PHYS_PAGES)) *
                                static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)));
    if (options.vifd_pid && (*options.vifd_pid <= 0 || !std::filesystem::exists(fmt::format(
                                                           "/proc/{}/stat", *options.vifd_pid)))) {
      throw std::invalid_argument(fmt::format("--vifd-pid {}: no such process", *options.vifd_pid));
    }
    if (options.baselines != "none") {
      std::istringstream names(options.baselines);
      for (std::string name; std::getline(names, name, ',');) {
        if (name != "memcpy" && name != "spsc" && name != "veth") {
          throw std::invalid_argument(
              fmt::format("unknown baseline '{}' (expected memcpy, spsc, veth or none)", name));
        }
      }
    }
    if (options.sim_dir.empty()) {
      throw std::invalid_argument("no --sim-dir and no VIF_SIM_DIR");
    }
  } catch (const std::invalid_argument& error) {
    fmt::print(stderr, "vif-bench: {}\n", error.what());
    return kExitUsage;
  }
  if (options.control_socket.empty()) {
    options.control_socket = options.sim_dir + "/vifd.sock";
  }

  try {
    Bench runner(options);
    auto& report = runner.report();
    report.date = utc_now();
    report.cpus = std::max(1U, std::thread::hardware_concurrency());
    report.cell_seconds = options.seconds;
    std::string command = "vif-bench";
    for (int i = 1; i < argc; ++i) {
      command += std::string(" ") + argv[i];
    }
    report.command = command;
    progress(fmt::format("{} cells, {:.1f} s each", cells.size(), options.seconds));
    runner.run_matrix(cells);
    if (options.baselines != "none") {
      runner.run_baselines(sizes);
    }
    const std::string table = bench::format_table(report);
    fmt::print("{}", table);
    if (!options.table.empty()) {
      write_file(options.table, table);
    }
    if (!options.json.empty()) {
      write_file(options.json, bench::to_json(report).dump(2) + "\n");
    }
  } catch (const std::exception& error) {
    fmt::print(stderr, "vif-bench: {}\n", error.what());
    return kExitFailure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    // Setting up the command line itself failed; nothing ran.
    fmt::print(stderr, "vif-bench: {}\n", error.what());
  } catch (...) {
    fmt::print(stderr, "vif-bench: unknown error\n");
  }
  return kExitFailure;
}
