/**
 * The Debian tools Cloner drives (sfdisk, mdadm, lvm, mkfs, efibootmgr, ssh-keygen, reboot
 * ...): found on PATH without a shell (`toolPath`, `haveTool`) and run with an argv, never
 * a shell line (`run`, LC_ALL=C so their output parses the same everywhere). A tool that
 * exits non-zero becomes a ToolFailedError carrying the last lines of its own message.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import { ClonerError } from './errors.ts';

/** The full path of a program on PATH, or null. */
export function toolPath(tool: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const file = path.join(dir, tool);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return null;
}

export function haveTool(tool: string): boolean {
  return toolPath(tool) !== null;
}

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** A tool Cloner ran failed (or is not installed: the hint says which package to add). */
export class ToolFailedError extends ClonerError {
  override readonly code = 'TOOL_FAILED';
  /** A device or program behind the request failed, not the request. */
  override readonly status = 500;
}

/**
 * Runs a tool (argv[0] on PATH, no shell; `input` goes to its stdin) and returns its
 * output (64 MiB at most); a non-zero exit or a missing tool throws ToolFailedError.
 */
export function run(argv: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(argv[0], argv.slice(1), { maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C', LVM_SUPPRESS_FD_WARNINGS: '1' } }, (err, stdout, stderr) => {
      if (err) {
        const why = (stderr || stdout || err.message).trim().split('\n').slice(-3).join(' | ');
        reject(new ToolFailedError(`${argv.join(' ')} failed: ${why}`, (err as NodeJS.ErrnoException).code === 'ENOENT' ? `install ${argv[0]}` : 'see the tool\'s message above', { cause: err }));
      } else resolve({ stdout, stderr });
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}
