#!/usr/bin/env bash
# Drives the vif-ttcp binary the way a user does: separate receiver and
# transmitter processes on loopback. Usage: ttcp_cli_test.sh path/to/vif-ttcp
# Every receiver has --timeout and every command runs under timeout(1), so a
# broken build fails the test instead of hanging it.
set -euo pipefail

ttcp=${1:?usage: $0 path/to/vif-ttcp}
work=$(mktemp -d /tmp/vif-ttcp-test.XXXXXX)
receiver_pid=
cleanup() {
  if [[ -n $receiver_pid ]]; then kill "$receiver_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for log in "$work"/*.err; do
    [[ -e $log ]] && { echo "--- $log" >&2; cat "$log" >&2; }
  done
  exit 1
}

# start_receiver NAME ARGS...: runs "vif-ttcp -r -p 0 ARGS" in the background
# with stdout in $work/NAME.out and stderr in $work/NAME.err; sets $port.
start_receiver() {
  local name=$1
  shift
  timeout 120 "$ttcp" -r -p 0 --timeout 20 "$@" >"$work/$name.out" 2>"$work/$name.err" &
  receiver_pid=$!
  port=
  for _ in $(seq 200); do
    # The background job creates NAME.err itself: it may not exist yet.
    port=$(sed -n 's/^ttcp-r: listening on port \([0-9]*\)$/\1/p' "$work/$name.err" 2>/dev/null || true)
    [[ -n $port ]] && return 0
    kill -0 "$receiver_pid" 2>/dev/null || fail "$name: receiver exited early"
    sleep 0.05
  done
  fail "$name: receiver never reported its port"
}

wait_receiver() {
  local name=$1
  wait "$receiver_pid" || fail "$name: receiver exited with $?"
  receiver_pid=
}

checksum_text() { sed -n "s/^ttcp-[tr]: \(crc32 .*\)$/\1/p" "$1"; }

# 1. stdin -> network -> stdout moves a file byte for byte (odd buffer size,
#    so reads and writes do not line up with the file's length).
head -c 5000017 /dev/urandom >"$work/input.bin"
start_receiver copy -l 3000 --checksum
timeout 60 "$ttcp" -t -l 7777 -p "$port" --checksum 127.0.0.1 \
  <"$work/input.bin" 2>"$work/copy-t.err" || fail "copy: transmitter failed"
wait_receiver copy
cmp "$work/input.bin" "$work/copy.out" || fail "copy: output differs from input"
grep -q '^ttcp-r: 5000017 bytes in .* real seconds = .* KB/sec +++$' "$work/copy.err" ||
  fail "copy: receiver byte count line"
[[ $(checksum_text "$work/copy.err") == "$(checksum_text "$work/copy-t.err")" ]] ||
  fail "copy: checksums differ"
echo "ok: stdin to stdout file copy"

# 2. 64 MiB TCP in sink mode, checksums and byte counts compared via --json.
start_receiver tcp -s --checksum --json
timeout 60 "$ttcp" -t -s -n 8192 -p "$port" --checksum --json 127.0.0.1 \
  >"$work/tcp-t.out" 2>"$work/tcp-t.err" || fail "tcp: transmitter failed"
wait_receiver tcp
python3 - "$work/tcp-t.out" "$work/tcp.out" <<'PY' || fail "tcp: json reports disagree"
import json, sys
sent, received = (json.load(open(path)) for path in sys.argv[1:3])
assert sent["bytes"] == received["bytes"] == 64 * 1024 * 1024, (sent, received)
assert sent["checksum"] == received["checksum"] and sent["checksum"].startswith("crc32:")
assert sent["role"] == "transmit" and received["role"] == "receive"
PY
grep -q '^ttcp-t: buflen=8192, nbuf=8192, align=16384/0, port=[0-9]*  tcp  -> 127.0.0.1$' \
  "$work/tcp-t.err" || fail "tcp: header line"
grep -q '^ttcp-t: [0-9]* I/O calls, msec/call = [0-9.]*, calls/sec = [0-9.]*$' "$work/tcp-t.err" ||
  fail "tcp: calls line"
grep -q '^ttcp-t: [0-9.]*user [0-9.]*sys [0-9:]*real [0-9]*% ' "$work/tcp-t.err" ||
  fail "tcp: rusage line"
grep -q '^ttcp-r: accept from 127.0.0.1$' "$work/tcp.err" || fail "tcp: accept line"
echo "ok: 64 MiB TCP sink run, checksums match"

# 3. UDP: small enough for the loopback receive buffer, so nothing is lost.
start_receiver udp -u -s -l 1024 -b 1048576 --checksum
timeout 60 "$ttcp" -t -u -s -l 1024 -n 64 -p "$port" --checksum 127.0.0.1 \
  2>"$work/udp-t.err" || fail "udp: transmitter failed"
wait_receiver udp
grep -q '^ttcp-r: 65536 bytes in ' "$work/udp.err" || fail "udp: receiver byte count"
[[ $(checksum_text "$work/udp.err") == "$(checksum_text "$work/udp-t.err")" ]] ||
  fail "udp: checksums differ"
echo "ok: UDP sink run ended at the end sentinel"

# 4. Errors are reported like ttcp's err() with a non-zero exit status.
closed_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if timeout 30 "$ttcp" -t -s -p "$closed_port" --timeout 5 127.0.0.1 2>"$work/refused.err"; then
  fail "refused: transmitter succeeded"
fi
grep -q '^ttcp-t: connect: Connection refused$' "$work/refused.err" || fail "refused: message"
grep -q '^errno=111$' "$work/refused.err" || fail "refused: errno line"

if timeout 30 "$ttcp" -r -s -p 0 --timeout 0.2 2>"$work/timeout.err"; then
  fail "timeout: receiver succeeded"
fi
grep -q '^ttcp-r: accept: Connection timed out$' "$work/timeout.err" || fail "timeout: message"

status=0
"$ttcp" -t -l nonsense 127.0.0.1 2>"$work/usage.err" || status=$?
[[ $status == 2 ]] || fail "usage: exit status $status, expected 2"
grep -q "^vif-ttcp: -l expects a whole number, got 'nonsense'$" "$work/usage.err" ||
  fail "usage: message"
echo "ok: errors reported like ttcp"
