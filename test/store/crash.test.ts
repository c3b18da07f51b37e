import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { LocalStore } from '../../core/store/local.ts';
import { withTempDir } from '../helpers/fixtures.ts';
import { crashChunk } from './crash-data.ts';

const ROUNDS = 12;

/** Runs the writer, kills it with SIGKILL after `killAfterMs`, returns the acknowledged chunks. */
function runAndKill(dir: string, start: number, killAfterMs: number): Promise<Map<number, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [new URL('./crash-writer.ts', import.meta.url).pathname, dir, String(start)], { stdio: ['ignore', 'pipe', 'inherit'] });
    const acked = new Map<number, string>();
    let buffered = '';
    let timer: NodeJS.Timeout | null = null;
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready' && !timer) timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
        const m = /^ack (\d+) ([0-9a-f]{64})$/.exec(line);
        if (m) acked.set(Number(m[1]), m[2]);
      }
    });
    const hardStop = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (_code, signal) => {
      clearTimeout(hardStop);
      if (timer) clearTimeout(timer);
      if (signal !== 'SIGKILL') reject(new Error(`writer ended by itself (${signal})`));
      else resolve(acked);
    });
  });
}

test(`a writer killed with SIGKILL at random moments (${ROUNDS} times) loses nothing it acknowledged`, async () => {
  await withTempDir(async (dir) => {
    const allAcked = new Map<number, string>();
    let start = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const acked = await runAndKill(dir, start, 40 + Math.floor(Math.random() * 400));
      for (const [n, id] of acked) allAcked.set(n, id);
      start += 100_000;
      const store = await LocalStore.open(dir);
      try {
        const report = await store.verify();
        assert.equal(report.missing, [], `round ${round}: missing chunks`);
        assert.equal(report.corrupt, [], `round ${round}: corrupt chunks`);
        const ids = [...allAcked.values()];
        const present = await store.hasMany(ids);
        assert.ok(present.every(Boolean), `round ${round}: ${present.filter((p) => !p).length} acknowledged chunks lost`);
        for (const [n, id] of [...allAcked].slice(-20)) assert.ok((await store.get(id)).equals(crashChunk(n)), `chunk ${n} content`);
      } finally {
        await store.close();
      }
    }
    assert.ok(allAcked.size > 50, `the writer acknowledged ${allAcked.size} chunks before its kills`);
  });
});

test.run();
