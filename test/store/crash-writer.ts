/**
 * Child process of crash.test.ts: puts seeded chunks into the store at argv[2] as fast as
 * it can, many in flight, and prints "ack <n> <id>" for each put that resolved (i.e. was
 * acknowledged durable), until it is killed.
 */
import { LocalStore } from '../../core/store/local.ts';
import { crashChunk } from './crash-data.ts';

const [dir, startArg] = process.argv.slice(2);
const store = await LocalStore.open(dir, { create: true, packTargetBytes: 300_000, commitDelayMs: 3 });
let n = Number(startArg);
process.stdout.write('ready\n');
for (;;) {
  const batch = Array.from({ length: 16 }, () => n++);
  await Promise.all(batch.map(async (i) => {
    const id = await store.put(crashChunk(i));
    process.stdout.write(`ack ${i} ${id}\n`);
  }));
}
