import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, mkdir, readFile } from "node:fs/promises";
import { connect as connectHttp2, constants, type ClientHttp2Session } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { createConnection, createServer as createNetServer, type AddressInfo } from "node:net";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { allMethodsSnapshot, customSnapshot, request, sleep, startEdgeForOrigin, startOrigin, startTestEdge } from "./helpers.js";
import { rawExchange } from "./raw.js";

async function setup(t: TestContext, options: Parameters<typeof startTestEdge>[0] = {}, originDelayMs = 0) {
  const origin = await startOrigin(async (req, res, body) => {
    if (originDelayMs > 0) await sleep(originDelayMs);
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge(options);
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { origin, fixture, port: fixture.edge.httpPort, host: snapshot.domainName };
}

/** Sends a GET on an HTTP/2 session and reads the whole response. */
function http2Get(session: ClientHttp2Session, host: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path, ":authority": host });
    let status = 0;
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => (status = Number(headers[":status"])));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve({ status, body: Buffer.concat(chunks).toString() }));
    stream.on("error", reject);
  });
}

test("pipelined requests answer in order", async (t) => {
  const { origin, port, host } = await setup(t);
  const one = `GET /p1 HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const two = `GET /p2 HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const last = `GET /p1 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
  const exchange = await rawExchange(port, [one + two + one + last]);
  assert.deepEqual(exchange.statuses, [200, 200, 200, 200]);
  const bodies = [...exchange.text.matchAll(/GET (\/p\d) /g)].map((match) => match[1]);
  assert.deepEqual(bodies, ["/p1", "/p2", "/p1", "/p1"]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits("/p1"), 1);
  assert.equal(origin.hits("/p2"), 1);
});

test("chunked and sized bodies reach the origin", async (t) => {
  const { origin, port, host } = await setup(t);
  const chunked = `POST /up HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n`;
  const sized = `PUT /up HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 4\r\nConnection: close\r\n\r\nwxyz`;
  const exchange = await rawExchange(port, [chunked, sized], 3000, 50);
  assert.deepEqual(exchange.statuses, [200, 200]);
  assert.equal(origin.requests[0]!.body.toString(), "abcde");
  assert.equal(origin.requests[1]!.body.toString(), "wxyz");
});

test("interleaved plain connections stay intact", async (t) => {
  // Reads of every plain connection land in one shared buffer, so bytes one
  // connection keeps (a partial head, pipelined requests, a body waiting for
  // the origin) must survive the reads of others in between.
  const { origin, port, host } = await setup(t, {}, 50);
  const upload = Buffer.alloc(200_000, "u");
  const exchanges = await Promise.all([
    rawExchange(port, [`GET /half`, `way HTTP/1.1\r\nHo`, `st: ${host}\r\nConnection: close\r\n\r\n`], 3000, 30),
    rawExchange(
      port,
      [`GET /a1 HTTP/1.1\r\nHost: ${host}\r\n\r\nGET /a2 HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`],
      3000,
    ),
    rawExchange(
      port,
      [`PUT /body HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${upload.length}\r\nConnection: close\r\n\r\n`, upload.subarray(0, 70_000), upload.subarray(70_000)],
      3000,
      30,
    ),
    rawExchange(port, Array.from({ length: 6 }, () => `GET /noise HTTP/1.1\r\nHost: ${host}\r\n\r\n`), 1000, 20),
  ]);
  assert.deepEqual(exchanges[0]!.statuses, [200]);
  assert.match(exchanges[0]!.text, /GET \/halfway /);
  assert.deepEqual(exchanges[1]!.statuses, [200, 200]);
  assert.deepEqual([...exchanges[1]!.text.matchAll(/GET (\/a\d) /g)].map((match) => match[1]), ["/a1", "/a2"]);
  assert.deepEqual(exchanges[2]!.statuses, [200]);
  const put = origin.requests.find((r) => r.method === "PUT")!;
  assert.ok(put.body.equals(upload));
  assert.deepEqual(exchanges[3]!.statuses, [200, 200, 200, 200, 200, 200]);
});

test("interleaved TLS and HTTP/2 uploads stay intact", async (t) => {
  const { fixture, origin, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const bodies = [0x61, 0x62, 0x63].map((fill, i) => Buffer.concat([Buffer.alloc(150_000 + i * 7_001, fill), Buffer.from(`end ${i}`)]));
  const http2Upload = (body: Buffer, path: string) =>
    new Promise<number>((resolve, reject) => {
      const session = connectHttp2(`https://127.0.0.1:${fixture.edge.httpsPort}`, { ca, servername: host });
      session.on("error", reject);
      // Many header fields make a large header block.
      const extra: Record<string, string> = {};
      for (let i = 0; i < 100; i++) extra[`x-filler-${i}`] = `value-${i}-${"z".repeat(40)}`;
      const stream = session.request({ ":method": "PUT", ":path": path, ":authority": host, ...extra });
      stream.on("response", (headers) => {
        stream.resume();
        stream.on("end", () => {
          session.close();
          resolve(Number(headers[":status"]));
        });
      });
      stream.on("error", reject);
      // Written in pieces, so the body spans many reads on the edge.
      let offset = 0;
      const pump = (): void => {
        if (offset >= body.length) {
          stream.end();
          return;
        }
        stream.write(body.subarray(offset, offset + 16_384), () => setImmediate(pump));
        offset += 16_384;
      };
      pump();
    });
  const tlsUpload = (body: Buffer, path: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connectTls({ port: fixture.edge.httpsPort, host: "127.0.0.1", servername: host, ca, ALPNProtocols: ["http/1.1"] });
      const chunks: Buffer[] = [];
      socket.on("secureConnect", async () => {
        socket.write(`PUT ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`);
        for (let offset = 0; offset < body.length; offset += 20_000) {
          socket.write(body.subarray(offset, offset + 20_000));
          await sleep(1);
        }
      });
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
      socket.on("error", reject);
    });
  const [first, second, third] = await Promise.all([
    http2Upload(bodies[0]!, "/h2-one"),
    http2Upload(bodies[1]!, "/h2-two"),
    tlsUpload(bodies[2]!, "/tls-three"),
  ]);
  assert.equal(first, 200);
  assert.equal(second, 200);
  assert.match(third, /^HTTP\/1\.1 200 /);
  for (const [path, body] of [["/h2-one", bodies[0]!], ["/h2-two", bodies[1]!], ["/tls-three", bodies[2]!]] as const) {
    const received = origin.requests.find((r) => r.url === path);
    assert.ok(received !== undefined, `${path} reached the origin`);
    assert.ok(received.body.equals(body), `${path} arrived intact`);
  }
});

