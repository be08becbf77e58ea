import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DiskTier, type DiskMetadata } from "../../src/cache/disk.js";
import { headLength } from "../../src/cache/disk-format.js";
import { silentLogger } from "../../src/common/logger.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { DistributionSnapshot, EdgeAck } from "../../src/cluster/types.js";
import { startEdge, type Edge } from "../../src/edge/index.js";
import {
  CollectingSink,
  customSnapshot,
  request,
  respondSlowly,
  respondToRange,
  serveWithRanges,
  sleep,
  startOrigin,
  ZONE,
  type Served,
} from "./helpers.js";

function metadataFor(key: string, bodyBytes: number, distributionId = "E1"): DiskMetadata {
  return {
    key,
    primaryKey: key,
    varyNames: [],
    distributionId,
    invalidationPaths: [`/${key}`],
    status: 200,
    originHeaders: ["content-type", "text/plain"],
    responseAtMs: Date.now(),
    initialAgeSeconds: 0,
    ttlSeconds: 60,
    staleAtMs: Date.now() + 60_000,
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: null,
    mustRevalidate: false,
    bodyBytes,
    storedAtMs: Date.now(),
  };
}

async function tempDir(t: TestContext): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), "portico-disk-"));
  // Hooks run in the order they were added, so this removal runs before the test's edges
  // close, while their last disk writes may still add files. Retrying rides that out.
  t.after(() => rm(directory, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 }));
  return directory;
}

async function listObjectFiles(directory: string): Promise<string[]> {
  const files: string[] = [];
  for (const shard of await readdir(join(directory, "objects"))) {
    for (const name of await readdir(join(directory, "objects", shard))) files.push(join(directory, "objects", shard, name));
  }
  return files;
}

test("disk tier writes, verifies and reopens", async (t) => {
  const directory = await tempDir(t);
  const log = silentLogger();
  const tier = await DiskTier.open({ directory, capacityBytes: 1024 * 1024, log });
  assert.ok(await tier.write(metadataFor("a", 5), Buffer.from("alpha")));
  assert.ok(await tier.write(metadataFor("b", 4), Buffer.from("beta")));
  assert.equal((await tier.read("a"))!.body.toString(), "alpha");
  await writeFile(join(directory, "tmp", "leftover.tmp"), "partial");

  const reopened = await DiskTier.open({ directory, capacityBytes: 1024 * 1024, log });
  assert.equal(reopened.entryCount, 2);
  assert.equal((await reopened.read("b"))!.body.toString(), "beta");
  assert.deepEqual(await readdir(join(directory, "tmp")), []);

  // Flip one body byte of every file: each read is then a miss and the file goes.
  for (const path of await listObjectFiles(directory)) {
    const bytes = await readFile(path);
    bytes[bytes.length - 40] = bytes[bytes.length - 40]! ^ 0xff;
    await writeFile(path, bytes);
  }
  assert.equal(await reopened.read("a"), undefined);
  assert.equal(reopened.has("a"), false);
  assert.equal((await listObjectFiles(directory)).length, 1);
});

test("disk tier stays within its byte budget", async (t) => {
  const directory = await tempDir(t);
  const capacityBytes = 64 * 1024;
  const tier = await DiskTier.open({ directory, capacityBytes, log: silentLogger() });
  let seed = 11;
  for (let i = 0; i < 200; i++) {
    seed = (seed * 48_271) % 2_147_483_647;
    const size = seed % 6000;
    await tier.write(metadataFor(`k${i % 50}`, size), Buffer.alloc(size, i));
    assert.ok(tier.usedBytes <= capacityBytes, `write ${i}: ${tier.usedBytes}`);
  }
  await sleep(50);
  assert.equal((await listObjectFiles(directory)).length, tier.entryCount);
  assert.equal(await tier.write(metadataFor("huge", capacityBytes), Buffer.alloc(capacityBytes)), false);
});

