/**
 * Progress of long work: on a terminal, one line redrawn in place (files, bytes, rate,
 * ETA when the total is known); otherwise a plain line every `intervalMs` (10 s; the
 * CLONER_PROGRESS_INTERVAL_MS environment variable sets it).
 */
export interface ProgressSnapshot {
  files: number;
  bytes: number;
  totalBytes?: number;
  extra?: string;
}

import { formatBytes } from '../core/format.ts';

export { formatBytes };

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${Math.round(s)}s`;
}

export class ProgressReporter {
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  private readonly tty: boolean;
  private readonly label: string;
  private readonly read: () => ProgressSnapshot;

  constructor(label: string, read: () => ProgressSnapshot, opts: { stream?: NodeJS.WriteStream; intervalMs?: number; quiet?: boolean } = {}) {
    const stream = opts.stream ?? process.stderr;
    this.tty = !!stream.isTTY;
    this.label = label;
    this.read = read;
    const interval = opts.intervalMs ?? (Number(process.env.CLONER_PROGRESS_INTERVAL_MS) || (this.tty ? 250 : 10_000));
    this.timer = setInterval(() => !opts.quiet && this.draw(stream), interval);
    this.timer.unref();
  }

  line(): string {
    const s = this.read();
    const secs = (performance.now() - this.started) / 1000;
    const rate = s.bytes / Math.max(secs, 0.001);
    const parts = [`${this.label}: ${s.files} files`, formatBytes(s.bytes)];
    if (s.totalBytes) {
      parts[1] += ` of ${formatBytes(s.totalBytes)} (${((100 * s.bytes) / s.totalBytes).toFixed(0)}%)`;
    }
    parts.push(`${formatBytes(rate)}/s`);
    if (s.totalBytes && rate > 0) parts.push(`ETA ${formatDuration((s.totalBytes - s.bytes) / rate)}`);
    if (s.extra) parts.push(s.extra);
    return parts.join(', ');
  }

  private draw(stream: NodeJS.WriteStream): void {
    if (this.tty) stream.write(`\r\x1b[K${this.line()}`);
    else stream.write(`${this.line()}\n`);
  }

  stop(stream: NodeJS.WriteStream = process.stderr): void {
    clearInterval(this.timer);
    if (this.tty) stream.write('\r\x1b[K');
  }
}
