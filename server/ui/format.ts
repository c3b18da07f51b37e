/**
 * How the web pages write numbers and times, always with a unit: bytes in binary units
 * ("1.5 GiB"), rates per second, percent, counts with thousands separators, times in UTC
 * with their age ("12 s ago"). A missing value is an en dash. The templates get these as
 * `it.h` (server/ui/plugin.ts).
 */
import { formatBytes, printable } from '../../core/format.ts';

const DASH = '–';
const count = new Intl.NumberFormat('en');

export const helpers = {
  bytes: (n: number | null | undefined) => (typeof n === 'number' ? formatBytes(n) : DASH),
  rate: (n: number | null | undefined) => (typeof n === 'number' ? `${formatBytes(n)}/s` : DASH),
  percent: (n: number | null | undefined) => (typeof n === 'number' ? `${n} %` : DASH),
  count: (n: number | null | undefined, unit = '') => (typeof n === 'number' ? `${count.format(n)}${unit ? ` ${unit}` : ''}` : DASH),
  ratio: (n: number | null | undefined) => (typeof n === 'number' ? `${n.toFixed(2)} ×` : DASH),
  seconds: (n: number | null | undefined) => (typeof n === 'number' ? `${n < 10 ? n.toFixed(1) : Math.round(n)} s` : DASH),
  /** "2025-01-31 14:02:03 UTC". */
  time: (iso: string | null | undefined) => (iso ? `${iso.slice(0, 19).replace('T', ' ')} UTC` : DASH),
  /** "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
  ago: (iso: string | null | undefined, now = Date.now()) => {
    if (!iso) return DASH;
    const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
    if (!Number.isFinite(s)) return DASH;
    return s < 120 ? `${s} s ago` : s < 7200 ? `${Math.round(s / 60)} min ago` : s < 172_800 ? `${Math.round(s / 3600)} h ago` : `${Math.round(s / 86_400)} d ago`;
  },
  /** A path or message with control characters escaped (the template escapes HTML). */
  printable: (text: string) => printable(text),
  /** "0.0" .. "100.0": an SVG coordinate or width in percent. */
  num: (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '0'),
};

export type Helpers = typeof helpers;
