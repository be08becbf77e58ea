import assert from "node:assert/strict";
import { test } from "node:test";
import { decideFreshness, type TtlSettings } from "../../src/cache/freshness.js";
import { canonicalizePath, compileInvalidationPaths } from "../../src/cache/invalidation.js";
import { CacheLock } from "../../src/cache/lock.js";
import type { CachedResponse } from "../../src/cache/entry.js";
import { MemoryTier } from "../../src/cache/memory.js";
import { SieveCache } from "../../src/cache/sieve.js";
import { compilePathPattern } from "../../src/edge/routing.js";
import { resolveRange } from "../../src/edge/range.js";

test("SIEVE keeps visited entries and evicts unvisited", () => {
  const evicted: string[] = [];
  const cache = new SieveCache<number>(300, (key) => evicted.push(key));
  cache.set("a", 1, 100);
  cache.set("b", 2, 100);
  cache.set("c", 3, 100);
  cache.get("a");
  cache.set("d", 4, 100);
  assert.deepEqual(evicted, ["b"]);
  assert.equal(cache.peek("a"), 1);
  assert.equal(cache.usedBytes, 300);
  assert.equal(cache.set("huge", 5, 301), false);
});

test("SIEVE stays within budget on generated inputs", () => {
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const capacity = 10_000;
  const sizes = new Map<string, number>();
  const cache = new SieveCache<string>(capacity, (key) => sizes.delete(key));
  for (let i = 0; i < 20_000; i++) {
    const key = `k${Math.floor(random() * 500)}`;
    if (random() < 0.6 && cache.get(key) !== undefined) continue;
    const size = 1 + Math.floor(random() * 900);
    if (cache.set(key, key, size)) sizes.set(key, size);
    let total = 0;
    for (const value of sizes.values()) total += value;
    assert.equal(cache.usedBytes, total);
    assert.ok(cache.usedBytes <= capacity);
    assert.equal(cache.size, sizes.size);
  }
});

/** Keeps the event loop alive while a test awaits the lock's unreferenced timers. */
function holdEventLoop(t: import("node:test").TestContext): void {
  const timer = setInterval(() => {}, 1_000);
  t.after(() => clearInterval(timer));
}

test("lock writer timeout releases waiters", async (t) => {
  holdEventLoop(t);
  const lock = new CacheLock({ writerTimeoutMs: 50, waiterTimeoutMs: 5_000 });
  const writer = lock.acquire("k");
  assert.equal(writer.role, "writer");
  const waiter = lock.acquire("k");
  assert.equal(waiter.role, "waiter");
  const outcome = await (waiter.role === "waiter" ? waiter.wait() : Promise.reject(new Error("not a waiter")));
  assert.equal(outcome, "timed-out");
  assert.equal(lock.heldCount, 0);
  // A late release of the expired writer does not touch a newer lock.
  const next = lock.acquire("k");
  assert.equal(next.role, "writer");
  if (writer.role === "writer") writer.release("stored");
  assert.equal(lock.heldCount, 1);
  if (next.role === "writer") next.release("not-stored");
  assert.equal(lock.heldCount, 0);
});

test("lock waiter timeout returns alone", async (t) => {
  holdEventLoop(t);
  const lock = new CacheLock({ writerTimeoutMs: 5_000, waiterTimeoutMs: 30 });
  const writer = lock.acquire("k");
  const waiter = lock.acquire("k");
  assert.equal(waiter.role === "waiter" ? await waiter.wait() : "", "timed-out");
  assert.equal(lock.heldCount, 1);
  if (writer.role === "writer") writer.release("failed");
  assert.equal(lock.heldCount, 0);
});

const ttl: TtlSettings = { minTtlSeconds: 0, defaultTtlSeconds: 100, maxTtlSeconds: 1000 };
interface OriginHeaders {
  cacheControl: string | undefined;
  expires: string | undefined;
  date: string | undefined;
}
const none: OriginHeaders = { cacheControl: undefined, expires: undefined, date: undefined };

