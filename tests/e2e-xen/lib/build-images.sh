#!/usr/bin/env bash
# Builds the images the real-Xen harness boots, from Debian packages only:
#   $E2E_DIR/xen.elf        Xen 4.17 (xen-hypervisor-4.17-amd64), gunzipped:
#                           QEMU's -kernel takes the ELF32 multiboot image
#   $E2E_DIR/vmlinuz        Debian's 6.1 kernel, dom0 and every domU
#   $E2E_DIR/dom0.cpio      dom0's whole root: debootstrap minbase bookworm
#                           with systemd (init) and xen-utils-4.17, the project's
#                           Debian packages (vifd, vif-tools: apt-get install), the
#                           harness's scripts and e2e.service, and the domU
#                           kernel + initramfs under /e2e
# The packages and the debootstrap tree are cached in $E2E_CACHE; the per-run
# parts (binaries, scripts, domU initramfs) are redone every time (seconds).
#
# Usage: build-images.sh REPO BUILD_DIR E2E_DIR E2E_CACHE
set -euo pipefail
repo=$1 build_dir=$2 out=$3 cache=$4
mirror=${E2E_MIRROR:-http://deb.debian.org/debian}
mkdir -p "$out" "$cache"

log() { printf '[images] %s\n' "$*"; }

# --- Xen and the kernel: apt-get download + dpkg -x, nothing installed -------
kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[[ -n $kernel_pkg ]] || { echo "build-images: cannot resolve linux-image-amd64" >&2; exit 1; }
kver=${kernel_pkg#linux-image-}
pkgs=$cache/pkgs
if [[ ! -f $pkgs/.stamp-$kver ]]; then
  log "fetching xen-hypervisor-4.17-amd64 and $kernel_pkg"
  rm -rf "$pkgs" && mkdir -p "$pkgs/debs" "$pkgs/root"
  # As root apt warns that it cannot drop privileges for the download.
  (cd "$pkgs/debs" && apt-get download -q xen-hypervisor-4.17-amd64 "$kernel_pkg" 2>&1 |
    sed '/^W: Download is performed unsandboxed/d')
  for deb in "$pkgs"/debs/*.deb; do dpkg -x "$deb" "$pkgs/root"; done
  touch "$pkgs/.stamp-$kver"
fi
gunzip -c "$pkgs"/root/boot/xen-4.17-amd64.gz >"$out/xen.elf"
cp "$pkgs/root/boot/vmlinuz-$kver" "$out/vmlinuz"
moddir=$pkgs/root/lib/modules/$kver

# --- the project's binaries --------------------------------------------------
binaries=(backend/vifd frontend/vif-front frontend/vif-ttcp xenstore-tools/vifctl)
# Guest-only tools: copied with their libraries into the domU initramfs,
# not into dom0.
guest_tools=(tests/e2e-xen/e2e-xdp-count)
for b in "${binaries[@]}" "${guest_tools[@]}"; do
  [[ -x $build_dir/$b ]] || { echo "build-images: $build_dir/$b missing (build first)" >&2; exit 1; }
done

# Debian packages that hold the shared libraries of the project's binaries,
# so that dom0's root gets them from the archive like any other dependency.
lib_packages() {
  local lib pkg
  for b in "${binaries[@]}"; do ldd "$build_dir/$b"; done | awk '/=> \// {print $3}' | sort -u |
    while read -r lib; do
      # A library no package owns (built locally) yields no package name.
      pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -1 | cut -d: -f1) || true
      if [[ -z $pkg ]]; then
        pkg=$(dpkg -S "$lib" 2>/dev/null | head -1 | cut -d: -f1) || true
      fi
      if [[ -n $pkg ]]; then echo "$pkg"; fi
    done | sort -u
}

# --- dom0 root: debootstrap, cached by its package list -----------------------
# systemd and systemd-sysv: dom0 boots with systemd as init, so the packaged
# units run as on an operator's host (S10 drives vifd.service).
base_pkgs=(xen-utils-4.17 xenstore-utils bridge-utils iproute2 iputils-ping kmod procps
  psmisc jq busybox-static cpio gzip python3-minimal init-system-helpers systemd systemd-sysv
  iperf3)
mapfile -t extra < <(lib_packages)
include=$(printf '%s\n' "${base_pkgs[@]}" "${extra[@]}" | sort -u | paste -sd,)
key=$(printf '%s\n' "$include" "$mirror" | sha256sum | cut -c1-16)
base=$cache/rootfs-$key
if [[ ! -f $base/.stamp ]]; then
  log "debootstrap --variant=minbase bookworm (once; cached as $base)"
  rm -rf "$base" "$base.tmp"
  debootstrap --variant=minbase --include="$include" bookworm "$base.tmp" "$mirror" \
    >"$cache/debootstrap.log" 2>&1 || {
    tail -30 "$cache/debootstrap.log" >&2
    exit 1
  }
  rm -rf "$base.tmp"/usr/share/{doc,man,info,locale,i18n} "$base.tmp"/var/cache/apt/* \
    "$base.tmp"/var/lib/apt/lists/* "$base.tmp"/usr/share/zoneinfo \
    "$base.tmp"/usr/lib/udev/hwdb.bin "$base.tmp"/usr/lib/udev/hwdb.d
  touch "$base.tmp/.stamp"
  mv "$base.tmp" "$base"
fi

root=$out/dom0-root
rm -rf "$root"
cp -a "$base" "$root"
rm -f "$root/.stamp"

# Kernel modules: Xen's device drivers, both netbacks' peers, TAP, bridge.
mods=(drivers/xen drivers/net/xen-netback drivers/net/xen-netfront.ko drivers/net/tun.ko
  net/bridge/bridge.ko net/802 net/llc)
mkdir -p "$root/lib/modules/$kver/kernel"
for m in "${mods[@]}"; do
  mkdir -p "$root/lib/modules/$kver/kernel/$(dirname "$m")"
  cp -a "$moddir/kernel/$m" "$root/lib/modules/$kver/kernel/$(dirname "$m")/"
done
cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$kver/" 2>/dev/null || true
depmod -b "$root" "$kver"

# The project's Debian packages, installed with `apt-get install ./...deb` as
# an operator would, from Debian 12 with its security updates: the packages'
# Depends come from the build host's libraries (the Xen libraries at the
# security release), so apt brings dom0's Xen userland up to it. The
# maintainer scripts run (in the chroot no systemd runs, so vifd.service is
# enabled but not started; policy-rc.d keeps the Xen init scripts from
# starting in the chroot). vif-tools gives
# dom0 vif-ttcp; the guest's root has no dpkg and gets vif-front and vif-ttcp
# unpacked from the packages.
log "building the Debian packages (scripts/package) and installing them in dom0"
"$repo/scripts/package" "$build_dir" >/dev/null
debs=$out/debs
rm -rf "$debs" && mkdir -p "$debs"
cp "$build_dir"/packages/{vifd,vif-front,vif-tools}_*.deb "$debs/"
mkdir -p "$root/tmp/debs"
cp "$debs"/vifd_*.deb "$debs"/vif-tools_*.deb "$root/tmp/debs/"
dom0_debs=()
for deb in "$root"/tmp/debs/*.deb; do dom0_debs+=("/tmp/debs/${deb##*/}"); done
security_mirror=${E2E_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
printf 'deb %s bookworm main\ndeb %s bookworm-security main\n' "$mirror" "$security_mirror" \
  >"$root/etc/apt/sources.list"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod +x "$root/usr/sbin/policy-rc.d"
if ! { chroot "$root" apt-get update -qq &&
  chroot "$root" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${dom0_debs[@]}"; } >"$out/apt.log" 2>&1; then
  tail -30 "$out/apt.log" >&2
  echo "build-images: apt-get install of the packages failed" >&2
  exit 1
fi
rm -rf "$root/tmp/debs" "$root/usr/sbin/policy-rc.d" "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*
for path in /usr/sbin/vifd /usr/sbin/vifd-launcher /usr/bin/vifctl /usr/bin/vif-ttcp; do
  [[ -x $root$path ]] || { echo "build-images: the packages did not install $path" >&2; exit 1; }
done
unpacked=$out/unpacked
rm -rf "$unpacked" && mkdir -p "$unpacked"
for deb in "$debs"/vif-front_*.deb "$debs"/vif-tools_*.deb; do dpkg-deb -x "$deb" "$unpacked"; done
# Keep the kernel netback off until a scenario loads it on purpose, as an
# operator would (docs/real-xen.md).
printf 'blacklist xen-netback\n' >"$root/etc/modprobe.d/vifd.conf"
printf 'XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"\n' >>"$root/etc/default/xen"

# --- domU initramfs: busybox, the netfront module, vif-front, vif-ttcp --------
domu=$out/domU-root
rm -rf "$domu"
mkdir -p "$domu"/{bin,sbin,usr/bin,usr/sbin,lib,lib64,proc,sys,dev,run,tmp,etc,var/run}
cp /bin/busybox "$domu/bin/busybox"
for applet in $("$domu/bin/busybox" --list); do
  [[ $applet == busybox ]] || ln -sf busybox "$domu/bin/$applet"
done
copy_with_libs() {
  local src=$1 dst=$2 lib
  mkdir -p "$(dirname "$domu$dst")"
  cp "$src" "$domu$dst"
  ldd "$src" | awk '/=> \// {print $3} /^\t\/lib64\// {print $1}' | while read -r lib; do
    mkdir -p "$domu$(dirname "$lib")"
    cp -L "$lib" "$domu$lib"
  done
}
copy_with_libs "$unpacked/usr/sbin/vif-front" /usr/sbin/vif-front
copy_with_libs "$unpacked/usr/bin/vif-ttcp" /usr/bin/vif-ttcp
# iperf3 for the backend comparison (--compare), the host's build: its
# libraries resolve on the host, which runs the same Debian release.
copy_with_libs /usr/bin/iperf3 /usr/bin/iperf3
# S11's counting XDP program and its loader (libbpf).
# Stripped: the guest has 128 MB, and its whole root is this initramfs.
copy_with_libs "$build_dir/tests/e2e-xen/e2e-xdp-count" /usr/bin/e2e-xdp-count
strip --strip-unneeded "$domu/usr/bin/e2e-xdp-count"
for t in xenstore-read xenstore-write xenstore-rm xenstore-ls xenstore-exists; do
  [[ -e $root/usr/bin/$t ]] && copy_with_libs "$(readlink -f "$root/usr/bin/$t")" "/usr/bin/$t"
done
mkdir -p "$domu/lib/modules/$kver/kernel"
for m in drivers/net/xen-netfront.ko drivers/net/tun.ko drivers/xen/xen-gntalloc.ko \
  drivers/xen/xen-evtchn.ko drivers/xen/xen-gntdev.ko; do
  cp "$moddir/kernel/$m" "$domu/lib/modules/$kver/kernel/"
done
cp "$moddir"/modules.{order,builtin,builtin.modinfo} "$domu/lib/modules/$kver/"
depmod -b "$domu" "$kver"
install -m 0755 "$repo/tests/e2e-xen/guest/domU-init" "$domu/init"

mkdir -p "$root/e2e"
(cd "$domu" && find . | cpio -o -H newc --quiet) >"$root/e2e/domU.cpio"
cp "$out/vmlinuz" "$root/e2e/vmlinuz"
# dom0's init is systemd: the kernel runs /init from the initramfs, which is
# dom0's whole root (no switch_root; without /etc/initrd-release systemd
# treats it as the real root). e2e.service runs dom0-init (the scenarios)
# once multi-user.target is reached; the package's vifd.service and Debian's
# SysV-generated xen.service start at boot as they would on a host.
ln -sf /lib/systemd/systemd "$root/init"
echo dom0 >"$root/etc/hostname"
install -m 0755 "$repo/tests/e2e-xen/guest/dom0-init" "$root/e2e/dom0-init"
install -m 0644 "$repo/tests/e2e-xen/guest/e2e.service" "$root/etc/systemd/system/e2e.service"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/e2e.service "$root/etc/systemd/system/multi-user.target.wants/e2e.service"
# Masked: a getty would take hvc0 (the console the host reads; agetty hangs
# it up), first-boot prompts would wait for input, and the timers would run
# apt and fstrim in the middle of a measurement. The rest do nothing useful
# in this dom0 (file systems and modules it lacks, login records) and each
# costs seconds of boot under emulation. What the packages rely on (journald,
# udev, modules-load.d, tmpfiles, xen.service, vifd.service) runs as usual.
for unit in getty.target serial-getty@hvc0.service systemd-firstboot.service apt-daily.timer \
  apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount dev-hugepages.mount \
  dev-mqueue.mount sys-fs-fuse-connections.mount proc-sys-fs-binfmt_misc.automount \
  modprobe@.service systemd-pstore.service systemd-update-utmp.service \
  systemd-update-utmp-runlevel.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
install -m 0755 "$repo/tests/e2e-xen/guest/scenarios.sh" "$root/e2e/scenarios.sh"
install -m 0644 "$repo/tests/e2e-xen/guest/compare.sh" "$root/e2e/compare.sh"
cp "$repo/tests/e2e-xen/guest/"*.cfg "$root/e2e/" 2>/dev/null || true

log "packing dom0 root ($(du -sm "$root" | cut -f1) MB, uncompressed cpio)"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$out/dom0.cpio"
log "images ready: xen.elf, vmlinuz ($kver), dom0.cpio ($(du -m "$out/dom0.cpio" | cut -f1) MB), domU.cpio ($(du -m "$root/e2e/domU.cpio" | cut -f1) MB)"
