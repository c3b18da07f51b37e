/**
 * Touch guards, the GC's safety net. Ids answered present by `has`/`hasMany`, or written
 * by `put`, while a guard is open are added to it; prune never drops an id any open
 * guard holds. An upload holds a guard until its revision commits; GC holds one from
 * before its mark phase, so a chunk a concurrent upload relies on survives the sweep.
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
