import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateInvalidationCommand, GetDistributionCommand } from "@aws-sdk/client-cloudfront";
import { startHarness, TEST_CREDENTIALS, type Harness } from "./harness.js";

const run = promisify(execFile);
const CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6";

/**
 * Environment for a CLI or boto3 run: the test keys and the endpoint only, no
 * config or credentials file from the machine. PATH, HOME and PYENV_ROOT are
 * kept so pip's shims still find their interpreter.
 */
function clientEnv(harness: Harness): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? harness.dataDir,
    ...(process.env.PYENV_ROOT ? { PYENV_ROOT: process.env.PYENV_ROOT } : {}),
    AWS_CONFIG_FILE: join(harness.dataDir, "aws-config-absent"),
    AWS_SHARED_CREDENTIALS_FILE: join(harness.dataDir, "aws-credentials-absent"),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.root.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
    PORTICO_TEST_ENDPOINT: harness.endpoint,
  };
}

const CLIS = [
  { name: "pip aws v1", command: "aws", available: true },
  { name: "Debian aws v2", command: "/usr/bin/aws", available: existsSync("/usr/bin/aws") },
];

for (const cli of CLIS) {
  test(`${cli.name} create, wait and invalidate`, { skip: cli.available ? false : `${cli.command} is not installed` }, async (t) => {
    const harness = await startHarness();
    t.after(() => harness.close());
    const env = clientEnv(harness);
    const aws = async (...args: string[]) => {
      const { stdout } = await run(cli.command, [...args, "--endpoint-url", harness.endpoint, "--output", "json"], {
        env,
        timeout: 30_000,
      });
      return stdout.trim() === "" ? {} : (JSON.parse(stdout) as Record<string, unknown>);
    };

    const created = (await aws(
      "cloudfront",
      "create-distribution",
      "--origin-domain-name",
      "cli-bucket.s3.amazonaws.com",
      "--default-root-object",
      "index.html",
    )) as { Distribution: { Id: string; Status: string } };
    const id = created.Distribution.Id;
    assert.match(id, /^E[A-Z0-9]{13}$/);

    // No edge has joined, so the distribution is already Deployed. The CLI's
    // waiters poll once before their first 60 s (distribution) or 20 s
    // (invalidation) delay, so returning well within that proves the first poll matched.
    const waitStarted = Date.now();
    await aws("cloudfront", "wait", "distribution-deployed", "--id", id);
    const invalidation = (await aws(
      "cloudfront",
      "create-invalidation",
      "--distribution-id",
      id,
      "--paths",
      "/index.html",
      "/assets/*",
    )) as { Invalidation: { Id: string; InvalidationBatch: { Paths: { Quantity: number } } } };
    assert.equal(invalidation.Invalidation.InvalidationBatch.Paths.Quantity, 2);
    await aws("cloudfront", "wait", "invalidation-completed", "--distribution-id", id, "--id", invalidation.Invalidation.Id);
    assert.ok(Date.now() - waitStarted < 15_000, "both waiters returned at their first poll");

    const policy = (await aws("cloudfront", "get-cache-policy", "--id", CACHING_OPTIMIZED)) as {
      CachePolicy: { CachePolicyConfig: { Name: string; MinTTL: number } };
    };
    assert.equal(policy.CachePolicy.CachePolicyConfig.Name, "Managed-CachingOptimized");
    assert.equal(policy.CachePolicy.CachePolicyConfig.MinTTL, 1);

    const fetched = await harness.client.send(new GetDistributionCommand({ Id: id }));
    assert.equal(fetched.Distribution?.DistributionConfig?.DefaultRootObject, "index.html");
  });
}

