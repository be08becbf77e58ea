// Measures control plane latency against a running `portico up`: CreateDistribution to
// Deployed, UpdateDistribution to Deployed, and CreateInvalidation to Completed, each
// observed by polling Get* every POLL_MS. Prints one JSON line per measure with the median
// and p99 in milliseconds. Reads PORTICO_API_URL, RUNS (100), POLL_MS (2) and the root key
// from PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY.
import {
  CloudFrontClient,
  CreateDistributionCommand,
  CreateInvalidationCommand,
  GetDistributionCommand,
  GetDistributionConfigCommand,
  GetInvalidationCommand,
  UpdateDistributionCommand,
} from "@aws-sdk/client-cloudfront";

const endpoint = process.env.PORTICO_API_URL ?? "http://127.0.0.1:4690";
const runs = Number(process.env.RUNS ?? 100);
const pollMs = Number(process.env.POLL_MS ?? 2);
const accessKeyId = process.env.PORTICO_ACCESS_KEY_ID;
const secretAccessKey = process.env.PORTICO_SECRET_ACCESS_KEY;
if (accessKeyId === undefined || secretAccessKey === undefined) {
  throw new Error("PORTICO_ACCESS_KEY_ID and PORTICO_SECRET_ACCESS_KEY must be set");
}
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(endpoint)) {
  throw new Error(`PORTICO_API_URL must be a loopback URL, not ${endpoint}`);
}

const client = new CloudFrontClient({ endpoint, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function config(callerReference: string, comment: string) {
  return {
    CallerReference: callerReference,
    Comment: comment,
    Enabled: true,
    Origins: {
      Quantity: 1,
      Items: [{ Id: "bench-bucket", DomainName: "bench-bucket.s3.amazonaws.com", S3OriginConfig: { OriginAccessIdentity: "" } }],
    },
    DefaultCacheBehavior: {
      TargetOriginId: "bench-bucket",
      ViewerProtocolPolicy: "allow-all" as const,
      MinTTL: 0,
      ForwardedValues: { QueryString: false, Cookies: { Forward: "none" as const } },
    },
  };
}

async function untilDeployed(id: string): Promise<void> {
  for (;;) {
    const current = await client.send(new GetDistributionCommand({ Id: id }));
    if (current.Distribution?.Status === "Deployed") return;
    await sleep(pollMs);
  }
}

async function untilCompleted(distributionId: string, id: string): Promise<void> {
  for (;;) {
    const current = await client.send(new GetInvalidationCommand({ DistributionId: distributionId, Id: id }));
    if (current.Invalidation?.Status === "Completed") return;
    await sleep(pollMs);
  }
}

function summarize(name: string, samplesMs: number[]): void {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const at = (quantile: number) => sorted[Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1)]!;
  const round = (value: number) => Math.round(value * 100) / 100;
  console.log(JSON.stringify({ measure: name, runs: sorted.length, medianMs: round(at(0.5)), p99Ms: round(at(0.99)), maxMs: round(sorted.at(-1)!) }));
}

const createMs: number[] = [];
const updateMs: number[] = [];
const invalidationMs: number[] = [];
const stamp = Date.now();
const ids: string[] = [];

for (let run = 0; run < runs; run += 1) {
  const started = performance.now();
  const created = await client.send(new CreateDistributionCommand({ DistributionConfig: config(`bench-${stamp}-${run}`, "bench") }));
  const id = created.Distribution!.Id!;
  await untilDeployed(id);
  createMs.push(performance.now() - started);
  ids.push(id);
}

const distributionId = ids[0]!;
for (let run = 0; run < runs; run += 1) {
  const current = await client.send(new GetDistributionConfigCommand({ Id: distributionId }));
  const started = performance.now();
  await client.send(
    new UpdateDistributionCommand({
      Id: distributionId,
      IfMatch: current.ETag,
      DistributionConfig: { ...current.DistributionConfig!, Comment: `bench update ${run}` },
    }),
  );
  await untilDeployed(distributionId);
  updateMs.push(performance.now() - started);
}

for (let run = 0; run < runs; run += 1) {
  const started = performance.now();
  const created = await client.send(
    new CreateInvalidationCommand({
      DistributionId: distributionId,
      InvalidationBatch: { CallerReference: `bench-${stamp}-${run}`, Paths: { Quantity: 1, Items: [`/run-${run}/*`] } },
    }),
  );
  await untilCompleted(distributionId, created.Invalidation!.Id!);
  invalidationMs.push(performance.now() - started);
}

summarize("CreateDistribution to Deployed", createMs);
summarize("UpdateDistribution to Deployed", updateMs);
summarize("CreateInvalidation to Completed", invalidationMs);
client.destroy();
