#!/usr/bin/env bash
# Every program's command line follows the same conventions: --version prints
# "<program> <release>", --help names the exit statuses, a command-line error
# exits 2 naming what was wrong, a failure at run time exits 1.
# Usage: cli_conventions_test.sh VERSION vifd vif-front vifctl vif-sim vif-ttcp vif-bench
set -uo pipefail
version=$1
vifd=$2 vif_front=$3 vifctl=$4 vif_sim=$5 vif_ttcp=$6 vif_bench=$7
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# run EXPECTED_STATUS PROGRAM ARGS...: output in $dir/out and $dir/err.
run() {
  local expected=$1
  shift
  local status=0
  env -u VIF_SIM_DIR timeout 10 "$@" >"$dir/out" 2>"$dir/err" || status=$?
  ((status == expected)) || fail "$(basename "$1") ${*:2} exited $status, expected $expected: $(head -c 300 "$dir/err")"
}

# What each needs before an unknown option is the error CLI11 reports (a
# missing required option or subcommand is reported first, also with 2).
declare -A context=([vifctl]=list [vif-sim]="--dir $dir")
for entry in "vifd:$vifd" "vif-front:$vif_front" "vifctl:$vifctl" "vif-sim:$vif_sim" "vif-ttcp:$vif_ttcp" "vif-bench:$vif_bench"; do
  name=${entry%%:*}
  program=${entry#*:}
  run 0 "$program" --version
  [[ $(cat "$dir/out") == "$name $version" ]] || fail "$name --version printed '$(cat "$dir/out")'"
  run 0 "$program" --help
  grep -q "Exit status: 0 success, 1 failure, 2 command-line error" "$dir/out" ||
    fail "$name --help does not name the exit statuses"
  # shellcheck disable=SC2086 # the context is words
  run 2 "$program" ${context[$name]:-} --no-such-option
  grep -q -- "--no-such-option" "$dir/err" || fail "$name's error does not name the bad option"
done

# Values out of range and missing arguments are command-line errors too.
run 2 "$vifctl" --no-such-option
run 2 "$vif_sim" list
run 2 "$vifd" --log-level loud
grep -q "loud" "$dir/err" || fail "vifd's error does not name the bad value"
run 2 "$vifctl" attach
run 2 "$vif_sim" --dir "$dir" create 0
run 2 "$vif_front" --queues 17
run 2 "$vif_ttcp" -t
# vif-bench refuses what would fail only minutes into a run, before it looks
# for a simulator, naming the value.
for args in "--domains 1,1" "--domains 0,2" "--veth ns:,ns:vb1" "--veth ns:vb0,ns:bad/name" \
  "--memcpy-mib 100000000" "--vifd-pid 0" "--sizes 63" "--queues 17" "--baselines nope"; do
  # shellcheck disable=SC2086 # the arguments are words
  run 2 "$vif_bench" $args
  # Refused for the value itself, not for the missing simulator behind it.
  grep -q "VIF_SIM_DIR" "$dir/err" && fail "vif-bench $args was not refused for its value: $(cat "$dir/err")"
done
grep -q "nope" "$dir/err" || fail "vif-bench's error does not name the bad baseline"
run 2 "$vif_bench" --domains 3,3
grep -q "domain 3 twice" "$dir/err" || fail "vif-bench's error does not name the repeated domain"

# Failures at run time exit 1, naming the cause.
run 1 "$vifctl" --platform sim list
grep -q "VIF_SIM_DIR" "$dir/err" || fail "vifctl's failure does not name VIF_SIM_DIR"
run 1 "$vif_sim" --dir "$dir/missing" list
run 1 "$vif_ttcp" -t -T 1 --timeout 1 -p 1 127.0.0.1

if ((failures)); then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "cli conventions: 5 programs, version $version, exit statuses 0/1/2"
