import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test, type TestContext } from "node:test";
import { allMethodsSnapshot, sleep, startOrigin, startTestEdge } from "./helpers.js";
import { F, frame, headerBlock, RawHttp2Client, requestFields, T } from "./http2-raw.js";

const BODY_IDLE_MS = 1500;
const LARGE = Buffer.alloc(8 * 1024 * 1024, 0x6c);
/** SETTINGS_INITIAL_WINDOW_SIZE (0x4) of `size`. */
const initialWindow = (size: number): Buffer => Buffer.from([0, 4, (size >>> 24) & 0xff, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]);
/** A connection WINDOW_UPDATE that opens the connection window to its largest size. */
const OPEN_CONNECTION = frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0xff, 0, 0]));

async function setup(t: TestContext) {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
    res.end(req.url === "/large" ? LARGE : "small");
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({ protocol: { timeouts: { bodyIdleTimeoutMs: BODY_IDLE_MS } } });
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const ca = await readFile(fixture.edge.caCertificatePath);
  const connect = async (window: number): Promise<RawHttp2Client> => {
    const client = await RawHttp2Client.connect(fixture.edge.httpsPort, snapshot.domainName, ca, { settings: initialWindow(window) });
    t.after(() => client.close());
    client.send(OPEN_CONNECTION);
    return client;
  };
  return { fixture, host: snapshot.domainName, connect };
}

test("HTTP/2 viewer that stops reading is dropped", async (t) => {
  const { fixture, host, connect } = await setup(t);
  const client = await connect(0x7fffffff);
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  await client.waitFor((f) => f.type === T.DATA && f.streamId === 1);
  client.socket.pause();
  const before = fixture.metrics.records.length;
  const started = Date.now();
  // The response is recorded once the edge gives up on the viewer.
  while (fixture.metrics.records.length === before && Date.now() - started < 8000) await sleep(50);
  const elapsedMs = Date.now() - started;
  assert.equal(fixture.metrics.records.length, before + 1, "the viewer was not dropped");
  assert.ok(elapsedMs >= BODY_IDLE_MS - 100, `dropped after ${elapsedMs} ms`);
  assert.ok(fixture.metrics.records.at(-1)!.bytesDownloaded < LARGE.length);
});

test("HTTP/2 viewer that keeps its window shut is dropped", async (t) => {
  const { host, connect } = await setup(t);
  const client = await connect(0);
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  assert.ok(await client.waitFor((f) => f.type === T.HEADERS && f.streamId === 1));
  const started = Date.now();
  await client.waitFor(() => false, 8000);
  assert.ok(client.closed, "the connection is still open");
  assert.ok(Date.now() - started >= BODY_IDLE_MS - 100);
});

test("HTTP/2 viewer reading slowly is kept", async (t) => {
  const { host, connect } = await setup(t);
  const client = await connect(0x7fffffff);
  // One read every 100 ms. The viewer's kernel may announce the room it frees only in large
  // steps, so a slower pace could show the edge no progress within one idle timeout.
  const pause = (): void => void client.socket.pause();
  client.socket.on("data", pause);
  const pacing = setInterval(() => client.socket.resume(), 100);
  t.after(() => clearInterval(pacing));
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  await sleep(4 * BODY_IDLE_MS);
  assert.equal(client.closed, false, "the slow viewer was dropped");
  clearInterval(pacing);
  client.socket.off("data", pause);
  client.socket.resume();
  await client.waitFor((f) => f.type === T.DATA && f.streamId === 1 && (f.flags & F.END_STREAM) !== 0, 10_000);
  const received = client.frames.filter((f) => f.type === T.DATA && f.streamId === 1).reduce((sum, f) => sum + f.payload.length, 0);
  assert.equal(received, LARGE.length);
});
