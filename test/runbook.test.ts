import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import {
  GetDistributionCommand,
  GetDistributionConfigCommand,
  GetInvalidationCommand,
  NoSuchDistribution,
} from "@aws-sdk/client-cloudfront";
import {
  GetBucketPolicyCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchBucket,
  NoSuchKey,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { fetch } from "undici";
import { runRunbook, type RunbookResult } from "../examples/runbook.js";
import { createClients, Viewer } from "../examples/lib/portico-clients.js";
import { startPorticoProcess, type PorticoProcess } from "./helpers/portico-process.js";
import { signedFetch } from "./helpers/signed-fetch.js";

const run = promisify(execFile);
const REPO = join(import.meta.dirname, "..");
const SITE_DIR = process.env.PORTICO_SITE_DIR ?? join(REPO, ".cache", "nodejs-doc");

describe("runbook against portico up", { timeout: 600_000 }, () => {
  let dataDir: string;
  let portico: PorticoProcess;
  let result: RunbookResult;

  before(async () => {
    await run("bash", [join(REPO, "scripts", "fetch-site.sh")]);
    dataDir = await mkdtemp(join(tmpdir(), "portico-runbook-"));
    portico = await startPorticoProcess(dataDir);
  });

  after(async () => {
    await portico?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("first start generates and prints root credentials", async () => {
    const file = join(dataDir, "credentials.json");
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.match(portico.stderr(), new RegExp(`AWS_SECRET_ACCESS_KEY=${escape(portico.target.secretAccessKey)}`));
    const health = await fetch(`${portico.target.endpoint}/_portico/health`);
    assert.equal(health.status, 200);
  });

  test("runbook steps 1 to 6 pass with the JavaScript SDK", async () => {
    const steps: string[] = [];
    result = await runRunbook(portico.target, SITE_DIR, (message) => steps.push(message));
    assert.ok(steps.some((line) => line.includes("Status: Deployed")));
    assert.ok(steps.at(-1)?.includes(`https://${result.domainName}:${portico.target.httpsPort}/`));
  });

  test("example prints each step and the URL", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", join(REPO, "examples", "runbook.ts"), SITE_DIR], {
      cwd: REPO,
      env: {
        ...process.env,
        PORTICO_ENDPOINT: portico.target.endpoint,
        PORTICO_HTTP_PORT: String(portico.target.httpPort),
        PORTICO_HTTPS_PORT: String(portico.target.httpsPort),
        PORTICO_DATA_DIR: dataDir,
        AWS_ACCESS_KEY_ID: "",
        AWS_SECRET_ACCESS_KEY: "",
      },
      timeout: 300_000,
    });
    for (const step of ["1. CreateBucket", "2. CreateOriginAccessControl", "3. http://", "4. anonymous", "5. uploaded", "6. AWS/CloudFront"]) {
      assert.ok(stdout.includes(step), `example output lacks '${step}':\n${stdout}`);
    }
    assert.match(stdout, /The site is served at https:\/\/d[a-z0-9]{13}\.portico\.localhost:\d+\//);
  });

  test("CloudWatch Query protocol counts the requests (Debian boto3)", async (t) => {
    if (!existsSync("/usr/bin/python3")) return t.skip("no /usr/bin/python3");
    const probe = await run("/usr/bin/python3", ["-c", "import boto3; print(boto3.__version__)"]).catch(() => undefined);
    if (!probe) return t.skip("Debian's python3-boto3 is not installed");
    const script = `
import boto3, datetime, json, sys
client = boto3.client("cloudwatch", endpoint_url=sys.argv[1], region_name="us-east-1",
    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])
now = datetime.datetime.now(datetime.timezone.utc)
answer = client.get_metric_statistics(Namespace="AWS/CloudFront", MetricName="Requests",
    Dimensions=[{"Name": "DistributionId", "Value": sys.argv[4]}, {"Name": "Region", "Value": "Global"}],
    StartTime=now - datetime.timedelta(minutes=30), EndTime=now + datetime.timedelta(minutes=1),
    Period=60, Statistics=["Sum"])
print(json.dumps(sum(point["Sum"] for point in answer["Datapoints"])))
`;
    const { stdout } = await run("/usr/bin/python3", [
      "-c",
      script,
      portico.target.endpoint,
      portico.target.accessKeyId,
      portico.target.secretAccessKey,
      result.distributionId,
    ]);
    assert.ok(Number(stdout) >= result.viewerRequests, `boto3 saw ${stdout.trim()} requests`);
  });

  test("bad input gets protocol errors and changes nothing", async () => {
    const { s3, cloudfront } = createClients(portico.target);
    const before = await cloudfront.send(new GetDistributionConfigCommand({ Id: result.distributionId }));

    const malformed = await signedFetch(portico.target, {
      service: "cloudfront",
      method: "POST",
      path: "/2020-05-31/distribution",
      body: "<DistributionConfig><CallerReference>x</Caller",
      headers: { "content-type": "application/xml" },
    });
    assert.equal(malformed.status, 400);
    assert.match(malformed.body, /<ErrorResponse[^>]*>[\s\S]*<Code>MalformedInput<\/Code>/);

    const truncatedDelete = "<Delete><Object><Key>index.html</Key></Obj";
    const malformedS3 = await signedFetch(portico.target, {
      service: "s3",
      method: "POST",
      path: `/${result.bucket}?delete`,
      body: truncatedDelete,
      headers: {
        "content-type": "application/xml",
        "content-md5": createHash("md5").update(truncatedDelete).digest("base64"),
      },
    });
    assert.equal(malformedS3.status, 400);
    assert.match(malformedS3.body, /<Code>MalformedXML<\/Code>/);

    await assert.rejects(cloudfront.send(new GetDistributionCommand({ Id: "E0000000000000" })), NoSuchDistribution);
    await assert.rejects(s3.send(new ListObjectsV2Command({ Bucket: "no-such-bucket-here" })), NoSuchBucket);
    await assert.rejects(s3.send(new GetObjectCommand({ Bucket: result.bucket, Key: "no/such/key.html" })), NoSuchKey);

    const badSignature = await signedFetch(portico.target, {
      service: "s3",
      method: "GET",
      path: `/${result.bucket}/index.html`,
      secretAccessKey: "not-the-secret-key-at-all-0000000000000000",
    });
    assert.equal(badSignature.status, 403);
    assert.match(badSignature.body, /<Code>SignatureDoesNotMatch<\/Code>/);

    for (const skewMs of [-20 * 60_000, 20 * 60_000]) {
      const skewed = await signedFetch(portico.target, {
        service: "s3",
        method: "GET",
        path: `/${result.bucket}/index.html`,
        signingDate: new Date(Date.now() + skewMs),
      });
      assert.equal(skewed.status, 403);
      assert.match(skewed.body, /<Code>RequestTimeTooSkewed<\/Code>/);
    }

    const stale = await signedFetch(portico.target, {
      service: "cloudfront",
      method: "PUT",
      path: `/2020-05-31/distribution/${result.distributionId}/config`,
      body: "<DistributionConfig xmlns=\"http://cloudfront.amazonaws.com/doc/2020-05-31/\"></DistributionConfig>",
      headers: { "if-match": "ESTALEETAG0000" },
    });
    assert.equal(stale.status, 412);
    assert.match(stale.body, /<Code>PreconditionFailed<\/Code>/);

    const malformedMetrics = await signedFetch(portico.target, {
      service: "monitoring",
      method: "POST",
      path: "/",
      body: "{not json",
      headers: {
        "content-type": "application/x-amz-json-1.0",
        "x-amz-target": "GraniteServiceVersion20100801.GetMetricStatistics",
      },
    });
    assert.equal(malformedMetrics.status, 400);
    assert.match(malformedMetrics.body, /"__type"/);

    const afterwards = await cloudfront.send(new GetDistributionConfigCommand({ Id: result.distributionId }));
    assert.equal(afterwards.ETag, before.ETag);
    assert.deepEqual(afterwards.DistributionConfig, before.DistributionConfig);
    const page = await s3.send(new GetObjectCommand({ Bucket: result.bucket, Key: "index.html" }));
    assert.ok(Buffer.from(await page.Body!.transformToByteArray()).equals(await readFile(join(SITE_DIR, "index.html"))));

    const rejected = portico.logs.filter((entry) => entry.msg === "request rejected" && entry.code === "RequestTimeTooSkewed");
    assert.equal(rejected.length, 2, "each rejected request is logged once");
    s3.destroy();
    cloudfront.destroy();
  });

  test("a range of a large object reaches the bucket as slices", async () => {
    const { s3 } = createClients(portico.target);
    // Larger than the largest memory entry of a worker, so without slices it would be fetched whole.
    const video = randomBytes(20 * 1024 * 1024 + 12345);
    await s3.send(new PutObjectCommand({ Bucket: result.bucket, Key: "media/large.mp4", Body: video, ContentType: "video/mp4" }));
    const viewer = await Viewer.create(portico.target.caCertificatePath);
    const url = `https://${result.domainName}:${portico.target.httpsPort}/media/large.mp4`;
    const start = video.length - 1_500_000;
    const tail = await viewer.request(url, { range: `bytes=${start}-` });
    assert.equal(tail.status, 206);
    assert.equal(tail.headers.get("content-range"), `bytes ${start}-${video.length - 1}/${video.length}`);
    assert.equal(tail.headers.get("x-cache"), "Miss from portico");
    assert.match(String(tail.headers.get("cache-status")), /detail=range-slices/);
    assert.ok(Buffer.from(await tail.arrayBuffer()).equals(video.subarray(start)));

    // Whichever worker serves it, the response has the same bytes.
    const again = await viewer.request(url, { range: `bytes=${start}-${start + 99}` });
    assert.equal(again.status, 206);
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(video.subarray(start, start + 100)));
    await viewer.close();
    s3.destroy();
  });

  test("restart keeps every resource and serves again", async () => {
    assert.equal(await portico.stop("SIGTERM"), 0, "portico up exits with 0 on SIGTERM");
    portico = await startPorticoProcess(dataDir);
    assert.doesNotMatch(portico.stderr(), /AWS_SECRET_ACCESS_KEY=/, "the secret is printed only on first start");

    const { s3, cloudfront } = createClients(portico.target);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: result.bucket, MaxKeys: 1000 }));
    assert.ok((listed.KeyCount ?? 0) > 100);
    const policy = await s3.send(new GetBucketPolicyCommand({ Bucket: result.bucket }));
    assert.ok(policy.Policy?.includes(result.distributionArn));
    const distribution = await cloudfront.send(new GetDistributionCommand({ Id: result.distributionId }));
    assert.equal(distribution.Distribution?.DomainName, result.domainName);
    const invalidation = await cloudfront.send(
      new GetInvalidationCommand({ DistributionId: result.distributionId, Id: result.invalidationId }),
    );
    assert.equal(invalidation.Invalidation?.Status, "Completed");

    const viewer = await Viewer.create(portico.target.caCertificatePath);
    const url = `https://${result.domainName}:${portico.target.httpsPort}/${result.changedPage.key}`;
    let served: Awaited<ReturnType<Viewer["request"]>> | undefined;
    for (let attempt = 0; attempt < 50; attempt++) {
      served = await viewer.request(url);
      if (served.status !== 404) break;
      await served.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(served!.status, 200);
    assert.equal(await served!.text(), result.changedPage.body);
    const again = await viewer.request(url);
    assert.equal(again.headers.get("x-cache"), "Hit from portico");
    await again.body?.cancel();
    await viewer.close();
    s3.destroy();
    cloudfront.destroy();
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
