#!/bin/bash
# Runs inside dom0 (Xen 4.17 under QEMU). Each scenario prints
# "PASS Sn ..." or "FAIL Sn: reason"; each transfer prints a RESULT line the
# host turns into the side-by-side table. Exit status: number of failures.
#
# Phase 1, vifd is the vif backend (xen-netback not loaded):
#   S1 stock netfront domU <-> dom0 ; S2 domU <-> domU (vifd switch, then the
#   Linux bridge after a vifd restart with --no-fast-path) ; S7 multi-queue ;
#   S5 vif-front against vifd ; S6 detach/attach/destroy under traffic ;
#   S8 kill -9 vifd under a netfront guest's TCP transfer, restart ;
#   S9 one vifd per guest: vifd-launcher.service starting and stopping
#   vifd@<domid>.service.
#   S11 (after S1) an XDP program in the stock netfront guest: RX headroom
#   negotiated while Connected, every delivered frame seen by the program.
#   S10 (first) the packaged vifd.service under systemd, dom0's init:
#   systemctl start/restart/stop serving a stock guest, journal priorities,
#   sd_notify status and watchdog, everything released on stop.
# (mode restart: S1 and S8 only; mode short: S10, S1 and S9; mode systemd:
# S10 only; mode xdp: S1 and S11.)
# Phase 2, vifd stopped, xen-netback loaded, the same guests and configs:
#   S3 the S1/S2 transfers through the kernel netback ; S4 vif-front against it.
# Errors: every command that may fail on purpose is tested (if, ||, &&).
# Scenarios run as conditions (run_scenario), so inside them a failed step
# reports FAIL Sn and the run goes on with the next scenario; anywhere else
# an unexpected failure stops the script, naming the line.
set -Eeuo pipefail
trap 'echo "[e2e] scenarios.sh line $LINENO: \"$BASH_COMMAND\" failed (status $?)"' ERR
mode=${E2E_MODE:-full}
T=${E2E_TTCP_SECONDS:-10}
failures=0
vifd_pid=""
log() {
  echo "[e2e] $*"
  touch /run/e2e-progress
}
pass() { echo "PASS $1 $2"; }
fail() {
  echo "FAIL $1: $2"
  failures=$((failures + 1))
}
result() { echo "RESULT $*"; }
now() { date +%s; }
indent() { sed "s/^/[e2e]   ${1:-}/"; }

# wait_until TIMEOUT WHAT CMD...: runs CMD every 0.2 s until it succeeds.
# TIMEOUT counts the sleeps only, not CMD's own time, which under emulation
# varies too much to budget. On timeout, says what it waited for (stderr,
# so that callers capturing the output of CMD's caller keep it clean).
wait_until() {
  local limit=$1 what=$2 tries
  shift 2
  for ((tries = limit * 5; tries > 0; tries--)); do
    "$@" && return 0
    sleep 0.2
  done
  log "gave up after $limit s waiting for $what" >&2
  return 1
}

# --- dom0 setup ---------------------------------------------------------------
setup_dom0() {
  local m
  for m in xenfs xen-evtchn xen-gntdev xen-gntalloc xen-privcmd tun bridge; do
    modprobe "$m" || { log "modprobe $m failed"; return 1; }
  done
  mountpoint -q /proc/xen || mount -t xenfs xenfs /proc/xen
  /etc/init.d/xen start >/tmp/xen-init.log 2>&1 || { cat /tmp/xen-init.log; return 1; }
  ip link set lo up
  ip link add xenbr0 type bridge forward_delay 0 stp_state 0
  ip addr add 10.0.0.1/24 dev xenbr0
  ip link set xenbr0 up
  xl info | grep -E '^(xen_version|nr_cpus|total_memory|free_memory)' | indent
}

# Best effort: whatever is missing (a log, a node, a domain) is skipped.
dump_debug() {
  log "---- debug: xl list ----"
  xl list 2>&1 | indent || true
  log "---- vifd log (tail) ----"
  tail -40 /var/log/vifd.log 2>/dev/null | indent || true
  log "---- journalctl -u vifd (tail) ----"
  journalctl -u vifd.service -n 30 --no-pager 2>&1 | indent || true
  # S9's launcher and per-guest vifds.
  log "---- journalctl -u vifd-launcher -u vifd@* (tail) ----"
  journalctl -u vifd-launcher.service -u 'vifd@*.service' -n 30 --no-pager 2>&1 | indent || true
  local f
  for f in /var/log/xen/console/guest-*.log; do
    [[ -e $f ]] || continue
    log "---- $f (tail) ----"
    tail -60 "$f" | indent || true
  done
  log "---- xenstore backend/vif ----"
  # head may close the pipe early: xenstore-ls's SIGPIPE is expected.
  xenstore-ls -f /local/domain/0/backend/vif 2>&1 | head -60 | indent || true
  dmesg | tail -15 | indent "dmesg: " || true
}

# --- vifd ----------------------------------------------------------------------
# shellcheck disable=SC2317 # run through wait_until
vifd_answers() { [[ -S /run/vifd/vifd.sock ]] && vifctl stats --json >/dev/null 2>&1; }
# shellcheck disable=SC2317 # run through wait_until
vifd_exited() { ! kill -0 "$vifd_pid" 2>/dev/null; }
start_vifd() {
  log "starting vifd --platform xen $*"
  vifd --platform xen "$@" >>/var/log/vifd.log 2>&1 &
  vifd_pid=$!
  wait_until 10 "vifd's control socket" vifd_answers
}
stop_vifd() {
  [[ -n $vifd_pid ]] || return 0
  # It may have exited already: the wait below collects it either way.
  kill -TERM "$vifd_pid" 2>/dev/null || true
  if ! wait_until 10 "vifd to exit on SIGTERM" vifd_exited; then
    log "vifd did not exit on SIGTERM: SIGKILL"
    kill -9 "$vifd_pid" 2>/dev/null || true
  fi
  # Its exit status (143 after SIGTERM, 137 after SIGKILL) is no failure here.
  wait "$vifd_pid" 2>/dev/null || true
  vifd_pid=""
  rm -f /run/vifd/vifd.sock
}
vifctl() { timeout -k 2 15 /usr/bin/vifctl "$@"; }
# Prints nothing when vifd does not serve the vif (or does not answer).
vif_json() { vifctl stats --json 2>/dev/null | jq -c ".vifs[] | select(.domid == $1 and .devid == ${2:-0})"; }
vif_state() { vif_json "$1" "${2:-0}" | jq -r '.state // empty'; }
# shellcheck disable=SC2317 # run through wait_until
vif_connected() { [[ $(vif_state "$1" "${2:-0}") == Connected ]]; }
vif_gone() { [[ -z $(vif_json "$1" "${2:-0}") ]]; }
# vifd's grant-mapped pages and event channels as the dom0 kernel sees them:
# gntdev mappings in vifd's address space, evtchn IRQs bound by the process.
# grep -c prints 0 and fails when there are none, the expected count once
# every guest is gone.
vifd_mappings() { grep -c '/dev/xen/gntdev' "/proc/$vifd_pid/maps" || true; }
vifd_evtchns() { grep -c 'evtchn:vifd' /proc/interrupts || true; }

