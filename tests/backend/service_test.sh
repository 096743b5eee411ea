#!/usr/bin/env bash
# vifd (and vif-front) as systemd services, against a vif-sim host:
#   journal         JOURNAL_STREAM naming stderr: every line "<N>[logger] ...",
#                   no timestamp, a failing vif at <3>; a stale JOURNAL_STREAM
#                   keeps the plain format
#   notify          NOTIFY_SOCKET: READY=1 once the control socket answers and
#                   the vif present at start is served, WATCHDOG=1 repeating at
#                   half of WATCHDOG_USEC, STOPPING=1 on SIGTERM
#   xenstored-loss  vif-sim (the xenstored) killed under vifd: one error line,
#                   exit status 1 within a few seconds
#   front-xenstored-loss  the same under a connected vif-front: one error
#                   line, exit status 1, nothing logged after it
#   startup-check   no CAP_NET_ADMIN, no sim host: one line naming both, exit 1
#
#   service_test.sh MODE VIF_SIM VIFD VIFCTL VIF_FRONT
set -euo pipefail
mode=$1
sim=$2
vifd=$3
vifctl=$4
front=$5
dir=$(mktemp -d /tmp/vifd-service-XXXXXX)
sim_pid=""
vifd_pid=""
listener_pid=""
front_pid=""
front_listener=""
cleanup() {
  local pid
  for pid in $front_pid $front_listener $vifd_pid $listener_pid $sim_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  if [[ -s $dir/vifd.err ]]; then
    echo "--- vifd stderr:" >&2
    tail -20 "$dir/vifd.err" >&2
  fi
  exit 1
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

start_sim() {
  "$sim" --dir "$dir/host" >"$dir/sim.log" 2>&1 &
  sim_pid=$!
  wait_for 10 test -S "$dir/host/xenstored.sock" || fail "vif-sim did not start"
  timeout 10 "$sim" --dir "$dir/host" create 3 >/dev/null || fail "vif-sim create 3"
}

# start_vifd [ENV=VALUE...]: vifd in a network namespace of its own (its
# TAPs stay out of the host's), stderr appended to vifd.err.
start_vifd() {
  touch "$dir/vifd.err"
  env "$@" unshare --net "$vifd" --control-socket "$dir/vifd.sock" 2>>"$dir/vifd.err" &
  vifd_pid=$!
}

# stop_vifd: SIGTERM; vifd must exit 0.
stop_vifd() {
  local status=0
  kill -TERM "$vifd_pid"
  wait "$vifd_pid" || status=$?
  vifd_pid=""
  ((status == 0)) || fail "vifd exited $status on SIGTERM"
}

vifctl_run() { timeout 30 "$vifctl" "$@" >/dev/null 2>>"$dir/vifctl.err"; }

export VIF_SIM_DIR=$dir/host VIF_SIM_DOMID=0

case $mode in
  journal)
    start_sim
    touch "$dir/vifd.err"
    stream=$(stat -c '%d:%i' "$dir/vifd.err")
    start_vifd JOURNAL_STREAM="$stream"
    wait_for 20 test -S "$dir/vifd.sock" || fail "vifd did not open its control socket"
    # A bridge that does not exist: the vif fails (Closed, `error` node).
    vifctl_run attach 3 --bridge nosuchbr0 --no-wait || fail "vifctl attach"
    wait_for 20 grep -q "bridge 'nosuchbr0' does not exist" "$dir/vifd.err" ||
      fail "no error about the missing bridge"
    stop_vifd
    grep -q "^<3>\[vifd\] vif3.0: .*bridge 'nosuchbr0' does not exist" "$dir/vifd.err" ||
      fail "the missing bridge is not logged at <3> (error)"
    grep -q '^<6>\[vifd\] ready: serving ' "$dir/vifd.err" || fail "no <6> (info) line"
    ! grep -v '^<[0-7]>' "$dir/vifd.err" >/dev/null || fail "a line without a priority prefix"
    ! grep -qE '^<[0-7]>.*20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9]{2}:' "$dir/vifd.err" ||
      fail "journal lines carry a timestamp of their own"
    # The variable names another file (inherited, not our stream): plain.
    : >"$dir/vifd.err"
    start_vifd JOURNAL_STREAM="${stream%:*}:1"
    wait_for 20 grep -q 'ready: serving' "$dir/vifd.err" || fail "second vifd not ready"
    stop_vifd
    grep -qE '^\[20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:.]+\] \[vifd\] \[info\] ready: serving ' \
      "$dir/vifd.err" || fail "stale JOURNAL_STREAM: not the plain format"
    ! grep -q '^<[0-7]>' "$dir/vifd.err" || fail "stale JOURNAL_STREAM: priority prefixes"
    # --log-format journal forces the prefixes (here on the start-up check's
    # error), plain forces them off.
    VIF_SIM_DIR=$dir/nothing "$vifd" --log-format journal 2>"$dir/forced.err" &&
      fail "vifd started without a sim host"
    grep -q '^<3>\[vifd\] vifd: cannot start, missing: ' "$dir/forced.err" ||
      fail "--log-format journal: $(cat "$dir/forced.err")"
    forced_stream=$(stat -c '%d:%i' "$dir/forced.err")
    VIF_SIM_DIR=$dir/nothing JOURNAL_STREAM=$forced_stream "$vifd" --log-format plain \
      2>>"$dir/forced.err" && fail "vifd started without a sim host"
    grep -qE '^\[20[0-9]{2}-.*\] \[vifd\] \[error\] vifd: cannot start' "$dir/forced.err" ||
      fail "--log-format plain: $(cat "$dir/forced.err")"
    echo "PASS: journal priority prefixes"
    ;;

  notify)
    start_sim
    # A vif present at start: READY comes after the scan that picks it up.
    vifctl_run attach 3 --no-wait || fail "vifctl attach"
    cat >"$dir/listener.py" <<'EOF'
