#!/usr/bin/env bash
# feature-xdp-headroom end to end: domU1's vif-front asks for 256 bytes of RX
# headroom (as Linux netfront does for XDP), domU2's for none. Frames from
# dom0 (TAP) and from domU2 (switch), one slot and several, reach domU1
# intact with every packet announcing the headroom; a change while connected
# is followed without a reconnect, and a hostile value closes only that vif.
source "$(dirname "$0")/e2e_lib.sh" xdp "$1"
simnet_init "$e2e_tag" "$e2e_build"
simnet_require_binaries vif-sim vifctl vifd vif-front vif-ttcp
simnet_start_host
simnet_start_dom0
simnet_add_domu 1 --xdp-headroom 256
front1=$SIMNET_LAST_PID
simnet_add_domu 2

headroom() {
  simnet_vifctl show "$1/0" --json | jq -r '.vifd.features.xdp_headroom // "none"'
}
front_key=/local/domain/1/device/vif/0/xdp-headroom
xs_write() { XENSTORED_PATH=$SIMNET_HOST/xenstored.sock timeout 5 xenstore-write "$1" "$2"; }

[[ $(simnet_xs_read /local/domain/0/backend/vif/1/0/feature-xdp-headroom) == 1 ]] ||
  e2e_fail "feature-xdp-headroom not advertised"
[[ $(simnet_xs_read "$front_key") == 256 ]] || e2e_fail "vif-front did not write xdp-headroom"
[[ $(headroom 1) == 256 ]] || e2e_fail "vifd serves headroom $(headroom 1), not 256"
[[ $(headroom 2) == 0 ]] || e2e_fail "domU2 got headroom $(headroom 2)"

e2e_ping 0 10.99.0.11
e2e_ping 2 10.99.0.11
# Several slots per packet, the first one shortened by the headroom.
simnet_exec 2 timeout 30 ping -n -c 3 -i 0.2 -W 5 -s 8000 10.99.0.11 >/dev/null ||
  e2e_fail "8000-byte ping domU2 -> domU1"
simnet_exec 0 timeout 30 ping -n -c 3 -i 0.2 -W 5 -s 1472 10.99.0.11 >/dev/null ||
  e2e_fail "1500-byte ping dom0 -> domU1"
simnet_ttcp 2 1 10.99.0.11 64 "$SIMNET_WORK/xdp" || e2e_fail "64 MiB domU2 -> domU1"

# Followed while connected, without a reconnect.
before=$(e2e_frontend_keys 1)
xs_write "$front_key" 1024
for ((i = 0; i < 50; i++)); do
  [[ $(headroom 1) == 1024 ]] && break
  sleep 0.1
done
[[ $(headroom 1) == 1024 ]] || e2e_fail "headroom change not followed: $(headroom 1)"
simnet_ttcp 2 1 10.99.0.11 16 "$SIMNET_WORK/xdp2" || e2e_fail "16 MiB domU2 -> domU1, headroom 1024"
[[ $(e2e_frontend_keys 1) == "$before" ]] || e2e_fail "the headroom change reconnected"

# Every packet domU1 took announced its headroom.
simnet_stop_pid "$front1"
grep -q "rx-headroom [1-9]" "$SIMNET_LOGS/vif-front-1.log" ||
  e2e_fail "no packet announced its headroom: $(grep closed "$SIMNET_LOGS/vif-front-1.log")"

# A hostile value closes domU2's vif naming the key; vifd keeps serving.
xs_write /local/domain/2/device/vif/0/xdp-headroom 4096
for ((i = 0; i < 50; i++)); do
  [[ $(simnet_xs_read /local/domain/0/backend/vif/2/0/state) =~ ^[56]$ ]] && break
  sleep 0.1
done
[[ $(simnet_xs_read /local/domain/0/backend/vif/2/0/error) == *xdp-headroom* ]] ||
  e2e_fail "hostile xdp-headroom: error '$(simnet_xs_read /local/domain/0/backend/vif/2/0/error)'"
e2e_vifd_alive || e2e_fail "vifd died"
e2e_pass "RX headroom honoured over the TAP and the switch, followed live, hostile value refused"
