import assert from "node:assert/strict";
import { test } from "node:test";
import { decideFreshness, type FreshnessHeaders, type TtlSettings } from "../../src/cache/freshness.js";
import { sleep } from "./helpers.js";
import { setupDistribution } from "./semantics-setup.js";

const ttl: TtlSettings = { minTtlSeconds: 0, defaultTtlSeconds: 100, maxTtlSeconds: 1000 };
const now = Date.UTC(2025, 5, 1);

function headers(cacheControl: string, age?: string, etag?: string): FreshnessHeaders {
  return { cacheControl, expires: undefined, date: undefined, age, etag };
}

test("freshness table with origin Age", () => {
  const cases: Array<[string, FreshnessHeaders, TtlSettings, Record<string, unknown>]> = [
    ["Age below max-age", headers("max-age=60", "20"), ttl, { store: true, ttlSeconds: 60 }],
    ["Age past max-age, ETag", headers("max-age=60", "100", '"e"'), ttl, { store: true, ttlSeconds: 60 }],
    ["Age past max-age, no validator", headers("max-age=60", "100"), ttl, { store: false, reason: "stale-on-arrival" }],
    ["Age equal to max-age", headers("max-age=60", "60"), ttl, { store: false, reason: "stale-on-arrival" }],
    ["max-age=0, ETag", headers("max-age=0", undefined, '"e"'), ttl, { store: true, ttlSeconds: 0 }],
    ["max-age=0, no validator", headers("max-age=0"), ttl, { store: false, reason: "zero-ttl" }],
    // The stale windows start when the response went stale, 40 s before it arrived.
    ["stale-while-revalidate over", headers("max-age=60, stale-while-revalidate=30", "100"), ttl, { store: false }],
    ["stale-while-revalidate open", headers("max-age=60, stale-while-revalidate=50", "100"), ttl, { store: true, ttlSeconds: 60 }],
    ["stale-if-error open", headers("max-age=60, stale-if-error=300", "100"), ttl, { store: true, ttlSeconds: 60 }],
    ["must-revalidate, no validator", headers("max-age=60, must-revalidate, stale-if-error=300", "100"), ttl, { store: false }],
    // MinTTL keeps the response fresh for MinTTL after it arrives, whatever its age.
    ["MinTTL past Age", headers("max-age=30", "100"), { ...ttl, minTtlSeconds: 60 }, { store: true, ttlSeconds: 160 }],
    ["MinTTL with no-cache", headers("no-cache", "100"), { ...ttl, minTtlSeconds: 60 }, { store: true, ttlSeconds: 160 }],
    ["MinTTL below remaining", headers("max-age=300", "100"), { ...ttl, minTtlSeconds: 60 }, { store: true, ttlSeconds: 300 }],
    ["invalid Age ignored", headers("max-age=60", "-5"), ttl, { store: true, ttlSeconds: 60 }],
  ];
  for (const [name, input, settings, expected] of cases) {
    const decision = decideFreshness(200, input, settings, now) as unknown as Record<string, unknown>;
    for (const [field, value] of Object.entries(expected)) {
      assert.deepEqual(decision[field], value, `${name}: ${field}`);
    }
  }
});

test("cached error stays fresh for its minimum TTL", () => {
  const decision = decideFreshness(404, headers("max-age=5", "100"), ttl, now);
  assert.ok(decision.store);
  // The error caching minimum TTL (10 s) counts from arrival, like MinTTL.
  assert.equal(decision.ttlSeconds - 100, 10);
});

test("generated Age against max-age and MinTTL", () => {
  let seed = 5;
  const random = (limit: number) => {
    seed = (seed * 48_271) % 2_147_483_647;
    return seed % limit;
  };
  for (let i = 0; i < 500; i++) {
    const maxAge = random(200);
    const ageSeconds = random(300);
    const minTtlSeconds = random(3) === 0 ? random(100) : 0;
    const withEtag = random(2) === 0;
    const settings = { ...ttl, minTtlSeconds };
    const decision = decideFreshness(200, headers(`max-age=${maxAge}`, String(ageSeconds), withEtag ? '"g"' : undefined), settings, now);
    const label = `case ${i}: max-age ${maxAge}, Age ${ageSeconds}, MinTTL ${minTtlSeconds}, ETag ${withEtag}`;
    const remaining = Math.max(maxAge, minTtlSeconds) - ageSeconds;
    if (minTtlSeconds > 0) {
      assert.ok(decision.store, label);
      assert.equal(decision.ttlSeconds - ageSeconds, Math.max(remaining, minTtlSeconds), label);
    } else if (remaining > 0 || withEtag) {
      assert.ok(decision.store, label);
      assert.equal(decision.ttlSeconds, maxAge, label);
    } else {
      assert.equal(decision.store, false, label);
    }
  }
});

