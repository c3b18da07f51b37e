/**
 * Tokens as a command line meets them: 5,000 new tokens, none starting with '-' (with plain
 * base64url about 78 would, and `--token -h...` printed the agent's help and exited 0 in a
 * deploy test), each 43 characters of base64url, all different.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { newToken } from '../core/secret.ts';

test('new tokens never start with a dash, are 43 base64url characters and differ', () => {
  const tokens = Array.from({ length: 5000 }, newToken);
  for (const t of tokens) assert.match(t, /^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/);
  assert.is(new Set(tokens).size, tokens.length);
  // The other 63 first characters all occur: the redraw removes only '-'.
  assert.is(new Set(tokens.map((t) => t[0])).size, 63);
});

test.run();
