import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createServer, type AddressInfo } from "node:net";
import { connect as connectHttp2, type ClientHttp2Session } from "node:http2";
import { Writable } from "node:stream";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { pino } from "pino";
import { FloodBudget, FloodError } from "../../src/edge/http2/flood.js";
import { Http2ConnectionSet } from "../../src/edge/http2/server.js";
import type { Http2FloodKind } from "../../src/metrics/types.js";
import { CollectingSink, startEdgeForOrigin, startOrigin } from "./helpers.js";
import { F, frame, headerBlock, PREFACE, RawHttp2Client, requestFields, T } from "./http2-raw.js";

const run = promisify(execFile);

const ENHANCE_YOUR_CALM = 0xb;
const LARGE = Buffer.alloc(300_000, 0x62);
/** A host no distribution serves, so the edge sends a 403 of its own and closes the stream at once. */
const UNKNOWN_HOST = "unknown.example";

async function setup(t: TestContext) {
  const origin = await startOrigin((req, res, body) => {
    if (req.url?.startsWith("/large")) {
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
      res.end(LARGE);
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  return startEdgeForOrigin(t, origin);
}

function repeat(count: number, build: (i: number) => Buffer): Buffer {
  return Buffer.concat(Array.from({ length: count }, (_, i) => build(i)));
}

/** HEADERS that open stream `id` for a POST whose body never comes, so the stream stays open. */
function openStream(host: string, id: number): Buffer {
  return frame(T.HEADERS, F.END_HEADERS, id, headerBlock(requestFields(host, "/open", [["content-length", "1"]], "POST")));
}

function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment);
  return frame(T.WINDOW_UPDATE, 0, streamId, payload);
}

const floods: Array<[name: string, build: (host: string) => Buffer, kind: Http2FloodKind]> = [
  ["WINDOW_UPDATE on the connection", () => repeat(1000, () => windowUpdate(0, 1)), "window_update"],
  ["WINDOW_UPDATE on a stream", (host) => Buffer.concat([openStream(host, 1), repeat(1000, () => windowUpdate(1, 1))]), "window_update"],
  ["PRIORITY", () => repeat(300, () => frame(T.PRIORITY, 0, 3, Buffer.alloc(5))), "priority"],
  ["frames of an unknown type", () => repeat(300, () => frame(0x20, 0, 0, Buffer.alloc(4))), "priority"],
  ["PING", () => repeat(200, (i) => frame(T.PING, 0, 0, Buffer.alloc(8, i))), "ping"],
  ["SETTINGS", () => repeat(200, () => frame(T.SETTINGS, 0, 0)), "settings"],
  ["SETTINGS of 33 entries", () => frame(T.SETTINGS, 0, 0, repeat(33, () => Buffer.from([0, 1, 0, 0, 0x10, 0]))), "settings"],
  ["empty DATA", (host) => Buffer.concat([openStream(host, 1), repeat(500, () => frame(T.DATA, 0, 1))]), "empty_frame"],
  [
    "empty HEADERS",
    () =>
      repeat(500, (i) =>
        Buffer.concat([
          frame(T.HEADERS, F.END_STREAM, 1 + 2 * i),
          frame(T.CONTINUATION, F.END_HEADERS, 1 + 2 * i, headerBlock(requestFields(UNKNOWN_HOST, "/e"))),
        ]),
      ),
    "empty_frame",
  ],
  ["GOAWAY", (host) => Buffer.concat([openStream(host, 1), repeat(20, () => frame(T.GOAWAY, 0, 0, Buffer.alloc(8)))]), "goaway"],
  [
    "streams opened and reset at once",
    (host) =>
      repeat(600, (i) =>
        Buffer.concat([
          frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1 + 2 * i, headerBlock(requestFields(host, "/r"))),
          frame(T.RST_STREAM, 0, 1 + 2 * i, Buffer.from([0, 0, 0, 8])),
        ]),
      ),
    "reset",
  ],
  [
    "large frames of an unknown type",
    () =>
      Buffer.concat([
        // Ten requests raise the budget of unknown frames to 1,100, so the byte ratio ends the connection first.
        repeat(10, (i) => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1 + 2 * i, headerBlock(requestFields(UNKNOWN_HOST, "/u")))),
        repeat(600, () => frame(0x20, 0, 0, Buffer.alloc(16_384))),
      ]),
    "overhead",
  ],
];

for (const [name, build, kind] of floods) {
  test(`HTTP/2 flood of ${name} ends the connection`, async (t) => {
    const { fixture, port, host, ca } = await setup(t);
    const client = await RawHttp2Client.connect(port, host, ca);
    t.after(() => client.close());
    client.send(build(host));
    assert.equal(await client.goawayCode(), ENHANCE_YOUR_CALM);
    await client.waitFor(() => false, 1500);
    assert.equal(client.closed, true);
    assert.deepEqual(fixture.metrics.floods, [kind]);
  });
}

