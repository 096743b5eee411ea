// vif-bench's command-line values that CLI11 cannot check by itself: each is
// refused up front (exit 2, naming the value) instead of failing minutes
// into a run, after the simulator cells, in a baseline.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace vifd::bench {

struct VethEnd {
  std::string netns;   // empty: vif-bench's own namespace
  std::string ifname;  // a valid Linux interface name
};

// "NETNS:IFNAME" or "IFNAME". Throws std::invalid_argument naming the end.
VethEnd parse_veth_end(std::string_view text);

// The two domUs: distinct, neither dom0 nor a reserved id (DOMID_FIRST_RESERVED
// and above). Throws std::invalid_argument.
void check_domains(const std::vector<unsigned>& domains);

// --memcpy-mib: 0 (sized from the cache) or two buffers of that many MiB
// that fit in half of `physical_bytes`. Throws std::invalid_argument.
void check_memcpy_mib(std::size_t mib, std::size_t physical_bytes);

}  // namespace vifd::bench