test("disk budget counts streamed writes", async (t) => {
  const directory = await tempDir(t);
  const capacityBytes = 64 * 1024;
  const tier = await DiskTier.open({ directory, capacityBytes, log: silentLogger() });
  const bodyBytes = 25_000;
  const first = tier.tee(metadataFor("first", bodyBytes));
  const second = tier.tee(metadataFor("second", bodyBytes));
  assert.ok(first !== undefined);
  assert.ok(second !== undefined);
  // Two writes in progress leave no room for a third of the same size, so it is not started.
  assert.equal(tier.tee(metadataFor("third", bodyBytes)), undefined);
  assert.ok(tier.reservedBytes > 2 * bodyBytes);
  assert.ok(tier.reservedBytes <= capacityBytes);

  // A write that ends short gives its reservation back, and the next one fits.
  first.tap.resume();
  first.tap.end(Buffer.alloc(bodyBytes - 1, 1));
  assert.equal(await first.stored, false);
  const third = tier.tee(metadataFor("third", bodyBytes));
  assert.ok(third !== undefined);
  for (const { tap, stored } of [second, third]) {
    tap.resume();
    tap.end(Buffer.alloc(bodyBytes, 2));
    assert.equal(await stored, true);
  }
  assert.equal(tier.reservedBytes, 0);
  assert.equal(tier.entryCount, 2);
  assert.ok(tier.usedBytes <= capacityBytes);

  // A new write evicts stored entries to make room before it starts.
  const fourth = tier.tee(metadataFor("fourth", bodyBytes));
  assert.ok(fourth !== undefined);
  assert.ok(tier.usedBytes + tier.reservedBytes <= capacityBytes);
  assert.equal(tier.entryCount, 1);
  fourth.tap.resume();
  fourth.tap.end(Buffer.alloc(bodyBytes, 3));
  assert.equal(await fourth.stored, true);
  assert.ok(tier.usedBytes <= capacityBytes);
});

test("older disk write loses", async (t) => {
  const directory = await tempDir(t);
  const tier = await DiskTier.open({ directory, capacityBytes: 1024 * 1024, log: silentLogger() });
  const bodyBytes = 20_000;
  // A fetch that began first, as one a purge overtook, ends after the fetch that began after it.
  const older = tier.tee({ ...metadataFor("k", bodyBytes), storedAtMs: Date.now() - 5_000 });
  const newer = tier.tee(metadataFor("k", bodyBytes));
  assert.ok(older !== undefined);
  assert.ok(newer !== undefined);
  newer.tap.resume();
  newer.tap.end(Buffer.alloc(bodyBytes, 2));
  assert.equal(await newer.stored, true);
  older.tap.resume();
  older.tap.end(Buffer.alloc(bodyBytes, 1));
  assert.equal(await older.stored, false);
  assert.ok((await tier.read("k"))!.body.equals(Buffer.alloc(bodyBytes, 2)));
  assert.equal(tier.reservedBytes, 0);
  assert.equal((await listObjectFiles(directory)).length, 1);
  assert.deepEqual(await readdir(join(directory, "tmp")), []);

  // Whole writes follow the same rule.
  assert.equal(await tier.write(metadataFor("k", 10), Buffer.alloc(10, 4)), true);
  assert.equal(await tier.write({ ...metadataFor("k", 10), storedAtMs: Date.now() - 1_000 }, Buffer.alloc(10, 3)), false);
  assert.ok((await tier.read("k"))!.body.equals(Buffer.alloc(10, 4)));
});

interface DiskEdge {
  edge: Edge;
  publishAndWait(message: Parameters<EmbeddedBus["publish"]>[0]): Promise<EdgeAck>;
}

async function startDiskEdge(dataDir: string, snapshot: DistributionSnapshot): Promise<DiskEdge> {
  const bus = new EmbeddedBus(silentLogger());
  const waiters: Array<(ack: EdgeAck) => void> = [];
  bus.onAck((ack) => {
    for (const waiter of waiters.splice(0)) waiter(ack);
  });
  const edge = await startEdge({
    edgeId: "disk-edge",
    dataDir,
    zone: ZONE,
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    bus,
    metrics: new CollectingSink(),
    s3Endpoint: "http://127.0.0.1:1",
    serviceCredentials: { accessKeyId: "ASIATESTSERVICEKEY01", secretAccessKey: "service-secret-for-tests-only-0000000000" },
    // 64 KiB of memory caps objects held in memory at 8 KiB.
    memoryCacheBytes: 64 * 1024,
    diskCacheBytes: 8 * 1024 * 1024,
    log: silentLogger(),
  });
  const publishAndWait = async (message: Parameters<EmbeddedBus["publish"]>[0]) => {
    const acked = new Promise<EdgeAck>((resolve) => waiters.push(resolve));
    await bus.publish(message);
    return acked;
  };
  await publishAndWait({ type: "distribution.updated", snapshot });
  return { edge, publishAndWait };
}

