/**
 * User-facing error reporting: only cli/ decides the CLI's exit codes. A ClonerError
 * (store, tree, manifest, layout, usage errors) prints as one line plus its hint and exits
 * 2; anything else is a bug and prints its stack, exit 1 (core/errors.ts describeFatal).
 */
import { describeFatal } from '../core/errors.ts';

export { UsageError } from '../core/errors.ts';

export function reportAndExit(err: unknown): never {
  const { text, exitCode } = describeFatal('cloner', err);
  process.stderr.write(text);
  process.exit(exitCode);
}
