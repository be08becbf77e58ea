import assert from "node:assert/strict";
import { test } from "node:test";
import type { IncomingMessage, ServerResponse } from "node:http";
import { decideFreshness, type TtlSettings } from "../../src/cache/freshness.js";
import { sleep } from "./helpers.js";
import { setupDistribution } from "./semantics-setup.js";

const ttl: TtlSettings = { minTtlSeconds: 0, defaultTtlSeconds: 100, maxTtlSeconds: 1000 };
const now = Date.UTC(2025, 5, 1);

test("freshness table with stale directives", () => {
  const headers = (cacheControl?: string, cdnCacheControl?: string) => ({
    cacheControl,
    cdnCacheControl,
    expires: undefined,
    date: undefined,
  });
  const cases: Array<[string, ReturnType<typeof headers>, TtlSettings, Record<string, unknown>]> = [
    ["CDN-Cache-Control wins", headers("max-age=10", "max-age=300"), ttl, { store: true, ttlSeconds: 300 }],
    ["CDN-Cache-Control bounded by MaxTTL", headers(undefined, "max-age=5000"), ttl, { store: true, ttlSeconds: 1000 }],
    ["CDN-Cache-Control no-store", headers("max-age=60", "no-store"), ttl, { store: false, reason: "origin-no-cache" }],
    ["empty CDN-Cache-Control ignored", headers("max-age=60", " "), ttl, { store: true, ttlSeconds: 60 }],
    // RFC 9213: a field that parses replaces Cache-Control even without a known directive. A field
    // that does not parse as a Structured Fields Dictionary is ignored whole.
    ["unknown-only CDN-Cache-Control still replaces", headers("max-age=60", "foo=1"), ttl, { store: true, ttlSeconds: 100 }],
    ["malformed CDN-Cache-Control ignored", headers("max-age=60", "max-age=20,,"), ttl, { store: true, ttlSeconds: 60 }],
    ["CDN-Cache-Control repeated key keeps the last", headers(undefined, "max-age=20, max-age=30"), ttl, { store: true, ttlSeconds: 30 }],
    ["CDN-Cache-Control string max-age has no lifetime", headers("max-age=60", 'max-age="20"'), ttl, { store: true, ttlSeconds: 100 }],
    ["CDN-Cache-Control no-cache=?0 is off", headers(undefined, "no-cache=?0, max-age=30"), ttl, { store: true, ttlSeconds: 30 }],
    [
      "stale-while-revalidate kept",
      headers("max-age=60, stale-while-revalidate=30"),
      ttl,
      { store: true, ttlSeconds: 60, staleWhileRevalidateSeconds: 30, staleIfErrorSeconds: undefined, mustRevalidate: false },
    ],
    [
      "stale-if-error kept",
      headers("max-age=60, stale-if-error=600"),
      ttl,
      { store: true, ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 600, mustRevalidate: false },
    ],
    [
      "must-revalidate cancels stale serving",
      headers("max-age=60, must-revalidate, stale-while-revalidate=30, stale-if-error=600"),
      ttl,
      { store: true, ttlSeconds: 60, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0, mustRevalidate: true },
    ],
    ["max-age=0 with stale-if-error is stored", headers("max-age=0, stale-if-error=60"), ttl, { store: true, ttlSeconds: 0 }],
    ["max-age=0 alone is not stored", headers("max-age=0"), ttl, { store: false, reason: "zero-ttl" }],
    ["invalid max-age ignored", headers("max-age=abc"), ttl, { store: true, ttlSeconds: 100 }],
    ["repeated max-age keeps the first", headers("max-age=100, max-age=5"), ttl, { store: true, ttlSeconds: 100 }],
    ["invalid first max-age skipped", headers("max-age=abc, max-age=50"), ttl, { store: true, ttlSeconds: 50 }],
  ];
  for (const [name, input, settings, expected] of cases) {
    const decision = decideFreshness(200, input, settings, now) as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(expected)) {
      assert.deepEqual(decision[field], value, `${name}: ${field}`);
    }
  }
});

test("error caching TTL follows ErrorCachingMinTTL", () => {
  const none = { cacheControl: undefined, expires: undefined, date: undefined };
  const overrides = new Map([
    [404, 120],
    [503, 0],
    [403, 30],
  ]);
  const check = (status: number) => {
    const decision = decideFreshness(status, none, ttl, now, overrides);
    return decision.store ? decision.ttlSeconds : decision.reason;
  };
  assert.equal(check(404), 120);
  assert.equal(check(503), "zero-ttl");
  assert.equal(check(403), 30);
  assert.equal(check(500), 10);
  assert.equal(check(400), "status");
});

