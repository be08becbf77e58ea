import assert from "node:assert/strict";
import { test } from "node:test";
import { customSnapshot, request, sleep, startOrigin, startTestEdge } from "./helpers.js";

async function setup(
  t: import("node:test").TestContext,
  respond: Parameters<typeof startOrigin>[0],
  options: Partial<Parameters<typeof customSnapshot>[0]> = {},
  edgeOptions: Parameters<typeof startTestEdge>[0] = {},
) {
  const origin = await startOrigin(respond);
  t.after(() => origin.close());
  const fixture = await startTestEdge(edgeOptions);
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port, ...options });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
    request(fixture.edge.httpPort, snapshot.domainName, path, { headers, method });
  return { origin, fixture, snapshot, get };
}

test("miss then hit with growing Age", async (t) => {
  const { origin, get, fixture } = await setup(t, (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=60", etag: '"v1"' });
    res.end("hello");
  });
  const first = await get("/a.txt");
  assert.equal(first.status, 200);
  assert.equal(first.headers["x-cache"], "Miss from portico");
  assert.equal(first.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; stored; ttl=60");
  assert.equal(first.headers.via, "1.1 test-edge-1.portico (Portico)");
  assert.equal(first.headers["x-amz-cf-pop"], "test-edge-1");
  assert.match(String(first.headers["x-amz-cf-id"]), /^[0-9A-F]{32}$/);
  assert.equal(first.headers.etag, '"v1"');
  assert.equal(first.body.toString(), "hello");

  const second = await get("/a.txt");
  assert.equal(second.headers["x-cache"], "Hit from portico");
  assert.equal(second.headers.age, "0");
  assert.equal(second.body.toString(), "hello");
  assert.notEqual(second.headers["x-amz-cf-id"], first.headers["x-amz-cf-id"]);

  await sleep(1100);
  const third = await get("/a.txt");
  assert.equal(third.headers["x-cache"], "Hit from portico");
  assert.ok(Number(third.headers.age) >= 1, `age ${String(third.headers.age)}`);
  assert.match(String(third.headers["cache-status"]), /^portico; hit; ttl=5\d$/);
  assert.equal(origin.hits(), 1);

  const records = fixture.metrics.records;
  assert.equal(records.length, 3);
  assert.deepEqual(records.map((r) => r.resultType), ["Miss", "Hit", "Hit"]);
  assert.ok(records[0]!.originLatencyMs !== undefined);
  assert.equal(records[1]!.originLatencyMs, undefined);
  // Headers plus the 5-byte body: more than the body alone.
  assert.ok(records[1]!.bytesDownloaded > 200, `bytes ${records[1]!.bytesDownloaded}`);
  assert.equal(records[1]!.status, 200);
});

test("origin Age counts against the TTL", async (t) => {
  const { origin, get } = await setup(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=100", age: "40" });
    res.end("aged");
  });
  await get("/x");
  const hit = await get("/x");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.equal(hit.headers.age, "40");
  assert.equal(hit.headers["cache-status"], "portico; hit; ttl=60");
  assert.equal(origin.hits(), 1);
});

test("an origin Age past the lifetime is stale at once", async (t) => {
  const { origin, get } = await setup(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=10", age: "30" });
    res.end("old");
  });
  await get("/x");
  const again = await get("/x");
  assert.equal(again.headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits(), 2);
});

test("fifty concurrent misses make one origin request", async (t) => {
  const { origin, get } = await setup(t, async (_req, res) => {
    await sleep(150);
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("collapsed body");
  });
  const responses = await Promise.all(Array.from({ length: 50 }, () => get("/hot")));
  assert.equal(origin.hits(), 1);
  for (const response of responses) {
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "collapsed body");
  }
  const misses = responses.filter((r) => r.headers["x-cache"] === "Miss from portico").length;
  assert.equal(misses, 1);
});

