#include "frontend/lib/ttcp/options.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace vifd::ttcp {
namespace {

// Largest payload of one UDP/IPv4 datagram; a larger -l would make every
// sendto() fail with EMSGSIZE half-way through a run.
constexpr std::size_t kMaxUdpPayload = 65507;
// Classic ttcp raises the UDP buffer to 5 bytes so that data datagrams are
// always longer than the 4-byte start/end sentinels.
constexpr std::size_t kMinUdpBuffer = 5;
constexpr std::size_t kMaxBufferLength = std::size_t{64} << 20;
constexpr std::size_t kMaxOffset = 64 * 1024;

std::string quoted(std::string_view text) {
  return "'" + std::string(text) + "'";
}

std::size_t parse_size(std::string_view option, std::string_view text, std::size_t minimum,
                       std::size_t maximum) {
  std::size_t value = 0;
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc{} || stop != end) {
    throw UsageError(std::string(option) + " expects a whole number, got " + quoted(text));
  }
  if (value < minimum || value > maximum) {
    throw UsageError(std::string(option) + " must be between " + std::to_string(minimum) + " and " +
                     std::to_string(maximum) + ", got " + quoted(text));
  }
  return value;
}

double parse_seconds(std::string_view option, std::string_view text) {
  double value = 0;
  const char* const end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc{} || stop != end) {
    throw UsageError(std::string(option) + " expects a number of seconds, got " + quoted(text));
  }
  // A week bounds the value so that converting it to milliseconds for
  // poll() can never overflow.
  if (!std::isfinite(value) || value <= 0 || value > 7 * 24 * 3600) {
    throw UsageError(std::string(option) + " must be a positive number of seconds, got " +
                     quoted(text));
  }
  return value;
}

char parse_format(std::string_view text) {
  constexpr std::string_view kFormats = "kKmMgG";
  if (text.size() != 1 || kFormats.find(text[0]) == std::string_view::npos) {
    throw UsageError("-f expects one of k, K, m, M, g, G, got " + quoted(text));
  }
  return text[0];
}

bool is_power_of_two(std::size_t value) {
  return value != 0 && (value & (value - 1)) == 0;
}

// Applies one single-letter option. Returns true when it consumed `value`.
bool apply_short_option(Options& options, char letter, std::string_view value, bool has_value) {
  const std::string name = std::string("-") + letter;
  auto require_value = [&]() {
    if (!has_value) {
      throw UsageError(name + " needs a value");
    }
  };
  switch (letter) {
    case 't':
      options.role = Role::kTransmit;
      return false;
    case 'r':
      options.role = Role::kReceive;
      return false;
    case 's':
      options.sink_mode = true;
      return false;
    case 'u':
      options.protocol = Protocol::kUdp;
      return false;
    case 'D':
      options.no_delay = true;
      return false;
    case 'd':
      options.socket_debug = true;
      return false;
    case 'B':
      options.full_blocks = true;
      return false;
    case 'v':
      options.verbose = true;
      return false;
    case 'h':
      options.help = true;
      return false;
    case 'l':
      require_value();
      options.buffer_length = parse_size(name, value, 1, kMaxBufferLength);
      return true;
    case 'n':
      require_value();
      options.buffer_count = parse_size(name, value, 1, std::numeric_limits<std::size_t>::max());
      return true;
    case 'p':
      require_value();
      options.port = static_cast<int>(parse_size(name, value, 0, 65535));
      return true;
    case 'b':
      require_value();
      options.socket_buffer_size =
          parse_size(name, value, 1, std::size_t{std::numeric_limits<int>::max()});
      return true;
    case 'A':
      require_value();
      options.buffer_alignment = parse_size(name, value, 1, kMaxOffset);
      if (!is_power_of_two(options.buffer_alignment)) {
        throw UsageError("-A must be a power of two, got " + quoted(value));
      }
      return true;
    case 'O':
      require_value();
      options.buffer_offset = parse_size(name, value, 0, kMaxOffset);
      return true;
    case 'f':
      require_value();
      options.format = parse_format(value);
      return true;
    case 'T':
      require_value();
      options.duration_seconds = parse_seconds(name, value);
      return true;
    default:
      throw UsageError("unknown option " + quoted(name));
  }
}

bool takes_value(char letter) {
  constexpr std::string_view kWithValue = "lnpbAOfT";
  return kWithValue.find(letter) != std::string_view::npos;
}

// Long options are all extensions; each accepts "--name value" and
// "--name=value" like getopt_long.
std::size_t apply_long_option(Options& options, const std::vector<std::string_view>& arguments,
                              std::size_t index) {
  std::string_view name = arguments[index].substr(2);
  std::optional<std::string_view> inline_value;
  if (const auto equals = name.find('='); equals != std::string_view::npos) {
    inline_value = name.substr(equals + 1);
    name = name.substr(0, equals);
  }
  const bool wants_value = name == "bind" || name == "timeout";
  if (!wants_value && inline_value) {
    throw UsageError("--" + std::string(name) + " takes no value");
  }
  std::string_view value;
  std::size_t consumed = 1;
  if (wants_value) {
    if (inline_value) {
      value = *inline_value;
    } else if (index + 1 < arguments.size()) {
      value = arguments[index + 1];
      consumed = 2;
    } else {
      throw UsageError("--" + std::string(name) + " needs a value");
    }
  }
  if (name == "checksum") {
    options.checksum = true;
  } else if (name == "json") {
    options.json = true;
  } else if (name == "help") {
    options.help = true;
  } else if (name == "version") {
    options.version = true;
  } else if (name == "bind") {
    if (value.empty()) {
      throw UsageError("--bind needs an address");
    }
    options.bind_address = std::string(value);
  } else if (name == "timeout") {
    options.timeout_seconds = parse_seconds("--timeout", value);
  } else {
    throw UsageError("unknown option " + quoted(arguments[index]));
  }
  return consumed;
}