test("generated max-age always lands within the TTL bounds", () => {
  let seed = 7;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let i = 0; i < 500; i++) {
    const min = Math.floor(random() * 100);
    const max = min + Math.floor(random() * 1000);
    const settings = { minTtlSeconds: min, defaultTtlSeconds: min + 5, maxTtlSeconds: max };
    const maxAge = Math.floor(random() * 2000);
    const useCdn = random() < 0.5;
    const decision = decideFreshness(
      200,
      {
        cacheControl: useCdn ? "max-age=1" : `max-age=${maxAge}`,
        cdnCacheControl: useCdn ? `max-age=${maxAge}` : undefined,
        expires: undefined,
        date: undefined,
      },
      settings,
      now,
    );
    const expected = Math.min(Math.max(maxAge, min), max);
    if (expected === 0) {
      assert.equal(decision.store, false, `case ${i}`);
      continue;
    }
    assert.ok(decision.store, `case ${i}`);
    assert.equal(decision.ttlSeconds, expected, `case ${i}: max-age ${maxAge} in [${min}, ${max}]`);
  }
});

test("CDN-Cache-Control sets the edge TTL, viewers keep Cache-Control", async (t) => {
  const { origin, get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "no-cache", "cdn-cache-control": "max-age=120" });
    res.end("cdn");
  });
  const first = await get("/c");
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; stored; ttl=120");
  const second = await get("/c");
  assert.equal(second.headers["x-cache"], "Hit from portico");
  assert.equal(second.headers["cache-control"], "no-cache");
  assert.equal(origin.hits(), 1);
});

test("stale-while-revalidate serves stale and refreshes once", async (t) => {
  let version = 0;
  const { origin, get } = await setupDistribution(t, async (_req, res) => {
    version++;
    const current = version;
    // A slow refresh shows that viewers do not wait for it.
    if (current > 1) await sleep(300);
    res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=30" });
    res.end(`v${current}`);
  });
  assert.equal((await get("/s")).body.toString(), "v1");
  await sleep(1100);
  const stale = await Promise.all([get("/s"), get("/s"), get("/s")]);
  for (const response of stale) {
    assert.equal(response.body.toString(), "v1");
    assert.match(String(response.headers["cache-status"]), /^portico; hit; ttl=-?\d+; detail=stale-while-revalidate$/);
  }
  // The background refresh replaces the entry without a viewer waiting for it.
  assert.ok(stale.every((response) => response.headers["x-cache"] === "Hit from portico"));
  await sleep(500);
  const refreshed = await get("/s");
  assert.equal(refreshed.body.toString(), "v2");
  assert.equal(refreshed.headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits(), 2);
});

