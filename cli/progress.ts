/**
 * Progress of long work: on a terminal, one line redrawn in place (files, bytes, rate,
 * ETA when a total is known); otherwise a plain line every `intervalMs` (10 s; the
 * CLONER_PROGRESS_INTERVAL_MS environment variable sets it). The ETA counts files as well
 * as bytes (core/eta.ts), sampled every second whether or not a line is drawn.
 */
import { EtaEstimator, formatDuration } from '../core/eta.ts';
import { formatBytes } from '../core/format.ts';

export interface ProgressSnapshot {
  files: number;
  bytes: number;
  totalFiles?: number;
  totalBytes?: number;
  /** The totals are an estimate (shown with "~"), e.g. an update's from its parent revision. */
  estimated?: boolean;
  extra?: string;
}

export { formatBytes };

export class ProgressReporter {
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly tty: boolean;
  private readonly label: string;
  private readonly read: () => ProgressSnapshot;
  private readonly eta = new EtaEstimator();
  private readonly sampler: NodeJS.Timeout;

  constructor(label: string, read: () => ProgressSnapshot, opts: { stream?: NodeJS.WriteStream; intervalMs?: number; quiet?: boolean } = {}) {
    const stream = opts.stream ?? process.stderr;
    this.tty = !!stream.isTTY;
    this.label = label;
    this.read = read;
    const interval = opts.intervalMs ?? (Number(process.env.CLONER_PROGRESS_INTERVAL_MS) || (this.tty ? 250 : 10_000));
    this.timer = setInterval(() => !opts.quiet && this.draw(stream), interval);
    this.timer.unref();
    this.sampler = setInterval(() => this.eta.sample(this.seconds(), this.read()), 1000);
    this.sampler.unref();
  }

  private seconds(): number {
    return (performance.now() - this.started) / 1000;
  }

  line(): string {
    const s = this.read();
    const secs = this.seconds();
    const rate = s.bytes / Math.max(secs, 0.001);
    const about = s.estimated ? '~' : '';
    const parts = [`${this.label}: ${s.files}${s.totalFiles !== undefined ? ` of ${about}${s.totalFiles}` : ''} files`, formatBytes(s.bytes)];
    if (s.totalBytes) {
      parts[1] += ` of ${about}${formatBytes(s.totalBytes)} (${((100 * s.bytes) / s.totalBytes).toFixed(0)}%)`;
    }
    parts.push(`${formatBytes(rate)}/s`);
    const left = s.totalBytes || s.totalFiles ? this.eta.secondsLeft(secs, s, { files: s.totalFiles, bytes: s.totalBytes }) : undefined;
    if (left !== undefined) parts.push(`ETA ${formatDuration(left)}`);
    if (s.extra) parts.push(s.extra);
    return parts.join(', ');
  }

  private draw(stream: NodeJS.WriteStream): void {
    if (this.tty) stream.write(`\r\x1b[K${this.line()}`);
    else stream.write(`${this.line()}\n`);
  }

  stop(stream: NodeJS.WriteStream = process.stderr): void {
    clearInterval(this.timer);
    clearInterval(this.sampler);
    if (this.tty) stream.write('\r\x1b[K');
  }
}
