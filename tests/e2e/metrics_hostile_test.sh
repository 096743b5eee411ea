#!/usr/bin/env bash
# Misbehaving scrapers against a real vifd serving two vifs: an oversized
# request, 100 silent connections, clients that never read their answers.
# Each gets its outcome (431, eviction, a timeout) while the control socket
# keeps answering within a second and the guests keep their network.
source "$(dirname "$0")/e2e_lib.sh" methost "$1"
e2e_host_with_domus
/usr/bin/python3 "$(dirname "$0")/metrics_client.py" hostile --unix "$SIMNET_HOST/metrics.sock" \
  --control "$SIMNET_HOST/vifd.sock" || e2e_fail "hostile scrapers"
e2e_ping 1 10.99.0.12
e2e_vifd_alive || e2e_fail "vifd died"
e2e_pass "metrics endpoint: oversized, silent, flooding and non-reading clients; control socket prompt"
