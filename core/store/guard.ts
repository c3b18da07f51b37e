/**
 * Touch guards, the GC's safety net. Ids answered present by `has`/`hasMany` (an uploader's
 * question: it skips them), or written by `put`, while a guard is open are added to it (a
 * reader's `present` adds nothing); prune never drops an id any open guard holds. The
 * server's upload grace holds rotating guards and lets go of a revision's ids once it is
 * committed (`forget`); GC holds one from before its mark phase, so a chunk a concurrent
 * upload relies on survives the sweep.
 */
import type { ChunkId } from './chunk-id.ts';

/** Ids touched (answered present or written) while it is open. */
export class TouchGuard {
  readonly ids = new Set<ChunkId>();
  private readonly owner: Set<TouchGuard>;
  constructor(owner: Set<TouchGuard>) {
    this.owner = owner;
    owner.add(this);
  }
  has(id: ChunkId): boolean {
    return this.ids.has(id);
  }
  /** Stops protecting these ids (their revision is committed: references keep them now). */
  forget(ids: Iterable<ChunkId>): void {
    for (const id of ids) this.ids.delete(id);
  }
  /** Stops recording; its ids are no longer protected. Idempotent. */
  release(): void {
    this.owner.delete(this);
  }
}

/** The open guards of one store. */
export class Guards {
  private readonly open = new Set<TouchGuard>();

  /** A new guard recording every id touched until its `release()`. */
  guard(): TouchGuard {
    return new TouchGuard(this.open);
  }

  /** Records `id` in every open guard. */
  touch(id: ChunkId): void {
    for (const g of this.open) g.ids.add(id);
  }

  /** True when an open guard holds `id`. */
  isGuarded(id: ChunkId): boolean {
    for (const g of this.open) if (g.has(id)) return true;
    return false;
  }
}
