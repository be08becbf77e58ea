import cluster from "node:cluster";
import { mkdtemp, readFile, readdir, readlink, rm } from "node:fs/promises";
import { createServer, type Agent, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { CacheBehavior, CustomErrorResponse, DistributionConfig } from "@aws-sdk/client-cloudfront";
import { silentLogger } from "../../src/common/logger.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { DistributionSnapshot, EdgeAck, EdgeChannel } from "../../src/cluster/types.js";
import type { Http2FloodKind, MetricsSink, RequestRecord } from "../../src/metrics/types.js";
import { startEdge, type Edge, type EdgeOptions } from "../../src/edge/index.js";
import { startEdgeWorkers } from "../../src/edge/workers.js";
import type { RollupTargets } from "../../src/metrics/edge-rollup.js";

export const ZONE = "portico.localhost";

/** A real HTTP origin on loopback that counts the requests it receives. */
export interface TestOrigin {
  port: number;
  /** Requests received, in order. */
  requests: Array<{ method: string; url: string; headers: IncomingMessage["headers"]; body: Buffer }>;
  hits(path?: string): number;
  close(): Promise<void>;
}

export async function startOrigin(
  respond: (request: IncomingMessage, response: ServerResponse, body: Buffer) => void | Promise<void>,
  port = 0,
): Promise<TestOrigin> {
  const requests: TestOrigin["requests"] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
      void Promise.resolve(respond(request, response, body)).catch(() => response.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    hits: (path) => (path === undefined ? requests.length : requests.filter((r) => r.url === path).length),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A metrics sink that keeps every record, and the kind of every HTTP/2 flood counted. */
export class CollectingSink implements MetricsSink {
  readonly records: RequestRecord[] = [];
  readonly floods: Http2FloodKind[] = [];
  record(entry: RequestRecord): void {
    this.records.push(entry);
  }
  countHttp2Flood(kind: Http2FloodKind): void {
    this.floods.push(kind);
  }
}

export interface DistributionOptions {
  id?: string;
  version?: number;
  aliases?: string[];
  enabled?: boolean;
  defaultRootObject?: string;
  originPort: number;
  originPath?: string;
  defaultBehavior?: Partial<CacheBehavior>;
  behaviors?: Array<Partial<CacheBehavior> & { PathPattern: string }>;
  customErrors?: CustomErrorResponse[];
}

function behaviorConfig(partial: Partial<CacheBehavior>): CacheBehavior {
  return {
    PathPattern: undefined,
    TargetOriginId: "origin-1",
    ViewerProtocolPolicy: "allow-all",
    AllowedMethods: { Quantity: 2, Items: ["GET", "HEAD"] },
    ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } },
    MinTTL: 0,
    DefaultTTL: 60,
    MaxTTL: 3600,
    ...partial,
  };
}

/** Builds a snapshot whose origin is the test origin on loopback. */
export function customSnapshot(options: DistributionOptions): DistributionSnapshot {
  const id = options.id ?? "E2EDGETEST0001";
  const domainName = `d${id.toLowerCase().slice(0, 13).padEnd(13, "0")}.${ZONE}`;
  const config: DistributionConfig = {
    CallerReference: "test",
    Comment: "",
    Enabled: options.enabled ?? true,
    Aliases: { Quantity: options.aliases?.length ?? 0, Items: options.aliases ?? [] },
    DefaultRootObject: options.defaultRootObject ?? "",
    Origins: {
      Quantity: 1,
      Items: [
        {
          Id: "origin-1",
          DomainName: "127.0.0.1",
          OriginPath: options.originPath ?? "",
          CustomOriginConfig: {
            HTTPPort: options.originPort,
            HTTPSPort: 443,
            OriginProtocolPolicy: "http-only",
            OriginReadTimeout: 5,
            OriginKeepaliveTimeout: 5,
          },
          ConnectionAttempts: 1,
          ConnectionTimeout: 2,
        },
      ],
    },
    DefaultCacheBehavior: behaviorConfig(options.defaultBehavior ?? {}),
    CacheBehaviors: {
      Quantity: options.behaviors?.length ?? 0,
      Items: (options.behaviors ?? []).map((behavior) => behaviorConfig(behavior)),
    },
    ...(options.customErrors === undefined
      ? {}
      : { CustomErrorResponses: { Quantity: options.customErrors.length, Items: options.customErrors } }),
  };
  return {
    id,
    arn: `arn:aws:cloudfront::123456789012:distribution/${id}`,
    domainName,
    version: options.version ?? 1,
    config,
    originAccessControls: {},
  };
}

/** A custom-origin distribution whose default behavior allows every method. */
export function allMethodsSnapshot(originPort: number): DistributionSnapshot {
  return customSnapshot({
    originPort,
    defaultBehavior: {
      AllowedMethods: { Quantity: 7, Items: ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"] },
    },
  });
}

export interface EdgeFixture {
  edge: Edge;
  bus: EmbeddedBus;
  metrics: CollectingSink;
  acks: EdgeAck[];
  /** Publishes a message and resolves when the edge acknowledged it. */
  publishAndWait(message: Parameters<EmbeddedBus["publish"]>[0]): Promise<EdgeAck>;
  close(): Promise<void>;
}

export async function startTestEdge(
  options: {
    memoryCacheBytes?: number;
    /** Byte budget of a disk tier, which the edge has only when this is set. */
    diskCacheBytes?: number;
    s3Endpoint?: string;
    edgeId?: string;
    protocol?: EdgeOptions["protocol"];
    /** A data folder prepared by the test; removed on close like a generated one. */
    dataDir?: string;
    /** A bus the test may have published on before the edge starts. */
    bus?: EmbeddedBus;
    /** The channel the edge joins through, in place of `bus` itself. */
    channel?: EdgeChannel;
  } = {},
): Promise<EdgeFixture> {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "portico-edge-")));
  const bus = options.bus ?? new EmbeddedBus(silentLogger());
  const metrics = new CollectingSink();
  const acks: EdgeAck[] = [];
  const ackWaiters: Array<(ack: EdgeAck) => void> = [];
  bus.onAck((ack) => {
    acks.push(ack);
    for (const waiter of ackWaiters.splice(0)) waiter(ack);
  });
  const edge = await startEdge({
    edgeId: options.edgeId ?? "test-edge-1",
    dataDir,
    zone: ZONE,
    host: "127.0.0.1",
    httpPort: 0,
    httpsPort: 0,
    bus: options.channel ?? bus,
    metrics,
    s3Endpoint: options.s3Endpoint ?? "http://127.0.0.1:1",
    serviceCredentials: { accessKeyId: "ASIATESTSERVICEKEY01", secretAccessKey: "service-secret-for-tests-only-0000000000" },
    memoryCacheBytes: options.memoryCacheBytes ?? 16 * 1024 * 1024,
    ...(options.diskCacheBytes === undefined ? {} : { diskCacheBytes: options.diskCacheBytes }),
    log: silentLogger(),
    ...(options.protocol === undefined ? {} : { protocol: options.protocol }),
  });
  return {
    edge,
    bus,
    metrics,
    acks,
    publishAndWait: async (message) => {
      const acked = new Promise<EdgeAck>((resolve) => ackWaiters.push(resolve));
      await bus.publish(message);
      return acked;
    },
    close: async () => {
      await edge.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface EdgeResponse {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** Sends one request to the edge's HTTP port with the given Host header. */
export async function request(
  port: number,
  host: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: Buffer; agent?: Agent } = {},
): Promise<EdgeResponse> {
  const { request: send } = await import("node:http");
  return new Promise((resolve, reject) => {
    const outgoing = send(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: { host, ...options.headers }, agent: options.agent },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) }),
        );
        response.on("error", reject);
      },
    );
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

