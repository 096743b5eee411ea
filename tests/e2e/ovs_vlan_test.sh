#!/usr/bin/env bash
# Open vSwitch with VLANs: three domUs on one Open vSwitch bridge in dom0,
# attached by vifctl with bridge=ovsbr.10 (domains 1 and 2) and ovsbr.20
# (domain 3) and a vif-openvswitch hotplug script. Open vSwitch, not vifd's
# switch, forwards between them: same-VLAN guests reach each other (ping,
# iperf3), the other VLAN does not, and vifd's switch forwarded nothing. After
# a vifd restart and the script's offline/online, the same holds again.
# Runs Debian's openvswitch-switch with a database and run directory of its
# own, userspace datapath (no kernel module needed); the namespaces and
# processes go with simnet's cleanup.
# shellcheck source=tests/e2e/e2e_lib.sh
source "$(dirname "$0")/e2e_lib.sh" ovs "$1"
for tool in ovsdb-server ovs-vswitchd ovs-vsctl ovsdb-tool iperf3 xenstore-write; do
  command -v "$tool" >/dev/null || e2e_fail "missing $tool (run scripts/install-deps)"
done
script=$e2e_repo/tests/e2e/vif-openvswitch-test
schema=/usr/share/openvswitch/vswitch.ovsschema

simnet_init "$e2e_tag" "$e2e_build"
simnet_require_binaries vif-sim vifctl vifd vif-front
simnet_start_host
simnet_start_dom0
ns0=$(simnet_ns 0)

# Open vSwitch in dom0's namespace, everything under the test's directory.
export OVS_RUNDIR=$SIMNET_WORK/ovs OVS_DBDIR=$SIMNET_WORK/ovs OVS_LOGDIR=$SIMNET_WORK/ovs
mkdir -p "$OVS_RUNDIR"
ovsdb-tool create "$OVS_RUNDIR/conf.db" "$schema"
simnet_spawn 0 ovsdb-server env OVS_RUNDIR="$OVS_RUNDIR" ovsdb-server "$OVS_RUNDIR/conf.db" \
  --remote="punix:$OVS_RUNDIR/db.sock" --pidfile --log-file
simnet_wait_for "$SIMNET_WAIT" "ovsdb-server" test -S "$OVS_RUNDIR/db.sock" ||
  e2e_fail "ovsdb-server did not start"
ovs() { timeout 30 ovs-vsctl --timeout=20 "$@"; }
ovs --no-wait init
simnet_spawn 0 ovs-vswitchd env OVS_RUNDIR="$OVS_RUNDIR" ovs-vswitchd --pidfile --log-file
# The userspace datapath: CI kernels may lack the openvswitch module.
# The guests send TSO frames through their TAPs, which the userspace datapath
# takes only with this (without it TCP stalls; ping still passes).
ovs set open_vswitch . other_config:userspace-tso-enable=true
ovs add-br ovsbr -- set bridge ovsbr datapath_type=netdev || e2e_fail "ovs-vsctl add-br"
ip -n "$ns0" link set ovsbr up

# domain DOMID on BRIDGE through the hotplug script, 10.99.0.(10+DOMID).
add_guest() {
  local domid=$1 bridge=$2 sim front vifctl
  sim=$(simnet_bin vif-sim)
  front=$(simnet_bin vif-front)
  vifctl=$(simnet_bin vifctl)
  timeout 30 "$sim" --dir "$SIMNET_HOST" create "$domid" >>"$SIMNET_LOGS/vif-sim.log" 2>&1 ||
    e2e_fail "vif-sim create $domid"
  simnet_add_netns "$domid"
  # In dom0's namespace, as libxl runs scripts there: the script finds the TAP.
  simnet_exec 0 timeout 60 "$vifctl" attach "$domid" --devid 0 --bridge "$bridge" \
    --script "$script" >>"$SIMNET_LOGS/vifctl.log" 2>&1 ||
    e2e_fail "vifctl attach $domid --bridge $bridge: $(tail -3 "$SIMNET_LOGS/vifctl.log")"
  simnet_spawn "$domid" "vif-front-$domid" "$front" --devid 0 --ifname eth0
  simnet_wait_connected "$domid" 0 || e2e_fail "vif $domid/0 not Connected"
  simnet_wait_for "$SIMNET_WAIT" "eth0 in domain $domid" simnet_link_exists "$domid" eth0 ||
    e2e_fail "no eth0 in domain $domid"
  ip -n "$(simnet_ns "$domid")" addr add "10.99.0.$((10 + domid))/24" dev eth0
  ip -n "$(simnet_ns "$domid")" link set eth0 up
}
add_guest 1 ovsbr.10
add_guest 2 ovsbr.10
add_guest 3 ovsbr.20

