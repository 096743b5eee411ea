#!/usr/bin/env bash
# Every long option a program's --help prints (and, for vifctl, each
# command's --help) must be described in its man page: the man page is the
# one reference an operator reads, and it must not fall behind the binary.
# Usage: man_help_test.sh MAN_DIR PROGRAM=BINARY...
set -euo pipefail

man_dir=$1
shift
failures=0

long_options() {
	grep -oE -- '--[a-z][a-z0-9-]*' | sort -u
}

# The roff source with its escaped hyphens as plain ones.
man_text() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$1"
}

check() {
	local program=$1 page=$2 help_text=$3
	local option text
	# Read once: `man_text | grep -q` would fail under pipefail whenever grep
	# quits at its match before sed has written the rest (SIGPIPE).
	text=$(man_text "$page")
	while read -r option; do
		[[ -z $option ]] && continue
		if ! grep -qE -- "(^|[^a-z0-9-])${option}([^a-z0-9-]|$)" <<<"$text"; then
			echo "FAIL: $program: $option is in --help but not in $(basename "$page")" >&2
			failures=$((failures + 1))
		fi
	done < <(long_options <<<"$help_text")
}

for pair in "$@"; do
	program=${pair%%=*}
	binary=${pair#*=}
	page=$(find "$man_dir" -maxdepth 1 -name "$program.[18]" | head -n 1)
	if [[ -z $page ]]; then
		echo "FAIL: no man page for $program in $man_dir" >&2
		failures=$((failures + 1))
		continue
	fi
	help_text=$("$binary" --help)
	check "$program" "$page" "$help_text"
	# Subcommands: the lines of the "Subcommands:" section of CLI11's help.
	subcommands=$(awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1} on && /^$/ {on = 0}' <<<"$help_text")
	for subcommand in $subcommands; do
		if ! grep -qE "^\.(TP|B|BI|BR)?.*\b${subcommand}\b" <<<"$(man_text "$page")"; then
			echo "FAIL: $program: command $subcommand is not in $(basename "$page")" >&2
			failures=$((failures + 1))
		fi
		check "$program $subcommand" "$page" "$("$binary" "$subcommand" --help)"
	done
	echo "$program: $(long_options <<<"$help_text" | wc -l) options${subcommands:+, commands ${subcommands//$'\n'/ }} checked against $(basename "$page")"
done

if ((failures > 0)); then
	echo "man_help_test: $failures missing" >&2
	exit 1
fi
echo "man_help_test: every --help option is in its man page"
