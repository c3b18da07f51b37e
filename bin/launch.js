// `node bin/PROG.js`: runs a program's TypeScript entry point on Node 24 whatever `node` is
// first on PATH (the installed commands are the shell launchers bin/cloner, bin/cloner-server
// and bin/cloner-agent, which exec Node 24 directly). On Node 24 the entry is imported in this
// process. An older Node cannot strip types: where it has process.execve (22.15+) this
// process becomes the project's Node 24; otherwise Node 24 runs as a child, every signal that
// can be caught is passed on to it, and this process ends as the child did (same exit code,
// or killed by the same signal), so killing this PID stops the program.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FORWARDED = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGWINCH', 'SIGCONT', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU'];

export async function launch(entry) {
  const script = fileURLToPath(new URL(entry, import.meta.url));
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) {
    await import(script);
    return;
  }
  const node24 = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(node24)) {
    process.stderr.write(`cloner: error: needs Node 24, found ${process.version}\nhint: run scripts/setup.sh in ${fileURLToPath(new URL('..', import.meta.url))}\n`);
    process.exit(2);
  }
  const argv = [node24, script, ...process.argv.slice(2)];
  if (typeof process.execve === 'function') process.execve(node24, argv, process.env);
  const child = spawn(node24, argv.slice(1), { stdio: 'inherit' });
  for (const signal of FORWARDED) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`cloner: error: cannot start ${node24}: ${err.message}\nhint: run scripts/setup.sh again\n`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    if (signal) {
      for (const s of FORWARDED) process.removeAllListeners(s);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}
