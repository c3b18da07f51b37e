/**
 * Refs: small named records (image records, layout and attachment versions) with
 * compare-and-set, in the store's LevelDB (sublevel "r"). They are the commit points of
 * the store: a revision exists once its ref is written. Unlike the location index they
 * cannot be derived from the packs.
 *
 * Compare-and-set runs through one in-process queue, so read-compare-write never
 * interleaves; the write is a synced batch.
 */
import type { ClassicLevel } from 'classic-level';
import { SerialQueue } from './gate.ts';
import type { RefStore } from './interfaces.ts';

export class RefIndex implements RefStore {
  private readonly db: ClassicLevel<string, string>;
  private readonly refs;
  private readonly lock = new SerialQueue();

  constructor(db: ClassicLevel<string, string>) {
    this.db = db;
    this.refs = db.sublevel<string, string>('r', { keyEncoding: 'utf8', valueEncoding: 'utf8' });
  }

  async getRef(name: string): Promise<string | undefined> {
    return this.refs.get(name);
  }

  async casRef(name: string, expected: string | undefined, value: string | undefined): Promise<boolean> {
    return this.lock.run(async () => {
      const current = await this.refs.get(name);
      if (current !== expected) return false;
      const op = value === undefined ? { type: 'del' as const, key: name } : { type: 'put' as const, key: name, value };
      await this.db.batch([{ ...op, sublevel: this.refs } as never], { sync: true });
      return true;
    });
  }

  async listRefs(prefix: string): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for await (const [k, v] of this.refs.iterator({ gte: prefix, lt: prefix + '\uffff' })) out.push([k, v]);
    return out;
  }
}
