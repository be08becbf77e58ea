import assert from "node:assert/strict";
import { test } from "node:test";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { parseVary, varySignature } from "../../src/cache/vary.js";
import { normalizeAcceptEncoding } from "../../src/cache/key.js";
import { setupDistribution } from "./semantics-setup.js";

const CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6";
const ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3";

test("Vary parsing and signatures", () => {
  assert.deepEqual(parseVary(undefined), { kind: "none" });
  assert.deepEqual(parseVary(" , "), { kind: "none" });
  assert.deepEqual(parseVary("Accept-Language, accept-encoding"), {
    kind: "headers",
    names: ["accept-encoding", "accept-language"],
  });
  assert.deepEqual(parseVary("Origin, *"), { kind: "star" });
  const names = ["accept-language", "x-tier"];
  assert.equal(
    varySignature(names, { "accept-language": "en, fr", "x-tier": "gold" }),
    varySignature(names, { "accept-language": "en,fr", "x-tier": "gold" }),
  );
  assert.notEqual(varySignature(names, { "x-tier": "" }), varySignature(names, {}));
  assert.notEqual(varySignature(names, { "x-tier": "a" }), varySignature(names, { "x-tier": "b" }));
});

test("Accept-Encoding normalization table", () => {
  const both = { gzip: true, br: true };
  const cases: Array<[string | undefined, { gzip: boolean; br: boolean }, string]> = [
    [undefined, both, ""],
    ["gzip, deflate, br", both, "br,gzip"],
    ["GZIP", both, "gzip"],
    ["br;q=0, gzip", both, "gzip"],
    ["br;q=0.5", both, "br"],
    ["gzip;q=0", both, ""],
    ["identity", both, ""],
    ["x-gzip", both, "gzip"],
    ["br, gzip", { gzip: true, br: false }, "gzip"],
    ["br, gzip", { gzip: false, br: false }, ""],
  ];
  for (const [header, enabled, expected] of cases) {
    assert.equal(normalizeAcceptEncoding(header, enabled), expected, String(header));
  }
});

test("unkeyed headers cannot poison the cache", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end(`host=${String(req.headers["x-forwarded-host"])}`);
    },
    { defaultBehavior: { CachePolicyId: CACHING_OPTIMIZED, ForwardedValues: undefined, MinTTL: undefined } },
  );
  const poisoned = await get("/p", { "x-forwarded-host": "evil.example" });
  assert.equal(poisoned.body.toString(), "host=undefined");
  assert.equal(origin.requests[0]!.headers["x-forwarded-host"], undefined);
  const clean = await get("/p");
  assert.equal(clean.body.toString(), "host=undefined");
  assert.equal(clean.headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits(), 1);
});

test("origin Vary splits variants of forwarded headers", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60", vary: "X-Tier" });
      res.end(`tier=${String(req.headers["x-tier"])}`);
    },
    {
      defaultBehavior: {
        CachePolicyId: CACHING_OPTIMIZED,
        OriginRequestPolicyId: ALL_VIEWER,
        ForwardedValues: undefined,
        MinTTL: undefined,
      },
    },
  );
  const gold = await get("/v", { "x-tier": "gold" });
  assert.equal(gold.body.toString(), "tier=gold");
  const silver = await get("/v", { "x-tier": "silver" });
  assert.equal(silver.body.toString(), "tier=silver");
  assert.match(String(silver.headers["cache-status"]), /fwd=vary-miss/);
  const goldAgain = await get("/v", { "x-tier": "gold" });
  assert.equal(goldAgain.body.toString(), "tier=gold");
  assert.equal(goldAgain.headers["x-cache"], "Hit from portico");
  const none = await get("/v");
  assert.equal(none.body.toString(), "tier=undefined");
  assert.equal(origin.hits(), 3);
});

test("Vary star is never served from cache", async (t) => {
  const { origin, get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", vary: "*" });
    res.end("star");
  });
  const first = await get("/star");
  assert.match(String(first.headers["cache-status"]), /detail=vary-star/);
  const second = await get("/star");
  assert.equal(second.headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits(), 2);
});

/** An origin of compressible text, plus responses the edge must leave as they are. */
function compressionOrigin(text: string) {
  return (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    if (req.url === "/already") {
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain", "content-encoding": "gzip" });
      res.end(Buffer.from("not really gzip but labelled so"));
      return;
    }
    if (req.url === "/small") {
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
      res.end("tiny");
      return;
    }
    if (req.url === "/image") {
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "image/png" });
      res.end(Buffer.alloc(5000, 7));
      return;
    }
    if (req.url === "/no-transform") {
      res.writeHead(200, { "cache-control": "max-age=60, no-transform", "content-type": "text/css" });
      res.end(text);
      return;
    }
    if (req.url === "/no-transform-line") {
      res.setHeader("cache-control", ["max-age=60", "no-transform"]);
      res.writeHead(200, { "content-type": "text/css" });
      res.end(text);
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain", etag: '"t1"' });
    res.end(text);
  };
}

