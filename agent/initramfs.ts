/**
 * Whether the golden's initramfs must be made anew for the node (the bootloader phase's
 * first step), decided by looking inside it instead of always paying for the image's tool
 * (update-initramfs -u -k all: ~17 s of a 27 s blank deploy of a Debian node).
 *
 * The initramfs is made anew when, in any of /boot's initramfs files (initrd.img-*,
 * initramfs-*.img), one of these holds:
 *   - a file holds a golden device reference the identity step replaced (a filesystem UUID,
 *     PARTUUID, md array UUID, PVID, LABEL=, /dev path: InitramfsInputs.refs), as
 *     initramfs-tools' conf/conf.d/resume, mdadm's etc/mdadm/mdadm.conf, cryptsetup's
 *     cryptroot/crypttab or dracut's host-only etc/cmdline.d do;
 *   - it carries a copy of a boot-chain file the identity step changed (InitramfsInputs.files,
 *     e.g. mdadm.conf now listing the node's arrays) that differs from the node's file (not
 *     fstab: initramfs-tools puts an empty one there and reads the root's at boot; a golden
 *     reference in a copy of it is found as any other);
 *   - the layout made RAID or LVM and it has no mdadm or lvm to assemble them;
 *   - it was made for the golden's hardware (agent/initramfs-host.ts: initramfs-tools'
 *     MODULES=dep, dracut host-only, mkinitcpio's autodetect hook);
 *   - it cannot be read (unknown compression, truncated, no tool to decompress it), or
 *     /boot has none: the safe default.
 * Otherwise the image's is kept, and the verdict says why.
 *
 * Reading (readInitramfs): the layout the kernel unpacks and unmkinitramfs reads: zero or more
 * uncompressed newc cpio archives (early microcode), zero-padded, then one compressed stream
 * (gzip and zstd decoded in-process by node:zlib; xz, lzma, bzip2, lz4, lzop by the host's
 * tool) of one or more cpio archives. Streamed: nothing is written, and memory stays at a
 * few chunks whatever the size. Kernel modules and firmware are skipped unread (no device
 * reference is there); every other file is searched as its bytes pass, with an overlap of
 * the longest reference so none is missed across two chunks.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Readable, pipeline } from 'node:stream';
import zlib from 'node:zlib';
import { toolPath } from '../core/tools.ts';
import type { Layout } from '../core/layout/model.ts';
import { TargetFiles } from './identity/files.ts';
import { BuildEvidence, madeForGoldenHardware } from './initramfs-host.ts';

/** The version of the rules below: a kept decision recorded under other rules is made again (agent/boot-made.ts). */
export const INITRAMFS_RULES = '2';

/** What the identity step changed that an initramfs may hold. */
export interface InitramfsInputs {
  /** The golden's device references it replaced, as the files named them ("UUID=…", "/dev/sda2", "8:8:8:8", a PVID). */
  refs: string[];
  /** The boot-chain files it changed (target-relative, "etc/mdadm/mdadm.conf"). */
  files: string[];
  /** What the layout made that the initramfs must assemble before the root: 'md' (RAID), 'lvm'. */
  layers: Array<'md' | 'lvm'>;
}

/** The inputs from the identity step's report and the layout (RAID and LVM it made). */
export function initramfsInputs(r: { replacedRefs: string[]; bootChainFiles: string[] }, layout: Layout): InitramfsInputs {
  return { refs: r.replacedRefs, files: r.bootChainFiles, layers: [...(layout.raids?.length ? ['md' as const] : []), ...(layout.volumeGroups?.length ? ['lvm' as const] : [])] };
}

export interface InitramfsVerdict {
  rebuild: boolean;
  /** Why, in one line (for the agent's log). */
  why: string;
}

