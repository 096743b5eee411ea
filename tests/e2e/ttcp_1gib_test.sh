#!/usr/bin/env bash
# A 1 GiB vif-ttcp transfer domU1 -> domU2 with matching CRC-32 at both ends.
source "$(dirname "$0")/e2e_lib.sh" gib "$1"
e2e_host_with_domus
simnet_ttcp 1 2 10.99.0.12 1024 "$SIMNET_WORK/gib" || e2e_fail "1 GiB transfer"
grep -h -E "bytes in|crc32" "$SIMNET_WORK/gib.t.err" "$SIMNET_WORK/gib.r.err"
e2e_vifd_alive || e2e_fail "vifd died"
e2e_pass "1 GiB domU1 -> domU2, checksums match"