# --- guests --------------------------------------------------------------------
declare -A domid_of ip_of
write_cfg() { # name role ip mac vcpus
  cat >"/e2e/$1.cfg" <<CFG
name = "$1"
type = "pv"
kernel = "/e2e/vmlinuz"
ramdisk = "/e2e/domU.cpio"
extra = "console=hvc0 quiet e2e.role=$2 e2e.ip=$3/24"
memory = 128
vcpus = $5
vif = [ 'mac=$4,bridge=xenbr0' ]
on_crash = "destroy"
CFG
}
# shellcheck disable=SC2317 # run through wait_until
guest_ready() { [[ $(xenstore-read "/local/domain/$1/data/e2e-ready" 2>/dev/null) == 1 ]]; }
create_guest() { # name role ip mac vcpus
  local name=$1 t0 d
  t0=$(now)
  write_cfg "$@"
  if ! timeout -k 5 120 xl create "/e2e/$name.cfg" >"/tmp/xl-create-$name.log" 2>&1; then
    log "xl create $name failed:"
    indent <"/tmp/xl-create-$name.log"
    # A failed create can leave the domain behind, paused, holding the name
    # every later scenario that creates this guest needs.
    xl destroy "$name" >/dev/null 2>&1 || true
    return 1
  fi
  d=$(xl domid "$name") || { log "xl create $name: no domain id"; return 1; }
  domid_of[$name]=$d ip_of[$name]=$3
  wait_until 90 "$name (domain $d) to be ready" guest_ready "$d" || return 1
  log "$name is domain $d ($2, $3, $5 vCPU), ready after $(($(now) - t0)) s"
}
destroy_guest() {
  # Best effort: a failed scenario may have left the domain half gone.
  xl destroy "$1" 2>&1 | indent || true
  unset "domid_of[$1]"
}
# guest_answered DOMID SEQ: the agent's answer to SEQ, left in $guest_out.
guest_out=""
# shellcheck disable=SC2317 # run through wait_until
guest_answered() {
  guest_out=$(xenstore-read -R "/local/domain/$1/data/e2e-out" 2>/dev/null) || return 1
  local head=${guest_out%%$'\n'*}
  [[ ${head%% *} == "$2" ]]
}
# guest NAME TIMEOUT CMD: run CMD in the guest's agent; prints its output,
# returns its status (124 when no answer in TIMEOUT seconds).
guest() {
  local name=$1 limit=$2 cmd=$3 d=${domid_of[$1]:-} seq_no head
  [[ -n $d ]] || { log "guest: no domain named $name"; return 1; }
  # Unique without a shared counter: callers often run in $(...) subshells.
  seq_no=$(date +%s%N)
  xenstore-write "/local/domain/$d/data/e2e-cmd" "$seq_no	$cmd" || return 1
  wait_until "$limit" "$name to answer '${cmd:0:60}'" guest_answered "$d" "$seq_no" || return 124
  head=${guest_out%%$'\n'*}
  if [[ $guest_out == *$'\n'* ]]; then printf '%s\n' "${guest_out#*$'\n'}"; fi
  return "${head#* }"
}

