// vif-front: exposes this domain's vif `device/vif/<devid>` as a TAP
// interface, with the userspace netfront (frontend/lib/netfront) on the ring
// side. One thread, one poll() loop over the xenstore watch, a signalfd,
// every queue's event channel and every TAP queue.
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "common/cli/command_line.h"
#include "common/log/log.h"
#include "common/net/tap_device.h"
#include "common/platform/platform.h"
#include "common/platform/select/platform_select.h"
#include "common/protocol/sizes.h"
#include "common/service/notify.h"
#include "common/service/startup_check.h"
#include "common/xenstore/client.h"
#include "frontend/lib/netfront/netfront.h"
#include "frontend/lib/netfront/tap_pump.h"

namespace {

using vifd::frontend::Netfront;
using vifd::frontend::NetfrontOptions;
using vifd::frontend::TapPump;

constexpr std::size_t kTapBudget = 64;  // frames per TAP queue per loop turn
constexpr int kMaxPollRounds = 16;      // re-polls of a busy ring per turn
// Larger than any bare TCP ACK (Ethernet, IPv6, TCP with SACK options).
constexpr std::uint64_t kAckFrame = 160;
constexpr std::chrono::milliseconds kCloseGrace{5000};
// As vifd: a lost xenstored connection is noticed within about a second.
constexpr std::chrono::seconds kXenstoreProbeInterval{1};

// Frames the TAP may hand us: MTU + Ethernet header + one VLAN tag, or a
// whole 64 KiB GSO frame when TSO is on.
std::size_t max_tap_frame(const vifd::net::TapOffloads& offloads, unsigned mtu) {
  return offloads.tso4 || offloads.tso6 ? Netfront::kMaxTapFrame : mtu + 18;
}

class SignalFd {
 public:
  SignalFd() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    fd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
  }
  ~SignalFd() { ::close(fd_); }
  SignalFd(const SignalFd&) = delete;
  SignalFd& operator=(const SignalFd&) = delete;
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class Daemon {
 public:
  Daemon(vifd::platform::Platform& platform, const NetfrontOptions& options,
         const std::string& ifname)
      : front_(platform, vifd::xs::Client::open(platform.xenstore_socket()), options),
        tap_(make_tap(ifname, options.queues)),
        pump_(front_.config().mtu + 18) {
    const auto& config = front_.config();
    tap_.set_mac(config.mac);
    tap_.set_mtu(config.mtu);
    tap_.set_carrier(false);
    tap_.set_link_up(true);
    spdlog::info("vif-front: {} up with mac {}, mtu {}, {} queue(s)", tap_.name(),
                 config.mac.to_string(), config.mtu, tap_.queue_count());
  }

  int run() {
    SignalFd signals;
    front_.process_xenstore();
    apply_link_state();
    vifd::service::notify_ready(fmt::format("{} for {}", tap_.name(), front_.path()));
    std::vector<pollfd> fds;
    auto next_probe = std::chrono::steady_clock::now() + kXenstoreProbeInterval;
    for (;;) {
      fds.clear();
      fds.push_back({signals.fd(), POLLIN, 0});
      fds.push_back({front_.xenstore_fd(), POLLIN, 0});
      const std::size_t queues = front_.queue_count();
      for (std::size_t q = 0; q < queues; ++q)
        fds.push_back({front_.queue(q).event_fd(), POLLIN, 0});
      for (std::size_t t = 0; t < tap_.queue_count(); ++t) {
        // Read the TAP only while its ring has room for the reservation
        // TapPump makes (largest frame + 1 byte); a TX response (event) wakes
        // us up when it does again.
        const bool room = queues > 0 && front_.queue(t % queues).tx_can_reserve(max_read() + 1);
        fds.push_back({tap_.queue_fd(t), static_cast<short>(room ? POLLIN : 0), 0});
      }
      if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
        spdlog::error("vif-front: poll: {}", std::strerror(errno));
        return 1;
      }
      if (fds[0].revents != 0) {
        spdlog::info("vif-front: signal received, closing {}", front_.path());
        vifd::service::notify_stopping("closing " + front_.path());
        break;
      }
      if (fds[1].revents != 0) {
        try {
          front_.process_xenstore();
        } catch (const vifd::xs::XsError&) {
          if (xenstore_lost()) return 1;
          throw;
        }
        apply_link_state();
      }
      if (const auto now = std::chrono::steady_clock::now(); now >= next_probe) {
        next_probe = now + kXenstoreProbeInterval;
        if (xenstore_lost()) return 1;
      }
      if (!front_.connected()) continue;
      // Rings first: responses free TX pages for the TAP reads below.
      std::uint32_t answered_taps = 0;  // bit per TAP queue that got data this turn
      for (std::size_t q = 0; q < front_.queue_count(); ++q) {
        if (service_ring(q, q < queues && fds[2 + q].revents != 0)) {
          answered_taps |= 1U << (q % tap_.queue_count());
        }
      }
      for (std::size_t t = 0; t < tap_.queue_count() && front_.connected(); ++t) {
        // A data segment written to the TAP is received by the kernel inside
        // that write, and TCP queues its ACK on the TAP right then: read it
        // in this turn rather than after another poll(). (ACKs written to
        // the TAP rarely get an answer that fast: a sender's next segments
        // follow the TAP reads that free its queued ones.)
        const bool readable =
            2 + queues + t < fds.size() && (fds[2 + queues + t].revents & POLLIN) != 0;
        if (readable || (answered_taps & (1U << t)) != 0) {
          bool drained = false;
          pump_.tap_to_ring(tap_.queue_fd(t), front_.queue(t % front_.queue_count()), kTapBudget,
                            drained);
        }
      }
      if (front_.check_failed()) apply_link_state();
    }
    std::uint64_t rx_headroom = 0;
    for (std::size_t q = 0; q < front_.queue_count(); ++q) {
      rx_headroom += front_.queue(q).stats().rx_headroom_packets;
    }
    front_.close(kCloseGrace);
    tap_.destroy();
    const auto& stats = pump_.stats();
    spdlog::info(
        "vif-front: closed; tap->ring {} ring->tap {} linearized {} rx-headroom {} drops: "
        "oversize {} vnet-header {} tx-refused {} rx-offload {} tap-write {}",
        stats.tap_to_ring, stats.ring_to_tap, stats.rx_linearized, rx_headroom, stats.drop_oversize,
        stats.drop_bad_vnet_header, stats.drop_tx_refused, stats.drop_rx_offload,
        stats.drop_tap_write);
    return 0;
  }

