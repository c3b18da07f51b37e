/**
 * MACs that asked the netboot endpoint for a boot script but belong to no node
 * ("discovered", ref discovered/<mac> -> {mac, first, last, from}), so an admin can turn
 * them into nodes. Recorded by the server's /boot.ipxe, listed by GET /v1/discovered.
 */
import type { RefStore } from '../store/interfaces.ts';

export interface Discovered {
  mac: string;
  /** ISO times of the first and the last request. */
  first: string;
  last: string;
  /** The address the last request came from. */
  from: string;
}

/** Records (or refreshes) an unknown MAC; `mac` in Cloner's form (core/names.ts normalizeMac). */
export async function recordDiscovered(store: RefStore, mac: string, from: string): Promise<void> {
  const key = `discovered/${mac}`;
  const before = await store.getRef(key);
  const first = before ? (JSON.parse(before) as Discovered).first : new Date().toISOString();
  await store.casRef(key, before, JSON.stringify({ mac, first, last: new Date().toISOString(), from } satisfies Discovered));
}

export async function listDiscovered(store: Pick<RefStore, 'listRefs'>): Promise<Discovered[]> {
  return (await store.listRefs('discovered/')).map(([, raw]) => JSON.parse(raw) as Discovered);
}
