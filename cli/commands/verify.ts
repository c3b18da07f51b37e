/** verify: re-read every chunk and every image's references (on the server, or a local store). */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('verify', 'Check every stored chunk (BLAKE3) and that every image is complete'))
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { json?: boolean }) => {
      await withBackend(o, async (backend) => {
        const report = await backend.verify();
        if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else {
          process.stdout.write(`checked ${report.checked} chunks: ${report.missing.length} missing, ${report.corrupt.length} corrupt\n`);
          for (const id of report.missing) process.stdout.write(`missing ${id}\n`);
          for (const id of report.corrupt) process.stdout.write(`corrupt ${id}\n`);
          for (const i of report.incomplete) process.stdout.write(`image ${i.image} revision ${i.revision} is incomplete: ${i.error ?? `${i.missing} chunks missing`}\n`);
        }
        if (!report.ok) process.exitCode = 3;
      });
    });
}
