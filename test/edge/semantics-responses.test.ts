import assert from "node:assert/strict";
import { test } from "node:test";
import { ifNoneMatchMatches, ifRangeAllows, notModifiedApplies, strongMatch, weakMatch } from "../../src/cache/etag.js";
import { resolveRanges } from "../../src/edge/range.js";
import { setupDistribution } from "./semantics-setup.js";

test("304 selects the stored response", () => {
  const monday = "Mon, 07 Dec 2026 10:00:00 GMT";
  const tuesday = "Tue, 08 Dec 2026 10:00:00 GMT";
  // Stored ETag, stored Last-Modified, the 304's ETag and Last-Modified, and whether it applies.
  const cases: Array<[string | undefined, string | undefined, string | undefined, string | undefined, boolean]> = [
    ['"a"', undefined, '"a"', undefined, true],
    ['W/"a"', undefined, '"a"', undefined, true],
    ['"a"', undefined, '"b"', undefined, false],
    [undefined, monday, '"a"', undefined, false],
    ['"a"', monday, undefined, monday, true],
    ['"a"', monday, undefined, tuesday, false],
    ['"a"', monday, undefined, undefined, true],
    [undefined, undefined, undefined, tuesday, true],
  ];
  for (const [storedEtag, storedLastModified, sentEtag, sentLastModified, applies] of cases) {
    const label = `${storedEtag} ${storedLastModified} / ${sentEtag} ${sentLastModified}`;
    assert.equal(notModifiedApplies(storedEtag, storedLastModified, sentEtag, sentLastModified), applies, label);
  }
});

test("entity-tag comparison follows RFC 9110", () => {
  // The table of RFC 9110 section 8.8.3.2.
  const cases: Array<[string, string, boolean, boolean]> = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ];
  for (const [a, b, strong, weak] of cases) {
    assert.equal(strongMatch(a, b), strong, `strong ${a} ${b}`);
    assert.equal(weakMatch(a, b), weak, `weak ${a} ${b}`);
    assert.equal(strongMatch(b, a), strong, `strong ${b} ${a}`);
    assert.equal(weakMatch(b, a), weak, `weak ${b} ${a}`);
  }
  assert.equal(weakMatch("1", "1"), false);
  assert.equal(ifNoneMatchMatches('"a", W/"b"', '"b"'), true);
  assert.equal(ifNoneMatchMatches('"a,b"', '"a,b"'), true);
  assert.equal(ifNoneMatchMatches('"a,b"', '"a"'), false);
  assert.equal(ifNoneMatchMatches("*", '"x"'), true);
  assert.equal(ifNoneMatchMatches("*", undefined), false);
  assert.equal(ifRangeAllows('W/"1"', 'W/"1"', undefined), false);
  assert.equal(ifRangeAllows('"1"', '"1"', undefined), true);
  assert.equal(ifRangeAllows("Thu, 01 Jan 1970 00:00:00 GMT", undefined, "Thu, 01 Jan 1970 00:00:00 GMT"), true);
  assert.equal(ifRangeAllows("Thu, 01 Jan 1970 00:00:01 GMT", undefined, "Thu, 01 Jan 1970 00:00:00 GMT"), false);
});

test("multiple ranges resolve, merge and stay bounded", () => {
  assert.deepEqual(resolveRanges("bytes=0-1,4-5", 10), { kind: "partial", ranges: [{ start: 0, end: 1 }, { start: 4, end: 5 }] });
  assert.deepEqual(resolveRanges("bytes=4-5, 0-4", 10), { kind: "partial", ranges: [{ start: 0, end: 5 }] });
  assert.deepEqual(resolveRanges("bytes=50-60, 2-3", 10), { kind: "partial", ranges: [{ start: 2, end: 3 }] });
  assert.deepEqual(resolveRanges("bytes=50-60, 70-", 10), { kind: "unsatisfiable" });
  assert.deepEqual(resolveRanges("bytes=0-0,-1", 10), { kind: "partial", ranges: [{ start: 0, end: 0 }, { start: 9, end: 9 }] });
  const many = Array.from({ length: 17 }, (_, i) => `${i * 2}-${i * 2}`).join(",");
  assert.deepEqual(resolveRanges(`bytes=${many}`, 100), { kind: "full" });
  assert.deepEqual(resolveRanges("bytes=1-2,x", 10), { kind: "full" });
});

