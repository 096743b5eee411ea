#!/bin/bash
# vif-sim against Debian's real xenstore clients (xenstore-utils over
# libxenstore, pointed at the simulator with XENSTORED_PATH): the tree the
# project's own client writes, reads/writes/ls/rm/chmod/list, watches, the
# @introduceDomain/@releaseDomain special watches, and a domain socket
# treated as that domain.
set -u
VIF_SIM=${1:?usage: $0 path/to/vif-sim}

DIR=$(mktemp -d /tmp/vif-sim-test-XXXXXX)
SIM_PID=""
WATCH_PIDS=()
cleanup() {
  for pid in "${WATCH_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$SIM_PID" ]; then
    kill -TERM "$SIM_PID" 2>/dev/null
    wait "$SIM_PID" 2>/dev/null
  fi
  rm -rf "$DIR"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Polls for a condition; the bound only keeps a broken server from hanging
# the test, it asserts nothing about speed.
wait_for() {
  local i
  for i in $(seq 1 200); do
    if eval "$1"; then return 0; fi
    sleep 0.05
  done
  fail "timed out waiting for: $1"
}

export XENSTORED_PATH="$DIR/xenstored.sock"

"$VIF_SIM" --dir "$DIR" >"$DIR.log" 2>&1 &
SIM_PID=$!
wait_for "grep -q 'ready, XENSTORED_PATH=' '$DIR.log'"
[ -S "$XENSTORED_PATH" ] || fail "no socket at $XENSTORED_PATH"
rm -f "$DIR.log"

# A second host in the same directory is refused.
if "$VIF_SIM" --dir "$DIR" >/dev/null 2>"$DIR/err"; then fail "second host started"; fi
grep -q "already running" "$DIR/err" || fail "second host: unclear error: $(cat "$DIR/err")"

# The project's client (vif-sim create) writes the domain tree.
"$VIF_SIM" --dir "$DIR" create 5 --name guest5 >/dev/null || fail "create 5"
[ "$(xenstore-read /local/domain/5/name)" = guest5 ] || fail "name of domain 5"
[ "$(xenstore-read /local/domain/5/domid)" = 5 ] || fail "domid of domain 5"
xenstore-ls /local/domain/5 | grep -q '^device = ""' || fail "xenstore-ls lacks device"
xenstore-list /local/domain/5 | grep -qx data || fail "xenstore-list lacks data"
xenstore-ls -p /local/domain/5 | grep '^name' | grep -q '(n0,r5)' || fail "perms of name"

# Debian's clients against the simulator.
xenstore-write /test/a 1 /test/b 2 || fail "xenstore-write"
[ "$(xenstore-read /test/a)" = 1 ] || fail "xenstore-read /test/a"
xenstore-ls /test | grep -q '^b = "2"' || fail "xenstore-ls /test"
xenstore-chmod /test/a r0 w5 || fail "xenstore-chmod"
xenstore-ls -p /test | grep '^a' | grep -q '(r0,w5)' || fail "chmod not visible"
xenstore-rm /test/b || fail "xenstore-rm"
if xenstore-read /test/b 2>/dev/null; then fail "/test/b survived rm"; fi
"$VIF_SIM" --dir "$DIR" list | grep -q guest5 || fail "vif-sim list"
"$VIF_SIM" --dir "$DIR" stats 5 --json | grep -q '"grant_copy_calls"' || fail "vif-sim stats"

# A watch: the initial event, then one for a child write.
xenstore-watch -n 2 /test/w >"$DIR/watch.out" 2>&1 &
WATCH_PIDS+=($!)
wait_for "grep -qx /test/w '$DIR/watch.out'"
xenstore-write /test/w/x 1
wait "${WATCH_PIDS[-1]}" || fail "xenstore-watch failed: $(cat "$DIR/watch.out")"
grep -qx /test/w/x "$DIR/watch.out" || fail "no event for /test/w/x: $(cat "$DIR/watch.out")"

# The domain socket is domain 5: its home is relative, dom0's nodes are closed.
DOM5="$DIR/xs/5.sock"
[ "$(XENSTORED_PATH=$DOM5 xenstore-read name)" = guest5 ] || fail "domain 5 reads its name"
if XENSTORED_PATH=$DOM5 xenstore-read /local/domain/0/name 2>/dev/null; then
  fail "domain 5 read dom0's node"
fi
if XENSTORED_PATH=$DOM5 xenstore-write /test/c 1 2>/dev/null; then fail "domain 5 wrote /test"; fi
XENSTORED_PATH=$DOM5 xenstore-write /test/a from5 || fail "domain 5 writes with its w5 entry"
XENSTORED_PATH=$DOM5 xenstore-write device/vif/0/state 1 || fail "domain 5 writes its device dir"
xenstore-ls -p /local/domain/5/device | grep '^ *state' | grep -q '(n5)' || fail "owner of a domain 5 node"

# Special watches fire for create and destroy.
xenstore-watch -n 2 @introduceDomain >"$DIR/in.out" 2>&1 &
WATCH_PIDS+=($!)
xenstore-watch -n 2 @releaseDomain >"$DIR/out.out" 2>&1 &
WATCH_PIDS+=($!)
wait_for "grep -q @introduceDomain '$DIR/in.out' && grep -q @releaseDomain '$DIR/out.out'"
"$VIF_SIM" --dir "$DIR" create 6 >/dev/null || fail "create 6"
wait "${WATCH_PIDS[-2]}" || fail "@introduceDomain watch: $(cat "$DIR/in.out")"
[ "$(grep -c @introduceDomain "$DIR/in.out")" = 2 ] || fail "@introduceDomain did not fire"
xenstore-read /local/domain/6/name >/dev/null || fail "/local/domain/6 missing"
"$VIF_SIM" --dir "$DIR" destroy 6 >/dev/null || fail "destroy 6"
wait "${WATCH_PIDS[-1]}" || fail "@releaseDomain watch: $(cat "$DIR/out.out")"
[ "$(grep -c @releaseDomain "$DIR/out.out")" = 2 ] || fail "@releaseDomain did not fire"
if xenstore-read /local/domain/6/name 2>/dev/null; then fail "/local/domain/6 survived destroy"; fi
[ ! -e "$DIR/xs/6.sock" ] || fail "domain 6 socket survived destroy"

# Errors name the culprit and exit non-zero.
if "$VIF_SIM" --dir "$DIR" create 5 >/dev/null 2>"$DIR/err"; then fail "created domain 5 twice"; fi
grep -q "domain 5" "$DIR/err" || fail "duplicate create: unclear error: $(cat "$DIR/err")"
if "$VIF_SIM" --dir "$DIR" destroy 99 >/dev/null 2>"$DIR/err"; then fail "destroyed a missing domain"; fi
grep -q "domain 99" "$DIR/err" || fail "missing destroy: unclear error: $(cat "$DIR/err")"
if "$VIF_SIM" --dir "$DIR/nohost" list >/dev/null 2>"$DIR/err"; then fail "list without a host"; fi
grep -q "no vif-sim host" "$DIR/err" || fail "missing host: unclear error: $(cat "$DIR/err")"

# SIGTERM ends the host cleanly and removes its state.
kill -TERM "$SIM_PID"
wait "$SIM_PID" || fail "vif-sim exited with $?"
SIM_PID=""
[ ! -e "$XENSTORED_PATH" ] || fail "socket left after SIGTERM"
echo "vif_sim_real_clients: all checks passed"