test("HTTP/1.0 closes unless keep-alive is asked", async (t) => {
  const { port, host } = await setup(t);
  const closing = await rawExchange(port, [`GET /a HTTP/1.0\r\nHost: ${host}\r\n\r\n`]);
  assert.deepEqual(closing.statuses, [200]);
  assert.equal(closing.closed, true);
  const kept = await rawExchange(port, [`GET /a HTTP/1.0\r\nHost: ${host}\r\nConnection: keep-alive\r\n\r\n`], 300);
  assert.match(kept.text, /\r\nconnection: keep-alive\r\n/);
  assert.equal(kept.closed, false);
});

test("plain Connection: close closes at once", async (t) => {
  const { port, host } = await setup(t);
  const socket = createConnection({ port, host: "127.0.0.1", allowHalfOpen: true });
  t.after(() => socket.destroy());
  const errors: string[] = [];
  socket.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve) => socket.once("end", resolve));
  socket.write(`GET /whole HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await ended;
  const text = Buffer.concat(chunks).toString("latin1");
  assert.match(text, /^HTTP\/1\.1 200 /);
  assert.match(text, /\r\nconnection: close\r\n/);
  assert.ok(text.endsWith("GET /whole "), "the whole body arrived before the FIN");
  // A socket that the edge only half-closed would still read these bytes. A closed one sends a reset.
  for (let attempt = 0; attempt < 40 && errors.length === 0 && !socket.destroyed; attempt++) {
    await new Promise<void>((resolve) => socket.write("x", () => resolve()));
    await sleep(25);
  }
  assert.ok(errors.some((code) => code === "ECONNRESET" || code === "EPIPE"), `expected a reset, got ${errors.join(", ") || "none"}`);
});

test("large closing response survives a late byte", async (t) => {
  const large = Buffer.alloc(2 * 1024 * 1024, 0x61);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
    res.end(large);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const path = "/large";
  await request(fixture.edge.httpPort, snapshot.domainName, path);

  // The viewer reads nothing at first, so most of the response waits in the edge's send queue.
  const socket = createConnection({ port: fixture.edge.httpPort, host: "127.0.0.1" });
  t.after(() => socket.destroy());
  socket.pause();
  const errors: string[] = [];
  socket.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${snapshot.domainName}\r\nConnection: close\r\n\r\n`);
  await sleep(200);
  // A stray CRLF after the request: with the socket already closed, the kernel would reset the
  // connection and drop the unsent part of the response.
  socket.write("\r\n");
  await sleep(200);
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve) => {
    socket.once("close", () => resolve());
    socket.resume();
  });
  const received = Buffer.concat(chunks);
  const bodyStart = received.indexOf("\r\n\r\n") + 4;
  assert.deepEqual(errors, []);
  assert.equal(received.length - bodyStart, large.length);
  assert.ok(received.subarray(bodyStart).equals(large), "the body arrived intact");
});

/** Sends `text`, half-closes the socket, and returns everything received until the edge closes. */
async function halfCloseExchange(port: number, text: string): Promise<{ received: string; errors: string[] }> {
  const socket = createConnection({ port, host: "127.0.0.1", allowHalfOpen: true });
  const errors: string[] = [];
  const chunks: Buffer[] = [];
  socket.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  socket.end(text);
  await closed;
  return { received: Buffer.concat(chunks).toString("latin1"), errors };
}

