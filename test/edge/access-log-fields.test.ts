import assert from "node:assert/strict";
import { test } from "node:test";
import { customSnapshot, request, sleep, startOrigin, startTestEdge } from "./helpers.js";
import { rawExchange } from "./raw.js";

async function setup(t: import("node:test").TestContext) {
  const origin = await startOrigin((req, res) => {
    if (req.url === "/missing") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("origin 404");
      return;
    }
    const body = req.url === "/errors/404.html" ? "<h1>not here</h1>" : "0123456789";
    res.writeHead(200, { "cache-control": "max-age=60", "content-type": req.url?.endsWith(".html") ? "text/html" : "text/plain" });
    res.end(body);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge();
  t.after(() => fixture.close());
  const logged = customSnapshot({ id: "E2LOGGEDDIST1", originPort: origin.port });
  logged.config.Logging = { Enabled: true, IncludeCookies: false, Bucket: "logs.s3.amazonaws.com", Prefix: "" };
  logged.config.CustomErrorResponses = {
    Quantity: 1,
    Items: [{ ErrorCode: 404, ResponsePagePath: "/errors/404.html", ResponseCode: "404", ErrorCachingMinTTL: 30 }],
  };
  const unlogged = customSnapshot({ id: "E2UNLOGGEDD01", originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot: logged });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot: unlogged });
  return { fixture, logged, unlogged };
}

test("logged requests carry response fields", async (t) => {
  const { fixture, logged } = await setup(t);
  const port = fixture.edge.httpPort;
  const host = logged.domainName;
  const miss = await request(port, host, "/file.txt");
  assert.equal(miss.status, 200);
  const hit = await request(port, host, "/file.txt");
  assert.equal(hit.headers["x-cache"], "Hit from portico");
  const ranged = await request(port, host, "/file.txt", { headers: { range: "bytes=2-5" } });
  assert.equal(ranged.status, 206);
  const page = await request(port, host, "/missing");
  assert.equal(page.status, 404);
  assert.equal(page.body.toString(), "<h1>not here</h1>");
  await sleep(50);

  const records = fixture.metrics.records.filter((record) => record.distributionId === logged.id);
  assert.equal(records.length, 4);
  const [missRecord, hitRecord, rangeRecord, pageRecord] = records;
  for (const record of records) {
    assert.equal(typeof record.clientPort, "number", "client port");
    assert.ok(record.clientPort! > 0, "client port");
    assert.equal(record.tlsProtocol, undefined, "no TLS on the plain port");
    assert.equal(record.tlsCipher, undefined);
    // The request head alone: `GET /file.txt HTTP/1.1`, Host and the client's own fields.
    assert.ok(record.requestBytes! > 40, `request bytes ${record.requestBytes}`);
    assert.ok(record.requestBytes! < 400, `request bytes ${record.requestBytes}`);
    assert.ok(record.timeToFirstByteMs! >= 0, "time to first byte");
    assert.ok(record.timeToFirstByteMs! <= record.durationMs, "the head goes out before the last byte");
  }
  assert.equal(missRecord!.contentType, "text/plain");
  assert.equal(missRecord!.contentLength, 10);
  assert.equal(hitRecord!.resultType, "Hit");
  assert.equal(hitRecord!.contentType, "text/plain");
  assert.equal(hitRecord!.contentLength, 10);
  assert.equal(rangeRecord!.contentLength, 4);
  assert.equal(rangeRecord!.rangeStart, 2);
  assert.equal(rangeRecord!.rangeEnd, 5);
  assert.equal(missRecord!.rangeStart, undefined);
  // The custom error page is what the viewer received, so its head is the one logged.
  assert.equal(pageRecord!.status, 404);
  assert.equal(pageRecord!.contentType, "text/html");
  assert.equal(pageRecord!.contentLength, "<h1>not here</h1>".length);
});

test("unlogged requests skip the log fields", async (t) => {
  const { fixture, unlogged } = await setup(t);
  const port = fixture.edge.httpPort;
  const headers = { "user-agent": "probe/1.0" };
  await request(port, unlogged.domainName, "/file.txt", { headers });
  await request(port, unlogged.domainName, "/file.txt", { headers });
  await sleep(50);
  const records = fixture.metrics.records.filter((record) => record.distributionId === unlogged.id);
  assert.equal(records.length, 2);
  for (const record of records) {
    assert.equal(record.clientPort, undefined);
    assert.equal(record.contentType, undefined);
    assert.equal(record.contentLength, undefined);
    assert.equal(record.requestBytes, undefined);
    assert.equal(record.timeToFirstByteMs, undefined);
    assert.equal(record.userAgent, undefined, "viewer headers are read only for access logs");
  }
});

test("cs-bytes counts the request head and body as sent", async (t) => {
  const { fixture, logged } = await setup(t);
  const head = `GET /counted.txt HTTP/1.1\r\nHost: ${logged.domainName}\r\nUser-Agent: probe/2.0\r\nConnection: close\r\n\r\n`;
  const exchange = await rawExchange(fixture.edge.httpPort, [head]);
  assert.deepEqual(exchange.statuses, [200]);
  await sleep(50);
  const records = fixture.metrics.records.filter((record) => record.distributionId === logged.id);
  assert.equal(records.length, 1);
  assert.equal(records[0]!.requestBytes, Buffer.byteLength(head));
  assert.equal(records[0]!.bytesUploaded, 0, "the CloudWatch byte count stays the body alone");
});
