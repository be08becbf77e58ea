// Measures the JavaScript cost of one memory hit, without sockets or the kernel: a stub socket
// feeds the same request to the edge's HTTP/1.1 or HTTP/2 connection again and again, and every
// response is dropped. Runs once with a sink that drops request records and once with the
// metrics sink that edge workers use, so the difference is the cost of recording metrics. It
// also counts young-generation collections, which give the garbage each hit leaves.
//   bench/edge/hit-path.sh [REQUESTS_PER_ROUND] [ROUNDS]      # bundles this file and runs it
//   PROTOCOL=h2 bench/edge/hit-path.sh                          # HEADERS frames as h2load sends them
// Needs the benchmark origin of ../shared/bench on ORIGIN_PORT (9000) for the first miss.
import { EventEmitter } from "node:events";
import { PerformanceObserver, constants as perfConstants } from "node:perf_hooks";
import { getHeapSpaceStatistics } from "node:v8";
import { CacheLock } from "../../src/cache/lock.js";
import { MemoryTier } from "../../src/cache/memory.js";
import { VaryIndex } from "../../src/cache/vary.js";
import { createLogger } from "../../src/common/logger.js";
import { createClusterHandler } from "../../src/edge/cluster-handler.js";
import { ByteBudget, type EdgeContext } from "../../src/edge/context.js";
import { EdgeRequestHandler } from "../../src/edge/handler.js";
import { edgeIdentity } from "../../src/edge/headers.js";
import { Http1Connection, type RequestListener } from "../../src/edge/http1/connection.js";
import { DEFAULT_HTTP1_OPTIONS } from "../../src/edge/http1/server.js";
import { Http2Connection } from "../../src/edge/http2/connection.js";
import { CLIENT_PREFACE, Flag, FrameType, settingsFrame, windowUpdateFrame, writeFrameHeader } from "../../src/edge/http2/frames.js";
import { http2LimitsOf } from "../../src/edge/http2/server.js";
import { RoutingTable } from "../../src/edge/routing.js";
import { EdgeRollupSink } from "../../src/metrics/edge-rollup.js";
import type { MetricsSink } from "../../src/metrics/types.js";
import { OriginPools } from "../../src/origin/index.js";

const perRound = Number(process.argv[2] ?? 300_000);
const rounds = Number(process.argv[3] ?? 5);
const originPort = Number(process.env.ORIGIN_PORT ?? 9000);
const protocol = process.env.PROTOCOL === "h2" ? "h2" : "h1";
const log = createLogger("warn");
const HOST = "dbenchhitpath.portico.localhost";

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
    fills: new Map(),
    peerFiles: new Map(),
    unsliceable: new Map(),
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
  const listener: RequestListener = (request, response) => handler.handle(request, response);
  const feed = protocol === "h2" ? http2Feeder(socket, listener) : http1Feeder(socket, listener);
  // The first request misses and fetches from the origin; the rest are hits answered synchronously.
  feed();
  for (let i = 0; i < 100 && socket.writes === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  if (socket.writes === 0) throw new Error(`no response from the origin on port ${originPort}`);
  // The entry is stored once the origin's body has ended, which can follow the response's last write.
  await new Promise((resolve) => setTimeout(resolve, 100));
  const before = socket.writes;
  feed();
  if (socket.writes !== before + 1) throw new Error("the second request was not a synchronous hit");

  const round = (): number => {
    const startedAt = performance.now();
    for (let i = 0; i < perRound; i++) feed();
    return ((performance.now() - startedAt) * 1e6) / perRound;
  };
  return { round, close: () => pools.close() };
}

/** Returns a function that sends one HTTP/1.1 request head on a connection over `socket`. */
function http1Feeder(socket: StubSocket, listener: RequestListener): () => void {
  new Http1Connection(socket as never, "http", listener, DEFAULT_HTTP1_OPTIONS.limits, DEFAULT_HTTP1_OPTIONS.timeouts, log, () => {}, undefined);
  const head = Buffer.from(`GET /1k.bin HTTP/1.1\r\nHost: ${HOST}:8081\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n`, "latin1");
  return () => socket.emit("data", head);
}

