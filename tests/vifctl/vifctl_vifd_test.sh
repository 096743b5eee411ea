#!/usr/bin/env bash
# vifctl against a running vifd on a vif-sim host: attach returns at once
# with the backend's error, list/show report the error and a stopped vifd,
# domains by name, detach by MAC, --script by name, and domains the
# hypervisor does not have refused before anything is written.
#   vifctl_vifd_test.sh BUILD_DIR
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/lib/simnet.sh
source "$repo/scripts/lib/simnet.sh"
simnet_init vifctl "$1"
simnet_require_binaries vif-sim vifctl vifd
simnet_start_host
simnet_start_dom0
sim=$(simnet_bin vif-sim)
out=$SIMNET_WORK/out
err=$SIMNET_WORK/err

fail() {
  echo "FAIL: $*" >&2
  echo "--- stdout" >&2
  cat "$out" >&2 || true
  echo "--- stderr" >&2
  cat "$err" >&2 || true
  exit 1
}
create() { timeout 30 "$sim" --dir "$SIMNET_HOST" create "$1" --name "$2" >/dev/null; }
# run STATUS vifctl-args...: exits STATUS; output in $out and $err, the time
# it took in $took_ms.
run() {
  local expected=$1 status=0 start
  shift
  start=$(date +%s%N)
  simnet_vifctl "$@" >"$out" 2>"$err" || status=$?
  took_ms=$((($(date +%s%N) - start) / 1000000))
  ((status == expected)) || fail "vifctl $* exited $status, expected $expected"
}
tap_exists() { ip -n "$(simnet_ns 0)" link show "$1" >/dev/null 2>&1; }

create 3 web1
create 4 twin
create 5 twin

# A bridge that does not exist: vifd writes `error` and Closed within
# milliseconds, and attach says so at once instead of after libxl's 10 s.
run 1 attach web1 --bridge nosuchbr
((took_ms < 5000)) || fail "attach took ${took_ms} ms to report the refusal"
grep -q "the backend refused it: bridge: bridge 'nosuchbr' does not exist (state 6 (Closed))" "$err" ||
  fail "attach does not print the backend's error"
if grep -q "did not reach InitWait" "$err"; then fail "attach still waited for InitWait"; fi
echo "attach refused in ${took_ms} ms"

run 0 list
grep -Eq "^3/0 +Closed .* serving +bridge: bridge 'nosuchbr' does not exist" "$out" ||
  fail "list does not show the error"
run 0 show web1/0
grep -q "^  error    bridge: bridge 'nosuchbr' does not exist" "$out" || fail "show omits the error"
run 0 detach web1/0

# Names as xl takes them; a name of two domains or of none is a usage error.
run 2 attach twin --no-wait
grep -q '"twin" names 2 domains (4, 5)' "$err" || fail "ambiguous name not named"
run 2 attach nosuch --no-wait
grep -q 'no domain is named "nosuch"' "$err" || fail "unknown name not named"

# --script NAME, looked up in the script directory; detach by MAC.
scripts=$SIMNET_WORK/scripts
mkdir -p "$scripts"
# shellcheck disable=SC2016 # $1 and $vif are the script's, not ours
printf '#!/bin/sh\necho "$1 $vif" >>%s/calls\n' "$SIMNET_WORK" >"$scripts/vif-test"
chmod +x "$scripts/vif-test"
VIFCTL_SCRIPT_DIR=$scripts run 0 attach web1 --bridge xenbr0 --mac 00:16:3e:00:03:01 --script vif-test
[[ $(simnet_xs_read /local/domain/0/backend/vif/3/0/script) == "$scripts/vif-test" ]] ||
  fail "the script's path is not recorded"
VIFCTL_SCRIPT_DIR=$scripts run 2 attach web1 --script vif-missing --no-wait
grep -q "$scripts/vif-missing" "$err" || fail "--script error does not name the path looked at"
tap_exists vif3.0 || fail "no TAP for 3/0"
run 0 detach web1 00:16:3E:00:03:01
[[ $(cat "$SIMNET_WORK/calls") == $'online vif3.0\noffline vif3.0' ]] || fail "script calls: $(cat "$SIMNET_WORK/calls")"
[[ -z $(simnet_xs_read /local/domain/0/backend/vif/3/0/state) ]] || fail "detach by MAC left 3/0"
simnet_wait_for 10 "vif3.0 removed" bash -c "! ip -n $(simnet_ns 0) link show vif3.0 >/dev/null 2>&1" ||
  fail "TAP of 3/0 left behind"

# A backend domain the hypervisor does not have: refused, nothing written,
# no TAP.
run 1 attach web1 --backend-domid 7
grep -q "backend domain 7 does not exist" "$err" || fail "non-existent backend not named"
run 1 attach 9
grep -q "domain 9 does not exist" "$err" || fail "non-existent guest not named"
for path in /local/domain/7 /local/domain/9 /local/domain/0/backend/vif/3 \
  /local/domain/3/device/vif/0 /libxl/3/device/vif/0; do
  if XENSTORED_PATH=$SIMNET_HOST/xenstored.sock timeout 5 xenstore-exists "$path" 2>/dev/null; then
    fail "$path was written"
  fi
done
if tap_exists vif3.0; then fail "a TAP was made for a refused attach"; fi

# vifd stops: list and show say so instead of showing Connected.
run 0 attach web1 --bridge xenbr0 --mac 00:16:3e:00:03:02
run 0 list
grep -Eq "^3/0 +InitWait .* serving" "$out" || fail "list does not show vifd serving 3/0"
simnet_stop_pid "${SIMNET_PIDS[0]}"
run 0 list
grep -q "vifd is not running" "$err" || fail "list does not flag the stopped vifd"
grep -Eq "^3/0 .* not running" "$out" || fail "list's vifd column does not say not running"
run 0 list --json
[[ $(jq -r '.[0].vifd' "$out") == "not running" ]] || fail "list --json vifd"
run 0 show web1/0
grep -q "vifd     NOT RUNNING" "$out" || fail "show does not flag the stopped vifd"
echo "PASS: vifctl with vifd"
