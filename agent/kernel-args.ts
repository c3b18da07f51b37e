/**
 * What the netboot endpoint hands the installer on the kernel command line
 * (`cloner.server=URL cloner.node=NAME cloner.token=T cloner.mode=unicast`): the
 * `cloner.`-prefixed key=value words of /proc/cmdline.
 */
export function kernelArgs(cmdline: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of cmdline.trim().split(/\s+/)) {
    const m = /^cloner\.([a-z]+)=(.*)$/.exec(word);
    if (m) out[m[1]] = m[2];
  }
  return out;
}
