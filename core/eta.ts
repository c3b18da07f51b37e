/**
 * Time left of work counted in files and bytes (capture, restore, deploy): a file costs a
 * fixed time besides its bytes (open, stat, metadata, a manifest or directory entry), so a
 * tail of many small files takes long though few bytes remain, and an ETA from bytes alone
 * says "1s" for a minute.
 *
 * Algorithm: the elapsed time is modelled as t = a·files + b·bytes. `sample` records
 * (t, files, bytes) points; with points where files and bytes grew in different proportions,
 * a and b come from a least-squares fit (2x2 normal equations, no intercept); while the
 * points cannot tell them apart (everything grew in step) or the fit is not positive, a file
 * is taken to cost FILE_COST_BYTES of the measured byte rate. The time left is
 * a·(files left) + b·(bytes left).
 */

/** What one file costs besides its bytes, in bytes of the same work, when the samples cannot tell: ~0.3 ms at ~200 MB/s. */
export const FILE_COST_BYTES = 64 * 1024;

export interface Done {
  files: number;
  bytes: number;
}

export class EtaEstimator {
  private readonly points: Array<{ t: number; files: number; bytes: number }> = [];

  /** Records the work done after `seconds` (call it regularly, e.g. each progress tick). */
  sample(seconds: number, done: Done): void {
    const last = this.points.at(-1);
    if (last && last.files === done.files && last.bytes === done.bytes) return;
    this.points.push({ t: seconds, ...done });
    if (this.points.length > 512) this.points.splice(0, this.points.length - 256);
  }

  /** Seconds left to reach `total` (a file total, a byte total or both), or undefined before any work is done. */
  secondsLeft(seconds: number, done: Done, total: { files?: number; bytes?: number }): number | undefined {
    this.sample(seconds, done);
    if (seconds <= 0 || done.files + done.bytes === 0) return undefined;
    const filesLeft = total.files === undefined ? 0 : Math.max(0, total.files - done.files);
    const bytesLeft = total.bytes === undefined ? 0 : Math.max(0, total.bytes - done.bytes);
    const fit = this.fit();
    if (fit) return fit.a * filesLeft + fit.b * bytesLeft;
    // One rate for both: a file counts as FILE_COST_BYTES of work (only when files are counted).
    const weight = total.files === undefined ? 0 : FILE_COST_BYTES;
    const units = done.bytes + weight * done.files;
    return units > 0 ? ((bytesLeft + weight * filesLeft) * seconds) / units : undefined;
  }

  /** a (seconds per file) and b (seconds per byte) when the samples determine both, positive. */
  private fit(): { a: number; b: number } | null {
    let ff = 0;
    let bb = 0;
    let fb = 0;
    let ft = 0;
    let bt = 0;
    for (const p of this.points) {
      ff += p.files * p.files;
      bb += p.bytes * p.bytes;
      fb += p.files * p.bytes;
      ft += p.files * p.t;
      bt += p.bytes * p.t;
    }
    const det = ff * bb - fb * fb;
    // Nearly collinear (files and bytes grew in step): the split between a and b is noise.
    if (this.points.length < 3 || det <= 1e-6 * ff * bb) return null;
    const a = (ft * bb - bt * fb) / det;
    const b = (bt * ff - ft * fb) / det;
    return a > 0 && b > 0 ? { a, b } : null;
  }
}

/** "1m05s", "42s"; "?" when not finite. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}
