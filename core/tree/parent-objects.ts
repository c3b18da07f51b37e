/**
 * The parent revision's directory objects, fetched in batches for an incremental capture.
 *
 * A capture asks for one object per directory it walks (to find its unchanged files), and
 * one GET per directory (2,769 on the bench's node tree) was the largest part of a no-op
 * update against a server. Algorithm: the asks made before the event loop next turns
 * (setImmediate: the walk lists a directory and starts all its subdirectories in one turn)
 * go out as one `getMany`, which the server client sends 256 ids to a request, several
 * requests at once, and checks (BLAKE3) like any read. An object cut into parts (larger than
 * one chunk) has its parts fetched after its root. When a batch fails, each of its objects
 * is asked again on its own, so only the objects that are really unreadable fail, each with
 * its own error. `prefetch` starts a load before it is asked for (capture: the parent
 * revision's subdirectories as soon as their directory's object is read, so the fetches run
 * a level ahead of the walk instead of the walk waiting a round trip per level); at most
 * MAX_AHEAD loads are held for a later `load`, the oldest dropped first (a directory gone
 * from the new tree is never asked for).
 */
import type { ChunkId } from '../store/chunk-id.ts';
import { ObjectInvalidError } from '../store/errors.ts';
import type { ChunkReader } from '../store/interfaces.ts';
import { getObject, objectPartIds } from '../store/objects.ts';

/** One object: its body (the JSON bytes) and the chunks beside its root that hold them (none when inline). */
export interface LoadedObject {
  body: Buffer;
  parts: ChunkId[];
}

/** Loads started by `prefetch` and not yet taken by `load`, at most. */
export const MAX_AHEAD = 1024;

interface Waiter {
  resolve: (o: LoadedObject) => void;
  reject: (err: unknown) => void;
}

export class ObjectBatcher {
  private waiting = new Map<ChunkId, Waiter[]>();
  private scheduled = false;
  private ahead = new Map<ChunkId, Promise<LoadedObject>>();
  private readonly reader: Pick<ChunkReader, 'get' | 'getMany'>;

  constructor(reader: Pick<ChunkReader, 'get' | 'getMany'>) {
    this.reader = reader;
  }

  /** The object `id`; rejects with the store's error (ChunkMissingError, ChunkCorruptError, ObjectInvalidError). */
  load(id: ChunkId): Promise<LoadedObject> {
    const started = this.ahead.get(id);
    if (!started) return this.ask(id);
    this.ahead.delete(id);
    return started;
  }

  /** Starts loading `id` for a `load` to come (its error, if any, is that load's). */
  prefetch(id: ChunkId): void {
    if (this.ahead.has(id)) return;
    if (this.ahead.size >= MAX_AHEAD) this.ahead.delete(this.ahead.keys().next().value!);
    const started = this.ask(id);
    started.catch(() => undefined); // reported by the load that takes it; dropped unasked, by nobody
    this.ahead.set(id, started);
  }

  private ask(id: ChunkId): Promise<LoadedObject> {
    return new Promise((resolve, reject) => {
      const list = this.waiting.get(id);
      if (list) list.push({ resolve, reject });
      else this.waiting.set(id, [{ resolve, reject }]);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.waiting;
    this.waiting = new Map();
    this.scheduled = false;
    const settle = (id: ChunkId, result: { ok: LoadedObject } | { err: unknown }) => {
      for (const w of batch.get(id) ?? []) 'ok' in result ? w.resolve(result.ok) : w.reject(result.err);
      batch.delete(id);
    };
    try {
      for await (const [id, root] of this.reader.getMany(batch.keys())) {
        if (!batch.has(id)) continue;
        settle(id, { ok: await this.body(id, root) });
      }
    } catch {
      // Below, one by one: each object left gets its own answer or error.
    }
    await Promise.all(
      [...batch.keys()].map(async (id) => {
        try {
          settle(id, { ok: await this.body(id, await this.reader.get(id)) });
        } catch (err) {
          settle(id, { err });
        }
      }),
    );
  }

  private async body(id: ChunkId, root: Buffer): Promise<LoadedObject> {
    const parts = objectPartIds(root, id);
    if (!parts.length) return { body: root.subarray(1), parts };
    const body = await getObject(this.reader, id);
    return { body, parts };
  }
}

/** The JSON value of a loaded object; ObjectInvalidError when it is not JSON. */
export function parseObject(o: LoadedObject, id: ChunkId): unknown {
  try {
    return JSON.parse(o.body.toString('utf8'));
  } catch {
    throw new ObjectInvalidError(`object ${id} is not valid JSON`);
  }
}
