import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { connect as connectHttp2, type ClientHttp2Session } from "node:http2";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { sleep, startEdgeForOrigin, startOrigin } from "./helpers.js";
import { F, frame, headerBlock, literal, RawHttp2Client, requestFields, T } from "./http2-raw.js";
import { rawExchange } from "./raw.js";

const run = promisify(execFile);

const PROTOCOL_ERROR = 0x1;
const FLOW_CONTROL_ERROR = 0x3;
const STREAM_CLOSED = 0x5;
const FRAME_SIZE_ERROR = 0x6;
const REFUSED_STREAM = 0x7;
const COMPRESSION_ERROR = 0x9;
const ENHANCE_YOUR_CALM = 0xb;

const LARGE = Buffer.alloc(300_000, 0x61);

async function setup(t: TestContext) {
  const origin = await startOrigin((req, res, body) => {
    if (req.url === "/large") {
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
      res.end(LARGE);
      return;
    }
    // Paths under /nodate/ come without a Date header, as some origins send them.
    if (req.url?.startsWith("/nodate/")) res.sendDate = false;
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  return startEdgeForOrigin(t, origin);
}

interface H2Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(session: ClientHttp2Session, headers: Record<string, string>, body?: Buffer): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    const chunks: Buffer[] = [];
    let status = 0;
    let responseHeaders: H2Response["headers"] = {};
    stream.on("response", (received) => {
      status = Number(received[":status"]);
      responseHeaders = received as H2Response["headers"];
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, headers: responseHeaders, body: Buffer.concat(chunks) }));
    stream.on("error", reject);
    if (body !== undefined) stream.end(body);
  });
}

test("HTTP/2 hits, bodies and HEAD with node's client", async (t) => {
  const { origin, ca, port, host } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host });
  t.after(() => session.close());
  const miss = await get(session, { ":path": "/a.txt", ":authority": host });
  assert.equal(miss.status, 200);
  assert.equal(miss.headers["x-cache"], "Miss from portico");
  assert.equal(miss.body.toString(), "GET /a.txt ");
  const hit = await get(session, { ":path": "/a.txt", ":authority": host });
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.match(String(hit.headers["x-amz-cf-id"]), /^[0-9A-F]{32}$/);
  assert.match(String(hit.headers["cache-status"]), /^portico; hit; ttl=\d+$/);
  assert.equal(hit.body.toString(), "GET /a.txt ");
  const head = await get(session, { ":path": "/a.txt", ":authority": host, ":method": "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], String("GET /a.txt ".length));
  assert.equal(head.body.length, 0);

  const posted = await get(session, { ":path": "/up", ":authority": host, ":method": "POST", "content-length": "5" }, Buffer.from("hello"));
  assert.equal(posted.body.toString(), "POST /up hello");
  assert.equal(origin.hits("/a.txt"), 1);
});

test("HTTP/2 adds a missing Date", async (t) => {
  const { ca, port, host } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host });
  t.after(() => session.close());
  const miss = await get(session, { ":path": "/nodate/a", ":authority": host });
  assert.equal(miss.headers["x-cache"], "Miss from portico");
  assert.match(String(miss.headers.date), /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  const hit = await get(session, { ":path": "/nodate/a", ":authority": host });
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.match(String(hit.headers.date), / GMT$/);
});

test("edge-generated HEAD responses have no body", async (t) => {
  const { ca, port, host, fixture } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host });
  t.after(() => session.close());
  // No distribution serves this host, so the edge responds with a 403 of its own.
  const denied = await get(session, { ":path": "/x", ":authority": "unknown.example", ":method": "HEAD" });
  assert.equal(denied.status, 403);
  assert.equal(denied.body.length, 0);
  assert.ok(Number(denied.headers["content-length"]) > 0);
  // The session is still usable: the HEAD stream ended cleanly.
  const after = await get(session, { ":path": "/a.txt", ":authority": host });
  assert.equal(after.status, 200);

  // Over HTTP/1.1 a body after the HEAD response would be read as the start of the next response.
  const exchange = await rawExchange(fixture.edge.httpPort, [
    "HEAD /x HTTP/1.1\r\nHost: unknown.example\r\n\r\nGET /x HTTP/1.1\r\nHost: unknown.example\r\n\r\n",
  ], 500);
  assert.deepEqual(exchange.statuses, [403, 403]);
  const [headResponse, getResponse] = exchange.text.split(/(?=HTTP\/1\.1 403 )/);
  assert.ok(headResponse!.endsWith("\r\n\r\n"), JSON.stringify(headResponse));
  assert.match(getResponse!, /\r\n\r\nERROR: /);
});