/** Returns an origin handler that resets its first connection and then sends 200. */
function failingOnce(): Parameters<typeof startOrigin>[0] {
  let calls = 0;
  return async (_req, res) => {
    calls++;
    await sleep(100);
    if (calls === 1) {
      res.destroy();
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("recovered");
  };
}

test("waiters of a failed writer get its cached 502", async (t) => {
  const { origin, get } = await setup(t, failingOnce());
  const responses = await Promise.all(Array.from({ length: 10 }, () => get("/flaky")));
  // The origin gave no response, which is cached for the default error caching TTL of 502.
  assert.deepEqual(
    responses.map((r) => r.status),
    Array.from({ length: 10 }, () => 502),
  );
  const statuses = responses.map((r) => String(r.headers["cache-status"])).sort();
  assert.equal(statuses[statuses.length - 1], "portico; fwd=uri-miss; stored; ttl=10; detail=origin-unreachable");
  assert.equal(statuses.filter((value) => value.includes("collapsed")).length, 9);
  assert.equal(origin.hits(), 1);

  const later = await get("/flaky");
  assert.equal(later.status, 502);
  assert.equal(later.headers["x-cache"], "Error from portico");
  assert.match(String(later.headers["cache-status"]), /^portico; hit; ttl=(9|10)$/);
  assert.match(later.body.toString(), /could not connect to the origin/);
  assert.equal(origin.hits(), 1);
});

test("waiters retry without error caching", async (t) => {
  const { origin, get } = await setup(t, failingOnce(), { customErrors: [{ ErrorCode: 502, ErrorCachingMinTTL: 0 }] });
  const responses = await Promise.all(Array.from({ length: 10 }, () => get("/flaky")));
  const statuses = responses.map((r) => r.status).sort();
  assert.equal(statuses.filter((s) => s === 502).length, 1);
  assert.equal(statuses.filter((s) => s === 200).length, 9);
  const failed = responses.find((r) => r.status === 502)!;
  assert.equal(failed.headers["cache-status"], "portico; fwd=uri-miss; detail=origin-unreachable");
  // One failed fetch, then one writer for the nine that waited.
  assert.equal(origin.hits(), 2);
});

test("a failure is cached again once expired", async (t) => {
  let resetting = false;
  const { origin, get } = await setup(
    t,
    async (_req, res) => {
      await sleep(50);
      if (resetting) {
        res.destroy();
        return;
      }
      res.writeHead(200, { "cache-control": "max-age=1, must-revalidate" });
      res.end("strict");
    },
    { customErrors: [{ ErrorCode: 502, ErrorCachingMinTTL: 1 }] },
  );
  const burst = async (): Promise<string[]> => {
    const responses = await Promise.all(Array.from({ length: 10 }, () => get("/r")));
    assert.deepEqual(
      responses.map((r) => r.status),
      Array.from({ length: 10 }, () => 502),
    );
    return responses.map((r) => String(r.headers["cache-status"]));
  };
  assert.equal((await get("/r")).body.toString(), "strict");

  // A must-revalidate copy may not stand in for the failure, which replaces it.
  resetting = true;
  await sleep(1100);
  const first = await burst();
  assert.equal(first.filter((value) => value === "portico; fwd=stale; stored; ttl=1; detail=origin-unreachable").length, 1);
  assert.equal(origin.hits(), 2);

  // The expired failure is replaced by the next one, again with one origin attempt.
  await sleep(1100);
  const second = await burst();
  assert.equal(second.filter((value) => value === "portico; fwd=stale; stored; ttl=1; detail=origin-unreachable").length, 1);
  assert.equal(second.filter((value) => value === "portico; fwd=stale; collapsed; ttl=1; detail=origin-unreachable").length, 9);
  assert.equal(origin.hits(), 3);
});

test("waiters of a 304 report the revalidation", async (t) => {
  const { origin, get } = await setup(t, async (req, res) => {
    await sleep(100);
    res.writeHead(req.headers["if-none-match"] === '"r1"' ? 304 : 200, { "cache-control": "max-age=1", etag: '"r1"' });
    res.end(req.headers["if-none-match"] === '"r1"' ? undefined : "body");
  });
  await get("/r");
  await sleep(1100);
  const responses = await Promise.all(Array.from({ length: 5 }, () => get("/r")));
  for (const response of responses) {
    assert.equal(response.body.toString(), "body");
    assert.equal(response.headers["x-cache"], "RefreshHit from portico");
  }
  const statuses = responses.map((response) => String(response.headers["cache-status"])).sort();
  assert.deepEqual(
    statuses.map((value) => value.replace(/ttl=\d+/, "ttl=N")),
    [...Array.from({ length: 4 }, () => "portico; fwd=stale; fwd-status=304; collapsed; ttl=N"), "portico; fwd=stale; fwd-status=304; ttl=N"],
  );
  assert.equal(origin.hits(), 2);
});

test("a purged copy is not served on errors", async (t) => {
  let failing = false;
  const { get, fixture, snapshot } = await setup(t, async (_req, res) => {
    if (!failing) {
      res.writeHead(200, { "cache-control": "max-age=1" });
      res.end("old");
      return;
    }
    await sleep(400);
    res.destroy();
  });
  assert.equal((await get("/p")).body.toString(), "old");
  await sleep(1100);
  failing = true;

  // The invalidation completes while the fetch for the expired copy waits on the origin.
  const pending = Promise.all(Array.from({ length: 5 }, () => get("/p")));
  await sleep(100);
  const ack = await fixture.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I9", paths: ["/p"] });
  assert.equal(ack.type, "invalidation.completed");
  for (const response of await pending) {
    assert.equal(response.status, 502);
    assert.doesNotMatch(response.body.toString(), /old/);
  }
});

test("invalidation is acknowledged after the purge", async (t) => {
  let version = "one";
  const { origin, get, fixture, snapshot } = await setup(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=600" });
    res.end(version);
  });
  assert.equal((await get("/docs/a.html")).body.toString(), "one");
  assert.equal((await get("/docs/b%20c.html")).body.toString(), "one");
  assert.equal((await get("/other.html")).body.toString(), "one");
  assert.equal((await get("/docs/a.html")).headers["x-cache"], "Hit from portico");
  version = "two";

  const ack = await fixture.publishAndWait({
    type: "invalidation.created",
    distributionId: snapshot.id,
    invalidationId: "I1",
    paths: ["/docs/*"],
  });
  assert.deepEqual(ack, {
    type: "invalidation.completed",
    edgeId: "test-edge-1",
    distributionId: snapshot.id,
    invalidationId: "I1",
  });
  const after = await get("/docs/a.html");
  assert.equal(after.headers["x-cache"], "Miss from portico");
  assert.equal(after.body.toString(), "two");
  assert.equal((await get("/docs/b%20c.html")).body.toString(), "two");
  const untouched = await get("/other.html");
  assert.equal(untouched.headers["x-cache"], "Hit from portico");
  assert.equal(untouched.body.toString(), "one");

  await fixture.publishAndWait({
    type: "invalidation.created",
    distributionId: snapshot.id,
    invalidationId: "I2",
    paths: ["/other.html"],
  });
  assert.equal((await get("/other.html")).body.toString(), "two");
  assert.equal(origin.hits(), 6);
});

