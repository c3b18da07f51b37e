/** Human-readable byte counts in binary units ("1.5 GiB") and list flags, shared by the CLI, the agent and error messages. */
export function formatBytes(n: number, digits = 1): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : digits)} ${units[u]}`;
}

/** A comma-separated list flag (`--exclude-paths a,b`) as an array; empty when absent. */
export function splitList(value: unknown): string[] {
  if (value === undefined || value === true) return [];
  return String(value)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
