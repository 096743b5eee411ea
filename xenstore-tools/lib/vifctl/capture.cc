#include "xenstore-tools/lib/vifctl/capture.h"

#include <fmt/format.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <vector>

#include "common/protocol/base64.h"
#include "common/protocol/xs_parse.h"
#include "xenstore-tools/lib/vifctl/control_client.h"
#include "xenstore-tools/lib/vifctl/vif_spec.h"

namespace vifd::vifctl {
namespace {

using Clock = std::chrono::steady_clock;

// vifd writes lines of at most one base64-encoded 64 KiB frame; a longer
// line means the peer is not vifd.
constexpr std::size_t kMaxLineBytes = 1U << 20;
// How often the stop flag and the deadline are looked at while vifd is quiet.
constexpr int kPollMs = 100;

class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { ::close(fd_); }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct PcapCloser {
  void operator()(pcap_t* pcap) const { pcap_close(pcap); }
  void operator()(pcap_dumper_t* dumper) const { pcap_dump_close(dumper); }
};

// The pcap file being written: complete and valid whenever the capture ends.
class PcapWriter {
 public:
  PcapWriter(const std::string& output, std::size_t snaplen)
      : pcap_(pcap_open_dead(DLT_EN10MB, static_cast<int>(snaplen))) {
    if (!pcap_) {
      throw std::runtime_error("pcap_open_dead failed");
    }
    if (output == "-") {
      // pcap_dump_close closes the FILE it was given: hand it a duplicate so
      // stdout itself stays usable.
      const int fd = ::dup(STDOUT_FILENO);
      std::FILE* file = fd < 0 ? nullptr : ::fdopen(fd, "wb");
      if (file == nullptr) {
        if (fd >= 0) {
          ::close(fd);
        }
        throw std::runtime_error(fmt::format("-w -: stdout: {}", std::strerror(errno)));
      }
      dumper_.reset(pcap_dump_fopen(pcap_.get(), file));
      if (!dumper_) {
        std::fclose(file);
      }
    } else {
      dumper_.reset(pcap_dump_open(pcap_.get(), output.c_str()));
    }
    if (!dumper_) {
      throw std::runtime_error(fmt::format("-w {}: {}", output, pcap_geterr(pcap_.get())));
    }
  }

  void write(std::int64_t realtime_ns, std::uint32_t length,
             const std::vector<std::uint8_t>& bytes) {
    pcap_pkthdr header{};
    header.ts.tv_sec = static_cast<time_t>(realtime_ns / 1'000'000'000);
    header.ts.tv_usec = static_cast<suseconds_t>(realtime_ns % 1'000'000'000 / 1000);
    header.caplen = static_cast<bpf_u_int32>(bytes.size());
    header.len = std::max<bpf_u_int32>(length, header.caplen);
    // pcap_dump's first argument is the dumper, typed as u_char* by its API.
    pcap_dump(reinterpret_cast<u_char*>(dumper_.get()), &header, bytes.data());
  }

  // After each batch, so a reader of `-w -` sees frames as they come.
  void flush() { pcap_dump_flush(dumper_.get()); }

 private:
  std::unique_ptr<pcap_t, PcapCloser> pcap_;
  std::unique_ptr<pcap_dumper_t, PcapCloser> dumper_;
};

void send_all(int fd, const std::string& data, const std::string& socket_path) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::runtime_error(
          fmt::format("vifd control socket {}: send: {}", socket_path, std::strerror(errno)));
    }
    sent += static_cast<std::size_t>(n);
  }
}

nlohmann::json parse_line(std::string_view line, const std::string& socket_path) {
  nlohmann::json parsed = nlohmann::json::parse(line, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    throw std::runtime_error(fmt::format(
        "vifd control socket {}: capture stream line is not a JSON object", socket_path));
  }
  return parsed;
}

std::string error_of(const nlohmann::json& line) {
  const auto error = line.find("error");
  return error != line.end() && error->is_string() ? error->get<std::string>() : "capture failed";
}

}  // namespace

xenbus::VifId parse_capture_vif(std::string_view what, std::string_view text) {
  std::string_view rest = text;
  if (rest.starts_with("vif")) {
    rest.remove_prefix(3);
  }
  const auto separator = rest.find_first_of("./");
  if (separator == std::string_view::npos || rest.empty()) {
    throw ArgumentError(fmt::format(
        "{}: invalid value {:?}: expected DOMID.DEVID, DOMID/DEVID or vifDOMID.DEVID", what, text));
  }
  std::string canonical(rest);
  canonical[separator] = '/';
  return parse_vif_id(what, canonical);
}

