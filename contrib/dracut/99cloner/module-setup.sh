#!/bin/bash
# dracut module of the cloner installer (99: it installs after udev-rules and can drop what
# that brought for seats), the alternative to contrib/initramfs/ on goldens
# whose initramfs generator is dracut (RHEL family). `cloner make-installer` runs dracut
# with this module (--add cloner, copied into a private dracutbasedir) and without systemd
# in the initrd, so dracut's shell init runs the hooks:
#   cmdline 95 parse-cloner.sh     boot=cloner stands for the root (nothing to mount), and
#                                  cloner.dhcp_timeout goes into dhclient.conf;
#   initqueue/timeout cloner-nonet.sh  no DHCP answer: stop waiting, the deploy loop retries;
#   pre-mount 99 cloner-deploy.sh  the deploy loop (network up by dracut: rd.neednet=1 ip=dhcp).
# What goes in is what hooks/cloner of initramfs-tools adds: the project's Node 24 and the
# agent bundle with its native addons (staged by make-installer in $CLONER_STAGE), the
# deploy tools found on the golden ($CLONER_TOOLS, absolute paths) with their libraries,
# and the drivers of the file systems, RAID and device-mapper targets a layout may use.

# Only when make-installer asks for it (--add cloner): never part of a node's own initramfs.
check() {
    return 255
}

# DHCP without systemd in the initrd: network-legacy (dhclient) where the golden has it,
# named before network so network's own pick (systemd-networkd when the golden has that
# binary, though it is omitted here) does not apply; else network's pick (network-manager
# on RHEL 9, which has no network-legacy).
depends() {
    if [ -d "$dracutbasedir/modules.d/35network-legacy" ] && require_binaries dhclient > /dev/null 2>&1; then
        echo network-legacy network udev-rules
    else
        echo network udev-rules
    fi
    return 0
}

installkernel() {
    hostonly='' instmods ext4 xfs btrfs vfat nls_cp437 nls_ascii nls_utf8 raid0 raid1 raid10 raid456 linear \
        dm_mod dm_raid efivarfs af_packet virtio_pci virtio_blk virtio_scsi virtio_net virtio_rng \
        xhci_pci ehci_pci ohci_pci uhci_hcd usbhid hid_generic
    # Network drivers and disk controllers, not every module of the kernel.
    hostonly='' instmods '=drivers/net/ethernet' '=drivers/net/virtio_net' '=drivers/block' '=drivers/ata' \
        '=drivers/scsi' '=drivers/nvme' '=drivers/mmc' '=drivers/md'
}

install() {
    if [ ! -d "${CLONER_STAGE:-}" ]; then
        derror "cloner: CLONER_STAGE is not a directory"
        return 1
    fi
    # Node (its libraries come along), the agent and its addons.
    inst_binary "$CLONER_STAGE/opt/cloner/bin/node" /opt/cloner/bin/node
    local f
    while IFS= read -r f; do
        case "$f" in
            opt/cloner/bin/node) ;;
            *.node) inst_binary "$CLONER_STAGE/$f" "/$f" ;;
            *) inst_simple "$CLONER_STAGE/$f" "/$f" ;;
        esac
    done < <(cd "$CLONER_STAGE" && find opt/cloner -type f)
    # The deploy tools in /opt/cloner/sbin, first in the agent's PATH (as with initramfs-tools).
    local tool
    for tool in ${CLONER_TOOLS:-}; do
        inst_binary "$tool" "/opt/cloner/sbin/${tool##*/}"
    done
    # The agent calls lvm's sub-commands by their own names.
    if [ -x "$initdir/opt/cloner/sbin/lvm" ]; then
        local sub
        for sub in pvs vgs lvs pvcreate vgcreate lvcreate vgchange lvchange pvremove vgremove lvremove vgscan pvscan; do
            [ -e "$initdir/opt/cloner/sbin/$sub" ] || ln -s lvm "$initdir/opt/cloner/sbin/$sub"
        done
    fi
    # ssh-keygen wants to know who it runs as.
    grep -q '^root:' "$initdir/etc/passwd" 2>/dev/null || echo 'root:x:0:0:root:/root:/bin/sh' >> "$initdir/etc/passwd"
    grep -q '^root:' "$initdir/etc/group" 2>/dev/null || echo 'root:x:0:' >> "$initdir/etc/group"
    # Not reboot: on a systemd golden it is systemctl (cloner-deploy.sh reboots through sysrq).
    inst_multiple -o sync sleep cat readlink
    # The network comes up in the initqueue: DHCP on the NIC iPXE booted from (BOOTIF=), else
    # on every NIC until one answers; each dhclient gives up after cloner.dhcp_timeout
    # (parse-cloner.sh writes it into dhclient.conf: Debian's dhclient has no --timeout for
    # rd.net.timeout.dhcp). rd.retry=20: no lease within 2/3 of init's wait (about 13 s on
    # hardware; minutes under emulation, where each turn of init's loop is slow), then
    # cloner-nonet.sh ends the wait and the deploy loop retries DHCP after its back-off,
    # instead of init's emergency shell. The kernel line's rd.retry= wins over this.
    mkdir -p "$initdir/etc/cmdline.d"
    echo 'rd.neednet=1 ip=dhcp rd.retry=20' > "$initdir/etc/cmdline.d/50cloner.conf"
    inst_hook cmdline 95 "$moddir/parse-cloner.sh"
    inst_hook initqueue/timeout 99 "$moddir/cloner-nonet.sh"
    inst_hook pre-mount 99 "$moddir/cloner-deploy.sh"
    # What udev-rules (95, before this 99) brought for seats: 71-seat.rules runs loginctl,
    # which on a systemd golden brings libsystemd-shared (~3.4 MB) along.
    rm -f "$initdir"/usr/lib/udev/rules.d/7[13]-seat*.rules "$initdir"/lib/udev/rules.d/7[13]-seat*.rules \
        "$initdir"/usr/bin/loginctl "$initdir"/bin/loginctl
    local lib
    for lib in "$initdir"/usr/lib/*/libsystemd-shared-*.so "$initdir"/usr/lib/*/systemd/libsystemd-shared-*.so "$initdir"/lib/*/libsystemd-shared-*.so \
        "$initdir"/usr/lib/systemd/libsystemd-shared-*.so "$initdir"/lib/systemd/libsystemd-shared-*.so; do
        [ -e "$lib" ] || continue
        grep -rlq --exclude="${lib##*/}" "${lib##*/}" "$initdir"/usr/bin "$initdir"/usr/sbin "$initdir"/usr/lib/systemd \
            "$initdir"/usr/lib/udev "$initdir"/opt/cloner/sbin 2> /dev/null || rm -f "$lib"
    done
}