test("HTTP/2 response honours a small client window", async (t) => {
  const { ca, port, host } = await setup(t);
  // A 1000-byte stream window makes the edge send the 300 KB body in window-sized DATA frames.
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host, settings: { initialWindowSize: 1000 } });
  t.after(() => session.close());
  for (let round = 0; round < 2; round++) {
    const response = await get(session, { ":path": "/large", ":authority": host });
    assert.equal(response.status, 200);
    assert.equal(response.body.length, LARGE.length);
    assert.ok(response.body.equals(LARGE));
  }
});

test("HTTP/2 serves 100 concurrent streams", async (t) => {
  const { origin, ca, port, host } = await setup(t);
  const session = connectHttp2(`https://127.0.0.1:${port}`, { ca, servername: host });
  t.after(() => session.close());
  const responses = await Promise.all(
    Array.from({ length: 100 }, (_, i) => get(session, { ":path": `/c${i % 10}`, ":authority": host })),
  );
  responses.forEach((response, i) => {
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), `GET /c${i % 10} `);
  });
  for (let i = 0; i < 10; i++) assert.equal(origin.hits(`/c${i}`), 1);
});

test("HTTP/2 with curl and nghttp", async (t) => {
  const { fixture, port, host } = await setup(t);
  const caPath = fixture.edge.caCertificatePath;
  let curl;
  try {
    curl = await run("curl", ["-s", "--http2", "--cacert", caPath, "--resolve", `${host}:${port}:127.0.0.1`, "-w", "%{http_version} %{http_code}", `https://${host}:${port}/curl.txt`]);
  } catch (error) {
    t.skip(`curl failed: ${(error as Error).message}`);
    return;
  }
  assert.equal(curl.stdout, "GET /curl.txt 2 200");
  let nghttp;
  try {
    nghttp = await run("nghttp", ["-n", "-s", "-m", "3", `https://127.0.0.1:${port}/ng.txt`, "-H", `:authority: ${host}`]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    t.diagnostic("nghttp is not installed (Debian nghttp2-client)");
    return;
  }
  // Three requests with status 200 appear in the timing table.
  assert.equal(nghttp.stdout.match(/ 200 /g)?.length, 3, nghttp.stdout);
});

async function raw(t: TestContext, settings?: Buffer) {
  const context = await setup(t);
  const client = await RawHttp2Client.connect(context.port, context.host, context.ca, settings === undefined ? {} : { settings });
  t.after(() => client.close());
  return { ...context, client };
}


const malformed: Array<[string, Array<readonly [string, string]>]> = [
  ["upper-case field name", [["X-Upper", "1"]]],
  ["connection header", [["connection", "keep-alive"]]],
  ["transfer-encoding header", [["transfer-encoding", "chunked"]]],
  ["TE other than trailers", [["te", "gzip"]]],
  ["value with a line feed", [["x-a", "a\nb"]]],
  ["value with leading space", [["x-a", " a"]]],
  ["host unlike authority", [["host", "other.example"]]],
];

for (const [name, extra] of malformed) {
  test(`HTTP/2 resets a request with ${name}`, async (t) => {
    const { client, origin, host } = await raw(t);
    client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/m", extra))));
    assert.equal(await client.resetCode(1), PROTOCOL_ERROR);
    // The connection stays usable for a valid request.
    client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, headerBlock(requestFields(host, "/ok"))));
    await client.waitFor((f) => f.type === T.DATA && f.streamId === 3 && (f.flags & F.END_STREAM) !== 0);
    assert.equal(client.statusOf(3), 200);
    assert.equal(origin.hits("/m"), 0);
  });
}

