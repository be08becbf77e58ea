import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ServerResponse } from "node:http";
import { CloudFrontClient } from "@aws-sdk/client-cloudfront";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { createCloudFrontService, type CloudFrontService } from "../../src/api/cloudfront/index.js";
import type { ApiRequest, ProtocolService } from "../../src/api/context.js";
import { ApiError } from "../../src/api/errors.js";
import { ApiServer } from "../../src/api/server.js";
import { StaticCredentialStore, type LoadedCredentials } from "../../src/api/auth/credentials.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import { silentLogger } from "../../src/common/logger.js";

export const TEST_CREDENTIALS: LoadedCredentials = {
  accountId: "123456789012",
  root: { accessKeyId: "AKIATESTCONTROL00001", secretAccessKey: "test-secret-key-for-control-plane-tests-0" },
  service: { accessKeyId: "ASIATESTCONTROL00001", secretAccessKey: "test-service-key-for-control-plane-tests" },
  rootGenerated: false,
};

export const ZONE = "portico.localhost";
/** The buckets that Logging.Bucket may name in these tests, unless a test gives its own. */
export const LOG_BUCKETS: ReadonlySet<string> = new Set(["logs"]);

/** A protocol this suite does not exercise: every request gets NotImplemented. */
const notImplemented: ProtocolService = {
  async handle(): Promise<void> {
    throw new ApiError("NotImplemented", 501, "Not served in this test.");
  },
  renderError(error: ApiError, _request: ApiRequest, response: ServerResponse): void {
    response.writeHead(error.status, { "content-type": "text/plain" });
    response.end(error.code);
  },
};

export interface Harness {
  dataDir: string;
  bus: EmbeddedBus;
  service: CloudFrontService;
  server: ApiServer;
  endpoint: string;
  client: CloudFrontClient;
  /** Stops the server and the service, keeping the data folder. */
  stop(): Promise<void>;
  /** Stops everything and removes the data folder. */
  close(): Promise<void>;
}

/** Starts the API server on 127.0.0.1 port 0 with a real CloudFront service and bus. */
export async function startHarness(
  options: { dataDir?: string; bus?: EmbeddedBus; buckets?: ReadonlySet<string> } = {},
): Promise<Harness> {
  const log = silentLogger();
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "portico-control-")));
  const bus = options.bus ?? new EmbeddedBus(log);
  const service = await createCloudFrontService({
    dataDir,
    accountId: TEST_CREDENTIALS.accountId,
    zone: ZONE,
    bus,
    // The S3 service is not part of these tests, so the bucket store is a set of names.
    bucketExists: (name) => (options.buckets ?? LOG_BUCKETS).has(name),
    log,
  });
  await service.start();
  const server = new ApiServer({
    credentials: new StaticCredentialStore(TEST_CREDENTIALS),
    services: { s3: notImplemented, cloudwatch: notImplemented, cloudfront: service },
    log,
    health: () => "ok",
  });
  const address = await server.listen(0, "127.0.0.1");
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new CloudFrontClient({
    endpoint,
    region: "us-east-1",
    credentials: {
      accessKeyId: TEST_CREDENTIALS.root.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey,
    },
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    client.destroy();
    await server.close();
    await service.close();
  };
  return {
    dataDir,
    bus,
    service,
    server,
    endpoint,
    client,
    stop,
    close: async () => {
      await stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Builds a runbook-shaped distribution config: one S3 origin and a redirect-to-https default behavior. */
export function s3DistributionConfig(callerReference: string, overrides: Record<string, unknown> = {}) {
  return {
    CallerReference: callerReference,
    Comment: "static site",
    Enabled: true,
    DefaultRootObject: "index.html",
    Origins: {
      Quantity: 1,
      Items: [
        {
          Id: "site-bucket",
          DomainName: "site-bucket.s3.amazonaws.com",
          S3OriginConfig: { OriginAccessIdentity: "" },
        },
      ],
    },
    DefaultCacheBehavior: {
      TargetOriginId: "site-bucket",
      ViewerProtocolPolicy: "redirect-to-https" as const,
      MinTTL: 0,
      DefaultTTL: 3600,
      MaxTTL: 86400,
      ForwardedValues: { QueryString: false, Cookies: { Forward: "none" as const } },
    },
    ...overrides,
  };
}

/**
 * Sends a request signed with the test root key but with a body of the
 * test's choosing, for documents the SDK would never produce.
 */
export async function sendSigned(
  endpoint: string,
  method: string,
  path: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const url = new URL(path, endpoint);
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: TEST_CREDENTIALS.root.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey,
    },
    region: "us-east-1",
    service: "cloudfront",
    sha256: Hash.bind(null, "sha256"),
  });
  const query: Record<string, string> = {};
  for (const [key, value] of url.searchParams) query[key] = value;
  const signed = await signer.sign({
    method,
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query,
    headers: { host: url.host, "content-type": "application/xml", ...headers },
    body,
  });
  const response = await fetch(url, {
    method,
    headers: signed.headers,
    ...(method === "GET" || method === "HEAD" ? {} : { body }),
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Awaits a request that must fail and returns the error name the SDK gives it. */
export async function errorName(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as Error).name;
  }
  assert.fail("the request succeeded but should have failed");
}
