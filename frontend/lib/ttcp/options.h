// Command-line options of vif-ttcp, the ttcp-compatible throughput tool.
//
// The flags are those of the classic ttcp (Mike Muuss, BSD variant) so the
// commands quoted in old Xen mailing-list threads can be re-run unchanged;
// the long options are vif-ttcp extensions.
#pragma once

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vifd::ttcp {

enum class Role { kTransmit, kReceive };
enum class Protocol { kTcp, kUdp };

struct Options {
  Role role = Role::kReceive;
  Protocol protocol = Protocol::kTcp;
  std::size_t buffer_length = 8192;          // -l
  std::size_t buffer_count = 2048;           // -n
  std::size_t buffer_alignment = 16 * 1024;  // -A, as classic ttcp's default
  std::size_t buffer_offset = 0;             // -O
  int port = 5001;                           // -p; 0 lets the receiver pick one
  bool sink_mode = false;                    // -s: pattern in, discard out
  std::size_t socket_buffer_size = 0;        // -b; 0 leaves the kernel default
  bool no_delay = false;                     // -D
  bool socket_debug = false;                 // -d
  bool full_blocks = false;                  // -B
  bool verbose = false;                      // -v
  char format = 'K';                         // -f
  std::optional<double> duration_seconds;    // -T (extension)
  bool checksum = false;                     // --checksum (extension)
  bool json = false;                         // --json (extension)
  std::string bind_address;                  // --bind (extension)
  std::optional<double> timeout_seconds;     // --timeout (extension)
  bool help = false;                         // -h, --help
  bool version = false;                      // --version
  std::string host;                          // transmitter's destination

  // ttcp's prefix for every message: "ttcp-t" or "ttcp-r".
  [[nodiscard]] std::string_view tag() const {
    return role == Role::kTransmit ? "ttcp-t" : "ttcp-r";
  }
};

// A command line vif-ttcp cannot run; what() names the offending option.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses argv[1..] like ttcp's getopt: single-letter flags may be grouped
// ("-ts"), values may be attached ("-l8192") or separate ("-l 8192"), and
// "--" ends the options. Throws UsageError on anything it cannot honour.
Options parse_options(const std::vector<std::string_view>& arguments);

// The help text: classic options first, extensions marked as such.
std::string usage_text();

}  // namespace vifd::ttcp
