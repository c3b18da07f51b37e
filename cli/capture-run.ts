/** The capture half shared by new-image and update-filesystem: walk, upload what the server lacks, commit. */
import type { Layout } from '../core/layout/model.ts';
import { captureTree, newCaptureProgress } from '../core/tree/capture.ts';
import { countTree } from '../core/tree/count.ts';
import { isMissingChunksRefusal, LEFT_OUT_LISTED, leftOutToKeep, type LeftOutPath, type Revision } from '../core/tree/images.ts';
import { imageSelection } from '../core/tree/select.ts';
import type { Backend } from './backend.ts';
import { formatBytes, ProgressReporter } from './progress.ts';
import { chunkIdOf, type ChunkId } from '../core/store/chunk-id.ts';
import { encodeChunk } from '../core/store/codec.ts';

/**
 * The store a dry run captures into: it answers presence from the real store (so
 * incremental reads and "already there" are true) and counts, instead of storing, what is
 * new; chunks it was given stay readable in memory for the rest of the capture.
 */
function dryRunWriter(backend: Backend) {
  const real = backend.chunks;
  const kept = new Map<ChunkId, Buffer>();
  const seen = new Set<ChunkId>();
  const state = { newChunks: 0, newBytes: 0, knownBytes: 0 };
  let pending: Array<{ id: ChunkId; size: number }> = [];
  const settle = async () => {
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    const present = await real.hasMany(batch.map((b) => b.id));
    batch.forEach((b, i) => {
      if (present[i]) state.knownBytes += b.size;
      else {
        state.newChunks++;
        state.newBytes += b.size;
      }
    });
  };
  return {
    get newChunks() { return state.newChunks; },
    get newBytes() { return state.newBytes; },
    get knownBytes() { return state.knownBytes; },
    hasMany: async (ids: readonly ChunkId[]) => {
      const present = await real.hasMany(ids);
      return ids.map((id, i) => present[i] || kept.has(id));
    },
    get: async (id: ChunkId) => kept.get(id) ?? real.get(id),
    getMany: async function* (ids: Iterable<ChunkId>) {
      for (const id of new Set(ids)) yield [id, kept.get(id) ?? (await real.get(id))] as [ChunkId, Buffer];
    },
    put: async (data: Uint8Array, knownId?: ChunkId) => {
      const id = knownId ?? chunkIdOf(data);
      if (!seen.has(id)) {
        seen.add(id);
        // Sized as it would travel: LZ4-encoded when that saves, as the uploader sends it.
        pending.push({ id, size: encodeChunk(data, id).data.length });
        if (data.length < 1024 * 1024) kept.set(id, Buffer.from(data));
        if (pending.length >= 1000) await settle();
      }
      return id;
    },
    flush: settle,
  };
}

/** The capture summary's left-out part: a count by reason, then the first paths. */
export function formatLeftOut(leftOut: LeftOutPath[], image: string, total = leftOut.length, shown = 20): string {
  const byWhy = new Map<string, number>();
  for (const l of leftOut) byWhy.set(l.why.replace(/ \([A-Z]+\)/, ''), (byWhy.get(l.why.replace(/ \([A-Z]+\)/, '')) ?? 0) + 1);
  const lines = [`left out ${total} path(s): ${[...byWhy].map(([why, n]) => `${n} ${why}`).join('; ')}${total > leftOut.length ? ` (of the first ${leftOut.length})` : ''}`];
  for (const l of leftOut.slice(0, shown)) lines.push(`  ${l.path}: ${l.why}`);
  if (leftOut.length > shown) lines.push(`  ... and ${total - shown} more (cloner image-details --image ${image} --json lists ${Math.min(total, LEFT_OUT_LISTED)})`);
  return `${lines.join('\n')}\n`;
}

export interface CaptureRunOptions {
  backend: Backend;
  image: string;
  root: string;
  exclude: string[];
  create: boolean;
  note?: string;
  /** Disk layout name the revision refers to (kept from the previous revision when absent). */
  layout?: string;
  /** That layout itself when the caller has it (a dry run's layout captured now is not stored). */
  layoutDoc?: Layout;
  /** The image's last revision when the caller has read it already (else read here, unless `create`). */
  parent?: Revision;
  /** The image options object (kept from the previous revision when absent). */
  options?: string;
  /** Scan, chunk and hash everything, ask the server what it lacks, send and commit nothing. */
  dryRun?: boolean;
  quiet?: boolean;
}