test("half-closed viewer still gets its miss", async (t) => {
  const { origin, port, host } = await setup(t, {}, 100);
  const exchange = await halfCloseExchange(port, `GET /half-miss HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  assert.deepEqual(exchange.errors, []);
  assert.match(exchange.received, /^HTTP\/1\.1 200 /);
  assert.match(exchange.received, /\r\nconnection: close\r\n/);
  assert.ok(exchange.received.endsWith("GET /half-miss "), "the whole body arrived");
  assert.equal(origin.hits("/half-miss"), 1);
});

test("half-closed viewer gets every pipelined response", async (t) => {
  const { port, host } = await setup(t, {}, 50);
  const requests = ["/half-a", "/half-b", "/half-c"].map((path) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const exchange = await halfCloseExchange(port, requests.join(""));
  assert.deepEqual(exchange.errors, []);
  const bodies = [...exchange.received.matchAll(/GET (\/half-[abc]) /g)].map((match) => match[1]);
  assert.deepEqual(bodies, ["/half-a", "/half-b", "/half-c"]);
  assert.equal([...exchange.received.matchAll(/\r\nconnection: close\r\n/g)].length, 1);
});

test("half-close mid-head or mid-body closes", async (t) => {
  const { origin, port, host } = await setup(t);
  const head = await halfCloseExchange(port, `GET /half-head HTTP/1.1\r\nHost: ${host}\r\n`);
  assert.equal(head.received, "");
  const body = await halfCloseExchange(port, `POST /half-body HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 10\r\n\r\nabc`);
  assert.doesNotMatch(body.received, /^HTTP\/1\.1 200 /);
  assert.equal(origin.requests.filter((r) => r.url === "/half-body" && r.body.length === 10).length, 0);
  assert.equal(origin.hits("/half-head"), 0);
});

test("half-close after a pipelined cut request", async (t) => {
  const { origin, port, host } = await setup(t, { protocol: { timeouts: { headersTimeoutMs: 300, bodyIdleTimeoutMs: 300 } } }, 100);
  const first = `GET /cut-first HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  // Without closing at the viewer's FIN, the cut requests would wait for their timeouts and get 408.
  for (const cut of [`GET /cut-head HTTP/1.1\r\nHost: ${host}\r\n`, `POST /cut-body HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 100\r\n\r\nabc`]) {
    const exchange = await halfCloseExchange(port, first + cut);
    assert.deepEqual(exchange.errors, []);
    assert.equal([...exchange.received.matchAll(/HTTP\/1\.1 \d{3} /g)].length, 1);
    assert.match(exchange.received, /^HTTP\/1\.1 200 /);
    assert.ok(exchange.received.endsWith("GET /cut-first "), "the first response arrived whole");
  }
  assert.equal(origin.hits("/cut-head"), 0);
  assert.equal(origin.requests.filter((r) => r.url === "/cut-body" && r.body.length === 100).length, 0);
});

/**
 * Sends `text` over TLS, ends the viewer's side, and returns everything received until the edge
 * ends the TLS stream. With `tcpOnly`, the viewer sends a TCP FIN without close_notify. With
 * `readDelayMs`, the viewer starts reading that long after it sent `text`.
 */
async function tlsHalfCloseExchange(
  port: number,
  host: string,
  ca: Buffer,
  text: string,
  tcpOnly: boolean,
  readDelayMs = 0,
): Promise<{ received: string; errors: string[] }> {
  const tcp = createConnection({ port, host: "127.0.0.1", allowHalfOpen: true });
  const socket = connectTls({ socket: tcp, servername: host, ca, ALPNProtocols: ["http/1.1"] });
  // Ending the viewer's side leaves it open for reading the response.
  socket.allowHalfOpen = true;
  const errors: string[] = [];
  const chunks: Buffer[] = [];
  socket.on("error", (error: NodeJS.ErrnoException) => errors.push(error.code ?? error.message));
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  // The edge's close_notify ends the stream. After a FIN alone, the viewer's TLS side is still open for writing.
  const ended = new Promise<void>((resolve) => socket.once("end", () => resolve()));
  await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
  if (readDelayMs > 0) {
    socket.pause();
    setTimeout(() => socket.resume(), readDelayMs);
  }
  socket.write(text, () => {
    if (tcpOnly) tcp.end();
    else socket.end();
  });
  await ended;
  socket.destroy();
  return { received: Buffer.concat(chunks).toString("latin1"), errors };
}

test("half-closed TLS viewer gets miss", async (t) => {
  const { fixture, origin, host } = await setup(t, {}, 100);
  const ca = await readFile(fixture.edge.caCertificatePath);
  for (const tcpOnly of [false, true]) {
    const path = tcpOnly ? "/tls-fin" : "/tls-close-notify";
    const exchange = await tlsHalfCloseExchange(fixture.edge.httpsPort, host, ca, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, tcpOnly);
    assert.deepEqual(exchange.errors, []);
    assert.match(exchange.received, /^HTTP\/1\.1 200 /);
    assert.match(exchange.received, /\r\nconnection: close\r\n/);
    assert.ok(exchange.received.endsWith(`GET ${path} `), "the whole body arrived");
    assert.equal(origin.hits(path), 1);
  }
});

test("half-closed viewer gets responses held back", async (t) => {
  const object = Buffer.alloc(60 * 1024, "p");
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(object.length) });
    res.end(object);
  });
  const { fixture, ca, port, host } = await startEdgeForOrigin(t, origin);
  await request(fixture.edge.httpPort, host, "/held");
  // 40 responses of 60 KiB exceed the 1 MiB the edge lets wait unsent, so it stops parsing the
  // pipelined requests until the viewer reads. The viewer's end arrives meanwhile.
  const requests = `GET /held HTTP/1.1\r\nHost: ${host}\r\n\r\n`.repeat(40);
  for (const tcpOnly of [false, true]) {
    const exchange = await tlsHalfCloseExchange(port, host, ca, requests, tcpOnly, 300);
    assert.deepEqual(exchange.errors, []);
    assert.equal([...exchange.received.matchAll(/HTTP\/1\.1 200 /g)].length, 40);
    assert.equal(exchange.received.length - exchange.received.lastIndexOf("\r\n\r\n") - 4, object.length);
  }
});

