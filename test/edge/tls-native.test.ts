import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { connect as connectTcp, createServer as createTcpServer, type AddressInfo } from "node:net";
import { test, type TestContext } from "node:test";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { nativeTlsAvailable } from "../../src/edge/viewer-tls.js";
import { allMethodsSnapshot, sleep, startOrigin, startTestEdge } from "./helpers.js";

const BIG = Buffer.alloc(3 * 1024 * 1024 + 17, 0x61);
for (let i = 0; i < BIG.length; i += 4096) BIG[i] = i % 251;

async function setup(t: TestContext, nativeTls: boolean) {
  const origin = await startOrigin((req, res, upload) => {
    if (req.method === "POST") {
      res.end(`received ${upload.length}`);
      return;
    }
    const body = req.url === "/big" ? BIG : Buffer.from(`${req.method} ${req.url}`);
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "application/octet-stream", "content-length": String(body.length) });
    res.end(body);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({ protocol: { nativeTls, timeouts: { headersTimeoutMs: 1000 } } });
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const ca = await readFile(fixture.edge.caCertificatePath);
  return { origin, fixture, port: fixture.edge.httpsPort, host: snapshot.domainName, ca };
}

/**
 * Opens a TLS connection with ALPN http/1.1, writes each of `texts` as a TLS record of its own, and
 * returns every byte until the edge closes.
 */
function tlsExchange(port: number, host: string, ca: Buffer, ...texts: string[]): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: "127.0.0.1", port, servername: host, ca, ALPNProtocols: ["http/1.1"] }, () => {
      for (const text of texts) socket.write(text);
    });
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
  });
}

/** Returns the HTTP/1.1 responses in `bytes` as [status line, body] pairs, for bodies framed by content-length. */
function responses(bytes: Buffer): Array<[string, Buffer]> {
  const found: Array<[string, Buffer]> = [];
  let at = 0;
  while (at < bytes.length) {
    const headEnd = bytes.indexOf("\r\n\r\n", at);
    assert.ok(headEnd > 0, "a complete head");
    const head = bytes.subarray(at, headEnd).toString("latin1");
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1]);
    found.push([head.split("\r\n")[0]!, bytes.subarray(headEnd + 4, headEnd + 4 + length)]);
    at = headEnd + 4 + length;
  }
  return found;
}

/** Returns the first bytes a Node.js TLS client sends for `servername`: its ClientHello, caught by a plain server. */
async function clientHello(servername: string): Promise<Buffer> {
  const server = createTcpServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    return await new Promise<Buffer>((resolve) => {
      server.once("connection", (socket) => socket.once("data", (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
      }));
      const client = connectTls({ host: "127.0.0.1", port: (server.address() as AddressInfo).port, servername });
      client.on("error", () => {});
    });
  } finally {
    server.close();
  }
}

