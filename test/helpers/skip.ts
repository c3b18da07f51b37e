/**
 * Skipping with a reason, in the form test/run.ts reads (and, with CI=true, fails the run
 * on): `skipped: <what>: <why>`. Use `skipUnless` where tests are registered, so uvu counts
 * a skip; use `skippedEarly` only in a test that returns before its assertions.
 */
import type { Test } from 'uvu';

/** Registers `name` under `register` when `blocker` is null; otherwise a skip with the reason printed. */
export function skipUnless(register: Test, blocker: string | null, name: string, body: () => void | Promise<void>): void {
  if (blocker === null) {
    register(name, body);
    return;
  }
  console.log(`skipped: ${name}: ${blocker}`);
  register.skip(name, () => {});
}

/** For a test that returns early: prints the line the runner moves from passed to skipped. */
export function skippedEarly(name: string, why: string): void {
  console.log(`skipped (returned early): ${name}: ${why}`);
}