/** Serves `origin` through a disk edge; closes both when the test ends. */
async function diskDistribution(
  t: TestContext,
  dataDir: string,
  origin: Awaited<ReturnType<typeof startOrigin>>,
  options: Omit<Parameters<typeof customSnapshot>[0], "originPort"> = {},
) {
  t.after(() => origin.close());
  const snapshot = customSnapshot({ ...options, originPort: origin.port });
  const edge = await startDiskEdge(dataDir, snapshot);
  t.after(() => edge.edge.close());
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
    request(edge.edge.httpPort, snapshot.domainName, path, { headers, method });
  return { snapshot, edge, get };
}

test("disk entries survive a restart and are revalidated first", async (t) => {
  const dataDir = await tempDir(t);
  let etag = '"v1"';
  const origin = await startOrigin((req, res) => {
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag, "cache-control": "max-age=600" });
      res.end();
      return;
    }
    res.writeHead(200, { etag, "cache-control": "max-age=600", "content-type": "text/plain" });
    res.end(`body ${etag}`);
  });
  t.after(() => origin.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  const get = (edge: Edge, path: string) => request(edge.httpPort, snapshot.domainName, path);

  const first = await startDiskEdge(dataDir, snapshot);
  assert.equal((await get(first.edge, "/kept")).body.toString(), 'body "v1"');
  assert.equal((await get(first.edge, "/changed")).body.toString(), 'body "v1"');
  await first.edge.close();

  const second = await startDiskEdge(dataDir, snapshot);
  t.after(() => second.edge.close());
  const confirmed = await get(second.edge, "/kept");
  assert.equal(confirmed.body.toString(), 'body "v1"');
  assert.equal(confirmed.headers["x-cache"], "RefreshHit from portico");
  assert.equal(origin.requests.at(-1)!.headers["if-none-match"], '"v1"');

  // An origin change while the edge was down, as after a missed invalidation.
  etag = '"v2"';
  const changed = await get(second.edge, "/changed");
  assert.equal(changed.body.toString(), 'body "v2"');
  assert.equal(origin.hits("/changed"), 2);
  const hit = await get(second.edge, "/kept");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits("/kept"), 2);
});

