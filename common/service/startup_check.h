// Start-up checks: before a daemon serves anything it checks what it will
// need (a capability, device nodes, sockets, directories) and reports every
// missing piece at once, on one line. Without the check each vif would fail
// later, one at a time, with an error about its own TAP or grant mapping.
#pragma once

#include <string>
#include <vector>

namespace vifd::service {

struct Need {
  enum class Kind {
    kDevice,     // a character device opened read-write
    kSocket,     // a unix socket
    kDirectory,  // a directory
    kEndpoint,   // a unix socket, or a character device opened read-write
  };
  Kind kind = Kind::kDevice;
  // Met when any one of these is usable (libxenstore takes its device or
  // its socket). Empty: never met, `label` says why.
  std::vector<std::string> any_of;
  // How the missing need is named; the paths with the reason when empty.
  std::string label;
};

struct Prerequisites {
  bool net_admin = false;  // CAP_NET_ADMIN in the effective set (TAPs, bridges)
  std::vector<Need> needs;
};

// What is missing, one entry each: "CAP_NET_ADMIN (not in the effective
// set)", "/dev/xen/gntdev (No such file or directory)". Empty when all is
// there.
std::vector<std::string> missing(const Prerequisites& prerequisites);

// The one line a daemon prints before exiting: "<program>: cannot start,
// missing: <a>; <b>".
std::string missing_line(const std::string& program, const std::vector<std::string>& missing);

}  // namespace vifd::service
