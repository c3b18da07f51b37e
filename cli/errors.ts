/**
 * User-facing error reporting: only cli/ decides exit codes. Any error with a `hint`
 * (store, tree, manifest, usage errors) prints as one line plus its hint and exits 2;
 * anything else is a bug and prints its stack, exit 1.
 */
export class UsageError extends Error {
  readonly code = 'USAGE';
  readonly hint: string;
  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}

export function reportAndExit(err: unknown): never {
  const e = err as { message?: string; hint?: string; code?: string; stack?: string };
  if (e && typeof e.hint === 'string') {
    process.stderr.write(`cloner: error: ${e.message}\n${e.hint ? `hint: ${e.hint}\n` : ''}`);
    process.exit(2);
  }
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    process.stderr.write(`cloner: error: ${e.message}\nhint: check the path and your permissions\n`);
    process.exit(2);
  }
  process.stderr.write(`cloner: internal error: ${e?.stack ?? String(err)}\n`);
  process.exit(1);
}