test("TTL rules follow MinTTL, DefaultTTL and MaxTTL", async (t) => {
  const { origin, get } = await setup(
    t,
    (req, res) => {
      const headers: Record<string, string> = {};
      if (req.url === "/no-store") headers["cache-control"] = "no-store";
      if (req.url === "/private") headers["cache-control"] = "private, max-age=600";
      if (req.url === "/zero") headers["cache-control"] = "max-age=0";
      if (req.url === "/expires") headers.expires = new Date(Date.now() + 600_000).toUTCString();
      if (req.url === "/expired") headers.expires = "0";
      if (req.url === "/missing") {
        res.writeHead(404, { "content-type": "text/plain" });
        res.end("missing");
        return;
      }
      if (req.url === "/teapot") {
        res.writeHead(418);
        res.end("teapot");
        return;
      }
      res.writeHead(200, headers);
      res.end(req.url);
    },
    { defaultBehavior: { MinTTL: 0, DefaultTTL: 30, MaxTTL: 120 } },
  );

  for (const path of ["/no-store", "/private", "/zero", "/expired", "/teapot"]) {
    await get(path);
    const again = await get(path);
    assert.notEqual(again.headers["x-cache"], "Hit from portico", path);
    assert.equal(origin.hits(path), 2, path);
  }

  await get("/plain");
  const plain = await get("/plain");
  assert.equal(plain.headers["x-cache"], "Hit from portico");
  assert.equal(plain.headers["cache-status"], "portico; hit; ttl=30");

  await get("/expires");
  const expires = await get("/expires");
  // Expires ten minutes away is clamped to MaxTTL.
  assert.match(String(expires.headers["cache-status"]), /^portico; hit; ttl=1(19|20)$/);

  await get("/missing");
  const missing = await get("/missing");
  assert.equal(missing.status, 404);
  assert.equal(missing.headers["x-cache"], "Error from portico");
  assert.equal(missing.headers["cache-status"], "portico; hit; ttl=10");
  assert.equal(origin.hits("/missing"), 1);
});