/**
 * Returns a function that sends one request on an HTTP/2 connection over `socket`, each on the
 * next stream id. The first header block adds its fields to the HPACK table, and later ones
 * refer to them by index, as h2load's do.
 */
function http2Feeder(socket: StubSocket, listener: RequestListener): () => void {
  new Http2Connection(socket as never, "https", listener, http2LimitsOf(DEFAULT_HTTP1_OPTIONS), log, () => {});
  const literal = (first: number, value: string): Buffer => Buffer.concat([Buffer.from([first, value.length]), Buffer.from(value, "latin1")]);
  // Static table entries (RFC 7541 appendix A): 2 is `:method: GET`, 7 `:scheme: https` and 16
  // `accept-encoding: gzip, deflate`, while 1, 4, 19 and 58 name `:authority`, `:path`, `accept`
  // and `user-agent`. `:path` goes as a literal without indexing every time, as nghttp2 sends it, and
  // the other literals enter the dynamic table. Values are not Huffman-coded, unlike h2load's.
  const path = literal(0x04, "/1k.bin");
  const firstBlock = Buffer.concat([
    Buffer.from([0x82]),
    path,
    Buffer.from([0x87]),
    literal(0x40 | 1, HOST),
    literal(0x40 | 19, "*/*"),
    Buffer.from([0x90]),
    literal(0x40 | 58, "h2load nghttp2/1.52.0"),
  ]);
  // The last field added is dynamic table entry 62: user-agent, then accept (63) and :authority (64).
  const laterBlock = Buffer.concat([Buffer.from([0x82]), path, Buffer.from([0x87, 0x80 | 64, 0x80 | 63, 0x90, 0x80 | 62])]);
  const headersFrame = (block: Buffer, streamId: number): Buffer => {
    const out = Buffer.alloc(9 + block.length);
    writeFrameHeader(out, 0, block.length, FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, streamId);
    block.copy(out, 9);
    return out;
  };
  socket.emit("data", Buffer.concat([CLIENT_PREFACE, settingsFrame([])]));
  let streamId = 1;
  const next = headersFrame(laterBlock, 1);
  let first = true;
  // The connection's send window is given back every 32 responses of 1 KiB, as a client's would be.
  const windowUpdate = windowUpdateFrame(0, 32 * 1024);
  let sinceUpdate = 0;
  return () => {
    if (++sinceUpdate === 32) {
      sinceUpdate = 0;
      socket.emit("data", windowUpdate);
    }
    if (first) {
      first = false;
      socket.emit("data", headersFrame(firstBlock, streamId));
    } else {
      next.writeUInt32BE(streamId, 5);
      socket.emit("data", next);
    }
    streamId += 2;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

let scavenges = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    const detail = (entry as unknown as { detail?: { kind?: number } }).detail;
    if (detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  }
}).observe({ entryTypes: ["gc"] });
const newSpaceBytes = getHeapSpaceStatistics().find((space) => space.space_name === "new_space")?.space_size ?? 0;

// Rounds alternate between the two set-ups, so drift of the machine's load hits both alike.
const dropping = await setUp({ record: () => {} });
const counting = await setUp(new EdgeRollupSink(() => false));
const dropped: number[] = [];
const counted: number[] = [];
for (let i = 0; i < rounds; i++) {
  dropped.push(dropping.round());
  counted.push(counting.round());
}
const hits = 2 * rounds * perRound;
await dropping.close();
await counting.close();
console.log(`records dropped:  median ${median(dropped).toFixed(0)} ns per hit (${dropped.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`records counted:  median ${median(counted).toFixed(0)} ns per hit (${counted.map((v) => v.toFixed(0)).join(", ")})`);
console.log(`recording metrics: ${(median(counted) - median(dropped)).toFixed(0)} ns per hit, ${rounds} rounds of ${perRound} (${protocol})`);
// A young-generation collection runs when half of the new space, one semi-space, is full.
console.log(`young-generation collections: ${scavenges}, about ${((scavenges * newSpaceBytes) / 2 / hits).toFixed(0)} bytes of garbage per hit`);
