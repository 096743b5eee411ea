#!/usr/bin/env bash
# Two simnet runs of the same name at once (two demos, or a test while a
# demo runs) each get namespaces of their own, and the end of one leaves
# the other's alone: before the per-run tag, the second run deleted the
# first's vsim-<name>-d0 on start.
set -euo pipefail
build=$1
lib="$(cd "$(dirname "$0")/../.." && pwd)/scripts/lib/simnet.sh"
sync=$(mktemp -d)
trap 'touch "$sync/go-a" "$sync/go-b"; wait; rm -rf "$sync"' EXIT

# run LETTER: a simnet run named "same" with namespaces 0 and va, which
# reports them in $sync/LETTER and ends when $sync/go-LETTER appears.
run() {
  (
    # shellcheck source=scripts/lib/simnet.sh
    source "$lib"
    simnet_init same "$build"
    simnet_add_netns 0
    simnet_add_netns va
    echo "$(simnet_ns 0) $(simnet_ns va)" >"$sync/$1.tmp"
    mv "$sync/$1.tmp" "$sync/$1"
    timeout 60 bash -c "until [[ -e $sync/go-$1 ]]; do sleep 0.05; done"
  )
}
wait_for() { timeout 30 bash -c "until [[ -e $1 ]]; do sleep 0.05; done"; }
exists() { [[ -e /run/netns/$1 ]]; }

run a &
wait_for "$sync/a"
run b &
wait_for "$sync/b"
read -r a0 ava <"$sync/a"
read -r b0 bva <"$sync/b"
echo "run a: $a0 $ava; run b: $b0 $bva"
[[ $a0 != "$b0" && $ava != "$bva" ]] || { echo "FAIL: both runs named their namespaces alike"; exit 1; }
for ns in "$a0" "$ava" "$b0" "$bva"; do
  exists "$ns" || { echo "FAIL: $ns is gone while both runs go on"; exit 1; }
done
touch "$sync/go-b"
timeout 30 bash -c "while [[ -e /run/netns/$b0 || -e /run/netns/$bva ]]; do sleep 0.05; done" ||
  { echo "FAIL: run b's namespaces outlived it"; exit 1; }
for ns in "$a0" "$ava"; do
  exists "$ns" || { echo "FAIL: the end of run b took run a's $ns"; exit 1; }
done
touch "$sync/go-a"
wait
for ns in "$a0" "$ava"; do
  ! exists "$ns" || { echo "FAIL: run a's $ns outlived it"; exit 1; }
done
echo "PASS: two runs named 'same' kept their own namespaces and cleaned up only those"
