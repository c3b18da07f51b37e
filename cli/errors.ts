/**
 * User-facing error reporting: only cli/ decides exit codes. A ClonerError (store, tree,
 * manifest, layout, usage errors) prints as one line plus its hint and exits 2; anything
 * else is a bug and prints its stack, exit 1.
 */
import { ClonerError } from '../core/errors.ts';

export class UsageError extends ClonerError {
  override readonly code = 'USAGE';
}

export function reportAndExit(err: unknown): never {
  if (err instanceof ClonerError) {
    process.stderr.write(`cloner: error: ${err.message}\n${err.hint ? `hint: ${err.hint}\n` : ''}`);
    process.exit(2);
  }
  const e = err as { message?: string; code?: string; stack?: string; name?: string };
  if (e?.name === 'CACError') {
    process.stderr.write(`cloner: error: ${e.message}\nhint: see the command's flags with --help\n`);
    process.exit(2);
  }
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) {
    process.stderr.write(`cloner: error: ${e.message}\nhint: check the path and your permissions\n`);
    process.exit(2);
  }
  process.stderr.write(`cloner: internal error: ${e?.stack ?? String(err)}\n`);
  process.exit(1);
}
