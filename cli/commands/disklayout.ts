/** disklayout: print or save (--output) a stored disk layout, to read or to edit and upload again. */
import type { CAC } from 'cac';
import { writeFile } from 'node:fs/promises';
import { UsageError } from '../errors.ts';
import { backendOptions, withBackend } from '../backend.ts';

interface Options {
  store?: string;
  image?: string;
  disklayout?: string;
  layoutVersion?: string;
  output?: string;
  json?: boolean;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('disklayout', 'Export a disk layout (JSON); without --disklayout, list the stored layouts'))
    .option('--image <name>', 'Image (accepted for cv-cloner compatibility)')
    .option('--disklayout <name>', 'Disk layout name')
    // Not --version: cac's global --version (the program's) would take it.
    .option('--layout-version <n>', 'A version of the layout other than the latest')
    .option('--output <file>', 'Write to this file instead of standard output')
    .option('--json', 'List as JSON')
    .action(async (o: Options) => {
      const { serializeLayout } = await import('../../core/layout/model.ts');
      await withBackend(o, async (backend) => {
        if (!o.disklayout) {
          const layouts = await backend.listLayouts();
          if (o.json) process.stdout.write(`${JSON.stringify(layouts, null, 2)}\n`);
          else for (const l of layouts) process.stdout.write(`${l.name}  ${l.versions} version(s)  updated ${l.updated}\n`);
          return;
        }
        const version = o.layoutVersion === undefined ? undefined : Number(o.layoutVersion);
        if (version !== undefined && !(Number.isInteger(version) && version > 0)) throw new UsageError(`bad --layout-version ${o.layoutVersion}`, 'give a version number, e.g. --layout-version 2');
        const text = serializeLayout((await backend.loadLayout(String(o.disklayout), version)).layout);
        if (o.output) {
          await writeFile(o.output, text);
          process.stdout.write(`disk layout ${o.disklayout} written to ${o.output}; edit it and run disklayout-upload --file ${o.output}\n`);
        } else process.stdout.write(text);
      });
    });
}
