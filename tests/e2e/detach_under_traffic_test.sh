#!/usr/bin/env bash
# Detaching a vif while it carries traffic: vifd survives, closes that vif
# (Closed, TAP gone) and the other domU keeps its network.
source "$(dirname "$0")/e2e_lib.sh" det "$1"
e2e_host_with_domus
front1=${SIMNET_PIDS[1]} # vif-front of domain 1 (after vifd)
simnet_spawn 0 iperf3-server timeout 120 iperf3 -s -B 10.99.0.1 -p 5201
simnet_wait_for 10 "iperf3 server" simnet_listening 0 5201 || e2e_fail "iperf3 server did not start"
simnet_spawn 1 iperf3-client timeout 60 iperf3 -c 10.99.0.1 -p 5201 -t 30
client=$SIMNET_LAST_PID
sleep 2
kill -0 "$client" 2>/dev/null || e2e_fail "iperf3 client ended before the detach"
simnet_vifctl detach 1/0 || e2e_fail "vifctl detach 1/0"
[[ -z $(simnet_xs_read /local/domain/0/backend/vif/1/0/state) ]] || e2e_fail "backend nodes remain"
simnet_wait_for 10 "vif1.0 to disappear" bash -c "! ip -n $(simnet_ns 0) link show vif1.0 >/dev/null 2>&1" ||
  e2e_fail "TAP vif1.0 still exists"
e2e_vifd_alive || e2e_fail "vifd died on detach"
e2e_ping 2 10.99.0.1
e2e_ping 0 10.99.0.12
simnet_vifctl list
simnet_vifctl stats 2/0 >/dev/null || e2e_fail "vifd stopped answering"
# Re-attach the same devid: a fresh handshake on a vif that was torn down
# under load.
simnet_stop_pid "$client"
simnet_stop_pid "$front1"
simnet_vifctl attach 1 --devid 0 --bridge xenbr0 || e2e_fail "re-attach 1/0"
simnet_spawn 1 vif-front-1b "$(simnet_bin vif-front)" --devid 0 --ifname eth0
simnet_wait_connected 1 0 || e2e_fail "re-attached vif 1/0 not Connected"
simnet_wait_for 10 "eth0 in domain 1" simnet_link_exists 1 eth0 || e2e_fail "no eth0 after re-attach"
ip -n "$(simnet_ns 1)" addr replace 10.99.0.11/24 dev eth0
ip -n "$(simnet_ns 1)" link set eth0 up
e2e_ping 1 10.99.0.1
e2e_pass "detach under traffic: vifd survived, domU2 unaffected, re-attach works"
