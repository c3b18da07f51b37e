/**
 * Early writeback of the deployed file systems. The restore leaves up to the whole tree
 * dirty in the page cache (the kernel starts writing back only at 10% of RAM or after 30 s),
 * and the report phase's `sync` used to wait for all of it at the end, with nothing else to
 * do. `start` runs one `sync -f` (syncfs) on the target's file systems in the background, so
 * the writeback overlaps the rest of the deploy; the report phase still runs the full `sync`
 * after it, so what is durable when the server is told is unchanged (that `sync` only finds
 * less to write). A failing or missing `sync -f` costs nothing but the overlap.
 *
 * When: as soon as the sync's data phase is over (`startWhenPlacing`: its progress says
 * 'place'), else when the restore returns. From 'place' on every file's bytes are on the
 * target (staged; the place phase renames them, the metadata phase sets owners, modes and
 * times) and the main thread is busy with those syscalls on one core, so the writeback has
 * the other; then it goes on beside identity, post-script and boot loader. 3 pairs
 * interleaved on a loaded machine: the deploy's tail after the restore 1.13-1.27 -> 0.83-1.16
 * s, the restore no longer. Not during the data phase: on the bench's 2 cores it is
 * CPU-bound and the writeback takes its CPU (a `sync -f` every 0.3 s through the restore, 4
 * pairs interleaved: the agent's CPU +0.5-1.8 s, the restore longer in all 4, the deploy
 * longer in 3). Nothing depends on the phase names: if they change, the writeback starts
 * when the restore returns.
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

  /**
   * Starts the writeback (on `paths()`) when the sync sets `progress.phase` to 'place': the
   * phase becomes an accessor, called synchronously by the sync, whose main thread then
   * stays busy until the restore returns (the spawn of `sync -f` happens within that call).
   */
  startWhenPlacing(progress: { phase: string }, paths: () => string[]): void {
    let phase = progress.phase;
    Object.defineProperty(progress, 'phase', {
      enumerable: true,
      configurable: true,
      get: () => phase,
      set: (next: string) => {
        phase = next;
        if (next === 'place') this.start(paths());
      },
    });
  }

  /** Waits for the background writeback, if any (never throws). */
  async settle(): Promise<void> {
    await this.running;
    this.running = null;
  }
}
