#!/bin/bash
# dracut module of the cloner installer, the alternative to contrib/initramfs/ on goldens
# whose initramfs generator is dracut (RHEL family). `cloner make-installer` runs dracut
# with this module (--add cloner, copied into a private dracutbasedir) and without systemd
# in the initrd, so dracut's shell init runs the hooks:
#   cmdline 95 parse-cloner.sh   boot=cloner stands for the root (nothing to mount);
#   pre-mount 99 cloner-deploy.sh  the deploy loop (network up by dracut: rd.neednet=1 ip=dhcp).
# What goes in is what hooks/cloner of initramfs-tools adds: the project's Node 24 and the
# agent bundle with its native addons (staged by make-installer in $CLONER_STAGE), the
# deploy tools found on the golden ($CLONER_TOOLS, absolute paths) with their libraries,
# and the drivers of the file systems, RAID and device-mapper targets a layout may use.

# Only when make-installer asks for it (--add cloner): never part of a node's own initramfs.
check() {
    return 255
}

depends() {
    echo network udev-rules
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
    inst_multiple -o sync reboot sleep cat readlink
    # The network comes up in the initqueue: DHCP on every NIC, the one iPXE booted from (BOOTIF=) first.
    mkdir -p "$initdir/etc/cmdline.d"
    echo 'rd.neednet=1 ip=dhcp rd.net.timeout.dhcp=15' > "$initdir/etc/cmdline.d/50cloner.conf"
    inst_hook cmdline 95 "$moddir/parse-cloner.sh"
    inst_hook pre-mount 99 "$moddir/cloner-deploy.sh"
}