test("freshness table", () => {
  const now = Date.UTC(2024, 0, 1);
  type Summary = { store: true; ttlSeconds: number } | { store: false; reason: string };
  const cases: Array<[string, number, typeof none, TtlSettings, Summary]> = [
    ["no headers", 200, none, ttl, { store: true, ttlSeconds: 100 }],
    ["no headers, MinTTL above default", 200, none, { ...ttl, minTtlSeconds: 200 }, { store: true, ttlSeconds: 200 }],
    ["max-age", 200, { ...none, cacheControl: "max-age=50" }, ttl, { store: true, ttlSeconds: 50 }],
    ["s-maxage wins", 200, { ...none, cacheControl: "max-age=50, s-maxage=70" }, ttl, { store: true, ttlSeconds: 70 }],
    ["clamped to MaxTTL", 200, { ...none, cacheControl: "max-age=5000" }, ttl, { store: true, ttlSeconds: 1000 }],
    ["raised to MinTTL", 200, { ...none, cacheControl: "max-age=5" }, { ...ttl, minTtlSeconds: 30 }, { store: true, ttlSeconds: 30 }],
    ["no-cache MinTTL 0", 200, { ...none, cacheControl: "no-cache" }, ttl, { store: false, reason: "origin-no-cache" }],
    ["private MinTTL 9", 200, { ...none, cacheControl: "private" }, { ...ttl, minTtlSeconds: 9 }, { store: true, ttlSeconds: 9 }],
    [
      "Expires minus Date",
      200,
      { ...none, expires: new Date(now + 300_000).toUTCString(), date: new Date(now).toUTCString() },
      ttl,
      { store: true, ttlSeconds: 300 },
    ],
    ["invalid Expires", 200, { ...none, expires: "0" }, ttl, { store: false, reason: "zero-ttl" }],
    ["404 without lifetime cached 10 s", 404, none, ttl, { store: true, ttlSeconds: 10 }],
    ["404 with a longer max-age", 404, { ...none, cacheControl: "max-age=600" }, ttl, { store: true, ttlSeconds: 600 }],
    ["404 max-age within MaxTTL", 404, { ...none, cacheControl: "max-age=5000" }, ttl, { store: true, ttlSeconds: 1000 }],
    ["404 with a shorter max-age", 404, { ...none, cacheControl: "max-age=3" }, ttl, { store: true, ttlSeconds: 10 }],
    ["404 no-store", 404, { ...none, cacheControl: "no-store" }, ttl, { store: false, reason: "origin-no-cache" }],
    ["503 cached 10 s", 503, none, ttl, { store: true, ttlSeconds: 10 }],
    ["503 no-store ignored", 503, { ...none, cacheControl: "no-store" }, ttl, { store: true, ttlSeconds: 10 }],
    ["403 without lifetime", 403, none, ttl, { store: false, reason: "status" }],
    ["403 with max-age", 403, { ...none, cacheControl: "max-age=30" }, ttl, { store: true, ttlSeconds: 30 }],
    ["400 with s-maxage", 400, { ...none, cacheControl: "s-maxage=5" }, ttl, { store: true, ttlSeconds: 10 }],
    ["416 never", 416, { ...none, cacheControl: "max-age=30" }, ttl, { store: false, reason: "status" }],
    ["302 with DefaultTTL", 302, none, ttl, { store: true, ttlSeconds: 100 }],
    ["307 without Cache-Control", 307, none, ttl, { store: false, reason: "status" }],
    ["307 with Cache-Control", 307, { ...none, cacheControl: "max-age=30" }, ttl, { store: true, ttlSeconds: 30 }],
  ];
  for (const [name, status, headers, settings, expected] of cases) {
    const decision = decideFreshness(status, headers, settings, now);
    const summary = decision.store ? { store: true, ttlSeconds: decision.ttlSeconds } : decision;
    assert.deepEqual(summary, expected, name);
  }
});

test("invalidation paths match percent-encoded forms", () => {
  assert.equal(canonicalizePath("/a%7eb%2fc"), "/a~b%2Fc");
  assert.equal(canonicalizePath("/caf\u00e9 x"), "/caf%C3%A9%20x");
  const matches = compileInvalidationPaths(["/images/*", "/exact%20file.txt", "/caf\u00e9"]);
  assert.ok(matches(canonicalizePath("/images/a/b.png")));
  assert.ok(matches(canonicalizePath("/exact%20file.txt")));
  assert.ok(matches(canonicalizePath("/caf%c3%a9")));
  assert.ok(!matches(canonicalizePath("/exact%20file.txt2")));
  assert.ok(!matches(canonicalizePath("/Images/a.png")));
  assert.ok(!matches(canonicalizePath("/images")));
  assert.ok(compileInvalidationPaths(["/*"])(canonicalizePath("/anything")));
});

