#!/bin/bash
# cloner-vm agent: runs as PID 1 inside a Cloner test VM (exec'd by the image's
# cloner-vm-init from the host's job share, /job). It brings up what a real node has
# (tmpfs mounts, efivarfs, udevd with a full coldplug, loopback and an optional static
# network), mounts the project tree read-only at /src, then runs the commands the host
# drops into /job one by one: /job/cmd.N runs with its output in /job/out.N and its exit
# code written to /job/rc.N last (by rename, so the host never reads a half-written code).
# /job/poweroff ends the loop; the agent syncs and powers the VM off.
set -u
exec </dev/null
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH HOME=/root LANG=C.UTF-8

say() { echo "cloner-vm-agent: $*" >/dev/console; }
power_off() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 60
}
trap power_off EXIT

mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mountpoint -q /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/lock
mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777 tmpfs /dev/shm
if [ -d /sys/firmware/efi/efivars ]; then
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars
fi
hostname cloner-vm
ip link set lo up

[ -f /job/env ] && . /job/env

say "starting udevd at $(cut -d" " -f1 /proc/uptime) s"
/lib/systemd/systemd-udevd --daemon --resolve-names=never
udevadm trigger --type=subsystems --action=add
udevadm trigger --type=devices --action=add
udevadm settle --timeout=60

if [ -n "${CLONER_VM_SRC:-}" ]; then
  mkdir -p /src
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=1048576,ro cloner-src /src || say "could not mount the source share"
fi

if [ -n "${CLONER_VM_ADDRESS:-}" ]; then
  dev=""
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address")" = "${CLONER_VM_MAC:-}" ] && dev=$(basename "$d")
  done
  if [ -n "$dev" ]; then
    ip link set "$dev" up
    ip addr add "$CLONER_VM_ADDRESS" dev "$dev"
    [ -n "${CLONER_VM_GATEWAY:-}" ] && ip route add default via "$CLONER_VM_GATEWAY"
  else
    say "no interface with MAC ${CLONER_VM_MAC:-?}"
  fi
fi

say "ready after $(cut -d" " -f1 /proc/uptime) s of uptime"
: >/job/ready
i=1
while :; do
  if [ -e "/job/cmd.$i" ]; then
    (cd "${CLONER_VM_WORKDIR:-/}" && exec /bin/bash "/job/cmd.$i") >"/job/out.$i" 2>&1
    echo "$?" >"/job/rc.$i.tmp"
    mv "/job/rc.$i.tmp" "/job/rc.$i"
    i=$((i + 1))
    continue
  fi
  [ -e /job/poweroff ] && break
  sleep 0.1
done
say "powering off"
