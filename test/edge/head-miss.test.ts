import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import { test, type TestContext } from "node:test";
import { customSnapshot, request, startOrigin, startTestEdge, type EdgeResponse } from "./helpers.js";

const MIB = 1024 * 1024;
/** Large enough that what loopback socket buffers contain when the edge closes the connection is a small part of it. */
const BODY = randomBytes(48 * MIB);
const ETAG = '"big"';
/** The maximum an origin may write for a HEAD whose body the edge does not read, which socket buffers and read-ahead take. */
const HEAD_BYTES_BOUND = 16 * MIB;

/** The edges under test: memory only, and a disk tier that takes objects too large for memory. */
const EDGES = [
  { name: "memory", memoryCacheBytes: 512 * MIB, diskCacheBytes: undefined },
  { name: "disk", memoryCacheBytes: 1 * MIB, diskCacheBytes: 256 * MIB },
] as const;

function drainedOrClosed(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}

/**
 * Starts an origin that ignores Range and sends BODY with 200, and an edge in
 * front of it. The origin counts, per response, the body bytes it handed to
 * its socket before the response closed. `gate`, when set, keeps back the
 * second half of the body of `/gated.bin` until it resolves.
 */
async function setup(t: TestContext, edgeOptions: (typeof EDGES)[number], gate?: Promise<void>) {
  const sent: Array<Promise<number>> = [];
  const origin = await startOrigin(async (req: IncomingMessage, res: ServerResponse) => {
    let written = 0;
    sent.push(new Promise((resolve) => res.once("close", () => setImmediate(() => resolve(written)))));
    res.writeHead(200, { "cache-control": "max-age=600", "content-length": String(BODY.length), etag: ETAG });
    for (let offset = 0; offset < BODY.length && !res.destroyed; offset += 64 * 1024) {
      if (gate !== undefined && req.url === "/gated.bin" && offset === BODY.length / 2) await gate;
      const chunk = BODY.subarray(offset, offset + 64 * 1024);
      const flowing = res.write(chunk, (error) => {
        if (error === null || error === undefined) written += chunk.length;
      });
      if (!flowing) await drainedOrClosed(res);
    }
    res.end();
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({
    memoryCacheBytes: edgeOptions.memoryCacheBytes,
    ...(edgeOptions.diskCacheBytes === undefined ? {} : { diskCacheBytes: edgeOptions.diskCacheBytes }),
  });
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const get = (path: string, method = "GET") => request(fixture.edge.httpPort, snapshot.domainName, path, { method });
  return { origin, fixture, snapshot, get, sent };
}

function assertHead(head: EdgeResponse): void {
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], String(BODY.length));
  assert.equal(head.headers.etag, ETAG);
  assert.equal(head.body.length, 0);
}

for (const edge of EDGES) {
  test(`HEAD miss reads little of the body, ${edge.name}`, async (t) => {
    const { origin, get, sent } = await setup(t, edge);
    const head = await get("/big.bin", "HEAD");
    assertHead(head);
    assert.equal(head.headers["x-cache"], "Miss from portico");
    assert.equal(head.headers["cache-status"], "portico; fwd=uri-miss; fwd-status=200; detail=head-only");
    const written = await sent[0]!;
    t.diagnostic(`the origin wrote ${written} body bytes for a HEAD`);
    assert.ok(written < HEAD_BYTES_BOUND, `the origin wrote ${written} body bytes for a HEAD`);

    // The HEAD stored nothing in either tier, so the GET fetches the whole body and keeps it.
    const full = await get("/big.bin");
    assert.equal(full.status, 200);
    assert.equal(full.headers["x-cache"], "Miss from portico");
    assert.ok(full.body.equals(BODY));
    const again = await get("/big.bin");
    assert.equal(again.headers["x-cache"], "Hit from portico");
    assert.ok(again.body.equals(BODY));
    assert.equal(origin.hits(), 2);
  });

  test(`HEAD racing a GET of the same key, ${edge.name}`, async (t) => {
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => (open = resolve));
    const { origin, fixture, snapshot, get, sent } = await setup(t, edge, gate);
    const [head, full] = await Promise.all([get("/race.bin", "HEAD"), get("/race.bin")]);
    assertHead(head);
    assert.equal(full.status, 200);
    assert.ok(full.body.equals(BODY));
    const again = await get("/race.bin");
    assert.equal(again.headers["x-cache"], "Hit from portico");
    assert.ok(again.body.equals(BODY));
    // The GET's fetch reads the body once, and the HEAD's own fetch, if it made one, reads little of it.
    const written = (await Promise.all(sent)).reduce((sum, bytes) => sum + bytes, 0);
    t.diagnostic(`the origin wrote ${written} body bytes for ${origin.hits()} requests`);
    assert.ok(written < BODY.length + HEAD_BYTES_BOUND, `the origin wrote ${written} body bytes for ${origin.hits()} requests`);
    if (edge.diskCacheBytes === undefined) return;

    // A HEAD that arrives while a GET fills the disk tier reads the fill, without an origin request.
    const gated = getWithHeadSignal(fixture.edge.httpPort, snapshot.domainName, "/gated.bin");
    await gated.headArrived;
    const follower = await get("/gated.bin", "HEAD");
    assertHead(follower);
    assert.match(String(follower.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=200; collapsed; ttl=\d+$/);
    open();
    assert.ok((await gated.body).equals(BODY));
    assert.equal(origin.hits("/gated.bin"), 1);
  });
}

/**
 * Sends a GET and returns when its response head arrived, which for a large object means its
 * fill is registered, and its body.
 */
function getWithHeadSignal(port: number, host: string, path: string): { headArrived: Promise<void>; body: Promise<Buffer> } {
  let headReceived: () => void = () => {};
  const headArrived = new Promise<void>((resolve) => (headReceived = resolve));
  const body = new Promise<Buffer>((resolve, reject) => {
    const outgoing = httpRequest({ host: "127.0.0.1", port, path, headers: { host } }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve(Buffer.concat(chunks)));
      response.on("error", reject);
      headReceived();
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
  return { headArrived, body };
}
