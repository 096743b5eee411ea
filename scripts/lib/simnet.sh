# shellcheck shell=bash
# simnet.sh: a simulated Xen host with domUs in network namespaces.
#
#   source scripts/lib/simnet.sh
#   simnet_init demo build          # name (short: it is part of netns names), build dir
#   simnet_start_host               # vif-sim in a fresh temp dir
#   simnet_start_dom0               # netns vsim-<tag>-d0: bridge xenbr0 10.99.0.1/24, vifd
#   simnet_add_domu 1               # domain 1, netns vsim-<tag>-d1, vif attached, vif-front
#   simnet_exec 1 ping -c1 10.99.0.1
#
# <tag> is the name given to simnet_init and a random part of this run's own
# (demo-k3Xq9Z): two runs at once, of one script or of two, each get their
# own namespaces and never tear down the other's.
# The simulated dom0's network is netns vsim-<tag>-d0: vifd runs there, so
# its TAPs vif<D>.<N> and the bridge xenbr0 live there. Domain N's network is
# netns vsim-<tag>-dN, where vif-front creates eth0 (10.99.0.(10+N)/24).
# Cleanup runs on every exit, including Ctrl-C: processes, namespaces (and
# with them every TAP and bridge), then the sim host and its directory.

SIMNET_TAG=""
SIMNET_BUILD=""
SIMNET_WORK=""
SIMNET_HOST=""
SIMNET_LOGS=""
SIMNET_PIDS=()          # started processes, stopped in reverse order
SIMNET_LAST_PID=""
SIMNET_HOST_PID=""
SIMNET_NAMESPACES=()
SIMNET_WAIT=${SIMNET_WAIT:-20}   # seconds for any bounded wait
SIMNET_CLEANED=0

simnet_log() { echo "simnet[$SIMNET_TAG]: $*" >&2; }
simnet_die() {
  simnet_log "error: $*"
  exit 1
}

# simnet_bin NAME: the path of a project binary in the build dir.
simnet_bin() {
  local name=$1 dir
  for dir in xenstore-tools backend frontend; do
    if [[ -x $SIMNET_BUILD/$dir/$name ]]; then
      echo "$SIMNET_BUILD/$dir/$name"
      return 0
    fi
  done
  return 1
}

