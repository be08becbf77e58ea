import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import { CloudWatchClient, type CloudWatchClientConfig } from "@aws-sdk/client-cloudwatch";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { StaticCredentialStore, type LoadedCredentials } from "../../src/api/auth/credentials.js";
import type { ApiRequest, ProtocolService } from "../../src/api/context.js";
import { ApiError } from "../../src/api/errors.js";
import { ApiServer } from "../../src/api/server.js";
import { silentLogger, type Logger } from "../../src/common/logger.js";
import { createMetrics, type Metrics } from "../../src/metrics/index.js";
import type { RequestRecord } from "../../src/metrics/types.js";

export const TEST_CREDENTIALS: LoadedCredentials = {
  accountId: "123456789012",
  root: { accessKeyId: "AKIATESTMETRICS00001", secretAccessKey: "testSecretKeyForMetricsTests0000000000001" },
  service: { accessKeyId: "ASIATESTMETRICS00001", secretAccessKey: "testServiceKeyForMetricsTests00000000001" },
  rootGenerated: false,
};

/** Rejects every request with NotImplemented, in place of the S3 and CloudFront services. */
class NotImplementedService implements ProtocolService {
  constructor(private readonly name: string) {}
  async handle(): Promise<void> {
    throw new ApiError("NotImplemented", 501, `${this.name} is not part of this test.`);
  }
  renderError(error: ApiError, _request: ApiRequest, response: ServerResponse): void {
    response.writeHead(error.status, { "content-type": "text/plain" });
    response.end(`${error.code}: ${error.message}\n`);
  }
}

export interface Harness {
  endpoint: string;
  dataDir: string;
  metrics: Metrics;
  server: ApiServer;
  /** Sets the clock that the metrics see, in epoch milliseconds. */
  clock: { nowMs: number };
  client(config?: Partial<CloudWatchClientConfig>): CloudWatchClient;
  /** Closes metrics and reopens them on the same data folder, keeping the server, with `changes` to the options. */
  reopen(changes?: { maxCustomSeries?: number; log?: Logger }): Promise<void>;
  close(): Promise<void>;
}

export async function startHarness(options: { nowMs?: number; maxCustomSeries?: number } = {}): Promise<Harness> {
  const dataDir = await mkdtemp(join(tmpdir(), "portico-metrics-"));
  const clock = { nowMs: options.nowMs ?? Date.now() };
  const useClock = options.nowMs !== undefined;
  const open = (changes: { maxCustomSeries?: number; log?: Logger } = {}) => {
    const maxCustomSeries = changes.maxCustomSeries ?? options.maxCustomSeries;
    return createMetrics({
      dataDir,
      log: changes.log ?? silentLogger(),
      accountId: TEST_CREDENTIALS.accountId,
      // A test that sets the clock evaluates alarms itself, at the times it chooses.
      ...(useClock ? { now: () => clock.nowMs, evaluateAlarmsOnTimer: false } : {}),
      ...(maxCustomSeries !== undefined ? { maxCustomSeries } : {}),
    });
  };
  let metrics = await open();
  const services = {
    s3: new NotImplementedService("S3"),
    cloudfront: new NotImplementedService("CloudFront"),
    // Delegates so that `reopen` can swap the metrics underneath the server.
    cloudwatch: {
      handle: (request: ApiRequest, response: ServerResponse) => metrics.cloudwatch.handle(request, response),
      renderError: (error: ApiError, request: ApiRequest, response: ServerResponse) =>
        metrics.cloudwatch.renderError(error, request, response),
    } satisfies ProtocolService,
  };
  const server = new ApiServer({
    credentials: new StaticCredentialStore(TEST_CREDENTIALS),
    services,
    log: silentLogger(),
    health: () => "ok",
  });
  const address = await server.listen(0, "127.0.0.1");
  const endpoint = `http://127.0.0.1:${address.port}`;
  const clients: CloudWatchClient[] = [];
  const harness: Harness = {
    endpoint,
    dataDir,
    get metrics() {
      return metrics;
    },
    server,
    clock,
    client(config = {}) {
      const client = new CloudWatchClient({
        endpoint,
        region: "us-east-1",
        credentials: {
          accessKeyId: TEST_CREDENTIALS.root.accessKeyId,
          secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey,
        },
        maxAttempts: 1,
        ...config,
      });
      clients.push(client);
      return client;
    },
    async reopen(changes = {}) {
      await metrics.close();
      metrics = await open(changes);
    },
    async close() {
      for (const client of clients) client.destroy();
      await server.close();
      await metrics.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

let requestCounter = 0;

/** A viewer request record with test defaults: a GET served 200 from cache. */
export function requestRecord(overrides: Partial<RequestRecord>): RequestRecord {
  requestCounter += 1;
  return {
    distributionId: "E2TESTDIST0001",
    timestampMs: Date.now(),
    edgeId: "edge-1",
    method: "GET",
    path: "/index.html",
    query: "",
    host: "d111111abcdef8.portico.localhost",
    protocol: "https",
    httpVersion: "1.1",
    status: 200,
    bytesDownloaded: 1000,
    bytesUploaded: 0,
    resultType: "Hit",
    originLatencyMs: undefined,
    durationMs: 1,
    clientIp: "127.0.0.1",
    userAgent: "test",
    referer: undefined,
    requestId: `req-${requestCounter}`,
    ...overrides,
  };
}

export interface RawResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

/** Sends a SigV4-signed request for the `monitoring` service, for bodies no SDK would send. */
export async function signedRequest(
  endpoint: string,
  init: { method?: string; path?: string; headers: Record<string, string>; body: Uint8Array | string },
): Promise<RawResponse> {
  const url = new URL(init.path ?? "/", endpoint);
  const signer = new SignatureV4({
    service: "monitoring",
    region: "us-east-1",
    sha256: Hash.bind(null, "sha256"),
    credentials: {
      accessKeyId: TEST_CREDENTIALS.root.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey,
    },
  });
  const body = typeof init.body === "string" ? Buffer.from(init.body) : Buffer.from(init.body);
  const signed = await signer.sign({
    method: init.method ?? "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { host: url.host, ...init.headers },
    body,
  });
  const response = await fetch(url, {
    method: signed.method,
    headers: signed.headers as Record<string, string>,
    ...(signed.method === "GET" ? {} : { body }),
  });
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}