for (const nativeTls of nativeTlsAvailable ? [true, false] : [false]) {
  const stack = nativeTls ? "TLS in C" : "Node.js TLS";

  test(`${stack}: HTTP/2 and HTTP/1.1 bodies intact`, async (t) => {
    const { port, host, ca } = await setup(t, nativeTls);
    const session = connectHttp2(`https://${host}:${port}`, { ca, createConnection: () => connectTls({ host: "127.0.0.1", port, servername: host, ca, ALPNProtocols: ["h2"] }) });
    t.after(() => session.close());
    const get = (path: string): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ":path": path });
        const chunks: Buffer[] = [];
        stream.on("data", (chunk: Buffer) => chunks.push(chunk));
        stream.on("end", () => resolve(Buffer.concat(chunks)));
        stream.on("error", reject);
      });
    // A miss and hits of a large body, on concurrent streams.
    const bodies = await Promise.all([get("/big"), get("/big"), get("/small")]);
    assert.ok(bodies[0]!.equals(BIG));
    assert.ok(bodies[1]!.equals(BIG));
    assert.equal(bodies[2]!.toString(), "GET /small");

    const http1 = responses(await tlsExchange(port, host, ca, `GET /big HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    assert.equal(http1.length, 1);
    assert.equal(http1[0]![0], "HTTP/1.1 200 OK");
    assert.ok(http1[0]![1].equals(BIG));
  });

  // The edge stops reading while it sends a large response. When the records arrive together,
  // OpenSSL reads them in one read, and the requests behind the response wait inside OpenSSL,
  // which the socket does not signal again.
  test(`${stack}: pipelined requests behind large responses`, async (t) => {
    const { port, host, ca } = await setup(t, nativeTls);
    const head = (path: string, last: boolean) => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
    // Hits are sent at once, so the edge has megabytes unsent when the second request arrives.
    await tlsExchange(port, host, ca, head("/big", true));
    const all = responses(await tlsExchange(port, host, ca, head("/big", false), head("/big", false), head("/after", true)));
    assert.deepEqual(
      all.map(([status]) => status),
      ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK", "HTTP/1.1 200 OK"],
    );
    assert.ok(all[0]![1].equals(BIG));
    assert.ok(all[1]![1].equals(BIG));
    assert.equal(all[2]![1].toString(), "GET /after");
  });

  // The origin reads the upload in pauses, so the edge stops reading the viewer now and then.
  // Records that OpenSSL read ahead before a pause are not signalled by the socket again.
  test(`${stack}: upload read in pauses arrives whole`, async (t) => {
    const { port, host, ca, fixture } = await setup(t, nativeTls);
    const slowOrigin = createServer((req, res) => {
      let received = 0;
      req.on("data", (chunk: Buffer) => {
        received += chunk.length;
        req.pause();
        setTimeout(() => req.resume(), 2);
      });
      req.on("end", () => res.end(`received ${received}`));
    });
    await new Promise<void>((resolve) => slowOrigin.listen(0, "127.0.0.1", resolve));
    t.after(() => slowOrigin.close());
    const snapshot = allMethodsSnapshot((slowOrigin.address() as AddressInfo).port);
    await fixture.publishAndWait({ type: "distribution.updated", snapshot: { ...snapshot, version: 2 } });
    const body = Buffer.alloc(4 * 1024 * 1024, 0x75);
    const pieces: string[] = [`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`];
    for (let at = 0; at < body.length; at += 16 * 1024) pieces.push(body.subarray(at, at + 16 * 1024).toString("latin1"));
    const answer = responses(await tlsExchange(port, host, ca, ...pieces));
    assert.equal(answer[0]![0], "HTTP/1.1 200 OK");
    assert.equal(answer[0]![1].toString(), `received ${body.length}`);
  });

  test(`${stack}: failed handshakes leave nothing open`, async (t) => {
    const { port, host, ca } = await setup(t, nativeTls);
    const hello = await clientHello(host);
    const openDescriptors = async (): Promise<number> => (await readdir("/proc/self/fd")).length;
    const before = await openDescriptors();

    const attempts: Array<Promise<void>> = [];
    for (let i = 0; i < 10; i++) {
      // A client that accepts no certificate of the edge's: the handshake fails on its side.
      attempts.push(
        new Promise((resolve) => {
          const socket: TLSSocket = connectTls({ host: "127.0.0.1", port, servername: host });
          socket.on("error", () => resolve());
          socket.on("close", () => resolve());
        }),
      );
      // A client that offers only TLS 1.1, which the edge does not speak.
      attempts.push(
        promisify(execFile)("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", host, "-tls1_1"], { timeout: 5000 }).then(
          () => assert.fail("TLS 1.1 was accepted"),
          () => undefined,
        ),
      );
      // A ClientHello followed by bytes that are not TLS.
      attempts.push(
        new Promise((resolve) => {
          const socket = connectTcp(port, "127.0.0.1", () => socket.write(Buffer.concat([hello, Buffer.from("not a TLS record")])));
          // Reading, so that the edge's close is seen.
          socket.resume();
          socket.on("error", () => resolve());
          socket.on("close", () => resolve());
        }),
      );
    }
    await Promise.all(attempts);

    // The edge notices each closed connection within a poll or the handshake timeout (1 s).
    let after = await openDescriptors();
    for (let waited = 0; after > before + 2 && waited < 3000; waited += 100) {
      await sleep(100);
      after = await openDescriptors();
    }
    assert.ok(after <= before + 2, `${after - before} more descriptors open than before`);

    // The edge still serves.
    const served = responses(await tlsExchange(port, host, ca, `GET /small HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    assert.equal(served[0]![1].toString(), "GET /small");
  });
}
