// Host network-link operations by interface name, in the caller's network
// namespace: the plumbing TapDevice, vifd's bridge handling, the demo and the
// tests share. ioctl where it is enough; rtnetlink (a few fixed messages,
// no library) for deleting links and adding addresses.
//
// Control plane only: every failure throws std::system_error (errno) or
// std::invalid_argument, and every message names the interface.
#pragma once

#include <string_view>

#include "common/protocol/mac_address.h"

namespace vifd::net {

// Throws std::invalid_argument unless `name` is a valid Linux interface name:
// 1..15 bytes (IFNAMSIZ - 1), none of '/', ':', whitespace, not "." or "..".
void check_interface_name(std::string_view name);

bool link_exists(std::string_view name);
// Throws std::system_error(ENODEV) naming the interface when it does not exist.
int link_index(std::string_view name);

void set_link_up(std::string_view name, bool up);
bool link_is_up(std::string_view name);
// IFF_RUNNING: up and operationally up (carrier on). The kernel updates it
// asynchronously after a carrier change.
bool link_is_running(std::string_view name);
void set_mtu(std::string_view name, unsigned mtu);
unsigned link_mtu(std::string_view name);
// MACs are protocol::MacAddress: parse text with protocol::parse_mac
// (common/protocol/xs_parse.h), print with MacAddress::to_string().
void set_mac(std::string_view name, const protocol::MacAddress& mac);
protocol::MacAddress link_mac(std::string_view name);

// What a link is, from its rtnetlink link kind (IFLA_INFO_KIND, what
// `ip -d link` shows): a Linux bridge ("bridge"), an Open vSwitch kernel
// datapath device ("openvswitch": the bridges and internal ports of the
// kernel datapath), anything else (including no kind: physical NICs; and
// TAPs, which is what Open vSwitch's userspace datapath makes its bridges
// of), or no link of that name.
enum class LinkKind { kAbsent, kLinuxBridge, kOpenVswitch, kOther };
LinkKind link_kind(std::string_view name);

// Linux bridge (SIOCBRADDBR / SIOCBRADDIF / SIOCBRDELIF).
void create_bridge(std::string_view bridge);
void add_to_bridge(std::string_view bridge, std::string_view port);
void remove_from_bridge(std::string_view bridge, std::string_view port);

// RTM_DELLINK: removes any link type (bridge, veth, persistent TAP, ...).
void delete_link(std::string_view name);

// Adds an IPv4 or IPv6 address in CIDR form ("10.0.0.1/24", "fd00::1/64").
void set_address(std::string_view name, std::string_view cidr);

}  // namespace vifd::net
