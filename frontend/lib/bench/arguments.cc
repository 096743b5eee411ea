#include "frontend/lib/bench/arguments.h"

#include <fmt/format.h>

#include <stdexcept>

#include "common/net/link.h"

namespace vifd::bench {
namespace {

// xen/include/public/xen.h: DOMID_FIRST_RESERVED.
constexpr unsigned kFirstReservedDomid = 0x7FF0;

}  // namespace

VethEnd parse_veth_end(std::string_view text) {
  VethEnd end;
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    end.ifname = std::string(text);
  } else {
    end.netns = std::string(text.substr(0, colon));
    end.ifname = std::string(text.substr(colon + 1));
    if (end.netns.empty() || end.netns.find('/') != std::string::npos || end.netns == "." ||
        end.netns == "..") {
      throw std::invalid_argument(fmt::format(
          "veth end '{}': the network namespace must be a name under /run/netns", text));
    }
  }
  try {
    net::check_interface_name(end.ifname);
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(fmt::format("veth end '{}': {}", text, error.what()));
  }
  return end;
}

void check_domains(const std::vector<unsigned>& domains) {
  if (domains.size() != 2) {
    throw std::invalid_argument(fmt::format("--domains takes two domUs, got {}", domains.size()));
  }
  for (const unsigned domid : domains) {
    if (domid == 0 || domid >= kFirstReservedDomid) {
      throw std::invalid_argument(
          fmt::format("domain {} cannot be a benchmarked domU (expected 1 to {})", domid,
                      kFirstReservedDomid - 1));
    }
  }
  if (domains[0] == domains[1]) {
    throw std::invalid_argument(fmt::format(
        "--domains names domain {} twice: the domu-domu path needs a sender and a receiver",
        domains[0]));
  }
}

void check_memcpy_mib(std::size_t mib, std::size_t physical_bytes) {
  if (mib == 0) {
    return;
  }
  const std::size_t physical_mib = physical_bytes >> 20;
  if (mib > physical_mib / 4) {
    throw std::invalid_argument(fmt::format(
        "--memcpy-mib {}: two buffers of {} MiB do not fit in half of this machine's {} MiB", mib,
        mib, physical_mib));
  }
}

}  // namespace vifd::bench
