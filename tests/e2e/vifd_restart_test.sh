#!/usr/bin/env bash
# vifd restarted under load: iperf3 TCP runs domU1 -> domU2 (through vifd's
# switch) and domU2 -> dom0 (through the TAP and xenbr0) when vifd gets
# SIGNAL (KILL: a crash; TERM: `systemctl restart`), and a new vifd starts
# at once. It resumes both Connected vifs from the shared rings: the
# frontends never reconnect (same state, ring refs and ports, one connect
# each in vif-front's log), both transfers finish, and the longest stall of
# each is printed.
#   vifd_restart_test.sh BUILD_DIR KILL|TERM
source "$(dirname "$0")/e2e_lib.sh" "rs${2:0:1}" "$1"
signal=$2
e2e_host_with_domus
fronts=("" "${SIMNET_PIDS[1]}" "${SIMNET_PIDS[2]}") # vif-front of domains 1 and 2
keys1=$(e2e_frontend_keys 1)
keys2=$(e2e_frontend_keys 2)

simnet_spawn 2 iperf3-server-d2 timeout 60 iperf3 -s -1 -B 10.99.0.12 -p 5201
simnet_spawn 0 iperf3-server-d0 timeout 60 iperf3 -s -1 -B 10.99.0.1 -p 5202
simnet_wait_for 10 "iperf3 server in domU2" simnet_listening 2 5201 || e2e_fail "no iperf3 server"
simnet_wait_for 10 "iperf3 server in dom0" simnet_listening 0 5202 || e2e_fail "no iperf3 server"
simnet_spawn 1 iperf3-d1-d2 timeout 45 iperf3 -c 10.99.0.12 -p 5201 -t 12 -i 0.1 -J
client_guests=$SIMNET_LAST_PID
simnet_spawn 2 iperf3-d2-d0 timeout 45 iperf3 -c 10.99.0.1 -p 5202 -t 12 -i 0.1 -J
client_dom0=$SIMNET_LAST_PID

sleep 3
vifd=${SIMNET_PIDS[0]}
if ! kill -0 "$client_guests" || ! kill -0 "$client_dom0"; then
  e2e_fail "a transfer ended before the restart"
fi
kill "-$signal" "$vifd"
wait "$vifd" 2>/dev/null || true
echo "vifd got SIG$signal at $(date +%T.%N | cut -c1-12)"
e2e_restart_vifd vifd-2

wait "$client_guests" || e2e_fail "iperf3 domU1 -> domU2 failed ($(tail -3 "$SIMNET_LOGS/iperf3-d1-d2.log"))"
wait "$client_dom0" || e2e_fail "iperf3 domU2 -> dom0 failed ($(tail -3 "$SIMNET_LOGS/iperf3-d2-d0.log"))"
e2e_iperf3_ok "$SIMNET_LOGS/iperf3-d1-d2.log" "domU1 -> domU2"
e2e_iperf3_ok "$SIMNET_LOGS/iperf3-d2-d0.log" "domU2 -> dom0"

# No frontend reconnected: same keys, same vif-front, one connect each.
[[ $(e2e_frontend_keys 1) == "$keys1" ]] || e2e_fail "vif 1/0 reconnected: $keys1 -> $(e2e_frontend_keys 1)"
[[ $(e2e_frontend_keys 2) == "$keys2" ]] || e2e_fail "vif 2/0 reconnected: $keys2 -> $(e2e_frontend_keys 2)"
for d in 1 2; do
  kill -0 "${fronts[d]}" || e2e_fail "vif-front of domain $d died"
  connects=$(grep -c "connected to dom0" "$SIMNET_LOGS/vif-front-$d.log" || true)
  ((connects == 1)) || e2e_fail "vif-front of domain $d connected $connects times"
  [[ -z $(simnet_xs_read "/local/domain/0/backend/vif/$d/0/error") ]] ||
    e2e_fail "vif $d/0 has an error: $(simnet_xs_read "/local/domain/0/backend/vif/$d/0/error")"
  simnet_states_are "$d" 0 4 || e2e_fail "vif $d/0 is not Connected on both ends"
done
grep -q "resumed from the shared indices" "$SIMNET_LOGS/vifd-2.log" ||
  e2e_fail "the new vifd did not resume the connections"
e2e_ping 1 10.99.0.12
e2e_ping 2 10.99.0.1
e2e_pass "vifd SIG$signal under load: both transfers finished, no frontend reconnected"
