# shellcheck shell=bash
# shellcheck disable=SC2154 # failures, port, T and the helpers come from scenarios.sh
# Sourced by scenarios.sh in mode compare: vifd against the kernel netback
# under the same conditions, in one boot.
#
# The full run's table measures the kernel netback once, late in the boot,
# after every vifd scenario has run: whatever those left behind (dom0 memory
# and page cache, xenstored's size, QEMU's translation cache, the host's load
# at that minute) lands on one side only. Here the backends take turns
# instead: each round runs both, in alternating order (vifd first in odd
# rounds, the kernel first in even ones), each with freshly created guests
# from the same xl configs, and every cell is the median over the rounds.
# Each transfer runs with ttcp and with iperf3, and dom0's CPU time as the
# hypervisor accounts it (`xl vcpu-list 0`) is read around each one.
#
# Each round also runs a vif-front guest against the same backend (on vifd
# with its buffer pools statically mapped), so vif-front's columns stand
# next to the stock netfront's from the same round.
#
# Prints one line per transfer:
#   COMPARE round=R backend=vifd|kernel tool=ttcp|iperf3 dir=D kbps=K bytes=B dom0_cpu_s=C
# and, on vifd, what vifd did during it (its own counters):
#   VIFDCOST round=R tool=T dir=D packets=P copy_calls=N ... tap_writes=W
# (kbps: KB/sec at the receiver as ttcp prints it, iperf3's receiver rate
# converted to the same unit), which lib/compare_table.py turns into the
# table of medians.

# dom0's vCPU time in seconds as Xen accounts it (all of dom0's vCPUs).
dom0_cpu_seconds() { xl vcpu-list 0 | awk '$1 == "Domain-0" { s += $6 } END { printf "%.1f", s }'; }

compare_backend_up() { # vifd|kernel
  case $1 in
    vifd)
      if grep -q '^xen_netback ' /proc/modules; then
        rmmod xen-netback || { log "rmmod xen-netback failed"; return 1; }
      fi
      # A round that ended with vifd's turn left it running: each turn starts
      # from a fresh process (and a second vifd would only find the
      # instance lock taken, leaving the old one serving the kernel's turn).
      stop_vifd
      start_vifd
      ;;
    kernel)
      stop_vifd
      modprobe xen-netback || { log "modprobe xen-netback failed"; return 1; }
      ;;
  esac
}

# iperf3_transfer BACKEND DIR SRC DST DST_IP: iperf3 for T seconds, client
# (sender) on SRC; sets last_kbps and last_bytes from the receiver's summary.
iperf3_transfer() {
  local dir=$2 src=$3 dst=$4 ip=$5 out
  port=$((port + 1))
  last_kbps="" last_bytes=""
  run_on "$dst" 10 "iperf3 -s -1 -p $port >/tmp/iperf3-s.$port 2>&1 &" ||
    { log "iperf3 $1 $dir: no server on $dst"; return 1; }
  sleep 1
  # The receiver's line of the summary: the amount with its unit (-f k
  # fixes the rate's unit only; the amount's adapts: KBytes, MBytes, ...)
  # and the rate in Kbits/sec.
  out=$(run_on "$src" $((T + 60)) "timeout $((T + 50)) iperf3 -c $ip -p $port -t $T -f k 2>&1 |
    awk '/receiver/ { for (i = 2; i <= NF; i++) if (\$i == \"Kbits/sec\") print \$(i - 3), \$(i - 2), \$(i - 1) }'") || true
  local amount unit kbits
  read -r amount unit kbits <<<"$out" || true
  if [[ -z ${amount:-} || -z ${unit:-} || -z ${kbits:-} ]]; then
    log "iperf3 $1 $dir: no receiver summary ($(tr '\n' '|' <<<"$out"))"
    return 1
  fi
  local scale
  case $unit in
    Bytes) scale=1 ;;
    KBytes) scale=1024 ;;
    MBytes) scale=1048576 ;;
    GBytes) scale=1073741824 ;;
    *) log "iperf3 $1 $dir: unknown unit '$unit'"; return 1 ;;
  esac
  last_bytes=$(awk "BEGIN { printf \"%d\", $amount * $scale }")
  # Kbit/s (SI) to ttcp's KB/sec (1024 bytes).
  last_kbps=$(awk "BEGIN { printf \"%.2f\", $kbits * 1000 / 8 / 1024 }")
}

