/**
 * Which installer each node set to cloner will boot, for `cloner netboot` and `cloner
 * status`: the one of its image's golden kernel, else the newest (a warning), else none (a
 * warning with the hint `cloner make-installer`, instead of a node that asks for a kernel
 * the server does not have). The rule is core/installer/store.ts `pickInstaller`, the one
 * /boot.ipxe applies.
 */
import path from 'node:path';
import { ApiClient } from '../core/api/client.ts';
import { API } from '../core/api/endpoints.ts';
import { listInstallers, pickInstaller } from '../core/installer/store.ts';
import { HttpStore } from '../core/store/http.ts';
import type { Backend, BackendArgs } from './backend.ts';

/** One warning line per node set to cloner that would not boot its image's installer. */
export async function installerWarnings(backend: Backend, args: BackendArgs, nodes: Array<{ name: string; netboot: string; cloner_image?: string; cloner_revision?: number }>): Promise<string[]> {
  const armed = nodes.filter((n) => n.netboot !== 'local');
  if (!armed.length) return [];
  const versions = (backend.chunks instanceof HttpStore ? await new ApiClient(backend.chunks).call(API.listInstallers) : await listInstallers(path.join(path.dirname(path.resolve(String(args.store))), 'boot'))).map((i) => i.version);
  const out: string[] = [];
  for (const n of armed) {
    const image = n.cloner_image ? await backend.getImage(n.cloner_image) : undefined;
    const revision = n.cloner_revision ? image?.revisions.find((r) => r.n === n.cloner_revision) : image?.revisions.at(-1);
    const choice = pickInstaller(versions, revision?.kernel);
    if (!choice) out.push(`${n.name}: set to ${n.netboot}, but ${backend.where} has no installer${revision?.kernel ? ` (its image needs kernel ${revision.kernel})` : ''}; the node will boot from its disk\nhint: run cloner make-installer on the golden node`);
    else if (choice.warning && revision?.kernel) out.push(`${n.name}: ${choice.warning}`);
  }
  return out;
}
