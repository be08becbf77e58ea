import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { connect as connectHttp2, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http2";
import { test, type TestContext } from "node:test";
import { promisify } from "node:util";
import { customSnapshot, sleep, startOrigin, startTestEdge } from "./helpers.js";
import { F, frame, headerBlock, PREFACE, RawHttp2Client, T } from "./http2-raw.js";
import { rawExchange } from "./raw.js";

const run = promisify(execFile);
const PROTOCOL_ERROR = 1;
const ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"] as const;

async function setup(t: TestContext, originDelayMs = 0) {
  const origin = await startOrigin(async (req, res, body) => {
    if (originDelayMs > 0) await sleep(originDelayMs);
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end(`${req.method} ${req.url} ${body.toString()}`);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const snapshot = customSnapshot({
    originPort: origin.port,
    defaultBehavior: { AllowedMethods: { Quantity: ALL_METHODS.length, Items: [...ALL_METHODS] } },
    behaviors: [
      { PathPattern: "/secure/*", ViewerProtocolPolicy: "redirect-to-https" },
      { PathPattern: "/httpsonly/*", ViewerProtocolPolicy: "https-only" },
    ],
  });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { origin, fixture, port: fixture.edge.httpPort, httpsPort: fixture.edge.httpsPort, host: snapshot.domainName };
}

interface Http2Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function send(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<Http2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined });
    let responseHeaders: IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    stream.on("response", (received) => (responseHeaders = received));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () =>
      resolve({ status: Number(responseHeaders[":status"]), headers: responseHeaders, body: Buffer.concat(chunks).toString() }),
    );
    stream.on("error", reject);
    if (body !== undefined) stream.end(body);
  });
}

