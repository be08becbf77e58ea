import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../../src/common/logger.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { EdgeAck } from "../../src/cluster/types.js";
import { startEdgeWorkers } from "../../src/edge/workers.js";
import type { DistributionCounters } from "../../src/metrics/distribution-counters.js";
import type { RollupTargets } from "../../src/metrics/edge-rollup.js";
import { PrometheusCollector } from "../../src/metrics/prometheus.js";
import { CollectingSink, customSnapshot, request, sleep, startOrigin } from "./helpers.js";

/** Starts two edge workers with test credentials and the given rollup targets. */
function startTwoWorkers(edgeId: string, dataDir: string, bus: EmbeddedBus, rollups: RollupTargets): ReturnType<typeof startEdgeWorkers> {
  return startEdgeWorkers({
    edgeId,
    dataDir,
    zone: "portico.localhost",
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    bus,
    rollups,
    logsAllRequests: false,
    s3Endpoint: "http://127.0.0.1:1",
    serviceCredentials: { accessKeyId: "ASIATESTSERVICEKEY01", secretAccessKey: "service-secret-for-tests-only-0000000000" },
    memoryCacheBytes: 8 * 1024 * 1024,
    log: silentLogger(),
    workers: 2,
    logLevel: "silent",
  });
}

/** Starts two workers without metrics consumers and waits until both serve a distribution of `originPort`. */
async function startServingWorkers(t: import("node:test").TestContext, edgeId: string, originPort: number) {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-workers-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const bus = new EmbeddedBus(silentLogger());
  const edge = await startTwoWorkers(edgeId, dataDir, bus, {
    addMinute: () => {},
    prometheus: undefined,
    records: undefined,
    countDropped: () => {},
  });
  t.after(() => edge.close());
  const snapshot = customSnapshot({ originPort });
  const acked = new Promise<void>((resolve) => {
    let count = 0;
    bus.onAck((ack) => {
      if (ack.type === "distribution.applied" && ++count === 2) resolve();
    });
  });
  await bus.publish({ type: "distribution.updated", snapshot });
  await acked;
  return { edge, snapshot };
}