test("large objects stream through to disk and serve from it", async (t) => {
  const dataDir = await tempDir(t);
  const large = Buffer.alloc(200 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 31) % 251;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, {
      "cache-control": "max-age=600",
      "content-type": "application/octet-stream",
      "content-length": String(large.length),
      etag: '"big"',
    });
    res.end(large);
  });
  const { snapshot, edge, get } = await diskDistribution(t, dataDir, origin);

  const first = await get("/big.bin");
  assert.match(String(first.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=200; stored; ttl=600; detail=streamed-to-disk$/);
  assert.ok(first.body.equals(large));
  await sleep(200);

  const second = await get("/big.bin");
  assert.equal(second.headers["x-cache"], "Hit from portico");
  assert.ok(second.body.equals(large));
  const ranged = await get("/big.bin", { range: "bytes=100000-100009" });
  assert.equal(ranged.status, 206);
  assert.ok(ranged.body.equals(large.subarray(100_000, 100_010)));

  // Several ranges of a disk hit make one multipart/byteranges body, as a memory hit does.
  const multi = await get("/big.bin", { range: "bytes=0-1,4-5,-3" });
  assert.equal(multi.status, 206);
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(String(multi.headers["content-type"]))?.[1];
  assert.ok(boundary !== undefined, String(multi.headers["content-type"]));
  assert.equal(Number(multi.headers["content-length"]), multi.body.length);
  const size = large.length;
  const expected = Buffer.concat([
    ...[
      [0, 1],
      [4, 5],
      [size - 3, size - 1],
    ].flatMap(([start, end]) => [
      Buffer.from(`\r\n--${boundary}\r\ncontent-type: application/octet-stream\r\ncontent-range: bytes ${start}-${end}/${size}\r\n\r\n`),
      large.subarray(start!, end! + 1),
    ]),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  assert.ok(multi.body.equals(expected), multi.body.toString("latin1"));
  assert.equal(origin.hits(), 1);

  // A corrupt file fails verification; the entry is removed and fetched again. The viewer of
  // the corrupt read never gets the whole body: its response ends short.
  for (const path of await listObjectFiles(join(dataDir, "cache", "disk-edge"))) {
    const bytes = await readFile(path);
    bytes[bytes.length - 1000] = bytes[bytes.length - 1000]! ^ 0xff;
    await writeFile(path, bytes);
  }
  const corruptBytes = await get("/big.bin").then(
    (response) => response.body.length,
    () => -1,
  );
  assert.ok(corruptBytes < large.length, `${corruptBytes} bytes of a corrupt entry arrived`);
  await sleep(100);
  const refetched = await get("/big.bin");
  assert.ok(refetched.body.equals(large));
  assert.equal(origin.hits(), 2);

  // A range read checks the blocks it reads: a corrupt byte inside the range fails the response
  // before any byte of its block goes out, and the entry is fetched again.
  await sleep(200);
  for (const path of await listObjectFiles(join(dataDir, "cache", "disk-edge"))) {
    const bytes = await readFile(path);
    const bodyOffset = headLength(bytes)!;
    bytes[bodyOffset + 100_004] = bytes[bodyOffset + 100_004]! ^ 0x01;
    await writeFile(path, bytes);
  }
  const corruptRange = await get("/big.bin", { range: "bytes=100000-100009" }).then(
    (response) => response.body,
    () => Buffer.alloc(0),
  );
  assert.equal(corruptRange.length, 0, "bytes of a corrupt block arrived");
  await sleep(100);
  const rangeAfter = await get("/big.bin", { range: "bytes=100000-100009" });
  assert.equal(rangeAfter.status, 206);
  assert.ok(rangeAfter.body.equals(large.subarray(100_000, 100_010)));
  assert.equal(origin.hits(), 3);

  await sleep(200);
  const ack = await edge.publishAndWait({
    type: "invalidation.created",
    distributionId: snapshot.id,
    invalidationId: "I1",
    paths: ["/big*"],
  });
  assert.equal(ack.type, "invalidation.completed");
  assert.deepEqual(await listObjectFiles(join(dataDir, "cache", "disk-edge")), []);
  const afterPurge = await get("/big.bin");
  assert.match(String(afterPurge.headers["cache-status"]), /fwd=uri-miss/);
  assert.equal(origin.hits(), 4);
});

test("large object replaces a stored error", async (t) => {
  const dataDir = await tempDir(t);
  const large = Buffer.alloc(200 * 1024, 4);
  let down = true;
  const origin = await startOrigin((_req, res) => {
    if (down) {
      res.writeHead(503, { "cache-control": "max-age=1", "content-type": "text/plain" });
      res.end("down");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=600", "content-length": String(large.length) });
    res.end(large);
  });
  const { get } = await diskDistribution(t, dataDir, origin, { customErrors: [{ ErrorCode: 503, ErrorCachingMinTTL: 1 }] });
  assert.equal((await get("/back.bin")).status, 503);
  await sleep(1100);
  down = false;

  // The expired error in memory gives way to the object on disk: one fetch, then hits.
  const fetched = await get("/back.bin");
  assert.ok(fetched.body.equals(large));
  assert.match(String(fetched.headers["cache-status"]), /detail=streamed-to-disk$/);
  await sleep(200);
  for (let i = 0; i < 3; i++) {
    const hit = await get("/back.bin");
    assert.ok(hit.body.equals(large));
    assert.equal(hit.headers["x-cache"], "Hit from portico");
  }
  assert.equal(origin.hits("/back.bin"), 2);
});

test("conditional miss of a large object gets 304", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(300 * 1024);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, {
      "cache-control": "max-age=600",
      "content-length": String(large.length),
      etag: '"big-v1"',
      "last-modified": "Tue, 01 Dec 2026 10:00:00 GMT",
    });
    res.end(large);
  });
  const { get } = await diskDistribution(t, dataDir, origin);

  // The viewer that has the object gets no body, while the fetch still fills the disk tier.
  const first = await get("/big.bin", { "if-none-match": '"big-v1"' });
  assert.equal(first.status, 304);
  assert.equal(first.body.length, 0);
  assert.equal(first.headers.etag, '"big-v1"');
  assert.equal(first.headers["content-length"], undefined);
  assert.equal(first.headers["x-cache"], "Miss from portico");
  const byDate = await get("/other.bin", { "if-modified-since": "Wed, 02 Dec 2026 10:00:00 GMT" });
  assert.equal(byDate.status, 304);
  const mismatch = await get("/third.bin", { "if-none-match": '"big-v0"' });
  assert.equal(mismatch.status, 200);
  assert.ok(mismatch.body.equals(large));

  await sleep(200);
  const hit = await get("/big.bin");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.ok(hit.body.equals(large));
  assert.equal(origin.hits(), 3);
});

