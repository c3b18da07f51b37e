/**
 * SELinux labels of what the identity step wrote (issue 20, case 22). The agent runs in a
 * boot environment without SELinux, so a new file has no label (unlabeled_t on the node:
 * under enforcing sshd cannot read its host keys, NetworkManager its profiles). Each file
 * written takes the label of the file it replaces (identity/files.ts); for the others:
 *   - a label from a sibling of the same kind (another SSH host key, another profile, another
 *     .link file) or else from the image's policy is not guessed here: when the image has
 *     setfiles, the agent labels them after this step with the image's own policy
 *     (`labelWithPolicy`, in the target's chroot);
 *   - otherwise /.autorelabel is created (the node relabels at its first boot) and the
 *     deploy says so.
 */
import type { TargetFiles } from './files.ts';

/** The image's SELinux mode and policy type, or null when it does not use SELinux. */
export function selinuxOf(t: TargetFiles): { mode: string; type: string } | null {
  const text = t.read('etc/selinux/config');
  if (text === null) return null;
  const mode = /^\s*SELINUX\s*=\s*(\w+)/m.exec(text)?.[1] ?? 'disabled';
  if (mode === 'disabled') return null;
  return { mode, type: /^\s*SELINUXTYPE\s*=\s*(\S+)/m.exec(text)?.[1] ?? 'targeted' };
}

/** The file_contexts of the image's policy, when the image can label with setfiles. */
export function policyLabeler(t: TargetFiles): { setfiles: string; fileContexts: string } | null {
  const se = selinuxOf(t);
  if (!se) return null;
  const setfiles = ['usr/sbin/setfiles', 'sbin/setfiles'].find((p) => t.exists(p));
  const fileContexts = `etc/selinux/${se.type}/contexts/files/file_contexts`;
  return setfiles && t.exists(fileContexts) ? { setfiles: `/${setfiles}`, fileContexts: `/${fileContexts}` } : null;
}

/**
 * After the identity files are written: files left without a label are listed for
 * setfiles (returned), or, when the image cannot label them, /.autorelabel is created.
 */
export function labelWritten(t: TargetFiles): string[] {
  const se = selinuxOf(t);
  if (!se) return [];
  const unlabeled = [...new Set(t.unlabeled)].filter((f) => t.exists(f.slice(1)));
  if (!unlabeled.length) return [];
  if (policyLabeler(t)) return unlabeled;
  t.write('.autorelabel', '', 0o644, `SELinux (${se.mode}): ${unlabeled.length} files written without a label; the node relabels at its first boot`);
  t.warn(`SELinux is ${se.mode} in the image and it has no setfiles: ${unlabeled.length} identity files have no label (${unlabeled.slice(0, 5).join(', ')}${unlabeled.length > 5 ? ', ...' : ''}); /.autorelabel makes the node relabel at its first boot (one extra reboot)`);
  return [];
}
