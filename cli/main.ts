/**
 * The `cloner` command: parses and runs the definitions of cli/program.ts (one cac
 * instance, one file per sub-command under commands/). Only this file decides exit codes
 * (see errors.ts).
 */
import { reportAndExit, UsageError } from './errors.ts';
import { clonerCli } from './program.ts';

// A reader that goes away (cloner config | head) ends the output, not the program with a stack.
for (const stream of [process.stdout, process.stderr]) stream.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : reportAndExit(err)));

const cli = clonerCli();

try {
  cli.parse(process.argv, { run: false });
  if (!cli.matchedCommand && !cli.options.help && !cli.options.version) {
    if (cli.args.length) throw new UsageError(`unknown command ${cli.args[0]}`, 'run cloner --help for the list of commands');
    const flag = Object.keys(cli.options).find((k) => k !== '--');
    if (flag) throw new UsageError(`unknown flag --${flag.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, 'run cloner --help for the list of commands');
    cli.outputHelp();
    process.exit(0);
  }
  await cli.runMatchedCommand();
} catch (err) {
  reportAndExit(err);
}
