#!/usr/bin/env bash
# scripts/bench on a short matrix: every path with 64-byte and 64 KiB GSO
# frames on 1 queue, ping-pong and the three baselines. Checks that the JSON
# holds sane and consistent numbers; it judges no speed.
set -euo pipefail
build_dir=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp -d /tmp/bench-quick-XXXXXX)
trap 'rm -rf "$out"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

timeout 100 "$repo/scripts/bench" --no-build --build-dir "$build_dir" --out "$out" -- \
  --sizes 64,64k --queues 1 --seconds 0.3 --pings 50 --memcpy-mib 64 >"$out/stdout" 2>"$out/stderr" ||
  {
    tail -30 "$out/stderr" >&2
    fail "scripts/bench exited with $?"
  }
json=$out/bench.json
[[ -s $json ]] || fail "no bench.json"
[[ -s $out/table.txt ]] || fail "no table.txt"
grep -q "^domu-domu" "$out/table.txt" || fail "the table has no domu-domu row"
if command -v gnuplot >/dev/null; then
  [[ -s $out/bench.png ]] || fail "gnuplot is installed but no bench.png was written"
fi

check() {
  local what=$1 filter=$2
  jq -e "$filter" "$json" >/dev/null || {
    jq . "$json" >&2
    fail "$what"
  }
}
check "six cells (3 paths x 2 sizes), none failed" \
  '(.cells | length) == 6 and all(.cells[]; .error | not)'
check "every cell received frames, at most as many as were sent" \
  'all(.cells[]; .received_packets > 0 and .received_total <= .sent_packets and .received_packets <= .received_total)'
check "rates follow from packets and bytes over the window" \
  'all(.cells[]; (.mpps - .received_packets / .seconds / 1e6 | fabs) < 1e-6 and (.gbit_per_sec - .received_bytes * 8 / .seconds / 1e9 | fabs) < 1e-6)'
check "64 KiB frames travelled as GSO frames of 65535 bytes" \
  'all(.cells[] | select(.frame == 65535); .gso and .received_bytes == .received_packets * 65535)'
check "vifd's counters and CPU time were read: copy calls, segments per call >= 1, CPU seconds" \
  'all(.cells[]; .vifd.grant_copy_calls > 0 and .segments_per_call >= 1 and .vifd.cpu_seconds != null and .cpu_seconds_per_mpacket != null)'
check "ping-pong on the smallest frame of each path, p50 <= p99, nothing lost" \
  'all(.cells[] | select(.frame == 64); .latency.samples == 50 and .latency.lost == 0 and .latency.p50_us > 0 and .latency.p50_us <= .latency.p99_us)'
check "no latency on the other sizes" 'all(.cells[] | select(.frame != 64); .latency == null)'
check "memcpy, spsc and veth baselines at both sizes, all moving frames" \
  '([.baselines[] | select(.mpps > 0 and .gbit_per_sec > 0) | .name] | sort) == ["memcpy", "memcpy", "spsc", "spsc", "veth", "veth"]'
check "targets reported with a verdict each" '(.targets | length) == 4 and all(.targets[]; .detail != "")'
echo "PASS: vif-bench quick run: $(jq -r '[.cells[] | "\(.path) \(.frame): \(.mpps * 1000 | round / 1000) Mpps"] | join(", ")' "$json")"
