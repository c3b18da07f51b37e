#!/bin/sh
# pre-mount hook of the cloner installer (dracut): the deploy loop of contrib/initramfs's
# scripts/cloner. dracut brought udev and the network up (rd.neednet=1 ip=dhcp, dhclient of
# network-legacy); this prints the addresses it got, runs `cloner-agent deploy --no-reboot`
# (it reads cloner.server/node/token from /proc/cmdline) with its progress on the console;
# on success it syncs and reboots (the server has set netboot back to local, so iPXE boots
# the disk); on failure it prints the error, keeps the node up and retries after a back-off
# (30 s doubling to 5 min), never rebooting in a loop. No address (no DHCP answer before
# cloner-nonet.sh ended init's wait): it says so and runs dracut's ifup again on each NIC
# after the same back-off. Sourced by init: it never returns on boot=cloner.
[ "$(getarg boot=)" = cloner ] || return 0

cloner_say() {
    echo "cloner: $*" > /dev/console 2> /dev/null || echo "cloner: $*"
}

# "eth0: address 198.18.0.15/24" for each global IPv4 address; false when there is none.
cloner_addresses() {
    ip -4 -o addr show scope global 2> /dev/null | while read -r _n dev _f addr _rest; do
        cloner_say "$dev: address $addr"
    done
    ip -4 -o addr show scope global 2> /dev/null | grep -q .
}

# DHCP once more: the NIC iPXE booted from (BOOTIF=) when there is one, else every NIC.
cloner_dhcp_again() {
    for dev in /sys/class/net/*; do
        name=${dev##*/}
        [ "$name" = lo ] && continue
        if [ -n "$(getarg BOOTIF=)" ] && [ "$(fix_bootif "$(getarg BOOTIF=)")" != "$(cat "$dev/address")" ]; then continue; fi
        cloner_say "DHCP on $name"
        rm -f "/tmp/net.$name.did-setup"
        /sbin/ifup "$name" > /dev/null 2>&1 && return 0
    done
    return 1
}

command -v fix_bootif > /dev/null || . /lib/net-lib.sh
mkdir -p /run/cloner/tmp /var/lib /mnt
# EFI variables (efibootmgr writes the node's boot entry), when the node booted through EFI.
if [ -d /sys/firmware/efi ] && ! ismounted /sys/firmware/efi/efivars; then
    modprobe efivarfs 2> /dev/null
    mount -t efivarfs efivarfs /sys/firmware/efi/efivars
fi
cloner_say "installer for $(uname -r) (dracut)"
delay=30
attempt=0
while :; do
    if ! cloner_addresses; then
        cloner_say "no DHCP answer on any interface; retrying in ${delay} s"
        sleep "$delay"
        delay=$((delay * 2))
        [ "$delay" -gt 300 ] && delay=300
        cloner_dhcp_again
        continue
    fi
    attempt=$((attempt + 1))
    cloner_say "deploy attempt $attempt"
    # The agent's lines go to the console as they come; its exit code through a file.
    {
        TMPDIR=/run/cloner/tmp HOME=/run/cloner PATH=/opt/cloner/sbin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            /opt/cloner/bin/node --max-semi-space-size=8 /opt/cloner/dist/agent/cloner-agent.mjs deploy --no-reboot 2>&1
        echo $? > /run/cloner/agent.rc
    } | while IFS= read -r line; do cloner_say "$line"; done
    rc=$(cat /run/cloner/agent.rc 2> /dev/null)
    if [ "$rc" = 0 ]; then
        cloner_say "deploy done; rebooting"
        sync
        sleep 2
        # The agent unmounted the target and everything is synced; init has no reboot to ask.
        echo b > /proc/sysrq-trigger
    fi
    cloner_say "deploy failed (exit ${rc:-?}); the error is above. Retrying in ${delay} s"
    sleep "$delay"
    delay=$((delay * 2))
    [ "$delay" -gt 300 ] && delay=300
done