test("HTTP/2 flood is logged once with the peer", async (t) => {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line !== "") lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const metrics = new CollectingSink();
  const connections = new Http2ConnectionSet(
    () => undefined,
    { maxHeaderListBytes: 32 * 1024, maxConcurrentStreams: 8, idleTimeoutMs: 5_000, headersTimeoutMs: 5_000, bodyIdleTimeoutMs: 5_000 },
    pino({ level: "info" }, sink),
    metrics,
  );
  t.after(() => connections.drain(0));
  const server = createServer((socket) => connections.accept(socket, "http"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());

  const client = await RawHttp2Client.connectPlain((server.address() as AddressInfo).port);
  t.after(() => client.close());
  // Two floods in one write: the connection closes at the first, so the second is never counted.
  client.send(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), repeat(100, () => windowUpdate(0, 1)), repeat(200, () => frame(T.SETTINGS, 0, 0))]));
  assert.equal(await client.goawayCode(), ENHANCE_YOUR_CALM);
  await client.waitFor(() => false, 1500);
  assert.equal(client.closed, true);
  const warnings = lines.filter((line) => line.level === 40);
  assert.equal(warnings.length, 1, JSON.stringify(lines));
  assert.equal(warnings[0]!.kind, "window_update");
  assert.equal(warnings[0]!.clientIp, "127.0.0.1");
  assert.deepEqual(metrics.floods, ["window_update"]);
});

function download(session: ClientHttp2Session, headers: Record<string, string>): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers);
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on("response", (received) => (status = Number(received[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
  });
}

test("HTTP/2 small windows download many objects", async (t) => {
  const { fixture, port, host, ca } = await setup(t);
  // A 1,000-byte stream window: each 300 KB body takes 300 DATA frames, and node's client
  // returns window after each, so the connection receives thousands of WINDOW_UPDATE frames.
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host, settings: { initialWindowSize: 1000 } });
  t.after(() => session.close());
  for (let round = 0; round < 5; round++) {
    const responses = await Promise.all(
      Array.from({ length: 4 }, (_, i) => download(session, { ":path": `/large${i}`, ":authority": host })),
    );
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.body.equals(LARGE));
    }
  }
  assert.equal(session.closed, false);
  assert.deepEqual(fixture.metrics.floods, []);
});

test("HTTP/2 small windows with h2load", async (t) => {
  const { fixture, port, host } = await setup(t);
  // Stream windows of 2^10 bytes and a connection window of 2^16: 40 bodies of 300 KB over one connection.
  let h2load;
  try {
    h2load = await run("h2load", ["-n", "40", "-c", "1", "-m", "4", "-w", "10", "-W", "16", `--connect-to=127.0.0.1:${port}`, `https://${host}/large`]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    t.diagnostic("h2load is not installed (Debian nghttp2-client)");
    return;
  }
  assert.match(h2load.stdout, /requests: 40 total, 40 started, 40 done, 40 succeeded, 0 failed/);
  assert.deepEqual(fixture.metrics.floods, []);
});

test("flood budget leaves WINDOW_UPDATE bytes out of the overhead ratio", () => {
  const budget = new FloodBudget();
  budget.dataFramesSent = 400_000;
  budget.streamsOpened = 10;
  // 700,000 updates are 9.1 MB, past nginx's 1 MiB + 8 × payload if they counted as overhead.
  for (let i = 0; i < 700_000; i++) budget.countWindowUpdate(13);
  assert.doesNotThrow(() => budget.countRead(700_000 * 13));
  // Nor do they count as payload: 8.5 MB of unknown frames after them pass the ratio alone.
  for (let i = 0; i < 520; i++) budget.countPriority(16_393);
  assert.throws(() => budget.countRead(520 * 16_393), (error) => error instanceof FloodError && error.kind === "overhead");
});

test("flood budget counts overhead against payload", () => {
  const budget = new FloodBudget();
  budget.streamsOpened = 1_000;
  for (let i = 0; i < 1_000; i++) budget.countPriority(16_393);
  // 16.4 MB of overhead with 1 MB of payload: 17.4 / 8 is past 1 MB + 1 MiB.
  assert.throws(() => budget.countRead(1_000 * 16_393 + 1_000_000), (error) => error instanceof FloodError && error.kind === "overhead");
  const fair = new FloodBudget();
  fair.streamsOpened = 1_000;
  for (let i = 0; i < 1_000; i++) fair.countPriority(16_393);
  assert.doesNotThrow(() => fair.countRead(1_000 * 16_393 + 3_000_000));
});

test("flood budget refills resets each second", () => {
  const budget = new FloodBudget();
  for (let i = 0; i < 400; i++) budget.countReset();
  budget.startSecond();
  for (let i = 0; i < 33; i++) budget.countReset();
  assert.throws(() => budget.countReset(), (error) => error instanceof FloodError && error.kind === "reset");
});

test("flood budget earns WINDOW_UPDATE frames with DATA sent", () => {
  const budget = new FloodBudget();
  budget.streamsOpened = 1;
  // 5 + 2 × (1 + 10 × 0) = 7 updates before any DATA.
  for (let i = 0; i < 7; i++) budget.countWindowUpdate(13);
  assert.throws(() => budget.countWindowUpdate(13), (error) => error instanceof FloodError && error.kind === "window_update");
  const downloading = new FloodBudget();
  downloading.streamsOpened = 1;
  downloading.dataFramesSent = 100;
  for (let i = 0; i < 2_007; i++) downloading.countWindowUpdate(13);
  assert.throws(() => downloading.countWindowUpdate(13), (error) => error instanceof FloodError && error.kind === "window_update");
});