/**
 * Responds to a request that carries `Range: bytes=first-last` with a 206 of
 * those bytes of `body` and returns true. Returns false, having sent nothing,
 * for any other request.
 */
export function respondToRange(req: IncomingMessage, res: ServerResponse, body: Buffer, headers: Record<string, string>): boolean {
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? "");
  if (range === null) return false;
  const start = Number(range[1]);
  const end = Math.min(Number(range[2]), body.length - 1);
  res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${body.length}`, "content-length": String(end - start + 1) });
  res.end(body.subarray(start, end + 1));
  return true;
}

/** Sends `body` as a 200 in pieces of `pieceBytes`, one every `intervalMs`, so that it arrives over time. */
export async function respondSlowly(
  res: ServerResponse,
  body: Buffer,
  headers: Record<string, string>,
  pieceBytes: number,
  intervalMs: number,
): Promise<void> {
  res.writeHead(200, { ...headers, "content-length": String(body.length) });
  for (let offset = 0; offset < body.length; offset += pieceBytes) {
    res.write(body.subarray(offset, offset + pieceBytes));
    await sleep(intervalMs);
  }
  res.end();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An origin object that the test origin serves with single-range support, as nginx and S3 do. */
export interface Served {
  body: Buffer;
  etag: string;
}

/**
 * Serves GET with RFC 9110 single ranges: 206 with Content-Range, 416 past the end, 200 without
 * Range. `claimedLength` makes each 206 claim that complete length instead of the real one.
 */
export function serveWithRanges(current: () => Served, options: { claimedLength?: number } = {}) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const { body, etag } = current();
    const headers = { "cache-control": "max-age=600", "content-type": "video/mp4", etag };
    const match = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    if (match === null) {
      res.writeHead(200, { ...headers, "content-length": String(body.length) });
      res.end(body);
      return;
    }
    const start = Number(match[1]);
    if (start >= body.length) {
      res.writeHead(416, { "content-range": `bytes */${body.length}` });
      res.end();
      return;
    }
    const end = match[2] === "" ? body.length - 1 : Math.min(Number(match[2]), body.length - 1);
    const complete = options.claimedLength ?? body.length;
    res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${complete}`, "content-length": String(end - start + 1) });
    res.end(body.subarray(start, end + 1));
  };
}

