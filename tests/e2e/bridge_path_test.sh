#!/usr/bin/env bash
# The TAP + Linux bridge path to dom0: vifd created vif<D>.0 before InitWait,
# enslaved it to xenbr0 (bridge key, no script), and dom0's own stack
# reaches the guest through it, data intact.
source "$(dirname "$0")/e2e_lib.sh" br "$1"
e2e_host_with_domus
ns0=$(simnet_ns 0)
for d in 1 2; do
  master=$(ip -n "$ns0" -j link show dev "vif$d.0" | jq -r '.[0].master // empty')
  [[ $master == xenbr0 ]] || e2e_fail "vif$d.0 is not a port of xenbr0 (master '$master')"
done
e2e_ping 1 10.99.0.1
e2e_ping 0 10.99.0.11
tap_before=$(simnet_tap_bytes 1)
simnet_ttcp 1 0 10.99.0.1 64 "$SIMNET_WORK/up" || e2e_fail "domU1 -> dom0 transfer"
simnet_ttcp 0 1 10.99.0.11 64 "$SIMNET_WORK/down" || e2e_fail "dom0 -> domU1 transfer"
tap=$(($(simnet_tap_bytes 1) - tap_before))
echo "bytes through vif1.0: $tap"
((tap >= 2 * 64 * 1048576)) || e2e_fail "only $tap bytes went through vif1.0 for 128 MiB"
e2e_pass "TAP vif1.0 in xenbr0 carries domU1 <-> dom0, checksums match"