test("h2c with node's client", async (t) => {
  const { origin, port, httpsPort, host } = await setup(t);
  const session = connectHttp2(`http://127.0.0.1:${port}`);
  t.after(() => session.close());

  const miss = await send(session, { ":path": "/a.txt", ":authority": host });
  assert.equal(miss.status, 200);
  assert.equal(miss.headers["x-cache"], "Miss from portico");
  assert.equal(miss.body, "GET /a.txt ");
  const hit = await send(session, { ":path": "/a.txt", ":authority": host });
  assert.equal(hit.status, 200);
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  assert.equal(hit.body, "GET /a.txt ");
  assert.equal(origin.hits("/a.txt"), 1);

  const head = await send(session, { ":path": "/a.txt", ":authority": host, ":method": "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.headers["content-length"], String("GET /a.txt ".length));
  assert.equal(head.body, "");

  const posted = await send(session, { ":path": "/up", ":authority": host, ":method": "POST", "content-length": "5" }, "hello");
  assert.equal(posted.status, 200);
  assert.equal(posted.body, "POST /up hello");
  assert.equal(origin.requests.find((r) => r.url === "/up")?.body.toString(), "hello");

  // Viewer protocol policies see plain HTTP, even when the client claims https in :scheme.
  const redirected = await send(session, { ":path": "/secure/page?x=1", ":authority": host });
  assert.equal(redirected.status, 301);
  assert.equal(redirected.headers.location, `https://${host}:${httpsPort}/secure/page?x=1`);
  const claimed = await send(session, { ":path": "/secure/page", ":authority": host, ":scheme": "https" });
  assert.equal(claimed.status, 301);
  const forbidden = await send(session, { ":path": "/httpsonly/page", ":authority": host });
  assert.equal(forbidden.status, 403);
  assert.equal(origin.hits("/secure/page?x=1") + origin.hits("/secure/page") + origin.hits("/httpsonly/page"), 0);
});

test("h2c with curl, nghttp and h2load", async (t) => {
  const { origin, port, httpsPort, host } = await setup(t);
  const base = `http://127.0.0.1:${port}`;
  const curl = (args: string[]) =>
    run("curl", ["-sS", "--http2-prior-knowledge", "-H", `Host: ${host}`, ...args]).then((result) => result.stdout);

  // One connection per call: curl 7.88.1 fails a second request on a reused h2c connection,
  // against node:http2's server as well.
  const miss = await curl(["-i", `${base}/curl.txt`]);
  assert.match(miss, /^HTTP\/2 200 \r\n/);
  assert.match(miss, /\r\nx-cache: Miss from portico\r\n/);
  assert.ok(miss.endsWith("\r\n\r\nGET /curl.txt "), miss);
  const hit = await curl(["-i", `${base}/curl.txt`]);
  assert.match(hit, /^HTTP\/2 200 \r\n/);
  assert.match(hit, /\r\nx-cache: Hit from portico\r\n/);
  assert.ok(hit.endsWith("\r\n\r\nGET /curl.txt "), hit);
  assert.equal(origin.hits("/curl.txt"), 1);

  const posted = await curl(["-w", " %{http_version} %{http_code}", "--data-binary", "body", `${base}/post`]);
  assert.equal(posted, "POST /post body 2 200");

  const head = await curl(["-I", `${base}/curl.txt`]);
  assert.match(head, /^HTTP\/2 200 \r\n/);
  assert.match(head, /\r\nx-cache: Hit from portico\r\n/);

  const redirect = await curl(["-o", "/dev/null", "-w", "%{http_version} %{http_code} %{redirect_url}", `${base}/secure/a`]);
  assert.equal(redirect, `2 301 https://${host}:${httpsPort}/secure/a`);

  // `Upgrade: h2c` is not offered: curl --http2 on http:// stays on HTTP/1.1.
  const upgrade = await run("curl", ["-sS", "--http2", "-H", `Host: ${host}`, "-w", " %{http_version} %{http_code}", `${base}/curl.txt`]);
  assert.equal(upgrade.stdout, "GET /curl.txt  1.1 200");

  const nghttp = await run("nghttp", ["-n", "-s", "-m", "2", "-H", `:authority: ${host}`, `${base}/ng.txt`]);
  assert.equal(nghttp.stdout.match(/ 200 /g)?.length, 2, nghttp.stdout);

  const h2load = await run("h2load", ["-n", "20", "-c", "2", "-H", `:authority: ${host}`, `${base}/load.txt`]);
  assert.match(h2load.stdout, /Application protocol: h2c/);
  assert.match(h2load.stdout, /requests: 20 total, 20 started, 20 done, 20 succeeded, 0 failed/);
  assert.match(h2load.stdout, /status codes: 20 2xx/);
});

/** Request fields of a GET over h2c, as literals. */
function h2cGet(host: string, path: string): Buffer {
  return headerBlock([[":method", "GET"], [":scheme", "http"], [":path", path], [":authority", host]]);
}


test("h2c preface in small pieces", async (t) => {
  const { port, host } = await setup(t);
  const client = await RawHttp2Client.connectPlain(port);
  t.after(() => client.close());
  const opening = Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, h2cGet(host, "/pieces"))]);
  // Pieces of 1 to 3 bytes, so the preface line itself arrives over several reads.
  for (let offset = 0, size = 1; offset < opening.length; offset += size, size = (size % 3) + 1) {
    client.send(opening.subarray(offset, offset + size));
    await sleep(2);
  }
  const data = await client.waitFor((f) => f.type === T.DATA && f.streamId === 1 && (f.flags & F.END_STREAM) !== 0);
  assert.notEqual(data, undefined);
  assert.equal(client.statusOf(1), 200);
  const body = Buffer.concat(client.frames.filter((f) => f.type === T.DATA && f.streamId === 1).map((f) => f.payload));
  assert.equal(body.toString(), "GET /pieces ");
  assert.ok(client.frames.some((f) => f.type === T.SETTINGS && (f.flags & F.ACK) === 0));
});

test("h2c wrong preface gets GOAWAY", async (t) => {
  const { origin, port, host } = await setup(t);
  const client = await RawHttp2Client.connectPlain(port);
  t.after(() => client.close());
  client.send(Buffer.from("PRI * HTTP/2.0\r\n\r\nXM\r\n\r\n", "latin1"));
  client.send(frame(T.SETTINGS, 0, 0));
  const goaway = await client.waitFor((f) => f.type === T.GOAWAY);
  assert.equal(goaway?.payload.readUInt32BE(4), PROTOCOL_ERROR);
  await client.waitFor(() => false, 1500);
  assert.equal(client.closed, true);

  // The preface counts only at the start of a connection: after a request it is an HTTP/1.1 error.
  const late = await rawExchange(port, [`GET /first HTTP/1.1\r\nHost: ${host}\r\n\r\n`, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"], 3000, 100);
  assert.deepEqual(late.statuses, [200, 505]);
  assert.equal(late.closed, true);
  assert.equal(origin.hits(), 1);
});

test("h2c drains on shutdown", async (t) => {
  const { fixture, port, host } = await setup(t, 300);
  const session = connectHttp2(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  t.after(() => session.destroy());
  const goaway = new Promise<number>((resolve) => session.once("goaway", (code: number) => resolve(code)));
  const inFlight = send(session, { ":path": "/drain", ":authority": host });
  await sleep(100);
  const closing = fixture.close();
  assert.equal(await goaway, 0);
  const drained = await inFlight;
  assert.equal(drained.status, 200);
  assert.equal(drained.body, "GET /drain ");
  await closing;
  assert.equal(session.closed || session.destroyed, true);
});
