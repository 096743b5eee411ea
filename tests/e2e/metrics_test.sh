#!/usr/bin/env bash
# The metrics endpoint and vifctl top against a real vifd: two connected
# vifs with traffic; scrapes over the unix socket and TCP (IPv4 and IPv6)
# in both formats parse with prometheus_client and agree with
# `vifctl stats --json`; `vifctl top --count 2` shows the traffic as rates;
# an unknown control command lists the valid ones.
source "$(dirname "$0")/e2e_lib.sh" metrics "$1"
client=(/usr/bin/python3 "$(dirname "$0")/metrics_client.py")
e2e_host_with_domus --metrics-listen 127.0.0.1:9464 --metrics-listen '[::1]:9464'
metrics_sock=$SIMNET_HOST/metrics.sock
[[ -S $metrics_sock ]] || e2e_fail "no metrics socket at $metrics_sock"
out=$SIMNET_WORK/out
mkdir -p "$out"

# Traffic both ways on both vifs, through the switch and through dom0.
simnet_exec 1 timeout 30 ping -n -q -c 200 -i 0.002 -s 1000 10.99.0.12 >/dev/null ||
  e2e_fail "ping domU1 -> domU2"
simnet_exec 2 timeout 30 ping -n -q -c 100 -i 0.002 10.99.0.1 >/dev/null ||
  e2e_fail "ping domU2 -> dom0"

simnet_vifctl stats --json >"$out/before.json"
"${client[@]}" scrape --unix "$metrics_sock" >"$out/scrape.txt" || e2e_fail "scrape (text format)"
simnet_vifctl stats --json >"$out/after.json"
"${client[@]}" compare "$out/scrape.txt" "$out/before.json" "$out/after.json" ||
  e2e_fail "the text scrape disagrees with vifctl stats --json"

"${client[@]}" scrape --unix "$metrics_sock" --openmetrics >"$out/scrape.om" ||
  e2e_fail "scrape (OpenMetrics)"
simnet_vifctl stats --json >"$out/after2.json"
"${client[@]}" compare "$out/scrape.om" "$out/after.json" "$out/after2.json" ||
  e2e_fail "the OpenMetrics scrape disagrees with vifctl stats --json"

for address in 127.0.0.1:9464 '[::1]:9464'; do
  simnet_exec 0 timeout 30 "${client[@]}" scrape --tcp "$address" >"$out/tcp.txt" ||
    e2e_fail "scrape over TCP $address"
  grep -q '^vifd_queue_rx_packets_total{domain="2",devid="0",bridge="xenbr0",tap="vif2.0",queue="0"} [1-9]' \
    "$out/tcp.txt" || e2e_fail "TCP $address: no rx packets of vif 2/0"
done
# Not listening where not asked to.
if simnet_exec 0 timeout 5 "${client[@]}" scrape --tcp 127.0.0.2:9464 >/dev/null 2>&1; then
  e2e_fail "metrics answered on an address not given to --metrics-listen"
fi

# vifctl top under traffic: two frames, plain text (stdout is a file).
simnet_exec 1 timeout 8 ping -n -q -f -s 1200 -w 6 10.99.0.12 >/dev/null 2>&1 &
flood=$!
sleep 1
simnet_vifctl top --count 2 --interval 1 >"$out/top.txt" || e2e_fail "vifctl top"
wait "$flood" || true
cat "$out/top.txt"
[[ $(grep -c '^VIF ' "$out/top.txt") == 2 ]] || e2e_fail "vifctl top --count 2 did not print 2 frames"
if grep -q $'\e' "$out/top.txt"; then e2e_fail "escape sequences in vifctl top output to a file"; fi
# Last frame: both vifs Connected, sending and receiving; the total line adds up.
last=$(awk '/^VIF /{frame=""} {frame=frame $0 "\n"} END{printf "%s", frame}' "$out/top.txt")
for vif in 1/0 2/0; do
  read -r _ state tx_pps tx_bps rx_pps rx_bps drops < <(grep "^$vif " <<<"$last") ||
    e2e_fail "no row for $vif"
  [[ $state == Connected ]] || e2e_fail "$vif state $state"
  ((tx_pps > 0 && tx_bps > tx_pps && rx_pps > 0 && rx_bps > rx_pps)) ||
    e2e_fail "$vif rates not positive: tx $tx_pps/s $tx_bps B/s, rx $rx_pps/s $rx_bps B/s"
  [[ $drops =~ ^[0-9]+$ ]] || e2e_fail "$vif drops/s '$drops'"
done
read -r _ _ _ total_tx_pps _ < <(grep '^total ' <<<"$last") || e2e_fail "no total line"
sum=$(awk '$1 ~ /^[0-9]+\/[0-9]+$/ {s += $3} END {print s}' <<<"$last")
# Each figure is rounded on its own: the total may differ by one per row.
((total_tx_pps - sum <= 2 && sum - total_tx_pps <= 2)) ||
  e2e_fail "total TX-PKT/s $total_tx_pps, rows add up to $sum"

# An unknown control command names the valid ones.
answer=$("${client[@]}" control --control "$SIMNET_HOST/vifd.sock" '{"command":"frobnicate"}')
jq -e '.ok == false and (.error | test("unknown command \"frobnicate\"") and test("stats")
       and test("show") and test("capture"))' <<<"$answer" >/dev/null ||
  e2e_fail "unknown command answer: $answer"

e2e_vifd_alive || e2e_fail "vifd died"
e2e_pass "metrics: scrapes (unix, TCP v4/v6, text and OpenMetrics) match vifctl stats; vifctl top rates; unknown command lists commands"
