/**
 * Sender rate adaptation: AIMD on the loss the receivers report. Each active receiver
 * reports, about twice a second, the share of the session's datagrams it lost over the
 * last interval (its socket's full receive buffer, CLONER_MULTICAST_TEST_LOSS), and after
 * each round the share of the round it still lacks (any loss, the network's too).
 *
 * `tick()` (the hub calls it every TICK_MS while sending, and after each round's reports)
 * takes the loss of the upper median of the receivers heard since the last tick: at least
 * half of them lost that much. Above `high` the rate is multiplied by `decrease`, or the
 * rate the sender achieved if that was lower (a busy server sends slower than its bucket
 * allows; lowering an unreached rate would change nothing), but at most halved at once (a
 * tick where the sender waited for its store achieved little) and not below `floor` of the
 * --rate; below `low` it grows by `step` of the --rate or a quarter, whichever is more
 * (back from the floor in ~5 s, not ~10), never above the --rate. bench/multicast.ts: a
 * rate taken to the floor by one tick's low achieved rate made a 4.6 MiB repair round 3 s.
 * The median, not the worst: one slow or lossy receiver is the drop rule's (hub.ts, it
 * finishes over unicast) and must not slow the others down; most of them losing means the
 * sender outruns this cluster. A tick forgets what it used, so a change is judged by the
 * reports that follow it. Units: bytes per second; losses are fractions 0..1.
 */

export interface RateChange {
  at: string;
  /** The new rate, bytes per second. */
  rate: number;
  /** The loss it answered (the upper median of the receivers' reports). */
  loss: number;
  receivers: number;
}

export interface RateTuning {
  /** A loss above this lowers the rate. */
  high: number;
  /** A loss below this raises it. */
  low: number;
  /** Factor a lowering applies. */
  decrease: number;
  /** Share of the --rate a raise adds. */
  step: number;
  /** Lowest rate, as a share of the --rate. */
  floor: number;
}

// high and low: well clear of the ~1% a lossy link loses at random (bench/multicast.ts
// simulates 1%), which slowing down would not cure, and of its noise over a tick (~0.2% at
// 2,000 datagrams); a round's repair costs about the loss, so up to 5% is cheap. With low at
// 1% the bench's rate, once lowered, never rose again.
export const DEFAULT_TUNING: RateTuning = { high: 0.05, low: 0.02, decrease: 0.7, step: 0.05, floor: 0.05 };
/** How often the hub lets the rate change while a round is sent. */
export const TICK_MS = 500;
/** Changes a session keeps (its view lists them). */
const KEEP_CHANGES = 50;

export class RateControl {
  readonly max: number;
  rate: number;
  readonly changes: RateChange[] = [];
  private readonly t: RateTuning;
  private readonly heard = new Map<string, number>();
  /** Lowest and highest rate so far. */
  min: number;

  /** `max`: the --rate, bytes per second. */
  constructor(max: number, tuning: Partial<RateTuning> = {}) {
    this.max = max;
    this.rate = max;
    this.min = max;
    this.t = { ...DEFAULT_TUNING, ...tuning };
  }

  /** A receiver's loss (0..1) over its last interval or round; the latest one counts. */
  observe(node: string, loss: number): void {
    if (Number.isFinite(loss)) this.heard.set(node, Math.min(1, Math.max(0, loss)));
  }

  /** Forgets a receiver (done, or dropped to unicast): its losses no longer count. */
  forget(node: string): void {
    this.heard.delete(node);
  }

  /**
   * Applies the rule to what was heard since the last tick: the new rate, or null
   * (unchanged). `achieved`: bytes per second the sender managed since the last tick.
   */
  tick(achieved?: number): number | null {
    if (!this.heard.size) return null;
    const losses = [...this.heard.values()].sort((a, b) => b - a);
    const loss = losses[Math.floor((losses.length - 1) / 2)];
    let rate = this.rate;
    if (loss > this.t.high) rate = Math.max(this.max * this.t.floor, this.rate / 2, Math.min(this.rate, achieved && achieved > 0 ? achieved : Infinity) * this.t.decrease);
    else if (loss < this.t.low) rate = Math.min(this.max, this.rate + Math.max(this.max * this.t.step, this.rate / 4));
    const receivers = this.heard.size;
    this.heard.clear();
    if (Math.abs(rate - this.rate) < 1) return null;
    this.rate = rate;
    this.min = Math.min(this.min, rate);
    this.changes.push({ at: new Date().toISOString(), rate: Math.round(rate), loss: Math.round(loss * 1e4) / 1e4, receivers });
    if (this.changes.length > KEEP_CHANGES) this.changes.shift();
    return rate;
  }
}
