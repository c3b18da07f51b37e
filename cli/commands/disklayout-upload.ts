/** disklayout-upload: check an edited layout file and store it as the next version; a bad file stores nothing. */
import type { CAC } from 'cac';
import { UsageError } from '../errors.ts';
import { readSmallFile } from '../small-file.ts';
import { backendOptions, withBackend } from '../backend.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout-upload', 'Upload an edited disk layout file as a new version'))
    .option('--image <name>', 'Image (accepted for cv-cloner compatibility)')
    .option('--disklayout <name>', 'Disk layout name')
    .option('--file <file>', 'The layout file (JSON, as disklayout --output writes it)')
    .action(async (o: { store?: string; disklayout?: string; file?: string }) => {
      if (!o.disklayout || !o.file) throw new UsageError('--disklayout and --file are required', 'export one with: cloner disklayout --disklayout NAME --output FILE');
      const text = (await readSmallFile(String(o.file), 'a layout file')).toString('utf8');
      await withBackend(o, async (backend) => {
        const { version } = await backend.saveLayout(String(o.disklayout), text);
        process.stdout.write(`disk layout ${o.disklayout} version ${version} stored\n`);
      });
    });
}