test("workers share ports and acknowledge together", async (t) => {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end(`body of ${req.url}`);
  });
  t.after(() => origin.close());
  const dataDir = await mkdtemp(join(tmpdir(), "portico-workers-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  const bus = new EmbeddedBus(silentLogger());
  const acks: EdgeAck[] = [];
  bus.onAck((ack) => acks.push(ack));
  const minutes: DistributionCounters[] = [];
  const prometheus = new PrometheusCollector();
  const logged = new CollectingSink();
  const rollups: RollupTargets = {
    addMinute: (_distributionId, _minuteStartMs, counters) => minutes.push(counters),
    prometheus,
    records: logged,
    countDropped: () => assert.fail("a worker dropped records"),
  };
  const edge = await startTwoWorkers("edge-w", dataDir, bus, rollups);
  let closed = false;
  t.after(() => (closed ? undefined : edge.close()));

  const waitForAcks = async (count: number, type: EdgeAck["type"]): Promise<EdgeAck[]> => {
    for (let i = 0; i < 200; i++) {
      const matching = acks.filter((ack) => ack.type === type);
      if (matching.length >= count) return matching;
      await sleep(25);
    }
    throw new Error(`expected ${count} ${type} acknowledgements, got ${acks.length}`);
  };

  const snapshot = customSnapshot({ originPort: origin.port });
  await bus.publish({ type: "distribution.updated", snapshot });
  const applied = await waitForAcks(2, "distribution.applied");
  assert.deepEqual(applied.map((ack) => ack.edgeId).sort(), ["edge-w/1", "edge-w/2"]);
  assert.equal(bus.liveEdges().length, 2);

  // Each request opens a connection; the primary hands connections to the workers in turn.
  for (let i = 0; i < 6; i++) {
    const response = await request(edge.httpPort, snapshot.domainName, "/w.txt", { headers: { connection: "close" } });
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "body of /w.txt");
  }
  // Each worker has its own memory tier, but a worker that misses takes its sibling's copy.
  assert.equal(origin.hits("/w.txt"), 1);

  await bus.publish({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I1", paths: ["/*"] });
  const completed = await waitForAcks(2, "invalidation.completed");
  assert.deepEqual(completed.map((ack) => ack.edgeId).sort(), ["edge-w/1", "edge-w/2"]);
  const before = origin.hits("/w.txt");
  const after = await request(edge.httpPort, snapshot.domainName, "/w.txt", { headers: { connection: "close" } });
  assert.equal(after.headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits("/w.txt"), before + 1);

  // A flush brings every worker's counts to the primary at once.
  await edge.flushMetrics();
  const requests = minutes.reduce((sum, counters) => sum + counters.requests, 0);
  assert.equal(requests, 7);
  const hits = minutes.reduce((sum, counters) => sum + counters.hits, 0);
  assert.ok(hits >= 4, `hits ${hits}`);
  assert.match(prometheus.render(), new RegExp(`portico_requests_total\\{distribution_id="${snapshot.id}",status_class="2xx",cache_status="Hit"\\} \\d`));
  // The distribution has no Logging, so no record travels one by one.
  assert.equal(logged.records.length, 0);

  await edge.close();
  closed = true;
  assert.equal(bus.liveEdges().length, 0);
  await assert.rejects(request(edge.httpPort, snapshot.domainName, "/w.txt"));
});

test("workers collapse concurrent misses into one fetch", async (t) => {
  let inFlight = 0;
  let maxInFlight = 0;
  const origin = await startOrigin((req, res) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    setTimeout(() => {
      inFlight--;
      res.writeHead(200, { "cache-control": "max-age=60", "content-type": "text/plain" });
      res.end(`slow body of ${req.url}`);
    }, 300);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-c", origin.port);

  // A new connection per request, so the primary spreads them over both workers.
  const responses = await Promise.all(
    Array.from({ length: 100 }, () => request(edge.httpPort, snapshot.domainName, "/slow.txt", { headers: { connection: "close" } })),
  );
  assert.ok(responses.every((response) => response.status === 200));
  assert.ok(responses.every((response) => response.body.toString() === "slow body of /slow.txt"));
  assert.equal(origin.hits("/slow.txt"), 1);
  assert.equal(maxInFlight, 1);
  const collapsed = responses.filter((response) => String(response.headers["cache-status"]).includes("collapsed"));
  assert.ok(collapsed.length > 0, "some responses waited on the shared fetch");
});

test("workers revalidate and serve stale copies another worker holds", async (t) => {
  const origin = await startOrigin((req, res) => {
    const headers = { "cache-control": "max-age=1, stale-if-error=600", etag: '"v1"', "content-type": "text/plain" };
    if (req.headers["if-none-match"] === '"v1"') {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, headers);
    res.end("version one");
  });
  let originOpen = true;
  t.after(() => (originOpen ? origin.close() : undefined));
  const { edge, snapshot } = await startServingWorkers(t, "edge-s", origin.port);
  // A new connection per request, so the requests reach both workers.
  const get = () => request(edge.httpPort, snapshot.domainName, "/stale.txt", { headers: { connection: "close" } });

  assert.equal((await get()).status, 200);
  assert.equal(origin.hits("/stale.txt"), 1);
  await sleep(1200);
  // Expired: whichever worker gets a request revalidates, with the copy another worker holds if need be.
  for (let i = 0; i < 6; i++) {
    const response = await get();
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "version one");
  }
  const later = origin.requests.slice(1);
  assert.ok(later.length > 0);
  for (const seen of later) assert.equal(seen.headers["if-none-match"], '"v1"', "revalidations are conditional");

  await sleep(1200);
  originOpen = false;
  await origin.close();
  for (let i = 0; i < 6; i++) {
    const response = await get();
    assert.equal(response.status, 200, "stale-if-error on every worker");
    assert.equal(response.body.toString(), "version one");
    assert.match(String(response.headers["cache-status"]), /stale-if-error/);
  }
});
