/**
 * Early writeback of the deployed file systems. The restore leaves up to the whole tree
 * dirty in the page cache (the kernel starts writing back only at 10% of RAM or after 30 s),
 * and the report phase's `sync` used to wait for all of it at the end, with nothing else to
 * do. `start` runs `sync -f` (syncfs) on the target's file systems in the background as soon
 * as the restore is done, so the writeback overlaps the identity, post-script and bootloader
 * phases; the report phase still runs the full `sync` after it, so what is durable when the
 * server is told is unchanged (that `sync` only finds less to write). A failing or missing
 * `sync -f` costs nothing but the overlap.
 * Not during the restore: on the bench's 2 cores the restore is CPU-bound and the writeback
 * takes its CPU from it. A `sync -f` every 0.3 s through the restore, 4 pairs interleaved with
 * this on a loaded machine: the agent's CPU +0.5-1.8 s, the restore longer in all 4, the
 * deploy longer in 3.
 * `settle` must be awaited before the file systems are unmounted: syncfs holds them busy.
 */
import { run } from '../core/tools.ts';

export class Writeback {
  private running: Promise<void> | null = null;

  /** Starts `sync -f` on these mount points (a second call while one runs does nothing). */
  start(paths: string[]): void {
    if (this.running || !paths.length) return;
    this.running = run(['sync', '-f', ...paths]).then(
      () => {},
      () => {},
    );
  }

  /** Waits for the background writeback, if any (never throws). */
  async settle(): Promise<void> {
    await this.running;
    this.running = null;
  }
}
