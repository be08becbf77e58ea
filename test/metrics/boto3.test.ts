import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { requestRecord, startHarness, TEST_CREDENTIALS, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const SCRIPT = fileURLToPath(new URL("./boto3_client.py", import.meta.url));

/**
 * Debian's python3-boto3 (1.26) speaks the Query protocol to CloudWatch;
 * pip's current boto3 picks the first protocol its botocore supports from the
 * model (RPC v2 CBOR, then JSON).
 */
const INTERPRETERS = [
  { name: "Debian boto3", python: "/usr/bin/python3" },
  { name: "pip boto3", python: "python3" },
];

function boto3Available(python: string): string | undefined {
  const probe = spawnSync(python, ["-c", "import boto3"], { encoding: "utf8", env: cleanEnvironment() });
  if (probe.error) return `${python} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `import boto3 failed under ${python}: ${probe.stderr.trim().split("\n").pop()}`;
  return undefined;
}

/** Keeps the user's AWS configuration and any proxy out of the client under test. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME };
  env.AWS_CONFIG_FILE = "/dev/null";
  env.AWS_SHARED_CREDENTIALS_FILE = "/dev/null";
  env.NO_PROXY = "127.0.0.1,localhost";
  return env;
}

describe("boto3 clients", () => {
  let harness: Harness;
  const distribution = "E2BOTO3DIST001";
  const minuteStart = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 3 * MINUTE_MS;

  before(async () => {
    // Each interpreter puts two series, then five new ones that pass the cap of 4.
    harness = await startHarness({ maxCustomSeries: 4 });
    // 8 requests: 2 errors in the first minute, none in the second.
    for (let i = 0; i < 4; i++) {
      harness.metrics.sink.record(
        requestRecord({ distributionId: distribution, timestampMs: minuteStart + i * 1000, status: i < 2 ? 500 : 200 }),
      );
      harness.metrics.sink.record(requestRecord({ distributionId: distribution, timestampMs: minuteStart + MINUTE_MS + i * 1000 }));
    }
  });
  after(() => harness.close());

  for (const { name, python } of INTERPRETERS) {
    const skip = boto3Available(python);
    test(`${name} end to end`, { skip: skip ?? false }, async (t) => {
      // Asynchronous, because the server under test runs in this process.
      const run = await promisify(execFile)(
        python,
        [SCRIPT, harness.endpoint, TEST_CREDENTIALS.root.accessKeyId, TEST_CREDENTIALS.root.secretAccessKey, distribution, String(minuteStart / 1000), `Portico/${name.replace(" ", "")}`],
        { encoding: "utf8", env: cleanEnvironment(), timeout: 60_000 },
      );
      const result = JSON.parse(run.stdout);
      assert.equal(typeof result.protocol, "string");
      t.diagnostic(`${name} ${result.boto3} spoke ${result.protocol}`);

      assert.equal(result.datapoints.length, 1);
      assert.equal(result.datapoints[0].timestamp * 1000, minuteStart);
      assert.equal(result.datapoints[0].average, 25);
      assert.equal(result.datapoints[0].sampleCount, 8);
      assert.equal(result.datapoints[0].unit, "Percent");

      assert.deepEqual(result.listed, [
        {
          Namespace: "AWS/CloudFront",
          MetricName: "Requests",
          Dimensions: [
            { Name: "DistributionId", Value: distribution },
            { Name: "Region", Value: "Global" },
          ],
        },
      ]);

      assert.deepEqual(result.metricData.jobs.values, [14.5]);
      assert.deepEqual(result.metricData.count.values, [3]);
      assert.deepEqual(result.metricData.mean.values, [14.5 / 3]);

      assert.equal(result.errors.tooManyDatapoints?.code, "InvalidParameterCombination");
      assert.equal(result.errors.tooManyDatapoints?.status, 400);
      assert.match(result.errors.tooManyDatapoints?.message ?? "", /exceeds the limit of 1440/);
      assert.equal(result.errors.awsNamespace?.code, "InvalidParameterValue");
      assert.equal(result.errors.badStatistic?.code, "InvalidParameterValue");
      assert.equal(result.paging.pages, 3);
      assert.deepEqual(result.paging.values, [4, 3, 2, 1, 0]);
      assert.deepEqual(result.paging.statuses, ["PartialData", "PartialData", "Complete"]);
      assert.equal(result.paging.tokens, 2);
      assert.equal(result.errors.tamperedToken?.code, "InvalidNextToken");
      assert.equal(result.errors.tamperedToken?.status, 400);
      assert.equal(result.errors.foreignToken?.code, "InvalidNextToken");

      assert.equal(result.alarm.state, "ALARM");
      assert.equal(result.alarm.reason, "set by boto3");
      assert.match(result.alarm.arn, /^arn:aws:cloudwatch:us-east-1:123456789012:alarm:/);
      assert.deepEqual(result.alarm.history.map((item: [string, string]) => item[0]), ["ConfigurationUpdate", "StateUpdate", "Action"]);
      assert.equal(result.errors.badOperator?.code, "InvalidParameterValue");
      assert.equal(result.errors.unknownAlarm?.code, "ResourceNotFound");
      assert.equal(result.errors.unknownAlarm?.status, 404);
      assert.equal(result.errors.deleteUnknown?.code, "ResourceNotFound");

      assert.equal(result.errors.seriesLimit?.code, "LimitExceeded");
      assert.equal(result.errors.seriesLimit?.status, 400);
      assert.match(result.errors.seriesLimit?.message ?? "", /would create 5 new metric series/);
    });
  }
});
