#!/bin/bash
# e2e-xdp-count on a veth pair between two namespaces: the program attaches
# in driver mode, counts the frames the interface receives, and detaches.
set -euo pipefail
tool=$1
ns=xdpc-$$
work=$(mktemp -d)
cleanup() {
  ip netns del "$ns-a" 2>/dev/null || true
  ip netns del "$ns-b" 2>/dev/null || true
  umount "$work/bpf" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns-a"
ip netns add "$ns-b"
ip link add xdpc-a netns "$ns-a" type veth peer name xdpc-b netns "$ns-b"
ip -n "$ns-a" addr add 10.77.0.1/24 dev xdpc-a
ip -n "$ns-b" addr add 10.77.0.2/24 dev xdpc-b
ip -n "$ns-a" link set xdpc-a up
ip -n "$ns-b" link set xdpc-b up
mkdir "$work/bpf"
mount -t bpf bpf "$work/bpf"

ip netns exec "$ns-b" "$tool" attach xdpc-b "$work/bpf/count" | tee "$work/attach.out"
grep -q "attached XDP program id [1-9]" "$work/attach.out"
ip -n "$ns-b" link show xdpc-b | grep -q "prog/xdp id"
before=$("$tool" read "$work/bpf/count")
ip netns exec "$ns-a" ping -c 5 -i 0.2 -W 2 10.77.0.2 >/dev/null
after=$("$tool" read "$work/bpf/count")
echo "frames seen by the program: $before before the pings, $after after"
# Five echo requests at least (and the ARP exchange).
((after >= before + 5)) || { echo "FAIL: the program counted $((after - before)) frames for 5 pings"; exit 1; }
ip netns exec "$ns-b" "$tool" detach xdpc-b
if ip -n "$ns-b" link show xdpc-b | grep -q "prog/xdp id"; then
  echo "FAIL: still attached after detach"
  exit 1
fi
# A missing interface is an error naming it.
if out=$("$tool" attach no-such-if0 "$work/bpf/x" 2>&1); then
  echo "FAIL: attach to a missing interface succeeded"
  exit 1
fi
grep -q "no-such-if0" <<<"$out" || { echo "FAIL: error does not name the interface: $out"; exit 1; }
echo "PASS"
