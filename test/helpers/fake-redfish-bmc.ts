/**
 * FakeRedfishBmc: a stand-in for a Redfish BMC (no real one, nor DMTF's emulator, can run
 * here), serving the few resources cloner uses over HTTPS on loopback with a self-signed
 * certificate made by openssl: /redfish/v1/Systems, one system with its PowerState, and
 * its ComputerSystem.Reset action (On, ForceOff, ForceRestart, GracefulShutdown). Basic
 * auth is checked; every request is recorded. It is named fake because it is one.
 *
 * It runs as its own process (this file with --serve DIR), since tests call the CLI
 * synchronously; state and calls are kept in DIR/state.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withTempDir } from './fixtures.ts';

const USERNAME = 'root';
const PASSWORD = 'fake-bmc-secret';

export interface FakeRedfishBmc {
  port: number;
  username: string;
  password: string;
  /** "On" or "Off". */
  powerState(): string;
  /** "METHOD path [ResetType]" per request. */
  calls(): string[];
}

function serve(dir: string): void {
  const stateFile = path.join(dir, 'state.json');
  const state = { power: 'Off', calls: [] as string[] };
  const save = () => writeFileSync(stateFile, JSON.stringify(state));
  save();
  const system = '/redfish/v1/Systems/1';
  const server = https.createServer({ key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) }, (req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const send = (status: number, value?: unknown) => {
        save();
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(value === undefined ? '' : JSON.stringify(value));
      };
      if (req.headers.authorization !== `Basic ${Buffer.from(`${USERNAME}:${PASSWORD}`).toString('base64')}`) return send(401, { error: { message: 'bad credentials' } });
      const resetType = req.method === 'POST' ? ((JSON.parse(body || '{}') as { ResetType?: string }).ResetType ?? '') : '';
      state.calls.push(`${req.method} ${req.url}${resetType ? ` ${resetType}` : ''}`);
      if (req.method === 'GET' && req.url === '/redfish/v1/Systems') return send(200, { Members: [{ '@odata.id': system }], 'Members@odata.count': 1 });
      if (req.method === 'GET' && req.url === system) return send(200, { '@odata.id': system, Id: '1', PowerState: state.power, Actions: { '#ComputerSystem.Reset': { target: `${system}/Actions/ComputerSystem.Reset`, 'ResetType@Redfish.AllowableValues': ['On', 'ForceOff', 'ForceRestart', 'GracefulShutdown'] } } });
      if (req.method === 'POST' && req.url === `${system}/Actions/ComputerSystem.Reset`) {
        if (resetType === 'On' || resetType === 'ForceRestart') state.power = 'On';
        else if (resetType === 'ForceOff' || resetType === 'GracefulShutdown') state.power = 'Off';
        else return send(400, { error: { message: `unsupported ResetType ${resetType}` } });
        return send(204);
      }
      send(404, { error: { message: 'not found' } });
    });
  });
  server.listen(0, '127.0.0.1', () => process.stdout.write(`port ${(server.address() as { port: number }).port}\n`));
}

if (process.argv[2] === '--serve') serve(process.argv[3]);

export async function withFakeRedfishBmc<T>(work: (bmc: FakeRedfishBmc) => Promise<T>): Promise<T> {
  return withTempDir(async (dir) => {
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=fake-bmc', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`openssl: ${made.stderr}`);
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => {
          out += d;
          const m = /port (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        child.once('exit', (code) => reject(new Error(`the fake BMC exited (${code})`)));
      });
      const read = () => JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')) as { power: string; calls: string[] };
      return await work({ port, username: USERNAME, password: PASSWORD, powerState: () => read().power, calls: () => read().calls });
    } finally {
      child.kill('SIGKILL');
    }
  });
}
