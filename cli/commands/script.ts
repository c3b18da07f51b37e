/** script: set or get an image's pre- or post-script (run before partitioning / chrooted after the copy). */
import type { CAC } from 'cac';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { readSmallFile, writeOut } from '../small-file.ts';
import { UsageError } from '../errors.ts';

interface Options extends BackendArgs {
  image?: string;
  type?: string;
  set?: string;
  get?: boolean;
  output?: string;
}

export function register(cli: CAC): void {
  backendOptions(cli.command('script', 'Set (--set FILE) or get (--get) the pre- or post-script of an image'))
    .option('--image <name>', 'Image name')
    .option('--type <type>', 'pre or post')
    .option('--set <file>', 'Upload this script')
    .option('--get', 'Print the stored script (or write it to --output)')
    .option('--output <file>', 'With --get: write to this file')
    .action(async (o: Options) => {
      if (!o.image || (o.type !== 'pre' && o.type !== 'post')) throw new UsageError('--image and --type pre|post are required', 'e.g. cloner script --image node --type post --set post.sh');
      if (!o.set === !o.get) throw new UsageError('give one of --set FILE and --get', 'e.g. --get --output post.sh');
      await withBackend(o, async (backend) => {
        if (o.set) {
          const body = await readSmallFile(String(o.set), 'a script');
          const version = await backend.putAttachment(o.image!, 'script', o.type!, body);
          process.stdout.write(`${o.type}-script of image ${o.image}: version ${version} stored\n`);
        } else {
          const { body } = await backend.getAttachment(o.image!, 'script', o.type!);
          await writeOut(body, o.output, `${o.type}-script`);
        }
      });
    });
}
