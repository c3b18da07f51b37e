/**
 * Whether the golden's initramfs was made for the golden's hardware, so must be made anew on a
 * node whatever device references it holds (agent/initramfs.ts asks, per initramfs file):
 *   - initramfs-tools with MODULES=dep: only the golden's storage/network drivers. The last
 *     assignment wins, in the order mkinitramfs sources them: etc/initramfs-tools/initramfs.conf,
 *     then usr/share/initramfs-tools/conf.d/* (unless etc/ has the name), then
 *     etc/initramfs-tools/conf.d/*, each in name order; Debian's default is `most`;
 *   - dracut in host-only mode: only the golden's drivers and devices. The initramfs's own
 *     record wins: dracut stores its command line in (usr/)lib/dracut/build-parameter.txt
 *     (-H/--hostonly, -N/--no-hostonly override the configuration), and lists the files it
 *     installed host-only in (usr/)lib/dracut/hostonly-files. Otherwise the image's
 *     configuration, as dracut reads it: etc/dracut.conf, then the *.conf of
 *     etc/dracut.conf.d and usr/lib/dracut/dracut.conf.d in name order (a name in etc/
 *     replaces the same name in usr/lib/); only hostonly=yes means host-only (Fedora/RHEL
 *     ship it in usr/lib/dracut/dracut.conf.d/01-dist.conf; upstream's default is generic);
 *   - mkinitcpio with the `autodetect` hook in etc/mkinitcpio.conf's HOOKS: only the golden's
 *     modules.
 * Which tool made an initramfs is read from it (BuildEvidence: conf/initramfs.conf and
 * scripts/functions are initramfs-tools', (usr/)lib/dracut/ dracut's, init_functions
 * mkinitcpio's); one made by another tool is not judged by a leftover configuration, and one
 * whose tool is unknown is judged by every configuration the image has.
 */
import type { TargetFiles } from './identity/files.ts';

export type InitramfsBuilder = 'initramfs-tools' | 'dracut' | 'mkinitcpio';

const DRACUT_PARAMS = /^(?:usr\/)?lib\/dracut\/build-parameter\.txt$/;
const DRACUT_HOSTONLY_FILES = /^(?:usr\/)?lib\/dracut\/hostonly-files$/;

/** What an initramfs tells of how it was made, gathered entry by entry as it is read. */
export class BuildEvidence {
  builder: InitramfsBuilder | null = null;
  /** dracut's stored command line, when it has one. */
  dracutParams: string | null = null;
  /** dracut listed files it installed host-only (a non-empty hostonly-files). */
  dracutHostonlyFiles = false;