// Fields that a block adds to the HPACK table are checked once. An invalid one stays invalid
// for every later block that refers to it by index.
test("HTTP/2 checks fields taken from the HPACK table", async (t) => {
  const { client, origin, host } = await raw(t);
  const indexing = (name: string, value: string): Buffer => Buffer.concat([Buffer.from([0x40]), literal(name), literal(value)]);
  const send = (streamId: number, path: string, extra: Buffer): void =>
    client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, streamId, Buffer.concat([headerBlock(requestFields(host, path)), extra])));
  const served = async (streamId: number): Promise<void> => {
    await client.waitFor((f) => f.type === T.DATA && f.streamId === streamId && (f.flags & F.END_STREAM) !== 0);
    assert.equal(client.statusOf(streamId), 200);
  };
  // Dynamic table entries from the newest: 62, 63, ...
  send(1, "/bad-value", indexing("x-a", " padded"));
  assert.equal(await client.resetCode(1), PROTOCOL_ERROR);
  send(3, "/bad-value", Buffer.from([0x80 | 62]));
  assert.equal(await client.resetCode(3), PROTOCOL_ERROR);
  send(5, "/bad-name", indexing("X-Upper", "1"));
  assert.equal(await client.resetCode(5), PROTOCOL_ERROR);
  send(7, "/good", indexing("x-good", "yes"));
  await served(7);
  // 62 is x-good, 63 X-Upper and 64 the padded x-a.
  send(9, "/good", Buffer.from([0x80 | 62]));
  await served(9);
  send(11, "/bad-name", Buffer.from([0x80 | 63]));
  assert.equal(await client.resetCode(11), PROTOCOL_ERROR);
  send(13, "/bad-value", Buffer.from([0x80 | 64]));
  assert.equal(await client.resetCode(13), PROTOCOL_ERROR);
  assert.equal(origin.hits("/bad-value"), 0);
  assert.equal(origin.hits("/bad-name"), 0);
});

test("HTTP/2 resets pseudo-header misuse", async (t) => {
  const { client, origin, host } = await raw(t);
  const cases: Array<Array<readonly [string, string]>> = [
    [[":method", "GET"], [":path", "/x"], [":authority", host]],
    [["x-a", "1"], [":method", "GET"], [":scheme", "https"], [":path", "/x"]],
    [[":method", "GET"], [":method", "GET"], [":scheme", "https"], [":path", "/x"]],
    [[":method", "GET"], [":scheme", "https"], [":path", "/x"], [":protocol", "websocket"]],
    [[":method", "GET"], [":scheme", "https"], [":path", ""]],
  ];
  let streamId = 1;
  for (const fields of cases) {
    client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, streamId, headerBlock(fields)));
    assert.equal(await client.resetCode(streamId), PROTOCOL_ERROR, JSON.stringify(fields));
    streamId += 2;
  }
  assert.equal(origin.hits(), 0);
});

test("HTTP/2 rejects an invalid preface", async (t) => {
  const { port, host, ca } = await setup(t);
  const client = await RawHttp2Client.connect(port, host, ca, { preface: false });
  t.after(() => client.close());
  client.send(Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  assert.equal(await client.goawayCode(), PROTOCOL_ERROR);
});

const connectionErrors: Array<[string, (host: string) => Buffer, number]> = [
  ["frame above the frame size", () => frame(T.DATA, 0, 1, Buffer.alloc(16_385)), FRAME_SIZE_ERROR],
  ["HEADERS on stream 0", (host) => frame(T.HEADERS, F.END_HEADERS, 0, headerBlock(requestFields(host, "/"))), PROTOCOL_ERROR],
  ["an even stream id", (host) => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 2, headerBlock(requestFields(host, "/"))), PROTOCOL_ERROR],
  ["PING of 7 bytes", () => frame(T.PING, 0, 0, Buffer.alloc(7)), FRAME_SIZE_ERROR],
  ["WINDOW_UPDATE of 0", () => frame(T.WINDOW_UPDATE, 0, 0, Buffer.alloc(4)), PROTOCOL_ERROR],
  ["window overflow", () => frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0xff, 0xff, 0xff])), FLOW_CONTROL_ERROR],
  ["SETTINGS of 5 bytes", () => frame(T.SETTINGS, 0, 0, Buffer.alloc(5)), FRAME_SIZE_ERROR],
  ["SETTINGS_INITIAL_WINDOW_SIZE too large", () => frame(T.SETTINGS, 0, 0, Buffer.from([0, 4, 0x80, 0, 0, 0])), FLOW_CONTROL_ERROR],
  ["SETTINGS_MAX_FRAME_SIZE too small", () => frame(T.SETTINGS, 0, 0, Buffer.from([0, 5, 0, 0, 0x10, 0])), PROTOCOL_ERROR],
  ["PUSH_PROMISE", () => frame(0x5, F.END_HEADERS, 1, Buffer.alloc(4)), PROTOCOL_ERROR],
  ["HPACK index 0", () => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0x80])), COMPRESSION_ERROR],
  ["HPACK index past the table", () => frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, Buffer.from([0xff, 0x10])), COMPRESSION_ERROR],
  ["CONTINUATION without HEADERS", () => frame(T.CONTINUATION, F.END_HEADERS, 1, Buffer.alloc(1)), PROTOCOL_ERROR],
  ["DATA on an idle stream", () => frame(T.DATA, 0, 9, Buffer.from("x")), PROTOCOL_ERROR],
  ["RST_STREAM on an idle stream", () => frame(T.RST_STREAM, 0, 9, Buffer.alloc(4)), PROTOCOL_ERROR],
];

