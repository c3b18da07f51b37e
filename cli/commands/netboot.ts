/**
 * netboot: set what nodes boot from the network next (local: their disk, cloner,
 * cloner-multicast), or `netboot dnsmasq-config` to print a dnsmasq proxy-DHCP + TFTP
 * snippet that hands PXE clients iPXE and chain-loads it to the server's /boot.ipxe.
 */
import type { CAC } from 'cac';
import { NETBOOT_STATES } from '../../core/nodes/states.ts';
import { serverUrl } from '../../core/api/url.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';
import { selected } from './nodes.ts';

interface Options extends BackendArgs {
  nodes?: string;
  set?: string;
  subnet?: string;
  tftpRoot: string;
}

export function dnsmasqConfig(server: string, subnet: string, tftpRoot: string): string {
  return `# dnsmasq snippet for cloner netboot (proxy DHCP: the site's DHCP server keeps handing out addresses).
# PXE firmware gets iPXE over TFTP (Debian's ipxe package: /usr/lib/ipxe/undionly.kpxe and
# ipxe.efi, copied into ${tftpRoot}); iPXE then asks ${server}/boot.ipxe, which answers
# per node: boot from disk, or boot the cloner installer.
port=0
dhcp-range=${subnet},proxy
enable-tftp
tftp-root=${tftpRoot}
dhcp-match=set:ipxe,175
pxe-prompt="cloner",0
pxe-service=tag:!ipxe,X86PC,"iPXE (BIOS)",undionly.kpxe
pxe-service=tag:!ipxe,BC_EFI,"iPXE (UEFI)",ipxe.efi
pxe-service=tag:!ipxe,X86-64_EFI,"iPXE (UEFI)",ipxe.efi
# iPXE itself (also a NIC whose firmware is iPXE) gets the URL in the proxy offer with PXE
# options, so it does not depend on a ProxyDHCP request to port 4011 (which iPXE can miss).
pxe-service=tag:ipxe,X86PC,"cloner",${server}/boot.ipxe
pxe-service=tag:ipxe,BC_EFI,"cloner",${server}/boot.ipxe
pxe-service=tag:ipxe,X86-64_EFI,"cloner",${server}/boot.ipxe
dhcp-boot=tag:ipxe,${server}/boot.ipxe
`;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('netboot [action]', 'Set the netboot state of nodes (--nodes SEL --set STATE), or print a dnsmasq config (dnsmasq-config)'))
    .option('--nodes <selector>', 'Nodes: node01,node02, node[01-64], @group')
    .option('--set <state>', `One of ${NETBOOT_STATES.join(', ')}`)
    .option('--subnet <address>', 'With dnsmasq-config: the network the nodes boot on, e.g. 198.18.0.0')
    .option('--tftp-root <dir>', 'With dnsmasq-config: where undionly.kpxe and ipxe.efi are', { default: '/srv/tftp' })
    .action(async (action: string | undefined, o: Options) => {
      if (action === 'dnsmasq-config') {
        if (!o.server) throw new UsageError('dnsmasq-config needs --server', 'the URL nodes reach the cloner server at, e.g. --server http://198.18.0.1:8740');
        if (!o.subnet || !/^\d{1,3}(\.\d{1,3}){3}$/.test(String(o.subnet))) throw new UsageError('dnsmasq-config needs --subnet', 'the network address the nodes boot on, e.g. --subnet 198.18.0.0');
        if (!/^\/[\w./-]*$/.test(o.tftpRoot)) throw new UsageError(`bad --tftp-root ${o.tftpRoot}`, 'an absolute directory path');
        process.stdout.write(dnsmasqConfig(serverUrl(String(o.server)), String(o.subnet), o.tftpRoot));
        return;
      }
      if (action !== undefined) throw new UsageError(`unknown netboot action ${action}`, 'use --nodes SEL --set STATE, or dnsmasq-config');
      if (!o.set || !NETBOOT_STATES.includes(o.set as never)) throw new UsageError(`--set must be one of ${NETBOOT_STATES.join(', ')}`, 'e.g. cloner netboot --nodes node[01-04] --set cloner');
      await withBackend(o, async (backend) => {
        const changed = [];
        for (const n of await selected(backend, o.nodes)) {
          changed.push(await backend.changeNode(n.name, [`netboot=${o.set}`], false));
          process.stdout.write(`${n.name}: netboot ${o.set}\n`);
        }
        for (const w of await (await import('../installer-notes.ts')).installerWarnings(backend, o, changed)) process.stderr.write(`warning: ${w}\n`);
      });
    });
}