# --- ttcp ---------------------------------------------------------------------
port=5100
ttcp_flags=(-s --checksum -l 65536)
# run_on WHERE TIMEOUT CMD: WHERE is dom0 or a guest name.
run_on() {
  if [[ $1 == dom0 ]]; then bash -c "$3"; else guest "$1" "$2" "$3"; fi
}
# receiver_done WHERE PORT: the ttcp receiver's report (or error) is out;
# leaves it in $receiver_out.
receiver_out=""
# shellcheck disable=SC2317 # run through wait_until
receiver_done() {
  receiver_out=$(run_on "$1" 10 "cat /tmp/ttcp-r.$2") || true
  [[ $receiver_out == *crc32* || $receiver_out == *rror* ]]
}
# transfer PATH DIR SRC DST DST_IP: ttcp for T seconds from SRC to DST;
# prints RESULT path=PATH dir=DIR kbps=... and checks bytes and CRC-32.
last_kbps="" last_bytes=""
transfer() {
  local path=$1 dir=$2 src=$3 dst=$4 ip=$5 r t rc=0
  port=$((port + 1))
  last_kbps=""
  run_on "$dst" 10 "vif-ttcp -r ${ttcp_flags[*]} -p $port --timeout $((T + 60)) >/tmp/ttcp-r.$port 2>&1 &" ||
    { log "transfer $path $dir: no receiver on $dst"; return 1; }
  sleep 1
  t=$(run_on "$src" $((T + 60)) "timeout $((T + 50)) vif-ttcp -t ${ttcp_flags[*]} -T $T -p $port $ip 2>&1") || rc=$?
  # A receiver that never reports fails the checks below, with its output.
  wait_until 20 "the ttcp receiver's report on $dst" receiver_done "$dst" "$port" || true
  r=$receiver_out
  local rline tcrc rcrc
  # No match leaves the value empty, which the check below reports.
  rline=$(grep 'real seconds' <<<"$r") || true
  tcrc=$(grep -o 'crc32 [0-9a-f]* over [0-9]*' <<<"$t") || true
  rcrc=$(grep -o 'crc32 [0-9a-f]* over [0-9]*' <<<"$r") || true
  if ((rc != 0)) || [[ -z $rline || -z $tcrc || $tcrc != "$rcrc" ]]; then
    log "transfer $path $dir failed (transmitter status $rc)"
    log "transmitter: $(tr '\n' '|' <<<"$t")"
    log "receiver: $(tr '\n' '|' <<<"$r")"
    return 1
  fi
  last_kbps=$(sed -n 's/.*= \([0-9.]*\) KB\/sec.*/\1/p' <<<"$rline")
  local bytes=${rcrc##* }
  last_bytes=$bytes
  result "path=$path dir=$dir kbps=$last_kbps bytes=$bytes ${tcrc%% over*}"
  log "  $path $dir: $bytes bytes, $last_kbps KB/sec, ${tcrc%% over*} both ends"
}
ping_both() { # NAME: dom0 -> guest and guest -> dom0
  ping -c 3 -W 3 "${ip_of[$1]}" >/tmp/ping.log 2>&1 || { log "ping dom0 -> $1: $(tail -2 /tmp/ping.log | tr '\n' ' ')"; return 1; }
  guest "$1" 30 "ping -c 3 -W 3 10.0.0.1" >/tmp/ping.log 2>&1 || { log "ping $1 -> dom0: $(tail -2 /tmp/ping.log | tr '\n' ' ')"; return 1; }
}
# ping_and_transfer SN NAME PATH WHAT [NOTE_CMD...]: ping both ways between
# dom0 and guest NAME, ttcp NAME -> dom0 and dom0 -> NAME (RESULT lines as
# PATH), then PASS SN with WHAT, both rates and what NOTE_CMD, run after the
# transfers, prints.
ping_and_transfer() {
  local sn=$1 name=$2 path=$3 what=$4 up note=""
  shift 4
  ping_both "$name" || { fail "$sn" "ping"; return 1; }
  transfer "$path" domU-dom0 "$name" dom0 10.0.0.1 || { fail "$sn" "ttcp $name -> dom0"; return 1; }
  up=$last_kbps
  transfer "$path" dom0-domU dom0 "$name" "${ip_of[$name]}" || { fail "$sn" "ttcp dom0 -> $name"; return 1; }
  if (($#)); then note="; $("$@" || true)"; fi
  pass "$sn" "$what: ping both ways, ttcp $name->dom0 $up KB/sec, dom0->$name $last_kbps KB/sec$note"
}
wait_vifd_connected() { # DOMID [DEVID]
  local devid=${2:-0}
  wait_until 20 "vifd to connect vif $1/$devid" vif_connected "$1" "$devid" && return 0
  log "vifd: vif $1/$devid is '$(vif_state "$1" "$devid")', not Connected"
  return 1
}
forwarded() { vifctl stats --json | jq '[.vifs[].queues[].switch.forwarded_packets] | add // 0'; }

# --- scenarios -----------------------------------------------------------------
s1() {
  create_guest domU1 netfront 10.0.0.11 00:16:3e:00:00:11 1 || { fail S1 "domU1 did not come up"; return 1; }
  local d=${domid_of[domU1]} fe
  wait_vifd_connected "$d" || { fail S1 "vifd did not connect vif $d/0"; return 1; }
  fe=$(xenstore-read "/local/domain/$d/device/vif/0/state") || true
  [[ $fe == 4 ]] || { fail S1 "frontend state '$fe'"; return 1; }
  ping_and_transfer S1 domU1 vifd "stock netfront on vifd"
}

s2() {
  create_guest domU2 netfront 10.0.0.12 00:16:3e:00:00:12 1 || { fail S2 "domU2 did not come up"; return 1; }
  wait_vifd_connected "${domid_of[domU2]}" || { fail S2 "vifd did not connect domU2"; return 1; }
  guest domU1 30 "ping -c 3 -W 3 10.0.0.12" >/dev/null || { fail S2 "ping domU1 -> domU2"; return 1; }
  local f0 f1
  f0=$(forwarded) || { fail S2 "vifctl stats"; return 1; }
  transfer vifd domU1-domU2 domU1 domU2 10.0.0.12 || { fail S2 "ttcp domU1 -> domU2 (switch)"; return 1; }
  local a=$last_kbps
  transfer vifd domU2-domU1 domU2 domU1 10.0.0.11 || { fail S2 "ttcp domU2 -> domU1 (switch)"; return 1; }
  local b=$last_kbps
  f1=$(forwarded) || { fail S2 "vifctl stats"; return 1; }
  log "vifd counters after the switched transfers (vifctl stats):"
  vifctl stats 2>&1 | indent || true
  ((f1 > f0 + 1000)) || { fail S2 "vifd's switch forwarded $((f1 - f0)) packets (expected the transfers)"; return 1; }
  # The same guests through the Linux bridge: vifd restarted without its
  # switch re-attaches to the Connected vifs from the published rings.
  stop_vifd
  start_vifd --no-fast-path || { fail S2 "vifd restart"; return 1; }
  if ! wait_vifd_connected "${domid_of[domU1]}" || ! wait_vifd_connected "${domid_of[domU2]}"; then
    fail S2 "vifd restart did not re-attach"
    return 1
  fi
  guest domU1 30 "ping -c 3 -W 3 10.0.0.12" >/dev/null || { fail S2 "ping after restart"; return 1; }
  transfer vifd-bridge domU1-domU2 domU1 domU2 10.0.0.12 || { fail S2 "ttcp domU1 -> domU2 (bridge)"; return 1; }
  local c=$last_kbps
  transfer vifd-bridge domU2-domU1 domU2 domU1 10.0.0.11 || { fail S2 "ttcp domU2 -> domU1 (bridge)"; return 1; }
  [[ $(forwarded) == 0 ]] || { fail S2 "switch forwarded with --no-fast-path"; return 1; }
  stop_vifd
  start_vifd || { fail S2 "vifd restart"; return 1; }
  if ! wait_vifd_connected "${domid_of[domU1]}" || ! wait_vifd_connected "${domid_of[domU2]}"; then
    fail S2 "second vifd restart did not re-attach"
    return 1
  fi
  pass S2 "domU<->domU: switch $a/$b KB/sec ($((f1 - f0)) packets switched), Linux bridge $c/$last_kbps KB/sec, vifd restarted twice under live guests"
}

# shellcheck disable=SC2317 # run by ping_and_transfer
busy_queues() { # DOMID: how many of the vif's queues carried packets
  echo "$(vif_json "$1" | jq '[.queues[] | select(.tx.packets > 0 or .rx.packets > 0)] | length') queues carried traffic"
}
s7() {
  create_guest domU3 netfront 10.0.0.13 00:16:3e:00:00:13 2 || { fail S7 "domU3 did not come up"; return 1; }
  local d=${domid_of[domU3]} fq vq
  wait_vifd_connected "$d" || { fail S7 "vifd did not connect domU3"; return 1; }
  # Either may be missing; the comparison below reports what was found.
  fq=$(xenstore-read "/local/domain/$d/device/vif/0/multi-queue-num-queues" 2>/dev/null) || true
  vq=$(vif_json "$d" | jq '.features.num_queues') || true
  [[ $fq == 2 && $vq == 2 ]] || { fail S7 "frontend asked for '$fq' queues, vifd runs '$vq'"; return 1; }
  ping_and_transfer S7 domU3 vifd-mq "2 vCPUs -> 2 queues negotiated (frontend and vifd agree)" busy_queues "$d"
}

# static_grant_totals DOMID: "MAPPINGS MEMCPY_SEGMENTS GRANT_COPY_SEGMENTS"
# summed over the vif's queues (vifd's counters).
static_grant_totals() {
  vif_json "$1" | jq -r '[([.queues[].static_grants.mappings] | add // 0),
    ([.queues[].static_grants.memcpy_segments] | add // 0),
    ([.queues[].grant_copy.segments] | add // 0)] | map(tostring) | join(" ")'
}
# static_grants_used DOMID BEFORE: after transfers, the vif holds static
# grant mappings and vifd moved segments by memcpy since BEFORE (a
# static_grant_totals line); prints what it found.
static_grants_used() {
  local now maps mem copies mem0 copies0
  now=$(static_grant_totals "$1") || return 1
  read -r maps mem copies <<<"$now"
  read -r _ mem0 copies0 <<<"$2"
  echo "static grant mappings $maps, $((mem - mem0)) segments by memcpy, $((copies - copies0)) by grant copy"
  ((maps > 0 && mem > mem0))
}

s5() {
  create_guest domU4 vif-front 10.0.0.14 00:16:3e:00:00:14 1 || { fail S5 "domU4 did not come up"; return 1; }
  local d=${domid_of[domU4]} before used
  wait_vifd_connected "$d" || { fail S5 "vifd did not connect vif-front"; return 1; }
  # vif-front offers its buffer pools over the control ring once connected.
  wait_until 20 "vif-front's static grant mappings" static_grants_mapped "$d" ||
    { fail S5 "vifd holds no static grant mapping of vif-front ($(static_grant_totals "$d"))"; return 1; }
  before=$(static_grant_totals "$d") || { fail S5 "vifctl stats"; return 1; }
  ping_both domU4 || { fail S5 "ping"; return 1; }
  transfer vif-front-vifd domU-dom0 domU4 dom0 10.0.0.1 || { fail S5 "ttcp domU4 -> dom0"; return 1; }
  local up=$last_kbps
  transfer vif-front-vifd dom0-domU dom0 domU4 10.0.0.14 || { fail S5 "ttcp dom0 -> domU4"; return 1; }
  if ! used=$(static_grants_used "$d" "$before"); then
    fail S5 "the transfers did not go through the static grant mappings: $used"
    return 1
  fi
  pass S5 "vif-front <-> vifd: ping both ways, ttcp domU4->dom0 $up KB/sec, dom0->domU4 $last_kbps KB/sec; $used"
}
# shellcheck disable=SC2317 # run through wait_until
static_grants_mapped() { local t; t=$(static_grant_totals "$1") && ((${t%% *} > 0)); }

# guest_eth NAME: the first eth* interface in guest NAME; fails while there
# is none.
guest_eth() {
  local names
  names=$(guest "$1" 5 'ls /sys/class/net') || return 1
  grep -m1 '^eth' <<<"$names"
}
s6() {
  local d=${domid_of[domU1]:-} m0 e0 m1 e1 m2 e2 devid ifname
  [[ -n $d ]] || { fail S6 "domU1 is not running"; return 1; }
  # Detach under traffic.
  guest domU1 10 "vif-ttcp -t ${ttcp_flags[*]} -T $((T * 4)) -p 5999 10.0.0.1 >/tmp/bg.log 2>&1 &" >/dev/null ||
    { fail S6 "no background transfer in domU1"; return 1; }
  vif-ttcp -r "${ttcp_flags[@]}" -p 5999 --timeout $((T * 6)) >/tmp/bg-r.log 2>&1 &
  sleep 3
  timeout -k 5 60 xl network-detach domU1 0 >/tmp/detach.log 2>&1 || { fail S6 "xl network-detach: $(cat /tmp/detach.log)"; return 1; }
  sleep 1
  vif_gone "$d" 0 || { fail S6 "vifd still serves $d/0 after network-detach"; return 1; }
  m0=$(vifd_mappings) e0=$(vifd_evtchns)
  ping -c 2 -W 2 10.0.0.12 >/dev/null || { fail S6 "domU2 unreachable after detaching domU1"; return 1; }
  # Attach again: netfront gets a new device.
  timeout -k 5 60 xl network-attach domU1 mac=00:16:3e:00:00:11,bridge=xenbr0 >/tmp/attach.log 2>&1 ||
    { fail S6 "xl network-attach: $(cat /tmp/attach.log)"; return 1; }
  devid=$(xenstore-list "/local/domain/0/backend/vif/$d" | tail -1) || true
  [[ -n $devid ]] || { fail S6 "no backend vif of domain $d after network-attach"; return 1; }
  wait_vifd_connected "$d" "$devid" || { fail S6 "re-attached vif $d/$devid not Connected"; return 1; }
  wait_until 10 "an eth interface in domU1" guest_eth domU1 >/dev/null || { fail S6 "no interface in domU1 after network-attach"; return 1; }
  ifname=$(guest_eth domU1) || { fail S6 "no interface in domU1 after network-attach"; return 1; }
  guest domU1 30 "ip addr add 10.0.0.11/24 dev $ifname && ip link set $ifname up" >/dev/null ||
    { fail S6 "cannot configure $ifname in domU1"; return 1; }
  ping -c 3 -W 3 10.0.0.11 >/dev/null || { fail S6 "domU1 unreachable after network-attach ($ifname)"; return 1; }
  m1=$(vifd_mappings) e1=$(vifd_evtchns)
  ((m1 > m0 && e1 > e0)) || { fail S6 "mappings $m0 -> $m1, event channels $e0 -> $e1 on attach"; return 1; }
  # Destroy under traffic.
  guest domU1 10 "vif-ttcp -t ${ttcp_flags[*]} -T $((T * 4)) -p 5998 10.0.0.1 >/tmp/bg2.log 2>&1 &" >/dev/null ||
    { fail S6 "no second background transfer in domU1"; return 1; }
  vif-ttcp -r "${ttcp_flags[@]}" -p 5998 --timeout $((T * 6)) >/tmp/bg2-r.log 2>&1 &
  sleep 3
  timeout -k 5 60 xl destroy domU1 || { fail S6 "xl destroy domU1"; return 1; }
  unset "domid_of[domU1]"
  wait_until 10 "vifd to drop vif $d/$devid" vif_gone "$d" "$devid" || { fail S6 "vifd still serves $d/$devid after xl destroy"; return 1; }
  m2=$(vifd_mappings) e2=$(vifd_evtchns)
  ((m2 == m0 && e2 == e0)) || { fail S6 "after destroy: grant mappings $m2 (expected $m0), event channels $e2 (expected $e0)"; return 1; }
  [[ -z $(xenstore-list "/local/domain/0/backend/vif/$d" 2>/dev/null) ]] || { fail S6 "backend nodes of $d left"; return 1; }
  if ! ping -c 2 -W 2 10.0.0.12 >/dev/null || ! ping -c 2 -W 2 10.0.0.14 >/dev/null; then
    fail S6 "other guests unreachable after destroy"
    return 1
  fi
  transfer vifd domU-dom0-after-destroy domU2 dom0 10.0.0.1 || { fail S6 "ttcp domU2 -> dom0 after destroy"; return 1; }
  pass S6 "network-detach/attach and destroy under traffic: re-attached as vif $d/$devid ($ifname in the guest), vifd gntdev mappings $m0 -> $m1 -> $m2, event channels $e0 -> $e1 -> $e2, other guests unaffected"
}

# S8: vifd killed (-9) while an unmodified netfront guest sends to dom0,
# started again at once: the guest's TCP session completes with matching
# CRC-32 on both ends and the frontend never reconnects (state 4 and the
# same ring refs and event channels throughout).
frontend_keys() { # DOMID
  local k line=""
  for k in state tx-ring-ref rx-ring-ref event-channel-tx event-channel-rx; do
    line+="$k=$(xenstore-read "/local/domain/$1/device/vif/0/$k" 2>/dev/null || true) "
  done
  echo "$line"
}
# What a failed S8 needs explained: both ttcp ends, the guest kernel's view
# of its netfront (a frontend that took an answer as bogus says so there),
# and what the new vifd logged since it started.
s8_evidence() { # NAME
  log "S8 transmitter: $(guest "$1" 30 "cat /tmp/s8-t.log" | tr '\n' '|')"
  log "S8 receiver: $(tr '\n' '|' </tmp/s8-r.log)"
  guest "$1" 30 "dmesg | tail -20" | indent "$1 dmesg: " || true
  sed -n "/starting vifd after the kill/,\$p" /var/log/vifd.log | tail -40 | indent "vifd: " || true
  vifctl show "${domid_of[$1]}" 2>&1 | head -40 | indent "vifctl show: " || true
}
since() { awk "BEGIN { printf \"%.2f\", $2 - $1 }"; }
# shellcheck disable=SC2317 # run through wait_until
s8_received() { grep -q 'crc32' /tmp/s8-r.log 2>/dev/null; }
s8() {
  local name=$1 d keys t rline tcrc rcrc kill_at dead_at answering_at back_at
  d=${domid_of[$name]:-}
  [[ -n $d ]] || { fail S8 "$name is not running"; return 1; }
  wait_vifd_connected "$d" || { fail S8 "vifd does not serve $name"; return 1; }
  keys=$(frontend_keys "$d")
  vif-ttcp -r "${ttcp_flags[@]}" -p 5996 --timeout $((T * 6 + 60)) >/tmp/s8-r.log 2>&1 &
  sleep 1
  guest "$name" 10 "vif-ttcp -t ${ttcp_flags[*]} -T $((T * 3)) -p 5996 10.0.0.1 >/tmp/s8-t.log 2>&1 &" >/dev/null ||
    { fail S8 "no transfer in $name"; return 1; }
  sleep $((T / 2 + 2))
  kill_at=$(date +%s.%N)
  log "kill -9 vifd ($vifd_pid) under the transfer from $name"
  kill -9 "$vifd_pid" 2>/dev/null || true
  wait "$vifd_pid" 2>/dev/null || true
  dead_at=$(date +%s.%N)
  vifd_pid=""
  rm -f /run/vifd/vifd.sock
  echo "[e2e] starting vifd after the kill" >>/var/log/vifd.log
  start_vifd || { fail S8 "vifd did not start again"; return 1; }
  answering_at=$(date +%s.%N)
  wait_vifd_connected "$d" || { fail S8 "the new vifd did not resume vif $d/0"; return 1; }
  back_at=$(date +%s.%N)
  log "S8: old vifd gone $(since "$kill_at" "$dead_at") s after the kill, new vifd answering after $(since "$dead_at" "$answering_at") s more, vif Connected after $(since "$answering_at" "$back_at") s more"
  wait_until $((T * 6 + 60)) "the transfer from $name to finish" s8_received || {
    fail S8 "the transfer did not finish: receiver '$(tr '\n' '|' </tmp/s8-r.log)'"
    s8_evidence "$name"
    return 1
  }
  t=$(guest "$name" 30 "sleep 2; cat /tmp/s8-t.log") || true
  rline=$(grep 'real seconds' /tmp/s8-r.log) || true
  tcrc=$(grep -o 'crc32 [0-9a-f]* over [0-9]*' <<<"$t") || true
  rcrc=$(grep -o 'crc32 [0-9a-f]* over [0-9]*' /tmp/s8-r.log) || true
  [[ -n $rline && -n $tcrc && $tcrc == "$rcrc" ]] || {
    fail S8 "transfer broken: sent '$tcrc', received '$rcrc' ($(tr '\n' '|' <<<"$t"))"
    s8_evidence "$name"
    return 1
  }
  [[ $(frontend_keys "$d") == "$keys" ]] ||
    { fail S8 "the frontend reconnected: $keys -> $(frontend_keys "$d")"; return 1; }
  grep -q "resumed from the shared indices" /var/log/vifd.log || { fail S8 "vifd did not resume"; return 1; }
  pass S8 "kill -9 vifd under ttcp $name->dom0: vifd back (vif Connected) $(awk "BEGIN { printf \"%.2f\", $back_at - $kill_at }") s after the kill, TCP session completed, ${rcrc}, frontend never reconnected ($keys)"
}

phase_kernel() {
  # Every guest gone: vifd must hold nothing.
  local name m e
  for name in "${!domid_of[@]}"; do destroy_guest "$name"; done
  sleep 1
  m=$(vifd_mappings) e=$(vifd_evtchns)
  log "vifd with no guests: $m grant mappings, $e event channels"
  stop_vifd
  modprobe xen-netback || { fail S3 "modprobe xen-netback"; return 1; }
  log "xen-netback loaded; vifd stopped"
}

s3() {
  if ! create_guest domU1 netfront 10.0.0.11 00:16:3e:00:00:11 1 ||
    ! create_guest domU2 netfront 10.0.0.12 00:16:3e:00:00:12 1; then
    fail S3 "guests did not come up on netback"
    return 1
  fi
  ping_both domU1 || { fail S3 "ping"; return 1; }
  transfer kernel domU-dom0 domU1 dom0 10.0.0.1 || { fail S3 "ttcp domU1 -> dom0"; return 1; }
  local a=$last_kbps
  transfer kernel dom0-domU dom0 domU1 10.0.0.11 || { fail S3 "ttcp dom0 -> domU1"; return 1; }
  local b=$last_kbps
  transfer kernel domU1-domU2 domU1 domU2 10.0.0.12 || { fail S3 "ttcp domU1 -> domU2"; return 1; }
  local c=$last_kbps
  transfer kernel domU2-domU1 domU2 domU1 10.0.0.11 || { fail S3 "ttcp domU2 -> domU1"; return 1; }
  local d=$last_kbps
  # vifd started beside xen-netback leaves the kernel's devices alone: it
  # would otherwise map the same rings and write their state.
  local d1=${domid_of[domU1]} d2=${domid_of[domU2]} held states
  start_vifd || { fail S3 "vifd did not start beside xen-netback"; return 1; }
  wait_until 10 "vifd to leave both devices to the kernel" vifd_left_to_kernel 2 ||
    { fail S3 "vifd left $(left_to_kernel) to the kernel, expected $d1/0 and $d2/0"; stop_vifd; return 1; }
  held=$(left_to_kernel | tr "\n" ";")
  [[ $held == *"$d1/0 vif (xen-netback), /sys/bus/xen-backend/devices/vif-$d1-0/driver"* &&
    $held == *"$d2/0 "* ]] || { fail S3 "left to the kernel: $held"; stop_vifd; return 1; }
  [[ $(vifctl stats --json | jq '.vifs | length') == 0 ]] || { fail S3 "vifd serves a kernel device"; stop_vifd; return 1; }
  ping_both domU1 || { fail S3 "ping with vifd beside xen-netback"; stop_vifd; return 1; }
  stop_vifd
  states="$(xenstore-read "/local/domain/0/backend/vif/$d1/0/state") $(xenstore-read "/local/domain/0/backend/vif/$d2/0/state")"
  [[ $states == "4 4" ]] || { fail S3 "backend states after vifd came and went: $states"; return 1; }
  pass S3 "kernel netback, same guests: $a / $b / $c / $d KB/sec; vifd started beside it left both devices alone ($held) and they stayed Connected"
}
# Devices vifd leaves to a kernel backend driver, "D/N DRIVER" per line.
left_to_kernel() { vifctl stats --json 2>/dev/null | jq -r '.left_to_kernel[]? | "\(.domid)/\(.devid) \(.driver)"'; }
# shellcheck disable=SC2317 # run through wait_until
vifd_left_to_kernel() { [[ $(left_to_kernel | wc -l) == "$1" ]]; }

s4() {
  create_guest domU4 vif-front 10.0.0.14 00:16:3e:00:00:14 1 || { fail S4 "domU4 did not come up"; return 1; }
  local d=${domid_of[domU4]} be fe
  # Either may be missing; the check below reports what was found.
  be=$(xenstore-read "/local/domain/0/backend/vif/$d/0/state") || true
  fe=$(xenstore-read "/local/domain/$d/device/vif/0/state") || true
  [[ $be == 4 && $fe == 4 ]] || { fail S4 "states backend '$be' frontend '$fe'"; return 1; }
  ping_and_transfer S4 domU4 vif-front-kernel "vif-front <-> kernel netback, both states 4"
}

# --- S9: one vifd per guest ------------------------------------------------------
# The packaged units as installed: vifd-launcher.service runs `systemctl
# --no-block start vifd@<domid>.service` when a guest's vif backend directory
# appears and the matching stop when the guest goes.
# Empty when no vifd@<domid> runs.
domain_vifd_pid() {
  local pid
  pid=$(systemctl show -p MainPID --value "vifd@$1.service" 2>/dev/null) || true
  if [[ -n $pid && $pid != 0 ]]; then echo "$pid"; fi
}
domain_vifctl() { local d=$1; shift; vifctl --control-socket "/run/vifd/domain-$d.sock" "$@"; }
# shellcheck disable=SC2317 # run through wait_until
domain_vif_connected() {
  [[ $(domain_vifctl "$1" stats --json 2>/dev/null | jq -r ".vifs[] | select(.domid == $1 and .devid == 0) | .state") == Connected ]]
}
# shellcheck disable=SC2317 # run through wait_until
domain_vifd_gone() { # DOMID PID: the unit has no process and PID has exited
  [[ -z $(domain_vifd_pid "$1") ]] && ! kill -0 "$2" 2>/dev/null
}
s9() {
  local name d1 d2 p1 p2 n1 n2
  # The serve-everything vifd and the per-guest ones exclude each other.
  for name in "${!domid_of[@]}"; do destroy_guest "$name"; done
  stop_vifd
  timeout 60 systemctl start vifd-launcher.service || { fail S9 "systemctl start vifd-launcher"; return 1; }
  # Stock guests, unmodified configs: their vifds must reach InitWait within
  # xl's 10 s after the launcher sees the backend directories.
  create_guest domU1 netfront 10.0.0.11 00:16:3e:00:00:11 1 || { fail S9 "domU1 did not come up"; return 1; }
  create_guest domU2 netfront 10.0.0.12 00:16:3e:00:00:12 1 || { fail S9 "domU2 did not come up"; return 1; }
  d1=${domid_of[domU1]} d2=${domid_of[domU2]}
  wait_until 20 "domU1's own vifd to connect it" domain_vif_connected "$d1" || { fail S9 "vif $d1/0 not Connected by its vifd"; return 1; }
  wait_until 20 "domU2's own vifd to connect it" domain_vif_connected "$d2" || { fail S9 "vif $d2/0 not Connected by its vifd"; return 1; }
  p1=$(domain_vifd_pid "$d1") p2=$(domain_vifd_pid "$d2")
  [[ -n $p1 && -n $p2 && $p1 != "$p2" ]] || { fail S9 "vifd@$d1 and vifd@$d2 MainPIDs '$p1' and '$p2'"; return 1; }
  n1=$(domain_vifctl "$d1" stats --json | jq '.vifs | length') || true
  n2=$(domain_vifctl "$d2" stats --json | jq '.vifs | length') || true
  [[ $n1 == 1 && $n2 == 1 ]] || { fail S9 "each vifd should serve one vif: $n1 and $n2"; return 1; }
  ping_both domU1 || { fail S9 "ping dom0 <-> domU1"; return 1; }
  ping_both domU2 || { fail S9 "ping dom0 <-> domU2"; return 1; }
  guest domU1 30 "ping -c 3 -W 3 10.0.0.12" >/tmp/ping.log 2>&1 || { fail S9 "ping domU1 -> domU2"; return 1; }
  transfer vifd-per-guest domU1-domU2 domU1 domU2 10.0.0.12 || { fail S9 "ttcp domU1 -> domU2"; return 1; }
  local between=$last_kbps
  transfer vifd-per-guest domU-dom0 domU2 dom0 10.0.0.1 || { fail S9 "ttcp domU2 -> dom0"; return 1; }
  local up=$last_kbps
  # Destroying a guest stops its vifd, and only that one.
  destroy_guest domU1
  wait_until 20 "vifd@$d1 to stop" domain_vifd_gone "$d1" "$p1" || { fail S9 "vifd $p1 of domain $d1 still runs after xl destroy"; return 1; }
  kill -0 "$p2" 2>/dev/null || { fail S9 "domU2's vifd stopped with domU1"; return 1; }
  ping_both domU2 || { fail S9 "domU2 after domU1 went"; return 1; }
  destroy_guest domU2
  wait_until 20 "vifd@$d2 to stop" domain_vifd_gone "$d2" "$p2" || { fail S9 "vifd $p2 of domain $d2 still runs after xl destroy"; return 1; }
  pass S9 "one vifd per guest (vifd-launcher.service): vifd@$d1.service pid $p1, vifd@$d2.service pid $p2, ping dom0 and each other, ttcp domU1->domU2 $between KB/sec, domU2->dom0 $up KB/sec, each stopped with its guest"
}
# After S9, whatever it left: the launcher, per-guest vifds, guests; then the
# serve-everything vifd again for the next phase.
s9_cleanup() {
  local name
  systemctl stop vifd-launcher.service || true
  for name in "${!domid_of[@]}"; do destroy_guest "$name"; done
  systemctl stop 'vifd@*.service' || true
  log "vifd-launcher's journal:"
  journalctl -u vifd-launcher.service -n 20 -o cat --no-pager 2>/dev/null | indent "launcher: " || true
  sleep 1
  start_vifd
}

# --- S10: the packaged vifd.service, systemd as dom0's init ----------------------
# apt-get installed the package in dom0's image (its postinst enabled the
# unit) and systemd started it at boot. S10 stops that instance and drives
# the unit as an operator would: systemctl start (Type=notify: returns on
# READY=1), a stock guest from an ordinary xl config served, systemctl
# restart under the guest, the journal's priorities, the sd_notify status and
# watchdog pings as systemd records them, and systemctl stop releasing the
# process's grant mappings, event channels and TAP while the guest stays
# Connected for the next vifd.
unit_prop() { systemctl show -p "$1" --value vifd.service; }
# shellcheck disable=SC2317 # run through wait_until
unit_status_is() { [[ $(unit_prop StatusText) == "$1" ]]; }
# shellcheck disable=SC2317 # run through wait_until
unit_watchdog_after() { (($(unit_prop WatchdogTimestampMonotonic) > $1)); }
# The journal's vifd lines as "PRIORITY MESSAGE" (systemd's own lines about
# the unit left out).
vifd_journal() {
  journalctl -u vifd.service -o json --no-pager 2>/dev/null |
    jq -r 'select(.SYSLOG_IDENTIFIER == "vifd") | "\(.PRIORITY) \(.MESSAGE)"'
}
# shellcheck disable=SC2317 # run through wait_until
journal_has() { vifd_journal | grep -q "$1"; }
s10() {
  local name=domU10 enabled boot t0 t1 start_s pid1 pid2 d keys up maps evtchns wd0 journal prios
  enabled=$(systemctl is-enabled vifd.service 2>&1) || true
  boot=$(systemctl is-active vifd.service 2>&1) || true
  [[ $enabled == enabled ]] || { fail S10 "vifd.service is '$enabled' after apt-get install (its postinst enables it)"; return 1; }
  log "vifd.service after boot: $enabled, $boot (started by systemd at boot)"
  systemctl stop vifd.service || { fail S10 "systemctl stop vifd (the boot's instance)"; return 1; }
  t0=$(date +%s.%N)
  if ! timeout 60 systemctl start vifd.service; then
    systemctl status --no-pager -n 20 vifd.service 2>&1 | indent
    fail S10 "systemctl start vifd"
    return 1
  fi
  t1=$(date +%s.%N)
  start_s=$(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }")
  # READY=1 comes once the control socket answers: no wait needed here.
  vifd_answers || { fail S10 "systemctl start returned before vifd answered on its socket"; return 1; }
  [[ $(systemctl is-active vifd.service) == active ]] || { fail S10 "vifd.service not active after start"; return 1; }
  [[ $(unit_prop Type) == notify && $(unit_prop WatchdogUSec) == 30s ]] ||
    { fail S10 "unit Type '$(unit_prop Type)', WatchdogUSec '$(unit_prop WatchdogUSec)'"; return 1; }
  pid1=$(unit_prop MainPID)
  unit_status_is "serving 0 vif(s) under /local/domain/0/backend/vif" ||
    { fail S10 "StatusText '$(unit_prop StatusText)' with no guest"; return 1; }
  wd0=$(unit_prop WatchdogTimestampMonotonic)
  log "systemctl start vifd returned in $start_s s (READY=1), MainPID $pid1, StatusText '$(unit_prop StatusText)'"

  create_guest "$name" netfront 10.0.0.20 00:16:3e:00:00:20 1 || { fail S10 "$name did not come up"; return 1; }
  d=${domid_of[$name]}
  wait_vifd_connected "$d" || { fail S10 "vifd.service did not connect vif $d/0"; return 1; }
  wait_until 10 "StatusText to count the vif" unit_status_is "serving 1 vif(s) under /local/domain/0/backend/vif" ||
    { fail S10 "StatusText '$(unit_prop StatusText)' with one guest"; return 1; }
  ping_both "$name" || { fail S10 "ping"; return 1; }
  transfer vifd-systemd domU-dom0 "$name" dom0 10.0.0.1 || { fail S10 "ttcp $name -> dom0"; return 1; }
  up=$last_kbps
  transfer vifd-systemd dom0-domU dom0 "$name" 10.0.0.20 || { fail S10 "ttcp dom0 -> $name"; return 1; }
  # WatchdogSec=30s: a ping every 15 s, so one within 30 s of the start.
  wait_until 30 "a WATCHDOG=1 systemd records" unit_watchdog_after "$wd0" ||
    { fail S10 "no watchdog ping recorded (WatchdogTimestampMonotonic $(unit_prop WatchdogTimestampMonotonic))"; return 1; }

  # systemctl restart: a new process picks the vif up where the old one left
  # it; the frontend sees no change.
  keys=$(frontend_keys "$d")
  timeout 60 systemctl restart vifd.service || { fail S10 "systemctl restart vifd"; return 1; }
  pid2=$(unit_prop MainPID)
  [[ $pid2 != "$pid1" && $pid2 != 0 ]] || { fail S10 "MainPID $pid1 -> $pid2 across the restart"; return 1; }
  wait_vifd_connected "$d" || { fail S10 "the restarted vifd did not resume vif $d/0"; return 1; }
  ping_both "$name" || { fail S10 "ping after systemctl restart"; return 1; }
  [[ $(frontend_keys "$d") == "$keys" ]] || { fail S10 "the frontend reconnected: $keys -> $(frontend_keys "$d")"; return 1; }

  # The journal files each line at its own priority: a vif on a bridge that
  # does not exist is an error (<3>), start-up and state changes are info.
  vifctl attach "$d" --devid 1 --bridge nosuchbr0 --no-wait >/dev/null 2>&1 || true
  wait_until 20 "the missing bridge's error in the journal" journal_has "^3 .*nosuchbr0" ||
    { fail S10 "no error-priority journal line about bridge nosuchbr0"; return 1; }
  vifctl detach "$d" 1 >/dev/null 2>&1 || true
  journal=$(vifd_journal)
  grep -q '^6 \[vifd\] ready: serving ' <<<"$journal" || { fail S10 "no info-priority 'ready' line in the journal"; return 1; }
  ! grep -q '^[0-9] <[0-7]>' <<<"$journal" || { fail S10 "a priority prefix left in a journal message"; return 1; }
  prios=$(awk '{n[$1]++} END {for (p in n) {printf "%s<%s> %d", sep, p, n[p]; sep = ", "}}' <<<"$journal")
  log "journalctl -u vifd, vifd's lines by priority: $prios; those above info:"
  grep -v '^[67] ' <<<"$journal" | head -5 | indent

  # systemctl stop with the guest still Connected: the process and all it
  # held go, xenstore stays as it is for the next vifd.
  maps=$(grep -c '/dev/xen/gntdev' "/proc/$pid2/maps" || true) evtchns=$(vifd_evtchns)
  ((maps > 0 && evtchns > 0)) || { fail S10 "vifd $pid2 holds $maps grant mappings, $evtchns event channels"; return 1; }
  timeout 60 systemctl stop vifd.service || { fail S10 "systemctl stop vifd"; return 1; }
  local state result main tap_left
  state=$(systemctl is-active vifd.service 2>&1) || true
  result=$(unit_prop Result) main=$(unit_prop MainPID)
  [[ $state == inactive && $result == success && $main == 0 ]] ||
    { fail S10 "after stop: state '$state', result '$result', MainPID '$main'"; return 1; }
  ! kill -0 "$pid2" 2>/dev/null || { fail S10 "vifd $pid2 still runs after systemctl stop"; return 1; }
  [[ $(vifd_evtchns) == 0 ]] || { fail S10 "$(vifd_evtchns) vifd event channels left after stop"; return 1; }
  tap_left=$(ip -o link show 2>/dev/null | grep -c " vif$d\.0[:@]" || true)
  [[ $tap_left == 0 && ! -S /run/vifd/vifd.sock ]] || { fail S10 "TAP vif$d.0 or the control socket left after stop"; return 1; }
  [[ $(frontend_keys "$d") == "$keys" ]] || { fail S10 "xenstore changed on stop: $keys -> $(frontend_keys "$d")"; return 1; }

  # Started again, it serves the guest that waited; then the guest goes.
  timeout 60 systemctl start vifd.service || { fail S10 "systemctl start vifd after stop"; return 1; }
  wait_vifd_connected "$d" || { fail S10 "vifd.service did not resume vif $d/0 after stop and start"; return 1; }
  ping_both "$name" || { fail S10 "ping after stop and start"; return 1; }
  destroy_guest "$name"
  wait_until 20 "vifd.service to drop vif $d/0" vif_gone "$d" || { fail S10 "vif $d/0 still served after xl destroy"; return 1; }
  timeout 60 systemctl stop vifd.service || { fail S10 "final systemctl stop vifd"; return 1; }
  pass S10 "vifd.service (apt-installed, systemd dom0): start returned in $start_s s on READY=1, stock netfront $name served, ping both ways, ttcp $name->dom0 $up KB/sec, dom0->$name $last_kbps KB/sec; StatusText, watchdog pings, journal priorities ($prios); restart (pid $pid1 -> $pid2) kept the frontend connected; stop released its $maps grant mappings, $evtchns event channels and TAP vif$d.0, the guest stayed Connected and was served again after start"
}

# --- S11: an XDP program in a stock netfront guest ------------------------------
# Attaching a driver-mode XDP program makes Linux netfront (5.9+) go to
# Reconfiguring, write xdp-headroom (256, XDP_PACKET_HEADROOM) and wait for
# the backend's Reconfigured before it runs the program: vifd must follow
# the change while Connected and place every RX frame behind that headroom.
# The program counts the frames it saw (tests/e2e-xen/tools/xdp_count.cc).
# While it runs, netfront drops multi-slot RX frames (it runs XDP on single
# pages only), so the traffic here is pings up to 1400 bytes and a ttcp from
# the guest, whose RX side carries only ACKs.
guest_xdp_ready() { guest domU1 10 "mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf"; }
vif_xdp_headroom() { vif_json "$1" | jq -r '.features.xdp_headroom // empty'; }
# shellcheck disable=SC2317 # run through wait_until
headroom_is() { [[ $(vif_xdp_headroom "$1") == "$2" && $(vif_state "$1") == Connected ]]; }
vif_rx_packets() { vif_json "$1" | jq '[.queues[].rx.packets] | add // 0'; }
s11() {
  local d=${domid_of[domU1]:-} out rx0 rx1 seen fe_headroom
  [[ -n $d ]] || { fail S11 "no domU1 (S1 failed)"; return 1; }
  [[ $(xenstore-read "/local/domain/0/backend/vif/$d/0/feature-xdp-headroom" 2>/dev/null) == 1 ]] ||
    { fail S11 "vifd does not advertise feature-xdp-headroom"; return 1; }
  guest_xdp_ready || { fail S11 "no bpffs in the guest"; return 1; }
  rx0=$(vif_rx_packets "$d") || { fail S11 "vifctl stats"; return 1; }
  out=$(guest domU1 60 "e2e-xdp-count attach eth0 /sys/fs/bpf/xdp_count 2>&1") ||
    { fail S11 "attaching XDP in the guest: $out"; return 1; }
  log "S11: $out"
  fe_headroom=$(xenstore-read "/local/domain/$d/device/vif/0/xdp-headroom" 2>/dev/null) || true
  wait_until 20 "vifd to serve headroom $fe_headroom" headroom_is "$d" "$fe_headroom" ||
    { fail S11 "frontend asks xdp-headroom '$fe_headroom', vifd serves '$(vif_xdp_headroom "$d")' in state '$(vif_state "$d")'"; return 1; }
  ((fe_headroom > 0)) || { fail S11 "netfront wrote xdp-headroom '$fe_headroom'"; return 1; }
  guest domU1 30 "ping -c 20 -i 0.2 -s 1400 -W 3 10.0.0.1" >/tmp/ping.log 2>&1 ||
    { fail S11 "ping -s 1400 domU1 -> dom0 with XDP: $(tail -2 /tmp/ping.log | tr '\n' ' ')"; return 1; }
  ping -c 20 -i 0.2 -s 1400 -W 3 "${ip_of[domU1]}" >/tmp/ping.log 2>&1 ||
    { fail S11 "ping -s 1400 dom0 -> domU1 with XDP: $(tail -2 /tmp/ping.log | tr '\n' ' ')"; return 1; }
  transfer vifd-xdp domU-dom0 domU1 dom0 10.0.0.1 || { fail S11 "ttcp domU1 -> dom0 with XDP"; return 1; }
  local up=$last_kbps
  seen=$(guest domU1 10 "e2e-xdp-count read /sys/fs/bpf/xdp_count") || { fail S11 "reading the XDP counter"; return 1; }
  rx1=$(vif_rx_packets "$d") || { fail S11 "vifctl stats"; return 1; }
  # Every frame vifd delivered reached the program (the counter may also
  # see a few frames delivered just before attach completed).
  ((seen >= 40 && seen + 5 >= rx1 - rx0)) ||
    { fail S11 "the XDP program saw $seen frames, vifd delivered $((rx1 - rx0))"; return 1; }
  out=$(guest domU1 60 "e2e-xdp-count detach eth0 2>&1") || { fail S11 "detaching XDP: $out"; return 1; }
  wait_until 20 "vifd to drop the headroom" headroom_is "$d" 0 ||
    { fail S11 "after detach vifd serves headroom '$(vif_xdp_headroom "$d")' in state '$(vif_state "$d")'"; return 1; }
  transfer vifd-xdp dom0-domU dom0 domU1 "${ip_of[domU1]}" || { fail S11 "ttcp dom0 -> domU1 after XDP detached"; return 1; }
  pass S11 "XDP in a stock netfront guest: netfront asked for headroom $fe_headroom, vifd followed while Connected; the program saw $seen frames of the $((rx1 - rx0)) vifd delivered; ping -s 1400 both ways, ttcp domU1->dom0 $up KB/sec with XDP; after detach headroom 0 and ttcp dom0->domU1 $last_kbps KB/sec"
}

scenario() {
  case $1 in
    S1) s1 ;;
    S2) s2 ;;
    S3) s3 ;;
    S4) s4 ;;
    S5) s5 ;;
    S6) s6 ;;
    S7) s7 ;;
    S8) s8 "${s8_guest:-domU2}" ;;
    S9) s9 ;;
    S10) s10 ;;
    S11) s11 ;;
  esac
}
# run_scenario Sn: the scenario runs as a condition, so errexit is off inside
# it and its first failed check (FAIL Sn) ends only that scenario.
run_scenario() {
  local s=$1 t0
  t0=$(now)
  log "== $s"
  if ! scenario "$s"; then
    dump_debug
  fi
  log "== $s took $(($(now) - t0)) s"
}

