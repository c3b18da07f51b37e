/**
 * The one error shape of Cloner: a message, a constant `code` callers branch on (never the
 * message text), and a `hint`, the one line a user is told to try next. Every module's
 * errors (store, manifest, capture, restore, layout, CLI usage) are subclasses; the CLI
 * prints message + hint for these and a stack for anything else.
 */
export class ClonerError extends Error {
  readonly code: string = 'CLONER_ERROR';
  readonly hint: string;
  constructor(message: string, hint = '') {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}
