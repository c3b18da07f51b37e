/**
 * Multicast routes (a fastify plugin; table in core/api/routes.ts; rules in
 * core/multicast/hub.ts):
 *   POST /v1/multicast/nodes/:name          {image, revision, chunks, digest, lacking} -> assignment  a node waits (node;
 *                                           lacking: a bitmap over the revision's chunks, core/multicast/summary.ts)
 *   GET  /v1/multicast/nodes/:name          -> assignment                              its poll (node)
 *   POST /v1/multicast/nodes/:name/ready    {session} -> assignment                   joined the group (node)
 *   POST /v1/multicast/nodes/:name/report   {session, round, missing, gaps}           its NACK (node)
 *   POST /v1/multicast/nodes/:name/progress {session, datagrams, lost} -> assignment  its poll in a session (node;
 *                                           the sender's rate follows the loss: core/multicast/rate.ts)
 *   GET  /v1/multicast                      -> {waiting, sessions}                     (read)
 *   POST /v1/multicast/sessions             {image, nodes, ...} -> {plan, session}     multicast-image (write)
 * Sessions live in this process's memory; they end when the server stops.
 */
import type { FastifyInstance } from 'fastify';
import { networkInterfaces } from 'node:os';
import { API } from '../core/api/routes.ts';
import { MulticastError, MulticastHub, type HubLimits } from '../core/multicast/hub.ts';
import { ChunkListCache, decodeLacking } from '../core/multicast/summary.ts';
import { ImageNotFoundError } from '../core/store/errors.ts';
import type { LocalStore } from '../core/store/local.ts';
import { getImage } from '../core/tree/images.ts';
import { serve } from './route.ts';

/** Default pace: 400 Mbit/s, a safe share of a gigabit link (bench/multicast.ts). */
export const DEFAULT_RATE_BITS = 400e6;
export const DEFAULT_GROUP = '239.192.87.40';

function interfaceAddress(name: string): string {
  const found = networkInterfaces()[name]?.find((a) => a.family === 'IPv4');
  if (!found) throw new MulticastError(`the server has no IPv4 interface ${name}`, `one of: ${Object.keys(networkInterfaces()).join(', ')}`);
  return found.address;
}

/** The IPv4 address a request came in on (a node's registration: the interface facing it). */
const localIPv4 = (address: string | undefined) => (address?.startsWith('::ffff:') ? address.slice(7) : address && /^\d+\.\d+\.\d+\.\d+$/.test(address) ? address : undefined);

export async function multicastRoutes(app: FastifyInstance, opts: { store: LocalStore; limits?: Partial<HubLimits>; hub?: MulticastHub }): Promise<void> {
  const { store } = opts;
  // The server makes the hub and shares it with the web interface; alone, this plugin makes its own.
  const hub = opts.hub ?? new MulticastHub(store, opts.limits);
  app.addHook('onClose', async () => hub.close());
  hub.log = (message, fields) => app.log.info(fields, message);

  const lists = new ChunkListCache(store);
  serve(app, API.multicastRegister, async (req) => {
    const { chunks, digest, lacking, ...b } = req.body;
    const rev = (await getImage(store, b.image))?.revisions.find((r) => r.n === b.revision);
    if (!rev) throw new ImageNotFoundError(`no revision ${b.revision} of image ${b.image}`, 'see: cloner image-list');
    const list = await lists.of(rev.tree);
    return hub.register(req.params.name, { ...b, lacking: decodeLacking(list.all, { chunks, digest, lacking }, list.digest), list: list.all }, localIPv4(req.socket.localAddress));
  });
  serve(app, API.multicastPoll, async (req) => hub.poll(req.params.name));
  serve(app, API.multicastReady, async (req) => hub.ready(req.params.name, req.body.session));
  serve(app, API.multicastReport, async (req) => hub.report(req.params.name, req.body.session, req.body));
  serve(app, API.multicastProgress, async (req) => hub.progress(req.params.name, req.body.session, req.body));
  serve(app, API.multicastStatus, async () => hub.status());
  serve(app, API.multicastStart, async (req) => {
    const b = req.body;
    const image = await getImage(store, b.image);
    if (!image?.revisions.length) throw new ImageNotFoundError(`no image named ${b.image}`, 'see: cloner image-list');
    // The revision most of the selected waiting nodes want (a node may pin one), else the latest.
    const counts = new Map<number, number>();
    for (const w of hub.waitingFor(b.image, b.nodes)) counts.set(w.revision, (counts.get(w.revision) ?? 0) + 1);
    const revision = [...counts].sort((x, y) => y[1] - x[1])[0]?.[0] ?? image.revisions.at(-1)!.n;
    const plan = await hub.plan(b.image, revision, b.nodes);
    if (b.dryRun) return { ...plan, session: null };
    const session = hub.start({
      image: b.image,
      revision,
      nodes: b.nodes,
      minReceivers: b.minReceivers ?? b.nodes.length,
      maxWaitMs: (b.maxWaitS ?? 120) * 1000,
      rate: (b.rate ?? DEFAULT_RATE_BITS) / 8,
      group: b.group ?? DEFAULT_GROUP,
      interfaceAddress: b.interface ? interfaceAddress(b.interface) : undefined,
      ttl: b.ttl ?? 1,
      mtu: b.mtu ?? 1500,
      repair: b.repair,
    });
    return { ...plan, session };
  });
}
