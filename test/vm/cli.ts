/**
 * The VM harness by hand: `npm run vm:build` makes (or finds) the cached VM image;
 * `npm run vm -- [--disks 2G,2G] [--uefi] [--net PORT,...] 'script'` boots a fresh VM,
 * runs the script in it (cwd /src, the project tree) and prints its output and the
 * kernel console on failure; the exit code is the script's.
 */
import { parseArgs } from 'node:util';
import { ensureVmImage, readRecipe } from './image.ts';
import { withVm, vmUnavailable } from './harness.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    disks: { type: 'string', default: '' },
    uefi: { type: 'boolean', default: false },
    net: { type: 'string', default: '' },
    'timeout-s': { type: 'string', default: '600' },
  },
});
const log = (line: string) => process.stderr.write(`${line}\n`);

if (positionals[0] === 'build') {
  const image = await ensureVmImage(log);
  console.log(JSON.stringify({ ...image, recipe: readRecipe(image) }, null, 2));
} else {
  const script = positionals.join(' ');
  if (!script) {
    log('usage: npm run vm -- [--disks 2G,2G] [--uefi] [--net PORT,...] "script"  |  npm run vm:build');
    process.exit(2);
  }
  const net = values.net ? { hostPorts: values.net.split(',').map(Number) } : undefined;
  const blocker = vmUnavailable({ uefi: values.uefi, net });
  if (blocker) {
    log(`cannot run a VM here: ${blocker}`);
    process.exit(2);
  }
  const timeoutMs = Number(values['timeout-s']) * 1000;
  const disks = values.disks ? values.disks.split(',') : [];
  const code = await withVm({ disks, uefi: values.uefi, net, timeoutMs: timeoutMs + 300_000, log }, async (vm) => {
    const result = await vm.run(script, { timeoutMs });
    process.stdout.write(result.output);
    if (result.code !== 0) log(`exit ${result.code}; console:\n${vm.consoleLog().split('\n').slice(-20).join('\n')}`);
    return result.code;
  });
  process.exit(code);
}
