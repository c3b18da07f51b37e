/**
 * fix-efiboot: on an installed node, replace the EFI boot entries of earlier systems with
 * one for this system's loader on its ESP (/boot/efi), as a deploy does at its end.
 */
import type { CAC } from 'cac';

export function register(cli: CAC): void {
  cli
    .command('fix-efiboot', 'Repair the EFI boot entry of this installed system (ESP at /boot/efi)')
    .option('--root <dir>', 'Root of the installed system (its ESP mounted at ROOT/boot/efi)', { default: '/' })
    .option('--label <text>', 'Entry label (default: the one the deploy used, from /var/lib/cloner/deployed.json)')
    .option('--dry-run', 'Show what would change, change nothing')
    .option('--json', 'Print the actions as JSON')
    .action(async (o: { root: string; label?: string; dryRun?: boolean; json?: boolean }) => {
      const { fixEfiBoot } = await import('../../core/boot/efi.ts');
      const actions = await fixEfiBoot({ root: String(o.root), label: o.label, dryRun: !!o.dryRun, log: o.json ? () => {} : (line) => process.stdout.write(`${o.dryRun ? '(dry run) ' : ''}${line}\n`) });
      if (o.json) process.stdout.write(`${JSON.stringify({ dryRun: !!o.dryRun, actions }, null, 2)}\n`);
    });
}