test("304 of another version refetches", async (t) => {
  const dataDir = await tempDir(t);
  // Below the memory tier's 8 KiB object limit, and above it.
  const bodies = { "/small.bin": [randomBytes(1024), randomBytes(1024)], "/large.bin": [randomBytes(200 * 1024), randomBytes(200 * 1024)] };
  let version = 0;
  const origin = await startOrigin((req, res) => {
    const headers = { "cache-control": "max-age=1" };
    if (req.headers["if-none-match"] !== undefined) {
      // The origin confirms a version other than the one the edge holds.
      res.writeHead(304, { ...headers, etag: '"other"' });
      res.end();
      return;
    }
    const body = bodies[req.url as keyof typeof bodies][version]!;
    res.writeHead(200, { ...headers, etag: `"v${version}"`, "content-length": String(body.length) });
    res.end(body);
  });
  const { get } = await diskDistribution(t, dataDir, origin);
  for (const path of Object.keys(bodies) as Array<keyof typeof bodies>) {
    assert.ok((await get(path)).body.equals(bodies[path][0]!));
  }
  version = 1;
  await sleep(1200);

  for (const path of Object.keys(bodies) as Array<keyof typeof bodies>) {
    const refetched = await get(path);
    assert.equal(refetched.status, 200);
    assert.ok(refetched.body.equals(bodies[path][1]!), `${path} is the origin's new version`);
    assert.equal(refetched.headers.etag, '"v1"');
    const sent = origin.requests.filter((seen) => seen.url === path).map((seen) => seen.headers["if-none-match"]);
    assert.deepEqual(sent, [undefined, '"v0"', undefined]);
  }

  // A HEAD stores nothing in place of the copy that such a 304 discards, and the next HEAD
  // sends no conditional request for it.
  await sleep(1200);
  const before = origin.requests.length;
  for (let i = 0; i < 2; i++) {
    const head = await get("/large.bin", {}, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String(bodies["/large.bin"][1]!.length));
  }
  const conditional = origin.requests.slice(before).filter((seen) => seen.headers["if-none-match"] !== undefined);
  assert.equal(conditional.length, 1);
});

