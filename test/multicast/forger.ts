/**
 * Sends bad datagrams to a multicast group for the netns test (from the server's
 * namespace): junk, truncated frames, frames of another session, and frames of this
 * session with a good CRC naming random objects (their directories are junk). Usage: forger.ts GROUP PORT SESSION COUNT
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { encodeFrame } from '../../core/multicast/wire.ts';

const [group, port, session, count] = process.argv.slice(2);
const socket = dgram.createSocket('udp4');
await new Promise<void>((r) => socket.bind({ address: '198.18.0.1', port: 0 }, () => r()));
socket.setMulticastInterface('198.18.0.1');
socket.setMulticastTTL(1);
const frame = (s: string) => encodeFrame(s, { type: 'data', object: randomBytes(3).readUIntBE(0, 3), length: 2000, piece: 0, row: 0, payload: randomBytes(1000) });
const until = Date.now() + 30_000;
for (let i = 0; i < Number(count) && Date.now() < until; i++) {
  const kind = i % 4;
  const d = kind === 0 ? randomBytes(200) : kind === 1 ? frame(session).subarray(0, 50) : kind === 2 ? frame(randomBytes(8).toString('hex')) : frame(session);
  await new Promise((r) => socket.send(d, Number(port), group, r));
  if (i % 50 === 0) await new Promise((r) => setTimeout(r, 100));
}
socket.close();
