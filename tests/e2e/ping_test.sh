#!/usr/bin/env bash
# ping dom0 <-> domU and domU <-> domU across vifd.
source "$(dirname "$0")/e2e_lib.sh" ping "$1"
e2e_host_with_domus
e2e_ping 1 10.99.0.1
e2e_ping 0 10.99.0.11
e2e_ping 2 10.99.0.1
e2e_ping 1 10.99.0.12
e2e_ping 2 10.99.0.11
# Large echoes need more than one slot per packet on the way through.
simnet_exec 1 timeout 30 ping -n -c 3 -i 0.2 -W 5 -s 8000 10.99.0.12 >/dev/null ||
  e2e_fail "8000-byte ping domU1 -> domU2"
e2e_pass "ping dom0<->domU1, domU2->dom0, domU1<->domU2"
