/**
 * Runs inside the test VM (node /src/test/layout/vm-layout-tool.ts ...), so the VM layout
 * test can drive core/layout on disks the host kernel cannot handle (md, LVM, vfat):
 *   capture ROOT                      -> the captured layout (JSON)
 *   apply LAYOUT TARGET DEV[,DEV...]  -> the applied plan (JSON), with force
 *   sync LAYOUT DEV[,DEV...]          -> the sync report (JSON)
 *   dry-run LAYOUT DEV[,DEV...]       -> the plan as shell commands
 */
import { readFile } from 'node:fs/promises';
import { captureLayout } from '../../core/layout/capture.ts';
import { applyLayout, formatPlan } from '../../core/layout/apply.ts';
import { checkLayoutSync } from '../../core/layout/sync.ts';
import { parseLayout } from '../../core/layout/model.ts';

const [command, ...args] = process.argv.slice(2);
const layoutAt = async (file: string) => parseLayout(await readFile(file, 'utf8'));
const list = (s: string) => s.split(',');

if (command === 'capture') {
  process.stdout.write(JSON.stringify((await captureLayout({ root: args[0] })).layout));
} else if (command === 'apply') {
  const plan = await applyLayout(await layoutAt(args[0]), { target: args[1], devices: list(args[2]), force: true });
  process.stdout.write(JSON.stringify(plan));
} else if (command === 'sync') {
  process.stdout.write(JSON.stringify(await checkLayoutSync(await layoutAt(args[0]), { devices: list(args[1]) })));
} else if (command === 'dry-run') {
  process.stdout.write(formatPlan(await applyLayout(await layoutAt(args[0]), { devices: list(args[1]), dryRun: true, force: true, target: '/mnt/never' })));
} else {
  process.stderr.write('usage: vm-layout-tool.ts capture ROOT | apply LAYOUT TARGET DEVS | sync LAYOUT DEVS | dry-run LAYOUT DEVS\n');
  process.exit(2);
}
