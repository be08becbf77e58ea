import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DeleteAlarmsCommand,
  DescribeAlarmHistoryCommand,
  DescribeAlarmsCommand,
  DescribeAlarmsForMetricCommand,
  DisableAlarmActionsCommand,
  EnableAlarmActionsCommand,
  InvalidFormatFault,
  InvalidNextToken,
  InvalidParameterCombinationException,
  InvalidParameterValueException,
  LimitExceededFault,
  MissingRequiredParameterException,
  paginateDescribeAlarms,
  PutMetricAlarmCommand,
  PutMetricDataCommand,
  ResourceNotFound,
  SetAlarmStateCommand,
  type CloudWatchClient,
  type PutMetricAlarmCommandInput,
} from "@aws-sdk/client-cloudwatch";
import { AwsQueryProtocol, AwsSmithyRpcV2CborProtocol } from "@aws-sdk/core/protocols";
import { MAX_ALARMS } from "../../src/api/cloudwatch/alarms.js";
import { EVALUATION_OFFSET_MS, FIRST_EVALUATION_DELAY_MS, nextEvaluationDelayMs } from "../../src/metrics/alarm-evaluator.js";
import type { AlarmConfig } from "../../src/metrics/alarm-store.js";
import { requestRecord, startHarness, TEST_CREDENTIALS, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const PROTOCOLS = {
  json: {},
  query: { protocol: AwsQueryProtocol },
  cbor: { protocol: AwsSmithyRpcV2CborProtocol },
} as const;
const NAMESPACE = "Portico/Alarms";
const TOPIC = "arn:aws:sns:us-east-1:123456789012:ops";

const depthAlarm: PutMetricAlarmCommandInput = {
  AlarmName: "depth-high",
  AlarmDescription: "queue depth above 10 for two minutes",
  Namespace: NAMESPACE,
  MetricName: "Depth",
  Dimensions: [{ Name: "Queue", Value: "jobs" }],
  Statistic: "Sum",
  Period: 60,
  EvaluationPeriods: 2,
  DatapointsToAlarm: 2,
  Threshold: 10,
  ComparisonOperator: "GreaterThanThreshold",
  AlarmActions: [TOPIC],
};

for (const [name, config] of Object.entries(PROTOCOLS)) {
  describe(`alarms, ${name} client`, () => {
    let harness: Harness;
    let client: CloudWatchClient;
    // The metrics clock starts 30 s into a minute and moves only when a test moves it.
    const minuteMs = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS;

    const putDepth = (value: number, timestampMs: number) =>
      client.send(
        new PutMetricDataCommand({
          Namespace: NAMESPACE,
          MetricData: [{ MetricName: "Depth", Dimensions: [{ Name: "Queue", Value: "jobs" }], Value: value, Timestamp: new Date(timestampMs) }],
        }),
      );
    const describeOne = async (alarmName: string) => {
      const output = await client.send(new DescribeAlarmsCommand({ AlarmNames: [alarmName] }));
      assert.equal(output.MetricAlarms?.length, 1, `alarm ${alarmName}`);
      return output.MetricAlarms![0]!;
    };

    before(async () => {
      harness = await startHarness({ nowMs: minuteMs + 30_000 });
      client = harness.client(config);
    });
    after(() => harness.close());

    test("new alarm starts unchecked", async () => {
      await client.send(new PutMetricAlarmCommand(depthAlarm));
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.StateValue, "INSUFFICIENT_DATA");
      assert.equal(alarm.StateReason, "Unchecked: Initial alarm creation");
      assert.equal(alarm.AlarmArn, `arn:aws:cloudwatch:us-east-1:${TEST_CREDENTIALS.accountId}:alarm:depth-high`);
      assert.equal(alarm.ActionsEnabled, true);
      assert.deepEqual(alarm.AlarmActions, [TOPIC]);
      assert.equal(alarm.Threshold, 10);
      assert.equal(alarm.DatapointsToAlarm, 2);
      assert.equal(alarm.TreatMissingData, "missing");
      assert.deepEqual(alarm.Dimensions, [{ Name: "Queue", Value: "jobs" }]);
    });

    test("bad alarm input rejected", async () => {
      const cases: Array<[Partial<PutMetricAlarmCommandInput>, new (...args: never[]) => Error, RegExp]> = [
        [{ EvaluationPeriods: undefined }, MissingRequiredParameterException, /EvaluationPeriods is required/],
        [{ ComparisonOperator: undefined }, MissingRequiredParameterException, /ComparisonOperator is required/],
        [{ Threshold: undefined }, MissingRequiredParameterException, /Threshold is required/],
        [{ ExtendedStatistic: "p99" }, InvalidParameterCombinationException, /mutually exclusive/],
        [{ Statistic: "Median" as "Sum" }, InvalidParameterValueException, /Median for parameter Statistic/],
        [{ ComparisonOperator: "Bigger" as "GreaterThanThreshold" }, InvalidParameterValueException, /Bigger for parameter ComparisonOperator/],
        [{ DatapointsToAlarm: 3 }, InvalidParameterValueException, /DatapointsToAlarm/],
        [{ Period: 90 }, InvalidParameterValueException, /multiple of 60/],
        [{ Period: 86_400, EvaluationPeriods: 8, DatapointsToAlarm: 1 }, InvalidParameterCombinationException, /7 days/],
        [{ Period: 60, EvaluationPeriods: 1441, DatapointsToAlarm: 1 }, InvalidParameterCombinationException, /one day/],
        [{ TreatMissingData: "sometimes" }, InvalidParameterValueException, /TreatMissingData/],
        [{ AlarmActions: ["not-an-arn"] }, InvalidParameterValueException, /AlarmActions.member.1/],
        [{ Metrics: [{ Id: "m1", Expression: "1" }] }, InvalidParameterCombinationException, /metric math/],
        [{ Namespace: ":bad" }, InvalidParameterValueException, /Namespace/],
      ];
      for (const [change, type, message] of cases) {
        await assert.rejects(client.send(new PutMetricAlarmCommand({ ...depthAlarm, ...change })), (error: Error) => {
          assert.ok(error instanceof type, `${JSON.stringify(change)}: got ${error.name}`);
          assert.match(error.message, message);
          return true;
        });
      }
      // No rejected request changed the stored alarm.
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.Period, 60);
      assert.equal(alarm.Statistic, "Sum");
      assert.deepEqual(alarm.AlarmActions, [TOPIC]);
    });

    test("put data moves alarm to ALARM", async () => {
      await harness.metrics.alarms.evaluateAll();
      // Both periods are missing, and TreatMissingData "missing" keeps INSUFFICIENT_DATA.
      assert.equal((await describeOne("depth-high")).StateValue, "INSUFFICIENT_DATA");
      await putDepth(20, minuteMs - 2 * MINUTE_MS);
      await putDepth(20, minuteMs - MINUTE_MS + 5_000);
      await harness.metrics.alarms.evaluateAll();
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.StateValue, "ALARM");
      assert.match(
        alarm.StateReason!,
        /^Threshold Crossed: 2 datapoints \[20\.0 \(\d\d\/\d\d\/\d\d \d\d:\d\d:00\), 20\.0 \(\d\d\/\d\d\/\d\d \d\d:\d\d:00\)\] were greater than the threshold \(10\.0\) \(minimum 2 datapoints for INSUFFICIENT_DATA -> ALARM transition\)\.$/,
      );
      assert.deepEqual(JSON.parse(alarm.StateReasonData!).recentDatapoints, [20, 20]);
      assert.equal(alarm.StateTransitionedTimestamp?.getTime(), minuteMs + 30_000);
    });

    test("data below threshold returns to OK", async () => {
      harness.clock.nowMs = minuteMs + 2 * MINUTE_MS + 30_000;
      await putDepth(1, minuteMs);
      await putDepth(2, minuteMs + MINUTE_MS);
      await harness.metrics.alarms.evaluateAll();
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.StateValue, "OK");
      assert.match(alarm.StateReason!, /^Threshold Crossed: 2 datapoints \[1\.0 .*, 2\.0 .*\] were not greater than the threshold \(10\.0\)/);
    });

    test("history records changes and undelivered actions", async () => {
      const history = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", ScanBy: "TimestampAscending" }));
      const items = history.AlarmHistoryItems!.map((item) => [item.HistoryItemType, item.HistorySummary]);
      assert.deepEqual(items, [
        ["ConfigurationUpdate", 'Alarm "depth-high" created'],
        ["StateUpdate", "Alarm updated from INSUFFICIENT_DATA to ALARM"],
        ["Action", `Failed to execute action ${TOPIC}`],
        ["StateUpdate", "Alarm updated from ALARM to OK"],
      ]);
      const data = JSON.parse(history.AlarmHistoryItems![1]!.HistoryData!);
      assert.equal(data.oldState.stateValue, "INSUFFICIENT_DATA");
      assert.equal(data.newState.stateValue, "ALARM");
      const onlyStates = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", HistoryItemType: "StateUpdate" }));
      assert.deepEqual(onlyStates.AlarmHistoryItems!.map((item) => item.HistorySummary), [
        "Alarm updated from ALARM to OK",
        "Alarm updated from INSUFFICIENT_DATA to ALARM",
      ]);
      const paged = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 3 }));
      assert.equal(paged.AlarmHistoryItems!.length, 3);
      const rest = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 3, NextToken: paged.NextToken! }));
      assert.deepEqual(rest.AlarmHistoryItems!.map((item) => item.HistorySummary), ['Alarm "depth-high" created']);
      assert.equal(rest.NextToken, undefined);
    });

    test("viewer traffic moves alarm to ALARM", async () => {
      const distribution = `E2ALARM${name.toUpperCase().padEnd(7, "0")}`;
      await client.send(
        new PutMetricAlarmCommand({
          AlarmName: "requests-high",
          Namespace: "AWS/CloudFront",
          MetricName: "Requests",
          Dimensions: [{ Name: "DistributionId", Value: distribution }, { Name: "Region", Value: "Global" }],
          Statistic: "Sum",
          Period: 60,
          EvaluationPeriods: 1,
          Threshold: 5,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
          TreatMissingData: "notBreaching",
        }),
      );
      await harness.metrics.alarms.evaluateAll();
      assert.equal((await describeOne("requests-high")).StateValue, "OK");
      const lastMinuteMs = minuteMs + MINUTE_MS;
      for (let i = 0; i < 6; i++) harness.metrics.sink.record(requestRecord({ distributionId: distribution, timestampMs: lastMinuteMs + i * 1000 }));
      await harness.metrics.alarms.evaluateAll();
      const alarm = await describeOne("requests-high");
      assert.equal(alarm.StateValue, "ALARM");
      assert.match(alarm.StateReason!, /^Threshold Crossed: 1 datapoint \[6\.0 .*\] was greater than or equal to the threshold \(5\.0\)/);
    });

    test("SetAlarmState changes state and checks input", async () => {
      await client.send(new SetAlarmStateCommand({ AlarmName: "depth-high", StateValue: "ALARM", StateReason: "testing", StateReasonData: "{}" }));
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.StateValue, "ALARM");
      assert.equal(alarm.StateReason, "testing");
      await assert.rejects(
        client.send(new SetAlarmStateCommand({ AlarmName: "depth-high", StateValue: "OK", StateReason: "x", StateReasonData: "{not json" })),
        InvalidFormatFault,
      );
      await assert.rejects(client.send(new SetAlarmStateCommand({ AlarmName: "nope", StateValue: "OK", StateReason: "x" })), (error: Error) => {
        assert.ok(error instanceof ResourceNotFound, `got ${error.name}`);
        assert.equal((error as ResourceNotFound).$metadata.httpStatusCode, 404);
        return true;
      });
      await assert.rejects(
        client.send(new SetAlarmStateCommand({ AlarmName: "depth-high", StateValue: "MAYBE" as "OK", StateReason: "x" })),
        InvalidParameterValueException,
      );
      assert.equal((await describeOne("depth-high")).StateValue, "ALARM");
      // The next evaluation moves it back, as CloudWatch's does.
      await harness.metrics.alarms.evaluateAll();
      assert.equal((await describeOne("depth-high")).StateValue, "OK");
    });

    test("actions can be disabled", async () => {
      await client.send(new DisableAlarmActionsCommand({ AlarmNames: ["depth-high"] }));
      assert.equal((await describeOne("depth-high")).ActionsEnabled, false);
      await client.send(new SetAlarmStateCommand({ AlarmName: "depth-high", StateValue: "ALARM", StateReason: "silent" }));
      const history = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 1 }));
      assert.equal(history.AlarmHistoryItems![0]!.HistoryItemType, "StateUpdate");
      await client.send(new EnableAlarmActionsCommand({ AlarmNames: ["depth-high"] }));
      assert.equal((await describeOne("depth-high")).ActionsEnabled, true);
    });

    test("DescribeAlarms filters and pages", async () => {
      for (const suffix of ["a", "b", "c", "d"]) await client.send(new PutMetricAlarmCommand({ ...depthAlarm, AlarmName: `page-${suffix}` }));
      const byPrefix = await client.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "page-" }));
      assert.deepEqual(byPrefix.MetricAlarms!.map((alarm) => alarm.AlarmName), ["page-a", "page-b", "page-c", "page-d"]);
      const inAlarm = await client.send(new DescribeAlarmsCommand({ StateValue: "ALARM" }));
      assert.deepEqual(inAlarm.MetricAlarms!.map((alarm) => alarm.AlarmName).sort(), ["depth-high", "requests-high"]);
      const byAction = await client.send(new DescribeAlarmsCommand({ ActionPrefix: "arn:aws:sns:" }));
      assert.equal(byAction.MetricAlarms!.length, 5);
      const composite = await client.send(new DescribeAlarmsCommand({ AlarmTypes: ["CompositeAlarm"] }));
      assert.deepEqual(composite.MetricAlarms, []);

      const names: string[] = [];
      let pages = 0;
      for await (const page of paginateDescribeAlarms({ client, pageSize: 2 }, {})) {
        pages += 1;
        assert.ok(page.MetricAlarms!.length <= 2);
        names.push(...page.MetricAlarms!.map((alarm) => alarm.AlarmName!));
      }
      assert.equal(pages, 3);
      assert.deepEqual(names, ["depth-high", "page-a", "page-b", "page-c", "page-d", "requests-high"]);

      const first = await client.send(new DescribeAlarmsCommand({ MaxRecords: 2 }));
      await assert.rejects(client.send(new DescribeAlarmsCommand({ MaxRecords: 2, NextToken: first.NextToken!.slice(1) })), InvalidNextToken);
      const history = await client.send(new DescribeAlarmHistoryCommand({ MaxRecords: 1 }));
      await assert.rejects(client.send(new DescribeAlarmsCommand({ NextToken: history.NextToken! })), InvalidNextToken);
      await assert.rejects(
        client.send(new DescribeAlarmsCommand({ AlarmNames: ["page-a"], AlarmNamePrefix: "page-" })),
        InvalidParameterCombinationException,
      );
      await assert.rejects(client.send(new DescribeAlarmsCommand({ MaxRecords: 101 })), InvalidParameterValueException);
    });

    test("DescribeAlarmsForMetric matches the metric", async () => {
      const output = await client.send(
        new DescribeAlarmsForMetricCommand({ Namespace: NAMESPACE, MetricName: "Depth", Dimensions: [{ Name: "Queue", Value: "jobs" }] }),
      );
      assert.equal(output.MetricAlarms!.length, 5);
      const other = await client.send(new DescribeAlarmsForMetricCommand({ Namespace: NAMESPACE, MetricName: "Depth" }));
      assert.deepEqual(other.MetricAlarms, []);
      const byPeriod = await client.send(
        new DescribeAlarmsForMetricCommand({ Namespace: NAMESPACE, MetricName: "Depth", Dimensions: [{ Name: "Queue", Value: "jobs" }], Period: 300 }),
      );
      assert.deepEqual(byPeriod.MetricAlarms, []);
    });

    test("alarms survive a reopen", async () => {
      await harness.reopen();
      const alarm = await describeOne("depth-high");
      assert.equal(alarm.StateValue, "ALARM");
      const history = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high" }));
      assert.ok(history.AlarmHistoryItems!.length >= 6);
    });

    test("DeleteAlarms is all or nothing", async () => {
      await assert.rejects(client.send(new DeleteAlarmsCommand({ AlarmNames: ["page-a", "missing-alarm"] })), ResourceNotFound);
      assert.equal((await describeOne("page-a")).AlarmName, "page-a");
      await client.send(new DeleteAlarmsCommand({ AlarmNames: ["page-a", "page-b"] }));
      const left = await client.send(new DescribeAlarmsCommand({ AlarmNamePrefix: "page-" }));
      assert.deepEqual(left.MetricAlarms!.map((alarm) => alarm.AlarmName), ["page-c", "page-d"]);
    });

    test("deleted alarm keeps its history", async () => {
      const history = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "page-a", ScanBy: "TimestampAscending" }));
      assert.deepEqual(
        history.AlarmHistoryItems!.map((item) => [item.AlarmName, item.HistoryItemType, item.HistorySummary]),
        [
          ["page-a", "ConfigurationUpdate", 'Alarm "page-a" created'],
          ["page-a", "ConfigurationUpdate", 'Alarm "page-a" deleted'],
        ],
      );
      const data = JSON.parse(history.AlarmHistoryItems![1]!.HistoryData!);
      assert.equal(data.type, "Delete");
      assert.equal(data.deletedAlarm.alarmName, "page-a");
      const all = await client.send(new DescribeAlarmHistoryCommand({ HistoryItemType: "ConfigurationUpdate", MaxRecords: 100 }));
      assert.ok(all.AlarmHistoryItems!.some((item) => item.HistorySummary === 'Alarm "page-b" deleted'));
    });

    test("history AlarmTypes filter", async () => {
      const composite = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", AlarmTypes: ["CompositeAlarm"] }));
      assert.deepEqual(composite.AlarmHistoryItems, []);
      const metric = await client.send(
        new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", AlarmTypes: ["MetricAlarm", "CompositeAlarm"], MaxRecords: 1 }),
      );
      assert.equal(metric.AlarmHistoryItems!.length, 1);
      assert.equal(metric.AlarmHistoryItems![0]!.AlarmType, "MetricAlarm");
      await assert.rejects(
        client.send(new DescribeAlarmHistoryCommand({ AlarmTypes: ["LogAlarm" as "MetricAlarm"] })),
        InvalidParameterValueException,
      );
    });

    test("history NextToken bound to request", async () => {
      const first = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 1 }));
      assert.ok(first.NextToken);
      const next = await client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 1, NextToken: first.NextToken }));
      assert.equal(next.AlarmHistoryItems!.length, 1);
      const changes: Array<Record<string, unknown>> = [
        { HistoryItemType: "StateUpdate" },
        { AlarmName: "page-c" },
        { MaxRecords: 2 },
        { ScanBy: "TimestampAscending" },
      ];
      for (const change of changes) {
        await assert.rejects(
          client.send(new DescribeAlarmHistoryCommand({ AlarmName: "depth-high", MaxRecords: 1, ...change, NextToken: first.NextToken })),
          InvalidNextToken,
          JSON.stringify(change),
        );
      }
      const alarmsPage = await client.send(new DescribeAlarmsCommand({ MaxRecords: 1 }));
      await assert.rejects(client.send(new DescribeAlarmsCommand({ MaxRecords: 1, StateValue: "OK", NextToken: alarmsPage.NextToken! })), InvalidNextToken);
    });
  });
}

