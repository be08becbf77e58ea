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

  constructor(capacityBytes: number) {
    this.entries = new SieveCache<CachedResponse>(capacityBytes, (key, entry) =>
      this.forget(entry.distributionId, key),
    );
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

  /** Stores an entry, replacing any with the same key; returns false when it exceeds the whole budget. */
  put(entry: CachedResponse): boolean {
    const previous = this.entries.peek(entry.key);
    if (previous !== undefined) this.delete(previous.key);
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
