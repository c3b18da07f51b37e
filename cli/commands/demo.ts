/**
 * demo: the README's main job until the server lands. Captures a real directory tree into
 * a new local store, captures it again (incremental: nothing re-read), restores it into an
 * empty directory, checks the copy with `rsync -naHAX --itemize-changes`, runs verify, and
 * prints the figures. Temporary directories are removed unless --keep.
 */
import type { CAC } from 'cac';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { formatBytes } from '../progress.ts';

export function register(cli: CAC): void {
  cli
    .command('demo', 'Capture a real tree into a local store, restore it, compare (the README main job)')
    .option('--root <dir>', 'Tree to capture', { default: '/usr/share' })
    .option('--work <dir>', 'Where to put the temporary store and copy', { default: tmpdir() })
    .option('--keep', 'Keep the store and the restored copy')
    .action(async (o: { root: string; work: string; keep?: boolean }) => {
      const { localBackend } = await import('../backend-local.ts');
      const { runCapture } = await import('../capture-run.ts');
      const { newRestoreProgress, restoreTree } = await import('../../core/tree/restore.ts');
      const { getImage } = await import('../../core/tree/images.ts');
      const { LocalStore } = await import('../../core/store/local.ts');
      const work = await mkdtemp(path.join(o.work, 'cloner-demo-'));
      const storeDir = path.join(work, 'store');
      const copy = path.join(work, 'copy');
      try {
        const store = await LocalStore.open(storeDir, { create: true });
        try {
          const backend = localBackend(store, storeDir);
          const first = await runCapture({ backend, image: 'demo', root: o.root, exclude: [], create: true, note: 'demo' });
          const second = await runCapture({ backend, image: 'demo', root: o.root, exclude: [], create: false, note: 'unchanged' });
          const image = await getImage(store, 'demo');
          await mkdir(copy);
          const progress = newRestoreProgress();
          const started = performance.now();
          await restoreTree({ reader: store, tree: image!.revisions[0].tree, target: copy, progress, onWarning: (m) => process.stderr.write(`warning: ${m}\n`) });
          const restoreSecs = (performance.now() - started) / 1000;
          const rsync = spawnSync('rsync', ['-naHAX', '--itemize-changes', `${o.root}/`, `${copy}/`], { encoding: 'utf8', maxBuffer: 64 << 20 });
          const differences = rsync.status === 0 ? rsync.stdout.split('\n').filter(Boolean) : null;
          const verify = await store.verify();
          const stats = await store.stats();
          const mb = (b: number, s: number) => (b / 1e6 / s).toFixed(1);
          process.stdout.write(
            [
              `tree ${o.root}: ${first.files} files, ${formatBytes(first.logicalBytes)}`,
              `capture:    ${first.seconds.toFixed(2)} s, ${mb(first.logicalBytes, first.seconds)} MB/s, ${(first.files / first.seconds).toFixed(0)} files/s, stored ${formatBytes(stats.packBytes)} (${((100 * stats.packBytes) / Math.max(1, first.logicalBytes)).toFixed(1)}% of logical)`,
              `recapture:  ${second.seconds.toFixed(2)} s, stored growth ${formatBytes(second.newBytes)}`,
              `restore:    ${restoreSecs.toFixed(2)} s, ${mb(progress.bytes, restoreSecs)} MB/s, ${(progress.entries / restoreSecs).toFixed(0)} entries/s`,
              `rsync -naHAX differences: ${differences === null ? `rsync failed: ${rsync.stderr.trim() || rsync.error?.message}` : differences.length}`,
              ...(differences ?? []).slice(0, 10).map((d) => `  ${d}`),
              `verify: ${verify.checked} chunks, ${verify.missing.length} missing, ${verify.corrupt.length} corrupt`,
            ].join('\n') + '\n',
          );
          if (differences === null || differences.length > 0 || verify.missing.length || verify.corrupt.length) process.exitCode = 3;
        } finally {
          await store.close();
        }
      } finally {
        if (o.keep) process.stdout.write(`kept ${work}\n`);
        else await rm(work, { recursive: true, force: true });
      }
    });
}