test("conditionals and multipart ranges from cache", async (t) => {
  const body = Buffer.from("0123456789abcdefghij");
  const { origin, get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain", etag: 'W/"weak1"' });
    res.end(body);
  });
  await get("/o");
  const weakConditional = await get("/o", { "if-none-match": '"weak1"' });
  assert.equal(weakConditional.status, 304);
  assert.match(String(weakConditional.headers["cache-status"]), /^portico; hit/);

  const weakIfRange = await get("/o", { range: "bytes=0-1", "if-range": 'W/"weak1"' });
  assert.equal(weakIfRange.status, 200);
  assert.equal(weakIfRange.body.length, 20);

  const multipart = await get("/o", { range: "bytes=0-1,18-" });
  assert.equal(multipart.status, 206);
  const type = String(multipart.headers["content-type"]);
  const boundary = /boundary=(\w+)$/.exec(type)![1]!;
  const text = multipart.body.toString();
  assert.equal(Number(multipart.headers["content-length"]), multipart.body.length);
  assert.ok(text.includes(`--${boundary}\r\ncontent-type: text/plain\r\ncontent-range: bytes 0-1/20\r\n\r\n01\r\n`), text);
  assert.ok(text.includes(`content-range: bytes 18-19/20\r\n\r\nij\r\n--${boundary}--\r\n`), text);

  const unsatisfiable = await get("/o", { range: "bytes=30-40,50-" });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers["content-range"], "bytes */20");
  assert.equal(origin.hits(), 1);
});

test("security headers policy applies to misses and hits", async (t) => {
  const { get } = await setupDistribution(
    t,
    (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60", "x-frame-options": "DENY", server: "origin/1" });
      res.end("page");
    },
    { defaultBehavior: { ResponseHeadersPolicyId: "67f7725c-6f97-4210-82d7-5512b31e9d03" } },
  );
  for (const response of [await get("/h"), await get("/h")]) {
    assert.equal(response.headers["strict-transport-security"], "max-age=31536000");
    assert.equal(response.headers["x-content-type-options"], "nosniff");
    // Override is false in the managed policy, so the origin's value stays.
    assert.equal(response.headers["x-frame-options"], "DENY");
    assert.equal(response.headers["referrer-policy"], "strict-origin-when-cross-origin");
    assert.equal(response.headers["x-xss-protection"], "1; mode=block");
  }
});

test("custom policy: CORS, override, custom and removed headers", async (t) => {
  const { get } = await setupDistribution(
    t,
    (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60", server: "origin/1", "x-team": "origin" });
      res.end("api");
    },
    { defaultBehavior: { ResponseHeadersPolicyId: "custom-1" } },
    (snapshot) => {
      snapshot.responseHeadersPolicies = {
        "custom-1": {
          Name: "custom",
          CorsConfig: {
            AccessControlAllowOrigins: { Quantity: 1, Items: ["https://app.example"] },
            AccessControlAllowHeaders: { Quantity: 1, Items: ["x-token"] },
            AccessControlAllowMethods: { Quantity: 2, Items: ["GET", "POST"] },
            AccessControlAllowCredentials: true,
            AccessControlMaxAgeSec: 600,
            OriginOverride: true,
          },
          SecurityHeadersConfig: {
            ContentSecurityPolicy: { Override: true, ContentSecurityPolicy: "default-src 'self'" },
            StrictTransportSecurity: { Override: true, AccessControlMaxAgeSec: 63072000, IncludeSubdomains: true, Preload: true },
          },
          CustomHeadersConfig: {
            Quantity: 2,
            Items: [
              { Header: "X-Team", Value: "edge", Override: true },
              { Header: "X-Added", Value: "yes", Override: false },
            ],
          },
          RemoveHeadersConfig: { Quantity: 1, Items: [{ Header: "Server" }] },
        },
      };
    },
  );
  const plain = await get("/api");
  assert.equal(plain.headers["access-control-allow-origin"], undefined);
  assert.equal(plain.headers.server, undefined);
  assert.equal(plain.headers["x-team"], "edge");
  assert.equal(plain.headers["x-added"], "yes");
  assert.equal(plain.headers["content-security-policy"], "default-src 'self'");
  assert.equal(plain.headers["strict-transport-security"], "max-age=63072000; includeSubDomains; preload");

  const cors = await get("/api", { origin: "https://app.example" });
  assert.equal(cors.headers["x-cache"], "Hit from portico");
  assert.equal(cors.headers["access-control-allow-origin"], "https://app.example");
  assert.equal(cors.headers["access-control-allow-credentials"], "true");
  assert.equal(cors.headers["access-control-allow-methods"], undefined);

  const other = await get("/api", { origin: "https://evil.example" });
  assert.equal(other.headers["access-control-allow-origin"], undefined);

  const preflight = await get(
    "/api",
    { origin: "https://app.example", "access-control-request-method": "POST" },
    "OPTIONS",
  );
  // OPTIONS is not an allowed method of this behavior, yet the error keeps no CORS grant.
  assert.equal(preflight.status, 403);
});

