import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import cluster, { type Worker } from "node:cluster";
import { closeSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../../src/common/logger.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { EdgeAck } from "../../src/cluster/types.js";
import type { WorkerEdge } from "../../src/edge/workers.js";
import type { DistributionCounters } from "../../src/metrics/distribution-counters.js";
import type { RollupTargets } from "../../src/metrics/edge-rollup.js";
import { PrometheusCollector } from "../../src/metrics/prometheus.js";
import { CollectingSink, customSnapshot, request, respondSlowly, respondToRange, sleep, startOrigin, startTwoWorkers, workersHolding } from "./helpers.js";

/** Starts two workers without metrics consumers and waits until both serve a distribution of `originPort`. */
async function startServingWorkers(
  t: import("node:test").TestContext,
  edgeId: string,
  originPort: number,
  options: Omit<Parameters<typeof customSnapshot>[0], "originPort"> = {},
  diskCacheBytes?: number,
  edgeOptions: Parameters<typeof startTwoWorkers>[5] = {},
) {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-workers-"));
  const bus = new EmbeddedBus(silentLogger());
  let edge: WorkerEdge;
  try {
    edge = await startTwoWorkers(
      edgeId,
      dataDir,
      bus,
      { addMinute: () => {}, prometheus: undefined, records: undefined, countDropped: () => {} },
      diskCacheBytes,
      edgeOptions,
    );
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  // The workers stop first, so that no disk write of theirs is still running in the folder.
  t.after(async () => {
    await edge.close();
    await rm(dataDir, { recursive: true, force: true });
  });
  const snapshot = customSnapshot({ originPort, ...options });
  let count = 0;
  const acked = new Promise<void>((resolve) => {
    bus.onAck((ack) => {
      if (ack.type === "distribution.applied" && ++count === 2) resolve();
    });
  });
  await bus.publish({ type: "distribution.updated", snapshot });
  // NOTE: one run of the whole suite waited here forever, in the last test of this file, with
  // both workers listening. It did not happen again, and its cause is not known; the limit turns
  // such a wait into a failure that says how far the workers got.
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${count} of 2 workers acknowledged the distribution within 20 s`)), 20_000);
  });
  try {
    await Promise.race([acked, limit]);
  } finally {
    clearTimeout(timer);
  }
  return { edge, snapshot, bus };
}

/**
 * Opens keep-alive connections until each of `workers` workers has `perWorker` of them, and
 * returns those, by worker. The other connections are closed, and with `edge` given, this waits
 * until the workers have reported the connections left, so that none is above its share.
 */
async function connectionsOnEachWorker(
  t: import("node:test").TestContext,
  port: number,
  workers: number,
  perWorker: number,
  edge?: WorkerEdge,
): Promise<Agent[][]> {
  const byWorker = new Map<number, Agent[]>();
  const complete = (): boolean => byWorker.size === workers && [...byWorker.values()].every((agents) => agents.length >= perWorker);
  for (let attempt = 0; attempt < 50 && !complete(); attempt++) {
    const batch = Array.from({ length: 4 }, () => new Agent({ keepAlive: true, maxSockets: 1 }));
    for (const agent of batch) t.after(() => agent.destroy());
    // An unknown host gets its 403 from the edge itself, so opening a connection reaches no origin.
    await Promise.all(batch.map((agent) => request(port, "unknown.invalid", "/", { agent })));
    const ports = batch.map((agent) => Object.values(agent.freeSockets)[0]?.[0]?.localPort);
    for (const localPort of ports) assert.ok(localPort !== undefined, "the connection stays open");
    const holders = await workersHolding(port, ports as number[]);
    for (const [index, agent] of batch.entries()) {
      const pid = holders.get(ports[index]!);
      assert.ok(pid !== undefined, `no worker holds the connection from port ${ports[index]}`);
      const agents = byWorker.get(pid) ?? [];
      agents.push(agent);
      byWorker.set(pid, agents);
    }
  }
  assert.ok(complete(), `connections reached ${byWorker.size} of ${workers} workers`);
  const returned = [...byWorker.values()].map((agents) => agents.slice(0, perWorker));
  for (const agents of byWorker.values()) for (const agent of agents.slice(perWorker)) agent.destroy();
  if (edge !== undefined) {
    const reported = (): number => edge.workerConnections().reduce((sum, [, open]) => sum + open, 0);
    for (let waited = 0; reported() !== workers * perWorker && waited < 5_000; waited += 20) await sleep(20);
    assert.equal(reported(), workers * perWorker, "the workers report the connections left open");
  }
  return returned;
}

/** Waits until no key is being fetched for the whole edge, so that a large object's file is published. */
async function sharedFetchesEnd(edge: WorkerEdge): Promise<void> {
  for (let waited = 0; edge.sharedFetches() > 0 && waited < 5_000; waited += 20) await sleep(20);
  assert.equal(edge.sharedFetches(), 0, "a shared fetch is still running");
}

/** Three keep-alive connections to one worker. */
type Three = [Agent, Agent, Agent];

/** Invalidates `path` and waits until both workers have completed the purge. */
async function invalidateOnBoth(bus: EmbeddedBus, distributionId: string, path: string): Promise<void> {
  const completed = new Promise<void>((resolve) => {
    let count = 0;
    bus.onAck((ack) => {
      if (ack.type === "invalidation.completed" && ++count === 2) resolve();
    });
  });
  await bus.publish({ type: "invalidation.created", distributionId, invalidationId: `I-${path}`, paths: [path] });
  await completed;
}

/** Sends a GET over TLS with `host` as the server name and the Host header. */
function secureGet(port: number, host: string, path: string, agent: HttpsAgent): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest({ host: "127.0.0.1", port, path, servername: host, headers: { host }, agent }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
      response.on("error", reject);
    });
    outgoing.on("error", reject);
    outgoing.end();
  });
}

/**
 * Runs curl for `url` while this process, the primary of the edge workers,
 * runs no event loop, and returns what curl wrote: the status code and the
 * response headers as JSON, or "" if nothing came within 10 s.
 */
async function curlWhilePrimaryBlocked(t: import("node:test").TestContext, host: string, url: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "portico-blocked-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const output = join(dir, "status");
  const fd = openSync(output, "w");
  // curl writes the status code once the response has arrived; this process reads it without yielding.
  const curl = spawn("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code} %{header_json}", "-H", `Host: ${host}`, url], {
    stdio: ["ignore", fd, "ignore"],
  });
  closeSync(fd);
  const deadline = Date.now() + 10_000;
  let written = "";
  while (written === "" && Date.now() < deadline) written = readFileSync(output, "utf8");
  const exited = new Promise((resolve) => curl.once("exit", resolve));
  if (written === "") curl.kill();
  await exited;
  return written;
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

  // Each worker has its own memory tier, but a worker that misses takes its sibling's copy.
  const [[first], [second]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const stored = await request(edge.httpPort, snapshot.domainName, "/w.txt", { agent: first });
  assert.equal(stored.headers["x-cache"], "Miss from portico");
  // The viewer may have its response before the primary has heard that the fetch ended.
  await sharedFetchesEnd(edge);
  const filled = await request(edge.httpPort, snapshot.domainName, "/w.txt", { agent: second });
  assert.equal(filled.body.toString(), "body of /w.txt");
  assert.match(String(filled.headers["cache-status"]), /detail=peer/);
  for (let i = 0; i < 4; i++) {
    const response = await request(edge.httpPort, snapshot.domainName, "/w.txt", { agent: i % 2 === 0 ? first : second });
    assert.equal(response.status, 200);
    assert.equal(response.headers["x-cache"], "Hit from portico");
    assert.equal(response.body.toString(), "body of /w.txt");
  }
  assert.equal(origin.hits("/w.txt"), 1);

  await bus.publish({ type: "invalidation.created", distributionId: snapshot.id, invalidationId: "I1", paths: ["/*"] });
  const completed = await waitForAcks(2, "invalidation.completed");
  assert.deepEqual(completed.map((ack) => ack.edgeId).sort(), ["edge-w/1", "edge-w/2"]);
  const before = origin.hits("/w.txt");
  const after = await request(edge.httpPort, snapshot.domainName, "/w.txt", { agent: second });
  assert.equal(after.headers["x-cache"], "Miss from portico");
  assert.equal(origin.hits("/w.txt"), before + 1);
  first.destroy();
  second.destroy();

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

  // Three connections on each worker miss at once, and then 100 new connections that land where the kernel puts them.
  const agents = (await connectionsOnEachWorker(t, edge.httpPort, 2, 3)).flat();
  const [pinned, spread] = await Promise.all([
    Promise.all(agents.map((agent) => request(edge.httpPort, snapshot.domainName, "/slow.txt", { agent }))),
    Promise.all(
      Array.from({ length: 100 }, () => request(edge.httpPort, snapshot.domainName, "/slow.txt", { headers: { connection: "close" } })),
    ),
  ]);
  const responses = [...pinned, ...spread];
  assert.ok(responses.every((response) => response.status === 200));
  assert.ok(responses.every((response) => response.body.toString() === "slow body of /slow.txt"));
  assert.equal(origin.hits("/slow.txt"), 1);
  assert.equal(maxInFlight, 1);
  // One of the six pinned requests fetched; the other five, on both workers, waited for it.
  const collapsed = pinned.filter((response) => String(response.headers["cache-status"]).includes("collapsed"));
  assert.equal(collapsed.length, 5, pinned.map((response) => response.headers["cache-status"]).join("\n"));
});

test("workers share a large write", async (t) => {
  // Above the memory tier's per-object limit, so the object goes to the disk tier of the worker that fetches it.
  const large = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 7 + (i >> 12)) & 0xff;
  const origin = await startOrigin(async (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(large.length), etag: '"big"' });
    // The body arrives over about half a second, so the other misses come while it is written.
    for (let offset = 0; offset < large.length; offset += 256 * 1024) {
      res.write(large.subarray(offset, offset + 256 * 1024));
      await sleep(40);
    }
    res.end();
  });
  t.after(() => origin.close());
  const { edge, snapshot, bus } = await startServingWorkers(t, "edge-l", origin.port, {}, 64 * 1024 * 1024);
  const [onFirst, onSecond] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 3)) as [Three, Three];

  const first = request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onFirst[0] });
  await sleep(100);
  const rest = await Promise.all([
    ...onFirst.slice(1).map((agent) => request(edge.httpPort, snapshot.domainName, "/big.bin", { agent })),
    ...onSecond.map((agent) => request(edge.httpPort, snapshot.domainName, "/big.bin", { agent })),
    ...Array.from({ length: 20 }, () => request(edge.httpPort, snapshot.domainName, "/big.bin", { headers: { connection: "close" } })),
  ]);
  const all = [await first, ...rest];
  for (const response of all) {
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(large), `a body of ${response.body.length} bytes differs`);
  }
  assert.equal(origin.hits("/big.bin"), 1);
  assert.match(String((await first).headers["cache-status"]), /fwd=uri-miss; fwd-status=200; stored; .*detail=streamed-to-disk/);
  // The requests on the second worker read the first worker's file as it grew.
  for (const response of rest.slice(2, 5)) {
    assert.match(String(response.headers["cache-status"]), /^portico; fwd=uri-miss; fwd-status=200; collapsed; ttl=\d+$/);
  }

  // Once written, the file serves the second worker's hits and ranges.
  await sharedFetchesEnd(edge);
  const hit = await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onSecond[0] });
  assert.ok(hit.body.equals(large));
  assert.match(String(hit.headers["cache-status"]), /^portico; hit; ttl=\d+; detail=peer$/);
  const range = await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onSecond[1], headers: { range: "bytes=1000000-1000999" } });
  assert.equal(range.status, 206);
  assert.ok(range.body.equals(large.subarray(1_000_000, 1_001_000)));
  const notModified = await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onSecond[2], headers: { "if-none-match": '"big"' } });
  assert.equal(notModified.status, 304);
  assert.equal(origin.hits("/big.bin"), 1);

  // After an invalidation, neither worker serves the file.
  await invalidateOnBoth(bus, snapshot.id, "/big.bin");
  const refetched = await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onSecond[0] });
  assert.ok(refetched.body.equals(large));
  assert.match(String(refetched.headers["cache-status"]), /fwd=uri-miss/);
  assert.equal(origin.hits("/big.bin"), 2);
});

test("ranges follow another worker's write", async (t) => {
  const large = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 13 + (i >> 10)) & 0xff;
  const headers = { "cache-control": "max-age=60", etag: '"grow"' };
  // Ranges get their bytes at once; the whole body arrives over about a second, so the other
  // worker's ranges come while it is written.
  const origin = await startOrigin(async (req, res) => {
    if (!respondToRange(req, res, large, headers)) await respondSlowly(res, large, headers, 128 * 1024, 30);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-rf", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond, onSecondToo]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 2)) as [[Agent], [Agent, Agent]];
  const get = (agent: Agent, headers: Record<string, string>) => request(edge.httpPort, snapshot.domainName, "/grow.bin", { agent, headers });

  const whole = get(onFirst, {});
  await sleep(200);
  // The second worker reads a range near the start from the first worker's file as it grows.
  const near = await get(onSecond, { range: "bytes=1000-1999" });
  assert.equal(near.status, 206);
  assert.ok(near.body.equals(large.subarray(1000, 2000)));
  assert.match(String(near.headers["cache-status"]), /collapsed/);
  // A range far ahead of the write comes from the origin as a slice.
  const far = await get(onSecondToo, { range: "bytes=4000000-4000099" });
  assert.equal(far.status, 206);
  assert.ok(far.body.equals(large.subarray(4_000_000, 4_000_100)));
  assert.match(String(far.headers["cache-status"]), /detail=range-slices/);

  assert.ok((await whole).body.equals(large));
  const ranges = origin.requests.map((seen) => seen.headers.range);
  assert.equal(ranges.filter((range) => range === undefined).length, 1, "one fetch of the whole object");
  assert.equal(ranges.filter((range) => range !== undefined).length, 1, "one slice, for the far range");
});

test("purge supersedes a large write", async (t) => {
  const size = 3 * 1024 * 1024;
  let version = 1;
  const origin = await startOrigin(async (_req, res) => {
    const body = Buffer.alloc(size, version);
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(size) });
    // The first version arrives over about a second, the second at once.
    for (let offset = 0; offset < size; offset += 256 * 1024) {
      res.write(body.subarray(offset, offset + 256 * 1024));
      if (body[0] === 1) await sleep(80);
    }
    res.end();
  });
  t.after(() => origin.close());
  const { edge, snapshot, bus } = await startServingWorkers(t, "edge-lp", origin.port, {}, 64 * 1024 * 1024);
  const [onFirst, onSecond] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 2)) as [[Agent, Agent], [Agent, Agent]];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/p.bin", { agent });

  const during = Promise.all([get(onFirst[0]), get(onSecond[0])]);
  await sleep(200);
  version = 2;
  await invalidateOnBoth(bus, snapshot.id, "/p.bin");
  // The first version is still being written: both workers read one new fetch instead.
  const after = await Promise.all([get(onFirst[1]), get(onSecond[1])]);
  for (const response of after) assert.ok(response.body.equals(Buffer.alloc(size, 2)), "a request after the purge got the old bytes");
  assert.equal(origin.hits("/p.bin"), 2);
  for (const response of await during) assert.ok(response.body.equals(Buffer.alloc(size, 1)));

  // Once the old write ends, it takes the place of neither worker's new copy.
  await sharedFetchesEnd(edge);
  await sleep(100);
  for (const agent of [onFirst[0], onSecond[0]]) {
    const response = await get(agent);
    assert.ok(response.body.equals(Buffer.alloc(size, 2)));
    assert.match(String(response.headers["cache-status"]), /^portico; hit; /);
  }
  assert.equal(origin.hits("/p.bin"), 2);
});

test("failed large write cuts readers", async (t) => {
  const large = Buffer.alloc(3 * 1024 * 1024, 3);
  let cutShort = true;
  const origin = await startOrigin(async (_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(large.length) });
    for (let offset = 0; offset < large.length; offset += 256 * 1024) {
      // The first fetch resets its connection after 1 MiB of the body.
      if (cutShort && offset >= 1024 * 1024) {
        res.destroy();
        return;
      }
      res.write(large.subarray(offset, offset + 256 * 1024));
      await sleep(40);
    }
    res.end();
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-lc", origin.port, {}, 64 * 1024 * 1024);
  const [onFirst, onSecond] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 2)) as [[Agent, Agent], [Agent, Agent]];

  const first = request(edge.httpPort, snapshot.domainName, "/cut.bin", { agent: onFirst[0] });
  await sleep(100);
  const results = await Promise.allSettled([first, ...onSecond.map((agent) => request(edge.httpPort, snapshot.domainName, "/cut.bin", { agent }))]);
  // Each response ends short of its length, and none waits for more bytes.
  for (const result of results) {
    if (result.status === "fulfilled") assert.ok(result.value.body.length < large.length, "a cut write served a whole body");
  }
  assert.equal(origin.hits("/cut.bin"), 1);
  await sharedFetchesEnd(edge);

  cutShort = false;
  const fetched = await request(edge.httpPort, snapshot.domainName, "/cut.bin", { agent: onFirst[1] });
  assert.ok(fetched.body.equals(large));
  assert.equal(origin.hits("/cut.bin"), 2);
  const read = await request(edge.httpPort, snapshot.domainName, "/cut.bin", { agent: onSecond[0] });
  assert.ok(read.body.equals(large));
  assert.equal(origin.hits("/cut.bin"), 2);
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
  // Requests alternate between a connection on each worker.
  const [[first], [second]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  let turn = 0;
  const get = () => request(edge.httpPort, snapshot.domainName, "/stale.txt", { agent: turn++ % 2 === 0 ? first : second });

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
  // The first failure serves the stale copy. For the error caching TTL after it, the copy is served
  // as a hit, on the worker that stores it or, copied from there, on the other.
  for (let i = 0; i < 6; i++) {
    const response = await get();
    assert.equal(response.status, 200, "stale copy on every worker");
    assert.equal(response.body.toString(), "version one");
    assert.match(String(response.headers["cache-status"]), i === 0 ? /stale-if-error/ : /stale-if-error|^portico; hit/);
  }
});

test("workers share a failed fetch's stale copy", async (t) => {
  let failing = false;
  const origin = await startOrigin(async (_req, res) => {
    if (!failing) {
      res.writeHead(200, { "cache-control": "max-age=1", "content-type": "text/plain" });
      res.end("kept");
      return;
    }
    await sleep(300);
    res.destroy();
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-f", origin.port);
  const [onFirst, onSecond] = await connectionsOnEachWorker(t, edge.httpPort, 2, 3);
  // Only the first worker fetches the object; the second has never seen it.
  assert.equal((await request(edge.httpPort, snapshot.domainName, "/kept.txt", { agent: onFirst![0]! })).status, 200);
  failing = true;
  await sleep(1100);

  // Both workers miss at once: one fetch fails, and every request gets the stale copy.
  const responses = await Promise.all(
    [...onFirst!, ...onSecond!].map((agent) => request(edge.httpPort, snapshot.domainName, "/kept.txt", { agent })),
  );
  for (const response of responses) {
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "kept");
    assert.match(String(response.headers["cache-status"]), /detail=stale-if-error$/);
  }
  assert.equal(origin.hits("/kept.txt"), 2);
});

test("own stale disk copy beats peer error", async (t) => {
  // Above the memory tier's per-object limit of 1 MiB, so each worker keeps it on its own disk.
  const large = Buffer.alloc(1536 * 1024, 7);
  let failing = false;
  let resetting = false;
  const origin = await startOrigin(async (_req, res) => {
    if (!failing) {
      res.writeHead(200, { "cache-control": "max-age=1", "content-length": String(large.length) });
      res.end(large);
      return;
    }
    await sleep(300);
    if (resetting) {
      res.destroy();
      return;
    }
    res.writeHead(503, { "content-type": "text/plain" });
    res.end("down");
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-d", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  assert.ok((await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onFirst })).body.equals(large));
  failing = true;
  await sleep(1200);

  // The second worker, which has no copy, fetches first and gets a 503. It serves the first
  // worker's stale copy instead, and the first, which waited for it, serves it too.
  const fromSecond = request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onSecond });
  await sleep(100);
  const fromFirst = await request(edge.httpPort, snapshot.domainName, "/big.bin", { agent: onFirst });
  for (const response of [await fromSecond, fromFirst]) {
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(large));
  }
  assert.match(String((await fromSecond).headers["cache-status"]), /^portico; fwd=stale; fwd-status=503; ttl=-?\d+; detail=stale-if-error$/);
  assert.match(String(fromFirst.headers["cache-status"]), /detail=stale-if-error$/);
  assert.equal(origin.hits("/big.bin"), 2);

  // Both workers hold a stale copy, and the origin resets: the waiting worker serves its own
  // copy at once instead of trying the origin after the first worker's failure. A worker reads
  // another's fresh copy, so the second fetches its own once the first one's is stale.
  failing = false;
  assert.ok((await request(edge.httpPort, snapshot.domainName, "/both.bin", { agent: onFirst })).body.equals(large));
  await sharedFetchesEnd(edge);
  const read = await request(edge.httpPort, snapshot.domainName, "/both.bin", { agent: onSecond });
  assert.ok(read.body.equals(large));
  assert.match(String(read.headers["cache-status"]), /detail=peer$/);
  await sleep(1200);
  assert.ok((await request(edge.httpPort, snapshot.domainName, "/both.bin", { agent: onSecond })).body.equals(large));
  assert.equal(origin.hits("/both.bin"), 2);
  resetting = true;
  failing = true;
  await sleep(1200);
  const [first, second] = await Promise.all([
    request(edge.httpPort, snapshot.domainName, "/both.bin", { agent: onFirst }),
    request(edge.httpPort, snapshot.domainName, "/both.bin", { agent: onSecond }),
  ]);
  for (const response of [first, second]) {
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(large));
    assert.match(String(response.headers["cache-status"]), /detail=stale-if-error$/);
  }
  assert.equal(origin.hits("/both.bin"), 3);
});

test("peer stale file serves errors", async (t) => {
  const large = Buffer.alloc(1536 * 1024, 9);
  let mode: "ok" | "error" | "reset" = "ok";
  const origin = await startOrigin(async (_req, res) => {
    if (mode === "ok") {
      res.writeHead(200, { "cache-control": "max-age=1, stale-if-error=60", "content-length": String(large.length) });
      res.end(large);
      return;
    }
    await sleep(200);
    if (mode === "reset") {
      res.destroy();
      return;
    }
    res.writeHead(503, { "content-type": "text/plain" });
    res.end("down");
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-ps", origin.port, {}, 64 * 1024 * 1024);
  const [onFirst, onSecond] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 3)) as [Three, Three];

  for (const failure of ["error", "reset"] as const) {
    const path = `/stale-${failure}.bin`;
    const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, path, { agent });
    // Only the first worker has the object; the second reads its file.
    mode = "ok";
    assert.ok((await get(onFirst[0])).body.equals(large));
    await sharedFetchesEnd(edge);
    assert.match(String((await get(onSecond[0])).headers["cache-status"]), /detail=peer$/);
    assert.equal(origin.hits(path), 1);
    await sleep(1200);
    mode = failure;

    // The second worker requests from the origin first; every request on both workers gets the stale copy.
    const first = get(onSecond[0]);
    await sleep(50);
    const responses = [await first, ...(await Promise.all([...onSecond.slice(1), ...onFirst].map(get)))];
    for (const response of responses) {
      assert.equal(response.status, 200);
      assert.ok(response.body.equals(large));
    }
    assert.match(String(responses[0]!.headers["cache-status"]), /detail=stale-if-error$/);
    assert.equal(origin.hits(path), 2);
    // The copy stays in use for the error caching TTL, on both workers.
    for (const agent of [onSecond[1], onFirst[1]]) assert.ok((await get(agent)).body.equals(large));
    assert.equal(origin.hits(path), 2);
  }
});

test("peer stale copy outlives holds", async (t) => {
  const large = Buffer.alloc(1536 * 1024, 5);
  let failing = false;
  const origin = await startOrigin((_req, res) => {
    if (failing) {
      res.writeHead(503, { "content-type": "text/plain" });
      res.end("down");
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=1, stale-if-error=60", "content-length": String(large.length) });
    res.end(large);
  });
  t.after(() => origin.close());
  const customErrors = [{ ErrorCode: 503, ErrorCachingMinTTL: 1 }];
  const { edge, snapshot } = await startServingWorkers(t, "edge-ph", origin.port, { customErrors }, 64 * 1024 * 1024);
  const [[onFirst], [onSecond]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/held.bin", { agent });
  assert.ok((await get(onFirst)).body.equals(large));
  await sharedFetchesEnd(edge);
  await sleep(1200);
  failing = true;

  // Each time the second worker's hold of the first one's copy ends, it finds that copy again.
  for (let round = 1; round <= 3; round++) {
    const response = await get(onSecond);
    assert.equal(response.status, 200, `round ${round}`);
    assert.ok(response.body.equals(large));
    assert.match(String(response.headers["cache-status"]), /detail=stale-if-error$/);
    assert.equal(origin.hits("/held.bin"), 1 + round);
    await sharedFetchesEnd(edge);
    await sleep(1100);
  }
});

test("workers revalidate another worker's large file", async (t) => {
  const first = Buffer.alloc(1536 * 1024, 3);
  const second = Buffer.alloc(1536 * 1024, 4);
  let version = 1;
  const origin = await startOrigin((req, res) => {
    const etag = `"v${version}"`;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { "cache-control": "max-age=2", etag });
      res.end();
      return;
    }
    const body = version === 1 ? first : second;
    res.writeHead(200, { "cache-control": "max-age=2", etag, "content-length": String(body.length) });
    res.end(body);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-rv", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/reval.bin", { agent });
  assert.ok((await get(onFirst)).body.equals(first));
  await sharedFetchesEnd(edge);
  await sleep(2200);

  // The second worker has no copy: it revalidates the first worker's file instead of fetching the body.
  const refreshed = await get(onSecond);
  assert.equal(refreshed.status, 200);
  assert.ok(refreshed.body.equals(first));
  assert.equal(refreshed.headers["x-cache"], "RefreshHit from portico");
  assert.match(String(refreshed.headers["cache-status"]), /^portico; fwd=stale; fwd-status=304; ttl=[12]$/);
  assert.equal(origin.hits("/reval.bin"), 2);
  assert.equal(origin.requests[1]!.headers["if-none-match"], '"v1"');
  await sharedFetchesEnd(edge);
  // The first worker takes the new freshness for its own file.
  await sleep(200);
  for (const agent of [onFirst, onSecond]) {
    const hit = await get(agent);
    assert.ok(hit.body.equals(first));
    assert.match(String(hit.headers["cache-status"]), /^portico; hit/);
  }
  assert.equal(origin.hits("/reval.bin"), 2);

  // A changed object replaces the stale file: the second worker stores it, and the first reads it there.
  await sleep(2200);
  version = 2;
  const replaced = await get(onSecond);
  assert.ok(replaced.body.equals(second));
  assert.match(String(replaced.headers["cache-status"]), /^portico; fwd=stale; fwd-status=200; stored/);
  await sharedFetchesEnd(edge);
  const read = await get(onFirst);
  assert.ok(read.body.equals(second));
  assert.match(String(read.headers["cache-status"]), /detail=peer$/);
  assert.equal(origin.hits("/reval.bin"), 3);
});

test("ranges revalidate a stale large copy", async (t) => {
  const large = Buffer.alloc(3 * 1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 11 + (i >> 9)) & 0xff;
  const headers = { "cache-control": "max-age=2", etag: '"r1"' };
  const origin = await startOrigin((req, res) => {
    if (req.headers["if-none-match"] === '"r1"') {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    if (!respondToRange(req, res, large, headers)) {
      res.writeHead(200, { ...headers, "content-length": String(large.length) });
      res.end(large);
    }
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-rr", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const get = (agent: Agent, headers: Record<string, string> = {}, method = "GET") =>
    request(edge.httpPort, snapshot.domainName, "/stale-range.bin", { agent, headers, method });
  assert.ok((await get(onFirst)).body.equals(large));
  await sharedFetchesEnd(edge);

  // Once the copy is stale, a range on the worker without it and a HEAD on the worker holding it
  // each send one conditional request, without Range, instead of fetching slices.
  for (const [agent, method] of [
    [onSecond, "GET"],
    [onFirst, "HEAD"],
  ] as const) {
    await sleep(2200);
    const before = origin.requests.length;
    const response = await get(agent, { range: "bytes=2000000-2000099" }, method);
    assert.equal(response.status, 206, method);
    assert.equal(response.headers["content-range"], `bytes 2000000-2000099/${large.length}`);
    assert.equal(response.headers["x-cache"], "RefreshHit from portico");
    if (method === "GET") assert.ok(response.body.equals(large.subarray(2_000_000, 2_000_100)));
    const sent = origin.requests.slice(before);
    assert.equal(sent.length, 1, `${method}: one origin request`);
    assert.equal(sent[0]!.headers["if-none-match"], '"r1"');
    assert.equal(sent[0]!.headers.range, undefined);
    await sharedFetchesEnd(edge);
  }
});

test("purge during a shared 304 refetches", async (t) => {
  const large = Buffer.alloc(3 * 1024 * 1024, 6);
  const origin = await startOrigin(async (req, res) => {
    const headers = { "cache-control": "max-age=1", etag: '"p1"' };
    if (req.headers["if-none-match"] === '"p1"') {
      await sleep(600);
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, "content-length": String(large.length) });
    res.end(large);
  });
  t.after(() => origin.close());
  const { edge, snapshot, bus } = await startServingWorkers(t, "edge-pr", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/purged.bin", { agent });
  assert.ok((await get(onFirst)).body.equals(large));
  await sharedFetchesEnd(edge);
  await sleep(1200);

  // Both workers miss while the origin takes its time to confirm the copy, and an invalidation
  // removes the file meanwhile: both viewers still get the whole body.
  const responses = Promise.all([get(onFirst), get(onSecond)]);
  await sleep(200);
  await invalidateOnBoth(bus, snapshot.id, "/purged.bin");
  for (const response of await responses) {
    assert.equal(response.status, 200);
    assert.ok(response.body.equals(large), `a body of ${response.body.length} bytes`);
  }
  // Later requests do not revalidate the removed copy.
  await sharedFetchesEnd(edge);
  const before = origin.requests.length;
  for (const agent of [onFirst, onSecond]) assert.ok((await get(agent)).body.equals(large));
  assert.equal(origin.requests.slice(before).filter((seen) => seen.headers["if-none-match"] !== undefined).length, 0);
});

test("range and multi-range share a write", async (t) => {
  const large = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < large.length; i++) large[i] = (i * 5 + (i >> 11)) & 0xff;
  const headers = { "cache-control": "max-age=60", etag: '"m1"' };
  const origin = await startOrigin(async (req, res) => {
    if (!respondToRange(req, res, large, headers)) await respondSlowly(res, large, headers, 128 * 1024, 30);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-mr", origin.port, {}, 64 * 1024 * 1024);
  const [[onFirst], [onSecond, onSecondToo]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 2)) as [[Agent], [Agent, Agent]];
  const get = (agent: Agent, range?: string) =>
    request(edge.httpPort, snapshot.domainName, "/multi.bin", { agent, headers: range === undefined ? {} : { range } });

  const whole = get(onFirst);
  await sleep(200);
  // At once on the second worker: the range, ahead of the bytes written so far, finds the first
  // worker's write and waits for them, and the multi-range request is granted the same write.
  const single = get(onSecond, "bytes=1200000-1299999");
  const multiple = get(onSecondToo, "bytes=0-9,1000000-1000099");
  const [wholeResponse, singleResponse, multipleResponse] = await Promise.all([whole, single, multiple]);
  assert.ok(wholeResponse.body.equals(large));
  assert.equal(singleResponse.status, 206);
  assert.ok(singleResponse.body.equals(large.subarray(1_200_000, 1_300_000)));
  assert.equal(multipleResponse.status, 200);
  assert.ok(multipleResponse.body.equals(large));
  assert.equal(origin.hits("/multi.bin"), 1);
});

test("workers cache a failure once per period", async (t) => {
  const origin = await startOrigin(async (_req, res) => {
    await sleep(300);
    res.destroy();
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-p", origin.port, {
    customErrors: [{ ErrorCode: 502, ErrorCachingMinTTL: 1 }],
  });
  const agents = (await connectionsOnEachWorker(t, edge.httpPort, 2, 3)).flat();

  // Each period of the error caching TTL makes one origin attempt, whichever worker makes it.
  for (let period = 1; period <= 3; period++) {
    const responses = await Promise.all(agents.map((agent) => request(edge.httpPort, snapshot.domainName, "/down.txt", { agent })));
    assert.deepEqual(
      responses.map((response) => response.status),
      agents.map(() => 502),
    );
    assert.equal(origin.hits("/down.txt"), period, `period ${period}`);
    await sleep(1100);
  }
});

test("stale-while-revalidate uses another worker's copy", async (t) => {
  let version = "one";
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=60", "content-type": "text/plain" });
    res.end(`version ${version}`);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-w", origin.port);
  const [[first], [second]] = (await connectionsOnEachWorker(t, edge.httpPort, 2, 1)) as [[Agent], [Agent]];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/swr.txt", { agent });

  assert.equal((await get(first)).body.toString(), "version one");
  await sleep(1200);
  version = "two";
  // The second worker has no copy of its own: it takes the first one's stale copy and serves it
  // at once, while one request refreshes it in the background.
  const served = await get(second);
  assert.equal(served.body.toString(), "version one");
  assert.match(String(served.headers["cache-status"]), /^portico; hit; ttl=-?\d+; detail=stale-while-revalidate$/);
  let body = "";
  for (let i = 0; i < 50 && body !== "version two"; i++) {
    if (i > 0) await sleep(20);
    body = (await get(second)).body.toString();
  }
  assert.equal(body, "version two");
  assert.equal(origin.hits("/swr.txt"), 2);
});

test("workers refresh a stale copy once", async (t) => {
  let version = "one";
  const origin = await startOrigin(async (_req, res) => {
    await sleep(300);
    res.writeHead(200, { "cache-control": "max-age=1, stale-while-revalidate=60", "content-type": "text/plain" });
    res.end(`version ${version}`);
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-sw", origin.port);
  const [onFirst, onSecond] = await connectionsOnEachWorker(t, edge.httpPort, 2, 3);
  const agents = [...onFirst!, ...onSecond!];
  const get = (agent: Agent) => request(edge.httpPort, snapshot.domainName, "/swr.txt", { agent });
  // Both workers hold the copy: the second takes it from the first while it is fresh.
  assert.equal((await get(onFirst![0]!)).body.toString(), "version one");
  await sharedFetchesEnd(edge);
  assert.match(String((await get(onSecond![0]!)).headers["cache-status"]), /detail=peer$/);
  await sleep(1100);
  version = "two";

  const stale = await Promise.all(agents.map(get));
  for (const response of stale) assert.equal(response.body.toString(), "version one");
  await sleep(800);
  const fresh = await Promise.all(agents.map(get));
  for (const response of fresh) assert.equal(response.body.toString(), "version two");
  assert.equal(origin.hits("/swr.txt"), 2);
});

test("workers accept with primary blocked", async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("served");
  });
  t.after(() => origin.close());
  const { edge, snapshot } = await startServingWorkers(t, "edge-b", origin.port);
  // Stored in both workers first, so that serving it needs nothing from the primary. With one
  // connection each, neither worker is above its share, so neither hands the next one on.
  for (const agents of await connectionsOnEachWorker(t, edge.httpPort, 2, 1, edge)) {
    const response = await request(edge.httpPort, snapshot.domainName, "/cached.txt", { agent: agents[0]! });
    assert.equal(response.status, 200);
  }

  const written = await curlWhilePrimaryBlocked(t, snapshot.domainName, `http://127.0.0.1:${edge.httpPort}/cached.txt`);
  assert.match(written, /^200 /, "the response came while the primary ran no event loop");
  assert.match(written, /hit from portico/i);
});

/**
 * Opens 40 keep-alive connections at once to fresh workers that share one listening socket, each
 * with one request, and returns how many each worker has. Whichever worker the kernel wakes takes
 * what is waiting, so without the handing on, one worker often had most of them.
 */
async function burstSplit(t: import("node:test").TestContext, secure: boolean): Promise<number[]> {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("served");
  });
  t.after(() => origin.close());
  // The TLS port always has one shared socket; the plain port has one with reusePort off.
  const { edge, snapshot } = await startServingWorkers(t, secure ? "edge-st" : "edge-sp", origin.port, {}, undefined, secure ? {} : { reusePort: false });
  const agents = Array.from({ length: 40 }, () =>
    secure ? new HttpsAgent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false }) : new Agent({ keepAlive: true, maxSockets: 1 }),
  );
  for (const agent of agents) t.after(() => agent.destroy());
  const port = secure ? edge.httpsPort : edge.httpPort;
  const responses = await Promise.all(
    agents.map((agent) =>
      secure ? secureGet(port, snapshot.domainName, "/burst.txt", agent as HttpsAgent) : request(port, snapshot.domainName, "/burst.txt", { agent: agent as Agent }),
    ),
  );
  for (const response of responses) assert.equal(response.status, 200);
  for (const response of responses) assert.equal(response.body.toString(), "served");

  const byWorker = new Map<number, number>();
  const ports = agents.map((agent) => Object.values(agent.freeSockets)[0]?.[0]?.localPort);
  for (const localPort of ports) assert.ok(localPort !== undefined, "the connection stays open");
  const holders = await workersHolding(port, ports as number[]);
  for (const localPort of ports) {
    const pid = holders.get(localPort!);
    assert.ok(pid !== undefined, `no worker holds the connection from port ${localPort}`);
    byWorker.set(pid, (byWorker.get(pid) ?? 0) + 1);
  }
  return [...byWorker.values()].sort((a, b) => a - b);
}

