/**
 * The man pages and the bash completion (scripts/docs.ts, docs/man, contrib/bash-completion):
 * the committed cloner(1) and completion are what the CLI's definitions give; every page
 * renders without warnings (man -l, else groff; skipped with the reason when neither is
 * installed) and names every sub-command; the completion, sourced in bash, is registered
 * for `cloner` and completes sub-commands, a command's flags, and file names after --file.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { clonerCli } from '../../cli/program.ts';
import { haveTool } from '../../core/tools.ts';
import { withTempDir } from '../helpers/fixtures.ts';

const root = path.resolve(new URL('../..', import.meta.url).pathname);
const commands = clonerCli().commands.map((c) => c.name).filter(Boolean);
const completion = path.join(root, 'contrib/bash-completion/cloner');

test('cloner.1 and the completion are what scripts/docs.ts generates from the CLI', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/docs.ts'), '--check'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stdout + r.stderr);
});

const renderer = haveTool('man') ? 'man' : haveTool('groff') ? 'groff' : null;
if (!renderer) {
  console.log('skipped: rendering the man pages: neither man nor groff is installed (scripts/setup.sh installs man-db)');
  test.skip('man pages render', () => {});
} else {
  test(`each man page renders without warnings (${renderer}) and cloner(1) names every sub-command`, () => {
    for (const page of ['cloner.1', 'cloner-server.8', 'cloner-agent.8']) {
      const file = path.join(root, 'docs/man', page);
      const r = renderer === 'man'
        ? spawnSync('man', ['--warnings', '-l', file], { encoding: 'utf8', env: { ...process.env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '100', LC_ALL: 'C.UTF-8' } })
        : spawnSync('groff', ['-ww', '-man', '-Tutf8', file], { encoding: 'utf8' });
      assert.is(r.status, 0, r.stderr);
      assert.is(r.stderr, '', `${page}: ${r.stderr}`);
      const text = r.stdout.replace(/.\x08/g, '');
      assert.match(text, /NAME\s+cloner(-server|-agent)? - /, page);
      assert.match(text, /--help/, page);
      if (page === 'cloner.1') for (const c of commands) assert.ok(new RegExp(`^\\s+${c}\\b`, 'm').test(text), `cloner(1) lacks ${c}`);
      if (page === 'cloner-agent.8') assert.match(text, /--dry-run/);
      if (page === 'cloner-server.8') assert.match(text, /--log-level/);
    }
  });
}

/** What the completion offers for the words typed so far (the last one is being completed). */
function complete(words: string[], cwd = root): string[] {
  const script = `source ${JSON.stringify(completion)}; complete -p cloner >&2; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}; _cloner; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd });
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stderr, /^complete -F _cloner cloner$/m);
  return r.stdout.split('\n').filter(Boolean).sort();
}

test('the bash completion completes sub-commands, flags and files', async () => {
  assert.equal(complete(['cloner', '']).filter((w) => !w.startsWith('-')), [...commands].sort());
  assert.equal(complete(['cloner', 'image-']), commands.filter((c) => c.startsWith('image-')).sort());
  assert.equal(complete(['cloner', 'disklayout-apply', '--d']), ['--disklayout', '--disks', '--dry-run']);
  assert.ok(complete(['cloner', 'image-list', '--']).includes('--json'));
  assert.not.ok(complete(['cloner', 'image-list', '--']).includes('--yes'), 'only the command\'s own flags');
  assert.ok(complete(['cloner', 'disklayout-delete', '--']).includes('--yes'));
  await withTempDir(async (dir) => {
    await writeFile(path.join(dir, 'layout-a.json'), '{}');
    await writeFile(path.join(dir, 'layout-b.json'), '{}');
    assert.equal(complete(['cloner', 'disklayout-upload', '--file', 'layout-'], dir), ['layout-a.json', 'layout-b.json']);
  });
});

test.run();
