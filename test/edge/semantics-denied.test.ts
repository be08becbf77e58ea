import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { test } from "node:test";
import { pino } from "pino";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { EdgeAck } from "../../src/cluster/types.js";
import { startEdge } from "../../src/edge/index.js";
import { CollectingSink, customSnapshot, request, startOrigin, ZONE } from "./helpers.js";

test("origin 403 is logged with its cause", async (t) => {
  const denial =
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>' +
    "<Message>Denied by statement DenyEveryone</Message></Error>";
  const origin = await startOrigin((_req, res) => {
    res.writeHead(403, {
      "content-type": "application/xml",
      "content-length": String(Buffer.byteLength(denial)),
      "x-amz-error-detail": "statement DenyEveryone of the bucket policy denies s3:GetObject",
    });
    res.end(denial);
  });
  t.after(() => origin.close());
  const lines: string[] = [];
  const log = pino(
    { level: "info" },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    }),
  );
  const dataDir = await mkdtemp(join(tmpdir(), "portico-denied-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const bus = new EmbeddedBus(log);
  const acked = new Promise<EdgeAck>((resolve) => bus.onAck(resolve));
  const edge = await startEdge({
    edgeId: "denied-edge",
    dataDir,
    zone: ZONE,
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    bus,
    metrics: new CollectingSink(),
    s3Endpoint: "http://127.0.0.1:1",
    serviceCredentials: { accessKeyId: "ASIATESTSERVICEKEY01", secretAccessKey: "service-secret-for-tests-only-0000000000" },
    memoryCacheBytes: 1024 * 1024,
    log,
  });
  t.after(() => edge.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await bus.publish({ type: "distribution.updated", snapshot });
  await acked;

  const response = await request(edge.httpPort, snapshot.domainName, "/secret.txt");
  assert.equal(response.status, 403);
  assert.equal(response.body.toString(), denial);
  // The cause names policy statements, so it goes to the log and never to the viewer.
  assert.equal(response.headers["x-amz-error-detail"], undefined);
  const entry = lines.map((line) => JSON.parse(line) as Record<string, unknown>).find((record) => record.errorCode !== undefined);
  assert.ok(entry !== undefined, lines.join(""));
  assert.equal(entry.errorCode, "AccessDenied");
  assert.equal(entry.errorMessage, "Denied by statement DenyEveryone");
  assert.equal(entry.path, "/secret.txt");
  assert.equal(entry.errorDetail, "statement DenyEveryone of the bucket policy denies s3:GetObject");
  assert.equal(entry.msg, "origin denied the request with 403");
});
