# shellcheck shell=bash
# Shared set-up of the namespace end-to-end tests: a simulated host with
# vifd in dom0's namespace and domUs 1 and 2 attached to xenbr0.
#   source e2e_lib.sh TAG BUILD_DIR
set -euo pipefail
e2e_tag=$1
e2e_build=$2
e2e_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/simnet.sh
source "$e2e_repo/scripts/lib/simnet.sh"

e2e_fail() {
  echo "FAIL: $*" >&2
  exit 1
}

e2e_pass() { echo "PASS: $*"; }

# e2e_host_with_domus [VIFD_ARGS...]
e2e_host_with_domus() {
  simnet_init "$e2e_tag" "$e2e_build"
  simnet_require_binaries vif-sim vifctl vifd vif-front vif-ttcp
  simnet_start_host
  simnet_start_dom0 "$@"
  simnet_add_domu 1
  simnet_add_domu 2
}

e2e_vifd_alive() { kill -0 "${SIMNET_PIDS[0]}" 2>/dev/null; }

# e2e_ping FROM_DOMID TO_IP: three echoes, each bounded.
e2e_ping() {
  simnet_exec "$1" timeout 30 ping -n -c 3 -i 0.2 -W 5 "$2" >/dev/null ||
    e2e_fail "ping from domain $1 to $2"
}

# e2e_vifd_answers: vifd's control socket answers (a socket file alone may
# be left by a vifd that was killed).
e2e_vifd_answers() { simnet_vifctl list >/dev/null 2>&1; }

# e2e_restart_vifd LOGNAME [VIFD_ARGS...]: starts a new vifd in dom0 (the
# previous one is gone) and waits until it answers; its pid is
# SIMNET_LAST_PID.
e2e_restart_vifd() {
  local log=$1
  shift
  simnet_spawn 0 "$log" "$(simnet_bin vifd)" "$@"
  simnet_wait_for "$SIMNET_WAIT" "the new vifd to answer" e2e_vifd_answers ||
    e2e_fail "the new vifd did not start ($(tail -5 "$SIMNET_LOGS/$log.log"))"
}

# e2e_frontend_keys DOMID: the frontend's state and connection keys of vif
# DOMID/0 on one line; the same line later means no reconnect happened.
e2e_frontend_keys() {
  local dir=/local/domain/$1/device/vif/0 key line=""
  for key in state tx-ring-ref rx-ring-ref event-channel-tx event-channel-rx event-channel; do
    line+="$key=$(simnet_xs_read "$dir/$key") "
  done
  echo "$line"
}

# e2e_longest_stall IPERF3_JSON: the longest run of consecutive report
# intervals (iperf3 -i) that each moved less than a tenth of the median
# interval, in seconds with two decimals (0 when none did).
e2e_longest_stall() {
  jq -r '[.intervals[].sum | {s: .seconds, b: .bytes}] as $all |
    ($all | map(.b) | sort | .[length / 2 | floor]) as $median |
    reduce $all[] as $i ({run: 0, max: 0};
      if $i.b * 10 < $median then .run += $i.s | .max = ([.max, .run] | max) else .run = 0 end) |
    .max * 100 | round / 100' "$1"
}

# e2e_iperf3_ok IPERF3_JSON WHAT: the client finished without error and
# moved data.
e2e_iperf3_ok() {
  local error bytes
  error=$(jq -r '.error // empty' "$1" 2>/dev/null) || e2e_fail "$2: no iperf3 report"
  [[ -z $error ]] || e2e_fail "$2: iperf3: $error"
  bytes=$(jq '.end.sum_received.bytes // 0' "$1")
  ((bytes > 0)) || e2e_fail "$2: nothing received"
  echo "$2: $bytes bytes, $(jq '.end.sum_received.bits_per_second | floor' "$1") bit/s," \
    "longest stall $(e2e_longest_stall "$1") s"
}
