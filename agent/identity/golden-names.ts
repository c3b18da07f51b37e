/**
 * The golden node's name, machine-id and per-host secrets beyond the files identity.ts
 * writes (issue 20, "No golden identity left"):
 *   - known formats are rewritten: /etc/mailname, postfix's main.cf (myhostname, myorigin,
 *     mydestination, ...), sssd.conf, the golden's name tokens (FQDN and short) replaced;
 *   - the journal directory named after the golden's machine-id is renamed so journald,
 *     which reads only directories named by a machine-id, leaves it (its logs are the golden's);
 *   - per-host secrets are removed, never copied to every node: the Kerberos keytab, systemd's
 *     credential secret, Samba's machine secrets, Puppet's and Chef's client certificates;
 *     cluster-wide secrets (the MUNGE key) stay;
 *   - any other file under /etc that still names the golden's hostname or machine-id is
 *     listed as a warning (at most 20 named; /etc/hosts's cluster list is the golden's own entry);
 *   - outside /etc, a bounded set of places an admin keeps host configuration is scanned
 *     (OUTSIDE: crontabs under /var/spool/cron, /usr/local/etc, /opt/PKG/etc, /srv/PKG/etc, root's
 *     and /var/lib/dbus's files; at most 2000 files of at most 256 KiB, 8 MiB in all, 5 levels,
 *     text only): a file that is only the golden's name, FQDN or machine-id (a name file such as
 *     /opt/app/etc/hostname) is rewritten with the node's; any other naming them is a warning.
 */
import * as fs from 'node:fs';
import type { TargetFiles } from './files.ts';

/** Replaces whole-word golden names (FQDN first, then short) by the node's. */
export function renameTokens(text: string, golden: string, hostname: string): string {
  const gShort = golden.split('.')[0];
  const short = hostname.split('.')[0];
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const word = (s: string) => new RegExp(`(?<![A-Za-z0-9-])${esc(s)}(?![A-Za-z0-9-])`, 'g');
  let out = text;
  if (golden.includes('.')) out = out.replace(word(golden), hostname.includes('.') ? hostname : `${short}${golden.slice(gShort.length)}`);
  // A golden FQDN spelled with the golden's short name and any domain.
  out = out.replace(new RegExp(`(?<![A-Za-z0-9-])${esc(gShort)}(?=\\.[A-Za-z])`, 'g'), short);
  return out.replace(word(gShort), short);
}

const KNOWN = ['etc/mailname', 'etc/postfix/main.cf', 'etc/sssd/sssd.conf', 'etc/exim4/update-exim4.conf.conf', 'etc/ssmtp/ssmtp.conf', 'etc/chrony.conf', 'etc/chrony/chrony.conf', 'etc/salt/minion_id', 'etc/puppetlabs/puppet/puppet.conf', 'etc/puppet/puppet.conf'];
const SECRETS: Array<[string, string]> = [
  ['etc/krb5.keytab', 'the golden\'s Kerberos host keytab: join the node (adcli join / ipa-client-install / net ads join)'],
  ['var/lib/systemd/credential.secret', 'systemd\'s per-host credential secret (made anew at boot)'],
  ['var/lib/samba/private/secrets.tdb', 'the golden\'s Samba machine account secret: join the node'],
  ['etc/salt/pki/minion/minion.pem', 'the golden\'s Salt minion key'],
  ['etc/salt/pki/minion/minion.pub', 'the golden\'s Salt minion key'],
  ['etc/chef/client.pem', 'the golden\'s Chef client key'],
];
const SECRET_DIRS = ['etc/puppetlabs/puppet/ssl', 'var/lib/puppet/ssl', 'var/lib/sss/db', 'var/lib/sss/secrets', 'etc/ipa/nssdb'];

function walkFiles(t: TargetFiles, dir: string, out: string[], depth = 0, maxFiles = 5000, maxSize = 1 << 20): void {
  if (depth > 5 || out.length >= maxFiles) return;
  for (const name of t.list(dir)) {
    if (out.length >= maxFiles) return;
    const rel = `${dir}/${name}`;
    const st = t.lstat(rel);
    if (st?.isDirectory()) walkFiles(t, rel, out, depth + 1, maxFiles, maxSize);
    else if (st?.isFile() && st.size < maxSize) out.push(rel);
  }
}

const OUTSIDE_FILES = 2000;
const OUTSIDE_BYTES = 8 << 20;