# A scenario that stops making progress (no log line for 120 s) gets the
# state of every process dumped once: where vifd's threads wait in the
# kernel, what xl is doing, vifd's last words. Best effort throughout: a
# process may exit while it is being looked at.
stall_monitor() {
  local dumped=0 age pid t
  while sleep 10; do
    age=$(($(now) - $(stat -c %Y /run/e2e-progress 2>/dev/null || now)))
    if ((age > 120 && !dumped)); then
      dumped=1
      echo "[e2e] stall: no progress for $age s; processes:"
      # Without kernel threads (their names are bracketed).
      ps -eo pid,stat,wchan:32,etime,args | sed -e '/\[/d' -e 's/^/[e2e]   /' || true
      for pid in $(pidof vifd xl vif-ttcp || true); do
        for t in "/proc/$pid/task/"*; do
          echo "[e2e]   $pid/${t##*/} $(cat "$t/comm" 2>/dev/null || true) $(cat "$t/wchan" 2>/dev/null || true) $(tr '\n' ' ' <"$t/stack" 2>/dev/null | cut -c1-300 || true)"
        done
      done
      tail -20 /var/log/vifd.log 2>/dev/null | indent "vifd: " || true
    elif ((age > 120 && age % 60 < 10)); then
      # A heartbeat while stalled: the host treats a silent console as a
      # stopped emulator, so a slow or hung scenario must keep talking.
      echo "[e2e] stall: still no progress after $age s"
    elif ((age < 120)); then
      dumped=0
    fi
  done
}
touch /run/e2e-progress
stall_monitor &

