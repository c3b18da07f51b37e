/**
 * The server's data directory holds the tokens and the store (image data, BMC passwords,
 * SSH host private keys), so nobody but its owner may read or enter it. At start a
 * directory open to group or others (e.g. an existing /var/lib/cloner made 0755 by hand)
 * is set to 0700, and token files to 0600; each change is returned as a warning line for
 * the log. The process umask becomes 077, so every file the server makes later (LevelDB
 * tables and logs, packs, tokens) is 0600 and every directory 0700 whatever the umask it
 * was started with; the store also puts its existing files right at open
 * (core/store/store-dir.ts restrictModes).
 */
import { chmod, stat } from 'node:fs/promises';
import path from 'node:path';

/** Sets the umask to 077 and puts DIR (0700) and its token files (0600) right; one warning per mode changed. */
export async function secureDataDir(dataDir: string): Promise<string[]> {
  process.umask(0o077);
  const warnings: string[] = [];
  const fix = async (file: string, mode: number) => {
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    const was = st.mode & 0o7777;
    if ((was & 0o077) === 0) return;
    await chmod(file, mode);
    warnings.push(`${file} was mode ${was.toString(8).padStart(4, '0')} (open to other users); set to ${mode.toString(8).padStart(4, '0')}`);
  };
  await fix(dataDir, 0o700);
  for (const token of ['admin.token', 'read.token']) await fix(path.join(dataDir, token), 0o600);
  return warnings;
}