  /** Notes an entry's name (and size); true when its bytes are wanted (then pass them to `content`). */
  see(name: string, size: number): boolean {
    if (name === 'conf/initramfs.conf' || name === 'scripts/functions') this.builder ??= 'initramfs-tools';
    else if (/^(?:usr\/)?lib\/dracut\//.test(name)) this.builder ??= 'dracut';
    else if (name === 'init_functions') this.builder ??= 'mkinitcpio';
    if (DRACUT_HOSTONLY_FILES.test(name) && size > 0) this.dracutHostonlyFiles = true;
    return DRACUT_PARAMS.test(name) && size <= 1 << 16;
  }

  content(name: string, bytes: Buffer): void {
    if (DRACUT_PARAMS.test(name)) this.dracutParams = bytes.toString('utf8');
  }
}

/** The last value a shell-sourced configuration assigns to `name` (quotes removed; an array's words joined by spaces), or null. */
export function lastAssignment(text: string, name: string): string | null {
  let value: string | null = null;
  const re = new RegExp(`^[ \\t]*(?:export[ \\t]+)?${name}=(?:"([^"]*)"|'([^']*)'|\\(([^)]*)\\)|([^\\s#;]*))`, 'gm');
  for (const m of text.matchAll(re)) value = (m[1] ?? m[2] ?? m[3] ?? m[4] ?? '').replace(/#[^\n]*/g, '').replace(/\s+/g, ' ').trim();
  return value;
}

/** The *.conf names of drop-in directories, in the order the tool reads them; an earlier directory's name replaces a later's. */
function dropIns(t: TargetFiles, dirs: string[], suffix: string): string[] {
  const byName = new Map<string, string>();
  for (const dir of dirs) for (const n of t.list(dir)) if (n.endsWith(suffix) && !byName.has(n) && t.lstat(`${dir}/${n}`)?.isFile()) byName.set(n, `${dir}/${n}`);
  return [...byName.keys()].sort().map((n) => byName.get(n)!);
}

/** initramfs-tools' conf.d as mkinitramfs sources it: usr/share's (unless etc/ has the name), then etc/'s, each in name order, skipping dpkg leftovers. */
function initramfsToolsConfs(t: TargetFiles): string[] {
  const ok = (n: string) => /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n) && !/\.dpkg-/.test(n);
  const etc = t.list('etc/initramfs-tools/conf.d').filter(ok).sort();
  const usr = t.list('usr/share/initramfs-tools/conf.d').filter((n) => ok(n) && !etc.includes(n)).sort();
  return ['etc/initramfs-tools/initramfs.conf', ...usr.map((n) => `usr/share/initramfs-tools/conf.d/${n}`), ...etc.map((n) => `etc/initramfs-tools/conf.d/${n}`)].filter((f) => t.lstat(f)?.isFile());
}

function last(t: TargetFiles, files: string[], name: string): { value: string; file: string } | null {
  let found: { value: string; file: string } | null = null;
  for (const f of files) {
    const v = lastAssignment(t.read(f) ?? '', name);
    if (v !== null) found = { value: v, file: f };
  }
  return found;
}

/** Whether dracut's stored command line chose: true (-H/--hostonly), false (-N/--no-hostonly), null (neither; the last one wins). */
export function dracutParamsHostonly(params: string): boolean | null {
  let hostonly: boolean | null = null;
  for (const word of params.split(/\s+/)) {
    const w = word.replace(/^['"]|['"]$/g, '');
    if (w === '-H' || w === '--hostonly') hostonly = true;
    else if (w === '-N' || w === '--no-hostonly') hostonly = false;
  }
  return hostonly;
}

const judge = (e: BuildEvidence, b: InitramfsBuilder) => e.builder === null || e.builder === b;

/**
 * Why the initramfs was made for the golden's hardware (one line for the log), or null.
 * `t` is the mounted image, `e` what the initramfs itself told.
 */
export function madeForGoldenHardware(t: TargetFiles, e: BuildEvidence): string | null {
  if (judge(e, 'initramfs-tools') && t.exists('etc/initramfs-tools/initramfs.conf')) {
    const m = last(t, initramfsToolsConfs(t), 'MODULES');
    if (m?.value === 'dep') return `the image's initramfs-tools builds MODULES=dep (/${m.file}), for the golden's hardware`;
  }
  if (judge(e, 'dracut')) {
    const cli = e.dracutParams === null ? null : dracutParamsHostonly(e.dracutParams);
    if (cli === true) return "dracut built it host-only (--hostonly in its lib/dracut/build-parameter.txt), for the golden's hardware";
    if (cli === null) {
      if (e.builder === 'dracut' && e.dracutHostonlyFiles) return "dracut built it host-only (its lib/dracut/hostonly-files lists what it took from the golden), for the golden's hardware";
      const h = last(t, ['etc/dracut.conf', ...dropIns(t, ['etc/dracut.conf.d', 'usr/lib/dracut/dracut.conf.d'], '.conf')], 'hostonly');
      if (h?.value === 'yes' && (e.builder === 'dracut' || t.exists('usr/bin/dracut') || t.exists('usr/sbin/dracut') || t.exists('sbin/dracut'))) return `the image's dracut builds host-only (hostonly=yes in /${h.file}), for the golden's hardware`;
    }
  }
  if (judge(e, 'mkinitcpio')) {
    const hooks = last(t, ['etc/mkinitcpio.conf', ...dropIns(t, ['etc/mkinitcpio.conf.d'], '.conf')], 'HOOKS');
    if (hooks && /(?:^|[\s(])autodetect(?=[\s)]|$)/.test(hooks.value)) return `the image's mkinitcpio has the autodetect hook (/${hooks.file}), for the golden's hardware`;
  }
  return null;
}
