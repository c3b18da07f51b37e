/** biossettings-upload: store a BIOS settings file (exported with syscfg) with an image, under a name. */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { readSmallFile } from '../small-file.ts';
import { UsageError } from '../errors.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('biossettings-upload', 'Store BIOS settings (a syscfg export) with an image'))
    .option('--image <name>', 'Image name')
    .option('--biossettings <name>', 'Name for these settings')
    .option('--file <file>', 'The settings file')
    .action(async (o: BackendArgs & { image?: string; biossettings?: string; file?: string }) => {
      if (!o.image || !o.biossettings || !o.file) throw new UsageError('--image, --biossettings and --file are required', 'e.g. cloner biossettings-upload --image node --biossettings s2600 --file bios.ini');
      await withBackend(o, async (backend) => {
        const body = await readSmallFile(String(o.file), 'BIOS settings');
        const version = await backend.putAttachment(o.image!, 'bios', String(o.biossettings), body);
        process.stdout.write(`BIOS settings ${o.biossettings} of image ${o.image}: version ${version} stored\n`);
      });
    });
}