for (const [name, build, code] of connectionErrors) {
  test(`HTTP/2 ends the connection on ${name}`, async (t) => {
    const { client, host, origin } = await raw(t);
    client.send(build(host));
    assert.equal(await client.goawayCode(), code);
    await client.waitFor(() => false, 1500);
    assert.equal(client.closed, true);
    assert.equal(origin.hits(), 0);
  });
}

test("HTTP/2 checks DATA against content-length", async (t) => {
  const { client, host, origin } = await raw(t);
  const fields = requestFields(host, "/len", [["content-length", "3"]], "POST");
  client.send(frame(T.HEADERS, F.END_HEADERS, 1, headerBlock(fields)));
  client.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from("toolong")));
  assert.equal(await client.resetCode(1), PROTOCOL_ERROR);
  client.send(frame(T.HEADERS, F.END_HEADERS, 3, headerBlock(fields)));
  client.send(frame(T.DATA, F.END_STREAM, 3, Buffer.from("ab")));
  assert.equal(await client.resetCode(3), PROTOCOL_ERROR);
  // DATA after the stream ended is a stream error too.
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 5, headerBlock(requestFields(host, "/done"))));
  await client.waitFor((f) => f.streamId === 5 && (f.flags & F.END_STREAM) !== 0);
  client.send(frame(T.DATA, 0, 5, Buffer.from("late")));
  assert.equal(await client.resetCode(5), STREAM_CLOSED);
  assert.equal(origin.hits("/len"), 0);
});

test("HTTP/2 answers PING and refuses streams past the limit", async (t) => {
  const { client, host } = await raw(t);
  client.send(frame(T.PING, 0, 0, Buffer.from("12345678")));
  const pong = await client.waitFor((f) => f.type === T.PING && (f.flags & F.ACK) !== 0);
  assert.equal(pong?.payload.toString(), "12345678");
  // 129 streams without END_STREAM stay open waiting for bodies; the last is past the limit of 128.
  const frames: Buffer[] = [];
  for (let i = 0; i < 129; i++) {
    frames.push(frame(T.HEADERS, F.END_HEADERS, 1 + 2 * i, headerBlock(requestFields(host, "/open", [["content-length", "1"]], "POST"))));
  }
  client.send(Buffer.concat(frames));
  assert.equal(await client.resetCode(1 + 2 * 128), REFUSED_STREAM);
});

test("HTTP/2 ends a flood of resets", async (t) => {
  const { client, host } = await raw(t);
  const frames: Buffer[] = [];
  for (let i = 0; i < 600; i++) {
    const id = 1 + 2 * i;
    frames.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, id, headerBlock(requestFields(host, "/r"))), frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  client.send(Buffer.concat(frames));
  assert.equal(await client.goawayCode(), ENHANCE_YOUR_CALM);
});

test("HTTP/2 cuts off an endless header block", async (t) => {
  const { client, host } = await raw(t);
  client.send(frame(T.HEADERS, 0, 1, headerBlock(requestFields(host, "/"))));
  const filler = frame(T.CONTINUATION, 0, 1, Buffer.alloc(16_000, 0x40));
  for (let i = 0; i < 10; i++) client.send(filler);
  assert.equal(await client.goawayCode(), ENHANCE_YOUR_CALM);
});

test("HTTP/2 ends a flood of empty CONTINUATION frames", async (t) => {
  const { client, host } = await raw(t);
  client.send(frame(T.HEADERS, 0, 1, headerBlock(requestFields(host, "/"))));
  // Empty frames never make the block large; their number ends the connection.
  client.send(Buffer.concat(Array.from({ length: 100 }, () => frame(T.CONTINUATION, 0, 1))));
  assert.equal(await client.goawayCode(), ENHANCE_YOUR_CALM);
});

test("HTTP/2 large header list gets 431", async (t) => {
  const { client, host, origin } = await raw(t);
  const big = "v".repeat(20_000);
  const block = headerBlock(requestFields(host, "/big", [["x-a", big], ["x-b", big]]));
  // Split over HEADERS and CONTINUATION frames of at most 16 KiB.
  client.send(frame(T.HEADERS, 0, 1, block.subarray(0, 16_000)));
  client.send(frame(T.CONTINUATION, 0, 1, block.subarray(16_000, 32_000)));
  client.send(frame(T.CONTINUATION, F.END_HEADERS, 1, block.subarray(32_000)));
  await client.waitFor((f) => f.streamId === 1 && (f.flags & F.END_STREAM) !== 0);
  assert.equal(client.statusOf(1), 431);
  assert.equal(origin.hits(), 0);
});

