/**
 * What every VM test's golden image gets first in its post-script: systemd-networkd on and a
 * oneshot unit that prints the clone's hostname, root device and eth0 address on the serial
 * console at boot (the tests wait for that `cloner-report:` line), then /etc/default made
 * for the test's own GRUB defaults.
 */
export const POST_SCRIPT_HEAD = `#!/bin/sh
set -e
cat > /etc/systemd/system/cloner-report.service <<'EOF'
[Unit]
Description=report this node's identity on the serial console
After=systemd-networkd-wait-online.service
Wants=systemd-networkd-wait-online.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "cloner-report: hostname=$(hostname) root=$(findmnt -n -o SOURCE /) $(ip -br -4 addr show dev eth0 | tr -s " ")" > /dev/ttyS0'

[Install]
WantedBy=multi-user.target
EOF
systemctl enable systemd-networkd.service cloner-report.service
mkdir -p /etc/default
`;