int capture_command(const std::string& control_socket, const CaptureOptions& options,
                    std::ostream& err, const std::atomic<bool>& stop) {
  const xenbus::VifId id = parse_capture_vif("VIF", options.vif);
  const std::string name = xenbus::tap_name(id);
  if (options.output.empty()) {
    throw ArgumentError("-w: a pcap file, or - for stdout, is required");
  }
  if (options.count && *options.count == 0) {
    throw ArgumentError("-c: COUNT must be at least 1");
  }
  if (options.duration && options.duration->count() <= 0) {
    throw ArgumentError("--duration: must be more than 0 seconds");
  }
  if (options.snaplen < 14 || options.snaplen > 65536) {
    throw ArgumentError(
        fmt::format("--snaplen: invalid value {}: must be 14..65536 bytes", options.snaplen));
  }

  const Socket socket(control_connect(control_socket));
  send_all(socket.get(),
           nlohmann::json{{"command", "capture"},
                          {"domid", id.domid},
                          {"devid", id.devid},
                          {"snaplen", options.snaplen}}
                   .dump() +
               "\n",
           control_socket);

  std::optional<Clock::time_point> deadline;
  if (options.duration) {
    deadline = Clock::now() + *options.duration;
  }
  std::unique_ptr<PcapWriter> writer;
  std::uint64_t captured = 0;
  std::uint64_t dropped = 0;
  bool answered = false;
  std::string ended;  // vifd's reason, when it ended the stream
  bool closed = false;
  std::string pending;
  std::vector<char> buffer(std::size_t{64} * 1024);

  const auto reached_count = [&] { return options.count && captured >= *options.count; };
  while (!stop.load() && !reached_count() && ended.empty() && !closed) {
    int timeout = kPollMs;
    if (deadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      if (left <= 0) {
        break;
      }
      timeout = static_cast<int>(std::min<long long>(left, kPollMs));
    }
    pollfd pfd{.fd = socket.get(), .events = POLLIN, .revents = 0};
    const int ready = ::poll(&pfd, 1, timeout);
    if (ready < 0 && errno != EINTR) {
      throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
    }
    if (ready <= 0) {
      continue;
    }
    const ssize_t n = ::recv(socket.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      throw std::runtime_error(
          fmt::format("vifd control socket {}: recv: {}", control_socket, std::strerror(errno)));
    }
    if (n == 0) {
      closed = true;
    }
    pending.append(buffer.data(), static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (std::size_t end = pending.find('\n'); end != std::string::npos && !reached_count();
         end = pending.find('\n', start)) {
      const nlohmann::json line =
          parse_line(std::string_view(pending).substr(start, end - start), control_socket);
      start = end + 1;
      if (!answered) {
        const auto ok = line.find("ok");
        if (ok == line.end() || !ok->is_boolean() || !ok->get<bool>()) {
          throw std::runtime_error(fmt::format("capture {}: {}", name, error_of(line)));
        }
        answered = true;
        // Only now: a refused capture leaves no empty file behind.
        writer = std::make_unique<PcapWriter>(options.output, options.snaplen);
        continue;
      }
      if (const auto data = line.find("data"); data != line.end() && data->is_string()) {
        const auto bytes = protocol::base64_decode(data->get<std::string>());
        if (!bytes) {
          throw std::runtime_error(
              fmt::format("capture {}: vifd sent a frame that is not base64", name));
        }
        writer->write(line.value("t", std::int64_t{0}), line.value("len", std::uint32_t{0}),
                      *bytes);
        ++captured;
        continue;
      }
      if (const auto count = line.find("dropped"); count != line.end() && count->is_number()) {
        dropped = count->get<std::uint64_t>();
      }
      if (line.contains("ok")) {
        ended = error_of(line);
        break;
      }
    }
    pending.erase(0, start);
    if (pending.size() > kMaxLineBytes) {
      throw std::runtime_error(
          fmt::format("capture {}: vifd sent a line over {} bytes", name, kMaxLineBytes));
    }
    if (writer) {
      writer->flush();
    }
  }
  if (!answered) {
    if (closed) {
      throw std::runtime_error(
          fmt::format("capture {}: vifd closed the connection without an answer", name));
    }
    // Stopped (or out of time) before vifd answered: nothing to write, but
    // the operator asked for a file.
    writer = std::make_unique<PcapWriter>(options.output, options.snaplen);
  }
  writer.reset();  // complete the file before reporting
  err << fmt::format("{} frames captured from {}, {} dropped by vifd (capture buffer full)\n",
                     captured, name, dropped);
  if (!ended.empty()) {
    err << "vifctl: " << ended << '\n';
    return 1;
  }
  if (closed) {
    err << fmt::format("vifctl: vifd closed the capture of {}\n", name);
    return 1;
  }
  return 0;
}

}  // namespace vifd::vifctl
