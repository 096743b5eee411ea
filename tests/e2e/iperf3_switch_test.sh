#!/usr/bin/env bash
# iperf3 TCP and UDP between two domUs: the traffic crosses vifd's switch
# (sender's granted page -> receiver's granted page), not dom0's TAPs.
source "$(dirname "$0")/e2e_lib.sh" ipf "$1"
e2e_host_with_domus
simnet_spawn 2 iperf3-server timeout 120 iperf3 -s -B 10.99.0.12 -p 5201
simnet_wait_for 10 "iperf3 server" simnet_listening 2 5201 || e2e_fail "iperf3 server did not start"

fwd_before=$(simnet_stats_sum '.switch.forwarded_segments')
tap_before=$(( $(simnet_tap_bytes 1) + $(simnet_tap_bytes 2) ))
out=$SIMNET_WORK/tcp.json
simnet_exec 1 timeout 60 iperf3 -c 10.99.0.12 -p 5201 -t 3 -J >"$out" || e2e_fail "iperf3 TCP"
tcp_bytes=$(jq '.end.sum_received.bytes' "$out")
((tcp_bytes > 0)) || e2e_fail "iperf3 TCP moved no bytes"
fwd_after=$(simnet_stats_sum '.switch.forwarded_segments')
tap_after=$(( $(simnet_tap_bytes 1) + $(simnet_tap_bytes 2) ))
fwd=$((fwd_after - fwd_before))
tap=$((tap_after - tap_before))
echo "iperf3 TCP: $tcp_bytes bytes, $(jq '.end.sum_received.bits_per_second' "$out") bit/s;" \
  "switch-forwarded segments $fwd, dom0 TAP bytes $tap"
((fwd > 0)) || e2e_fail "vifctl stats shows no switch-forwarded segments"
# The data went through the switch: dom0's TAPs saw at most a sliver of it
# (ARP and the like), never the stream.
((tap < tcp_bytes / 100)) || e2e_fail "$tap bytes went through dom0's TAPs"

out=$SIMNET_WORK/udp.json
simnet_exec 1 timeout 60 iperf3 -c 10.99.0.12 -p 5201 -u -b 200M -l 1400 -t 3 -J >"$out" ||
  e2e_fail "iperf3 UDP"
udp_packets=$(jq '.end.sum.packets' "$out")
udp_lost=$(jq '.end.sum.lost_packets' "$out")
echo "iperf3 UDP: $udp_packets packets, $udp_lost lost"
((udp_packets > 0 && udp_lost < udp_packets)) || e2e_fail "iperf3 UDP delivered nothing"
fwd_udp=$(( $(simnet_stats_sum '.switch.forwarded_segments') - fwd_after ))
((fwd_udp > 0)) || e2e_fail "UDP was not switch-forwarded"
e2e_pass "iperf3 TCP and UDP domU1 -> domU2 through vifd's switch"