/** One entry of an initramfs: its path as the archive names it (no leading "/"), mode and size. */
export interface CpioEntry {
  name: string;
  mode: number;
  size: number;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const CPIO_MAGICS = ['070701', '070702'];
/**
 * zlib's output piece: 1 MiB, not its 16 KiB default. Every piece costs a round trip from
 * the thread pool to the main thread and a new buffer; on the bench tree's initramfs (36 MB
 * of gzip, 130 MB inside) that took the main thread's share of the inflate from ~0.45 to
 * ~0.25 CPU seconds.
 */
const INFLATE_PIECE = 1 << 20;
/** Compressed streams by their first bytes: in-process (zlib) or the host's tool. */
const CODECS: Array<{ name: string; magic: Buffer; zlib?: () => NodeJS.ReadWriteStream; argv?: string[] }> = [
  { name: 'gzip', magic: Buffer.from([0x1f, 0x8b]), zlib: () => zlib.createGunzip({ chunkSize: INFLATE_PIECE }) },
  { name: 'zstd', magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), zlib: () => zlib.createZstdDecompress({ chunkSize: INFLATE_PIECE }) },
  { name: 'xz', magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), argv: ['xz', '-dc'] },
  { name: 'lzma', magic: Buffer.from([0x5d, 0x00, 0x00]), argv: ['xz', '-dc', '--format=lzma'] },
  { name: 'bzip2', magic: Buffer.from('BZh'), argv: ['bzip2', '-dc'] },
  { name: 'lz4', magic: Buffer.from([0x02, 0x21, 0x4c, 0x18]), argv: ['lz4', '-dc'] },
  { name: 'lzop', magic: Buffer.from([0x89, 0x4c, 0x5a, 0x4f]), argv: ['lzop', '-dc'] },
];

/** Pulls exact byte counts out of a stream of chunks; `pos` counts what was consumed (cpio pads to 4 from the stream's start). */
class Bytes {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  private ended = false;
  pos = 0;
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }

  /** Whether `n` bytes are buffered (false at the end of the stream). */
  async fill(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.buf = this.buf.length ? Buffer.concat([this.buf, r.value]) : r.value;
    }
    return this.buf.length >= n;
  }

  peek(n: number): Buffer {
    return this.buf.subarray(0, n);
  }

  async read(n: number): Promise<Buffer> {
    if (!(await this.fill(n))) throw new Error(`truncated at byte ${this.pos + this.buf.length}`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.pos += n;
    return out;
  }

  /** The next `n` bytes as they arrive (each piece valid until the next is asked for). */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (!this.buf.length && !(await this.fill(1))) throw new Error(`truncated at byte ${this.pos}`);
      const piece = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      this.pos += piece.length;
      n -= piece.length;
      yield piece;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n));
  }

  async align(to: number): Promise<void> {
    await this.skip((to - (this.pos % to)) % to);
  }

  /** Skips zero bytes (the padding between archives); false at the end of the stream. */
  async skipZeros(): Promise<boolean> {
    for (;;) {
      if (!(await this.fill(1))) return false;
      let i = 0;
      while (i < this.buf.length && this.buf[i] === 0) i++;
      this.buf = this.buf.subarray(i);
      this.pos += i;
      if (this.buf.length) return true;
    }
  }

  /** Everything not consumed yet, buffered bytes first. */
  async *rest(): AsyncGenerator<Buffer> {
    if (this.buf.length) yield this.buf;
    this.buf = Buffer.alloc(0);
    for (;;) {
      const r = await this.it.next();
      if (r.done) return;
      yield r.value;
    }
  }
}

/** newc archives one after another until the stream ends ('end') or something else starts ('other'). */
async function readArchives(b: Bytes, onEntry: (e: CpioEntry, data: AsyncGenerator<Buffer>) => Promise<void>): Promise<'end' | 'other'> {
  for (;;) {
    if (!(await b.skipZeros())) return 'end';
    await b.fill(6);
    if (!CPIO_MAGICS.includes(b.peek(6).toString('latin1'))) return 'other';
    for (;;) {
      const h = await b.read(110);
      if (!CPIO_MAGICS.includes(h.toString('latin1', 0, 6))) throw new Error(`not a cpio header at byte ${b.pos - 110}`);
      const field = (i: number) => Number.parseInt(h.toString('latin1', 6 + i * 8, 14 + i * 8), 16);
      const mode = field(1);
      const size = field(6);
      const nameSize = field(11);
      if (![mode, size, nameSize].every(Number.isFinite) || nameSize < 1 || nameSize > 4096) throw new Error(`a damaged cpio header at byte ${b.pos - 110}`);
      const name = (await b.read(nameSize)).toString('utf8', 0, nameSize - 1).replace(/^\.?\/+/, '');
      await b.align(4);
      if (name === 'TRAILER!!!') break;
      const data = b.take(size);
      await onEntry({ name, mode, size }, data);
      for await (const _ of data);
      await b.align(4);
    }
  }
}

