import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CreateDistributionCommand, waitUntilDistributionDeployed } from "@aws-sdk/client-cloudfront";
import { GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { createClients, Viewer } from "../../examples/lib/portico-clients.js";
import { startPorticoProcess, type PorticoProcess } from "../helpers/portico-process.js";

const REQUESTS = 5;

async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("second signal saves metrics and counts lost logs", { timeout: 120_000 }, async (t) => {
  // The origin responds to every path at once but /hold, which it holds open so
  // that the first signal's drain waits for it.
  const held: ServerResponse[] = [];
  let holdArrived = false;
  const origin = createServer((request, response) => {
    if (request.url === "/hold") {
      holdArrived = true;
      held.push(response);
      return;
    }
    response.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=60" });
    response.end("ok");
  });
  origin.listen(0, "127.0.0.1");
  await once(origin, "listening");
  t.after(() => {
    for (const response of held) response.destroy();
    origin.close();
  });

  const dataDir = await mkdtemp(join(tmpdir(), "portico-signal-"));
  t.after(() => rm(dataDir, { recursive: true, force: true }));
  // One edge process, so every finished request is in this process's aggregator at once.
  const env = { PORTICO_EDGE_WORKERS: "1" };
  let portico: PorticoProcess | undefined = await startPorticoProcess(dataDir, env);
  t.after(() => portico?.stop("SIGKILL"));
  const viewer = await Viewer.create(portico.target.caCertificatePath);
  t.after(() => viewer.close());
  const clients = createClients(portico.target);
  t.after(() => {
    for (const client of Object.values(clients)) client.destroy();
  });

  const logBucket = `signal-logs-${Math.random().toString(36).slice(2, 8)}`;
  await clients.s3.send(new CreateBucketCommand({ Bucket: logBucket }));
  const created = await clients.cloudfront.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: "second-signal",
        Comment: "second signal test",
        Enabled: true,
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: "app",
              DomainName: "127.0.0.1",
              CustomOriginConfig: {
                HTTPPort: (origin.address() as AddressInfo).port,
                HTTPSPort: 443,
                OriginProtocolPolicy: "http-only",
              },
            },
          ],
        },
        DefaultCacheBehavior: {
          TargetOriginId: "app",
          ViewerProtocolPolicy: "allow-all",
          MinTTL: 0,
          ForwardedValues: { QueryString: true, Cookies: { Forward: "none" } },
        },
        Logging: { Enabled: true, IncludeCookies: false, Bucket: `${logBucket}.s3.amazonaws.com`, Prefix: "" },
      },
    }),
  );
  const distributionId = created.Distribution!.Id!;
  const domainName = created.Distribution!.DomainName!;
  await waitUntilDistributionDeployed({ client: clients.cloudfront, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { Id: distributionId });

  const startedMs = Date.now();
  const base = `http://${domainName}:${portico.target.httpPort}`;
  for (let i = 0; i < REQUESTS; i++) {
    const response = await viewer.request(`${base}/file?i=${i}`);
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  }
  const hold = viewer.request(`${base}/hold`).then(
    (response) => response.arrayBuffer(),
    () => undefined,
  );
  await waitFor("the held request at the origin", () => (holdArrived ? true : undefined));

  const running = portico;
  const exited = once(running.child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;
  running.child.kill("SIGTERM");
  await waitFor("the first signal's stopping log", () => running.logs.find((line) => line.msg === "stopping"));
  running.child.kill("SIGTERM");
  const [code] = await exited;
  await hold;
  assert.equal(code, 1, "the second signal exits at once with status 1");
  const warning = running.logs.find((line) => String(line.msg).startsWith("second signal during shutdown"));
  assert.ok(warning, `no second-signal warning in ${JSON.stringify(running.logs.slice(-5))}`);
  assert.equal(warning.lostAccessLogRecords, REQUESTS, "every finished request's log record was still in memory");
  assert.equal(typeof warning.writtenMetricMinutes, "number");

  // The requests are in the metrics database after a restart.
  portico = await startPorticoProcess(dataDir, env);
  const cloudwatch = createClients(portico.target).cloudwatch;
  t.after(() => cloudwatch.destroy());
  const minuteMs = Math.floor(startedMs / 60_000) * 60_000;
  const output = await cloudwatch.send(
    new GetMetricStatisticsCommand({
      Namespace: "AWS/CloudFront",
      MetricName: "Requests",
      Dimensions: [
        { Name: "DistributionId", Value: distributionId },
        { Name: "Region", Value: "Global" },
      ],
      StartTime: new Date(minuteMs),
      EndTime: new Date(Date.now() + 60_000),
      Period: 600,
      Statistics: ["Sum"],
    }),
  );
  const sum = (output.Datapoints ?? []).reduce((total, point) => total + (point.Sum ?? 0), 0);
  assert.equal(sum, REQUESTS, "the requests finished before the exit were written");
  assert.equal(await portico.stop(), 0);
});
