/**
 * MACs that asked the netboot endpoint for a boot script but belong to no node
 * ("discovered": {mac, first, last, from}), so an admin can turn them into nodes. Recorded
 * by the server's unauthenticated /boot.ipxe, listed by GET /v1/discovered.
 *
 * Anyone on the network can send any MAC, so the list is bounded and kept off the store's
 * write path: it lives in memory (at most `max` entries, the least recently seen dropped
 * first; entries not seen for `ttlMs` expire), new MACs are rate-limited per source address
 * (a token bucket of `burst`, refilled at `perMinute`), and the whole list is written as one
 * ref (`discovered`) at most every `persistMs` and at stop. A flood of 20,000 MACs thus
 * costs at most one small write per period instead of 20,000 synced writes queued on the
 * ref lock that node, image and deploy-token writes share. A crash loses at most the last
 * period's sightings, which the next boot of those machines records again.
 */
import type { RefStore } from '../store/interfaces.ts';

export interface Discovered {
  mac: string;
  /** ISO times of the first and the last request. */
  first: string;
  last: string;
  /** The address the last request came from. */
  from: string;
}

export const DISCOVERED_LIMITS = {
  /** Entries kept; the least recently seen go first. */
  max: 1024,
  /** An entry not seen for this long is dropped. */
  ttlMs: 7 * 24 * 3600_000,
  /** New MACs one source address may add at once, and per minute after that. */
  burst: 32,
  perMinute: 12,
  /** Source addresses whose rate is tracked (the fullest buckets go first). */
  maxSources: 4096,
  /** How often a changed list is written to the store. */
  persistMs: 30_000,
};
export type DiscoveredLimits = typeof DISCOVERED_LIMITS;

/** The ref holding the list (one JSON array). Older servers wrote one `discovered/<mac>` ref each. */
const LIST_REF = 'discovered';
const LEGACY_PREFIX = 'discovered/';

export type RecordResult = 'recorded' | 'refreshed' | 'rate-limited';

export class DiscoveredMacs {
  private readonly store: RefStore;
  private readonly limits: DiscoveredLimits;
  /** By MAC, in order of last sighting (a refresh moves an entry to the end). */
  private readonly entries = new Map<string, Discovered>();
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private persisting: Promise<void> = Promise.resolve();

  constructor(store: RefStore, limits: Partial<DiscoveredLimits> = {}) {
    this.store = store;
    this.limits = { ...DISCOVERED_LIMITS, ...limits };
  }

  /** Reads the stored list (and the per-MAC refs of older servers, which it then deletes); starts the periodic write. */
  async start(): Promise<void> {
    const stored: Discovered[] = [];
    const raw = await this.store.getRef(LIST_REF);
    if (raw) stored.push(...parseList(raw));
    const legacy = await this.store.listRefs(LEGACY_PREFIX);
    for (const [, value] of legacy) stored.push(...parseList(`[${value}]`));
    for (const d of stored.sort((a, b) => a.last.localeCompare(b.last))) {
      this.entries.delete(d.mac);
      this.entries.set(d.mac, d);
    }
    this.trim(Date.now());
    if (legacy.length) {
      this.dirty = true;
      await this.persist();
      for (const [name, value] of legacy) await this.store.casRef(name, value, undefined);
    }
    this.timer = setInterval(() => void this.persist().catch(() => undefined), this.limits.persistMs);
    this.timer.unref();
  }

  /** Stops the periodic write and writes what changed. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.persist();
  }

  /** Records (or refreshes) an unknown MAC seen from `from`; `mac` in Cloner's form (core/names.ts normalizeMac). */
  record(mac: string, from: string, now = Date.now()): RecordResult {
    const at = new Date(now).toISOString();
    const known = this.entries.get(mac);
    if (known) {
      this.entries.delete(mac);
      this.entries.set(mac, { ...known, last: at, from });
      this.dirty = true;
      return 'refreshed';
    }
    if (!this.take(from, now)) return 'rate-limited';
    this.entries.set(mac, { mac, first: at, last: at, from });
    this.dirty = true;
    this.trim(now);
    return 'recorded';
  }

  /** The entries not expired, by MAC. */
  list(now = Date.now()): Discovered[] {
    this.trim(now);
    return [...this.entries.values()].sort((a, b) => a.mac.localeCompare(b.mac));
  }

  /** Writes the list as one ref when it changed since the last write (one at a time). */
  persist(): Promise<void> {
    this.persisting = this.persisting.catch(() => undefined).then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const value = JSON.stringify([...this.entries.values()]);
      try {
        for (let attempt = 0; attempt < 5; attempt++) {
          if (await this.store.casRef(LIST_REF, await this.store.getRef(LIST_REF), value)) return;
        }
      } catch (err) {
        this.dirty = true; // try again next period (e.g. the disk was full)
        throw err;
      }
    });
    return this.persisting;
  }

  /** Drops expired entries, then the least recently seen beyond `max`. */
  private trim(now: number): void {
    const oldest = new Date(now - this.limits.ttlMs).toISOString();
    for (const [mac, d] of this.entries) {
      if (d.last >= oldest && this.entries.size <= this.limits.max) break;
      this.entries.delete(mac);
      this.dirty = true;
    }
  }

  /** Takes one token from `from`'s bucket; false when it is empty. */
  private take(from: string, now: number): boolean {
    const rate = this.limits.perMinute / 60_000;
    let bucket = this.buckets.get(from);
    if (bucket) bucket.tokens = Math.min(this.limits.burst, bucket.tokens + (now - bucket.at) * rate);
    else {
      if (this.buckets.size >= this.limits.maxSources) this.forgetFullBuckets(now, rate);
      bucket = { tokens: this.limits.burst, at: now };
      this.buckets.set(from, bucket);
    }
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Forgets sources whose bucket has refilled (they lose nothing), else the oldest half. */
  private forgetFullBuckets(now: number, rate: number): void {
    for (const [from, b] of this.buckets) if (b.tokens + (now - b.at) * rate >= this.limits.burst) this.buckets.delete(from);
    if (this.buckets.size < this.limits.maxSources) return;
    let n = 0;
    for (const from of this.buckets.keys()) if (n++ < this.limits.maxSources / 2) this.buckets.delete(from);
  }
}

/** Entries of a stored list; anything malformed is left out (the list is advisory). */
function parseList(raw: string): Discovered[] {
  try {
    const value = JSON.parse(raw) as unknown;
    if (!Array.isArray(value)) return [];
    return value.filter((d): d is Discovered => !!d && typeof d.mac === 'string' && typeof d.first === 'string' && typeof d.last === 'string' && typeof d.from === 'string');
  } catch {
    return [];
  }
}
