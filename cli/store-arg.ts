/** Opening the local store named by --store (the server backend arrives with --server). */
import { LocalStore } from '../core/store/local.ts';
import { UsageError } from './errors.ts';

export async function openStoreArg(dir: string | undefined, create = false): Promise<LocalStore> {
  if (!dir || typeof dir !== 'string') {
    throw new UsageError('no store given', 'pass --store DIR (a local image store; created by new-image --init)');
  }
  return LocalStore.open(dir, { create });
}

export function splitList(value: unknown): string[] {
  if (value === undefined || value === true) return [];
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Opens the --store store, runs `work` with it, and always closes it. */
export async function withStoreArg<T>(dir: string | undefined, work: (store: LocalStore) => Promise<T>, options: { create?: boolean } = {}): Promise<T> {
  const store = await openStoreArg(dir, options.create);
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
