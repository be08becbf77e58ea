import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { connect as connectTls } from "node:tls";
import { promisify } from "node:util";
import { customSnapshot, startOrigin, startTestEdge } from "./helpers.js";
import { rawExchange } from "./raw.js";

async function setup(t: TestContext, options: Parameters<typeof startTestEdge>[0] = {}, aliases: string[] = []) {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end(`${req.method} ${req.url}`);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge(options);
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port, aliases });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { origin, fixture, port: fixture.edge.httpsPort, host: snapshot.domainName };
}

const PLAIN_BODY = "Bad Request: a plain HTTP request was sent to the HTTPS port\n";

test("plain HTTP on TLS port gets 400", async (t) => {
  const { origin, port, host } = await setup(t, {
    protocol: { limits: { maxHeadBytes: 4096 }, timeouts: { headersTimeoutMs: 600 } },
  });

  const curl = await promisify(execFile)("curl", ["-sS", "-i", "-H", `Host: ${host}`, `http://127.0.0.1:${port}/plain`]);
  assert.match(curl.stdout, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.match(curl.stdout, /\r\nconnection: close\r\n/i);
  assert.match(curl.stdout, /\r\ncontent-type: text\/plain; charset=utf-8\r\n/i);
  assert.ok(curl.stdout.endsWith(`\r\n\r\n${PLAIN_BODY}`), curl.stdout);

  // A head that trickles in a few bytes at a time gets its response once it ends.
  const head = `GET /trickle HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const pieces = head.match(/[^]{1,3}/g)!;
  const trickled = await rawExchange(port, pieces, 5000, 5);
  assert.deepEqual(trickled.statuses, [400]);
  assert.equal(trickled.closed, true);

  // A body after the head is read and dropped, so the response is not lost to a reset.
  const body = "x".repeat(200_000);
  const post = await rawExchange(port, [`POST /upload HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\n\r\n`, body], 5000);
  assert.deepEqual(post.statuses, [400]);
  assert.equal(post.closed, true);

  // A head that never ends gets its response once it reaches the head size limit.
  const endless = await rawExchange(port, [`GET /endless HTTP/1.1\r\nHost: ${host}\r\nX-Filler: ${"a".repeat(5000)}`], 5000);
  assert.deepEqual(endless.statuses, [400]);
  assert.equal(endless.closed, true);

  // Bytes without a method token are not HTTP, and the TLS server closes the connection.
  const binary = await rawExchange(port, [Buffer.from([0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07])], 5000);
  assert.equal(binary.closed, true);
  assert.equal(binary.text, "");

  const noSpace = await rawExchange(port, ["GET\r\n\r\n"], 5000);
  assert.equal(noSpace.closed, true);
  assert.equal(noSpace.text, "");

  const longToken = await rawExchange(port, [`${"A".repeat(100)} / HTTP/1.1\r\n\r\n`], 5000);
  assert.equal(longToken.closed, true);
  assert.equal(longToken.text, "");

  // A request line whose head never ends is dropped at the head timeout without a reply.
  const stalled = await rawExchange(port, ["GET / HTTP/1.1\r\nHost: a\r\n"], 5000);
  assert.equal(stalled.closed, true);
  assert.equal(stalled.text, "");
  assert.equal(origin.hits(), 0);
});

/** Makes a self-signed RSA pair for `name` in the alias folder of a new data folder. */
async function aliasDataDir(names: string[]): Promise<{ dataDir: string; aliases: string }> {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-edge-fqdn-"));
  const aliases = join(dataDir, "tls", "aliases");
  await mkdir(aliases, { recursive: true });
  for (const name of names) {
    await promisify(execFile)("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
      "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`,
      "-keyout", join(aliases, `${name}.key`), "-out", join(aliases, `${name}.crt`),
    ]);
  }
  return { dataDir, aliases };
}

/** Runs `openssl s_client` with `servername` and returns the subject of the certificate it received. */
function opensslSubject(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", ["s_client", "-connect", `127.0.0.1:${port}`, "-servername", servername, "-brief"]);
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", reject);
    child.on("close", () => {
      const subject = /Peer certificate: (.*)/.exec(output)?.[1];
      if (subject === undefined) reject(new Error(`no peer certificate in: ${output}`));
      else resolve(subject.trim());
    });
    child.stdin.end();
  });
}

