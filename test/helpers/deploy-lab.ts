/**
 * What the namespace deploy tests (unicast and multicast) share about a node's disk: the
 * two-filesystem layout they deploy (GPT: ext4 / and xfs /srv), the paths the agent makes
 * node-specific (left out when a node's tree is compared with the golden one), a helper
 * that mounts a deployed disk's two filesystems to check them, and a placeholder installer.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { sh } from './loop.ts';

export const TWO_FS_LAYOUT = {
  format: 'cloner-layout/1',
  disks: [{ id: 'sys', table: 'gpt', partitions: [{ id: 'root', size: '700M', type: 'linux', name: 'root' }, { id: 'srv', size: 'grow', type: 'linux', name: 'srv', minSize: '300M' }] }],
  filesystems: [
    { device: 'root', type: 'ext4', mount: '/', label: 'root' },
    { device: 'srv', type: 'xfs', mount: '/srv', label: 'srv' },
  ],
};

/** What the agent makes node-specific; the rest of the tree must equal the golden one. */
export const IDENTITY_PATHS = ['/etc/hostname', '/etc/hosts', '/etc/machine-id', '/etc/fstab', '/etc/network/', '/etc/ssh/ssh_host_*', '/etc/systemd/network/', '/var/lib/cloner/', '/var/lib/systemd/random-seed', '/lost+found/', '/srv/lost+found/'];

/** rsync flags for comparing a node's tree with the golden one (directory times change where identity files were written). */
export const IDENTITY_EXCLUDES = ['--omit-dir-times', ...IDENTITY_PATHS.flatMap((p) => ['--exclude', p])];

/** Mounts DISKp1 at `root` and DISKp2 at root/srv for `work`, unmounting both whatever happens. */
export async function withTwoFsMounted<T>(disk: string, root: string, work: (root: string) => Promise<T>): Promise<T> {
  await mkdir(root, { recursive: true });
  sh(['mount', `${disk}p1`, root]);
  try {
    sh(['mount', `${disk}p2`, path.join(root, 'srv')]);
    try {
      return await work(root);
    } finally {
      sh(['umount', path.join(root, 'srv')]);
    }
  } finally {
    sh(['umount', root]);
  }
}

/**
 * An installer in a server's data directory, as make-installer leaves one (its files are
 * placeholders: the tests run the agent themselves): /boot.ipxe hands out deploy tokens
 * only when the server has an installer to boot.
 */
export async function putPlaceholderInstaller(dataDir: string, version = '6.1.0-50-amd64'): Promise<void> {
  const dir = path.join(dataDir, 'boot', version);
  await mkdir(dir, { recursive: true });
  for (const f of ['vmlinuz', 'initrd.img']) await writeFile(path.join(dir, f), f);
  await writeFile(path.join(dir, 'installer.json'), JSON.stringify({ version, created: new Date().toISOString(), bytes: { vmlinuz: 7, 'initrd.img': 10 } }));
}