/** Drives the API with boto3: policies, a distribution, waiters and a CNAME conflict. */
const BOTO3_SCRIPT = String.raw`
import json, os, time, boto3
from botocore.config import Config
client = boto3.client("cloudfront", endpoint_url=os.environ["PORTICO_TEST_ENDPOINT"], region_name="us-east-1",
                      config=Config(retries={"max_attempts": 1}))
out = {}
policy = client.create_cache_policy(CachePolicyConfig={
    "Name": "boto3-policy", "MinTTL": 1, "DefaultTTL": 60, "MaxTTL": 3600,
    "ParametersInCacheKeyAndForwardedToOrigin": {
        "EnableAcceptEncodingGzip": True,
        "HeadersConfig": {"HeaderBehavior": "none"},
        "CookiesConfig": {"CookieBehavior": "none"},
        "QueryStringsConfig": {"QueryStringBehavior": "whitelist", "QueryStrings": {"Quantity": 1, "Items": ["v"]}}}})
policy_id = policy["CachePolicy"]["Id"]
out["policyTtl"] = policy["CachePolicy"]["CachePolicyConfig"]["DefaultTTL"]
config = {
    "CallerReference": "boto3-" + str(time.time()), "Comment": "boto3", "Enabled": True,
    "Aliases": {"Quantity": 1, "Items": ["boto3.example.test"]},
    "Origins": {"Quantity": 1, "Items": [{"Id": "b", "DomainName": "boto3-bucket.s3.amazonaws.com", "S3OriginConfig": {"OriginAccessIdentity": ""}}]},
    "DefaultCacheBehavior": {"TargetOriginId": "b", "ViewerProtocolPolicy": "redirect-to-https", "CachePolicyId": policy_id,
                             "OriginRequestPolicyId": "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"}}
created = client.create_distribution(DistributionConfig=config)
dist_id = created["Distribution"]["Id"]
client.get_waiter("distribution_deployed").wait(Id=dist_id, WaiterConfig={"Delay": 1, "MaxAttempts": 5})
inv = client.create_invalidation(DistributionId=dist_id, InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": "r1"})
client.get_waiter("invalidation_completed").wait(DistributionId=dist_id, Id=inv["Invalidation"]["Id"], WaiterConfig={"Delay": 1, "MaxAttempts": 5})
out["listed"] = client.list_distributions_by_cache_policy_id(CachePolicyId=policy_id)["DistributionIdList"]["Items"]
out["distributionId"] = dist_id
conflict = dict(config, CallerReference="boto3-other")
try:
    client.create_distribution(DistributionConfig=conflict)
    out["conflict"] = "none"
except client.exceptions.CNAMEAlreadyExists as error:
    out["conflict"] = error.response["Error"]["Code"]
try:
    client.delete_cache_policy(Id=policy_id, IfMatch=policy["ETag"])
    out["inUse"] = "none"
except client.exceptions.CachePolicyInUse as error:
    out["inUse"] = error.response["Error"]["Code"]
print(json.dumps(out))
`;

const PYTHONS = [
  { name: "pip boto3", command: "python3" },
  { name: "Debian boto3", command: "/usr/bin/python3" },
];

for (const python of PYTHONS) {
  test(`${python.name} policies and waiters`, async (t) => {
    const harness = await startHarness();
    t.after(() => harness.close());
    const { stdout } = await run(python.command, ["-c", BOTO3_SCRIPT], { env: clientEnv(harness), timeout: 30_000 });
    const output = JSON.parse(stdout) as { policyTtl: number; listed: string[]; distributionId: string; conflict: string; inUse: string };
    assert.equal(output.policyTtl, 60);
    assert.deepEqual(output.listed, [output.distributionId]);
    assert.equal(output.conflict, "CNAMEAlreadyExists");
    assert.equal(output.inUse, "CachePolicyInUse");

    // The invalidation created through boto3 is visible to the JavaScript SDK.
    const again = await harness.client.send(
      new CreateInvalidationCommand({
        DistributionId: output.distributionId,
        InvalidationBatch: { CallerReference: "r1", Paths: { Quantity: 1, Items: ["/*"] } },
      }),
    );
    assert.equal(again.Invalidation?.Status, "Completed");
  });
}
