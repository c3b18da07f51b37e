/**
 * Running a layout's plan: each step is one Debian tool's command line (sfdisk, partx,
 * mkfs, mdadm, lvm, mount), run in order; the first failure stops with the step named.
 * A step may wait for device nodes (new partitions, arrays, volumes): while it waits it
 * asks the kernel again each second (partx -u, then -a) and, when they never appear, the
 * error says what sysfs lists. formatPlan prints the same steps as a shell script (the
 * dry run).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LayoutError } from './model.ts';
import { run, settle } from './probe.ts';

export class LayoutApplyError extends LayoutError {
  override readonly code = 'LAYOUT_APPLY_FAILED';
}

export interface Step {
  what: string;
  argv: string[];
  input?: string;
  /** Paths that must exist before the next step (device nodes of new partitions). */
  waitFor?: string[];
  /** A failure is fine (partx -a on partitions the kernel already has); waitFor still holds, and the step runs again while it waits. */
  mayFail?: boolean;
}

const quote = (arg: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);

/** The plan as the shell commands it runs (a dry run prints this). */
export function formatPlan(plan: { notes: string[]; steps: Step[] }): string {
  const out: string[] = plan.notes.map((n) => `# scaled: ${n}`);
  for (const step of plan.steps) {
    out.push(`# ${step.what}`);
    const cmd = step.argv.map(quote).join(' ');
    out.push(step.input !== undefined ? `${cmd} <<'EOF'\n${step.input}EOF` : cmd);
  }
  return `${out.join('\n')}\n`;
}

/** What the kernel lists for each missing node (sysfs), for the error when they never appear. */
function kernelView(paths: string[]): string {
  return paths
    .filter((p) => !existsSync(p))
    .map((p) => {
      const name = path.basename(p);
      const dev = `/sys/class/block/${name}/dev`;
      return `${p} (${existsSync(dev) ? `the kernel has it as ${readFileSync(dev, 'utf8').trim()}, but no device node` : 'the kernel does not list it'})`;
    })
    .join(', ');
}

async function waitForPaths(paths: string[], again?: string[], timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let nextTry = Date.now() + 1000;
  await settle();
  while (paths.some((p) => !existsSync(p))) {
    // The kernel may miss an add (a busy loop device, a re-read racing ours, several disks
    // partitioned at once): ask again each second, an update (-u) and then an add (-a).
    if (again && Date.now() > nextTry) {
      if (again[0] === 'partx') await run(['partx', '-u', again[again.length - 1]]).catch(() => {});
      await run(again).catch(() => {});
      await settle();
      nextTry = Date.now() + 1000;
    }
    if (Date.now() > until) throw new LayoutApplyError(`device nodes did not appear: ${kernelView(paths)}`, 'check that the kernel sees the new partitions (partx -u) and that udev runs');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs the steps in order; the first failure stops with the step named. */
export async function runSteps(steps: Step[], log: (line: string) => void = () => {}): Promise<void> {
  for (const [i, step] of steps.entries()) {
    log(`[${i + 1}/${steps.length}] ${step.what}: ${step.argv.map(quote).join(' ')}`);
    try {
      await run(step.argv, step.input).catch((err) => {
        if (!step.mayFail) throw err;
      });
      if (step.waitFor) await waitForPaths(step.waitFor, step.mayFail ? step.argv : undefined);
    } catch (err) {
      if (err instanceof LayoutApplyError) throw err;
      throw new LayoutApplyError(`step ${i + 1}/${steps.length} (${step.what}) failed: ${(err as Error).message}`, 'the disks are partly set up; fix the cause and apply the layout again (it starts from scratch)');
    }
  }
}

