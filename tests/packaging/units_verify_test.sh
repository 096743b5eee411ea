#!/usr/bin/env bash
# `systemd-analyze verify` on every unit the project installs (configured by
# the install rules, as `cmake --install` writes them) and on every unit
# snippet of the documentation: no error and no warning, and each ExecStart
# program exists where the unit says.
# Usage: units_verify_test.sh BUILD_DIR DOC...
set -euo pipefail

build_dir=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/usr
for component in vifd front; do
	cmake --install "$build_dir" --prefix "$prefix" --component "$component" >/dev/null
done

failures=0
verify() {
	local unit=$1 label=$2 output
	# MANPATH: Documentation= must name man pages this install provides.
	if ! output=$(MANPATH=$prefix/share/man systemd-analyze verify "$unit" 2>&1) || [[ -n $output ]]; then
		echo "FAIL: $label:" >&2
		echo "$output" >&2
		failures=$((failures + 1))
		return
	fi
	echo "ok: $label"
}

# A template unit is verified as itself and as an instance.
verify_file() {
	local unit=$1 label=$2
	verify "$unit" "$label"
	if [[ $(basename "$unit") == *@.service ]]; then
		local instance
		instance=$tmp/instances/$(basename "${unit%@.service}")@7.service
		mkdir -p "$tmp/instances"
		cp "$unit" "$instance"
		verify "$instance" "$label as $(basename "$instance")"
	fi
}

units=("$prefix"/lib/systemd/system/*.service)
if ((${#units[@]} < 4)); then
	echo "FAIL: expected 4 installed units, found: ${units[*]}" >&2
	exit 1
fi
for unit in "${units[@]}"; do
	if grep -q '@VIFD_' "$unit"; then
		echo "FAIL: $(basename "$unit") still has a placeholder" >&2
		failures=$((failures + 1))
	fi
	exec_start=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
	if [[ $exec_start != "$prefix"/sbin/* ]]; then
		echo "FAIL: $(basename "$unit"): ExecStart=$exec_start is not under the install prefix" >&2
		failures=$((failures + 1))
	fi
	verify_file "$unit" "installed $(basename "$unit")"
done

# The documentation's unit snippets: fenced blocks holding a [Service]
# section, with the packaged /usr/sbin paths pointing at this install.
n=0
mkdir -p "$tmp/docs"
for doc in "$@"; do
	base=$(basename "$doc" .md)
	awk -v out="$tmp/docs/$base" '
		/^```/ {
			if (in_block && block ~ /\[Service\]/) {
				count++
				file = out "-snippet-" count (block ~ /%i/ ? "@" : "") ".service"
				printf "%s", block > file
				close(file)
			}
			in_block = !in_block
			block = ""
			next
		}
		in_block { block = block $0 "\n" }' "$doc"
done
for snippet in "$tmp"/docs/*.service; do
	[[ -e $snippet ]] || continue
	n=$((n + 1))
	text=$(<"$snippet")
	printf '%s\n' "${text//\/usr\/sbin\//$prefix/sbin/}" >"$snippet"
	verify_file "$snippet" "$(basename "$snippet")"
done
if ((n == 0)); then
	echo "FAIL: no unit snippet found in $*" >&2
	failures=$((failures + 1))
fi

if ((failures > 0)); then
	echo "units_verify_test: $failures failed" >&2
	exit 1
fi
echo "units_verify_test: ${#units[@]} installed units and $n documentation snippets verified"