test("TLS half-close mid-head closes", async (t) => {
  const { fixture, origin, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const exchange = await tlsHalfCloseExchange(fixture.edge.httpsPort, host, ca, `GET /tls-cut HTTP/1.1\r\nHost: ${host}\r\n`, false);
  assert.equal(exchange.received, "");
  assert.equal(origin.hits("/tls-cut"), 0);
});

test("slow request head times out with 408", async (t) => {
  const { origin, port, host } = await setup(t, { protocol: { timeouts: { headersTimeoutMs: 300 } } });
  const started = Date.now();
  // One header line every 100 ms: each byte arrives in time, the head never completes.
  const lines = [`GET /slow HTTP/1.1\r\n`, `Host: ${host}\r\n`, ...Array.from({ length: 30 }, (_, i) => `X-${i}: 1\r\n`)];
  const exchange = await rawExchange(port, lines, 3000, 100);
  assert.deepEqual(exchange.statuses, [408]);
  assert.equal(exchange.closed, true);
  assert.ok(Date.now() - started < 1500, `closed after ${Date.now() - started} ms`);
  assert.equal(origin.hits(), 0);
});

test("idle keep-alive connection closes", async (t) => {
  const { port, host } = await setup(t, { protocol: { timeouts: { keepAliveTimeoutMs: 200 } } });
  const started = Date.now();
  const exchange = await rawExchange(port, [`GET /a HTTP/1.1\r\nHost: ${host}\r\n\r\n`], 3000);
  assert.deepEqual(exchange.statuses, [200]);
  assert.equal(exchange.closed, true);
  assert.ok(Date.now() - started < 1500);
});

test("stalled request body times out", async (t) => {
  const { port, host } = await setup(t, { protocol: { timeouts: { bodyIdleTimeoutMs: 200 } } });
  const exchange = await rawExchange(port, [`PUT /b HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 10\r\n\r\nab`], 3000);
  assert.equal(exchange.closed, true);
});

test("paths are normalised before the cache key", async (t) => {
  const { origin, port, host } = await setup(t);
  const cases: Array<[string, number, string | undefined]> = [
    ["/x/../y.txt", 200, "/y.txt"],
    ["/y.txt", 200, "/y.txt"],
    ["/x/%2e%2E/y.txt", 200, "/y.txt"],
    ["/./y.txt", 200, "/y.txt"],
    ["/%79.txt", 200, "/y.txt"],
    ["/a%2Fb", 200, "/a%2Fb"],
    ["/a%2fb", 200, "/a%2Fb"],
    ["/a/b", 200, "/a/b"],
    ["//a/b", 200, "//a/b"],
    ["/a//b", 200, "/a//b"],
    ["/a%5Cb", 200, "/a%5Cb"],
    ["/..", 400, undefined],
    ["/../etc/passwd", 400, undefined],
    ["/%2e%2e/etc/passwd", 400, undefined],
    ["/a/%2E%2E/%2e%2e/b", 400, undefined],
    ["/a%zz", 400, undefined],
  ];
  for (const [path, status, originPath] of cases) {
    const exchange = await rawExchange(port, [`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`]);
    assert.deepEqual(exchange.statuses, [status], path);
    if (originPath !== undefined) assert.match(exchange.text, new RegExp(`GET ${originPath.replace(/\\/g, "\\\\")} $`), path);
  }
  // One origin request per distinct request-target the edge sent.
  const seen = origin.requests.map((r) => r.url);
  assert.deepEqual(seen, ["/y.txt", "/a%2Fb", "/a/b", "//a/b", "/a//b", "/a%5Cb"]);
});

test("absolute-form target uses its authority", async (t) => {
  const { origin, port, host } = await setup(t);
  const exchange = await rawExchange(port, [
    `GET http://${host}/abs/../z HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n`,
  ]);
  assert.deepEqual(exchange.statuses, [200]);
  assert.equal(origin.requests[0]!.url, "/z");
});

test("close drains a response in flight", async (t) => {
  const { fixture, port, host } = await setup(t, {}, 300);
  const inFlight = request(port, host, "/drain");
  await sleep(100);
  const closing = fixture.close();
  const response = await inFlight;
  assert.equal(response.status, 200);
  assert.equal(response.headers.connection, "close");
  await closing;
  await assert.rejects(request(port, host, "/after"));
});

test("HTTP/2 over TLS with the zone certificate", async (t) => {
  const { fixture, origin, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const session = connectHttp2(`https://127.0.0.1:${fixture.edge.httpsPort}`, { ca, servername: host });
  t.after(() => session.close());
  const get = (path: string) =>
    new Promise<{ status: number; xCache: string; body: string }>((resolve, reject) => {
      const stream = session.request({ ":path": path, ":authority": host });
      let status = 0;
      let xCache = "";
      const chunks: Buffer[] = [];
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        xCache = String(headers["x-cache"]);
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => resolve({ status, xCache, body: Buffer.concat(chunks).toString() }));
      stream.on("error", reject);
    });
  const first = await get("/h2/../h2.txt");
  assert.equal(first.status, 200);
  assert.equal(first.xCache, "Miss from portico");
  assert.equal(first.body, "GET /h2.txt ");
  const second = await get("/h2.txt");
  assert.equal(second.xCache, "Hit from portico");
  const rejected = await get("/../h2.txt");
  assert.equal(rejected.status, 400);
  assert.equal(origin.hits(), 1);
  assert.equal(session.alpnProtocol, "h2");
});

test("HTTP/1.1 over TLS uses the strict parser", async (t) => {
  const { fixture, origin, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const text = await new Promise<string>((resolve, reject) => {
    const socket = connectTls({ port: fixture.edge.httpsPort, host: "127.0.0.1", servername: host, ca, ALPNProtocols: ["http/1.1"] });
    const chunks: Buffer[] = [];
    socket.on("secureConnect", () => socket.write(`GET /a HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx`));
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => resolve(Buffer.concat(chunks).toString("latin1")));
    socket.on("error", reject);
  });
  assert.match(text, /^HTTP\/1\.1 400 /);
  assert.equal(origin.hits(), 0);
});

test("SNI selects RSA and ECDSA aliases", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-edge-sni-"));
  const aliases = join(dataDir, "tls", "aliases");
  await mkdir(aliases, { recursive: true });
  // The zone certificate is ECDSA. One alias is ECDSA, the other RSA.
  const makeCertificate = (name: string, key: string[]) =>
    promisify(execFile)("openssl", [
      "req", "-x509", "-newkey", ...key, "-nodes", "-days", "2",
      "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`,
      "-keyout", join(aliases, `${name}.key`), "-out", join(aliases, `${name}.crt`),
    ]);
  await makeCertificate("cdn.example.test", ["ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
  await makeCertificate("rsa.example.test", ["rsa:2048"]);
  const { fixture, host } = await setup(t, { dataDir });
  const aliasCa = await readFile(join(aliases, "cdn.example.test.crt"));
  const rsaCa = await readFile(join(aliases, "rsa.example.test.crt"));
  const zoneCa = await readFile(fixture.edge.caCertificatePath);
  const handshake = (servername: string, ca: Buffer) =>
    new Promise<{ subject: string; keyType: string; status: number }>((resolve, reject) => {
      const socket = connectTls({ port: fixture.edge.httpsPort, host: "127.0.0.1", servername, ca, ALPNProtocols: ["http/1.1"] });
      socket.on("secureConnect", () => {
        const certificate = socket.getPeerX509Certificate()!;
        socket.write(`GET /tls HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        const chunks: Buffer[] = [];
        socket.on("data", (chunk: Buffer) => chunks.push(chunk));
        socket.on("end", () =>
          resolve({
            subject: certificate.subject.replace(/^CN=/, ""),
            keyType: String(certificate.publicKey.asymmetricKeyType),
            status: Number(/^HTTP\/1\.1 (\d{3})/.exec(Buffer.concat(chunks).toString("latin1"))?.[1]),
          }),
        );
      });
      socket.on("error", reject);
    });
  assert.deepEqual(await handshake("cdn.example.test", aliasCa), { subject: "cdn.example.test", keyType: "ec", status: 200 });
  // A client that accepts ECDSA still gets the RSA alias, not the zone's ECDSA certificate.
  assert.deepEqual(await handshake("rsa.example.test", rsaCa), { subject: "rsa.example.test", keyType: "rsa", status: 200 });
  assert.deepEqual(await handshake("RSA.Example.Test", rsaCa), { subject: "rsa.example.test", keyType: "rsa", status: 200 });
  assert.deepEqual(await handshake(host, zoneCa), { subject: "*.portico.localhost", keyType: "ec", status: 200 });
  // The alias certificate does not verify for a name it does not cover.
  await assert.rejects(handshake("other.example.test", aliasCa));

  // A ClientHello that arrives a few bytes at a time, through a relay that
  // forwards the client's first bytes in 7-byte pieces, is read whole first.
  const relay = createNetServer((client) => {
    const upstream = createConnection(fixture.edge.httpsPort, "127.0.0.1");
    let first = true;
    client.on("data", async (data: Buffer) => {
      if (!first) {
        upstream.write(data);
        return;
      }
      first = false;
      client.pause();
      for (let offset = 0; offset < data.length; offset += 7) {
        upstream.write(data.subarray(offset, offset + 7));
        await sleep(1);
      }
      client.resume();
    });
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  t.after(() => relay.close());
  const relayPort = (relay.address() as AddressInfo).port;
  const split = await new Promise<string>((resolve, reject) => {
    const socket = connectTls({ port: relayPort, host: "127.0.0.1", servername: "rsa.example.test", ca: rsaCa });
    socket.on("secureConnect", () => {
      resolve(socket.getPeerX509Certificate()!.subject);
      socket.destroy();
    });
    socket.on("error", reject);
  });
  assert.equal(split, "CN=rsa.example.test");
});

test("ClientHello bounded in time and size", async (t) => {
  const { fixture } = await setup(t, { protocol: { timeouts: { headersTimeoutMs: 600 } } });
  const hello = await new Promise<Buffer>((resolve) => {
    // A real ClientHello, captured from a TLS client.
    const capture = createNetServer((socket) => socket.once("data", (data: Buffer) => { resolve(data); socket.destroy(); capture.close(); }));
    capture.listen(0, "127.0.0.1", () => {
      const client = connectTls({ port: (capture.address() as AddressInfo).port, host: "127.0.0.1", servername: "slow.example.test" });
      client.on("error", () => {});
    });
  });
  // One byte every 100 ms would take about a minute; each byte resets an idle timer, but not the deadline.
  const slow = await new Promise<{ closed: boolean; sent: number }>((resolve) => {
    const socket = createConnection(fixture.edge.httpsPort, "127.0.0.1");
    let sent = 0;
    const timer = setInterval(() => {
      if (sent >= hello.length) return;
      socket.write(hello.subarray(sent, sent + 1));
      sent++;
    }, 100);
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ closed: true, sent });
    });
  });
  assert.ok(slow.closed);
  assert.ok(slow.sent < hello.length / 2, `closed after ${slow.sent} of ${hello.length} bytes`);

  // A whole ClientHello followed by silence: the handshake is given up after the head timeout.
  const stalled = await new Promise<boolean>((resolve) => {
    const socket = createConnection(fixture.edge.httpsPort, "127.0.0.1", () => socket.write(hello));
    socket.on("error", () => {});
    // The ServerHello is read and dropped, so the close can arrive.
    socket.resume();
    socket.on("close", () => resolve(true));
  });
  assert.equal(stalled, true);

  // A ClientHello that claims more than 64 KiB is refused before any TLS processing.
  const oversized = Buffer.from(hello);
  oversized.writeUIntBE(70_000, 6, 3);
  const refused = await rawExchange(fixture.edge.httpsPort, [oversized], 3000);
  assert.equal(refused.closed, true);
  assert.equal(refused.text, "");
});

test("alias pair added while running serves at once", async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-edge-sni-late-"));
  const aliases = join(dataDir, "tls", "aliases");
  await mkdir(aliases, { recursive: true });
  const { fixture } = await setup(t, { dataDir });
  // The folder is read again at most every 10 s, counted from the start.
  await sleep(10_500);
  await promisify(execFile)("openssl", [
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
    "-subj", "/CN=late.example.test", "-addext", "subjectAltName=DNS:late.example.test",
    "-keyout", join(aliases, "late.example.test.key"), "-out", join(aliases, "late.example.test.crt"),
  ]);
  const ca = await readFile(join(aliases, "late.example.test.crt"));
  const subject = await new Promise<string>((resolve, reject) => {
    const socket = connectTls({ port: fixture.edge.httpsPort, host: "127.0.0.1", servername: "late.example.test", ca });
    socket.on("secureConnect", () => {
      resolve(socket.getPeerX509Certificate()!.subject);
      socket.destroy();
    });
    socket.on("error", reject);
  });
  assert.equal(subject, "CN=late.example.test");
});

test("viewer that stops reading is dropped", async (t) => {
  const big = Buffer.alloc(8 * 1024 * 1024, 0x61);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(big.length) });
    res.end(big);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({ memoryCacheBytes: 4 * 1024 * 1024, protocol: { timeouts: { bodyIdleTimeoutMs: 300 } } });
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });

  const { connect } = await import("node:net");
  const socket = connect(fixture.edge.httpPort, "127.0.0.1");
  t.after(() => socket.destroy());
  socket.on("error", () => {});
  socket.pause();
  socket.write(`GET /big HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n\r\n`);
  const started = Date.now();
  while (fixture.metrics.records.length === 0 && Date.now() - started < 5000) await sleep(50);
  assert.equal(fixture.metrics.records.length, 1, "the response ended without the viewer reading it");
  assert.ok(fixture.metrics.records[0]!.bytesDownloaded < big.length);
});

test("large hit: slow reader kept, stalled one dropped", async (t) => {
  const big = Buffer.alloc(16 * 1024 * 1024, 0x62);
  const medium = Buffer.alloc(2 * 1024 * 1024, 0x63);
  const origin = await startOrigin((req, res) => {
    const body = req.url === "/medium" ? medium : big;
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(body.length) });
    res.end(body);
  });
  t.after(() => origin.close());
  // Bodies up to an eighth of the memory budget are kept in memory and served from there.
  // The viewers below run in this process too, so the timeout leaves room for its pauses.
  const fixture = await startTestEdge({ memoryCacheBytes: 160 * 1024 * 1024, protocol: { timeouts: { bodyIdleTimeoutMs: 800 } } });
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const filled = await request(fixture.edge.httpPort, snapshot.domainName, "/big");
  assert.equal(filled.body.length, big.length);

  const { connect } = await import("node:net");
  const ca = await readFile(fixture.edge.caCertificatePath);
  const open = (tls: boolean) =>
    tls
      ? connectTls({ host: "127.0.0.1", port: fixture.edge.httpsPort, servername: snapshot.domainName, ca })
      : connect(fixture.edge.httpPort, "127.0.0.1");
  const readSlowly = async (pace: { everyMs: number; forMs: number; tls?: boolean }): Promise<{ head: string; received: number }> => {
    const socket = open(pace.tls === true);
    t.after(() => socket.destroy());
    let received = 0;
    let head = "";
    let paced = true;
    socket.on("data", (chunk: Buffer) => {
      if (head === "") head = chunk.subarray(0, 200).toString("latin1");
      received += chunk.length;
      if (paced) socket.pause();
    });
    socket.write(`GET /big HTTP/1.1\r\nHost: ${snapshot.domainName}\r\nConnection: close\r\n\r\n`);
    const closed = new Promise<void>((resolve) => socket.on("close", () => resolve()));
    const pacing = setInterval(() => socket.resume(), pace.everyMs);
    t.after(() => clearInterval(pacing));
    await sleep(pace.forMs);
    clearInterval(pacing);
    paced = false;
    socket.resume();
    await closed;
    return { head, received };
  };
  // One read every 150 ms, megabytes at a time: each idle timeout finds that the socket took more.
  const fast = await readSlowly({ everyMs: 150, forMs: 3000 });
  assert.match(fast.head, /^HTTP\/1\.1 200 .*x-cache: Hit from/is);
  assert.ok(fast.received > big.length, `the paced viewer got ${fast.received} bytes`);
  // One read of at most 64 KiB every 100 ms, for several idle timeouts: the kernel's send
  // queue keeps megabytes and takes nothing new from the process for longer than a timeout,
  // but the viewer keeps acknowledging bytes from it.
  const slow = await readSlowly({ everyMs: 100, forMs: 4000 });
  assert.ok(slow.received > big.length, `the slow viewer got ${slow.received} bytes`);
  // Over TLS the body leaves in slices; the last one waits in the socket the same way.
  const slowTls = await readSlowly({ everyMs: 100, forMs: 3000, tls: true });
  assert.ok(slowTls.received > big.length, `the slow TLS viewer got ${slowTls.received} bytes`);
  const slowRecord = fixture.metrics.records.at(-1)!;
  assert.ok(slowRecord.bytesDownloaded > big.length);

  for (const tls of [false, true]) {
    // Keep-alive, so nothing but the idle rule ends the connection.
    const stalled = open(tls);
    t.after(() => stalled.destroy());
    stalled.on("error", () => {});
    let read = 0;
    stalled.on("data", (chunk: Buffer) => {
      read += chunk.length;
      if (read > 1024 * 1024) stalled.pause();
    });
    const before = fixture.metrics.records.length;
    stalled.write(`GET /big HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n\r\n`);
    // The response is recorded when the edge gives up on the viewer.
    const started = Date.now();
    while (fixture.metrics.records.length === before && Date.now() - started < 8000) await sleep(50);
    assert.equal(fixture.metrics.records.length, before + 1, `the stalled viewer (TLS: ${tls}) was not dropped`);
    // The record counts what the viewer took, well short of the body.
    assert.ok(fixture.metrics.records.at(-1)!.bytesDownloaded < big.length);
  }

  // A response small enough for the kernel's queues is complete at once, and the keep-alive
  // timeout (5 s) then ends the connection while the viewer still has not read it.
  assert.equal((await request(fixture.edge.httpPort, snapshot.domainName, "/medium")).body.length, medium.length);
  for (const tls of [false, true]) {
    const lingering = open(tls);
    t.after(() => lingering.destroy());
    let received = 0;
    let reset = false;
    let stalled = true;
    lingering.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (stalled) lingering.pause();
    });
    lingering.on("error", () => (reset = true));
    const closed = new Promise<void>((resolve) => lingering.on("close", () => resolve()));
    lingering.write(`GET /medium HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n\r\n`);
    await sleep(9000);
    // The kernel resets a socket the edge dropped when a new byte arrives, and what it held is lost.
    lingering.write("G");
    stalled = false;
    lingering.resume();
    const ended = await Promise.race([closed.then(() => true), sleep(3000).then(() => false)]);
    assert.ok(ended && (reset || received < medium.length), `the lingering viewer (TLS: ${tls}) kept its connection`);
  }
});

test("close drains an HTTP/2 stream in flight", async (t) => {
  const { fixture, host } = await setup(t, {}, 300);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const session = connectHttp2(`https://127.0.0.1:${fixture.edge.httpsPort}`, { ca, servername: host });
  t.after(() => session.destroy());
  const response = http2Get(session, host, "/h2-drain");
  await sleep(100);
  const closing = fixture.close();
  const drained = await response;
  assert.equal(drained.status, 200);
  assert.equal(drained.body, "GET /h2-drain ");
  await closing;
});

test("HTTP/2 viewer stream resets", async (t) => {
  // The origin responds after 100 ms, so each reset reaches the edge while it waits.
  const { fixture, origin, host } = await setup(t, {}, 100);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const session = connectHttp2(`https://127.0.0.1:${fixture.edge.httpsPort}`, { ca, servername: host });
  session.on("error", () => {});
  t.after(() => session.destroy());
  const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR } = constants;
  const resets = [NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_PROTOCOL_ERROR].map(
    (code, index) =>
      new Promise<void>((resolve) => {
        const stream = session.request({ ":path": `/reset-${index}`, ":authority": host });
        stream.on("error", () => {});
        stream.on("close", () => resolve());
        // The reset goes out once the request has reached the edge.
        setTimeout(() => stream.close(code), 30);
      }),
  );
  await Promise.all(resets);
  await sleep(200);
  assert.equal(origin.hits(), 3);

  const next = await http2Get(session, host, "/after-resets");
  assert.equal(next.status, 200);
  assert.equal(next.body, "GET /after-resets ");
});

test("viewer leaving mid-upload aborts the origin request", async (t) => {
  const { createServer } = await import("node:http");
  const abortedAt: number[] = [];
  const originServer = createServer((req, res) => {
    req.on("close", () => {
      if (!req.complete) abortedAt.push(Date.now());
    });
    req.resume();
    req.on("end", () => res.end("complete"));
  });
  await new Promise<void>((resolve) => originServer.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    originServer.closeAllConnections();
    originServer.close();
  });
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = customSnapshot({
    originPort: (originServer.address() as import("node:net").AddressInfo).port,
    defaultBehavior: { AllowedMethods: { Quantity: 7, Items: ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"] } },
  });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });

  const { connect } = await import("node:net");
  const socket = connect(fixture.edge.httpPort, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(`POST /upload HTTP/1.1\r\nHost: ${snapshot.domainName}\r\nContent-Length: 100000\r\n\r\n`);
  socket.write(Buffer.alloc(1000, 0x61));
  await sleep(200);
  const leftAt = Date.now();
  socket.destroy();
  const deadline = Date.now() + 3_000;
  while (abortedAt.length === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(abortedAt.length, 1, "the origin request was not aborted within 3 s of the viewer leaving");
  assert.ok(abortedAt[0]! - leftAt < 1_000);
});

test("pipelining without reading is held back", async (t) => {
  const body = Buffer.alloc(16 * 1024, 0x62);
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream" });
    res.end(body);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({});
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const warm = await request(fixture.edge.httpPort, snapshot.domainName, "/p16k");
  assert.equal(warm.status, 200);

  // 3000 pipelined hits of 16 KiB are 48 MiB of responses; the client reads none of them at first.
  const count = 3000;
  const one = `GET /p16k HTTP/1.1\r\nHost: ${snapshot.domainName}\r\n\r\n`;
  const socket = createConnection({ host: "127.0.0.1", port: fixture.edge.httpPort });
  t.after(() => socket.destroy());
  await new Promise<void>((resolve) => socket.once("connect", resolve));
  socket.pause();
  socket.write(one.repeat(count));
  await sleep(500);
  const servedBeforeReading = fixture.metrics.records.length - 1;
  assert.ok(servedBeforeReading < count / 3, `${servedBeforeReading} responses were made before the client read`);

  let received = 0;
  socket.on("data", (chunk: Buffer) => (received += chunk.length));
  socket.resume();
  for (let i = 0; i < 200 && fixture.metrics.records.length - 1 < count; i++) await sleep(25);
  assert.equal(fixture.metrics.records.length - 1, count);
  for (let i = 0; i < 200 && received < count * body.length; i++) await sleep(25);
  assert.ok(received > count * body.length, `received ${received} bytes`);
  assert.equal(origin.hits(), 1);
});
