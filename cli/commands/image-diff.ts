/**
 * image-diff: what changed between two revisions of an image (paths added, removed and
 * changed, with file sizes), computed by core/tree/diff.ts from the two trees, as the web
 * interface's image page shows it. Works on a server (the client reads the directory
 * objects it needs) or a local store. `--json` prints the whole diff.
 */
import type { CAC } from 'cac';
import { formatBytes, printable } from '../../core/format.ts';
import { ImageNotFoundError } from '../../core/store/errors.ts';
import { backendOptions, withBackend, type BackendArgs } from '../backend.ts';
import { UsageError } from '../errors.ts';

const revisionNumber = (flag: string, value: unknown) => {
  if (!/^[1-9]\d{0,8}$/.test(String(value))) throw new UsageError(`${flag} must be a revision number`, 'see the revisions with: cloner image-details --image NAME');
  return Number(value);
};

export function register(cli: CAC): void {
  backendOptions(cli.command('image-diff', 'What changed between two revisions of an image: paths added, removed, changed, with sizes'))
    .option('--image <name>', 'Image name')
    .option('--from <n>', 'The older revision (default: the one before --to)')
    .option('--to <n>', 'The newer revision (default: the latest)')
    .option('--limit <n>', 'List at most this many paths (the totals count all)', { default: 10_000 })
    .option('--json', 'Print JSON')
    .action(async (o: BackendArgs & { image?: string; from?: unknown; to?: unknown; limit?: unknown; json?: boolean }) => {
      if (!o.image) throw new UsageError('--image is required', 'e.g. cloner image-diff --image node --from 3 --to 4');
      const limit = Number(o.limit);
      if (!Number.isInteger(limit) || limit < 0 || limit > 10_000_000) throw new UsageError('--limit must be a whole number from 0 to 10000000', 'e.g. --limit 100');
      const { revisionDiff } = await import('../../core/tree/diff.ts');
      await withBackend(o, async (backend) => {
        const image = await backend.getImage(String(o.image));
        if (!image) throw new ImageNotFoundError(`no image named ${o.image}`, 'list images with image-list');
        const to = o.to === undefined ? image.revisions.at(-1)?.n : revisionNumber('--to', o.to);
        const from = o.from === undefined ? (to === undefined ? undefined : image.revisions.filter((r) => r.n < to).at(-1)?.n) : revisionNumber('--from', o.from);
        if (to === undefined || from === undefined) throw new UsageError(`image ${image.name} has no earlier revision to compare with`, 'pass --from and --to');
        const d = await revisionDiff(backend.chunks, image, from, to, limit);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
          return;
        }
        const sign = { added: '+', removed: '-', changed: '~' } as const;
        for (const e of d.entries) {
          const size = e.kind === 'changed' ? (e.fromBytes !== null && e.toBytes !== null ? `${formatBytes(e.fromBytes)} -> ${formatBytes(e.toBytes)}` : '') : e.type === 'file' ? formatBytes((e.toBytes ?? e.fromBytes) ?? 0) : '';
          const parts = [`${sign[e.kind]} ${e.type.padEnd(7)} ${printable(e.path)}`, size, e.what.length ? `(${e.what.join(', ')})` : ''];
          process.stdout.write(`${parts.filter(Boolean).join('  ')}\n`);
        }
        if (d.truncated) process.stdout.write(`... the first ${d.entries.length} paths listed (--limit)\n`);
        process.stdout.write(`image ${image.name} revision ${from} -> ${to}: ${d.added.entries} added (${d.added.files} files, ${formatBytes(d.added.bytes)}), ${d.removed.entries} removed (${d.removed.files} files, ${formatBytes(d.removed.bytes)}), ${d.changed.entries} changed (${d.changed.files} files, ${formatBytes(d.changed.fromBytes)} -> ${formatBytes(d.changed.bytes)})\n`);
      });
    });
}