test("custom error page replaces the origin error", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (req, res) => {
      if (req.url === "/errors/404.html") {
        res.writeHead(200, { "content-type": "text/html", "cache-control": "max-age=60" });
        res.end("<h1>not here</h1>");
        return;
      }
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("origin 404");
    },
    {},
    (snapshot) => {
      snapshot.config.CustomErrorResponses = {
        Quantity: 1,
        Items: [{ ErrorCode: 404, ResponsePagePath: "/errors/404.html", ResponseCode: "404", ErrorCachingMinTTL: 30 }],
      };
    },
  );
  const first = await get("/missing");
  assert.equal(first.status, 404);
  assert.equal(first.body.toString(), "<h1>not here</h1>");
  // The headers that describe the exchange are those of the error, not of the page's entry.
  assert.equal(first.headers["x-cache"], "Error from portico");
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=404; stored; ttl=30");
  const second = await get("/missing");
  assert.equal(second.status, 404);
  assert.equal(second.body.toString(), "<h1>not here</h1>");
  assert.equal(second.headers["x-cache"], "Error from portico");
  assert.match(String(second.headers["cache-status"]), /^portico; hit; ttl=\d+$/);
  assert.equal(second.headers["content-type"], "text/html");
  // The error is cached for ErrorCachingMinTTL and the page for its own TTL.
  assert.equal(origin.hits("/missing"), 1);
  assert.equal(origin.hits("/errors/404.html"), 1);
});

test("uncached error is replaced by its page", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (req, res) => {
      if (req.url === "/err.html") {
        res.writeHead(200, { "content-type": "text/html" });
        res.end("<h1>error page</h1>");
        return;
      }
      res.writeHead(404, { "content-type": "text/plain" });
      if (req.url === "/streaming") {
        // A body still arriving when the edge discards it.
        res.write("not found, ");
        setTimeout(() => res.end("really"), 200).unref();
        return;
      }
      // A body sent with the head, so undici has all of it before the edge
      // discards it. Destroying a body in that state makes undici emit
      // RequestAbortedError, which ended the process with no listener.
      res.end("not found");
    },
    {},
    (snapshot) => {
      const behavior = snapshot.config.DefaultCacheBehavior!;
      delete behavior.ForwardedValues;
      delete behavior.MinTTL;
      delete behavior.DefaultTTL;
      delete behavior.MaxTTL;
      behavior.CachePolicyId = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad";
      snapshot.config.CustomErrorResponses = {
        Quantity: 1,
        Items: [{ ErrorCode: 404, ResponsePagePath: "/err.html", ResponseCode: "200", ErrorCachingMinTTL: 0 }],
      };
    },
  );
  for (const path of ["/missing", "/streaming"]) {
    for (let round = 0; round < 3; round++) {
      const page = await get(path);
      assert.equal(page.status, 200);
      assert.equal(page.body.toString(), "<h1>error page</h1>");
      assert.equal(page.headers["x-cache"], "Error from portico");
      assert.match(String(page.headers["cache-status"]), /^portico; fwd=bypass; fwd-status=404/);
      const head = await get(path, {}, "HEAD");
      assert.equal(head.status, 200);
    }
    assert.equal(origin.hits(path), 6);
  }
});