setup_dom0 || { fail S0 "dom0 setup"; exit 1; }
if [[ $mode == compare ]]; then
  # shellcheck source=tests/e2e-xen/guest/compare.sh
  source /e2e/compare.sh
  compare_backends
  exit "$failures"
fi
if [[ $mode == full || $mode == short || $mode == systemd ]]; then
  run_scenario S10
fi
# The scenarios below start vifd by hand; the packaged one (started at boot,
# or left by a failed S10) would hold the instance lock.
systemctl stop vifd.service || log "systemctl stop vifd failed"
if [[ $mode == systemd ]]; then
  exit "$failures"
fi
start_vifd || {
  fail S0 "vifd"
  dump_debug
  exit 1
}
run_scenario S1
if [[ $mode == full || $mode == xdp ]]; then
  run_scenario S11
fi
if [[ $mode == restart ]]; then
  s8_guest=domU1 run_scenario S8
fi
if [[ $mode == full ]]; then
  run_scenario S2
  run_scenario S7
  run_scenario S5
  run_scenario S6
  s8_guest=domU2 run_scenario S8
  run_scenario S9
  s9_cleanup || log "vifd did not start again after S9"
  # S3 and S4 run even so, and report what does not work.
  phase_kernel || log "the switch to the kernel netback failed"
  run_scenario S3
  run_scenario S4
elif [[ $mode == short ]]; then
  # The packaged per-guest deployment is checked in the short run too.
  run_scenario S9
fi
# What vifd had to say on real Xen beyond routine state changes: every
# warning and error of the run, for the differences table in
# docs/architecture.md. grep finds none in a quiet run.
log "vifd warnings and errors during the run:"
{ grep -E '\[(warning|error|critical)\]' /var/log/vifd.log || true; } | indent "vifd: " | tail -40
exit "$failures"
