/**
 * Miss ratio of SIEVE (the memory and disk tiers' eviction) against LRU on
 * a CDN-like trace: Zipf popularity over a fixed catalogue, mixed with
 * one-hit wonders (keys requested once and never again). Every object
 * counts as one unit, so the numbers compare policies, not sizes.
 *
 * Usage: npx tsx bench/cache/eviction.ts [requests] [catalogue] [zipfAlpha] [oneHitShare]
 */
import { SieveCache } from "../../src/cache/sieve.js";

const requests = Number(process.argv[2] ?? 2_000_000);
const catalogue = Number(process.argv[3] ?? 100_000);
const alpha = Number(process.argv[4] ?? 0.9);
const oneHitShare = Number(process.argv[5] ?? 0.25);

/** A small seeded generator (mulberry32), so every run sees the same trace. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

function buildTrace(): string[] {
  const random = mulberry32(42);
  const cdf = new Float64Array(catalogue);
  let sum = 0;
  for (let rank = 1; rank <= catalogue; rank++) {
    sum += 1 / rank ** alpha;
    cdf[rank - 1] = sum;
  }
  const trace: string[] = new Array<string>(requests);
  let unique = 0;
  for (let i = 0; i < requests; i++) {
    if (random() < oneHitShare) {
      trace[i] = `once-${unique++}`;
      continue;
    }
    const target = random() * sum;
    let low = 0;
    let high = catalogue - 1;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (cdf[middle]! < target) low = middle + 1;
      else high = middle;
    }
    trace[i] = `obj-${low}`;
  }
  return trace;
}

/** A plain LRU on Map insertion order: a hit moves the key to the newest end. */
class LruCache {
  private readonly entries = new Map<string, true>();
  constructor(private readonly capacity: number) {}

  access(key: string): boolean {
    if (this.entries.delete(key)) {
      this.entries.set(key, true);
      return true;
    }
    this.entries.set(key, true);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
    return false;
  }
}

function missRatio(trace: readonly string[], access: (key: string) => boolean): number {
  let misses = 0;
  for (const key of trace) if (!access(key)) misses++;
  return misses / trace.length;
}

const trace = buildTrace();
const distinct = new Set(trace).size;
console.log(
  `trace: ${requests} requests, ${catalogue} catalogue objects, Zipf alpha ${alpha}, one-hit share ${oneHitShare}, ${distinct} distinct keys`,
);
console.log("| cache size (objects) | share of distinct keys | LRU miss ratio | SIEVE miss ratio | SIEVE / LRU |");
console.log("| ---: | ---: | ---: | ---: | ---: |");
for (const share of [0.001, 0.005, 0.01, 0.05, 0.1]) {
  const capacity = Math.max(1, Math.round(distinct * share));
  const lru = new LruCache(capacity);
  const lruRatio = missRatio(trace, (key) => lru.access(key));
  const sieve = new SieveCache<true>(capacity);
  const sieveRatio = missRatio(trace, (key) => {
    if (sieve.get(key) !== undefined) return true;
    sieve.set(key, true, 1);
    return false;
  });
  console.log(
    `| ${capacity} | ${(share * 100).toFixed(1)}% | ${lruRatio.toFixed(4)} | ${sieveRatio.toFixed(4)} | ${(sieveRatio / lruRatio).toFixed(3)} |`,
  );
}