test("path patterns use CloudFront wildcards", () => {
  assert.ok(compilePathPattern("*.jpg").test("/a/b.jpg"));
  assert.ok(compilePathPattern("images/*").test("/images/x"));
  assert.ok(!compilePathPattern("/images/*").test("/Images/x"));
  assert.ok(compilePathPattern("/a?c").test("/abc"));
  assert.ok(!compilePathPattern("/a?c").test("/abbc"));
  assert.ok(compilePathPattern("/a.b+(c)").test("/a.b+(c)"));
  assert.ok(!compilePathPattern("/a.b").test("/axb"));
  // Characters that are special in regular expressions match themselves.
  for (const literal of ["/static-v2/a.css", "/a+b/(c)[d]{e}|f^g$h\\i", "/~user/@me:1/'q'\"r\"&s=t"]) {
    assert.ok(compilePathPattern(literal).test(literal), literal);
    assert.ok(!compilePathPattern(literal).test(`${literal}x`), literal);
  }
  assert.ok(compilePathPattern("/static-*/*.css").test("/static-v2/site.css"));
  assert.ok(!compilePathPattern("/static-*/*.css").test("/staticv2/site.css"));
});

test("range header resolution", () => {
  assert.deepEqual(resolveRange("bytes=0-0", 10), { kind: "partial", start: 0, end: 0 });
  assert.deepEqual(resolveRange("bytes=5-100", 10), { kind: "partial", start: 5, end: 9 });
  assert.deepEqual(resolveRange("bytes=-100", 10), { kind: "partial", start: 0, end: 9 });
  assert.deepEqual(resolveRange("bytes=10-", 10), { kind: "unsatisfiable" });
  assert.deepEqual(resolveRange("bytes=-0", 10), { kind: "unsatisfiable" });
  assert.deepEqual(resolveRange("bytes=5-2", 10), { kind: "full" });
  assert.deepEqual(resolveRange("items=0-1", 10), { kind: "full" });
  assert.deepEqual(resolveRange("bytes=abc", 10), { kind: "full" });
});

function bodyEntry(key: string, bytes: number): CachedResponse {
  return {
    key,
    distributionId: "E1",
    invalidationPaths: [`/${key}`],
    status: 200,
    originHeaders: [],
    body: Buffer.alloc(bytes),
    etag: undefined,
    lastModified: undefined,
    lastModifiedMs: Number.NaN,
    responseAtMs: 0,
    initialAgeSeconds: 0,
    ttlSeconds: 60,
    staleAtMs: 60_000,
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: undefined,
    mustRevalidate: false,
    headersPolicyTag: "",
    hitHeaders: [],
    sizeBytes: bytes,
  };
}

test("held bodies of evicted entries count against the budget", () => {
  const memory = new MemoryTier(1000);
  const read = bodyEntry("a", 400);
  assert.ok(memory.put(read));
  memory.hold(read);
  assert.ok(memory.put(bodyEntry("b", 400)));
  // Evicting `a` leaves its body with its viewer, so it still counts, and
  // `b` has to go as well to make room for `c`.
  assert.ok(memory.put(bodyEntry("c", 400)));
  assert.equal(memory.peek("a"), undefined);
  assert.equal(memory.peek("b"), undefined);
  assert.equal(memory.heldOutsideBytes, 400);
  assert.ok(memory.usedBytes + memory.heldOutsideBytes <= 1000);
  // Only 600 bytes are left for entries, so a 700-byte one does not fit at all.
  assert.equal(memory.put(bodyEntry("d", 700)), false);
  assert.notEqual(memory.peek("c"), undefined, "a refused entry evicts nothing");

  memory.release(read);
  assert.equal(memory.heldOutsideBytes, 0);
  assert.ok(memory.put(bodyEntry("d", 700)));
});

test("purged and replaced held entries count once", () => {
  const memory = new MemoryTier(1000);
  const read = bodyEntry("a", 300);
  memory.put(read);
  memory.hold(read);
  memory.hold(read);
  assert.equal(memory.purgeDistribution("E1"), 1);
  assert.equal(memory.heldOutsideBytes, 300);
  memory.release(read);
  assert.equal(memory.heldOutsideBytes, 300, "one reader is still sending it");
  // Stored again while held, it counts inside the cache only.
  assert.ok(memory.put(read));
  assert.equal(memory.heldOutsideBytes, 0);
  assert.equal(memory.usedBytes, 300);
  memory.release(read);
  assert.equal(memory.heldOutsideBytes, 0);
  // Entries that no response reads leave nothing behind.
  memory.delete("a");
  assert.equal(memory.heldOutsideBytes, 0);
  assert.equal(memory.usedBytes, 0);
});
