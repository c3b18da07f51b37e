/**
 * Store maintenance with a memory: `runGc` and `runVerify` run collectGarbage and
 * verifyImages (core/tree/images.ts) and record when each last ran, how long it took and
 * its outcome under the store refs `maintenance/gc` and `maintenance/verify`, so the
 * overview page and `cloner status` can say "verified 3 d ago: ok" whoever ran it (the
 * API, `--store`). A run that throws is recorded as failed with its message, then the
 * error goes on to the caller.
 */
import { ClonerError } from '../errors.ts';
import type { PruneReport, RefStore } from '../store/interfaces.ts';
import type { LocalStore } from '../store/local.ts';
import { collectGarbage, verifyImages, type ImageVerifyReport } from './images.ts';

export interface MaintenanceRun {
  /** ISO time the run ended. */
  at: string;
  seconds: number;
  ok: boolean;
  /** One line: what it found or freed, or its error. */
  summary: string;
  /** gc: chunks deleted and bytes freed; verify: chunks checked and problems found. */
  figures: Record<string, number>;
}

export interface MaintenanceState {
  gc: MaintenanceRun | null;
  verify: MaintenanceRun | null;
}

const KINDS = ['gc', 'verify'] as const;

async function record(store: RefStore, kind: (typeof KINDS)[number], run: MaintenanceRun): Promise<void> {
  const ref = `maintenance/${kind}`;
  // Last writer wins: two runs at once both ran, and either record is true.
  for (let attempt = 0; attempt < 10; attempt++) if (await store.casRef(ref, await store.getRef(ref), JSON.stringify(run))) return;
}

async function timed<T>(store: RefStore, kind: (typeof KINDS)[number], work: () => Promise<T>, describe: (r: T) => Omit<MaintenanceRun, 'at' | 'seconds'>): Promise<T> {
  const start = performance.now();
  const seconds = () => Math.round(performance.now() - start) / 1000;
  let result: T;
  try {
    result = await work();
  } catch (err) {
    const message = err instanceof Error ? `${err.message}${err instanceof ClonerError && err.hint ? ` (${err.hint})` : ''}` : String(err);
    await record(store, kind, { at: new Date().toISOString(), seconds: seconds(), ok: false, summary: `failed: ${message.slice(0, 500)}`, figures: {} }).catch(() => {});
    throw err;
  }
  await record(store, kind, { at: new Date().toISOString(), seconds: seconds(), ...describe(result) });
  return result;
}

/** collectGarbage, recorded. */
export function runGc(store: LocalStore): Promise<PruneReport & { liveChunks: number }> {
  return timed(store, 'gc', () => collectGarbage(store), (r) => ({
    ok: true,
    summary: `${r.deletedChunks} chunks deleted, ${r.freedBytes} bytes freed, ${r.liveChunks} live chunks`,
    figures: { deletedChunks: r.deletedChunks, freedBytes: r.freedBytes, liveChunks: r.liveChunks, repackedPacks: r.repackedPacks },
  }));
}

/** verifyImages, recorded. */
export function runVerify(store: LocalStore): Promise<ImageVerifyReport> {
  return timed(store, 'verify', () => verifyImages(store), (r) => ({
    ok: r.ok,
    summary: r.ok ? `${r.checked} chunks checked, all sound` : `${r.checked} chunks checked: ${r.missing.length} missing, ${r.corrupt.length} corrupt, ${r.incomplete.length} revisions incomplete, ${r.damagedPacks.length} damaged packs`,
    figures: { checked: r.checked, missing: r.missing.length, corrupt: r.corrupt.length, incomplete: r.incomplete.length, damagedPacks: r.damagedPacks.length },
  }));
}

/** When gc and verify last ran and what they found (null: never on this store). */
export async function lastMaintenance(store: Pick<RefStore, 'getRef'>): Promise<MaintenanceState> {
  const read = async (kind: (typeof KINDS)[number]) => {
    const raw = await store.getRef(`maintenance/${kind}`);
    return raw ? (JSON.parse(raw) as MaintenanceRun) : null;
  };
  return { gc: await read('gc'), verify: await read('verify') };
}
