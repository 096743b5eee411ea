// vifctl capture: records the frames vifd's in-process switch forwards from
// and to one vif into a pcap file. Those frames never pass the vif's TAP,
// so tcpdump on it cannot see them; vifd copies them into a bounded buffer
// and streams them on its control socket (docs/operator-guide.md).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "common/xenbus/paths.h"

namespace vifd::vifctl {

struct CaptureOptions {
  std::string vif;     // D.N, D/N or the TAP name vifD.N
  std::string output;  // a pcap file, or "-" for stdout
  std::optional<std::uint64_t> count;
  std::optional<std::chrono::milliseconds> duration;
  std::size_t snaplen = 65535;
};

// The vif a capture argument names; throws ArgumentError naming `what`.
xenbus::VifId parse_capture_vif(std::string_view what, std::string_view text);

// Captures until options.count frames, options.duration, `stop` turning true
// (SIGINT/SIGTERM), or vifd ending the stream; the pcap file is complete and
// valid in every case. Prints the frames captured and the frames vifd
// dropped to `err`. Returns 0, or 1 when vifd ended the capture (the vif
// went away; the message names it). Throws for errors before the first
// frame (the message names the culprit: the vif, the snaplen, the file).
int capture_command(const std::string& control_socket, const CaptureOptions& options,
                    std::ostream& err, const std::atomic<bool>& stop);

}  // namespace vifd::vifctl