import json, socket, sys, time
path, control, out = sys.argv[1], sys.argv[2], sys.argv[3]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
start = time.monotonic()
with open(out, "w", buffering=1) as log:
    while True:
        message = sock.recv(4096).decode()
        stamp = time.monotonic() - start
        for line in message.split("\n"):
            log.write(f"{stamp:.3f} {line}\n")
        if "READY=1" in message.split("\n"):
            # Right when READY arrives the control socket must answer.
            answer = "none"
            try:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.settimeout(2)
                c.connect(control)
                c.sendall(b'{"command":"stats"}\n')
                answer = json.loads(c.makefile().readline()).get("ok")
            except Exception as e:
                answer = f"error {e}"
            log.write(f"{stamp:.3f} CONTROL={answer}\n")
EOF
    python3 "$dir/listener.py" "$dir/notify.sock" "$dir/vifd.sock" "$dir/notify.log" &
    listener_pid=$!
    wait_for 10 test -S "$dir/notify.sock" || fail "listener did not bind"
    # Pings every 500 ms (half of the watchdog timeout, as sd_watchdog_enabled
    # advises).
    start_vifd NOTIFY_SOCKET="$dir/notify.sock" WATCHDOG_USEC=1000000
    wait_for 20 grep -q '^[0-9.]* READY=1$' "$dir/notify.log" || fail "no READY=1"
    wait_for 10 grep -q 'CONTROL=' "$dir/notify.log" || fail "listener did not ask vifd"
    grep -q 'CONTROL=True' "$dir/notify.log" ||
      fail "READY=1 before the control socket answered: $(grep CONTROL= "$dir/notify.log")"
    grep -q '^[0-9.]* STATUS=serving 1 vif(s) under /local/domain/0/backend/vif$' \
      "$dir/notify.log" || fail "READY without the status of the initial scan"
    sleep 3
    pings=$(grep -c '^[0-9.]* WATCHDOG=1$' "$dir/notify.log" || true)
    ((pings >= 4 && pings <= 12)) || fail "$pings WATCHDOG=1 in ~3 s at 500 ms"
    # No gap as long as the timeout: systemd would have killed vifd. (The
    # sanitizer builds run this too, so the bound is systemd's, not a tighter
    # one that measures the machine.)
    awk '/ WATCHDOG=1$/ { if (last != "" && $1 - last >= 1.0) bad = 1; last = $1 }
         END { exit bad }' "$dir/notify.log" || fail "a WATCHDOG=1 gap as long as WATCHDOG_USEC"
    # A second vif: the status follows (checked once a second).
    vifctl_run attach 3 --devid 1 --no-wait || fail "vifctl attach 3 --devid 1"
    wait_for 10 grep -q '^[0-9.]* STATUS=serving 2 vif(s) under ' "$dir/notify.log" ||
      fail "STATUS did not follow the second vif"
    # vif-front of domain 3: READY once its TAP is up, STOPPING on SIGTERM.
    python3 "$dir/listener.py" "$dir/front-notify.sock" /nonexistent "$dir/front-notify.log" &
    front_listener=$!
    wait_for 10 test -S "$dir/front-notify.sock" || fail "vif-front listener did not bind"
    NOTIFY_SOCKET=$dir/front-notify.sock VIF_SIM_DOMID=3 unshare --net "$front" --devid 0 \
      2>"$dir/front.err" &
    front_pid=$!
    wait_for 20 grep -q '^[0-9.]* READY=1$' "$dir/front-notify.log" ||
      fail "no READY=1 from vif-front: $(cat "$dir/front.err")"
    grep -q '^[0-9.]* STATUS=eth0 for /local/domain/3/device/vif/0$' "$dir/front-notify.log" ||
      fail "vif-front's status: $(cat "$dir/front-notify.log")"
    kill -TERM "$front_pid"
    status=0
    wait "$front_pid" || status=$?
    front_pid=""
    ((status == 0)) || fail "vif-front exited $status on SIGTERM"
    grep -q '^[0-9.]* STOPPING=1$' "$dir/front-notify.log" || fail "no STOPPING=1 from vif-front"
    kill "$front_listener"
    wait "$front_listener" 2>/dev/null || true
    front_listener=""
    stop_vifd
    wait_for 5 grep -q '^[0-9.]* STOPPING=1$' "$dir/notify.log" || fail "no STOPPING=1"
    # Without WATCHDOG_USEC: no pings at all.
    kill "$listener_pid"
    wait "$listener_pid" 2>/dev/null || true
    rm -f "$dir/notify.sock"
    python3 "$dir/listener.py" "$dir/notify.sock" "$dir/vifd.sock" "$dir/notify.log" &
    listener_pid=$!
    wait_for 10 test -S "$dir/notify.sock" || fail "listener did not bind again"
    start_vifd NOTIFY_SOCKET="$dir/notify.sock"
    wait_for 20 grep -q '^[0-9.]* READY=1$' "$dir/notify.log" || fail "no READY=1 (no watchdog)"
    sleep 0.5
    ! grep -q 'WATCHDOG=1' "$dir/notify.log" || fail "WATCHDOG=1 without WATCHDOG_USEC"
    stop_vifd
    echo "PASS: sd_notify readiness, status, watchdog, stopping"
    ;;

  xenstored-loss)
    start_sim
    vifctl_run attach 3 --no-wait || fail "vifctl attach"
    start_vifd
    wait_for 20 grep -q 'ready: serving 1 vif' "$dir/vifd.err" || fail "vifd not ready"
    kill -KILL "$sim_pid"
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
    killed=$SECONDS
    status=0
    wait_for 5 bash -c "! kill -0 $vifd_pid 2>/dev/null" || fail "vifd still running 5 s later"
    wait "$vifd_pid" || status=$?
    vifd_pid=""
    ((status == 1)) || fail "vifd exited $status, expected 1"
    ((SECONDS - killed <= 5)) || fail "vifd took $((SECONDS - killed)) s to exit"
    lost=$(grep -c 'xenstored connection lost' "$dir/vifd.err" || true)
    ((lost == 1)) || fail "$lost 'xenstored connection lost' lines, expected 1"
    grep -q '\[error\] xenstored connection lost (.*): exiting' "$dir/vifd.err" ||
      fail "the loss is not an error line"
    grep -q 'xenstored connection lost (.*connection to xenstored closed)' "$dir/vifd.err" ||
      fail "the line does not say the connection closed"
    # Nothing after it: the vif and its watches went quietly.
    [[ $(tail -1 "$dir/vifd.err") == *"xenstored connection lost"* ]] ||
      fail "lines after the loss: $(sed -n '/connection lost/,$p' "$dir/vifd.err")"
    ! grep -q 'terminate called\|Aborted\|critical' "$dir/vifd.err" || fail "unclean exit"
    echo "PASS: xenstored loss ends vifd with status 1"
    ;;

  front-xenstored-loss)
    start_sim
    start_vifd
    vifctl_run attach 3 --no-wait || fail "vifctl attach"
    wait_for 20 grep -q 'ready: serving' "$dir/vifd.err" || fail "vifd not ready"
    VIF_SIM_DOMID=3 unshare --net "$front" --devid 0 2>"$dir/front.err" &
    front_pid=$!
    wait_for 20 grep -q 'eth0 carrier on' "$dir/front.err" ||
      fail "vif-front did not connect: $(cat "$dir/front.err")"
    kill -KILL "$sim_pid"
    wait "$sim_pid" 2>/dev/null || true
    sim_pid=""
    killed=$SECONDS
    wait_for 5 bash -c "! kill -0 $front_pid 2>/dev/null" || fail "vif-front still running 5 s later"
    status=0
    wait "$front_pid" || status=$?
    front_pid=""
    ((status == 1)) || fail "vif-front exited $status, expected 1: $(cat "$dir/front.err")"
    ((SECONDS - killed <= 5)) || fail "vif-front took $((SECONDS - killed)) s to exit"
    lost=$(grep -c 'xenstored connection lost' "$dir/front.err" || true)
    ((lost == 1)) || fail "$lost 'xenstored connection lost' lines from vif-front, expected 1"
    grep -q '\[error\] vif-front: xenstored connection lost (.*connection to xenstored closed): exiting' \
      "$dir/front.err" || fail "not one error line saying the connection closed: $(cat "$dir/front.err")"
    [[ $(tail -1 "$dir/front.err") == *"xenstored connection lost"* ]] ||
      fail "lines after the loss: $(sed -n '/connection lost/,$p' "$dir/front.err")"
    ! grep -q 'terminate called\|Aborted\|critical' "$dir/front.err" || fail "unclean exit"
    echo "PASS: xenstored loss ends vif-front with status 1"
    ;;

  startup-check)
    mkdir -p "$dir/empty"
    status=0
    # No CAP_NET_ADMIN (gone from the bounding set, so exec does not grant
    # it to root), and a sim directory without a host in it.
    VIF_SIM_DIR=$dir/empty setpriv --inh-caps=-all --bounding-set=-net_admin \
      "$vifd" --control-socket "$dir/vifd.sock" >/dev/null 2>"$dir/vifd.err" || status=$?
    ((status == 1)) || fail "vifd exited $status, expected 1"
    (($(wc -l <"$dir/vifd.err") == 1)) || fail "more than one line: $(cat "$dir/vifd.err")"
    grep -q "vifd: cannot start, missing: CAP_NET_ADMIN (not in the effective set); .*$dir/empty/xenstored.sock (No such file or directory)" \
      "$dir/vifd.err" || fail "the line does not name both: $(cat "$dir/vifd.err")"
    # The sim host directory itself missing.
    status=0
    VIF_SIM_DIR=$dir/nothing "$vifd" --control-socket "$dir/vifd.sock" >/dev/null \
      2>"$dir/vifd.err" || status=$?
    ((status == 1)) || fail "vifd without a sim dir exited $status"
    (($(wc -l <"$dir/vifd.err") == 1)) || fail "more than one line: $(cat "$dir/vifd.err")"
    grep -q "missing: the sim host directory: $dir/nothing (No such file or directory)" \
      "$dir/vifd.err" || fail "no sim dir: $(cat "$dir/vifd.err")"
    ! grep -q CAP_NET_ADMIN "$dir/vifd.err" || fail "CAP_NET_ADMIN reported though held"
    # On a host without Xen's devices, --platform xen names each of them.
    if [[ ! -e /dev/xen/gntdev && ! -e /dev/xen/evtchn ]]; then
      status=0
      XENSTORED_PATH=$dir/no-xenstored "$vifd" --platform xen >/dev/null 2>"$dir/vifd.err" ||
        status=$?
      ((status == 1)) || fail "vifd --platform xen exited $status"
      (($(wc -l <"$dir/vifd.err") == 1)) || fail "more than one line: $(cat "$dir/vifd.err")"
      grep -q "missing: /dev/xen/gntdev (No such file or directory); /dev/xen/evtchn (No such file or directory); xenstore: $dir/no-xenstored (No such file or directory), /dev/xen/xenbus (" \
        "$dir/vifd.err" || fail "xen: $(cat "$dir/vifd.err")"
    fi
    # vif-front: the same check, its own needs.
    status=0
    VIF_SIM_DIR=$dir/empty VIF_SIM_DOMID=3 setpriv --inh-caps=-all --bounding-set=-net_admin \
      "$front" >/dev/null 2>"$dir/front.err" || status=$?
    ((status == 1)) || fail "vif-front exited $status, expected 1"
    (($(wc -l <"$dir/front.err") == 1)) || fail "vif-front: $(cat "$dir/front.err")"
    grep -q "vif-front: cannot start, missing: CAP_NET_ADMIN (not in the effective set); the sim xenstored socket: $dir/empty/" \
      "$dir/front.err" || fail "vif-front's line: $(cat "$dir/front.err")"
    echo "PASS: start-up checks name what is missing on one line"
    ;;

  *)
    fail "unknown mode $mode"
    ;;
esac
