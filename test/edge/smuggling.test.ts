import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { allMethodsSnapshot, startOrigin, startTestEdge } from "./helpers.js";
import { rawExchange } from "./raw.js";

async function setup(t: TestContext, protocol?: NonNullable<Parameters<typeof startTestEdge>[0]>["protocol"]) {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
    res.end("origin body");
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge(protocol === undefined ? {} : { protocol });
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { origin, port: fixture.edge.httpPort, host: snapshot.domainName };
}

const smuggling: Array<[string, (host: string) => string]> = [
  ["Content-Length with Transfer-Encoding", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
  ["Transfer-Encoding with Content-Length", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n`],
  ["duplicate equal Content-Length", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`],
  ["duplicate differing Content-Length", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`],
  ["list-valued Content-Length", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nContent-Length: 3, 3\r\n\r\nabc`],
  ["signed Content-Length", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nContent-Length: +3\r\n\r\nabc`],
  ["obsolete line folding", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX-Folded: one\r\n two\r\n\r\n`],
  ["folded Transfer-Encoding", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`],
  ["space before colon", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`],
  ["control character in name", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX-A\x01b: 1\r\n\r\n`],
  ["separator in name", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX(a): 1\r\n\r\n`],
  ["NUL in value", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX-A: a\x00b\r\n\r\n`],
  ["DEL in value", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX-A: a\x7fb\r\n\r\n`],
  ["bare CR in value", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nX-A: a\rb\r\n\r\n`],
  ["bare LF line end", (h) => `GET /a HTTP/1.1\nHost: ${h}\n\n`],
  ["Transfer-Encoding in HTTP/1.0", (h) => `POST /a HTTP/1.0\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
  ["chunked not last", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`],
  ["missing Host", () => `GET /a HTTP/1.1\r\nX-A: 1\r\n\r\n`],
  ["duplicate Host", (h) => `GET /a HTTP/1.1\r\nHost: ${h}\r\nHost: other.example\r\n\r\n`],
  ["two spaces in request line", (h) => `GET  /a HTTP/1.1\r\nHost: ${h}\r\n\r\n`],
  ["lower-case version", (h) => `GET /a http/1.1\r\nHost: ${h}\r\n\r\n`],
  ["backslash in target", (h) => `GET /a\\..\\b HTTP/1.1\r\nHost: ${h}\r\n\r\n`],
  ["fragment in target", (h) => `GET /a#b HTTP/1.1\r\nHost: ${h}\r\n\r\n`],
  ["invalid chunk size", (h) => `POST /a HTTP/1.1\r\nHost: ${h}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`],
];

for (const [name, build] of smuggling) {
  test(`rejects ${name}`, async (t) => {
    const { origin, port, host } = await setup(t);
    // A valid request follows on the same connection: it must never be read.
    const exchange = await rawExchange(port, [build(host) + `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
    assert.deepEqual(exchange.statuses, [400]);
    assert.equal(exchange.closed, true);
    assert.match(exchange.text, /\r\nconnection: close\r\n/);
    assert.equal(origin.hits(), 0);
  });
}

test("unknown transfer coding gets 400", async (t) => {
  const { origin, port, host } = await setup(t);
  // RFC 9112 section 6.3: without chunked last, the body length cannot be known.
  const exchange = await rawExchange(port, [`POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip\r\n\r\n`]);
  assert.deepEqual(exchange.statuses, [400]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits(), 0);
});

test("unsupported coding before chunked gets 501", async (t) => {
  const { origin, port, host } = await setup(t);
  const exchange = await rawExchange(port, [`POST /a HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n`]);
  assert.deepEqual(exchange.statuses, [501]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits(), 0);
});

test("HTTP/2 version on HTTP/1 port gets 505", async (t) => {
  const { origin, port, host } = await setup(t);
  const exchange = await rawExchange(port, [`GET /a HTTP/2.0\r\nHost: ${host}\r\n\r\n`]);
  assert.deepEqual(exchange.statuses, [505]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits(), 0);
});

test("long request line gets 414", async (t) => {
  const { origin, port, host } = await setup(t);
  const exchange = await rawExchange(port, [`GET /${"a".repeat(9000)} HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
  assert.deepEqual(exchange.statuses, [414]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits(), 0);
});

test("request line at the limit passes", async (t) => {
  const { origin, port, host } = await setup(t, { limits: { maxRequestLineBytes: 100 } });
  const path = `/${"b".repeat(100 - "GET / HTTP/1.1".length)}`;
  assert.equal(`GET ${path} HTTP/1.1`.length, 100);
  const fits = await rawExchange(port, [`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`]);
  assert.deepEqual(fits.statuses, [200]);
  const over = await rawExchange(port, [`GET ${path}b HTTP/1.1\r\nHost: ${host}\r\n\r\n`]);
  assert.deepEqual(over.statuses, [414]);
  assert.equal(origin.hits(), 1);
});

test("large header block gets 431", async (t) => {
  const { origin, port, host } = await setup(t);
  const headers = Array.from({ length: 40 }, (_, i) => `X-Filler-${i}: ${"v".repeat(1000)}\r\n`).join("");
  const exchange = await rawExchange(port, [`GET /a HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n`]);
  assert.deepEqual(exchange.statuses, [431]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits(), 0);
});

test("too many header fields get 431", async (t) => {
  const { origin, port, host } = await setup(t);
  const headers = Array.from({ length: 101 }, (_, i) => `X-${i}: 1\r\n`).join("");
  const exchange = await rawExchange(port, [`GET /a HTTP/1.1\r\nHost: ${host}\r\n${headers}\r\n`]);
  assert.deepEqual(exchange.statuses, [431]);
  assert.equal(origin.hits(), 0);
});

test("header block sent byte by byte still parses", async (t) => {
  const { origin, port, host } = await setup(t);
  const bytes = [...`GET /bytes HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`];
  const exchange = await rawExchange(port, bytes, 3000);
  assert.deepEqual(exchange.statuses, [200]);
  assert.equal(exchange.closed, true);
  assert.equal(origin.hits("/bytes"), 1);
});