test("origin group fails over on configured statuses", async (t) => {
  const { startOrigin } = await import("./helpers.js");
  const secondary = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("from secondary");
  });
  t.after(() => secondary.close());
  const { origin, get } = await setupDistribution(
    t,
    (req, res) => {
      res.writeHead(req.url === "/ok" ? 200 : 503, { "cache-control": "max-age=60" });
      res.end(req.url === "/ok" ? "from primary" : "primary down");
    },
    {},
    (snapshot) => {
      const primaryConfig = snapshot.config.Origins!.Items![0]!;
      snapshot.config.Origins = {
        Quantity: 2,
        Items: [
          primaryConfig,
          {
            ...primaryConfig,
            Id: "origin-2",
            CustomOriginConfig: { ...primaryConfig.CustomOriginConfig!, HTTPPort: secondary.port },
          },
        ],
      };
      snapshot.config.OriginGroups = {
        Quantity: 1,
        Items: [
          {
            Id: "group-1",
            FailoverCriteria: { StatusCodes: { Quantity: 2, Items: [500, 503] } },
            Members: { Quantity: 2, Items: [{ OriginId: "origin-1" }, { OriginId: "origin-2" }] },
          },
        ],
      };
      snapshot.config.DefaultCacheBehavior!.TargetOriginId = "group-1";
    },
  );
  assert.equal((await get("/ok")).body.toString(), "from primary");
  const failed = await get("/fails");
  assert.equal(failed.status, 200);
  assert.equal(failed.body.toString(), "from secondary");
  assert.equal(origin.hits("/fails"), 1);
  assert.equal(secondary.hits("/fails"), 1);
  assert.equal(secondary.hits("/ok"), 0);
});

test("managed CORS-With-Preflight answers preflights", async (t) => {
  const { origin, get } = await setupDistribution(
    t,
    (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60" });
      res.end();
    },
    {
      defaultBehavior: {
        ResponseHeadersPolicyId: "5cc3b908-e619-4b99-88e5-2cf7f45965bd",
        AllowedMethods: { Quantity: 3, Items: ["GET", "HEAD", "OPTIONS"] },
      },
    },
  );
  const preflight = await get(
    "/api",
    { origin: "https://any.example", "access-control-request-method": "PUT" },
    "OPTIONS",
  );
  assert.equal(preflight.status, 200);
  assert.equal(preflight.headers["access-control-allow-origin"], "*");
  assert.equal(preflight.headers["access-control-allow-methods"], "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT");
  assert.equal(preflight.headers["access-control-allow-headers"], "*");
  assert.equal(origin.requests[0]!.method, "OPTIONS");

  const simple = await get("/api", { origin: "https://any.example" });
  assert.equal(simple.headers["access-control-allow-origin"], "*");
  assert.equal(simple.headers["access-control-expose-headers"], "*");
  assert.equal(simple.headers["access-control-allow-methods"], undefined);
});

test("fields the origin's Connection names stay hop-by-hop", async (t) => {
  const { get } = await setupDistribution(t, (req, res) => {
    res.writeHead(200, {
      connection: "X-Internal, keep-alive",
      "x-internal": "secret",
      "x-public": "shown",
      "cache-control": req.url === "/hop-uncached" ? "no-store" : "max-age=60",
      "content-type": "text/plain",
    });
    res.end("body");
  });
  const miss = await get("/hop");
  const hit = await get("/hop");
  const uncached = await get("/hop-uncached");
  for (const response of [miss, hit, uncached]) {
    assert.equal(response.status, 200);
    assert.equal(response.headers["x-internal"], undefined);
    assert.equal(response.headers["x-public"], "shown");
  }
  assert.match(String(hit.headers["x-cache"]), /^Hit/);
});

test("an origin body cut short gets 502", async (t) => {
  const { get } = await setupDistribution(t, (_req, res) => {
    res.writeHead(200, { "content-length": "5000", "cache-control": "max-age=60" });
    res.write(Buffer.alloc(1000, 0x61));
    setTimeout(() => res.destroy(), 50);
  });
  const response = await get("/cut.bin");
  assert.equal(response.status, 502);
  assert.match(String(response.headers["x-cache"]), /^Error/);
  // Nothing of the broken response was stored.
  const again = await get("/cut.bin");
  assert.equal(again.status, 502);
});

test("origin body that stalls gets 504", async (t) => {
  const stalled: Array<import("node:http").ServerResponse> = [];
  t.after(() => {
    for (const res of stalled) res.destroy();
  });
  const { get } = await setupDistribution(
    t,
    (_req, res) => {
      // The head and part of the body arrive, then nothing until the read timeout.
      res.writeHead(200, { "cache-control": "max-age=60", "content-length": "100" });
      res.write("0123456789");
      stalled.push(res);
    },
    {},
    (snapshot) => {
      snapshot.config.Origins!.Items![0]!.CustomOriginConfig!.OriginReadTimeout = 1;
    },
  );
  const response = await get("/stall");
  assert.equal(response.status, 504);
  assert.match(response.body.toString(), /did not respond in time/);
});
