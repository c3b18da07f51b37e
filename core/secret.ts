/**
 * Secret tokens (the server's admin and read tokens, deploy tokens): 32 random bytes from
 * the system CSPRNG, base64url (43 characters). A token never starts with '-': given as
 * `--token TOKEN` on a command line, one that did would be read as flags (`-h...` printed the
 * help and exited 0 where a deploy was meant; 1 token in 64 started so). Redrawing those
 * leaves 256 - 0.02 bits of entropy.
 */
import { randomBytes } from 'node:crypto';

/** A new token: 43 characters of [A-Za-z0-9_-], the first not '-'. */
export function newToken(): string {
  for (;;) {
    const token = randomBytes(32).toString('base64url');
    if (!token.startsWith('-')) return token;
  }
}
