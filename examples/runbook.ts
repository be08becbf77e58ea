/**
 * The CDN runbook against a running `portico up`, with the AWS SDK for
 * JavaScript v3 at default settings but endpoint, region, credentials and
 * path-style addressing:
 *
 *   1. create a bucket and upload a static site;
 *   2. create an origin access control and a distribution in front of the
 *      bucket, restrict the bucket to that distribution with a bucket policy;
 *   3. read the site through the edge (redirect, miss, hit, range, every file);
 *   4. check that no other principal can read the bucket;
 *   5. deploy a change and invalidate `/*`;
 *   6. read the distribution's metrics.
 *
 * Each step checks what it did and throws when a check fails.
 * Run it with `npm run runbook` while `npm start` runs in another terminal.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { pathToFileURL } from "node:url";
import {
  CreateDistributionCommand,
  CreateInvalidationCommand,
  CreateOriginAccessControlCommand,
  GetDistributionCommand,
  waitUntilDistributionDeployed,
  waitUntilInvalidationCompleted,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { GetMetricStatisticsCommand } from "@aws-sdk/client-cloudwatch";
import { CreateBucketCommand, PutBucketPolicyCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import {
  createClients,
  forEachLimited,
  listSite,
  targetFromEnvironment,
  Viewer,
  type PorticoTarget,
} from "./lib/portico-clients.js";
import { ProgressLine, withElapsedTime, type ProgressReporter } from "../src/cli/progress.js";

export interface RunbookResult {
  bucket: string;
  distributionId: string;
  distributionArn: string;
  domainName: string;
  invalidationId: string;
  /** Key and new content of the page changed in step 5. */
  changedPage: { key: string; body: string };
  /** Number of viewer requests the runbook made to the distribution. */
  viewerRequests: number;
}

export type StepReporter = (message: string) => void;

const WAITER = { minDelay: 1, maxDelay: 1, maxWaitTime: 60 } as const;

/** Returns the runbook's distribution config: one S3 origin behind an origin access control. */
function distributionConfig(
  callerReference: string,
  bucket: string,
  originAccessControlId: string,
): DistributionConfig {
  const originId = `s3-${bucket}`;
  return {
    CallerReference: callerReference,
    Comment: "Portico runbook",
    Enabled: true,
    DefaultRootObject: "index.html",
    Origins: {
      Quantity: 1,
      Items: [
        {
          Id: originId,
          DomainName: `${bucket}.s3.amazonaws.com`,
          S3OriginConfig: { OriginAccessIdentity: "" },
          OriginAccessControlId: originAccessControlId,
        },
      ],
    },
    DefaultCacheBehavior: {
      TargetOriginId: originId,
      ViewerProtocolPolicy: "redirect-to-https",
      MinTTL: 0,
      DefaultTTL: 86400,
      MaxTTL: 31536000,
      ForwardedValues: {
        QueryString: false,
        Cookies: { Forward: "none" },
      },
    },
  };
}

