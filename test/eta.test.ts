/**
 * The ETA counts files as well as bytes (core/eta.ts): after a phase of large files, a tail
 * of many small files is estimated from what a file costs (fitted from the samples), not
 * from the few bytes left; work where files and bytes grow in step is estimated from the
 * common rate; the CLI's progress line shows "N of M files" and the ETA; and a restore
 * knows its file total (files with data, what it counts up to).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EtaEstimator, formatDuration } from '../core/eta.ts';
import { ProgressReporter } from '../cli/progress.ts';
import { mkdir } from 'node:fs/promises';
import { captureTree } from '../core/tree/capture.ts';
import { newRestoreProgress, restoreTree } from '../core/tree/restore.ts';
import { file, makeTree, seededBytes } from './helpers/fixtures.ts';
import { withStore } from './helpers/store.ts';

const MB = 1e6;

test('a tail of small files after the large ones: minutes left, not the seconds the bytes say', () => {
  // Cost model of the simulated work: 2 ms per file, 90 MB/s.
  const perFile = 0.002;
  const perByte = 1 / (90 * MB);
  const eta = new EtaEstimator();
  const total = { files: 20_010, bytes: 920 * MB };
  let files = 0;
  let bytes = 0;
  let t = 0;
  // 10 large files of 90 MB, one a second.
  for (let i = 0; i < 10; i++) {
    files += 1;
    bytes += 90 * MB;
    t += perFile + 90 * MB * perByte;
    eta.sample(t, { files, bytes });
  }
  // Then small files of 1 kB, 500 a second, for 10 s.
  for (let i = 0; i < 10; i++) {
    files += 500;
    bytes += 500 * 1000;
    t += 500 * (perFile + 1000 * perByte);
    eta.sample(t, { files, bytes });
  }
  const left = eta.secondsLeft(t, { files, bytes }, total)!;
  const truth = (total.files - files) * perFile + (total.bytes - bytes) * perByte;
  const bytesOnly = ((total.bytes - bytes) * t) / bytes;
  assert.ok(bytesOnly < 1, `a byte-only ETA says ${bytesOnly.toFixed(2)} s`);
  assert.ok(Math.abs(left - truth) / truth < 0.05, `ETA ${left.toFixed(1)} s, truth ${truth.toFixed(1)} s`);
});

test('files and bytes in step: the common rate, a file worth FILE_COST_BYTES', () => {
  const eta = new EtaEstimator();
  for (let s = 1; s <= 10; s++) eta.sample(s, { files: 100 * s, bytes: 10 * MB * s });
  const left = eta.secondsLeft(10, { files: 1000, bytes: 100 * MB }, { files: 2000, bytes: 200 * MB })!;
  assert.ok(Math.abs(left - 10) < 0.01, `half done in 10 s: ${left} s left`);
  // Bytes only (no file total): bytes left over the byte rate.
  const bytesOnly = new EtaEstimator().secondsLeft(4, { files: 7, bytes: 100 * MB }, { bytes: 300 * MB })!;
  assert.ok(Math.abs(bytesOnly - 8) < 0.01, `${bytesOnly}`);
  assert.is(new EtaEstimator().secondsLeft(1, { files: 0, bytes: 0 }, { files: 5, bytes: 5 }), undefined, 'nothing done: no ETA');
  assert.is(formatDuration(65), '1m05s');
});

test('the progress line shows the file total and an ETA', async () => {
  let done = { files: 0, bytes: 0 };
  let estimated = false;
  const reporter = new ProgressReporter('capture', () => ({ ...done, totalFiles: 400, totalBytes: 4 * MB, estimated }), { quiet: true });
  try {
    await new Promise((r) => setTimeout(r, 50));
    done = { files: 100, bytes: 1 * MB };
    assert.match(reporter.line(), /^capture: 100 of 400 files, 976\.6 KiB of 3\.8 MiB \(25%\), [^,]+\/s, ETA \d+s$/);
    estimated = true;
    assert.match(reporter.line(), /^capture: 100 of ~400 files, 976\.6 KiB of ~3\.8 MiB \(25%\), [^,]+\/s, ETA \d+s$/, 'an estimated total (an update\'s, from its parent revision) shows as such');
  } finally {
    reporter.stop({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream);
  }
});

/** A directory object (inline: 0x01, then the JSON of {v, ..., entries}), read in batches by loadTree before any file is written. */
const isDirectoryObject = (data: Buffer) => data[0] === 1 && data.subarray(1, 6).toString() === '{"v":';

test('a restore counts up to its file total', async () => {
  await withStore(async (store, dir) => {
    const src = `${dir}/src`;
    await makeTree(src, { 'a/one': file(seededBytes(1, 100_000)), 'a/two': file('two\n'), 'b/three': file(seededBytes(3, 5000)), 'empty': file('') });
    const { tree } = await captureTree({ root: src, store, chunker: store.config.chunker });
    const progress = newRestoreProgress();
    await mkdir(`${dir}/out`);
    const seen: Array<[number, number | undefined]> = [];
    await restoreTree({ reader: { get: (id) => store.get(id), getMany: async function* (ids) { for await (const e of store.getMany(ids)) { if (!isDirectoryObject(e[1])) seen.push([progress.files, progress.totalFiles]); yield e; } } }, tree, target: `${dir}/out`, progress });
    assert.ok(seen.length > 0);
    assert.ok(seen.every(([, total]) => total === 3), `totals while writing: ${JSON.stringify(seen)}`);
    assert.ok(seen.every(([files]) => files <= 3));
  });
});

test.run();
