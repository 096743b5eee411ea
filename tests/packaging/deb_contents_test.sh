#!/usr/bin/env bash
# Builds the three Debian packages with CPack from this build tree and checks
# what is in them: paths, Depends, maintainer scripts, that each unit's
# ExecStart program is in the same package, that the test tools stay out of
# the dom0 and guest packages, that installed documentation links only to
# installed pages, and that lintian finds no error.
# Usage: deb_contents_test.sh BUILD_DIR
set -euo pipefail

build_dir=$(cd "$1" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}

(cd "$build_dir" && cpack -G DEB -B "$tmp/out" >"$tmp/cpack.log" 2>&1) || {
	cat "$tmp/cpack.log" >&2
	exit 1
}
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")
arch=$(dpkg --print-architecture)
declare -A deb
for package in vifd vif-front vif-tools; do
	deb[$package]=$tmp/out/${package}_${version}-1_${arch}.deb
	if [[ ! -f ${deb[$package]} ]]; then
		fail "no ${deb[$package]##*/} (built: $(ls "$tmp/out"))"
		exit 1
	fi
	dpkg-deb -c "${deb[$package]}" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$tmp/$package.files"
	dpkg-deb -x "${deb[$package]}" "$tmp/root-$package"
	echo "$package: $(grep -vc '/$' "$tmp/$package.files") paths, Depends: $(dpkg-deb -f "${deb[$package]}" Depends)"
done

has() { grep -qxF "$2" "$tmp/$1.files" || fail "$1 lacks $2"; }
lacks() { ! grep -qE "$2" "$tmp/$1.files" || fail "$1 has $(grep -E "$2" "$tmp/$1.files" | head -n 1)"; }
depends_on() {
	dpkg-deb -f "${deb[$1]}" Depends | grep -qE "(^|, )$2( |,|$)" || fail "$1 does not depend on $2"
}

for path in /usr/sbin/vifd /usr/sbin/vifd-launcher /usr/bin/vifctl \
	/usr/lib/systemd/system/vifd.service /usr/lib/systemd/system/vifd@.service \
	/usr/lib/systemd/system/vifd-launcher.service \
	/usr/share/man/man8/vifd.8.gz /usr/share/man/man8/vifd-launcher.8.gz /usr/share/man/man8/vifctl.8.gz \
	/usr/share/bash-completion/completions/vifctl /usr/share/bash-completion/completions/vifd \
	/usr/lib/modules-load.d/vifd.conf /usr/share/doc/vifd/examples/modprobe-vifd.conf \
	/usr/share/doc/vifd/copyright /usr/share/doc/vifd/changelog.Debian.gz \
	/usr/share/doc/vifd/real-xen.md /usr/share/doc/vifd/operator-guide.md; do
	has vifd "$path"
done
for path in /usr/sbin/vif-front /usr/lib/systemd/system/vif-front@.service \
	/usr/share/man/man8/vif-front.8.gz /usr/share/bash-completion/completions/vif-front \
	/usr/lib/modules-load.d/vif-front.conf /usr/share/doc/vif-front/examples/modprobe-vif-front.conf \
	/usr/share/doc/vif-front/copyright /usr/share/doc/vif-front/changelog.Debian.gz; do
	has vif-front "$path"
done
for path in /usr/bin/vif-sim /usr/bin/vif-ttcp /usr/bin/vif-bench /usr/share/man/man1/vif-sim.1.gz \
	/usr/share/man/man1/vif-ttcp.1.gz /usr/share/man/man1/vif-bench.1.gz /usr/share/doc/vif-tools/copyright \
	/usr/share/doc/vif-tools/changelog.Debian.gz; do
	has vif-tools "$path"
done
# The simulator and the benchmark tool never land on a production host.
lacks vifd 'vif-sim|vif-ttcp|vif-bench|vif-front'
lacks vif-front 'vif-sim|vif-ttcp|vif-bench|/vifd|vifctl'
lacks vif-tools '/sbin/|systemd'
for package in vifd vif-front vif-tools; do
	# Nothing under /usr/local or /etc (the modprobe.d files are opt-in
	# examples); no unconfigured placeholder anywhere.
	lacks "$package" '^/usr/local|^/etc'
	if grep -rl '@VIFD_' "$tmp/root-$package" >/dev/null; then
		fail "$package has an unconfigured placeholder in $(grep -rl '@VIFD_' "$tmp/root-$package" | head -n 1)"
	fi
done

# Depends from dpkg-shlibdeps: the Xen libraries, spdlog, fmt.
for library in libxenstore4 libxengnttab1 libxenevtchn1 "libspdlog1\.10[a-z0-9-]*" libfmt9 libc6; do
	depends_on vifd "$library"
	depends_on vif-front "$library"
done
depends_on vifd 'init-system-helpers'
depends_on vifd 'libpcap0.8'
depends_on vif-tools 'zlib1g'

# Every unit's ExecStart program is in the same package.
for package in vifd vif-front; do
	for unit in "$tmp/root-$package"/usr/lib/systemd/system/*.service; do
		program=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
		grep -qxF "$program" "$tmp/$package.files" ||
			fail "$package: $(basename "$unit") runs $program, which the package does not install"
	done
done

# Maintainer scripts: present, executable, valid sh.
control=$tmp/control-vifd
dpkg-deb -e "${deb[vifd]}" "$control"
for script in postinst prerm postrm; do
	[[ -x $control/$script ]] || fail "vifd: no executable $script"
	sh -n "$control/$script" || fail "vifd: $script is not valid sh"
done
grep -q "deb-systemd-helper enable 'vifd.service'" "$control/postinst" || fail "vifd: postinst does not enable vifd.service"
dpkg-deb -e "${deb[vif-front]}" "$tmp/control-front"
[[ -x $tmp/control-front/postinst ]] || fail "vif-front: no executable postinst"

# Installed pages link only to installed pages.
docs=$tmp/root-vifd/usr/share/doc/vifd
for page in "$docs"/*.md; do
	while read -r target; do
		target=${target%%#*}
		[[ -z $target || $target == http* || $target == mailto:* ]] && continue
		[[ -e $docs/$target ]] || fail "$(basename "$page") links to $target, which is not installed"
	done < <(grep -oE '\]\([^)]+\)' "$page" | sed 's/^](//; s/)$//')
done

if command -v lintian >/dev/null; then
	for package in vifd vif-front vif-tools; do
		if ! lintian --fail-on error --suppress-tags-from-file /dev/null "${deb[$package]}" >"$tmp/lintian-$package.log" 2>&1; then
			fail "lintian reports errors for $package:"
			cat "$tmp/lintian-$package.log" >&2
		else
			echo "lintian $package: $(grep -c '^[EW]:' "$tmp/lintian-$package.log" || true) errors/warnings"
			cat "$tmp/lintian-$package.log"
		fi
	done
else
	fail "lintian is not installed (scripts/install-deps installs it)"
fi

if ((failures > 0)); then
	echo "deb_contents_test: $failures failed" >&2
	exit 1
fi
echo "deb_contents_test: vifd, vif-front and vif-tools as expected"
