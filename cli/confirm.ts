/**
 * The question a destructive command asks before it acts ("... [y/N]" on standard error, the
 * answer from standard input); `--yes` answers it. No answer (standard input closed) is a
 * usage error naming --yes, so a script never deletes by accident and never hangs.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<boolean> {
  if (yes) return true;
  const { stdinAsker } = await import('./options-run.ts');
  const asker = stdinAsker();
  try {
    return /^\s*y(es)?\s*$/i.test(await asker.ask(`${question} [y/N] `));
  } finally {
    asker.close();
  }
}
