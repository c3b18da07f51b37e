/** Whether a program is on PATH (an executable file in one of its directories), without a shell. */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export function haveTool(tool: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    const file = path.join(dir, tool);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return true;
    } catch {
      // not here
    }
  }
  return false;
}
