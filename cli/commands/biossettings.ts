/** biossettings: print or save (--output) named BIOS settings stored with an image. */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { writeOut } from '../small-file.ts';
import { UsageError } from '../errors.ts';

export function register(cli: CAC): void {
  backendOptions(cli.command('biossettings', 'Show BIOS settings stored with an image (syscfg format)'))
    .option('--image <name>', 'Image name')
    .option('--biossettings <name>', 'Name the settings were uploaded under')
    .option('--output <file>', 'Write to this file instead of standard output')
    .action(async (o: BackendArgs & { image?: string; biossettings?: string; output?: string }) => {
      if (!o.image || !o.biossettings) throw new UsageError('--image and --biossettings are required', 'e.g. cloner biossettings --image node --biossettings s2600 --output bios.ini');
      await withBackend(o, async (backend) => {
        const { body } = await backend.getAttachment(o.image!, 'bios', String(o.biossettings));
        await writeOut(body, o.output, `BIOS settings ${o.biossettings}`);
      });
    });
}