export async function runCapture(o: CaptureRunOptions): Promise<{ revision: Revision; seconds: number; newBytes: number; logicalBytes: number; files: number }> {
  const { backend } = o;
  const previous = o.create ? undefined : o.parent ?? (await backend.getImage(o.image))?.revisions.at(-1);
  // The layout's filesystems (/boot/efi, /home...) are part of the image; other mounts are not.
  const layoutName = o.layout ?? previous?.layout;
  const layoutDoc = o.layoutDoc ?? (layoutName ? (await backend.loadLayout(layoutName)).layout : undefined);
  // Imported only when there is a layout: the module compiles its JSON schema as it loads (~50 ms of a no-op update's start).
  const includeMounts = layoutDoc ? (await import('../core/layout/model.ts')).layoutMounts(layoutDoc) : [];
  const before = await backend.bytesMark();
  const dry = o.dryRun ? dryRunWriter(backend) : null;
  const progress = newCaptureProgress();
  // One selection for the count and the capture, so the total is what the capture reads.
  const selection = await imageSelection({ root: o.root, exclude: o.exclude, includeMounts });
  // A new image's total is counted beside the capture: it (and so the ETA) shows once the
  // count is done. An update's is its parent revision's, an estimate shown as "~": a second
  // walk of the whole tree beside the capture was ~15% of a no-op update's CPU.
  const estimate = previous?.stats;
  let total: { files: number; bytes: number } | undefined;
  if (!estimate) void countTree(selection).then((c) => (total = c), () => {});
  const sentBefore = backend.transfer();
  const reporter = new ProgressReporter('capture', () => {
    const extra = [`${progress.reusedFiles} unchanged`];
    const t = backend.transfer();
    if (t && sentBefore) {
      // The share is of raw bytes on both sides (a chunk the server has is never compressed).
      const sentRaw = t.sentRaw - sentBefore.sentRaw;
      const known = t.alreadyStored - sentBefore.alreadyStored;
      extra.push(`${formatBytes(t.sent - sentBefore.sent)} sent`, `${sentRaw + known ? Math.round((100 * known) / (sentRaw + known)) : 0}% already on the server`);
    }
    if (estimate) return { files: progress.files, bytes: progress.bytes, totalFiles: Math.max(estimate.files, progress.files), totalBytes: Math.max(estimate.bytes, progress.bytes), estimated: true, extra: extra.join(', ') };
    return { files: progress.files, bytes: progress.bytes, totalFiles: total?.files, totalBytes: total?.bytes, extra: extra.join(', ') };
  }, { quiet: o.quiet });
  // The hold keeps every chunk this upload relies on from a concurrent GC until the commit.
  const hold = backend.hold();
  const started = performance.now();
  // An update trusts its parent revision's chunks (no question per directory, core/tree/capture-parent.ts);
  // when the commit finds one of them gone (pruned since), the tree is captured again, checked.
  const capture = (trustParent: boolean) => {
    Object.assign(progress, newCaptureProgress());
    return captureTree({
      root: o.root,
      store: dry ?? backend.chunks,
      chunker: backend.chunker,
      parentTree: previous?.tree,
      trustParent,
      selection,
      progress,
      onWarning: (m) => process.stderr.write(`warning: ${m}\n`),
    });
  };
  const trusting = !!previous && !dry;
  try {
    let result = await capture(trusting);
    let seconds = (performance.now() - started) / 1000;
    if (dry) {
      await dry.flush();
      process.stdout.write(`dry run: image ${o.image} would have ${progress.files} files, ${formatBytes(progress.bytes)}; ${dry.newChunks} new chunks, ${formatBytes(dry.newBytes)} to send (${formatBytes(dry.knownBytes)} already on the ${backend.where.split(' ')[0]}); nothing was sent\n`);
      return { revision: { n: 0, created: '', parent: previous?.n ?? null, tree: result.tree, layout: o.layout ?? null, options: o.options ?? null, note: 'dry run', stats: { files: progress.files, bytes: progress.bytes } }, seconds, newBytes: dry.newBytes, logicalBytes: progress.bytes, files: progress.files };
    }
    const commit = () => {
      const leftOut = result.leftOut;
      const stats = { files: progress.files, bytes: progress.bytes, ...(leftOut.length ? { leftOut: leftOut.length } : {}) };
      return backend.commitRevision(o.image, { tree: result.tree, note: o.note, layout: o.layout, options: o.options, stats, ...(leftOut.length ? { leftOut: leftOutToKeep(leftOut) } : {}) }, o.create);
    };
    let revision: Revision;
    try {
      revision = await commit();
    } catch (err) {
      if (!trusting || !isMissingChunksRefusal(err)) throw err;
      process.stderr.write(`note: ${(err as Error).message}; some chunks of revision ${previous!.n} are gone from the store: capturing again, asking for each one\n`);
      result = await capture(false);
      seconds = (performance.now() - started) / 1000;
      revision = await commit();
    }
    const leftOut = result.leftOut;
    const newBytes = (await backend.bytesMark()) - before;
    if (!o.quiet) {
      process.stdout.write(
        `image ${o.image} revision ${revision.n}: ${progress.files} files, ${formatBytes(progress.bytes)} in ${seconds.toFixed(1)}s ` +
          `(${formatBytes(progress.bytes / seconds)}/s); new data stored ${formatBytes(newBytes)}; ${progress.reusedFiles} files unchanged, ${formatBytes(progress.readBytes)} read\n`,
      );
      if (leftOut.length) process.stdout.write(formatLeftOut(leftOut, o.image));
    }
    return { revision, seconds, newBytes, logicalBytes: progress.bytes, files: progress.files };
  } finally {
    hold.release();
    reporter.stop();
  }
}
