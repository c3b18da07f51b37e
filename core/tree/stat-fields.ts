/** Fields of a bigint lstat as manifests keep them: times as [seconds, nanoseconds], a device number as [major, minor]. */
import type { Timestamp } from './manifest.ts';

export function timestampOf(ns: bigint): Timestamp {
  const sec = ns / 1_000_000_000n;
  let nsec = ns % 1_000_000_000n;
  let s = sec;
  if (nsec < 0n) {
    nsec += 1_000_000_000n;
    s -= 1n;
  }
  return [Number(s), Number(nsec)];
}

/** glibc's major/minor split of a 64-bit dev_t. */
export function splitDev(rdev: bigint): [number, number] {
  return [Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn))];
}
