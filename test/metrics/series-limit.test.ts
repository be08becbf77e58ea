import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  GetMetricStatisticsCommand,
  LimitExceededFault,
  PutMetricDataCommand,
  type CloudWatchClient,
} from "@aws-sdk/client-cloudwatch";
import { AwsQueryProtocol, AwsSmithyRpcV2CborProtocol } from "@aws-sdk/core/protocols";
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
