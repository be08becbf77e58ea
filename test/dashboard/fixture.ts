import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CloudFrontClient,
  CreateDistributionCommand,
  CreateInvalidationCommand,
  GetDistributionCommand,
} from "@aws-sdk/client-cloudfront";
import { startPorticoProcess, type PorticoProcess } from "../helpers/portico-process.js";

/** A distribution comment that would run script if the page inserted it as HTML. */
export const HOSTILE_COMMENT = `<script>window.injected = 1</script><img src=x onerror="window.injected = 2">`;

/** The viewer requests the fixture makes, and what the charts must then show. */
export const TRAFFIC = {
  /** GETs of one cacheable object: the first is a miss, the rest are hits. */
  cachedRequests: 8,
  /** GETs of distinct uncacheable objects, each a miss. */
  uncachedRequests: 3,
  /** GETs of paths for which the origin returns 404. */
  notFoundRequests: 4,
};
export const TOTAL_REQUESTS = TRAFFIC.cachedRequests + TRAFFIC.uncachedRequests + TRAFFIC.notFoundRequests;

export interface DashboardFixture {
  portico: PorticoProcess;
  dataDir: string;
  distributionId: string;
  domainName: string;
  invalidationId: string;
  originHits: () => number;
  /** Sends `count` viewer GETs of `path` through the edge and returns their statuses. */
  viewerGet(path: string, count: number): Promise<number[]>;
  /** Sends a request to the API port; `localAddress` picks a loopback source address. */
  api(
    path: string,
    options?: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string },
  ): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>;
  /** Logs in over HTTP and returns the session cookie pair (`name=value`). */
  login(): Promise<string>;
  close(): Promise<void>;
}

function send(
  url: URL,
  options: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string },
): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      url,
      {
        method: options.method ?? "GET",
        headers: options.headers ?? {},
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(options.body);
  });
}

/** Sends one viewer GET through the edge's HTTP port with the distribution's Host. */
async function viewerGet(httpPort: number, host: string, path: string): Promise<number> {
  const response = await send(new URL(`http://127.0.0.1:${httpPort}${path}`), { headers: { host } });
  return response.status;
}

async function waitUntilDeployed(client: CloudFrontClient, id: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const output = await client.send(new GetDistributionCommand({ Id: id }));
    if (output.Distribution?.Status === "Deployed") return;
    if (Date.now() > deadline) throw new Error(`distribution ${id} did not deploy in 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts `portico up`, an origin on loopback, a distribution in front of it
 * with a hostile comment, one invalidation, and real viewer traffic.
 */
export async function startDashboardFixture(): Promise<DashboardFixture> {
  let originHits = 0;
  const origin: Server = createServer((request, response) => {
    originHits++;
    const path = request.url ?? "/";
    if (path.startsWith("/missing")) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found\n");
      return;
    }
    const cacheControl = path === "/cached.txt" ? "max-age=300" : "no-store";
    response.writeHead(200, { "content-type": "text/plain", "cache-control": cacheControl });
    response.end("x".repeat(2000));
  });
  await new Promise<void>((resolve) => origin.listen(0, "127.0.0.1", resolve));
  const originPort = (origin.address() as AddressInfo).port;

  const dataDir = await mkdtemp(join(tmpdir(), "portico-dashboard-"));
  // Root keys from the environment, so `portico up` prints no generated secret
  // and the logs can be searched for the secret.
  const portico = await startPorticoProcess(dataDir, {
    PORTICO_ACCESS_KEY_ID: "AKIADASHBOARDTEST001",
    PORTICO_SECRET_ACCESS_KEY: randomBytes(30).toString("base64url"),
  });
  const { target } = portico;
  const cloudfront = new CloudFrontClient({
    endpoint: target.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
  });

  const created = await cloudfront.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: "dashboard-test",
        Comment: HOSTILE_COMMENT,
        Enabled: true,
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: "app-origin",
              DomainName: "127.0.0.1",
              CustomOriginConfig: { HTTPPort: originPort, HTTPSPort: 443, OriginProtocolPolicy: "http-only" },
            },
          ],
        },
        DefaultCacheBehavior: {
          TargetOriginId: "app-origin",
          ViewerProtocolPolicy: "allow-all",
          ForwardedValues: { QueryString: false, Cookies: { Forward: "none" } },
          MinTTL: 0,
          DefaultTTL: 0,
          MaxTTL: 3600,
        },
      },
    }),
  );
  const distributionId = created.Distribution!.Id!;
  const domainName = created.Distribution!.DomainName!;
  await waitUntilDeployed(cloudfront, distributionId);

  for (let i = 0; i < TRAFFIC.cachedRequests; i++) await viewerGet(target.httpPort, domainName, "/cached.txt");
  for (let i = 0; i < TRAFFIC.uncachedRequests; i++) await viewerGet(target.httpPort, domainName, `/page-${i}.txt`);
  for (let i = 0; i < TRAFFIC.notFoundRequests; i++) await viewerGet(target.httpPort, domainName, `/missing-${i}`);

  const invalidation = await cloudfront.send(
    new CreateInvalidationCommand({
      DistributionId: distributionId,
      InvalidationBatch: { CallerReference: "dashboard-test-1", Paths: { Quantity: 1, Items: ["/cached.txt"] } },
    }),
  );
  cloudfront.destroy();

  const api: DashboardFixture["api"] = (path, options = {}) => send(new URL(path, target.endpoint), options);
  return {
    portico,
    dataDir,
    distributionId,
    domainName,
    invalidationId: invalidation.Invalidation!.Id!,
    originHits: () => originHits,
    async viewerGet(path, count) {
      const statuses: number[] = [];
      for (let i = 0; i < count; i++) statuses.push(await viewerGet(target.httpPort, domainName, path));
      return statuses;
    },
    api,
    async login() {
      const body = new URLSearchParams({ accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey });
      const response = await api("/_portico/dashboard/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: body.toString(),
      });
      if (response.status !== 303) throw new Error(`login failed with ${response.status}: ${response.body}`);
      const cookie = String(response.headers["set-cookie"]?.[0] ?? "");
      return cookie.slice(0, cookie.indexOf(";"));
    },
    async close() {
      await portico.stop();
      await new Promise<void>((resolve) => {
        origin.closeAllConnections();
        origin.close(() => resolve());
      });
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