test("SNI with trailing dot selects alias", async (t) => {
  const { dataDir, aliases } = await aliasDataDir(["cdn.example.test", "*.example.org", "bad.example.test"]);
  // A key that is not the certificate's: the pair is skipped, so the name gets the zone certificate.
  await promisify(execFile)("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", join(aliases, "bad.example.test.key")]);
  const { port, origin } = await setup(t, { dataDir }, ["cdn.example.test", "www.example.org", "bad.example.test"]);
  assert.equal(await opensslSubject(port, "bad.example.test"), "CN = *.portico.localhost");

  assert.equal(await opensslSubject(port, "cdn.example.test"), "CN = cdn.example.test");
  assert.equal(await opensslSubject(port, "cdn.example.test."), "CN = cdn.example.test");
  assert.equal(await opensslSubject(port, "CDN.Example.Test."), "CN = cdn.example.test");
  assert.equal(await opensslSubject(port, "www.example.org."), "CN = *.example.org");
  assert.equal(await opensslSubject(port, "unknown.example.test."), "CN = *.portico.localhost");

  // Through Node's client, with a Host that has the trailing dot too: the alias routes the request.
  const ca = await readFile(join(aliases, "cdn.example.test.crt"));
  const exchange = await new Promise<{ subject: string; response: string }>((resolve, reject) => {
    const socket = connectTls({ port, host: "127.0.0.1", servername: "cdn.example.test.", ca, ALPNProtocols: ["http/1.1"] });
    socket.on("secureConnect", () => {
      const subject = socket.getPeerX509Certificate()!.subject;
      socket.write("GET /fqdn HTTP/1.1\r\nHost: cdn.example.test.\r\nConnection: close\r\n\r\n");
      const chunks: Buffer[] = [];
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("end", () => resolve({ subject, response: Buffer.concat(chunks).toString("latin1") }));
    });
    socket.on("error", reject);
  });
  assert.equal(exchange.subject, "CN=cdn.example.test");
  assert.match(exchange.response, /^HTTP\/1\.1 200 /);
  assert.ok(exchange.response.endsWith("GET /fqdn"), exchange.response);
  assert.equal(origin.hits("/fqdn"), 1);
});

test("TLS follows the client's cipher order", async (t) => {
  const { fixture, port, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const negotiated = (ciphers: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connectTls({ host: "127.0.0.1", port, servername: host, ca, ciphers, ALPNProtocols: ["http/1.1"] }, () => {
        const name = socket.getCipher().name;
        socket.destroy();
        resolve(name);
      });
      socket.once("error", reject);
    });
  assert.equal(await negotiated("TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"), "TLS_AES_128_GCM_SHA256");
  assert.equal(await negotiated("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256"), "TLS_AES_256_GCM_SHA384");
  assert.equal(await negotiated("TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"), "TLS_CHACHA20_POLY1305_SHA256");
});

test("TLS 1.2 offers only ECDHE AEAD", async (t) => {
  const { fixture, port, host } = await setup(t);
  const ca = await readFile(fixture.edge.caCertificatePath);
  const handshake = (ciphers: string) =>
    new Promise<string>((resolve) => {
      const socket = connectTls({ host: "127.0.0.1", port, servername: host, ca, ciphers, maxVersion: "TLSv1.2" }, () => {
        const name = socket.getCipher().name;
        socket.destroy();
        resolve(name);
      });
      socket.once("error", () => resolve("failed"));
    });
  // The zone certificate has an ECDSA key, so the suites here are the ECDSA ones.
  assert.equal(await handshake("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"), "ECDHE-ECDSA-AES256-GCM-SHA384");
  assert.equal(await handshake("ECDHE-ECDSA-CHACHA20-POLY1305"), "ECDHE-ECDSA-CHACHA20-POLY1305");
  // CBC suites, which Node.js enables by default, are not offered.
  assert.equal(await handshake("ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA"), "failed");
});

test("TLS greeting during drain is served", async (t) => {
  const { fixture, port, host } = await setup(t);
  const { createConnection } = await import("node:net");
  const raw = createConnection(port, "127.0.0.1");
  t.after(() => raw.destroy());
  await new Promise((resolve) => raw.once("connect", resolve));
  // Accepted by the edge, but the ClientHello has not been sent when the drain begins.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const closing = fixture.edge.close();
  await new Promise((resolve) => setTimeout(resolve, 300));

  const secure = connectTls({ socket: raw, servername: host, rejectUnauthorized: false });
  secure.on("error", () => {});
  secure.write(`GET /late HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const received: Buffer[] = [];
  secure.on("data", (chunk: Buffer) => received.push(chunk));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5_000);
    secure.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  assert.equal(closed, true, "the edge closes the connection after the response");
  const response = Buffer.concat(received).toString("latin1");
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.match(response, /\r\nconnection: close\r\n/i);
  assert.match(response, /GET \/late$/);
  await closing;
});
