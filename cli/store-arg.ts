/** Comma-separated list flags (--exclude-paths a,b) as arrays. */
export function splitList(value: unknown): string[] {
  if (value === undefined || value === true) return [];
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