test("Age past max-age, with and without ETag", async (t) => {
  const { origin, get } = await setupDistribution(t, (req, res) => {
    if (req.headers["if-none-match"] === '"a1"') {
      res.writeHead(304, { etag: '"a1"', "cache-control": "max-age=60" });
      res.end();
      return;
    }
    const etag = req.url === "/tagged" ? { etag: '"a1"' } : {};
    res.writeHead(200, { "cache-control": "max-age=60", age: "100", ...etag });
    res.end("aged");
  });
  const first = await get("/tagged");
  assert.equal(first.body.toString(), "aged");
  assert.equal(first.headers.age, "100");
  // Stored although stale, with the negative TTL left that RFC 9211 allows.
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; stored; ttl=-40");

  const second = await get("/tagged");
  assert.equal(second.body.toString(), "aged");
  assert.equal(second.headers["x-cache"], "RefreshHit from portico");
  assert.equal(second.headers["cache-status"], "portico; fwd=stale; fwd-status=304; ttl=60");
  assert.equal(origin.requests[1]!.headers["if-none-match"], '"a1"');

  const third = await get("/tagged");
  assert.equal(third.headers["x-cache"], "Hit from portico");
  assert.equal(third.body.toString(), "aged");
  assert.equal(origin.hits("/tagged"), 2);

  // Without a validator the response is only passed on, with its Age.
  for (let i = 1; i <= 2; i++) {
    const response = await get("/plain");
    assert.equal(response.body.toString(), "aged");
    assert.equal(response.headers.age, "100");
    assert.equal(response.headers["x-cache"], "Miss from portico");
    assert.equal(response.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; detail=stale-on-arrival");
    assert.equal(origin.hits("/plain"), i);
  }
  assert.equal(origin.requests.at(-1)!.headers["if-none-match"], undefined);
  assert.equal(origin.requests.at(-1)!.headers["if-modified-since"], undefined);
});

test("max-age=0, with and without Last-Modified", async (t) => {
  const lastModified = new Date(Date.UTC(2025, 0, 1)).toUTCString();
  const { origin, get } = await setupDistribution(t, (req, res) => {
    const validator = req.url === "/dated" ? { "last-modified": lastModified } : {};
    if (req.headers["if-modified-since"] === lastModified) {
      res.writeHead(304, { "cache-control": "max-age=0", ...validator });
      res.end();
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=0", ...validator });
    res.end("zero");
  });
  // As CloudFront does with a TTL of 0, the response is stored and revalidated with If-Modified-Since each time.
  const first = await get("/dated");
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; stored; ttl=0");
  for (let i = 2; i <= 3; i++) {
    const again = await get("/dated");
    assert.equal(again.body.toString(), "zero");
    assert.equal(again.headers["x-cache"], "RefreshHit from portico");
    assert.equal(again.headers["cache-status"], "portico; fwd=stale; fwd-status=304; ttl=0");
    assert.equal(origin.requests.at(-1)!.headers["if-modified-since"], lastModified);
    assert.equal(origin.hits("/dated"), i);
  }

  // Without a validator there is nothing to revalidate, so nothing is stored.
  for (let i = 1; i <= 2; i++) {
    const response = await get("/undated");
    assert.equal(response.body.toString(), "zero");
    assert.equal(response.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; detail=zero-ttl");
    assert.equal(origin.requests.at(-1)!.headers["if-modified-since"], undefined);
    assert.equal(origin.hits("/undated"), i);
  }
});

test("MinTTL 60 keeps an aged response", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=30", age: "100" });
      res.end("kept");
    },
    { defaultBehavior: { MinTTL: 60 } },
  );
  const first = await get("/min");
  assert.equal(first.headers.age, "100");
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; stored; ttl=60");

  await sleep(1100);
  const second = await get("/min");
  assert.equal(second.headers["x-cache"], "Hit from portico");
  assert.equal(second.body.toString(), "kept");
  const ageSeconds = Number(second.headers.age);
  // The age goes on from the origin's, and the TTL left falls as the age rises.
  assert.ok(ageSeconds >= 101, `Age ${ageSeconds}`);
  assert.equal(second.headers["cache-status"], `portico; hit; ttl=${160 - ageSeconds}`);
  assert.equal(origin.hits(), 1);
});
