// Helpers of the vifctl capture tests: a raw capture connection to vifd's
// control socket, the vifctl program run as a child, pcap files read back
// with libpcap.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace vifd::backend::hostile {

// One `capture` request on its own connection, held open until destroyed.
class CaptureConnection {
 public:
  CaptureConnection(const std::string& socket_path, const nlohmann::json& request);
  ~CaptureConnection();
  CaptureConnection(const CaptureConnection&) = delete;
  CaptureConnection& operator=(const CaptureConnection&) = delete;

  // The answer line (null when none came within 5 s).
  const nlohmann::json& answer() const { return answer_; }
  // The next stream line within `bound`, or nullopt (timeout or closed).
  std::optional<nlohmann::json> next_line(std::chrono::milliseconds bound);

 private:
  int fd_ = -1;
  std::string pending_;
  nlohmann::json answer_;
};

// vifctl (the program) run as a child with stderr to a file.
class VifctlProcess {
 public:
  // stdout_file empty: stdout stays the test's.
  VifctlProcess(const std::vector<std::string>& arguments, std::filesystem::path stderr_file,
                const std::filesystem::path& stdout_file = {});
  ~VifctlProcess();
  VifctlProcess(const VifctlProcess&) = delete;
  VifctlProcess& operator=(const VifctlProcess&) = delete;

  // The exit status, or nullopt when it did not exit within `bound`.
  std::optional<int> wait(std::chrono::milliseconds bound);
  void signal(int number) const;
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::filesystem::path stderr_file_;
};

struct PcapFrame {
  std::int64_t realtime_us = 0;
  std::uint32_t length = 0;  // on the wire
  std::vector<std::uint8_t> bytes;
};

struct PcapFile {
  int linktype = -1;
  int snaplen = 0;
  std::vector<PcapFrame> frames;
};

// Reads a pcap file with pcap_open_offline; nullopt (and a test failure
// message) when libpcap cannot read it.
std::optional<PcapFile> read_pcap(const std::filesystem::path& path);

}  // namespace vifd::backend::hostile