/** The decompressed bytes of a compressed stream, in-process or through the host's tool; `stop` ends it early. */
function decompress(codec: (typeof CODECS)[number], source: AsyncIterable<Buffer>): { bytes: AsyncIterable<Buffer>; stop: () => void } {
  const input = Readable.from(source, { objectMode: false });
  if (codec.zlib) {
    const out = pipeline(input, codec.zlib(), () => {});
    return { bytes: out as unknown as AsyncIterable<Buffer>, stop: () => (out as unknown as Readable).destroy() };
  }
  const tool = toolPath(codec.argv![0]);
  if (!tool) throw new Error(`it is ${codec.name}-compressed and ${codec.argv![0]} is not on this node`);
  const child = spawn(tool, codec.argv!.slice(1), { stdio: ['pipe', 'pipe', 'ignore'] });
  pipeline(input, child.stdin, () => {});
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const bytes = (async function* () {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (code !== 0) throw new Error(`${codec.argv!.join(' ')} exited with ${code}`);
  })();
  return { bytes, stop: () => void (child.exitCode === null && child.kill()) };
}

/**
 * Reads an initramfs file (the fd is closed at the end), calling `onEntry` for every entry
 * with its data (consumed or not by the callback). Returns the compression of its main part
 * ("none" when it has none). Throws an Error saying what could not be read.
 */
export async function readInitramfs(fd: number, onEntry: (e: CpioEntry, data: AsyncGenerator<Buffer>) => Promise<void>): Promise<string> {
  const file = fs.createReadStream('', { fd, highWaterMark: 1 << 20 });
  let stop = () => {};
  try {
    const outer = new Bytes(file);
    if ((await readArchives(outer, onEntry)) === 'end') return 'none';
    const head = outer.peek(8);
    const codec = CODECS.find((c) => head.subarray(0, c.magic.length).equals(c.magic));
    if (!codec) throw new Error(`unknown data at byte ${outer.pos} (starts ${head.toString('hex')}): not cpio nor a compression it knows`);
    const d = decompress(codec, outer.rest());
    stop = d.stop;
    const inner = new Bytes(d.bytes);
    if ((await readArchives(inner, onEntry)) === 'other') throw new Error(`the ${codec.name} stream holds something other than cpio archives at byte ${inner.pos}`);
    return codec.name;
  } finally {
    stop();
    file.destroy();
  }
}

/** Kernel modules and firmware: no device reference there, and most of the bytes. */
const UNREAD = /(?:^|\/)lib\/firmware\/|\.ko(?:\.(?:xz|zst|gz))?$/;
/** Where an initramfs keeps its copy of a node file (initramfs-tools' conf.d, cryptsetup's crypttab). */
const copiesOf = (rel: string): string[] =>
  rel.startsWith('etc/initramfs-tools/conf.d/') ? [`conf/conf.d/${rel.slice('etc/initramfs-tools/conf.d/'.length)}`] : rel === 'etc/crypttab' ? ['cryptroot/crypttab', rel] : [rel];
