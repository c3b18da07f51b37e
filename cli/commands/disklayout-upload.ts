/** disklayout-upload: check an edited layout file and store it as the next version; a bad file stores nothing. */
import type { CAC } from 'cac';
import { open } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { backendOptions, withBackend } from '../backend.ts';

const MAX_LAYOUT_BYTES = 1024 * 1024;

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout-upload', 'Upload an edited disk layout file as a new version'))
    .option('--image <name>', 'Image (accepted for cv-cloner compatibility)')
    .option('--disklayout <name>', 'Disk layout name')
    .option('--file <file>', 'The layout file (JSON, as disklayout --output writes it)')
    .action(async (o: { store?: string; disklayout?: string; file?: string }) => {
      if (!o.disklayout || !o.file) throw new UsageError('--disklayout and --file are required', 'export one with: cloner disklayout --disklayout NAME --output FILE');
      const handle = await open(String(o.file), 'r');
      let text: string;
      try {
        if ((await handle.stat()).size > MAX_LAYOUT_BYTES) throw new UsageError(`${o.file} is over 1 MiB`, 'a layout file is a small JSON document; check the file name');
        text = await handle.readFile('utf8');
      } finally {
        await handle.close();
      }
      await withBackend(o, async (backend) => {
        const { version } = await backend.saveLayout(String(o.disklayout), text);
        process.stdout.write(`disk layout ${o.disklayout} version ${version} stored\n`);
      });
    });
}
