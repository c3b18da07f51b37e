/**
 * The one error shape of Cloner: a message, a constant `code` callers branch on (never the
 * message text), a `hint` (the one line a user is told to try next), the HTTP `status` the
 * server answers with when the error reaches a route (4xx: the request was wrong; 5xx: the
 * server or a device behind it failed), and an optional `cause` (the error underneath).
 * Every module's errors (store, manifest, capture, restore, layout, nodes, usage) are
 * subclasses; the CLI and the agent print message + hint for these and a stack for
 * anything else, and the server's error reply is built from the class (server/app.ts).
 */
export class ClonerError extends Error {
  readonly code: string = 'CLONER_ERROR';
  /** HTTP status when this error answers a request; subclasses override it. */
  readonly status: number = 400;
  readonly hint: string;
  constructor(message: string, hint = '', options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** A bad flag, argument or setting given by the user (CLI, agent, server start-up). */
export class UsageError extends ClonerError {
  override readonly code = 'USAGE';
}

/** A name or key that does not exist (HTTP 404). */
export class NotFoundError extends ClonerError {
  override readonly code: string = 'NOT_FOUND';
  override readonly status: number = 404;
}

/** A write that conflicts with what is stored (HTTP 409). */
export class ConflictError extends ClonerError {
  override readonly code: string = 'CONFLICT';
  override readonly status: number = 409;
}

/**
 * How a program reports an error that ends it: a ClonerError (or a usage error of cac, or
 * a plain system error such as ENOENT) as `PROG: error: message` plus its hint, exit 2;
 * anything else is a bug, shown with its stack, exit 1. Pure: the caller writes and exits.
 */
export function describeFatal(prog: string, err: unknown): { text: string; exitCode: number } {
  const line = (message: string, hint: string) => ({ text: `${prog}: error: ${message}\n${hint ? `hint: ${hint}\n` : ''}`, exitCode: 2 });
  if (err instanceof ClonerError) return line(err.message, err.hint);
  const e = err as { message?: string; code?: string; stack?: string; name?: string };
  if (e?.name === 'CACError') return line(e.message ?? 'bad arguments', 'see the command\'s flags with --help');
  if (e && typeof e.code === 'string' && /^E[A-Z]+$/.test(e.code)) return line(e.message ?? e.code, 'check the path and your permissions');
  return { text: `${prog}: internal error: ${e?.stack ?? String(err)}\n`, exitCode: 1 };
}