test("MinTTL above zero overrides origin no-store", async (t) => {
  const { origin, get } = await setup(
    t,
    (_req, res) => {
      res.writeHead(200, { "cache-control": "no-store" });
      res.end("forced");
    },
    { defaultBehavior: { MinTTL: 5, DefaultTTL: 30, MaxTTL: 120 } },
  );
  await get("/f");
  const hit = await get("/f");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.equal(hit.headers["cache-status"], "portico; hit; ttl=5");
  assert.equal(origin.hits(), 1);
});

test("stale entry is revalidated with a 304", async (t) => {
  const { origin, get } = await setup(t, (req, res) => {
    if (req.headers["if-none-match"] === '"abc"') {
      res.writeHead(304, { etag: '"abc"', "cache-control": "max-age=60" });
      res.end();
      return;
    }
    res.writeHead(200, { etag: '"abc"', "cache-control": "max-age=1", "content-type": "text/css" });
    res.end("body{}");
  });
  await get("/s.css");
  await sleep(1100);
  const refreshed = await get("/s.css");
  assert.equal(refreshed.headers["x-cache"], "RefreshHit from portico");
  assert.equal(refreshed.body.toString(), "body{}");
  assert.equal(refreshed.headers["content-type"], "text/css");
  assert.equal(origin.requests[1]!.headers["if-none-match"], '"abc"');
  const hit = await get("/s.css");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.equal(hit.headers["cache-control"], "max-age=60");
  assert.equal(origin.hits(), 2);
});

test("viewer conditionals get 304 from cache", async (t) => {
  const lastModified = new Date(Date.now() - 3600_000).toUTCString();
  const { origin, get } = await setup(t, (_req, res) => {
    res.writeHead(200, { etag: '"e1"', "last-modified": lastModified, "cache-control": "max-age=60" });
    res.end("content");
  });
  await get("/c");
  const byTag = await get("/c", { "if-none-match": 'W/"e1"' });
  assert.equal(byTag.status, 304);
  assert.equal(byTag.body.length, 0);
  assert.equal(byTag.headers.etag, '"e1"');
  const otherTag = await get("/c", { "if-none-match": '"e2"' });
  assert.equal(otherTag.status, 200);
  const byDate = await get("/c", { "if-modified-since": new Date().toUTCString() });
  assert.equal(byDate.status, 304);
  const olderDate = await get("/c", { "if-modified-since": new Date(Date.now() - 7200_000).toUTCString() });
  assert.equal(olderDate.status, 200);
  assert.equal(origin.hits(), 1);
});