void check_consistency(Options& options, bool role_given,
                       const std::vector<std::string_view>& positionals) {
  if (!role_given) {
    throw UsageError("one of -t (transmit) or -r (receive) is required");
  }
  if (options.role == Role::kTransmit) {
    if (positionals.size() != 1) {
      throw UsageError(positionals.empty() ? "-t needs the receiver's host"
                                           : "-t takes exactly one host, got " +
                                                 std::to_string(positionals.size()));
    }
    options.host = std::string(positionals.front());
    if (options.port == 0) {
      throw UsageError("-p 0 is only meaningful for the receiver");
    }
  } else {
    if (!positionals.empty()) {
      throw UsageError("-r takes no host, got " + quoted(positionals.front()));
    }
    if (options.duration_seconds) {
      throw UsageError("-T applies to the transmitter (-t) only");
    }
    if (options.json && !options.sink_mode) {
      throw UsageError("--json on the receiver needs -s: without it stdout carries the data");
    }
  }
  if (options.protocol == Protocol::kUdp) {
    if (options.no_delay) {
      throw UsageError("-D (TCP_NODELAY) does not apply to UDP (-u)");
    }
    if (options.buffer_length > kMaxUdpPayload) {
      throw UsageError("-l must be at most " + std::to_string(kMaxUdpPayload) +
                       " with -u (one UDP datagram per buffer)");
    }
    if (options.buffer_length < kMinUdpBuffer) {
      options.buffer_length = kMinUdpBuffer;
    }
  }
}

}  // namespace

Options parse_options(const std::vector<std::string_view>& arguments) {
  Options options;
  bool role_given = false;
  std::vector<std::string_view> positionals;
  std::size_t index = 0;
  while (index < arguments.size()) {
    const std::string_view argument = arguments[index];
    if (argument == "--") {
      positionals.insert(positionals.end(), arguments.begin() + static_cast<long>(index) + 1,
                         arguments.end());
      break;
    }
    if (argument.starts_with("--")) {
      index += apply_long_option(options, arguments, index);
      continue;
    }
    if (argument.size() < 2 || argument[0] != '-') {
      positionals.push_back(argument);
      ++index;
      continue;
    }
    ++index;
    for (std::size_t position = 1; position < argument.size(); ++position) {
      const char letter = argument[position];
      if (letter == 't' || letter == 'r') {
        if (role_given && (letter == 't') != (options.role == Role::kTransmit)) {
          throw UsageError("-t and -r are mutually exclusive");
        }
        role_given = true;
      }
      if (!takes_value(letter)) {
        apply_short_option(options, letter, {}, false);
        continue;
      }
      // getopt semantics: the rest of this word is the value, else the next word.
      if (position + 1 < argument.size()) {
        apply_short_option(options, letter, argument.substr(position + 1), true);
      } else if (index < arguments.size()) {
        apply_short_option(options, letter, arguments[index], true);
        ++index;
      } else {
        apply_short_option(options, letter, {}, false);
      }
      break;
    }
  }
  if (options.help || options.version) {
    return options;
  }
  check_consistency(options, role_given, positionals);
  return options;
}

std::string usage_text() {
  return R"(Usage: vif-ttcp -t [-options] host [ < in ]
       vif-ttcp -r [-options] [ > out ]
Classic ttcp options:
  -l ##   length of bufs read from or written to network (default 8192)
  -u      use UDP instead of TCP
  -p ##   port number to send to or listen at (default 5001; -r -p 0 picks one)
  -s      -t: source a pattern to network
          -r: sink (discard) all data from network
          without -s, -t reads stdin and -r writes stdout
  -A ##   align the start of buffers to this modulus (default 16384)
  -O ##   start buffers at this offset from the modulus (default 0)
  -v      verbose: print more statistics
  -d      set SO_DEBUG socket option
  -b ##   set socket buffer size (SO_SNDBUF / SO_RCVBUF)
  -f X    format for rate: k,K = kilo{bit,byte}; m,M = mega; g,G = giga
Options specific to -t:
  -n ##   number of source bufs written to network (default 2048)
  -D      don't buffer TCP writes (sets TCP_NODELAY socket option)
Options specific to -r:
  -B      for -s, only output full blocks as specified by -l (for TAR)
vif-ttcp extensions (not in classic ttcp):
  -T ##         -t: transmit for this many seconds instead of -n buffers
  --checksum    print the CRC-32 (zlib) of every byte sent or received
  --json        print one JSON object with the results on stdout
                (bytes, seconds, kb_per_sec, gbit_per_sec in 10^9 bit/s,
                calls, checksum); the receiver needs -s with --json
  --bind ADDR   -r: listen on ADDR; -t: send from ADDR (IPv4 or IPv6)
  --timeout S   give up with an error after S seconds without progress
                (accept, connect, each read or write)
  -h, --help    this text
  --version     the release
Exit status: 0 success, 1 failure, 2 command-line error.
)";
}

}  // namespace vifd::ttcp
