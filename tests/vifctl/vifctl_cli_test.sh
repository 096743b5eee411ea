#!/usr/bin/env bash
# The vifctl executable against a vif-sim host: platform selection from
# VIF_SIM_DIR, exit statuses (2 for a bad value, 1 at run time), errors
# naming the argument, --no-wait, detach.
#   vifctl_cli_test.sh VIF_SIM VIFCTL
set -euo pipefail
sim=$1
vifctl=$2
dir=$(mktemp -d /tmp/vifctl-cli-XXXXXX)
server=""
cleanup() {
  [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$sim" --dir "$dir/host" >"$dir/sim.log" 2>&1 &
server=$!
for _ in $(seq 100); do [[ -S $dir/host/xenstored.sock ]] && break; sleep 0.1; done
[[ -S $dir/host/xenstored.sock ]] || fail "vif-sim did not start"
timeout 10 "$sim" --dir "$dir/host" create 3 >/dev/null
export VIF_SIM_DIR=$dir/host VIF_SIM_DOMID=0

# expect_error STATUS TEXT vifctl-args...: a value the command line got
# wrong exits 2, a failure at run time 1; either way the message names it.
expect_error() {
  local expected=$1 name=$2 status=0
  shift 2
  timeout 10 "$vifctl" "$@" >"$dir/out" 2>"$dir/err" || status=$?
  ((status == expected)) || fail "vifctl $* exited $status, expected $expected"
  grep -q -- "$name" "$dir/err" || fail "vifctl $*: error does not name $name: $(cat "$dir/err")"
}
expect_error 2 "--mac" attach 3 --mac 01:00:5e:00:00:01 --no-wait
expect_error 2 "--rate" attach 3 --rate 10,0 --no-wait
expect_error 2 "--mtu" attach 3 --mtu 99999 --no-wait
expect_error 2 'DOMAIN: no domain is named "3x"' attach 3x --no-wait
expect_error 1 "domain 9 does not exist" attach 9 --no-wait
expect_error 1 "is vifd running" stats
# capture checks its arguments before asking vifd, and names what is wrong.
expect_error 2 "--snaplen" capture 3.0 -w "$dir/x.pcap" --snaplen 5
expect_error 2 "VIF: invalid value" capture 3x0 -w "$dir/x.pcap"
expect_error 2 "-c: COUNT" capture vif3.0 -w "$dir/x.pcap" -c 0
expect_error 2 "--duration" capture 3/0 -w "$dir/x.pcap" --duration 0
expect_error 1 "is vifd running" capture vif3.0 -w "$dir/x.pcap"
[[ ! -e $dir/x.pcap ]] || fail "capture left a file without vifd"

timeout 10 "$vifctl" attach 3 --mac 00:16:3e:01:02:03 --bridge xenbr0 --no-wait >/dev/null ||
  fail "attach --no-wait"
timeout 10 "$vifctl" list | grep -q "^3/0 .*00:16:3e:01:02:03 xenbr0" || fail "list does not show 3/0"
timeout 10 "$vifctl" list --json | grep -q '"mac": "00:16:3e:01:02:03"' || fail "list --json"
timeout 10 "$vifctl" show 3/0 --json | grep -q '"vifd": null' || fail "show --json without vifd"
# Without a backend, attach gives up after libxl's 10 s and says why.
status=0
timeout 30 "$vifctl" attach 3 >/dev/null 2>"$dir/err" || status=$?
((status == 1)) && grep -q "did not reach InitWait" "$dir/err" || fail "attach without a backend"
timeout 30 "$vifctl" detach 3/0 --no-wait >/dev/null || fail "detach 3/0"
timeout 30 "$vifctl" detach 3/1 --no-wait >/dev/null || fail "detach 3/1"
[[ -z $(timeout 10 "$vifctl" list | tail -n +2) ]] || fail "vifs left after detach"
echo "PASS: vifctl CLI"
