import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetDistributionCommand } from "@aws-sdk/client-cloudfront";
import { startHarness, TEST_CREDENTIALS, ZONE } from "./harness.js";

const AWS_CLI = "/usr/bin/aws";
const run = promisify(execFile);

test("aws cloudfront create-distribution", { skip: existsSync(AWS_CLI) ? false : `${AWS_CLI} is not installed` }, async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  // The CLI gets only the endpoint and test keys; no config file from the machine is read.
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: harness.dataDir,
    AWS_CONFIG_FILE: join(harness.dataDir, "aws-config-absent"),
    AWS_SHARED_CREDENTIALS_FILE: join(harness.dataDir, "aws-credentials-absent"),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.root.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
  const { stdout } = await run(
    AWS_CLI,
    [
      "cloudfront",
      "create-distribution",
      "--origin-domain-name",
      "cli-bucket.s3.amazonaws.com",
      "--default-root-object",
      "index.html",
      "--endpoint-url",
      harness.endpoint,
      "--output",
      "json",
    ],
    { env, timeout: 60_000 },
  );
  const output = JSON.parse(stdout) as {
    Location: string;
    ETag: string;
    Distribution: { Id: string; DomainName: string; DistributionConfig: { DefaultRootObject: string; Origins: { Items: Array<{ DomainName: string }> } } };
  };
  assert.match(output.Distribution.Id, /^E[A-Z0-9]{13}$/);
  assert.ok(output.Distribution.DomainName.endsWith(`.${ZONE}`));
  assert.equal(output.Distribution.DistributionConfig.DefaultRootObject, "index.html");
  assert.equal(output.Distribution.DistributionConfig.Origins.Items[0]?.DomainName, "cli-bucket.s3.amazonaws.com");
  assert.ok(output.ETag);

  const fetched = await harness.client.send(new GetDistributionCommand({ Id: output.Distribution.Id }));
  assert.equal(fetched.ETag, output.ETag);
});
