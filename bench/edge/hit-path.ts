// Measures the JavaScript cost of one memory hit, without sockets or the kernel: a stub socket
// feeds the same request head to the edge's HTTP/1.1 connection again and again, and every
// response is dropped. Runs once with a sink that drops request records and once with the
// metrics sink that edge workers use, so the difference is the cost of recording metrics.
//   bench/edge/hit-path.sh [REQUESTS_PER_ROUND] [ROUNDS]      # bundles this file and runs it
// Needs the benchmark origin of ../shared/bench on ORIGIN_PORT (9000) for the first miss.
import { EventEmitter } from "node:events";
import { CacheLock } from "../../src/cache/lock.js";
import { MemoryTier } from "../../src/cache/memory.js";
import { VaryIndex } from "../../src/cache/vary.js";
import { createLogger } from "../../src/common/logger.js";
import { createClusterHandler } from "../../src/edge/cluster-handler.js";
import { ByteBudget, type EdgeContext } from "../../src/edge/context.js";
import { EdgeRequestHandler } from "../../src/edge/handler.js";
import { edgeIdentity } from "../../src/edge/headers.js";
import { Http1Connection } from "../../src/edge/http1/connection.js";
import { DEFAULT_HTTP1_OPTIONS } from "../../src/edge/http1/server.js";
import { RoutingTable } from "../../src/edge/routing.js";
import { EdgeRollupSink } from "../../src/metrics/edge-rollup.js";
import type { MetricsSink } from "../../src/metrics/types.js";
import { OriginPools } from "../../src/origin/index.js";

const perRound = Number(process.argv[2] ?? 300_000);
const rounds = Number(process.argv[3] ?? 5);
const originPort = Number(process.env.ORIGIN_PORT ?? 9000);
const log = createLogger("warn");

/** A socket that takes writes and drops them. */
class StubSocket extends EventEmitter {
  remoteAddress = "127.0.0.1";
  writes = 0;
  writableLength = 0;
  setNoDelay(): void {}
  cork(): void {}
  uncork(): void {}
  pause(): void {}
  resume(): void {}
  end(): void {}
  destroy(): void {}
  setTimeout(): void {}
  write(): boolean {
    this.writes++;
    return true;
  }
}

/** Builds an edge around `sink` with one cached 1 KiB object; returns a function that times one round of hits. */
async function setUp(sink: MetricsSink): Promise<{ round: () => number; close: () => Promise<void> }> {
  const context: EdgeContext = {
    edgeId: "bench",
    identity: edgeIdentity("bench"),
    routing: new RoutingTable(),
    memory: new MemoryTier(64 * 1024 * 1024),
    vary: new VaryIndex(),
    disk: undefined,
    pendingWrites: new Set(),
    startedAtMs: Date.now(),
    recentPurges: new Map(),
    inFlight: new ByteBudget(16 * 1024 * 1024),
    lock: new CacheLock({ writerTimeoutMs: 5000, waiterTimeoutMs: 5000 }),
    maxObjectBytes: 8 * 1024 * 1024,
    httpsPort: () => 443,
    purgeEpochs: new Map(),
    metrics: sink,
    peers: undefined,
    logsAllRequests: false,
    log,
  };
  const pools = new OriginPools();
  const apply = createClusterHandler(context, {
    s3Endpoint: "http://127.0.0.1:1",
    serviceCredentials: { accessKeyId: "ASIABENCHSERVICEKEY1", secretAccessKey: "bench-only-service-secret-000000000000" },
    pools,
  });
  await apply({
    type: "distribution.updated",
    snapshot: {
      id: "EBENCHHITPATH1",
      arn: "arn:aws:cloudfront::000000000000:distribution/EBENCHHITPATH1",
      domainName: "dbenchhitpath.portico.localhost",
      version: 1,
      originAccessControls: {},
      config: {
        CallerReference: "bench",
        Comment: "",
        Enabled: true,
        Origins: {
          Quantity: 1,
          Items: [{ Id: "o", DomainName: "127.0.0.1", CustomOriginConfig: { HTTPPort: originPort, HTTPSPort: 443, OriginProtocolPolicy: "http-only" } }],
        },
        DefaultCacheBehavior: {
          TargetOriginId: "o",
          ViewerProtocolPolicy: "allow-all",
          MinTTL: 0,
          DefaultTTL: 86400,
          MaxTTL: 31536000,
          ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } },
        },
      },
    },
  });
  const handler = new EdgeRequestHandler(context);
  const socket = new StubSocket();
  new Http1Connection(
    socket as never,
    "http",
    (request, response) => handler.handle(request, response),
    DEFAULT_HTTP1_OPTIONS.limits,
    DEFAULT_HTTP1_OPTIONS.timeouts,
    log,
    () => {},
  );
  const head = Buffer.from("GET /1k.bin HTTP/1.1\r\nHost: dbenchhitpath.portico.localhost:8081\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n", "latin1");
  // The first request misses and fetches from the origin; the rest are hits answered synchronously.
  socket.emit("data", Buffer.from(head));
  for (let i = 0; i < 100 && socket.writes === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (socket.writes === 0) throw new Error(`no response from the origin on port ${originPort}`);
  const before = socket.writes;
  socket.emit("data", head);
  if (socket.writes !== before + 1) throw new Error("the second request was not a synchronous hit");

  const round = (): number => {
    const startedAt = performance.now();
    for (let i = 0; i < perRound; i++) socket.emit("data", head);
    return ((performance.now() - startedAt) * 1e6) / perRound;
  };
  return { round, close: () => pools.close() };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

// Rounds alternate between the two set-ups, so drift of the machine's load hits both alike.
const dropping = await setUp({ record: () => {} });
const counting = await setUp(new EdgeRollupSink(() => false));
const dropped: number[] = [];
const counted: number[] = [];
for (let i = 0; i < rounds; i++) {
  dropped.push(dropping.round());
  counted.push(counting.round());
}
await dropping.close();
await counting.close();
console.log(`records dropped:  median ${median(dropped).toFixed(0)} ns per hit (${dropped.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`records counted:  median ${median(counted).toFixed(0)} ns per hit (${counted.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`recording metrics: ${(median(counted) - median(dropped)).toFixed(0)} ns per hit, ${rounds} rounds of ${perRound}`);
