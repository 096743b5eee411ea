#!/usr/bin/env bash
# Static grant mappings end to end: vif-front offers its pools over the
# control ring, vifd maps them once, a domU -> domU transfer then moves
# every byte by memcpy inside vifd (no grant-copy call for those vifs), and
# the pages are unmapped when a frontend goes.
source "$(dirname "$0")/e2e_lib.sh" static_grants "$1"
e2e_host_with_domus

# Counters of vifs 1 and 2.
pair() {
  simnet_vifctl stats --json | jq -c '[.vifs[] | select(.domid == 1 or .domid == 2) | .queues[]]
    | { mappings: ([.[] | .static_grants.mappings] | add // 0),
        gcopy_calls: ([.[] | .grant_copy.calls] | add // 0),
        memcpy_segments: ([.[] | .static_grants.memcpy_segments] | add // 0) }'
}
mapped() { [[ $(pair | jq .mappings) == 1024 ]]; }
simnet_wait_for 10 "vifd to map both pools of both vifs" mapped ||
  e2e_fail "vifd maps $(pair | jq .mappings) pages of vifs 1 and 2, 1024 expected"
simnet_vifctl stats | grep -q "q0 static grants: 512 pages mapped" ||
  e2e_fail "vifctl stats does not show the 512 mapped pages: $(simnet_vifctl stats | grep static)"
grep -q "the backend keeps 512 pool pages mapped" "$SIMNET_LOGS/vif-front-1.log" ||
  e2e_fail "vif-front 1 did not log its pools as mapped"

e2e_ping 1 10.99.0.12
before=$(pair)
simnet_ttcp 1 2 10.99.0.12 64 "$SIMNET_WORK/ttcp" || e2e_fail "64 MiB domU1 -> domU2"
after=$(pair)
calls=$(jq -n --argjson a "$after" --argjson b "$before" '$a.gcopy_calls - $b.gcopy_calls')
memcpy=$(jq -n --argjson a "$after" --argjson b "$before" '$a.memcpy_segments - $b.memcpy_segments')
((calls == 0)) || e2e_fail "$calls grant-copy calls for mapped vifs during the transfer"
((memcpy > 16384)) || e2e_fail "only $memcpy memcpy segments for 64 MiB"

# A frontend that goes: its vif disconnects and vifd unmaps every page.
unmapped_before=$("$(simnet_bin vif-sim)" --dir "$SIMNET_HOST" stats 0 --json | jq .grant_unmap_pages)
simnet_stop_pid "${SIMNET_PIDS[2]}"
unmapped() {
  local now
  now=$("$(simnet_bin vif-sim)" --dir "$SIMNET_HOST" stats 0 --json | jq .grant_unmap_pages)
  ((now - unmapped_before >= 512))
}
simnet_wait_for 10 "vifd to unmap domU2's pools" unmapped ||
  e2e_fail "vifd did not unmap domU2's 512 pool pages"
e2e_vifd_alive || e2e_fail "vifd died"
e2e_pass "pools mapped once, 64 MiB domU1 -> domU2 with $memcpy memcpy segments and no grant copy, unmapped on disconnect"
