/** Programs on PATH (an executable file in one of its directories), found without a shell. */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

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
