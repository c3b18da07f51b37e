#!/usr/bin/env bash
# Installs everything Cloner and its tests need on a fresh Debian machine: every Debian
# tool a test calls (a missing one turns its test into a skip, and CI fails on a skip):
# rsync/acl/attr (round trips), restic, borgbackup and lz4 (benches' yardsticks; GNU time for
# their peak RSS), debootstrap,
# mmdebstrap, qemu, OVMF and socat (VM tests), e2fsprogs/xfsprogs/btrfs-progs/fdisk/
# util-linux/mount (loop-device layout tests), dnsmasq-base (dnsmasq --test of the netboot
# snippet), ipmitool + openipmi (ipmi_sim), systemd (systemd-analyze verify of
# contrib/cloner-server.service), iproute2 (namespaces, tc), openssh-client, openssl,
# chromium (web UI tests, driven by playwright-core), binutils (strip, for make-installer),
# ipxe (the iPXE binaries the bare-metal quick start copies to TFTP), ipxe-qemu (the NIC
# ROMs of the PXE lab's VMs), grub-pc-bin (GRUB for BIOS, added to the PXE lab's golden),
# udpcast (bench:multicast), man-db and bash-completion (the man pages and completion
# install.sh installs);
# then the npm packages (which bring Node 24 and build the fsx native addon), then
# scripts/install.sh (bundles dist/ and links cloner, cloner-server and cloner-agent into
# /usr/local/bin, or CLONER_PREFIX/bin, with the systemd unit). Run as root
# (CI does), or with sudo available. The VM image is built by the first VM test (or by
# `npm run vm:build`) and cached in /var/cache/cloner-vm.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  rsync attr acl lz4 restic borgbackup time debootstrap mmdebstrap
  e2fsprogs xfsprogs btrfs-progs fdisk util-linux mount
  qemu-system-x86 qemu-utils ovmf socat dnsmasq-base ipmitool openipmi
  iproute2 openssh-client openssl systemd
  chromium binutils ipxe ipxe-qemu grub-pc-bin udpcast man-db bash-completion
  python3 make g++ liblz4-dev initramfs-tools-core
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm install (not npm ci): npm leaves the other platforms' optional packages of
# @napi-rs/blake-hash out of the lock file, and npm ci then refuses the lock.
echo "setup: npm install"
npm install --no-audit --no-fund
$SUDO env CLONER_PREFIX="${CLONER_PREFIX:-/usr/local}" scripts/install.sh
echo "setup: done ($(node_modules/.bin/node --version); $(command -v cloner || echo "cloner not on PATH"))"
