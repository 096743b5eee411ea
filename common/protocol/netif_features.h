// What a frontend negotiated with the backend: the frontend's feature keys
// as the backend parsed them (parse_frontend_connection) and hands to the
// data path.
#pragma once

#include <cstdint>

namespace vifd::protocol {

struct VifFeatures {
  bool sg = false;                 // frontend feature-sg: accepts multi-slot RX packets
  bool gso_tcpv4 = false;          // frontend feature-gso-tcpv4: accepts TCPv4 GSO on RX
  bool gso_tcpv6 = false;          // frontend feature-gso-tcpv6
  bool csum_ipv4 = true;           // not feature-no-csum-offload
  bool csum_ipv6 = false;          // frontend feature-ipv6-csum-offload
  bool rx_notify = true;           // frontend feature-rx-notify
  bool multicast_control = false;  // request-multicast-control at connect (see multicast_filter)
  unsigned mtu = 1500;
  // Frontend xdp-headroom: bytes left free in front of each RX packet's data
  // in its first slot (validated to leave room for data in the page).
  std::uint16_t xdp_headroom = 0;
};

}  // namespace vifd::protocol
