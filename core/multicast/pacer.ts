/**
 * Sender pacing: a token bucket. `take(n)` waits until n bytes may go out at `rate`
 * bytes per second, allowing bursts up to `burst` bytes. Timers fire no finer than about
 * a millisecond, so the bucket must hold at least a millisecond of sending (at 1 Gbit/s,
 * 125 KB) or the rate is not reached; DEFAULT_BURST_MS sizes it for ~4 ms.
 */
export const DEFAULT_BURST_MS = 4;

export class TokenBucket {
  private _rate: number;
  private burst: number;
  private readonly fixedBurst: number | undefined;
  private tokens: number;
  private last = performance.now();

  /** `rate` in bytes per second (> 0); `burst` in bytes (default DEFAULT_BURST_MS of sending, at least 64 KiB). */
  constructor(rate: number, burst?: number) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate ${rate} must be a positive number of bytes per second`);
    this._rate = rate;
    this.fixedBurst = burst;
    this.burst = burst ?? Math.max(64 * 1024, (rate * DEFAULT_BURST_MS) / 1000);
    this.tokens = this.burst;
  }

  get rate(): number {
    return this._rate;
  }

  /** Changes the rate (bytes per second, > 0) from now on; the burst follows it unless it was given. */
  setRate(rate: number): void {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate ${rate} must be a positive number of bytes per second`);
    this.refill();
    this._rate = rate;
    this.burst = this.fixedBurst ?? Math.max(64 * 1024, (rate * DEFAULT_BURST_MS) / 1000);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this._rate) / 1000);
    this.last = now;
  }

  /** Waits (if needed) until `bytes` may be sent, then spends them. */
  async take(bytes: number): Promise<void> {
    this.refill();
    while (this.tokens < Math.min(bytes, this.burst)) {
      const waitMs = ((Math.min(bytes, this.burst) - this.tokens) * 1000) / this._rate;
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(waitMs))));
      this.refill();
    }
    this.tokens -= bytes;
  }
}

/** "300", "300M", "1G", "500k": bits per second (a bare number is Mbit/s) -> bytes per second. */
export function parseRate(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:bit|b|bps)?(?:\/s)?$/.exec(text.trim());
  if (!m) throw new RangeError(`rate ${JSON.stringify(text)} is not a number of bits per second (e.g. 500M, 1G)`);
  const scale = { '': 1e6, k: 1e3, m: 1e6, g: 1e9 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  const bits = Number(m[1]) * scale;
  if (bits < 1e5 || bits > 1e11) throw new RangeError(`rate ${text} is out of range (100k to 100G bits per second)`);
  return bits / 8;
}