describe("alarm limit", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness();
  });
  after(() => harness.close());

  test("alarms past the limit rejected", async () => {
    const client = harness.client();
    for (let i = 0; i < MAX_ALARMS; i++) await client.send(new PutMetricAlarmCommand({ ...depthAlarm, AlarmName: `limit-${i}` }));
    await assert.rejects(client.send(new PutMetricAlarmCommand({ ...depthAlarm, AlarmName: "one-too-many" })), (error: Error) => {
      assert.ok(error instanceof LimitExceededFault, `got ${error.name}`);
      assert.match(error.message, /maximum number of alarms, 1000/);
      return true;
    });
    // Updating an existing alarm is still allowed at the limit.
    await client.send(new PutMetricAlarmCommand({ ...depthAlarm, AlarmName: "limit-0", Threshold: 99 }));
    const output = await client.send(new DescribeAlarmsCommand({ AlarmNames: ["limit-0", "one-too-many"] }));
    assert.deepEqual(output.MetricAlarms!.map((alarm) => [alarm.AlarmName, alarm.Threshold]), [["limit-0", 99]]);
  });
});

describe("alarm evaluation rules", () => {
  let harness: Harness;
  const minuteMs = Date.UTC(2030, 0, 1, 12, 0, 0);
  const config: AlarmConfig = {
    alarmName: "rules",
    alarmDescription: undefined,
    okActions: [],
    alarmActions: [],
    insufficientDataActions: [],
    namespace: "Portico/Rules",
    metricName: "Errors",
    dimensions: [],
    statistic: "Maximum",
    extendedStatistic: undefined,
    periodSeconds: 60,
    unit: undefined,
    evaluationPeriods: 3,
    datapointsToAlarm: 2,
    threshold: 5,
    comparisonOperator: "GreaterThanThreshold",
    treatMissingData: "missing",
    evaluateLowSampleCountPercentile: undefined,
  };

  before(async () => {
    harness = await startHarness({ nowMs: minuteMs + 30_000 });
    // Of the three minutes before the clock: 9, then nothing, then 7.
    const stats = (value: number) => ({ sampleCount: 1, sum: value, minimum: value, maximum: value, sketch: undefined });
    harness.metrics.reader.putMetricData("Portico/Rules", [
      { metricName: "Errors", dimensions: [], timestampMs: minuteMs - 3 * MINUTE_MS, unit: "None", stats: stats(9) },
      { metricName: "Errors", dimensions: [], timestampMs: minuteMs - MINUTE_MS, unit: "None", stats: stats(7) },
    ]);
  });
  after(() => harness.close());

  const evaluate = (change: Partial<AlarmConfig>, current: "OK" | "ALARM" | "INSUFFICIENT_DATA" = "OK") =>
    harness.metrics.alarms.evaluate({ ...config, ...change }, current, minuteMs + 30_000);

  test("M of N with a missing period", () => {
    const result = evaluate({});
    assert.equal(result?.value, "ALARM");
    assert.match(result!.reason, /^Threshold Crossed: 2 datapoints \[9\.0 .*, 7\.0 .*\] were greater than the threshold \(5\.0\) \(minimum 2 datapoints for OK -> ALARM transition\)\.$/);
  });

  test("missing periods by TreatMissingData", () => {
    assert.equal(evaluate({ datapointsToAlarm: 3, treatMissingData: "breaching" })?.value, "ALARM");
    assert.equal(evaluate({ datapointsToAlarm: 3, treatMissingData: "notBreaching" })?.value, "OK");
    const notBreaching = evaluate({ datapointsToAlarm: 3, treatMissingData: "notBreaching" });
    assert.match(notBreaching!.reason, /^Threshold Crossed: 3 datapoints \[9\.0 .*, 7\.0 .*\] were not greater than/);
    const partial = evaluate({ datapointsToAlarm: 1, threshold: 8 }, "ALARM");
    assert.match(partial!.reason, /^Threshold Crossed: 1 out of the last 2 datapoints \[9\.0 .*\] was greater than the threshold \(8\.0\)\.$/);
  });

  test("all periods missing", () => {
    const later = { namespace: "Portico/Rules", metricName: "Nothing" };
    const missing = evaluate(later, "OK");
    assert.equal(missing?.value, "INSUFFICIENT_DATA");
    assert.equal(missing?.reason, "Insufficient Data: 3 datapoints were unknown.");
    assert.equal(evaluate({ ...later, treatMissingData: "ignore" }), undefined);
    assert.equal(evaluate({ ...later, treatMissingData: "breaching", datapointsToAlarm: 3 })?.value, "ALARM");
  });

  test("reason data in CloudWatch's form", () => {
    const result = evaluate({ unit: "None" });
    const data = JSON.parse(result!.reasonData!);
    const time = (ms: number) => new Date(ms).toISOString().replace("Z", "+0000");
    assert.equal(data.version, "1.0");
    assert.equal(data.queryDate, time(minuteMs + 30_000));
    assert.match(data.queryDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);
    assert.equal(data.startDate, time(minuteMs - 3 * MINUTE_MS));
    assert.equal(data.unit, "None");
    assert.equal(data.statistic, "Maximum");
    assert.equal(data.period, 60);
    assert.deepEqual(data.recentDatapoints, [9, 7]);
    assert.equal(data.threshold, 5);
    // Newest first; the period without data has its time stamp only.
    assert.deepEqual(data.evaluatedDatapoints, [
      { timestamp: time(minuteMs - MINUTE_MS), sampleCount: 1, value: 7 },
      { timestamp: time(minuteMs - 2 * MINUTE_MS) },
      { timestamp: time(minuteMs - 3 * MINUTE_MS), sampleCount: 1, value: 9 },
    ]);
    assert.deepEqual(Object.keys(data), [
      "version", "queryDate", "startDate", "unit", "statistic", "period", "recentDatapoints", "threshold", "evaluatedDatapoints",
    ]);
  });

  test("insufficient data reason data", () => {
    const result = evaluate({ metricName: "Nothing" });
    assert.equal(result?.value, "INSUFFICIENT_DATA");
    const data = JSON.parse(result!.reasonData!);
    assert.equal(data.startDate, undefined);
    assert.equal(data.unit, undefined, "an alarm without Unit has none");
    assert.deepEqual(data.recentDatapoints, []);
    assert.equal(data.evaluatedDatapoints.length, 3);
    assert.deepEqual(Object.keys(data.evaluatedDatapoints[0]), ["timestamp"]);
  });

  test("mixed units use one unit", () => {
    const stats = (value: number) => ({ sampleCount: 1, sum: value, minimum: value, maximum: value, sketch: undefined });
    harness.metrics.reader.putMetricData("Portico/Rules", [
      { metricName: "Mixed", dimensions: [], timestampMs: minuteMs - MINUTE_MS, unit: "None", stats: stats(100) },
      { metricName: "Mixed", dimensions: [], timestampMs: minuteMs - MINUTE_MS, unit: "Count", stats: stats(1) },
    ]);
    const mixed = { metricName: "Mixed", evaluationPeriods: 1, datapointsToAlarm: 1 };
    // GetMetricData's order puts Count before None, so the 100 in None is not evaluated.
    assert.equal(evaluate(mixed)?.value, "OK");
    assert.equal(evaluate({ ...mixed, unit: "None" })?.value, "ALARM");
  });

  test("each comparison operator", () => {
    const cases: Array<[string, number, string]> = [
      ["GreaterThanOrEqualToThreshold", 7, "ALARM"],
      ["GreaterThanThreshold", 7, "OK"],
      ["LessThanThreshold", 9, "OK"],
      ["LessThanThreshold", 10, "ALARM"],
      ["LessThanOrEqualToThreshold", 6.5, "OK"],
    ];
    for (const [comparisonOperator, threshold, expected] of cases) {
      assert.equal(evaluate({ comparisonOperator, threshold, datapointsToAlarm: 2 })?.value, expected, comparisonOperator);
    }
  });
});

