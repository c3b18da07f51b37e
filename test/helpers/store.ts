/** A fresh local store in a temporary directory, closed and removed after `work`. */
import { LocalStore } from '../../core/store/local.ts';
import { withTempDir } from './fixtures.ts';

export async function withStore<T>(work: (store: LocalStore, dir: string) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const store = await LocalStore.open(`${dir}/store`, { create: true });
    try {
      return await work(store, dir);
    } finally {
      await store.close();
    }
  });
}