 private:
  static vifd::net::TapDevice make_tap(const std::string& name, unsigned queues) {
    vifd::net::TapOptions options;
    options.name = name;
    options.queues = queues;
    options.multi_queue = queues > 1;
    return vifd::net::TapDevice(options);
  }

  // Without xenstored the device can be neither served nor closed: one
  // error line, then exit for the service manager to start a new instance
  // (which resets the device, as after a crash). True when that is the case.
  bool xenstore_lost() {
    try {
      front_.probe_xenstore();
      return false;
    } catch (const vifd::xs::XsError& error) {
      spdlog::error(
          "vif-front: xenstored connection lost ({}): exiting for the service manager to "
          "restart vif-front",
          error.what());
      vifd::service::notify_stopping("xenstored connection lost");
      tap_.destroy();
      return true;
    }
  }

  std::size_t max_read() const { return max_tap_frame(tap_.offloads(), front_.config().mtu); }

  // `events`: the queue's event channel fd was readable. Only then are
  // events read; a turn woken by the TAP alone still reaps and delivers
  // what the rings hold, which costs no system call.
  // Returns whether data (frames larger than a bare ACK, on average) went
  // to the TAP.
  bool service_ring(std::size_t q, bool events) {
    auto& queue = front_.queue(q);
    const int fd = tap_.queue_fd(q % tap_.queue_count());
    const std::uint64_t written = pump_.stats().ring_to_tap;
    const std::uint64_t written_bytes = pump_.stats().ring_to_tap_bytes;
    const auto deliver = [this, fd](const vifd::frontend::RxFrame& frame) {
      pump_.ring_to_tap(fd, frame);
    };
    for (int round = 0; round < kMaxPollRounds; ++round) {
      // Events raised during a round make the fd readable again for the
      // next poll(); reading them here would only repeat this round's work.
      if (!queue.poll(deliver, events && round == 0).more_work) break;
    }
    const std::uint64_t frames = pump_.stats().ring_to_tap - written;
    return frames != 0 && pump_.stats().ring_to_tap_bytes - written_bytes > frames * kAckFrame;
  }