test("compression keys per encoding and never compresses twice", async (t) => {
  const text = "portico compresses text ".repeat(200);
  const { origin, get } = await setupDistribution(t, compressionOrigin(text), {
    defaultBehavior: { Compress: true, CachePolicyId: CACHING_OPTIMIZED, ForwardedValues: undefined, MinTTL: undefined },
  });

  const br = await get("/text", { "accept-encoding": "gzip, br" });
  assert.equal(br.headers["content-encoding"], "br");
  assert.equal(br.headers.etag, 'W/"t1"');
  assert.match(String(br.headers.vary), /Accept-Encoding/);
  assert.equal(brotliDecompressSync(br.body).toString(), text);
  assert.equal(origin.requests[0]!.headers["accept-encoding"], "br,gzip");

  const gzip = await get("/text", { "accept-encoding": "gzip" });
  assert.equal(gzip.headers["content-encoding"], "gzip");
  assert.equal(gunzipSync(gzip.body).toString(), text);

  // The uncompressed copy varies by Accept-Encoding too, so a cache downstream keeps them apart.
  const identity = await get("/text");
  assert.equal(identity.headers["content-encoding"], undefined);
  assert.equal(identity.headers.vary, "Accept-Encoding");
  assert.equal(identity.body.toString(), text);
  assert.equal(origin.hits("/text"), 3);
  assert.equal((await get("/text")).headers.vary, "Accept-Encoding");

  const brAgain = await get("/text", { "accept-encoding": "br, gzip" });
  assert.equal(brAgain.headers["x-cache"], "Hit from portico");
  assert.equal(brAgain.headers["content-encoding"], "br");
  assert.equal(origin.hits("/text"), 3);

  const already = await get("/already", { "accept-encoding": "br" });
  assert.equal(already.headers["content-encoding"], "gzip");
  assert.equal(already.body.toString(), "not really gzip but labelled so");

  const small = await get("/small", { "accept-encoding": "br" });
  assert.equal(small.headers["content-encoding"], undefined);
  assert.equal(small.headers.vary, undefined);
  const image = await get("/image", { "accept-encoding": "br" });
  assert.equal(image.headers["content-encoding"], undefined);
  assert.equal(image.body.length, 5000);

  // RFC 9110 section 7.7: a proxy does not transform content the origin marked no-transform.
  const untouched = await get("/no-transform", { "accept-encoding": "br, gzip" });
  assert.equal(untouched.headers["content-encoding"], undefined);
  assert.equal(untouched.headers.vary, undefined);
  assert.equal(untouched.body.toString(), text);
  const secondLine = await get("/no-transform-line", { "accept-encoding": "br, gzip" });
  assert.equal(secondLine.headers["content-encoding"], undefined, "no-transform on a Cache-Control line of its own");
});

test("legacy cache settings compress with gzip only", async (t) => {
  const text = "legacy settings compress text ".repeat(100);
  const { origin, get } = await setupDistribution(t, compressionOrigin(text), { defaultBehavior: { Compress: true } });

  const both = await get("/text", { "accept-encoding": "gzip, br" });
  assert.equal(both.headers["content-encoding"], "gzip");
  assert.equal(gunzipSync(both.body).toString(), text);
  assert.equal(origin.requests[0]!.headers["accept-encoding"], "gzip");

  const brOnly = await get("/text", { "accept-encoding": "br" });
  assert.equal(brOnly.headers["content-encoding"], undefined);
  assert.equal(brOnly.headers.vary, "Accept-Encoding");
  assert.equal(brOnly.body.toString(), text);
  assert.equal((await get("/text", { "accept-encoding": "gzip;q=1, br" })).headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits("/text"), 2);
});

test("invalidation purges every variant of a path", async (t) => {
  const text = "variant body ".repeat(100);
  const { origin, fixture, snapshot, get } = await setupDistribution(
    t,
    (req, res) => {
      res.writeHead(200, { "cache-control": "max-age=600", "content-type": "text/plain", vary: "X-Tier" });
      res.end(`${text}${req.url}`);
    },
    {
      defaultBehavior: {
        Compress: true,
        ForwardedValues: { QueryString: true, Cookies: { Forward: "none" }, Headers: { Quantity: 1, Items: ["X-Tier"] } },
      },
    },
  );
  const variants: Array<[string, Record<string, string>]> = [
    ["/page", {}],
    ["/page?a=1", {}],
    ["/page", { "accept-encoding": "gzip" }],
    ["/page?a=1", { "accept-encoding": "gzip" }],
    ["/page", { "x-tier": "gold" }],
    ["/pages/other", {}],
  ];
  for (const [path, headers] of variants) await get(path, headers);
  for (const [path, headers] of variants) assert.equal((await get(path, headers)).headers["x-cache"], "Hit from portico", path);
  assert.equal(origin.hits(), variants.length);

  await fixture.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I1", paths: ["/page"] });
  for (const [path, headers] of variants.slice(0, 5)) {
    assert.equal((await get(path, headers)).headers["x-cache"], "Miss from portico", `${path} ${JSON.stringify(headers)}`);
  }
  assert.equal((await get("/pages/other")).headers["x-cache"], "Hit from portico");

  await fixture.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I2", paths: ["/page*"] });
  assert.equal((await get("/pages/other")).headers["x-cache"], "Miss from portico");
  assert.equal((await get("/page?a=1")).headers["x-cache"], "Miss from portico");
});

test("Set-Cookie passes only when cookies are forwarded", async (t) => {
  const respond = (_req: unknown, res: import("node:http").ServerResponse) => {
    res.writeHead(200, { "cache-control": "max-age=60", "set-cookie": "session=abc; Path=/" });
    res.end("cookie page");
  };
  const stripped = await setupDistribution(t, respond);
  const first = await stripped.get("/c");
  assert.equal(first.headers["set-cookie"], undefined);
  assert.equal((await stripped.get("/c")).headers["x-cache"], "Hit from portico");

  const forwarded = await setupDistribution(
    t,
    respond,
    {
      id: "E2EDGETEST0002",
      defaultBehavior: {
        CachePolicyId: CACHING_OPTIMIZED,
        OriginRequestPolicyId: ALL_VIEWER,
        ForwardedValues: undefined,
        MinTTL: undefined,
      },
    },
  );
  const kept = await forwarded.get("/c", { cookie: "session=old" });
  assert.deepEqual(kept.headers["set-cookie"], ["session=abc; Path=/"]);
  assert.equal(forwarded.origin.requests[0]!.headers.cookie, "session=old");
});
