/**
 * The upload grace: chunks uploaded for a revision not yet committed must survive a GC
 * that runs in between. prune never drops an id held by an open touch guard, and the
 * store adds every id uploaded or asked about to its open guards; two guards, rotated
 * every `graceMs`, keep such ids for one to two grace periods (default 30 min, so 30-60
 * minutes), after which an abandoned upload's chunks go at the next GC. When a revision is
 * committed, its chunks leave the grace (`settle`): from then on the revision's references
 * keep them, and once its image is deleted the next GC frees them.
 */
export interface GuardingStore {
  /** Opens a guard: ids touched while it is open are kept from prune until release. */
  guard(): { release(): void; forget(ids: Iterable<string>): void };
}

export const DEFAULT_UPLOAD_GRACE_MS = 30 * 60_000;

/** Starts rotating guards over `store`; `stop()` releases them (the server closes). */
export function startUploadGrace(store: GuardingStore, graceMs = DEFAULT_UPLOAD_GRACE_MS): { stop(): void; settle(ids: Iterable<string>): void } {
  let recent = store.guard();
  let older: ReturnType<GuardingStore['guard']> | null = null;
  const rotation = setInterval(() => {
    older?.release();
    older = recent;
    recent = store.guard();
  }, graceMs);
  rotation.unref();
  return {
    stop() {
      clearInterval(rotation);
      recent.release();
      older?.release();
    },
    /** The ids of a committed revision: no longer held for an upload. */
    settle(ids: Iterable<string>) {
      const list = [...ids];
      recent.forget(list);
      older?.forget(list);
    },
  };
}
