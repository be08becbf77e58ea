import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { RANGE_SLICE_BYTES } from "../../src/edge/slice-flow.js";
import { customSnapshot, request, serveWithRanges, startOrigin, startTestEdge, type Served } from "./helpers.js";

const SLICE = RANGE_SLICE_BYTES;
/** Three and a half slices. */
const SIZE = SLICE * 3 + SLICE / 2;

async function setup(t: import("node:test").TestContext, respond: Parameters<typeof startOrigin>[0]) {
  const origin = await startOrigin(respond);
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const get = (path: string, headers: Record<string, string> = {}, method = "GET") =>
    request(fixture.edge.httpPort, snapshot.domainName, path, { headers, method });
  /** The Range headers the origin received since the last call. */
  let seen = 0;
  const originRanges = (): Array<string | undefined> => {
    const ranges = origin.requests.slice(seen).map((r) => r.headers.range);
    seen = origin.requests.length;
    return ranges;
  };
  return { origin, fixture, snapshot, get, originRanges };
}

function sliceRange(index: number): string {
  return `bytes=${index * SLICE}-${(index + 1) * SLICE - 1}`;
}

test("range miss fetches covered slices", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));

  const inner = await get("/movie.mp4", { range: "bytes=2200000-2200099" });
  assert.equal(inner.status, 206);
  assert.equal(inner.headers["content-range"], `bytes 2200000-2200099/${SIZE}`);
  assert.equal(inner.headers["content-length"], "100");
  assert.equal(inner.headers.etag, '"v1"');
  assert.equal(inner.headers["x-cache"], "Miss from portico");
  assert.match(String(inner.headers["cache-status"]), /fwd=uri-miss; fwd-status=206; detail=range-slices/);
  assert.ok(inner.body.equals(object.body.subarray(2200000, 2200100)));
  assert.deepEqual(originRanges(), [sliceRange(2)]);

  const again = await get("/movie.mp4", { range: "bytes=2200000-2200099" });
  assert.equal(again.headers["x-cache"], "Hit from portico");
  assert.match(String(again.headers["cache-status"]), /^portico; hit; ttl=\d+$/);
  assert.ok(again.body.equals(inner.body));
  assert.deepEqual(originRanges(), []);

  // Slices 1 and 3 are fetched, and slice 2 comes from the cache.
  const spanning = await get("/movie.mp4", { range: "bytes=1500000-3600000" });
  assert.equal(spanning.status, 206);
  assert.equal(spanning.headers["content-range"], `bytes 1500000-3600000/${SIZE}`);
  assert.ok(spanning.body.equals(object.body.subarray(1500000, 3600001)));
  assert.deepEqual(originRanges(), [sliceRange(1), sliceRange(3)]);

  // A suffix needs the length, which slice 0 gives. Slice 0 is kept, and the bytes come from slice 3.
  const suffix = await get("/movie.mp4", { range: "bytes=-100" });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers["content-range"], `bytes ${SIZE - 100}-${SIZE - 1}/${SIZE}`);
  assert.ok(suffix.body.equals(object.body.subarray(SIZE - 100)));
  assert.deepEqual(originRanges(), [sliceRange(0)]);

  // Every slice is cached now, so an open range to the end is a hit.
  const open = await get("/movie.mp4", { range: "bytes=100-" });
  assert.equal(open.headers["x-cache"], "Hit from portico");
  assert.ok(open.body.equals(object.body.subarray(100)));
  assert.deepEqual(originRanges(), []);

  // Past the end: the cached slices give the length, so the edge sends the 416 itself.
  const past = await get("/movie.mp4", { range: `bytes=${SIZE}-${SIZE + 10}` });
  assert.equal(past.status, 416);
  assert.equal(past.headers["content-range"], `bytes */${SIZE}`);
  assert.deepEqual(originRanges(), []);

  // A request without Range fetches the whole object, without a Range header.
  const whole = await get("/movie.mp4");
  assert.equal(whole.status, 200);
  assert.equal(whole.headers["content-range"], undefined);
  assert.ok(whole.body.equals(object.body));
  assert.deepEqual(originRanges(), [undefined]);
});

test("conditional range of slices gets 304", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const range = "bytes=2200000-2200099";

  // If-None-Match comes before Range, on a miss and on a hit of the slices.
  const miss = await get("/movie.mp4", { range, "if-none-match": 'W/"v1"' });
  assert.equal(miss.status, 304);
  assert.equal(miss.body.length, 0);
  assert.equal(miss.headers.etag, '"v1"');
  assert.equal(miss.headers["content-range"], undefined);
  assert.deepEqual(originRanges(), [sliceRange(2)]);
  assert.equal((await get("/movie.mp4", { range })).status, 206);
  originRanges();
  const hit = await get("/movie.mp4", { range, "if-none-match": '"v1"' });
  assert.equal(hit.status, 304);
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  const other = await get("/movie.mp4", { range, "if-none-match": '"v2"' });
  assert.equal(other.status, 206);
  assert.ok(other.body.equals(object.body.subarray(2200000, 2200100)));
  assert.deepEqual(originRanges(), []);
});

