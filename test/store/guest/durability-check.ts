/**
 * Runs in the VM after the hard reset (durability.test.ts): opens the store and reads back
 * every chunk the writer had acknowledged (lines "I ID" of ACKED), each checked against its
 * id (BLAKE3) and its seeded content. Prints "ok N" or the chunks that are lost.
 * Usage: node durability-check.ts STORE_DIR ACKED
 */
import { readFileSync } from 'node:fs';
import { LocalStore } from '../../../core/store/local.ts';
import { seededBytes } from '../../helpers/fixtures.ts';

const [dir, acked] = process.argv.slice(2);
const lines = readFileSync(acked, 'utf8').split('\n').filter((l) => /^\d+ [0-9a-f]{64}$/.test(l));
const store = await LocalStore.open(dir);
const lost: string[] = [];
for (const line of lines) {
  const [i, id] = line.split(' ');
  try {
    const data = await store.get(id);
    if (!data.equals(seededBytes(1000 + Number(i), 150_000 + Number(i) * 997))) lost.push(`${i} (other content)`);
  } catch (err) {
    lost.push(`${i} (${(err as Error).message})`);
  }
}
await store.close();
process.stdout.write(lost.length ? `lost ${lost.length} of ${lines.length}: ${lost.join(', ')}\n` : `ok ${lines.length}\n`);