test("range requests are served from the whole object", async (t) => {
  const body = Buffer.from("0123456789abcdefghij");
  const { origin, get } = await setup(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
    res.end(body);
  });
  const first = await get("/r.bin", { range: "bytes=2-5" });
  assert.equal(first.status, 206);
  assert.equal(first.body.toString(), "2345");
  assert.equal(first.headers["content-range"], "bytes 2-5/20");
  // The edge requests the first slice. This origin ignores Range and sends the whole object, which is stored.
  assert.match(String(origin.requests[0]!.headers.range), /^bytes=0-\d+$/);

  const suffix = await get("/r.bin", { range: "bytes=-3" });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.body.toString(), "hij");
  assert.equal(suffix.headers["x-cache"], "Hit from portico");

  const open = await get("/r.bin", { range: "bytes=15-" });
  assert.equal(open.body.toString(), "fghij");

  const unsatisfiable = await get("/r.bin", { range: "bytes=50-60" });
  assert.equal(unsatisfiable.status, 416);
  assert.equal(unsatisfiable.headers["content-range"], "bytes */20");

  const multiple = await get("/r.bin", { range: "bytes=0-1,4-5" });
  assert.equal(multiple.status, 206);
  assert.match(String(multiple.headers["content-type"]), /^multipart\/byteranges; boundary=/);
  assert.equal(origin.hits(), 1);
});

test("bodies over the object bound stream without being cached", async (t) => {
  const big = Buffer.alloc(300_000, 7);
  const { origin, get } = await setup(
    t,
    (req, res) => {
      if (req.url === "/chunked") {
        res.writeHead(200, { "cache-control": "max-age=60" });
        res.write(big.subarray(0, 100_000));
        res.end(big.subarray(100_000));
        return;
      }
      res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(big.length) });
      res.end(big);
    },
    {},
    { memoryCacheBytes: 1024 * 1024 },
  );
  for (const path of ["/big", "/chunked"]) {
    const first = await get(path);
    assert.equal(first.status, 200);
    assert.ok(first.body.equals(big), path);
    assert.match(String(first.headers["cache-status"]), /detail=too-large/);
    const second = await get(path);
    assert.equal(second.headers["x-cache"], "Miss from portico");
    assert.equal(origin.hits(path), 2, path);
  }
  const ranged = await get("/big", { range: "bytes=299990-" });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.body.length, 10);
});

test("viewer leaving releases the origin body", async (t) => {
  // Each body is far larger than the socket buffers, so an origin response
  // ends early only when the edge destroys its body.
  const totalBytes = 32 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 7);
  const closedEarly: string[] = [];
  const { fixture, snapshot } = await setup(
    t,
    async (req, res) => {
      res.on("close", () => {
        if (!res.writableFinished) closedEarly.push(req.url ?? "");
      });
      const headers: Record<string, string> = { "cache-control": "max-age=60" };
      if (req.url === "/sized") headers["content-length"] = String(totalBytes);
      res.writeHead(200, headers);
      for (let sent = 0; sent < totalBytes && !res.destroyed; sent += chunk.length) {
        if (res.write(chunk)) continue;
        await new Promise<void>((resolve) => {
          const resume = (): void => {
            res.off("drain", resume).off("close", resume);
            resolve();
          };
          res.on("drain", resume).on("close", resume);
        });
      }
      res.end();
    },
    {},
    { memoryCacheBytes: 1024 * 1024 },
  );
  const { connect } = await import("node:net");
  const leave = (path: string, extraHeaders: string) =>
    new Promise<void>((resolve) => {
      const socket = connect(fixture.edge.httpPort, "127.0.0.1", () => {
        socket.write(`GET ${path} HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n${extraHeaders}\r\n`);
      });
      socket.on("data", () => socket.destroy());
      socket.on("error", () => {});
      socket.on("close", () => resolve());
    });
  // A chunked body past the object bound is replayed from its first bytes. A
  // sized one past it streams, sliced here to a range.
  await leave("/chunked", "");
  await leave("/sized", "Range: bytes=0-20000000\r\n");
  const deadline = Date.now() + 5_000;
  while (closedEarly.length < 2 && Date.now() < deadline) await sleep(20);
  assert.deepEqual(closedEarly.sort(), ["/chunked", "/sized"]);
});

test("HEAD is answered from a GET and shares its entry", async (t) => {
  const { origin, get } = await setup(t, (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("twelve bytes");
  });
  const head = await get("/h", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], "12");
  assert.equal(head.body.length, 0);
  const body = await get("/h");
  assert.equal(body.headers["x-cache"], "Hit from portico");
  assert.equal(body.body.toString(), "twelve bytes");
  assert.equal(origin.requests[0]!.method, "GET");
  assert.equal(origin.hits(), 1);
});