  // Carrier follows the backend; offloads follow what the backend takes.
  void apply_link_state() {
    const bool carrier = front_.backend_connected();
    if (carrier != carrier_) {
      tap_.set_carrier(carrier);
      carrier_ = carrier;
      spdlog::info("vif-front: {} carrier {}", tap_.name(), carrier ? "on" : "off");
    }
    vifd::net::TapOffloads offloads;
    if (front_.connected()) {
      const auto peer = front_.tx_offloads();
      // TUN_F_CSUM covers both IP versions; the backend must take both.
      offloads.csum = peer.csum_ipv4 && peer.csum_ipv6;
      offloads.tso4 = offloads.csum && peer.tso4;
      offloads.tso6 = offloads.csum && peer.tso6;
    }
    if (offloads != tap_.offloads()) {
      tap_.set_offloads(offloads);
      pump_.set_max_frame(max_read());
    }
  }

  Netfront front_;
  vifd::net::TapDevice tap_;
  TapPump pump_;
  bool carrier_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vif-front: a Xen vif of this domain as a TAP interface (userspace netfront)"};
  std::string platform_name;
  NetfrontOptions options;
  std::optional<std::string> ifname;
  bool verbose = false;
  std::string log_format = "auto";
  app.add_option("--platform", platform_name, "xen or sim (default: sim when VIF_SIM_DIR is set)")
      ->check(CLI::IsMember({"xen", "sim"}));
  app.add_option("--devid", options.devid, "device/vif/<devid> to drive (default 0)");
  app.add_option("--ifname", ifname, "TAP interface name (default eth<devid>)");
  app.add_option("--queues", options.queues, "queues to request (default 1)")
      ->check(CLI::Range(1, 16));
  app.add_option("--xdp-headroom", options.features.xdp_headroom,
                 "ask the backend for this many free bytes in front of each received packet, "
                 "as Linux netfront does for XDP (xdp-headroom; default 0: none)")
      ->check(CLI::Range(std::size_t{0}, vifd::protocol::kPageSize - 1));
  bool no_static_grants = false;
  app.add_flag("--no-static-grants", no_static_grants,
               "do not offer the TX/RX pools as static grant mappings (grant copies only)");
  app.add_flag("-v,--verbose", verbose, "debug logging");
  app.add_option("--log-format", log_format,
                 "auto, plain or journal (syslog priority prefixes, no timestamp); auto picks "
                 "journal when stderr is the journal (JOURNAL_STREAM)")
      ->check(CLI::IsMember({"auto", "plain", "journal"}));
  vifd::cli::add_common_flags(app, "vif-front");
  if (const auto exit_code = vifd::cli::parse(app, argc, argv)) {
    return *exit_code;
  }
  options.static_grants = !no_static_grants;
  vifd::log::default_to_stderr();
  vifd::log::set_format(vifd::log::parse_format(log_format).value_or(vifd::log::Format::kAuto));
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  try {
    vifd::service::Prerequisites prerequisites;
    prerequisites.net_admin = true;
    prerequisites.needs =
        vifd::platform::platform_needs(platform_name, vifd::platform::Role::kFrontend);
    prerequisites.needs.push_back(
        {vifd::service::Need::Kind::kDevice, {"/dev/net/tun"}, "/dev/net/tun (for the TAP)"});
    if (const auto missing = vifd::service::missing(prerequisites); !missing.empty()) {
      spdlog::error("{}", vifd::service::missing_line("vif-front", missing));
      return 1;
    }
    auto platform = vifd::platform::make_platform(platform_name);
    Daemon daemon(*platform, options, ifname.value_or("eth" + std::to_string(options.devid)));
    return daemon.run();
  } catch (const std::exception& error) {
    spdlog::error("vif-front: {}", error.what());
    return 1;
  }
}