test("HEAD miss fetches one slice", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const head = await get("/movie.mp4", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], String(SIZE));
  assert.equal(head.headers["content-range"], undefined);
  assert.equal(head.headers.etag, '"v1"');
  assert.equal(head.headers["x-cache"], "Miss from portico");
  assert.deepEqual(originRanges(), [sliceRange(0)]);

  // The slice the HEAD fetched is kept: the next HEAD and a range in it are hits.
  const again = await get("/movie.mp4", {}, "HEAD");
  assert.equal(again.headers["x-cache"], "Hit from portico");
  assert.equal(again.headers["content-length"], String(SIZE));
  const ranged = await get("/movie.mp4", { range: "bytes=0-9" }, "HEAD");
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers["content-range"], `bytes 0-9/${SIZE}`);
  const body = await get("/movie.mp4", { range: "bytes=0-9" });
  assert.equal(body.headers["x-cache"], "Hit from portico");
  assert.ok(body.body.equals(object.body.subarray(0, 10)));
  assert.deepEqual(originRanges(), []);
});

test("sliced misses pass the origin's Age", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const ranges = serveWithRanges(() => object);
  const { get } = await setup(t, (req, res) => {
    res.setHeader("age", "30");
    ranges(req, res);
  });
  const head = await get("/movie.mp4", {}, "HEAD");
  assert.equal(head.headers["x-cache"], "Miss from portico");
  assert.equal(head.headers.age, "30");
  const inner = await get("/movie.mp4", { range: "bytes=2200000-2200099" });
  assert.equal(inner.headers["x-cache"], "Miss from portico");
  assert.equal(inner.headers.age, "30");
  // Slices 0 and 2 are cached now and slice 1 is not: the response is a miss as old as slice 0.
  const spanning = await get("/movie.mp4", { range: "bytes=0-2200099" });
  assert.equal(spanning.headers["x-cache"], "Miss from portico");
  assert.ok(Number(spanning.headers.age) >= 30, `age ${spanning.headers.age}`);
  assert.ok(spanning.body.equals(object.body.subarray(0, 2200100)));
});

test("uncached empty object, HEAD and range", async (t) => {
  const object: Served = { body: Buffer.alloc(0), etag: '"empty"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const head = await get("/empty.bin", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], "0");
  // The origin rejects the slice request with 416, so the edge fetches the object without Range.
  assert.deepEqual(originRanges(), [sliceRange(0), undefined]);
  const ranged = await get("/empty2.bin", { range: "bytes=0-10" });
  assert.equal(ranged.status, 416);
  assert.equal(ranged.headers["content-range"], "bytes */0");
  const whole = await get("/empty2.bin");
  assert.equal(whole.status, 200);
  assert.equal(whole.headers["x-cache"], "Hit from portico");
  assert.equal(whole.body.length, 0);
});

test("range past the end, origin 416", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const past = await get("/movie.mp4", { range: `bytes=${SLICE * 5}-` });
  assert.equal(past.status, 416);
  assert.equal(past.headers["content-range"], `bytes */${SIZE}`);
  assert.deepEqual(originRanges(), [sliceRange(5)]);
});

