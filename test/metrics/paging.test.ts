import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  GetMetricDataCommand,
  InvalidNextToken,
  paginateGetMetricData,
  PutMetricDataCommand,
  type CloudWatchClient,
  type GetMetricDataCommandInput,
  type GetMetricDataCommandOutput,
} from "@aws-sdk/client-cloudwatch";
import { AwsQueryProtocol, AwsSmithyRpcV2CborProtocol } from "@aws-sdk/core/protocols";
import { startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const PROTOCOLS = {
  json: {},
  query: { protocol: AwsQueryProtocol },
  cbor: { protocol: AwsSmithyRpcV2CborProtocol },
} as const;
const NAMESPACE = "Portico/Paging";
/** 30 minutes of metric a, 20 of metric b, and their sum on the 20 minutes they share. */
const TOTAL_POINTS = 30 + 20 + 20;

type Collected = Map<string, Array<[number, number]>>;

function collect(pages: GetMetricDataCommandOutput[]): Collected {
  const byId: Collected = new Map();
  for (const page of pages) {
    for (const result of page.MetricDataResults ?? []) {
      const points = byId.get(result.Id!) ?? [];
      result.Timestamps!.forEach((timestamp, i) => points.push([timestamp.getTime(), result.Values![i]!]));
      byId.set(result.Id!, points);
    }
  }
  return byId;
}

describe("GetMetricData paging", () => {
  let harness: Harness;
  const lastMinute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 5 * MINUTE_MS;
  const firstMinute = lastMinute - 29 * MINUTE_MS;
  const input = (scanBy?: "TimestampAscending" | "TimestampDescending"): GetMetricDataCommandInput => ({
    StartTime: new Date(firstMinute),
    EndTime: new Date(lastMinute + MINUTE_MS),
    ...(scanBy ? { ScanBy: scanBy } : {}),
    MetricDataQueries: [
      { Id: "a", MetricStat: { Metric: { Namespace: NAMESPACE, MetricName: "A" }, Period: 60, Stat: "Sum" } },
      { Id: "b", MetricStat: { Metric: { Namespace: NAMESPACE, MetricName: "B" }, Period: 60, Stat: "Sum" } },
      { Id: "total", Expression: "a + b" },
    ],
  });

  before(async () => {
    harness = await startHarness();
    const MetricData = [];
    for (let minute = 0; minute < 30; minute++) {
      const Timestamp = new Date(firstMinute + minute * MINUTE_MS);
      MetricData.push({ MetricName: "A", Value: minute, Timestamp });
      if (minute >= 10) MetricData.push({ MetricName: "B", Value: 100 + minute, Timestamp });
    }
    await harness.client().send(new PutMetricDataCommand({ Namespace: NAMESPACE, MetricData }));
  });
  after(() => harness.close());

  for (const [name, config] of Object.entries(PROTOCOLS)) {
    describe(`${name} client`, () => {
      let client: CloudWatchClient;
      before(() => {
        client = harness.client(config);
      });

      test("one page without MaxDatapoints", async () => {
        const output = await client.send(new GetMetricDataCommand(input()));
        assert.equal(output.NextToken, undefined);
        const collected = collect([output]);
        assert.equal(collected.get("a")!.length, 30);
        assert.equal(collected.get("b")!.length, 20);
        assert.equal(collected.get("total")!.length, 20);
        assert.ok(output.MetricDataResults!.every((result) => result.StatusCode === "Complete"));
      });

      for (const scanBy of ["TimestampDescending", "TimestampAscending"] as const) {
        test(`paginator joins pages, ${scanBy}`, async () => {
          const whole = collect([await client.send(new GetMetricDataCommand(input(scanBy)))]);
          const pages: GetMetricDataCommandOutput[] = [];
          for await (const page of paginateGetMetricData({ client, pageSize: 8 }, input(scanBy))) pages.push(page);

          assert.equal(pages.length, Math.ceil(TOTAL_POINTS / 8));
          for (const page of pages) {
            const points = page.MetricDataResults!.reduce((sum, result) => sum + result.Values!.length, 0);
            assert.ok(points <= 8, `a page has ${points} points`);
            assert.equal(page.MetricDataResults!.length, 3);
          }
          assert.equal(pages[pages.length - 1]!.NextToken, undefined);
          assert.ok(pages.slice(0, -1).every((page) => typeof page.NextToken === "string"));
          assert.ok(pages[0]!.MetricDataResults!.some((result) => result.StatusCode === "PartialData"));
          assert.deepEqual(collect(pages), whole);
        });
      }

      test("tampered NextToken rejected", async () => {
        const first = await client.send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8 }));
        const token = first.NextToken!;
        const flipped = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A");
        const [payload, signature] = token.split(".");
        const forged = Buffer.from(
          JSON.stringify({ ...JSON.parse(Buffer.from(payload!, "base64url").toString()), r: 2 }),
        ).toString("base64url");
        for (const bad of [flipped, `${forged}.${signature}`, "garbage", `${token}.x`, ""]) {
          await assert.rejects(
            client.send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8, NextToken: bad })),
            (error: Error) => {
              assert.ok(error instanceof InvalidNextToken, `${JSON.stringify(bad)}: got ${error.name}`);
              assert.equal((error as InvalidNextToken).$metadata.httpStatusCode, 400);
              return true;
            },
          );
        }
      });

      test("NextToken of another request rejected", async () => {
        const first = await client.send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8 }));
        const other = { ...input(), StartTime: new Date(firstMinute + MINUTE_MS), MaxDatapoints: 8, NextToken: first.NextToken! };
        await assert.rejects(client.send(new GetMetricDataCommand(other)), InvalidNextToken);
        const otherSize = { ...input(), MaxDatapoints: 9, NextToken: first.NextToken! };
        await assert.rejects(client.send(new GetMetricDataCommand(otherSize)), InvalidNextToken);
        // The token still works with its own request.
        const second = await client.send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8, NextToken: first.NextToken! }));
        assert.equal(second.MetricDataResults!.reduce((sum, result) => sum + result.Values!.length, 0), 8);
      });
    });
  }

  test("token from a restarted endpoint rejected", async () => {
    // The signing key is made per process, so a restart is simulated with a
    // token signed by another key.
    const first = await harness.client().send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8 }));
    const [payload] = first.NextToken!.split(".");
    const foreign = `${payload}.${Buffer.alloc(32, 7).toString("base64url")}`;
    await assert.rejects(
      harness.client().send(new GetMetricDataCommand({ ...input(), MaxDatapoints: 8, NextToken: foreign })),
      InvalidNextToken,
    );
  });
});
