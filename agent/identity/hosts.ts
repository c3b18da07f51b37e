/**
 * /etc/hosts of a node: the golden node's name tokens replaced, every other line kept.
 *
 * On loopback lines (127.0.0.0/8, ::1: RHEL installers and Vagrant put the host name there)
 * the golden's names become the node's, localhost and the rest of the line stay. Debian's
 * "this host" line (127.0.1.1) gets the node's address when the registry gives one. A line
 * with another address that names the golden (its entry in the cluster's host list) stays as
 * it is: golden01 is still golden01 for the node. When no line names the node after that, one
 * is added (its address, else 127.0.1.1). A golden FQDN becomes the node's FQDN (the node's
 * hostname when it has dots, else its name in the golden's domain).
 */

const isLoopback = (addr: string) => /^127\./.test(addr) || addr === '::1';

/** The node's names for the golden's: FQDN for FQDN, short for short. */
function renamer(goldenName: string | null, hostname: string): (token: string) => string {
  const short = hostname.split('.')[0];
  if (!goldenName) return (t) => t;
  const gShort = goldenName.split('.')[0];
  const gDomain = goldenName.includes('.') ? goldenName.slice(gShort.length + 1) : null;
  return (t) => {
    if (t === gShort) return short;
    if (t === goldenName || (t.startsWith(`${gShort}.`) && t.length > gShort.length + 1)) {
      if (hostname.includes('.')) return hostname;
      const domain = t.slice(gShort.length + 1) || gDomain;
      return domain ? `${short}.${domain}` : short;
    }
    return t;
  };
}

/** /etc/hosts with the golden's name tokens replaced on this host's lines, and a line for the node when none names it. */
export function hostsFile(previous: string | null, goldenName: string | null, hostname: string, address: string | null): string {
  const short = hostname.split('.')[0];
  const rename = renamer(goldenName, hostname);
  const lines = (previous ?? '127.0.0.1\tlocalhost\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  let named = false;
  const out = lines.map((line) => {
    const m = /^(\s*)(\S+)(\s+)([^#]*?)(\s*(#.*)?)$/.exec(line);
    if (!m || m[2].startsWith('#')) return line;
    const [, lead, addr, gap, names, tail] = m;
    const tokens = names.split(/\s+/).filter(Boolean);
    if (!isLoopback(addr)) {
      if (tokens.includes(short) || tokens.includes(hostname)) named = true;
      return line;
    }
    const renamed = tokens.map(rename);
    if (renamed.some((t, i) => t !== tokens[i])) {
      const unique = renamed.filter((t, i) => renamed.indexOf(t) === i);
      named = true;
      // Debian's line for this host: the node's own address when it has one.
      const onlyHost = unique.every((t) => t === short || t.startsWith(`${short}.`));
      const newAddr = addr === '127.0.1.1' && onlyHost && address ? address : addr;
      const sep = newAddr === addr ? gap : '\t';
      // The host's own line names it as hosts(5) wants: canonical (FQDN) name first, then the short one.
      const names = addr === '127.0.1.1' && onlyHost && hostname !== short ? [hostname, short] : unique;
      return `${lead}${newAddr}${sep}${names.join(' ')}${tail}`;
    }
    if (tokens.includes(short) || tokens.includes(hostname)) named = true;
    return line;
  });
  while (out.length && !out.at(-1)!.trim()) out.pop();
  if (!named) out.push(`${address ?? '127.0.1.1'}\t${hostname === short ? short : `${hostname} ${short}`}`);
  return `${out.join('\n')}\n`;
}
