#!/usr/bin/env bash
# vifd-launcher on a simulated host, with commands that run vifd directly in
# place of systemctl: a guest that gets a vif gets a vifd of its own (which
# brings the vif to InitWait, so `vifctl attach` succeeds), its release stops
# that vifd and no other, directory names that are not canonical domain ids
# start nothing, a failing start command affects its own guest only, a
# restarted launcher finds the running vifds through their locks, and a
# serve-everything vifd cannot start next to a per-guest one.
#   launcher_sim_test.sh VIF_SIM VIFD VIFCTL VIFD_LAUNCHER
set -euo pipefail
sim=$1
vifd=$2
vifctl=$3
launcher=$4
dir=$(mktemp -d /tmp/vifd-launcher-XXXXXX)
server=""
launcher_pid=""
# Whatever is left; each kill may find its process gone already.
cleanup() {
	if [[ -n $launcher_pid ]]; then kill "$launcher_pid" 2>/dev/null || true; fi
	for pid_file in "$dir"/vifd-*.pid; do
		if [[ -f $pid_file ]]; then kill "$(cat "$pid_file")" 2>/dev/null || true; fi
	done
	if [[ -n $server ]]; then
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
	fi
	rm -rf "$dir"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	for log in "$dir"/launcher*.log "$dir"/vifd-*.log; do
		[[ -f $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
	done
	exit 1
}
wait_for() { # SECONDS CONDITION...
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.1
	done
}
alive() { [[ -f $dir/vifd-$1.pid ]] && kill -0 "$(cat "$dir/vifd-$1.pid")" 2>/dev/null; }
dead() { ! alive "$1"; }
commands() { grep -c "^$1\$" "$dir/commands.log" 2>/dev/null || true; }
ran_at_least() { (($(commands "$1") >= $2)); }

"$sim" --dir "$dir/host" >"$dir/sim.log" 2>&1 &
server=$!
wait_for 10 test -S "$dir/host/xenstored.sock" || fail "vif-sim did not start"
export VIF_SIM_DIR=$dir/host VIF_SIM_DOMID=0
export XENSTORED_PATH=$dir/host/xenstored.sock

# The start and stop commands, as systemctl would run vifd@<domid>.service.
cat >"$dir/start-vifd" <<SCRIPT
#!/bin/sh
echo "start \$1" >>"$dir/commands.log"
[ "\$1" = 5 ] && exit 1
"$vifd" --platform sim --domain "\$1" --control-socket "$dir/host/domain-\$1.sock" \
	>"$dir/vifd-\$1.log" 2>&1 &
echo \$! >"$dir/vifd-\$1.pid"
SCRIPT
cat >"$dir/stop-vifd" <<SCRIPT
#!/bin/sh
echo "stop \$1" >>"$dir/commands.log"
kill "\$(cat "$dir/vifd-\$1.pid")"
SCRIPT
chmod +x "$dir/start-vifd" "$dir/stop-vifd"

launchers=0
start_launcher() {
	launchers=$((launchers + 1))
	log=$dir/launcher-$launchers.log
	"$launcher" --platform sim --start-command "$dir/start-vifd {domid}" \
		--stop-command "$dir/stop-vifd {domid}" >"$log" 2>&1 &
	launcher_pid=$!
	wait_for 10 grep -q "vifd-launcher for backend domain 0" "$log" || fail "the launcher did not start"
}

for domid in 3 4 5; do timeout 10 "$sim" --dir "$dir/host" create "$domid" >/dev/null; done
start_launcher
sleep 0.5
[[ ! -s $dir/commands.log ]] || fail "commands without any vif: $(cat "$dir/commands.log")"

# A vif for guest 3: its own vifd brings it to InitWait within xl's 10 s.
timeout 20 "$vifctl" attach 3 --mac 00:16:3e:00:00:03 >/dev/null || fail "attach 3"
alive 3 || fail "no vifd for domain 3"
[[ $(commands "start 3") == 1 ]] || fail "start 3 ran $(commands "start 3") times"
timeout 10 "$vifctl" --control-socket "$dir/host/domain-3.sock" stats --json >/dev/null ||
	fail "the control socket of domain 3's vifd"
timeout 20 "$vifctl" attach 4 --mac 00:16:3e:00:00:04 >/dev/null || fail "attach 4"
alive 4 || fail "no vifd for domain 4"
[[ $(cat "$dir/vifd-3.pid") != $(cat "$dir/vifd-4.pid") ]] || fail "one process for two guests"

# The serve-everything vifd cannot run next to per-guest ones.
status=0
timeout 10 "$vifd" --platform sim --control-socket "$dir/host/all.sock" >"$dir/all.log" 2>&1 ||
	status=$?
((status == 1)) || fail "a serve-all vifd next to per-guest vifds exited $status"
grep -q "domain" "$dir/all.log" || fail "the serve-all vifd does not say why: $(cat "$dir/all.log")"

# Names that are not canonical domain ids start nothing.
for name in 007 abc 4x 99999 -1; do
	xenstore-write "/local/domain/0/backend/vif/$name/0/state" 1
done
# A backend directory of a domain that does not exist starts nothing either.
xenstore-write /local/domain/0/backend/vif/9/0/state 1
sleep 1
for name in 007 abc 4x 99999 -1 7 9; do
	[[ $(commands "start $name") == 0 ]] || fail "started a vifd for '$name'"
done
for name in 007 abc 4x 99999 -1 9; do xenstore-rm "/local/domain/0/backend/vif/$name"; done

# A start command that fails affects its own guest only, and is retried.
timeout 10 "$vifctl" attach 5 --no-wait >/dev/null || fail "attach 5"
wait_for 10 grep -q "domain 5: the start command exited with status 1" "$log" ||
	fail "the failed start of domain 5 is not logged"
wait_for 15 ran_at_least "start 5" 2 || fail "the start of domain 5 is not retried"
kill -0 "$launcher_pid" || fail "the launcher died"
if ! alive 3 || ! alive 4; then fail "another guest's vifd suffered from domain 5's failure"; fi

# Releasing guest 3 stops its vifd, and only that one.
timeout 10 "$sim" --dir "$dir/host" destroy 3 >/dev/null
wait_for 10 dead 3 || fail "domain 3's vifd still runs after its release"
[[ $(commands "stop 3") == 1 ]] || fail "stop 3 ran $(commands "stop 3") times"
alive 4 || fail "domain 4's vifd stopped with domain 3"

# A new launcher finds guest 4's vifd from its lock: no second start, and it
# stops it when the guest goes.
kill -KILL "$launcher_pid"
wait "$launcher_pid" 2>/dev/null || true
alive 4 || fail "domain 4's vifd died with the launcher"
timeout 10 "$sim" --dir "$dir/host" destroy 5 >/dev/null
start_launcher
grep -q "vifd for domain 4 is running" "$log" || fail "the new launcher missed domain 4"
sleep 0.5
[[ $(commands "start 4") == 1 ]] || fail "domain 4's vifd started again by the new launcher"
timeout 10 "$sim" --dir "$dir/host" destroy 4 >/dev/null
wait_for 10 dead 4 || fail "domain 4's vifd still runs after its release"
[[ $(commands "stop 4") == 1 ]] || fail "stop 4 ran $(commands "stop 4") times"
echo "PASS: vifd-launcher ($(wc -l <"$dir/commands.log") commands)"
