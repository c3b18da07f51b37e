/**
 * Runs in the VM (durability.test.ts): puts seeded chunks into a LocalStore one after
 * another and prints each id only once `put` has resolved, i.e. once the store says the
 * chunk is durable. The host pulls the plug while this runs.
 * Usage: node durability-writer.ts STORE_DIR COUNT
 */
import { LocalStore } from '../../../core/store/local.ts';
import { seededBytes } from '../../helpers/fixtures.ts';

const [dir, count] = process.argv.slice(2);
const store = await LocalStore.open(dir, { create: true });
for (let i = 0; i < Number(count); i++) {
  const id = await store.put(seededBytes(1000 + i, 150_000 + i * 997));
  process.stdout.write(`${i} ${id}\n`);
}
await store.close();
process.stdout.write('done\n');