/** The identifier a reference carries ("UUID=x" -> x), as other files may name it. */
const needleOf = (ref: string) => ref.replace(/^(?:UUID|PARTUUID)=["']?|^\/dev\/disk\/by-(?:uuid|partuuid)\//i, '').replace(/["']$/, '');

/**
 * Finds any of the references in a file's bytes pushed piece by piece (as written, lower and
 * upper case): the last pieces' tail (the longest needle less one byte) is searched again
 * with the next, so a reference split between two pieces is found.
 */
export class RefScanner {
  private readonly needles: Buffer[];
  private readonly overlap: number;
  private tail: Buffer = Buffer.alloc(0);
  constructor(refs: string[]) {
    this.needles = [...new Set(refs.map(needleOf).filter((n) => n.length >= 4).flatMap((n) => [n, n.toLowerCase(), n.toUpperCase()]))].map((n) => Buffer.from(n));
    this.overlap = Math.max(0, ...this.needles.map((n) => n.length)) - 1;
  }

  get empty(): boolean {
    return !this.needles.length;
  }

  /** Starts a new file. */
  reset(): void {
    this.tail = Buffer.alloc(0);
  }

  /** The reference found with this piece, or null. */
  push(piece: Buffer): string | null {
    const hay = this.tail.length ? Buffer.concat([this.tail, piece]) : piece;
    const hit = this.needles.find((n) => hay.includes(n));
    this.tail = Buffer.from(hay.subarray(Math.max(0, hay.length - this.overlap)));
    return hit ? hit.toString() : null;
  }
}

/** What one initramfs holds of the inputs: the reason to make it anew, or null. */
async function inspect(fd: number, inputs: InitramfsInputs, node: Map<string, Buffer | null>, build: BuildEvidence): Promise<{ why: string | null; compression: string; read: number }> {
  const scanner = new RefScanner(inputs.refs);
  const copies = new Map(inputs.files.flatMap((rel) => copiesOf(rel).map((c) => [c, rel] as const)));
  const tools = new Set<string>();
  let why: string | null = null;
  let read = 0;
  const compression = await readInitramfs(fd, async (e, data) => {
    const type = e.mode & S_IFMT;
    const wanted = build.see(e.name, e.size) && type === S_IFREG;
    if (why && !wanted) return;
    const base = e.name.slice(e.name.lastIndexOf('/') + 1);
    if ((type === S_IFREG || type === S_IFLNK) && (base === 'mdadm' || base === 'lvm')) tools.add(base);
    if (type !== S_IFREG || UNREAD.test(e.name)) return;
    read++;
    const copyOf = copies.get(e.name);
    const whole: Buffer[] = [];
    scanner.reset();
    for await (const piece of data) {
      if ((copyOf && e.size <= 1 << 20) || wanted) whole.push(Buffer.from(piece));
      if (why) continue;
      const hit = scanner.empty ? null : scanner.push(piece);
      if (hit) {
        why = `its ${e.name} holds ${hit}, a golden device reference the identity step replaced`;
        if (!wanted) return;
      }
    }
    if (wanted) build.content(e.name, Buffer.concat(whole));
    if (why) return;
    if (copyOf && !(node.get(copyOf)?.equals(Buffer.concat(whole)) ?? false)) why = `its ${e.name} is the golden's copy of /${copyOf}, which the identity step changed`;
  });
  if (!why) {
    const missing = inputs.layers.filter((l) => !tools.has(l === 'md' ? 'mdadm' : 'lvm'));
    if (missing.length) why = `the layout made ${missing.map((l) => (l === 'md' ? 'RAID arrays' : 'LVM volumes')).join(' and ')} and it has no ${missing.map((l) => (l === 'md' ? 'mdadm' : 'lvm')).join(' or ')} to assemble them`;
  }
  return { why, compression, read };
}

/** The initramfs files of an image's /boot (tree paths, regular files only). */
export function initramfsFiles(t: TargetFiles): string[] {
  return t
    .list('boot')
    .filter((n) => /^initrd\.img-.+|^initramfs-.+\.img$/.test(n) && !n.endsWith('.bak') && !n.endsWith('.old-dkms') && t.lstat(`boot/${n}`)?.isFile())
    .sort()
    .map((n) => `boot/${n}`);
}

/** Looks inside each initramfs of the mounted target (see the module comment). Never throws: what cannot be read means rebuild. */
export async function initramfsVerdict(target: string, inputs: InitramfsInputs): Promise<InitramfsVerdict> {
  const t = TargetFiles.open(target);
  try {
    const files = initramfsFiles(t);
    if (!files.length) return { rebuild: true, why: 'the image has no initramfs in /boot to look inside' };
    const node = new Map(inputs.files.map((rel) => [rel, t.readBytes(rel)] as const));
    const seen: string[] = [];
    for (const rel of files) {
      let r: Awaited<ReturnType<typeof inspect>>;
      const build = new BuildEvidence();
      try {
        r = await inspect(t.root.open(`/${rel}`, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK), inputs, node, build);
      } catch (err) {
        return { rebuild: true, why: `/${rel} could not be read (${(err as Error).message})` };
      }
      const hardware = madeForGoldenHardware(t, build);
      if (hardware) return { rebuild: true, why: hardware };
      if (r.why) return { rebuild: true, why: `/${rel}: ${r.why}` };
      seen.push(`/${rel} (${r.compression}, ${r.read} files read)`);
    }
    const what = [`${inputs.refs.length} replaced device reference${inputs.refs.length === 1 ? '' : 's'}`, ...inputs.files.map((f) => `an outdated copy of /${f}`)].join(', ');
    const has = inputs.layers.length ? `, and ${inputs.layers.map((l) => (l === 'md' ? 'mdadm' : 'lvm')).join(' and ')} for the layout's ${inputs.layers.map((l) => (l === 'md' ? 'RAID' : 'LVM')).join(' and ')}` : '';
    return { rebuild: false, why: `${seen.join(', ')}: none of ${what}${has}` };
  } finally {
    t.close();
  }
}
