/** The n-th chunk of the crash test: seeded bytes of a seeded size (1..120 KB), some compressible. */
import { seededBytes } from '../helpers/fixtures.ts';

export function crashChunk(n: number): Buffer {
  const size = 1000 + ((n * 7919) % 120_000);
  return n % 3 === 0 ? Buffer.alloc(size, n & 0xff) : seededBytes(n + 1, size);
}
