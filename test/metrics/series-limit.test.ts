import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  GetMetricStatisticsCommand,
  LimitExceededFault,
  PutMetricDataCommand,
  type CloudWatchClient,
} from "@aws-sdk/client-cloudwatch";
import { AwsQueryProtocol, AwsSmithyRpcV2CborProtocol } from "@aws-sdk/core/protocols";
import { pino } from "pino";
import { startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const PROTOCOLS = {
  json: {},
  query: { protocol: AwsQueryProtocol },
  cbor: { protocol: AwsSmithyRpcV2CborProtocol },
} as const;

for (const [name, config] of Object.entries(PROTOCOLS)) {
  describe(`custom series limit, ${name} client`, () => {
    let harness: Harness;
    let client: CloudWatchClient;
    const namespace = "Portico/Limit";
    const timestamp = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
    const datum = (metricName: string, value: number) => ({ MetricName: metricName, Value: value, Timestamp: timestamp });
    const sums = async (metricName: string) => {
      const output = await client.send(
        new GetMetricStatisticsCommand({
          Namespace: namespace,
          MetricName: metricName,
          StartTime: timestamp,
          EndTime: new Date(timestamp.getTime() + MINUTE_MS),
          Period: 60,
          Statistics: ["Sum"],
        }),
      );
      return output.Datapoints?.map((point) => point.Sum);
    };

    before(async () => {
      harness = await startHarness({ maxCustomSeries: 2 });
      client = harness.client(config);
    });
    after(() => harness.close());

    test("series up to the cap accepted", async () => {
      await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("a", 1), datum("b", 1)] }));
      assert.deepEqual(await sums("a"), [1]);
      assert.deepEqual(await sums("b"), [1]);
    });

    test("new series past the cap rejected", async () => {
      await assert.rejects(
        client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("a", 10), datum("c", 1)] })),
        (error: Error) => {
          assert.ok(error instanceof LimitExceededFault, `got ${error.name}`);
          assert.equal((error as LimitExceededFault).$metadata.httpStatusCode, 400);
          assert.match(error.message, /would create 1 new metric series, but 2 of the 2 allowed exist/);
          return true;
        },
      );
      // The rejected request added nothing, not even to the existing series.
      assert.deepEqual(await sums("c"), []);
      assert.deepEqual(await sums("a"), [1]);
    });

    test("existing series still accepted", async () => {
      await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("b", 5)] }));
      assert.deepEqual(await sums("b"), [6]);
    });
  });
}

describe("custom series limit lowered below the stored series", () => {
  let harness: Harness;
  let client: CloudWatchClient;
  const namespace = "Portico/Lowered";
  const timestamp = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
  const datum = (metricName: string, value: number) => ({ MetricName: metricName, Value: value, Timestamp: timestamp });
  const logLines: Array<Record<string, unknown>> = [];

  before(async () => {
    harness = await startHarness({ maxCustomSeries: 3 });
    client = harness.client();
    await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("a", 1), datum("b", 1), datum("c", 1)] }));
    const log = pino({ level: "info" }, { write: (line: string) => logLines.push(JSON.parse(line) as Record<string, unknown>) });
    await harness.reopen({ maxCustomSeries: 1, log });
  });
  after(() => harness.close());

  test("startup warns about the excess", () => {
    const warning = logLines.find((line) => line.customSeries !== undefined);
    assert.ok(warning, `no warning among ${JSON.stringify(logLines)}`);
    assert.equal(warning.level, 40);
    assert.equal(warning.customSeries, 3);
    assert.equal(warning.maxCustomSeries, 1);
  });

  test("existing series still accepted", async () => {
    await client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("a", 2), datum("c", 5)] }));
    const output = await client.send(
      new GetMetricStatisticsCommand({
        Namespace: namespace,
        MetricName: "c",
        StartTime: timestamp,
        EndTime: new Date(timestamp.getTime() + MINUTE_MS),
        Period: 60,
        Statistics: ["Sum"],
      }),
    );
    assert.deepEqual(output.Datapoints?.map((point) => point.Sum), [6]);
  });

  test("new series rejected", async () => {
    await assert.rejects(
      client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [datum("a", 1), datum("d", 1)] })),
      (error: Error) => {
        assert.ok(error instanceof LimitExceededFault, `got ${error.name}`);
        assert.match(error.message, /would create 1 new metric series, but 3 of the 1 allowed exist/);
        return true;
      },
    );
  });
});