test("HTTP/2 sends no DATA beyond the window", async (t) => {
  // INITIAL_WINDOW_SIZE 100: the stream may receive 100 bytes until it is given more.
  const { client, host } = await raw(t, Buffer.from([0, 4, 0, 0, 0, 100]));
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  await client.waitFor((f) => f.type === T.DATA && f.streamId === 1);
  await sleep(200);
  const sent = () => client.frames.filter((f) => f.type === T.DATA && f.streamId === 1).reduce((sum, f) => sum + f.payload.length, 0);
  assert.equal(sent(), 100);
  client.send(frame(T.WINDOW_UPDATE, 0, 1, Buffer.from([0, 0, 0x10, 0])));
  await sleep(200);
  assert.equal(sent(), 100 + 4096);
  // The connection window (65,535 by default) now binds: the stream gets no more than it allows.
  client.send(frame(T.WINDOW_UPDATE, 0, 1, Buffer.from([0, 0x10, 0, 0])));
  await sleep(200);
  assert.equal(sent(), 65_535);
  client.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0, 0x10, 0, 0])));
  await client.waitFor((f) => f.type === T.DATA && f.streamId === 1 && (f.flags & F.END_STREAM) !== 0);
  assert.equal(sent(), LARGE.length);
  assert.equal(client.frames.filter((f) => f.type === T.RST_STREAM).length, 0);
});

test("HTTP/2 client that ends its side still gets its responses", async (t) => {
  // Stream windows of 1 MiB (SETTINGS_INITIAL_WINDOW_SIZE) and a connection window opened as far.
  const settings = Buffer.from([0, 4, 0, 0x10, 0, 0]);
  const { client, host } = await raw(t, settings);
  const windowUpdate = Buffer.alloc(4);
  windowUpdate.writeUInt32BE(1024 * 1024);
  // Two complete requests, a third whose body never ends, then the client's TLS close_notify and FIN.
  client.send(
    Buffer.concat([
      frame(T.WINDOW_UPDATE, 0, 0, windowUpdate),
      frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))),
      frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, headerBlock(requestFields(host, "/half"))),
      frame(T.HEADERS, F.END_HEADERS, 5, headerBlock(requestFields(host, "/upload", [["content-length", "10"]], "POST"))),
    ]),
  );
  client.socket.end();
  await client.waitFor(() => false, 3000);
  assert.equal(client.closed, true, "the edge closes once the responses are out");
  assert.equal(client.statusOf(1), 200);
  assert.equal(client.statusOf(3), 200);
  const body = (streamId: number) =>
    Buffer.concat(client.frames.filter((f) => f.type === T.DATA && f.streamId === streamId).map((f) => f.payload));
  assert.ok(body(1).equals(LARGE));
  assert.equal(body(3).toString(), "GET /half ");
  assert.equal(client.statusOf(5), undefined, "a request cut short gets no response");
});

test("HTTP/2 half-closed client short of window is closed", async (t) => {
  const { client, host } = await raw(t);
  // The default 64 KiB windows hold part of the 300 KB body, and no WINDOW_UPDATE can follow the end.
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  await client.waitFor((f) => f.type === T.DATA && f.streamId === 1);
  client.socket.end();
  await client.waitFor(() => false, 3000);
  assert.equal(client.closed, true, "the edge closes instead of waiting for the window");
});

test("HTTP/2 closes an idle connection with GOAWAY", async (t) => {
  const { client } = await raw(t);
  // The edge's idle timeout is 5 s; the sweep runs once a second.
  const code = await client.goawayCode(8000);
  assert.equal(code, 0);
});

test("HTTP/2 requests wait while the viewer is not reading", async (t) => {
  const { client, fixture, host, origin } = await raw(t);
  client.send(frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0x7f, 0, 0, 0])));
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock(requestFields(host, "/large"))));
  await client.waitFor((f) => f.streamId === 1 && (f.flags & F.END_STREAM) !== 0);
  const before = fixture.metrics.records.length;
  // Each request is a hit of 300 KB; 1000 of them are 300 MB that the client does not read yet.
  client.socket.pause();
  const requests: Buffer[] = [];
  for (let i = 1; i <= 1000; i++) {
    requests.push(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1 + 2 * i, headerBlock(requestFields(host, "/large"))));
  }
  client.send(Buffer.concat(requests));
  await sleep(500);
  const served = fixture.metrics.records.length - before;
  assert.ok(served < 200, `${served} responses were made before the client read`);
  assert.equal(origin.hits("/large"), 1);
});