test("stale-if-error serves stale on origin 5xx", async (t) => {
  let failing = false;
  const { origin, get } = await setupDistribution(t, (_req, res) => {
    if (failing) {
      res.writeHead(503, { "cache-control": "no-store" });
      res.end("down");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=1, stale-if-error=60", etag: '"e1"' });
    res.end("good");
  });
  await get("/e");
  await sleep(1100);
  failing = true;
  const served = await get("/e");
  assert.equal(served.status, 200);
  assert.equal(served.body.toString(), "good");
  assert.match(String(served.headers["cache-status"]), /^portico; fwd=stale; fwd-status=503; ttl=-?\d+; detail=stale-if-error$/);
  assert.equal(origin.requests[1]!.headers["if-none-match"], '"e1"');
  assert.equal(origin.hits(), 2);
});

test("stale-if-error ends under steady errors", async (t) => {
  let failing = false;
  const { get } = await setupDistribution(t, (_req, res) => {
    if (failing) {
      res.writeHead(500, { "cache-control": "no-store" });
      res.end("broken");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=1, stale-if-error=2" });
    res.end("short");
  });
  const startedMs = Date.now();
  await get("/steady");
  await sleep(1100);
  failing = true;
  // Each failed fetch keeps the stale copy in use for a while, but never past the end of the window, 3 s in.
  const first = await get("/steady");
  assert.equal(first.body.toString(), "short");
  const late: number[] = [];
  while (Date.now() - startedMs < 5000) {
    const requestedMs = Date.now() - startedMs;
    const served = await get("/steady");
    if (requestedMs >= 4000) late.push(served.status);
    await sleep(150);
  }
  assert.ok(late.length > 0);
  assert.deepEqual(late, late.map(() => 500));
});

test("stored 5xx is not served stale", async (t) => {
  let version = 1;
  const respond = (_req: unknown, res: import("node:http").ServerResponse) => {
    res.writeHead(500, { "cache-control": "max-age=1" });
    res.end(`error ${version}`);
  };
  // An error caching minimum TTL of 1 s lets the stored 500 expire within the test.
  const { get } = await setupDistribution(t, respond, {}, (snapshot) => {
    snapshot.config.CustomErrorResponses = { Quantity: 1, Items: [{ ErrorCode: 500, ErrorCachingMinTTL: 1 }] };
  });
  assert.equal((await get("/err")).body.toString(), "error 1");
  version = 2;
  await sleep(1100);
  const served = await get("/err");
  assert.equal(served.status, 500);
  assert.equal(served.body.toString(), "error 2");
  assert.doesNotMatch(String(served.headers["cache-status"]), /stale-if-error/);
});

test("Cache-Control on several lines is read whole", async (t) => {
  const { get } = await setupDistribution(
    t,
    (req, res) => {
      // Node.js sends each value of an array on its own line.
      if (req.url === "/cc") res.setHeader("cache-control", ["public", "max-age=77"]);
      else res.setHeader("cdn-cache-control", ["max-age=30", "max-age=50"]);
      res.end("lines");
    },
    { defaultBehavior: { DefaultTTL: 5 } },
  );
  assert.match(String((await get("/cc")).headers["cache-status"]), /; stored; ttl=77$/);
  // RFC 9651: the lines form one Dictionary, whose repeated key keeps its last value.
  assert.match(String((await get("/cdn")).headers["cache-status"]), /; stored; ttl=50$/);
});

test("origin 5xx serves the stale copy", async (t) => {
  let failing = false;
  const respond = (_req: IncomingMessage, res: ServerResponse) => {
    if (failing) {
      res.writeHead(502, { "cache-control": "max-age=300" });
      res.end("bad gateway");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=1" });
    res.end("good");
  };
  // CloudFront serves an expired object when the origin returns 5xx, and keeps
  // serving it from the cache for the error caching minimum TTL (10 s by default).
  const { origin, get } = await setupDistribution(t, respond);
  await get("/s");
  await sleep(1100);
  failing = true;
  const served = await get("/s");
  assert.equal(served.status, 200);
  assert.equal(served.body.toString(), "good");
  assert.match(String(served.headers["cache-status"]), /^portico; fwd=stale; fwd-status=502; ttl=-?\d+; detail=stale-if-error$/);
  const again = await get("/s");
  assert.equal(again.body.toString(), "good");
  assert.equal(again.headers["x-cache"], "Hit from portico");
  assert.match(String(again.headers["cache-status"]), /^portico; hit; ttl=-?\d+$/);
  assert.equal(origin.hits(), 2);

  // With an error caching minimum TTL of 0 for 502, each request goes to the origin again.
  failing = false;
  const noHold = await setupDistribution(t, respond, {}, (snapshot) => {
    snapshot.config.CustomErrorResponses = { Quantity: 1, Items: [{ ErrorCode: 502, ErrorCachingMinTTL: 0 }] };
  });
  await noHold.get("/s");
  await sleep(1100);
  failing = true;
  assert.equal((await noHold.get("/s")).body.toString(), "good");
  assert.equal((await noHold.get("/s")).body.toString(), "good");
  assert.equal(noHold.origin.hits(), 3);
});

test("failed revalidation serves stale when the origin is down", async (t) => {
  const { origin, fixture, get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=1", "last-modified": new Date(0).toUTCString() });
    res.end("kept");
  });
  await get("/down");
  await origin.close();
  await sleep(1100);
  const served = await get("/down");
  assert.equal(served.status, 200);
  assert.equal(served.body.toString(), "kept");
  assert.match(String(served.headers["cache-status"]), /^portico; fwd=stale; ttl=-?\d+; detail=stale-if-error$/);
  assert.equal(fixture.metrics.records.at(-1)!.status, 200);
});

test("must-revalidate gives an error when the origin is down", async (t) => {
  const { origin, get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=1, must-revalidate, stale-if-error=60" });
    res.end("strict");
  });
  await get("/m");
  await origin.close();
  await sleep(1100);
  const served = await get("/m");
  assert.equal(served.status, 502);
});

test("stale-if-error window ends", async (t) => {
  let failing = false;
  const { get } = await setupDistribution(t, (_req, res) => {
    if (failing) {
      res.writeHead(500);
      res.end("broken");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=1, stale-if-error=1" });
    res.end("short");
  });
  await get("/w");
  failing = true;
  await sleep(2100);
  const served = await get("/w");
  assert.equal(served.status, 500);
  assert.equal(served.body.toString(), "broken");
});