test("purge during disk revalidation refetches", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(200 * 1024);
  const origin = await startOrigin(async (req, res) => {
    const headers = { "cache-control": "max-age=1", etag: '"d1"' };
    if (req.headers["if-none-match"] === '"d1"') {
      await sleep(400);
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": String(large.length) });
    res.end(large);
  });
  const { get, edge, snapshot } = await diskDistribution(t, dataDir, origin);
  assert.ok((await get("/big.bin")).body.equals(large));
  await sleep(1200);

  // The invalidation removes the file while the origin's 304 is on its way.
  const revalidated = get("/big.bin");
  await sleep(150);
  await edge.publishAndWait({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I-during", paths: ["/big.bin"] });
  const response = await revalidated;
  assert.equal(response.status, 200);
  assert.ok(response.body.equals(large), `a body of ${response.body.length} bytes`);
  assert.deepEqual(
    origin.requests.map((seen) => seen.headers["if-none-match"]),
    [undefined, '"d1"', undefined],
  );
});

test("concurrent requests share a disk revalidation", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(200 * 1024);
  let mode: "ok" | "not-modified" | "reset" = "ok";
  const origin = await startOrigin(async (_req, res) => {
    await sleep(200);
    if (mode === "reset") {
      res.destroy();
      return;
    }
    const headers = { "cache-control": "max-age=1", etag: '"d1"' };
    if (mode === "not-modified") {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": String(large.length) });
    res.end(large);
  });
  const { get } = await diskDistribution(t, dataDir, origin);
  assert.ok((await get("/big.bin")).body.equals(large));
  const burst = async (): Promise<Array<Awaited<ReturnType<typeof get>>>> => {
    const responses = await Promise.all(Array.from({ length: 10 }, () => get("/big.bin")));
    for (const response of responses) assert.ok(response.body.equals(large));
    return responses;
  };

  // One 304 refreshes the file for all ten.
  mode = "not-modified";
  await sleep(1200);
  const refreshed = await burst();
  assert.equal(origin.hits(), 2);
  for (const response of refreshed) {
    assert.equal(response.headers["x-cache"], "RefreshHit from portico");
    assert.match(String(response.headers["cache-status"]), /^portico; fwd=stale; fwd-status=304; (collapsed; )?ttl=\d+$/);
  }
  assert.equal(refreshed.filter((response) => String(response.headers["cache-status"]).includes("collapsed")).length, 9);

  // One failed fetch: all ten get the stale file, which stays in use for the error caching TTL.
  mode = "reset";
  await sleep(1200);
  const served = await burst();
  assert.equal(origin.hits(), 3);
  for (const response of served) assert.match(String(response.headers["cache-status"]), /detail=stale-if-error$/);
  await burst();
  assert.equal(origin.hits(), 3);
});

test("stale disk entries revalidate and serve stale", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(200 * 1024);
  let failing = false;
  const origin = await startOrigin((req, res) => {
    if (failing) {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("down");
      return;
    }
    if (req.headers["if-none-match"] === '"v1"') {
      // The 304 extends the entry's lifetime.
      res.writeHead(304, { etag: '"v1"', "cache-control": "max-age=600", "x-refreshed": "yes" });
      res.end();
      return;
    }
    res.writeHead(200, {
      "cache-control": "max-age=1",
      "content-type": "application/octet-stream",
      "content-length": String(large.length),
      etag: '"v1"',
    });
    res.end(large);
  });
  t.after(() => origin.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  const edge = await startDiskEdge(dataDir, snapshot);
  t.after(() => edge.edge.close());
  const get = (path: string) => request(edge.edge.httpPort, snapshot.domainName, path);

  await get("/revalidated.bin");
  await get("/served-stale.bin");
  await sleep(1200);

  const revalidated = await get("/revalidated.bin");
  assert.equal(revalidated.status, 200);
  assert.ok(revalidated.body.equals(large));
  assert.match(String(revalidated.headers["cache-status"]), /^portico; fwd=stale; fwd-status=304; ttl=\d+$/);
  assert.equal(revalidated.headers["x-refreshed"], "yes", "the 304's headers are merged in");
  const conditional = origin.requests.filter((seen) => seen.url === "/revalidated.bin").at(-1)!;
  assert.equal(conditional.headers["if-none-match"], '"v1"');
  const fresh = await get("/revalidated.bin");
  assert.match(String(fresh.headers["cache-status"]), /^portico; hit; ttl=\d+$/);
  assert.ok(fresh.body.equals(large));
  assert.equal(origin.hits("/revalidated.bin"), 2);

  // The origin fails: the stale copy is served, and stays in use for the error caching TTL.
  failing = true;
  const stale = await get("/served-stale.bin");
  assert.equal(stale.status, 200);
  assert.ok(stale.body.equals(large));
  assert.match(String(stale.headers["cache-status"]), /^portico; fwd=stale; fwd-status=503; ttl=-?\d+; detail=stale-if-error$/);
  const servedAgain = await get("/served-stale.bin");
  assert.ok(servedAgain.body.equals(large));
  assert.equal(servedAgain.headers["x-cache"], "Hit from portico");
  assert.equal(origin.hits("/served-stale.bin"), 2);
});

test("large misses share one disk fill", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(300 * 1024);
  let failNext = false;
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, {
      "cache-control": "max-age=600",
      "content-type": "application/octet-stream",
      "content-length": String(large.length),
    });
    // The body arrives in slices over about half a second, so later misses find the write running.
    const failing = failNext;
    let sent = 0;
    const timer = setInterval(() => {
      if (failing && sent >= large.length / 2) {
        clearInterval(timer);
        res.destroy();
        return;
      }
      const slice = large.subarray(sent, sent + 32 * 1024);
      sent += slice.length;
      if (sent >= large.length) {
        clearInterval(timer);
        res.end(slice);
      } else {
        res.write(slice);
      }
    }, 50);
  });
  t.after(() => origin.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  const edge = await startDiskEdge(dataDir, snapshot);
  t.after(() => edge.edge.close());
  const get = (path: string, method = "GET") => request(edge.edge.httpPort, snapshot.domainName, path, { method });

  // Misses that arrive together, and one that arrives while the object is half written.
  const together = [get("/grow.bin"), get("/grow.bin"), get("/grow.bin")];
  await sleep(250);
  const later = [get("/grow.bin"), get("/grow.bin", "HEAD")];
  const responses = await Promise.all([...together, ...later]);
  assert.equal(origin.hits("/grow.bin"), 1);
  for (const response of responses.slice(0, 4)) {
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(large), "every viewer gets the whole body");
  }
  const followers = responses.filter((response) => /collapsed/.test(String(response.headers["cache-status"])));
  assert.equal(followers.length, 4, responses.map((response) => response.headers["cache-status"]).join("\n"));
  for (const follower of followers) assert.equal(follower.headers["x-cache"], "Hit from portico");
  assert.equal(responses[4]!.headers["content-length"], String(large.length));
  assert.equal(responses[4]!.body.length, 0);

  // The viewer whose miss started the fetch leaves at once: the others still get the whole body,
  // and the object is stored.
  const { connect } = await import("node:net");
  const leaver = connect(edge.edge.httpPort, "127.0.0.1");
  leaver.write(`GET /left.bin HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n\r\n`);
  await new Promise((resolve) => leaver.once("data", resolve));
  const stayer = get("/left.bin");
  leaver.destroy();
  const stayed = await stayer;
  assert.ok(stayed.body.equals(large));
  assert.match(String(stayed.headers["cache-status"]), /collapsed/);
  await sleep(200);
  const stored = await get("/left.bin");
  assert.equal(stored.headers["x-cache"], "Hit from portico");
  assert.ok(stored.body.equals(large));
  assert.equal(origin.hits("/left.bin"), 1);

  // When the origin breaks off, the viewers that followed the write get a body cut short too.
  failNext = true;
  const getOrError = (path: string) => get(path).catch((error: Error) => error);
  const broken = await Promise.all([getOrError("/broken.bin"), getOrError("/broken.bin")]);
  assert.equal(origin.hits("/broken.bin"), 1);
  for (const outcome of broken) {
    assert.ok(outcome instanceof Error || !outcome.body.equals(large), "no viewer gets a body the origin never sent whole");
  }
  failNext = false;
  const after = await get("/broken.bin");
  assert.ok(after.body.equals(large));
  assert.equal(origin.hits("/broken.bin"), 2);
});

