#!/usr/bin/env bash
# vif-front restarted while vifd stays Connected: killed (-9, it writes
# nothing) and then stopped gracefully (SIGTERM: Closing, Closed). Each time
# a new vif-front takes the device over: after a crash it first walks the
# backend through Closing and Closed (Linux's xenbus_reset_frontend()), so
# vifd lets go of the dead instance's rings; then the usual handshake.
# vifd stays up, the vif ends Connected with no error node, traffic flows
# again, and domU2's transfer to dom0 is not disturbed.
source "$(dirname "$0")/e2e_lib.sh" fr "$1"
e2e_host_with_domus
front1=${SIMNET_PIDS[1]}
ns1=$(simnet_ns 1)

simnet_spawn 0 iperf3-server timeout 60 iperf3 -s -1 -B 10.99.0.1 -p 5201
simnet_wait_for 10 "iperf3 server in dom0" simnet_listening 0 5201 || e2e_fail "no iperf3 server"
simnet_spawn 2 iperf3-d2-d0 timeout 45 iperf3 -c 10.99.0.1 -p 5201 -t 10 -i 0.1 -J
neighbour=$SIMNET_LAST_PID

# restart_front SIGNAL N: stops the running vif-front with SIGNAL and
# starts vif-front number N in its place.
restart_front() {
  local signal=$1 n=$2
  kill "-$signal" "$front1"
  wait "$front1" 2>/dev/null || true
  simnet_spawn 1 "vif-front-1-$n" "$(simnet_bin vif-front)" --devid 0 --ifname eth0
  front1=$SIMNET_LAST_PID
  simnet_wait_connected 1 0 || e2e_fail "vif 1/0 not Connected after SIG$signal ($(tail -3 "$SIMNET_LOGS/vif-front-1-$n.log"))"
  simnet_wait_for 10 "eth0 in domain 1" simnet_link_exists 1 eth0 || e2e_fail "no eth0 after SIG$signal"
  ip -n "$ns1" addr replace 10.99.0.11/24 dev eth0
  ip -n "$ns1" link set eth0 up
  e2e_ping 1 10.99.0.1
  e2e_ping 1 10.99.0.12
  [[ -z $(simnet_xs_read /local/domain/0/backend/vif/1/0/error) ]] ||
    e2e_fail "vif 1/0 has an error after SIG$signal: $(simnet_xs_read /local/domain/0/backend/vif/1/0/error)"
  e2e_vifd_alive || e2e_fail "vifd died"
  echo "vif-front SIG$signal: reconnected ($(e2e_frontend_keys 1))"
}

sleep 1
restart_front KILL 2
grep -q "closing that connection first" "$SIMNET_LOGS/vif-front-1-2.log" ||
  e2e_fail "the new vif-front did not reset the dead instance's connection"
restart_front TERM 3
# Data, not only pings, through the reconnected vif.
simnet_spawn 0 iperf3-server-2 timeout 30 iperf3 -s -1 -B 10.99.0.1 -p 5202
simnet_wait_for 10 "second iperf3 server" simnet_listening 0 5202 || e2e_fail "no iperf3 server"
simnet_exec 1 timeout 30 iperf3 -c 10.99.0.1 -p 5202 -t 2 -J >"$SIMNET_WORK/d1.json" ||
  e2e_fail "iperf3 domU1 -> dom0 after the restarts"
e2e_iperf3_ok "$SIMNET_WORK/d1.json" "domU1 -> dom0 after the restarts"
wait "$neighbour" || e2e_fail "domU2's transfer failed while domU1's vif-front restarted"
e2e_iperf3_ok "$SIMNET_LOGS/iperf3-d2-d0.log" "domU2 -> dom0 meanwhile"
simnet_states_are 1 0 4 || e2e_fail "vif 1/0 not Connected"
e2e_pass "vif-front kill -9 and SIGTERM restarts: clean reconnects, vifd and domU2 unaffected"