/**
 * Starts a test edge whose one distribution allows every method in front of
 * `origin`, and stops both when the test ends. Returns the edge's TLS port,
 * the distribution's domain name and the CA that signed its certificate.
 */
export async function startEdgeForOrigin(t: TestContext, origin: TestOrigin) {
  t.after(() => origin.close());
  const fixture = await startTestEdge({});
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(origin.port);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const ca = await readFile(fixture.edge.caCertificatePath);
  return { origin, fixture, ca, port: fixture.edge.httpsPort, host: snapshot.domainName };
}

/**
 * Finds the pid of the worker that owns the server side of each loopback connection from one of
 * `clientPorts` to `serverPort`. It reads the socket table once, because on a machine with many
 * closed connections waiting out their time, each read takes tens of milliseconds.
 */
export async function workersHolding(serverPort: number, clientPorts: readonly number[]): Promise<Map<number, number>> {
  const hex = (port: number): string => port.toString(16).toUpperCase().padStart(4, "0");
  const portsByAddress = new Map(clientPorts.map((port) => [`0100007F:${hex(port)}`, port]));
  const socketPorts = new Map<string, number>();
  for (const line of (await readFile("/proc/net/tcp", "utf8")).split("\n")) {
    const fields = line.trim().split(/\s+/);
    const clientPort = portsByAddress.get(fields[2] ?? "");
    if (fields[1] === `0100007F:${hex(serverPort)}` && clientPort !== undefined) socketPorts.set(`socket:[${fields[9]}]`, clientPort);
  }
  const holders = new Map<number, number>();
  for (const worker of Object.values(cluster.workers ?? {})) {
    const pid = worker?.process.pid;
    if (pid === undefined) continue;
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [])) {
      const clientPort = socketPorts.get(await readlink(`/proc/${pid}/fd/${fd}`).catch(() => ""));
      if (clientPort !== undefined) holders.set(clientPort, pid);
    }
  }
  return holders;
}

/** Starts two edge workers with test credentials, the given rollup targets, and `overrides` of the other options. */
export function startTwoWorkers(
  edgeId: string,
  dataDir: string,
  bus: EmbeddedBus,
  rollups: RollupTargets,
  diskCacheBytes?: number,
  overrides: Partial<Parameters<typeof startEdgeWorkers>[0]> = {},
): ReturnType<typeof startEdgeWorkers> {
  return startEdgeWorkers({
    ...(diskCacheBytes === undefined ? {} : { diskCacheBytes }),
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
    ...overrides,
  });
}