/** Runs the whole runbook; `siteDir` is the static site to upload. */
export async function runRunbook(
  target: PorticoTarget,
  siteDir: string,
  report: StepReporter,
  progress: ProgressReporter = () => {},
): Promise<RunbookResult> {
  const { s3, cloudfront, cloudwatch } = createClients(target);
  const viewer = await Viewer.create(target.caCertificatePath);
  const suffix = randomBytes(4).toString("hex");
  const bucket = `runbook-site-${suffix}`;
  let viewerRequests = 0;
  const get = async (url: string, headers: Record<string, string> = {}) => {
    viewerRequests++;
    return viewer.request(url, headers);
  };

  try {
    // 1. Bucket and content.
    report(`1. CreateBucket ${bucket}`);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
    const files = await listSite(siteDir);
    assert.ok(files.length > 0, `no files under ${siteDir}`);
    let uploadedBytes = 0;
    let uploadedFiles = 0;
    await forEachLimited(files, 8, async (file) => {
      const body = await readFile(file.path);
      await s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: file.key, Body: body, ContentType: file.contentType }),
      );
      uploadedBytes += body.length;
      uploadedFiles += 1;
      progress(`   uploading: ${uploadedFiles}/${files.length} files, ${(uploadedBytes / 1048576).toFixed(1)} MiB`);
    });
    report(`   uploaded ${files.length} files, ${(uploadedBytes / 1048576).toFixed(1)} MiB`);

    // 2. Origin access control, distribution, bucket policy.
    const oac = await cloudfront.send(
      new CreateOriginAccessControlCommand({
        OriginAccessControlConfig: {
          Name: `runbook-${suffix}`,
          OriginAccessControlOriginType: "s3",
          SigningBehavior: "always",
          SigningProtocol: "sigv4",
        },
      }),
    );
    const oacId = oac.OriginAccessControl?.Id;
    assert.ok(oacId, "CreateOriginAccessControl returned no Id");
    report(`2. CreateOriginAccessControl ${oacId}`);

    const created = await cloudfront.send(
      new CreateDistributionCommand({
        DistributionConfig: distributionConfig(`runbook-${suffix}`, bucket, oacId),
      }),
    );
    const distribution = created.Distribution;
    assert.ok(distribution?.Id, "CreateDistribution returned no Id");
    assert.ok(distribution.ARN, "CreateDistribution returned no ARN");
    assert.ok(distribution.DomainName, "CreateDistribution returned no DomainName");
    assert.ok(created.ETag, "CreateDistribution returned no ETag");
    assert.match(distribution.DomainName, /^d[a-z0-9]{13}\./);
    assert.ok(["InProgress", "Deployed"].includes(distribution.Status ?? ""), `unexpected Status ${distribution.Status}`);
    report(`   CreateDistribution ${distribution.Id} ${distribution.DomainName} (${distribution.Status})`);

    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: bucket,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "AllowCloudFrontServicePrincipalReadOnly",
              Effect: "Allow",
              Principal: { Service: "cloudfront.amazonaws.com" },
              Action: "s3:GetObject",
              Resource: `arn:aws:s3:::${bucket}/*`,
              Condition: { StringEquals: { "AWS:SourceArn": distribution.ARN } },
            },
          ],
        }),
      }),
    );
    report(`   PutBucketPolicy: only ${distribution.ARN} may read`);

    await withElapsedTime(
      progress,
      `   waiting for ${distribution.Id} to deploy`,
      waitUntilDistributionDeployed({ client: cloudfront, ...WAITER }, { Id: distribution.Id }),
    );
    const deployed = await cloudfront.send(new GetDistributionCommand({ Id: distribution.Id }));
    assert.equal(deployed.Distribution?.Status, "Deployed");
    report(`   Status: Deployed`);

    // 3. Through the edge.
    const host = distribution.DomainName;
    const httpsBase = `https://${host}:${target.httpsPort}`;
    const plain = await get(`http://${host}:${target.httpPort}/index.html?x=1`);
    assert.equal(plain.status, 301, "plain HTTP must redirect to HTTPS");
    assert.equal(plain.headers.get("location"), `${httpsBase}/index.html?x=1`);
    await plain.body?.cancel();
    report(`3. http://${host}:${target.httpPort}/index.html?x=1 -> 301 ${plain.headers.get("location")}`);

    const page = files.find((file) => file.key === "fs.html") ?? files[0]!;
    const pageUrl = `${httpsBase}/${page.key}`;
    const first = await get(pageUrl);
    const firstBody = Buffer.from(await first.arrayBuffer());
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-cache"), "Miss from portico");
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await get(pageUrl);
    const secondBody = Buffer.from(await second.arrayBuffer());
    assert.equal(second.headers.get("x-cache"), "Hit from portico");
    assert.ok(secondBody.equals(firstBody), "the hit must carry the same bytes as the miss");
    assert.ok(Number(second.headers.get("age")) >= 1, `Age should grow, got ${second.headers.get("age")}`);
    report(`   ${pageUrl}: Miss, then Hit with Age ${second.headers.get("age")}`);

    const root = await get(`${httpsBase}/`);
    const rootBody = Buffer.from(await root.arrayBuffer());
    assert.equal(root.status, 200);
    assert.ok(rootBody.equals(await readFile(`${siteDir}/index.html`)), "/ must serve index.html");
    report(`   ${httpsBase}/ serves the default root object index.html`);

    const large = files.find((file) => file.key === "all.html") ?? files[files.length - 1]!;
    const largeBody = await readFile(large.path);
    const ranged = await get(`${httpsBase}/${large.key}`, { range: "bytes=1000-1999" });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers.get("content-range"), `bytes 1000-1999/${largeBody.length}`);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(largeBody.subarray(1000, 2000)));
    report(`   Range bytes=1000-1999 of ${large.key} (${largeBody.length} bytes): 206`);

    await forEachLimited(files, 8, async (file) => {
      const response = await get(`${httpsBase}/${file.key.split("/").map(encodeURIComponent).join("/")}`);
      const body = Buffer.from(await response.arrayBuffer());
      assert.equal(response.status, 200, `${file.key}: status ${response.status}`);
      assert.ok(body.equals(await readFile(file.path)), `${file.key}: bytes differ from the uploaded file`);
    });
    report(`   all ${files.length} files read back byte-identical through the edge`);

    // 4. No other principal reads the bucket.
    const anonymous = await viewer.request(`${target.endpoint}/${bucket}/index.html`);
    assert.equal(anonymous.status, 403);
    assert.match(await anonymous.text(), /<Code>AccessDenied<\/Code>/);
    report(`4. anonymous GET ${target.endpoint}/${bucket}/index.html -> 403 AccessDenied`);

    const other = await cloudfront.send(
      new CreateDistributionCommand({
        DistributionConfig: distributionConfig(`runbook-other-${suffix}`, bucket, oacId),
      }),
    );
    assert.ok(other.Distribution?.Id, "the second CreateDistribution returned no Id");
    assert.ok(other.Distribution.DomainName, "the second CreateDistribution returned no DomainName");
    await withElapsedTime(
      progress,
      `   waiting for ${other.Distribution.Id} to deploy`,
      waitUntilDistributionDeployed({ client: cloudfront, ...WAITER }, { Id: other.Distribution.Id }),
    );
    const otherResponse = await viewer.request(`https://${other.Distribution.DomainName}:${target.httpsPort}/index.html`);
    assert.equal(otherResponse.status, 403, "a distribution the policy does not name must get 403");
    await otherResponse.body?.cancel();
    report(`   second distribution ${other.Distribution.Id} on the same bucket -> 403 at the edge`);

    // 5. Deploy a change, invalidate.
    const changed = `<!doctype html><title>changed</title><p>deployed at ${new Date().toISOString()}</p>\n`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: page.key, Body: changed, ContentType: "text/html" }));
    const stale = await get(pageUrl);
    assert.equal(stale.headers.get("x-cache"), "Hit from portico");
    assert.ok(Buffer.from(await stale.arrayBuffer()).equals(firstBody), "before invalidation the edge serves the cached copy");
    report(`5. uploaded a new ${page.key}; the edge still serves the cached copy`);

    const invalidationRequest = {
      DistributionId: distribution.Id,
      InvalidationBatch: { CallerReference: `deploy-${suffix}`, Paths: { Quantity: 1, Items: ["/*"] } },
    };
    const invalidation = await cloudfront.send(new CreateInvalidationCommand(invalidationRequest));
    const invalidationId = invalidation.Invalidation?.Id;
    assert.ok(invalidationId);
    await withElapsedTime(
      progress,
      `   waiting for invalidation ${invalidationId} to complete`,
      waitUntilInvalidationCompleted({ client: cloudfront, ...WAITER }, { DistributionId: distribution.Id, Id: invalidationId }),
    );
    const repeated = await cloudfront.send(new CreateInvalidationCommand(invalidationRequest));
    assert.equal(repeated.Invalidation?.Id, invalidationId, "the same CallerReference must return the same invalidation");
    const fresh = await get(pageUrl);
    assert.equal(fresh.headers.get("x-cache"), "Miss from portico");
    assert.equal(await fresh.text(), changed);
    report(`   CreateInvalidation /* ${invalidationId}: Completed; next GET is a Miss with the new page`);

    // 6. Metrics.
    const endTime = new Date(Date.now() + 60_000);
    const startTime = new Date(Date.now() - 15 * 60_000);
    const dimensions = [
      { Name: "DistributionId", Value: distribution.Id },
      { Name: "Region", Value: "Global" },
    ];
    const requests = await cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/CloudFront",
        MetricName: "Requests",
        Dimensions: dimensions,
        StartTime: startTime,
        EndTime: endTime,
        Period: 60,
        Statistics: ["Sum"],
      }),
    );
    const requestSum = (requests.Datapoints ?? []).reduce((sum, point) => sum + (point.Sum ?? 0), 0);
    assert.equal(requestSum, viewerRequests, "Requests must count every viewer request of the runbook");
    const errorRate = await cloudwatch.send(
      new GetMetricStatisticsCommand({
        Namespace: "AWS/CloudFront",
        MetricName: "TotalErrorRate",
        Dimensions: dimensions,
        StartTime: startTime,
        EndTime: endTime,
        Period: 60,
        Statistics: ["Average"],
      }),
    );
    assert.ok((errorRate.Datapoints ?? []).length > 0, "TotalErrorRate has no datapoints");
    report(
      `6. AWS/CloudFront Requests: ${requestSum} in ${requests.Datapoints?.length} minute(s); ` +
        `TotalErrorRate: ${(errorRate.Datapoints ?? []).map((point) => point.Average?.toFixed(1) + "%").join(", ")}`,
    );

    report(`\nThe site is served at ${httpsBase}/`);
    return {
      bucket,
      distributionId: distribution.Id,
      distributionArn: distribution.ARN,
      domainName: host,
      invalidationId,
      changedPage: { key: page.key, body: changed },
      viewerRequests,
    };
  } finally {
    await viewer.close();
    s3.destroy();
    cloudfront.destroy();
    cloudwatch.destroy();
  }
}

async function main(): Promise<void> {
  const target = await targetFromEnvironment();
  const siteDir = process.argv[2] ?? process.env.PORTICO_SITE_DIR ?? ".cache/nodejs-doc";
  console.log(`Runbook against ${target.endpoint}, uploading ${siteDir}\n`);
  // The progress line goes to standard error on a terminal only, so standard output keeps just the steps.
  const progress = new ProgressLine();
  await runRunbook(
    target,
    siteDir,
    (message) => {
      progress.clear();
      console.log(message);
    },
    progress.update,
  );
  progress.clear();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
}
