/**
 * Request collapsing: concurrent misses for one cache key elect one writer
 * that fetches from the origin while the others wait for its outcome.
 *
 * Invariants: at most one writer holds a key at a time; every waiter's
 * promise settles, either when the writer releases, when the writer's time
 * limit passes (the lock is then dropped and a late release is ignored), or
 * when the waiter's own time limit passes.
 */

/** How a writer's fetch ended, as its waiters see it. */
export type LockOutcome =
  /** The response is in the cache; waiters look it up again. */
  | "stored"
  /** The origin answered but the response was not cacheable; waiters fetch on their own. */
  | "not-stored"
  /** The response is being written to the disk tier as it arrives; waiters read it as it grows. */
  | "streaming"
  /** The writer failed before it had a response. */
  | "failed"
  /**
   * The origin failed and the writer served a stale copy, which stays in use
   * for the error caching TTL; waiters serve it too.
   */
  | "served-stale"
  /** The origin confirmed the stale copy with 304; the refreshed entry is in the cache. */
  | "revalidated"
  /** The origin gave no response, and the edge's 502 or 504 for it is in the cache. */
  | "stored-failure"
  /** The writer or the waiter ran out of time. */
  | "timed-out";

export type LockTicket =
  | { role: "writer"; release(outcome: LockOutcome): void }
  | { role: "waiter"; wait(): Promise<LockOutcome> };

interface HeldLock {
  waiters: Set<(outcome: LockOutcome) => void>;
  writerTimer: NodeJS.Timeout;
}

export interface CacheLockOptions {
  /** How long a writer may hold a key before its waiters are let go. */
  writerTimeoutMs: number;
  /** How long one waiter waits before it gives up and fetches on its own. */
  waiterTimeoutMs: number;
}

export class CacheLock {
  private readonly held = new Map<string, HeldLock>();

  constructor(private readonly options: CacheLockOptions) {}

  /** The number of keys currently held by a writer. */
  get heldCount(): number {
    return this.held.size;
  }

  /** Returns whether requests are waiting for the writer of `key`. */
  hasWaiters(key: string): boolean {
    return (this.held.get(key)?.waiters.size ?? 0) > 0;
  }

  /** Becomes the writer for `key`, or a waiter when another request already is. */
  acquire(key: string): LockTicket {
    const current = this.held.get(key);
    if (current !== undefined) return { role: "waiter", wait: () => this.wait(current) };

    const lock: HeldLock = {
      waiters: new Set(),
      writerTimer: setTimeout(() => this.settle(key, lock, "timed-out"), this.options.writerTimeoutMs),
    };
    lock.writerTimer.unref();
    this.held.set(key, lock);
    return { role: "writer", release: (outcome) => this.settle(key, lock, outcome) };
  }

  private wait(lock: HeldLock): Promise<LockOutcome> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        lock.waiters.delete(wake);
        resolve("timed-out");
      }, this.options.waiterTimeoutMs);
      timer.unref();
      const wake = (outcome: LockOutcome): void => {
        clearTimeout(timer);
        resolve(outcome);
      };
      lock.waiters.add(wake);
    });
  }

  private settle(key: string, lock: HeldLock, outcome: LockOutcome): void {
    // A writer that releases after its time limit finds another lock, or none, here.
    if (this.held.get(key) !== lock) return;
    this.held.delete(key);
    clearTimeout(lock.writerTimer);
    for (const wake of lock.waiters) wake(outcome);
    lock.waiters.clear();
  }
}