/** The places outside /etc scanned for the golden's names: fixed directories, and etc/ of each package under /opt and /srv. */
function outsidePlaces(t: TargetFiles): string[] {
  const pkgs = (top: string) => t.list(top).filter((p) => t.lstat(`${top}/${p}/etc`)?.isDirectory()).map((p) => `${top}/${p}/etc`);
  return ['var/spool/cron', 'usr/local/etc', ...pkgs('opt'), ...pkgs('srv'), 'var/lib/dbus'].filter((d) => t.lstat(d)?.isDirectory());
}

/** Files outside /etc naming the golden: name files rewritten, the rest returned (tree paths). */
function outsideEtc(t: TargetFiles, golden: string | null, goldenMachineId: string | null, hostname: string, machineId: string, nameRe: RegExp | null): string[] {
  const files: string[] = [];
  for (const dir of outsidePlaces(t)) walkFiles(t, dir, files, 0, OUTSIDE_FILES, 256 << 10);
  for (const name of ['.profile', '.bashrc', '.forward', '.rhosts', '.k5login']) if (t.lstat(`root/${name}`)?.isFile()) files.push(`root/${name}`);
  const named: string[] = [];
  let bytes = 0;
  for (const rel of files.slice(0, OUTSIDE_FILES)) {
    const buf = t.readBytes(rel);
    if (buf === null || buf.includes(0) || (bytes += buf.length) > OUTSIDE_BYTES) continue;
    const text = buf.toString('utf8');
    const whole = text.trim();
    const mode = (t.lstat(rel)!.mode & 0o7777) || 0o644;
    if (goldenMachineId && whole === goldenMachineId) t.write(rel, text.replace(goldenMachineId, machineId), mode, 'the golden\'s machine-id -> this node\'s');
    else if (golden && new RegExp(`^${golden.split('.')[0].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\.[A-Za-z0-9-]+)*$`).test(whole)) t.write(rel, renameTokens(text, golden, hostname), mode, `${whole} -> ${renameTokens(whole, golden, hostname)}`);
    else if ((nameRe && nameRe.test(text)) || (goldenMachineId && text.includes(goldenMachineId))) named.push(`/${rel}`);
  }
  return named;
}

export function goldenNames(t: TargetFiles, golden: string | null, goldenMachineId: string | null, hostname: string, machineId: string, skip: Set<string>): void {
  if (golden) {
    for (const rel of KNOWN) {
      const text = t.read(rel);
      if (text === null) continue;
      const next = renameTokens(text, golden, hostname);
      if (next !== text) t.write(rel, next, (t.lstat(rel)!.mode & 0o7777) || 0o644, `${golden} -> ${hostname}`);
    }
  }
  if (goldenMachineId && goldenMachineId !== machineId) {
    for (const dir of ['var/log/journal', 'run/log/journal']) {
      if (!t.lstat(`${dir}/${goldenMachineId}`)?.isDirectory()) continue;
      fs.renameSync(t.root.at(`/${dir}/${goldenMachineId}`), t.root.at(`/${dir}/golden-${goldenMachineId}`));
      t.root.forget(`/${dir}/${goldenMachineId}`);
      t.change(`${dir}/${goldenMachineId}`, `the golden's journal, renamed golden-${goldenMachineId} (journald reads only this node's)`);
    }
  }
  for (const [rel, why] of SECRETS) if (t.remove(rel, `removed: ${why}`)) t.warn(`/${rel} removed: ${why}`);
  for (const dir of SECRET_DIRS) {
    const files: string[] = [];
    walkFiles(t, dir, files);
    for (const rel of files) t.remove(rel, 'removed: the golden\'s per-host credentials or cache');
    if (files.length) t.warn(`/${dir}: the golden's per-host credentials or cache (${files.length} files) removed`);
  }
  // Whatever else still names the golden: reported, not guessed at.
  const named: string[] = [];
  const files: string[] = [];
  walkFiles(t, 'etc', files);
  const gShort = golden?.split('.')[0];
  const nameRe = gShort && gShort.length >= 3 ? new RegExp(`(?<![A-Za-z0-9-])${gShort.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9-])`) : null;
  for (const rel of files) {
    if (skip.has(rel) || rel === 'etc/hosts' || rel.startsWith('etc/ssh/ssh_host_')) continue;
    const text = t.read(rel);
    if (text === null || text.includes('\0')) continue;
    if ((nameRe && nameRe.test(text)) || (goldenMachineId && text.includes(goldenMachineId))) named.push(`/${rel}`);
  }
  named.push(...outsideEtc(t, golden, goldenMachineId, hostname, machineId, nameRe));
  if (named.length) t.warn(`${named.length} file(s) still name the golden's hostname or machine-id (not a format cloner rewrites): ${named.slice(0, 20).join(', ')}${named.length > 20 ? ', ...' : ''}`);
}
