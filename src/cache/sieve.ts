/**
 * SIEVE eviction (Zhang et al., "SIEVE is Simpler than LRU", NSDI 2024) over a
 * byte budget. Entries sit in one queue in insertion order. A hit only sets
 * the entry's visited bit, so lookups never move nodes. To make room, a hand
 * walks from the oldest entry towards the newest: it clears visited bits as
 * it passes and evicts the first entry whose bit is already clear. The hand
 * keeps its place between evictions.
 */

interface SieveNode<V> {
  key: string;
  value: V;
  sizeBytes: number;
  visited: boolean;
  /** Neighbour inserted after this node, towards the head. */
  newer: SieveNode<V> | undefined;
  /** Neighbour inserted before this node, towards the tail. */
  older: SieveNode<V> | undefined;
}

export class SieveCache<V> {
  private readonly nodes = new Map<string, SieveNode<V>>();
  private head: SieveNode<V> | undefined;
  private tail: SieveNode<V> | undefined;
  private hand: SieveNode<V> | undefined;
  private usedBytesTotal = 0;
  /** Bytes held outside the cache that still count against its budget. */
  private outsideBytesTotal = 0;

  /**
   * @param capacityBytes the budget that the sum of entry sizes never exceeds
   * @param onEvict called for each entry removed to make room
   */
  constructor(
    readonly capacityBytes: number,
    private readonly onEvict: (key: string, value: V) => void = () => {},
  ) {}

  get usedBytes(): number {
    return this.usedBytesTotal;
  }

  get outsideBytes(): number {
    return this.outsideBytesTotal;
  }

  /**
   * Counts `bytes` held outside the cache against its budget, as a removed
   * value still in use is. The next insertions evict more to make up for them.
   */
  addOutside(bytes: number): void {
    this.outsideBytesTotal += bytes;
  }

  removeOutside(bytes: number): void {
    this.outsideBytesTotal = Math.max(0, this.outsideBytesTotal - bytes);
  }

  /**
   * Counts `bytes` that are not stored yet, such as a write in progress,
   * against the budget at once, evicting entries until they fit. Returns
   * false, and counts nothing, when the other bytes held outside leave no
   * room for them. `removeOutside` gives them back.
   */
  reserve(bytes: number): boolean {
    if (bytes + this.outsideBytesTotal > this.capacityBytes) return false;
    while (this.usedBytesTotal + this.outsideBytesTotal + bytes > this.capacityBytes && this.nodes.size > 0) {
      this.evictOne();
    }
    this.outsideBytesTotal += bytes;
    return true;
  }

  get size(): number {
    return this.nodes.size;
  }

  /** Returns the value and marks it visited, so the next sweep of the hand spares it. */
  get(key: string): V | undefined {
    const node = this.nodes.get(key);
    if (node === undefined) return undefined;
    node.visited = true;
    return node.value;
  }

  /** Returns the value without marking it visited. */
  peek(key: string): V | undefined {
    return this.nodes.get(key)?.value;
  }

  /**
   * Inserts or replaces an entry, evicting others until it fits. Returns false,
   * and stores nothing, when the entry alone is larger than the budget, or
   * than what the bytes held outside leave of it.
   */
  set(key: string, value: V, sizeBytes: number): boolean {
    if (sizeBytes + this.outsideBytesTotal > this.capacityBytes) return false;
    const existing = this.nodes.get(key);
    if (existing !== undefined) this.unlink(existing);

    while (this.usedBytesTotal + this.outsideBytesTotal + sizeBytes > this.capacityBytes) {
      if (this.nodes.size === 0) return false;
      this.evictOne();
    }

    const node: SieveNode<V> = { key, value, sizeBytes, visited: false, newer: undefined, older: this.head };
    if (this.head !== undefined) this.head.newer = node;
    this.head = node;
    if (this.tail === undefined) this.tail = node;
    this.nodes.set(key, node);
    this.usedBytesTotal += sizeBytes;
    return true;
  }

  /** Removes an entry; returns whether it was present. `onEvict` is not called. */
  delete(key: string): boolean {
    const node = this.nodes.get(key);
    if (node === undefined) return false;
    this.unlink(node);
    return true;
  }

  keys(): IterableIterator<string> {
    return this.nodes.keys();
  }

  private evictOne(): void {
    let candidate = this.hand ?? this.tail;
    // The loop ends: each step either evicts or clears a bit, and a full
    // lap clears every bit.
    while (candidate !== undefined && candidate.visited) {
      candidate.visited = false;
      candidate = candidate.newer ?? this.tail;
    }
    if (candidate === undefined) throw new Error("SIEVE eviction found no entry while over budget");
    this.hand = candidate.newer;
    this.unlink(candidate);
    this.onEvict(candidate.key, candidate.value);
  }

  private unlink(node: SieveNode<V>): void {
    if (this.hand === node) this.hand = node.newer;
    if (node.newer !== undefined) node.newer.older = node.older;
    else this.head = node.older;
    if (node.older !== undefined) node.older.newer = node.newer;
    else this.tail = node.newer;
    node.newer = undefined;
    node.older = undefined;
    this.nodes.delete(node.key);
    this.usedBytesTotal -= node.sizeBytes;
  }
}
