import type { CachedResponse } from "./entry.js";
import { SieveCache } from "./sieve.js";

/**
 * The memory tier: cached responses bounded by a byte budget, evicted with
 * SIEVE, indexed by distribution so that invalidations and deletions only
 * scan the keys of one distribution.
 */
export class MemoryTier {
  private readonly entries: SieveCache<CachedResponse>;
  private readonly keysByDistribution = new Map<string, Set<string>>();

  /**
   * `placeBody` may return a stored body moved to other memory of the same
   * bytes, such as memory the edge can send without a copy.
   */
  constructor(
    capacityBytes: number,
    private readonly placeBody: (body: Buffer) => Buffer = (body) => body,
  ) {
    this.entries = new SieveCache<CachedResponse>(capacityBytes, (key, entry) => {
      this.forget(entry.distributionId, key);
      this.removedWhileHeld(entry);
    });
  }

  /** Bytes of removed entries whose bodies responses still send; they count against the budget. */
  get heldOutsideBytes(): number {
    return this.entries.outsideBytes;
  }

  /**
   * Marks `entry`'s body as in use by one more response. A body stays in
   * memory while a viewer reads it, also once the entry is evicted or purged,
   * so the bytes of such a removed entry keep counting against the budget
   * until the last response calls `release`.
   */
  hold(entry: CachedResponse): void {
    entry.readers = (entry.readers ?? 0) + 1;
  }

  release(entry: CachedResponse): void {
    const readers = (entry.readers ?? 1) - 1;
    entry.readers = readers;
    if (readers > 0 || entry.heldOutside !== true) return;
    entry.heldOutside = false;
    this.entries.removeOutside(entry.sizeBytes);
  }

  private removedWhileHeld(entry: CachedResponse): void {
    if ((entry.readers ?? 0) === 0 || entry.heldOutside === true) return;
    entry.heldOutside = true;
    this.entries.addOutside(entry.sizeBytes);
  }

  get usedBytes(): number {
    return this.entries.usedBytes;
  }

  get capacityBytes(): number {
    return this.entries.capacityBytes;
  }

  get entryCount(): number {
    return this.entries.size;
  }

  /** Returns the entry for `key` and counts the lookup as a use for eviction. */
  get(key: string): CachedResponse | undefined {
    return this.entries.get(key);
  }

  /** Returns the entry for `key` without counting a use. */
  peek(key: string): CachedResponse | undefined {
    return this.entries.peek(key);
  }

  /**
   * Stores an entry, replacing any with the same key. Returns false when it
   * does not fit the budget, where the bodies of removed entries that
   * responses still send count as used.
   */
  put(entry: CachedResponse): boolean {
    entry.body = this.placeBody(entry.body);
    const previous = this.entries.peek(entry.key);
    if (previous !== undefined) this.delete(previous.key);
    if (entry.heldOutside === true) {
      // A removed entry stored again counts inside the cache, not twice.
      entry.heldOutside = false;
      this.entries.removeOutside(entry.sizeBytes);
    }
    if (!this.entries.set(entry.key, entry, entry.sizeBytes)) return false;

    let keys = this.keysByDistribution.get(entry.distributionId);
    if (keys === undefined) {
      keys = new Set();
      this.keysByDistribution.set(entry.distributionId, keys);
    }
    keys.add(entry.key);
    return true;
  }

  delete(key: string): void {
    const entry = this.entries.peek(key);
    if (entry === undefined) return;
    this.entries.delete(key);
    this.forget(entry.distributionId, key);
    this.removedWhileHeld(entry);
  }

  /** Removes every entry of a distribution with a matching invalidation path; returns how many went. */
  purge(distributionId: string, matches: (invalidationPath: string) => boolean): number {
    const keys = this.keysByDistribution.get(distributionId);
    if (keys === undefined) return 0;
    let purged = 0;
    for (const key of [...keys]) {
      const entry = this.entries.peek(key);
      if (entry !== undefined && entry.invalidationPaths.some(matches)) {
        this.delete(key);
        purged++;
      }
    }
    return purged;
  }

  /** Removes every entry of a distribution. */
  purgeDistribution(distributionId: string): number {
    return this.purge(distributionId, () => true);
  }

  private forget(distributionId: string, key: string): void {
    const keys = this.keysByDistribution.get(distributionId);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) this.keysByDistribution.delete(distributionId);
  }
}