test("one-slice object stored whole", async (t) => {
  const object: Served = { body: randomBytes(5000), etag: '"small"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const ranged = await get("/clip.mp4", { range: "bytes=10-19" });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers["content-range"], "bytes 10-19/5000");
  assert.ok(ranged.body.equals(object.body.subarray(10, 20)));
  // The origin sent a 206 for the slice request, and the edge stores it as the whole object.
  assert.match(String(ranged.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=206; stored; ttl=\d+$/);
  assert.deepEqual(originRanges(), [sliceRange(0)]);

  const whole = await get("/clip.mp4");
  assert.equal(whole.status, 200);
  assert.equal(whole.headers["x-cache"], "Hit from portico");
  assert.equal(whole.headers["content-length"], "5000");
  assert.equal(whole.headers["content-range"], undefined);
  assert.ok(whole.body.equals(object.body));
  assert.deepEqual(originRanges(), []);
});

test("fwd-status is the origin's status", async (t) => {
  const small: Served = { body: randomBytes(5000), etag: '"small"' };
  const large: Served = { body: randomBytes(SIZE), etag: '"large"' };
  const { get, originRanges } = await setup(t, (req, res) => {
    if (req.url === "/ignores.mp4") {
      // An origin that ignores Range sends the whole object with 200.
      res.writeHead(200, { "cache-control": "max-age=600", "content-length": String(small.body.length), etag: small.etag });
      res.end(small.body);
      return;
    }
    serveWithRanges(() => (req.url === "/small.mp4" ? small : large))(req, res);
  });

  const head = await get("/small.mp4", {}, "HEAD");
  assert.equal(head.headers["content-length"], "5000");
  assert.match(String(head.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=206; stored; ttl=\d+$/);
  assert.deepEqual(originRanges(), [sliceRange(0)]);

  const spanning = await get("/large.mp4", { range: `bytes=${SLICE - 10}-${SLICE + 9}` });
  assert.ok(spanning.body.equals(large.body.subarray(SLICE - 10, SLICE + 10)));
  assert.equal(spanning.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=206; detail=range-slices");
  assert.deepEqual(originRanges(), [sliceRange(0), sliceRange(1)]);

  const ignored = await get("/ignores.mp4", { range: "bytes=10-19" });
  assert.equal(ignored.status, 206);
  assert.ok(ignored.body.equals(small.body.subarray(10, 20)));
  assert.match(String(ignored.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/);
  assert.deepEqual(originRanges(), [sliceRange(0)]);
});

test("object changed between slices", async (t) => {
  let object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  await get("/movie.mp4", { range: "bytes=0-9" });
  assert.deepEqual(originRanges(), [sliceRange(0)]);

  object = { body: randomBytes(SIZE), etag: '"v2"' };
  // Slice 0 is the cached v1; slice 1 arrives as v2, so the response cannot be completed.
  await assert.rejects(get("/movie.mp4", { range: `bytes=0-${SLICE + 9}` }));
  assert.deepEqual(originRanges(), [sliceRange(1)]);

  // After a cut response, the object's range requests fetch it whole for a while.
  const retry = await get("/movie.mp4", { range: `bytes=0-${SLICE + 9}` });
  assert.equal(retry.status, 206);
  assert.equal(retry.headers.etag, '"v2"');
  assert.ok(retry.body.equals(object.body.subarray(0, SLICE + 10)));
  assert.deepEqual(originRanges(), [undefined]);
});

test("origin 206 that overstates the length", async (t) => {
  const body = randomBytes(SLICE + SLICE / 2);
  // Each 206 claims a total of four slices. Past the real end, the origin returns 416.
  const { get, originRanges } = await setup(t, serveWithRanges(() => ({ body, etag: '"lying"' }), { claimedLength: SLICE * 4 }));

  // The first response promises bytes the origin does not have, so it is cut off.
  await assert.rejects(get("/movie.mp4", { range: `bytes=0-${SLICE * 3}` }));
  assert.deepEqual(originRanges(), [sliceRange(0), sliceRange(1)]);

  // The next ones get the real object, fetched whole once and then served from the cache.
  for (let i = 0; i < 2; i++) {
    const retry = await get("/movie.mp4", { range: `bytes=${SLICE - 5}-` });
    assert.equal(retry.status, 206);
    assert.equal(retry.headers["content-range"], `bytes ${SLICE - 5}-${body.length - 1}/${body.length}`);
    assert.ok(retry.body.equals(body.subarray(SLICE - 5)));
  }
  assert.deepEqual(originRanges(), [undefined]);
});

test("concurrent slice misses collapse", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  const responses = await Promise.all(Array.from({ length: 20 }, (_, i) => get("/movie.mp4", { range: `bytes=${i * 10}-${i * 10 + 9}` })));
  for (const [i, response] of responses.entries()) {
    assert.equal(response.status, 206);
    assert.ok(response.body.equals(object.body.subarray(i * 10, i * 10 + 10)));
  }
  assert.deepEqual(originRanges(), [sliceRange(0)]);
});

test("invalidation removes all slices", async (t) => {
  let object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges, fixture, snapshot } = await setup(t, serveWithRanges(() => object));
  await get("/media/movie.mp4", { range: "bytes=0-" });
  assert.equal(originRanges().length, 4);
  assert.equal((await get("/media/movie.mp4", { range: "bytes=0-" })).headers["x-cache"], "Hit from portico");

  object = { body: randomBytes(SIZE), etag: '"v2"' };
  await fixture.publishAndWait({
    type: "invalidation.created",
    distributionId: snapshot.id,
    invalidationId: "I1",
    paths: ["/media/*"],
  });
  const after = await get("/media/movie.mp4", { range: `bytes=${SLICE * 3}-` });
  assert.equal(after.headers["x-cache"], "Miss from portico");
  assert.equal(after.headers.etag, '"v2"');
  assert.ok(after.body.equals(object.body.subarray(SLICE * 3)));
  // Slice 0 gave nothing stale away: only slice 3 was asked for.
  assert.deepEqual(originRanges(), [sliceRange(3)]);
});

test("requests not sliced", async (t) => {
  const object: Served = { body: randomBytes(SIZE), etag: '"v1"' };
  const { get, originRanges } = await setup(t, serveWithRanges(() => object));
  // If-Range, several ranges and invalid syntax go to the whole-object path.
  const conditional = await get("/a.mp4", { range: "bytes=0-9", "if-range": '"v1"' });
  assert.equal(conditional.status, 206);
  assert.ok(conditional.body.equals(object.body.subarray(0, 10)));
  // Larger than the largest memory entry, so streamed whole rather than cut into parts.
  const several = await get("/b.mp4", { range: "bytes=0-9,20-29" });
  assert.equal(several.status, 200);
  assert.equal(several.body.length, SIZE);
  const invalid = await get("/c.mp4", { range: "bytes=9-0" });
  assert.equal(invalid.status, 200);
  assert.deepEqual(originRanges(), [undefined, undefined, undefined]);
});