for d in 1 2 3; do
  [[ $(ovs get port "vif$d.0" tag) == $((d == 3 ? 20 : 10)) ]] ||
    e2e_fail "vif$d.0 is not an access port of its VLAN: tag $(ovs get port "vif$d.0" tag)"
  switch=$(simnet_vifctl show "$d/0" --json |
    jq -r 'if .vifd == null then "unknown (vifd did not answer)" else .vifd.switch // "none" end')
  [[ $switch == none ]] || e2e_fail "vif$d.0 is a port of vifd's switch: $switch"
done

fwd_before=$(simnet_stats_sum '.switch.forwarded_segments')
tap_before=$(simnet_tap_bytes 1)
e2e_ping 1 10.99.0.12
e2e_ping 2 10.99.0.11
simnet_spawn 2 iperf3-server timeout 60 iperf3 -s -B 10.99.0.12 -p 5201 -1
simnet_wait_for 10 "iperf3 server" simnet_listening 2 5201 || e2e_fail "iperf3 server did not start"
out=$SIMNET_WORK/tcp.json
simnet_exec 1 timeout 40 iperf3 -c 10.99.0.12 -p 5201 -t 3 -J >"$out" ||
  e2e_fail "iperf3 TCP in VLAN 10: $(jq -r '.error // empty' "$out" 2>/dev/null)"
tcp_bytes=$(jq '.end.sum_received.bytes' "$out")
((tcp_bytes > 0)) || e2e_fail "iperf3 TCP moved no bytes"
tap=$(($(simnet_tap_bytes 1) - tap_before))

# Across VLANs: nothing, either way (no ARP answer, so no echo either).
for pair in "1 10.99.0.13" "3 10.99.0.11" "3 10.99.0.12"; do
  read -r from to <<<"$pair"
  if simnet_exec "$from" timeout 10 ping -n -c 2 -i 0.2 -W 1 "$to" >/dev/null 2>&1; then
    e2e_fail "domain $from reached $to across VLANs"
  fi
done
# ... though domain 3's frames did reach Open vSwitch, which learned it in VLAN 20.
mac3=$(ip -n "$(simnet_ns 3)" -j link show dev eth0 | jq -r '.[0].address')
port3=$(ovs get interface vif3.0 ofport)
fdb=$(timeout 10 ovs-appctl fdb/show ovsbr)
grep -Eq "^ +$port3 +20 +$mac3 " <<<"$fdb" ||
  e2e_fail "Open vSwitch did not learn domain 3 ($mac3) on port $port3 in VLAN 20: $fdb"
fwd=$(($(simnet_stats_sum '.switch.forwarded_segments') - fwd_before))
echo "VLAN 10 iperf3 TCP: $tcp_bytes bytes, $(jq '.end.sum_received.bits_per_second' "$out") bit/s;" \
  "vif1.0 TAP bytes $tap; vifd switch-forwarded segments $fwd"
((fwd == 0)) || e2e_fail "vifd's switch forwarded $fwd segments past Open vSwitch"
((tap >= tcp_bytes)) || e2e_fail "only $tap bytes crossed vif1.0 for $tcp_bytes of TCP"

# A vifd restart re-creates the TAPs and vifd adds them nowhere. The userspace
# datapath keeps its ports on the vanished devices (it does not reopen a
# device of the same name, not even on a del-port + add-port in one
# transaction); the hotplug script's `offline` then `online`, as the operator
# guide says, re-adds them.
simnet_stop_pid "${SIMNET_PIDS[0]}"
simnet_spawn 0 vifd-restarted "$(simnet_bin vifd)"
for d in 1 2 3; do
  simnet_wait_for "$SIMNET_WAIT" "vif$d.0 re-created" simnet_link_exists 0 "vif$d.0" ||
    e2e_fail "vifd did not re-create vif$d.0"
  for action in offline online; do
    simnet_exec 0 env vif="vif$d.0" XENBUS_PATH="backend/vif/$d/0" timeout 60 "$script" "$action" ||
      e2e_fail "hotplug script $action for vif$d.0 after the restart"
  done
done
restart=$SECONDS
reaches() { simnet_exec "$1" timeout 5 ping -n -c 1 -W 1 "$2" >/dev/null 2>&1; }
simnet_wait_for 30 "VLAN 10 after the restart" reaches 1 10.99.0.12 ||
  e2e_fail "domain 1 does not reach domain 2 after a vifd restart"
echo "VLAN 10 back $((SECONDS - restart)) s after the ports were re-added"
! reaches 1 10.99.0.13 || e2e_fail "domain 1 reached domain 3 after the restart"
e2e_pass "Open vSwitch keeps VLANs 10 and 20 apart; vifd serves plain TAPs, also after a restart"
