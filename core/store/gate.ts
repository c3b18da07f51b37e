/**
 * A shared/exclusive gate for one process: many shared holders at once (puts, lookups,
 * revision commits), or one exclusive holder (the GC sweep), never both. New shared
 * holders wait while an exclusive holder waits or runs, so the sweep cannot starve.
 */
export class SharedExclusiveGate {
  private sharedCount = 0;
  private exclusive: Promise<void> | null = null;
  private drained: (() => void) | null = null;

  async shared<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    this.sharedCount++;
    try {
      return await work();
    } finally {
      this.sharedCount--;
      if (this.sharedCount === 0 && this.drained) this.drained();
    }
  }

  async exclusively<T>(work: () => Promise<T>): Promise<T> {
    while (this.exclusive) await this.exclusive;
    let release!: () => void;
    this.exclusive = new Promise<void>((resolve) => (release = resolve));
    try {
      if (this.sharedCount > 0) {
        await new Promise<void>((resolve) => (this.drained = resolve));
        this.drained = null;
      }
      return await work();
    } finally {
      this.exclusive = null;
      release();
    }
  }
}

/** Runs tasks one after another in call order (a promise-chained mutex). */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    this.tail = result.catch(() => undefined);
    return result;
  }
}
