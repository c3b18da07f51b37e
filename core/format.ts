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

/**
 * Text that came from elsewhere (a node's status message, an error, a hostname) made safe
 * to print on an admin's terminal: C0/C1 control characters and DEL (escape sequences could
 * move the cursor, retitle the window or hide lines) are shown as \xNN; newlines as \n.
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}