// The fair share is 20, and a worker hands connections on from its share plus 2 or an eighth.
test("workers spread a plain burst", async (t) => {
  const counts = await burstSplit(t, false);
  assert.equal(counts.length, 2, `connections on ${counts.length} workers`);
  assert.ok(counts[0]! >= 16, `connections split ${counts.join(" and ")}`);
});

test("workers spread a TLS burst", async (t) => {
  const counts = await burstSplit(t, true);
  assert.equal(counts.length, 2, `connections on ${counts.length} workers`);
  assert.ok(counts[0]! >= 16, `connections split ${counts.join(" and ")}`);
});

test("misses proceed with primary blocked", async (t) => {
  // The origin runs in a process of its own, since this one stops running its event loop.
  const origin = spawn(
    process.execPath,
    [
      "-e",
      `require("node:http").createServer((req, res) => res.end("from origin")).listen(0, "127.0.0.1", function () { console.log(this.address().port); });`,
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  t.after(() => origin.kill());
  const originPort = await new Promise<number>((resolve) => origin.stdout!.once("data", (chunk: Buffer) => resolve(Number(chunk.toString()))));
  const { edge, snapshot } = await startServingWorkers(t, "edge-m", originPort);

  const written = await curlWhilePrimaryBlocked(t, snapshot.domainName, `http://127.0.0.1:${edge.httpPort}/new.txt`);
  assert.match(written, /^200 /, "the miss went to the origin without the primary's reply");
  assert.match(written, /miss from portico/i);

  // The primary's late reply for that miss does not leave the key held: the next misses of it are served.
  for (let i = 0; i < 4; i++) {
    const response = await request(edge.httpPort, snapshot.domainName, "/new.txt", { headers: { connection: "close" } });
    assert.equal(response.status, 200);
    assert.equal(response.body.toString(), "from origin");
  }
});

// NOTE: two full runs of the suite hung in this test before its first round, with both workers
// alive and never killed. The cause is not known. The timeout turns such a hang into a failure.
test("crashing worker slots stay down", { timeout: 90_000 }, async (t) => {
  // Workers of earlier tests in this process may still be on their way out, so they are left out.
  const earlier = new Set(Object.values(cluster.workers ?? {}));
  const { edge } = await startServingWorkers(t, "edge-r", 1);
  // node:cluster keeps an exited worker in cluster.workers, connected, until its IPC channel closes,
  // which can happen after its "exit" event. Its "exit" does not fire again, so it is left out.
  const running = (): Worker[] =>
    Object.values(cluster.workers ?? {}).filter(
      (worker): worker is Worker => worker !== undefined && !earlier.has(worker) && worker.isConnected() && !worker.isDead(),
    );

  // Each slot is restarted after each of its first 5 exits within a minute, and not after the 6th.
  for (let round = 1; round <= 6; round++) {
    for (let waited = 0; (running().length < 2 || edge.liveWorkers() !== 2) && waited < 10_000; waited += 20) await sleep(20);
    assert.equal(edge.liveWorkers(), 2, `round ${round}: both slots run`);
    const workers = running();
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise((resolve) => {
            worker.once("exit", resolve);
            worker.process.kill("SIGKILL");
          }),
      ),
    );
  }
  await sleep(500);
  assert.equal(edge.liveWorkers(), 0);
  await assert.rejects(request(edge.httpPort, "unknown.invalid", "/"));
});