# simnet_require_binaries NAME...: dies naming every binary that is missing.
simnet_require_binaries() {
  local missing=() name
  for name in "$@"; do
    simnet_bin "$name" >/dev/null || missing+=("$name")
  done
  if ((${#missing[@]})); then
    simnet_die "missing binaries in $SIMNET_BUILD: ${missing[*]} (not built, or not written yet)"
  fi
}

simnet_require_tools() {
  local tool
  for tool in ip timeout xenstore-read jq; do
    command -v "$tool" >/dev/null || simnet_die "missing tool '$tool' (run scripts/install-deps)"
  done
  [[ $(id -u) -eq 0 ]] || simnet_die "needs root (network namespaces, TAPs, bridges)"
}

# simnet_init NAME BUILD_DIR: sets up the work dir, this run's tag
# (NAME-<random>) and the cleanup traps.
simnet_init() {
  SIMNET_TAG=$1
  SIMNET_BUILD=$(cd "$2" && pwd)
  simnet_require_tools
  SIMNET_WORK=$(mktemp -d "/tmp/vsim-$1-XXXXXX")
  SIMNET_TAG="$1-${SIMNET_WORK##*-}"
  SIMNET_HOST=$SIMNET_WORK/host
  SIMNET_LOGS=$SIMNET_WORK/logs
  mkdir -p "$SIMNET_HOST" "$SIMNET_LOGS"
  trap simnet_cleanup EXIT
  # An interrupted run exits through the EXIT trap, which cleans up.
  trap 'simnet_log "interrupted"; exit 130' INT TERM HUP
}

simnet_ns() { echo "vsim-$SIMNET_TAG-d$1"; }

# simnet_env DOMID: the environment a process acting as DOMID needs.
simnet_env() {
  echo "VIF_SIM_DIR=$SIMNET_HOST VIF_SIM_DOMID=$1 XENSTORED_PATH=$SIMNET_HOST/xenstored.sock"
}

# simnet_exec DOMID CMD...: runs CMD in DOMID's namespace as DOMID.
simnet_exec() {
  local domid=$1
  shift
  # shellcheck disable=SC2046
  ip netns exec "$(simnet_ns "$domid")" env $(simnet_env "$domid") "$@"
}

# simnet_spawn DOMID LOGNAME CMD...: starts CMD in the background in
# DOMID's namespace, logging to LOGNAME.log; records the pid for cleanup
# and leaves it in SIMNET_LAST_PID.
simnet_spawn() {
  local domid=$1 log=$2
  shift 2
  # shellcheck disable=SC2046
  ip netns exec "$(simnet_ns "$domid")" env $(simnet_env "$domid") "$@" \
    >"$SIMNET_LOGS/$log.log" 2>&1 &
  SIMNET_LAST_PID=$!
  SIMNET_PIDS+=("$SIMNET_LAST_PID")
}

# simnet_xs_read PATH: reads a xenstore node as dom0 ("" when missing).
simnet_xs_read() {
  XENSTORED_PATH=$SIMNET_HOST/xenstored.sock timeout 5 xenstore-read "$1" 2>/dev/null || true
}

# simnet_wait_for SECONDS DESCRIPTION CMD...: polls CMD until it succeeds.
simnet_wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      simnet_log "timed out after ${seconds}s waiting for $what"
      return 1
    fi
    sleep 0.1
  done
}

simnet_add_netns() {
  local ns
  ns=$(simnet_ns "$1")
  # The tag is this run's: a namespace of that name is never another run's
  # to delete.
  ip netns add "$ns" || simnet_die "cannot create network namespace $ns"
  SIMNET_NAMESPACES+=("$ns")
  ip -n "$ns" link set lo up
}

simnet_start_host() {
  local sim
  sim=$(simnet_bin vif-sim) || simnet_die "missing binary vif-sim"
  "$sim" --dir "$SIMNET_HOST" >"$SIMNET_LOGS/vif-sim.log" 2>&1 &
  SIMNET_HOST_PID=$!
  simnet_wait_for "$SIMNET_WAIT" "vif-sim to serve xenstore" test -S "$SIMNET_HOST/xenstored.sock" ||
    simnet_die "vif-sim did not start (log: $(tail -3 "$SIMNET_LOGS/vif-sim.log"))"
}

# simnet_start_dom0 [VIFD_ARGS...]: dom0's namespace with xenbr0, and vifd.
simnet_start_dom0() {
  simnet_add_netns 0
  local ns
  ns=$(simnet_ns 0)
  ip -n "$ns" link add xenbr0 type bridge
  ip -n "$ns" addr add 10.99.0.1/24 dev xenbr0
  ip -n "$ns" link set xenbr0 up
  local vifd
  vifd=$(simnet_bin vifd) || simnet_die "missing binary vifd"
  simnet_spawn 0 vifd "$vifd" "$@"
  simnet_wait_for "$SIMNET_WAIT" "vifd's control socket" test -S "$SIMNET_HOST/vifd.sock" ||
    simnet_die "vifd did not start (log: $(tail -5 "$SIMNET_LOGS/vifd.log"))"
}

simnet_states_are() {
  local domid=$1 devid=$2 want=$3
  [[ $(simnet_xs_read "/local/domain/0/backend/vif/$domid/$devid/state") == "$want" &&
    $(simnet_xs_read "/local/domain/$domid/device/vif/$devid/state") == "$want" ]]
}

# simnet_wait_connected DOMID [DEVID]: both xenbus states 4 (Connected).
simnet_wait_connected() {
  simnet_wait_for "$SIMNET_WAIT" "vif $1/${2:-0} Connected" simnet_states_are "$1" "${2:-0}" 4
}

simnet_link_exists() { ip -n "$(simnet_ns "$1")" link show "$2" >/dev/null 2>&1; }

simnet_vifctl() {
  local vifctl
  vifctl=$(simnet_bin vifctl) || simnet_die "missing binary vifctl"
  # shellcheck disable=SC2046
  timeout 30 env $(simnet_env 0) "$vifctl" "$@"
}

# simnet_add_domu DOMID [VIF_FRONT_ARGS...]: creates the domain, its
# namespace, attaches vif DOMID/0 to xenbr0, starts vif-front and gives
# eth0 the address 10.99.0.(10+DOMID)/24 once Connected.
simnet_add_domu() {
  local domid=$1
  shift
  local sim front ns
  sim=$(simnet_bin vif-sim) || simnet_die "missing binary vif-sim"
  front=$(simnet_bin vif-front) || simnet_die "missing binary vif-front"
  timeout 30 "$sim" --dir "$SIMNET_HOST" create "$domid" >>"$SIMNET_LOGS/vif-sim.log" 2>&1 ||
    simnet_die "vif-sim create $domid failed"
  simnet_add_netns "$domid"
  ns=$(simnet_ns "$domid")
  simnet_vifctl attach "$domid" --devid 0 --bridge xenbr0 >>"$SIMNET_LOGS/vifctl.log" 2>&1 ||
    simnet_die "vifctl attach $domid failed: $(tail -3 "$SIMNET_LOGS/vifctl.log")"
  simnet_spawn "$domid" "vif-front-$domid" "$front" --devid 0 --ifname eth0 "$@"
  simnet_wait_connected "$domid" 0 ||
    simnet_die "vif $domid/0 not Connected (vif-front: $(tail -3 "$SIMNET_LOGS/vif-front-$domid.log"))"
  simnet_wait_for "$SIMNET_WAIT" "eth0 in $ns" simnet_link_exists "$domid" eth0 ||
    simnet_die "no eth0 in $ns"
  ip -n "$ns" addr add "10.99.0.$((10 + domid))/24" dev eth0
  ip -n "$ns" link set eth0 up
}

simnet_dump_logs() {
  local f
  [[ -d $SIMNET_LOGS ]] || return 0
  for f in "$SIMNET_LOGS"/*.log; do
    [[ -s $f ]] || continue
    echo "----- $(basename "$f") (last 20 lines)" >&2
    tail -20 "$f" >&2
  done
}

simnet_stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

simnet_cleanup() {
  local status=$?
  ((SIMNET_CLEANED)) && return 0
  SIMNET_CLEANED=1
  trap '' INT TERM HUP # a second Ctrl-C must not cut the cleanup short
  if ((status != 0)) && [[ ${SIMNET_QUIET_LOGS:-0} != 1 ]]; then simnet_dump_logs; fi
  local i ns pid
  for ((i = ${#SIMNET_PIDS[@]} - 1; i >= 0; i--)); do
    simnet_stop_pid "${SIMNET_PIDS[i]}"
  done
  for ns in "${SIMNET_NAMESPACES[@]}"; do
    # Anything a test started in the namespace and left behind.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    # Deleting the namespace removes its TAPs and bridge with it.
    ip netns del "$ns" 2>/dev/null || true
  done
  [[ -n $SIMNET_HOST_PID ]] && simnet_stop_pid "$SIMNET_HOST_PID"
  [[ -n $SIMNET_WORK && -d $SIMNET_WORK ]] && rm -rf "$SIMNET_WORK"
  return "$status"
}

simnet_listening() {
  [[ -n $(ip netns exec "$(simnet_ns "$1")" ss -Hltn "sport = :$2" 2>/dev/null) ]]
}

# simnet_ttcp SRC DST DST_IP MIB OUT: a vif-ttcp TCP transfer of MIB MiB
# from domain SRC to domain DST (0 = dom0) with CRC-32 on both ends.
# Leaves OUT.t.json / OUT.r.json (vif-ttcp --json) and OUT.t.err / OUT.r.err
# (the classic ttcp lines). Returns 0 when both ends agree on bytes and
# checksum, 1 otherwise (and says why).
simnet_ttcp() {
  local src=$1 dst=$2 ip=$3 mib=$4 out=$5 port=${SIMNET_TTCP_PORT:-5001}
  local ttcp
  ttcp=$(simnet_bin vif-ttcp) || simnet_die "missing binary vif-ttcp"
  local limit=$((60 + mib / 4)) # seconds; generous, every wait is bounded
  simnet_exec "$dst" timeout "$((limit + 10))" "$ttcp" -r -s --checksum --json -l 65536 \
    -p "$port" --timeout "$limit" >"$out.r.json" 2>"$out.r.err" &
  local receiver=$!
  if ! simnet_wait_for 10 "vif-ttcp receiver in $(simnet_ns "$dst")" simnet_listening "$dst" "$port"; then
    kill "$receiver" 2>/dev/null
    wait "$receiver" 2>/dev/null
    return 1
  fi
  local tstatus=0 rstatus=0
  simnet_exec "$src" timeout "$limit" "$ttcp" -t -s --checksum --json -l 65536 -n "$((mib * 16))" \
    -p "$port" --timeout "$limit" "$ip" >"$out.t.json" 2>"$out.t.err" || tstatus=$?
  wait "$receiver" || rstatus=$?
  if ((tstatus != 0 || rstatus != 0)); then
    simnet_log "vif-ttcp d$src -> d$dst: transmitter status $tstatus, receiver status $rstatus"
    cat "$out.t.err" "$out.r.err" >&2
    return 1
  fi
  local tsum rsum tbytes rbytes
  tsum=$(jq -r .checksum "$out.t.json")
  rsum=$(jq -r .checksum "$out.r.json")
  tbytes=$(jq -r .bytes "$out.t.json")
  rbytes=$(jq -r .bytes "$out.r.json")
  if [[ $tsum != "$rsum" || $tbytes != "$rbytes" || $tbytes != $((mib * 1048576)) ]]; then
    simnet_log "vif-ttcp d$src -> d$dst: sent $tbytes bytes $tsum, received $rbytes bytes $rsum"
    return 1
  fi
  return 0
}

# simnet_stats_sum JQ_PATH: the sum over every vif and queue of one counter
# in `vifctl stats --json` (e.g. '.switch.forwarded_segments').
simnet_stats_sum() {
  simnet_vifctl stats --json | jq "[.vifs[].queues[] | $1 // 0] | add // 0"
}

# simnet_tap_bytes DOMID: bytes through vif<DOMID>.0 in dom0, both ways.
simnet_tap_bytes() {
  ip -n "$(simnet_ns 0)" -s -j link show dev "vif$1.0" |
    jq '.[0].stats64.rx.bytes + .[0].stats64.tx.bytes'
}