test("ranges follow a disk fill", async (t) => {
  const dataDir = await tempDir(t);
  const large = randomBytes(300 * 1024);
  const headers = { "cache-control": "max-age=600", "content-type": "video/mp4", etag: '"grow"' };
  // Ranges get their bytes at once; the whole body arrives over about half a second.
  const origin = await startOrigin(async (req, res) => {
    if (!respondToRange(req, res, large, headers)) await respondSlowly(res, large, headers, 32 * 1024, 50);
  });
  t.after(() => origin.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  const edge = await startDiskEdge(dataDir, snapshot);
  t.after(() => edge.edge.close());
  const get = (headers: Record<string, string> = {}, method = "GET") =>
    request(edge.edge.httpPort, snapshot.domainName, "/movie.mp4", { headers, method });

  let wholeDone = false;
  const whole = get().then((response) => {
    wholeDone = true;
    return response;
  });
  await sleep(120);
  // A range near the start is read from the file being written, and ends with its last byte.
  const near = await get({ range: "bytes=1000-1999" });
  assert.equal(wholeDone, false, "the range response ends before the write does");
  assert.equal(near.status, 206);
  assert.equal(near.headers["content-range"], `bytes 1000-1999/${large.length}`);
  assert.equal(near.headers["x-cache"], "Hit from portico");
  assert.match(String(near.headers["cache-status"]), /collapsed/);
  assert.ok(near.body.equals(large.subarray(1000, 2000)));
  // A range far ahead of the write comes from the origin as a slice.
  const far = await get({ range: "bytes=290000-290099" });
  assert.equal(far.status, 206);
  assert.ok(far.body.equals(large.subarray(290000, 290100)));
  assert.match(String(far.headers["cache-status"]), /detail=range-slices/);
  // Another range the write has passed, and a HEAD with a range, which gets the headers alone.
  const [middle, head] = await Promise.all([get({ range: "bytes=40000-40999" }), get({ range: "bytes=0-9" }, "HEAD")]);
  assert.equal(middle.status, 206);
  assert.ok(middle.body.equals(large.subarray(40000, 41000)));
  assert.equal(head.status, 206);
  assert.equal(head.headers["content-length"], "10");
  assert.equal(head.body.length, 0);

  assert.ok((await whole).body.equals(large));
  const ranges = origin.requests.map((seen) => seen.headers.range);
  assert.equal(ranges.filter((range) => range === undefined).length, 1, "one fetch of the whole object");
  assert.equal(ranges.filter((range) => range !== undefined).length, 1, "one slice, for the far range");
});

/** Returns the paths under `directory` of the files this process has open. */
async function openFilesUnder(directory: string): Promise<string[]> {
  const { readlink } = await import("node:fs/promises");
  const paths: string[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(join("/proc/self/fd", fd)).catch(() => "");
    if (target.startsWith(directory)) paths.push(target);
  }
  return paths;
}

test("range slices reload from disk", async (t) => {
  const dataDir = await tempDir(t);
  // 64 KiB of memory makes 8 KiB slices and keeps about seven of them.
  const object: Served = { body: randomBytes(200 * 1024), etag: '"sliced"' };
  const origin = await startOrigin(serveWithRanges(() => object));
  const { get } = await diskDistribution(t, dataDir, origin);

  const all = await get("/movie.mp4", { range: "bytes=0-" });
  assert.equal(all.status, 206);
  assert.ok(all.body.equals(object.body));
  assert.equal(origin.hits(), 25);
  await sleep(200);

  // Slice 0 left memory long ago, but the disk tier still has it.
  const first = await get("/movie.mp4", { range: "bytes=0-99" });
  assert.equal(first.headers["x-cache"], "Hit from portico");
  assert.ok(first.body.equals(object.body.subarray(0, 100)));
  assert.equal(origin.hits(), 25);
});

test("viewer leaving a disk hit closes its file", { skip: process.platform === "linux" ? false : "lists open files through /proc/self/fd, which only Linux has" }, async (t) => {
  const dataDir = await tempDir(t);
  // Larger than the socket and stream buffers, so the file is still being read when the viewer leaves.
  const large = Buffer.alloc(1536 * 1024, 0x62);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=600", "content-length": String(large.length) });
    res.end(large);
  });
  t.after(() => origin.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  const edge = await startDiskEdge(dataDir, snapshot);
  t.after(() => edge.edge.close());
  const first = await request(edge.edge.httpPort, snapshot.domainName, "/large.bin");
  assert.match(String(first.headers["cache-status"]), /detail=streamed-to-disk/);
  await sleep(200);

  const { connect } = await import("node:net");
  const leave = (extraHeaders: string) =>
    new Promise<void>((resolve) => {
      const socket = connect(edge.edge.httpPort, "127.0.0.1", () => {
        socket.write(`GET /large.bin HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n${extraHeaders}\r\n`);
      });
      socket.on("data", () => socket.destroy());
      socket.on("error", () => {});
      socket.on("close", () => resolve());
    });
  await leave("");
  await leave("Range: bytes=1000-1500000\r\n");
  await sleep(300);
  assert.deepEqual(await openFilesUnder(join(dataDir, "cache")), []);
  assert.equal(origin.hits(), 1);
});