describe("alarm evaluation schedule", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness();
  });
  after(() => harness.close());

  test("first evaluation soon after start", { timeout: 30_000 }, async () => {
    const startedMs = Date.now();
    const client = harness.client();
    await client.send(
      new PutMetricDataCommand({
        Namespace: NAMESPACE,
        MetricData: [{ MetricName: "Restart", Value: 5, Timestamp: new Date(Math.floor(startedMs / MINUTE_MS) * MINUTE_MS - MINUTE_MS) }],
      }),
    );
    await client.send(
      new PutMetricAlarmCommand({
        AlarmName: "restart",
        Namespace: NAMESPACE,
        MetricName: "Restart",
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: "GreaterThanThreshold",
        TreatMissingData: "notBreaching",
      }),
    );
    let state: string | undefined;
    while (Date.now() - startedMs < FIRST_EVALUATION_DELAY_MS + 5_000) {
      const output = await client.send(new DescribeAlarmsCommand({ AlarmNames: ["restart"] }));
      state = output.MetricAlarms![0]!.StateValue;
      if (state !== "INSUFFICIENT_DATA") break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.notEqual(state, "INSUFFICIENT_DATA", "the alarm was evaluated within seconds of the start");
    assert.ok(state === "ALARM" || state === "OK", `state ${state}`);
  });

  test("later evaluations on the minute", () => {
    const minuteMs = Date.UTC(2030, 0, 1, 12, 0, 0);
    assert.equal(nextEvaluationDelayMs(minuteMs), EVALUATION_OFFSET_MS);
    assert.equal(nextEvaluationDelayMs(minuteMs + EVALUATION_OFFSET_MS), MINUTE_MS);
    assert.equal(nextEvaluationDelayMs(minuteMs + 30_000), 30_000 + EVALUATION_OFFSET_MS);
    assert.equal(nextEvaluationDelayMs(minuteMs + MINUTE_MS - 1), 1 + EVALUATION_OFFSET_MS);
  });
});