# vifd_cost_totals: vifd's counters summed over every vif and queue, as
# "packets bytes copy_calls copy_segments memcpy_segments notifications_sent
# notifications_received loop_iterations spurious_events tap_reads tap_writes".
vifd_cost_totals() {
  vifctl stats --json | jq -r '[.vifs[].queues[]] as $q | [
    ([$q[] | .tx.packets + .rx.packets] | add // 0),
    ([$q[] | .tx.bytes + .rx.bytes] | add // 0),
    ([$q[].grant_copy.calls] | add // 0), ([$q[].grant_copy.segments] | add // 0),
    ([$q[].static_grants.memcpy_segments] | add // 0),
    ([$q[].notifications.sent] | add // 0), ([$q[].notifications.received] | add // 0),
    ([$q[].loop_iterations] | add // 0), ([$q[].spurious_events] | add // 0),
    ([$q[].tap.reads] | add // 0), ([$q[].tap.writes] | add // 0)] | map(tostring) | join(" ")'
}

# compare_transfer ROUND BACKEND TOOL DIR SRC DST DST_IP
compare_transfer() {
  local round=$1 backend=$2 tool=$3 dir=$4 c0 c1 v0="" v1=""
  if [[ $backend == vifd ]]; then v0=$(vifd_cost_totals) || v0=""; fi
  c0=$(dom0_cpu_seconds)
  case $tool in
    ttcp)
      transfer "cmp-$backend" "$dir" "$5" "$6" "$7" || return 1
      ;;
    iperf3) iperf3_transfer "$backend" "$dir" "$5" "$6" "$7" || return 1 ;;
  esac
  c1=$(dom0_cpu_seconds)
  echo "COMPARE round=$round backend=$backend tool=$tool dir=$dir kbps=$last_kbps bytes=$last_bytes dom0_cpu_s=$(awk "BEGIN { printf \"%.1f\", $c1 - $c0 }")"
  if [[ -n $v0 ]] && v1=$(vifd_cost_totals); then
    # What vifd did per packet during the transfer (both directions of the
    # TCP connection: data and ACKs).
    local -a a b
    read -r -a a <<<"$v0"
    read -r -a b <<<"$v1"
    echo "VIFDCOST round=$round tool=$tool dir=$dir packets=$((b[0] - a[0])) bytes=$((b[1] - a[1])) copy_calls=$((b[2] - a[2])) copy_segments=$((b[3] - a[3])) memcpy_segments=$((b[4] - a[4])) notify_sent=$((b[5] - a[5])) notify_received=$((b[6] - a[6])) loops=$((b[7] - a[7])) spurious=$((b[8] - a[8])) tap_reads=$((b[9] - a[9])) tap_writes=$((b[10] - a[10]))"
  fi
}

# compare_front ROUND BACKEND: the vif-front guest (domU4) on BACKEND, both
# tools, both directions with dom0. On vifd its buffer pools must be mapped
# (static grants) and carry the transfers.
compare_front() {
  local round=$1 backend=$2 tool before="" used
  create_guest domU4 vif-front 10.0.0.14 00:16:3e:00:00:14 1 || { log "domU4 (vif-front) did not come up on $backend"; return 1; }
  ping_both domU4 || return 1
  if [[ $backend == vifd ]]; then
    wait_until 20 "vif-front's static grant mappings" static_grants_mapped "${domid_of[domU4]}" ||
      { log "vifd holds no static grant mapping of vif-front"; return 1; }
    before=$(static_grant_totals "${domid_of[domU4]}") || return 1
  fi
  for tool in ttcp iperf3; do
    compare_transfer "$round" "$backend" "$tool" front-domU-dom0 domU4 dom0 10.0.0.1 || return 1
    compare_transfer "$round" "$backend" "$tool" front-dom0-domU dom0 domU4 10.0.0.14 || return 1
  done
  if [[ -n $before ]]; then
    used=$(static_grants_used "${domid_of[domU4]}" "$before") || { log "vif-front transfers bypassed the static grant mappings: $used"; return 1; }
    log "round $round vif-front on vifd: $used"
    log "vifd's drops on vif ${domid_of[domU4]}/0 (nonzero): $(vif_json "${domid_of[domU4]}" |
      jq -c '[.queues[].drops | to_entries[] | select(.value > 0)] | group_by(.key) |
        map({(.[0].key): (map(.value) | add)}) | add // {}')"
  fi
  # Where a slow direction loses frames: the guest's TCP retransmissions and
  # checksum errors, the TAP's counters.
  log "dom0 ($backend): $(awk '/^Tcp:/ { if (n++) { print "RetransSegs", $13, "InErrs", $14 } }' /proc/net/snmp)"
  log "domU4 ($backend): $(guest domU4 10 "awk '/^Tcp:/ { if (n++) { print \"RetransSegs\", \$13, \"InErrs\", \$14, \"InCsumErrors\", \$16 } }' /proc/net/snmp; cd /sys/class/net/eth0/statistics && for f in rx_packets rx_dropped rx_errors tx_packets tx_dropped; do echo \$f \$(cat \$f); done" | tr '\n' ' ')"
}

compare_round() { # ROUND BACKEND
  local round=$1 backend=$2 tool failed=0
  log "== compare round $round: $backend"
  compare_backend_up "$backend" || { fail C "round $round: $backend did not come up"; return 1; }
  if ! create_guest domU1 netfront 10.0.0.11 00:16:3e:00:00:11 1 ||
    ! create_guest domU2 netfront 10.0.0.12 00:16:3e:00:00:12 1; then
    fail C "round $round: guests did not come up on $backend"
    failed=1
  elif ! ping_both domU1 || ! ping_both domU2; then
    fail C "round $round: ping on $backend"
    failed=1
  else
    for tool in ttcp iperf3; do
      if ! compare_transfer "$round" "$backend" "$tool" domU-dom0 domU1 dom0 10.0.0.1 ||
        ! compare_transfer "$round" "$backend" "$tool" dom0-domU dom0 domU1 10.0.0.11 ||
        ! compare_transfer "$round" "$backend" "$tool" domU1-domU2 domU1 domU2 10.0.0.12 ||
        ! compare_transfer "$round" "$backend" "$tool" domU2-domU1 domU2 domU1 10.0.0.11; then
        fail C "round $round: $tool on $backend"
        failed=1
        break
      fi
    done
  fi
  destroy_guest domU1
  destroy_guest domU2
  if ((failed == 0)) && ! compare_front "$round" "$backend"; then
    fail C "round $round: vif-front on $backend"
    failed=1
  fi
  destroy_guest domU4
  sleep 2
  return "$failed"
}

compare_backends() {
  local failed_before=$failures
  local rounds=${E2E_COMPARE_ROUNDS:-3} round first second
  # The packaged vifd (started at boot) would hold the instance lock.
  systemctl stop vifd.service || log "systemctl stop vifd failed"
  for ((round = 1; round <= rounds; round++)); do
    if ((round % 2)); then first=vifd second=kernel; else first=kernel second=vifd; fi
    compare_round "$round" "$first" || true
    compare_round "$round" "$second" || true
  done
  stop_vifd
  if ((failures == failed_before)); then
    pass C "vifd and the kernel netback interleaved over $rounds rounds (ttcp and iperf3, 4 directions with stock netfront guests and 2 with a vif-front guest, fresh guests per round)"
  fi
}
