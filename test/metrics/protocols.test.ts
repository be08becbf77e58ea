import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { after, before, describe, test } from "node:test";
import {
  GetMetricDataCommand,
  GetMetricStatisticsCommand,
  InvalidParameterCombinationException,
  InvalidParameterValueException,
  ListMetricsCommand,
  MissingRequiredParameterException,
  PutMetricDataCommand,
  type CloudWatchClient,
} from "@aws-sdk/client-cloudwatch";
import { AwsQueryProtocol, AwsSmithyRpcV2CborProtocol } from "@aws-sdk/core/protocols";
import { cbor, tag } from "@smithy/core/cbor";
import { requestRecord, signedRequest, startHarness, type Harness } from "./harness.js";

const MINUTE_MS = 60_000;
const DISTRIBUTION = "E2PROTOCOLS001";
const dimensions = [
  { Name: "DistributionId", Value: DISTRIBUTION },
  { Name: "Region", Value: "Global" },
];

const PROTOCOLS = {
  json: {},
  query: { protocol: AwsQueryProtocol },
  cbor: { protocol: AwsSmithyRpcV2CborProtocol },
} as const;

describe("CloudWatch protocols", () => {
  let harness: Harness;
  const minuteStart = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - 2 * MINUTE_MS;

  before(async () => {
    harness = await startHarness();
    for (let i = 0; i < 20; i++) {
      let status = 200;
      if (i < 3) status = 404;
      else if (i < 4) status = 502;
      harness.metrics.sink.record(requestRecord({ distributionId: DISTRIBUTION, timestampMs: minuteStart + i * 1000, status }));
    }
  });
  after(() => harness.close());

  for (const [name, config] of Object.entries(PROTOCOLS)) {
    describe(`${name} client`, () => {
      let client: CloudWatchClient;
      before(() => {
        client = harness.client(config);
      });

      test("statistics match the records", async () => {
        const output = await client.send(
          new GetMetricStatisticsCommand({
            Namespace: "AWS/CloudFront",
            MetricName: "4xxErrorRate",
            Dimensions: dimensions,
            StartTime: new Date(minuteStart),
            EndTime: new Date(minuteStart + MINUTE_MS),
            Period: 60,
            Statistics: ["Average", "SampleCount"],
          }),
        );
        assert.equal(output.Label, "4xxErrorRate");
        assert.equal(output.Datapoints?.length, 1);
        const point = output.Datapoints![0]!;
        assert.ok(point.Timestamp instanceof Date);
        assert.equal(point.Timestamp.getTime(), minuteStart);
        assert.equal(point.Average, 15);
        assert.equal(point.SampleCount, 20);
        assert.equal(point.Unit, "Percent");
      });

      test("extended statistics map", async () => {
        const output = await client.send(
          new GetMetricStatisticsCommand({
            Namespace: "AWS/CloudFront",
            MetricName: "502ErrorRate",
            Dimensions: dimensions,
            StartTime: new Date(minuteStart),
            EndTime: new Date(minuteStart + MINUTE_MS),
            Period: 60,
            ExtendedStatistics: ["p90", "p99"],
          }),
        );
        // One 502 in twenty requests: 95% of samples are 0.
        assert.deepEqual(output.Datapoints![0]!.ExtendedStatistics, { p90: 0, p99: 100 });
      });

      test("custom metric round trip", async () => {
        const namespace = `Portico/Test/${name}`;
        const now = new Date(Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS);
        await client.send(
          new PutMetricDataCommand({
            Namespace: namespace,
            MetricData: [
              { MetricName: "Latency", Dimensions: [{ Name: "Host", Value: "a" }], Timestamp: now, Values: [1, 2, 3], Counts: [1, 1, 2], Unit: "Milliseconds" },
              { MetricName: "Latency", Dimensions: [{ Name: "Host", Value: "a" }], Timestamp: now, Value: 10, Unit: "Milliseconds" },
            ],
          }),
        );
        const output = await client.send(
          new GetMetricStatisticsCommand({
            Namespace: namespace,
            MetricName: "Latency",
            Dimensions: [{ Name: "Host", Value: "a" }],
            StartTime: new Date(now.getTime() - MINUTE_MS),
            EndTime: new Date(now.getTime() + MINUTE_MS),
            Period: 120,
            Statistics: ["Sum", "SampleCount", "Maximum"],
          }),
        );
        assert.equal(output.Datapoints?.length, 1);
        assert.equal(output.Datapoints![0]!.Sum, 1 + 2 + 3 * 2 + 10);
        assert.equal(output.Datapoints![0]!.SampleCount, 5);
        assert.equal(output.Datapoints![0]!.Maximum, 10);
        assert.equal(output.Datapoints![0]!.Unit, "Milliseconds");
        const listed = await client.send(new ListMetricsCommand({ Namespace: namespace }));
        assert.deepEqual(listed.Metrics, [{ Namespace: namespace, MetricName: "Latency", Dimensions: [{ Name: "Host", Value: "a" }] }]);
      });

      test("mixed units kept apart", async () => {
        const namespace = `Portico/Units/${name}`;
        const minute = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - MINUTE_MS;
        const at = new Date(minute + 1000);
        await client.send(
          new PutMetricDataCommand({
            Namespace: namespace,
            MetricData: [
              { MetricName: "Wait", Timestamp: at, Value: 60_000, Unit: "Milliseconds" },
              { MetricName: "Wait", Timestamp: at, Value: 60, Unit: "Seconds" },
              { MetricName: "Wait", Timestamp: at, Value: 30, Unit: "Seconds" },
            ],
          }),
        );
        const statistics = async (unit?: "Seconds") => {
          const output = await client.send(
            new GetMetricStatisticsCommand({
              Namespace: namespace,
              MetricName: "Wait",
              StartTime: new Date(minute),
              EndTime: new Date(minute + MINUTE_MS),
              Period: 60,
              Statistics: ["Sum", "SampleCount"],
              ...(unit ? { Unit: unit } : {}),
            }),
          );
          return (output.Datapoints ?? [])
            .map((point) => [point.Timestamp!.getTime(), point.Unit, point.Sum, point.SampleCount])
            .sort((a, b) => String(a[1]).localeCompare(String(b[1])));
        };
        assert.deepEqual(await statistics(), [
          [minute, "Milliseconds", 60_000, 1],
          [minute, "Seconds", 90, 2],
        ]);
        assert.deepEqual(await statistics("Seconds"), [[minute, "Seconds", 90, 2]]);

        const data = async (unit?: "Seconds") => {
          const output = await client.send(
            new GetMetricDataCommand({
              StartTime: new Date(minute),
              EndTime: new Date(minute + MINUTE_MS),
              MetricDataQueries: [
                { Id: "m1", MetricStat: { Metric: { Namespace: namespace, MetricName: "Wait" }, Period: 60, Stat: "Sum", ...(unit ? { Unit: unit } : {}) } },
              ],
            }),
          );
          return output.MetricDataResults![0]!.Values;
        };
        // Without a unit, GetMetricData returns the data of one unit, Milliseconds before Seconds.
        assert.deepEqual(await data(), [60_000]);
        assert.deepEqual(await data("Seconds"), [90]);
        await client.send(
          new PutMetricDataCommand({ Namespace: namespace, MetricData: [{ MetricName: "Wait", Timestamp: at, Value: 5, Unit: "Count" }] }),
        );
        assert.deepEqual(await data(), [5], "Count comes before Milliseconds");
      });

      test("gzip-compressed put", async () => {
        const namespace = `Portico/Gzip/${name}`;
        if (name === "cbor") {
          // @aws-sdk/core 3.x's CBOR protocol sets Content-Length before the
          // compression middleware gzips the body, so the server reads a
          // truncated body. This raw request sends the intended bytes.
          const response = await signedRequest(harness.endpoint, {
            path: "/service/GraniteServiceVersion20100801/operation/PutMetricData",
            headers: { "content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", "content-encoding": "gzip" },
            body: gzipSync(cbor.serialize({ Namespace: namespace, MetricData: [{ MetricName: "Hits", Value: 7 }] })),
          });
          assert.equal(response.status, 200);
        } else {
          const compressing = harness.client({ ...config, requestMinCompressionSizeBytes: 0 });
          await compressing.send(
            new PutMetricDataCommand({ Namespace: namespace, MetricData: [{ MetricName: "Hits", Value: 7 }] }),
          );
        }
        const data = await client.send(
          new GetMetricDataCommand({
            StartTime: new Date(Date.now() - 5 * MINUTE_MS),
            EndTime: new Date(Date.now() + MINUTE_MS),
            MetricDataQueries: [{ Id: "m1", MetricStat: { Metric: { Namespace: namespace, MetricName: "Hits" }, Period: 600, Stat: "Sum" } }],
          }),
        );
        assert.deepEqual(data.MetricDataResults![0]!.Values, [7]);
      });

      test("empty MetricData rejected", async () => {
        await assert.rejects(client.send(new PutMetricDataCommand({ Namespace: `Portico/Empty/${name}`, MetricData: [] })), (error: Error) => {
          assert.ok(error instanceof MissingRequiredParameterException, `got ${error.name}`);
          assert.equal(error.message, "The parameter MetricData is required.");
          return true;
        });
      });

      test("values outside CloudWatch's range rejected", async () => {
        const namespace = `Portico/Range/${name}`;
        const put = (value: number) => client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [{ MetricName: "V", Value: value }] }));
        for (const value of [5e-324, -1e-200, 8.5e-109, 2 ** 361, -(2 ** 361)]) {
          await assert.rejects(put(value), (error: Error) => {
            assert.ok(error instanceof InvalidParameterValueException, `${value}: got ${error.name}`);
            assert.match(error.message, /MetricData.member.1.Value is invalid; a value other than 0 must be from 8.515920e-109 to 2\^360/);
            return true;
          });
        }
        for (const value of [0, 8.6e-109, -8.6e-109, 2 ** 360, 1.5]) await put(value);
        await assert.rejects(
          client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [{ MetricName: "V", Values: [1, 1e-300] }] })),
          InvalidParameterValueException,
        );
        await assert.rejects(
          client.send(new PutMetricDataCommand({ Namespace: namespace, MetricData: [{ MetricName: "Empty", Values: [] }] })),
          MissingRequiredParameterException,
          "an empty Values carries no sample",
        );
      });

      test("empty dimension value is missing", async () => {
        await assert.rejects(
          client.send(
            new PutMetricDataCommand({
              Namespace: `Portico/Dimension/${name}`,
              MetricData: [{ MetricName: "V", Value: 1, Dimensions: [{ Name: "Host", Value: "" }] }],
            }),
          ),
          (error: Error) => {
            assert.ok(error instanceof MissingRequiredParameterException, `got ${error.name}`);
            assert.match(error.message, /MetricData.member.1.Dimensions.member.1.Value is required/);
            return true;
          },
        );
      });

      test("AWS namespace rejected", async () => {
        await assert.rejects(
          client.send(new PutMetricDataCommand({ Namespace: "AWS/CloudFront", MetricData: [{ MetricName: "Requests", Value: 1 }] })),
          (error: Error) => {
            assert.ok(error instanceof InvalidParameterValueException, `got ${error.name}`);
            assert.match(error.message, /AWS\/CloudFront for parameter Namespace is invalid/);
            return true;
          },
        );
      });

      test("too many datapoints rejected", async () => {
        await assert.rejects(
          client.send(
            new GetMetricStatisticsCommand({
              Namespace: "AWS/CloudFront",
              MetricName: "Requests",
              Dimensions: dimensions,
              StartTime: new Date(Date.now() - 2 * 24 * 3600 * 1000),
              EndTime: new Date(),
              Period: 60,
              Statistics: ["Sum"],
            }),
          ),
          (error: Error) => {
            assert.ok(error instanceof InvalidParameterCombinationException, `got ${error.name}`);
            assert.match(error.message, /exceeds the limit of 1440/);
            return true;
          },
        );
      });

      test("missing statistics rejected", async () => {
        await assert.rejects(
          client.send(
            new GetMetricStatisticsCommand({
              Namespace: "AWS/CloudFront",
              MetricName: "Requests",
              StartTime: new Date(Date.now() - MINUTE_MS),
              EndTime: new Date(),
              Period: 60,
            }),
          ),
          (error: Error) => {
            assert.ok(error instanceof MissingRequiredParameterException, `got ${error.name}`);
            return true;
          },
        );
      });

      test("bad period rejected", async () => {
        await assert.rejects(
          client.send(
            new GetMetricStatisticsCommand({
              Namespace: "AWS/CloudFront",
              MetricName: "Requests",
              StartTime: new Date(Date.now() - MINUTE_MS),
              EndTime: new Date(),
              Period: 90,
              Statistics: ["Sum"],
            }),
          ),
          InvalidParameterValueException,
        );
      });
    });
  }

  describe("raw requests", () => {
    const jsonHeaders = (operation: string) => ({
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": `GraniteServiceVersion20100801.${operation}`,
    });
    const cborHeaders = { "content-type": "application/cbor", accept: "application/cbor", "smithy-protocol": "rpc-v2-cbor" };
    const queryHeaders = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };

    test("malformed JSON body", async () => {
      const response = await signedRequest(harness.endpoint, { headers: jsonHeaders("ListMetrics"), body: "{not json" });
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body.toString()).__type, "SerializationException");
      assert.equal(response.headers.get("x-amzn-query-error"), "SerializationException;Sender");
    });

    test("JSON member of the wrong type", async () => {
      const response = await signedRequest(harness.endpoint, { headers: jsonHeaders("ListMetrics"), body: JSON.stringify({ Namespace: 5 }) });
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body.toString()).__type, "SerializationException");
    });

    test("JSON body that is not an object", async () => {
      const operations = [
        "GetMetricStatistics",
        "PutMetricData",
        "DeleteAlarms",
        "EnableAlarmActions",
        "DisableAlarmActions",
        "DescribeAlarmsForMetric",
        "ListMetrics",
      ];
      for (const operation of operations) {
        for (const body of ["null", "[]", '"text"', "5", "true"]) {
          const response = await signedRequest(harness.endpoint, { headers: jsonHeaders(operation), body });
          const label = `${operation} with body ${body}`;
          assert.equal(response.status, 400, label);
          const document = JSON.parse(response.body.toString());
          assert.equal(document.__type, "SerializationException", label);
          assert.match(document.message, /must be a JSON object/, label);
          assert.equal(response.headers.get("x-amzn-query-error"), "SerializationException;Sender", label);
        }
      }
    });

    test("JSON null list item", async () => {
      const bodies: Array<[string, unknown]> = [
        ["PutMetricData", { Namespace: "Portico/Null", MetricData: [null] }],
        ["PutMetricData", { Namespace: "Portico/Null", MetricData: [{ MetricName: "M", Value: 1, Dimensions: [null] }] }],
        ["GetMetricData", { MetricDataQueries: [null], StartTime: 1, EndTime: 2 }],
        ["DeleteAlarms", { AlarmNames: [null] }],
        ["ListMetrics", { Dimensions: [null] }],
      ];
      for (const [operation, body] of bodies) {
        const response = await signedRequest(harness.endpoint, { headers: jsonHeaders(operation), body: JSON.stringify(body) });
        const label = `${operation} ${JSON.stringify(body)}`;
        assert.equal(response.status, 400, label);
        const document = JSON.parse(response.body.toString());
        assert.equal(document.__type, "SerializationException", label);
        assert.match(document.message, /must not be null/, label);
      }
    });

    test("JSON missing parameter", async () => {
      const response = await signedRequest(harness.endpoint, {
        headers: jsonHeaders("GetMetricStatistics"),
        body: JSON.stringify({ Namespace: "AWS/CloudFront", StartTime: 1, EndTime: 2, Period: 60 }),
      });
      assert.equal(response.status, 400);
      const document = JSON.parse(response.body.toString());
      assert.equal(document.__type, "com.amazonaws.cloudwatch#MissingRequiredParameterException");
      assert.equal(document.message, "The parameter MetricName is required.");
      assert.equal(response.headers.get("x-amzn-query-error"), "MissingParameter;Sender");
    });

    test("JSON unknown operation", async () => {
      const response = await signedRequest(harness.endpoint, { headers: jsonHeaders("ListBananas"), body: "{}" });
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body.toString()).__type, "UnknownOperationException");
    });

    test("JSON known but unbuilt operation", async () => {
      const response = await signedRequest(harness.endpoint, { headers: jsonHeaders("PutDashboard"), body: "{}" });
      assert.equal(response.status, 501);
      assert.match(JSON.parse(response.body.toString()).message, /PutDashboard/);
    });

    test("malformed CBOR body", async () => {
      const response = await signedRequest(harness.endpoint, {
        path: "/service/GraniteServiceVersion20100801/operation/ListMetrics",
        headers: cborHeaders,
        body: new Uint8Array([0xa1, 0x61]),
      });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get("smithy-protocol"), "rpc-v2-cbor");
      const document = cbor.deserialize(new Uint8Array(response.body)) as Record<string, string>;
      assert.equal(document.__type, "SerializationException");
    });

    test("CBOR bignums and deep nesting are refused before decoding", async () => {
      const size = 1024 * 1024;
      const bignum = Buffer.concat([
        Buffer.from([0xa1, 0x69]),
        Buffer.from("Namespace"),
        Buffer.from([0xc2, 0x5a]),
        Buffer.from([size >>> 24, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]),
        Buffer.alloc(size, 1),
      ]);
      const deep = Buffer.concat([Buffer.alloc(100, 0x81), Buffer.from([0x01])]);
      for (const body of [bignum, deep]) {
        const started = performance.now();
        const response = await signedRequest(harness.endpoint, {
          path: "/service/GraniteServiceVersion20100801/operation/ListMetrics",
          headers: cborHeaders,
          body: new Uint8Array(body),
        });
        assert.equal(response.status, 400);
        const document = cbor.deserialize(new Uint8Array(response.body)) as Record<string, string>;
        assert.equal(document.__type, "SerializationException");
        assert.match(document.message!, /unsupported tag 2|nested too deep/);
        // Decoding the bignum alone would take minutes.
        assert.ok(performance.now() - started < 5000, "answered without decoding");
      }
    });

    test("CBOR body that is not a map", async () => {
      for (const operation of ["GetMetricStatistics", "PutMetricData", "DeleteAlarms", "DescribeAlarmsForMetric"]) {
        for (const body of [new Uint8Array([0xf6]), cbor.serialize([]), cbor.serialize("text"), cbor.serialize(5)]) {
          const response = await signedRequest(harness.endpoint, {
            path: `/service/GraniteServiceVersion20100801/operation/${operation}`,
            headers: cborHeaders,
            body,
          });
          const label = `${operation} with body ${Buffer.from(body).toString("hex")}`;
          assert.equal(response.status, 400, label);
          const document = cbor.deserialize(new Uint8Array(response.body)) as Record<string, string>;
          assert.equal(document.__type, "SerializationException", label);
          assert.match(document.message!, /must be a CBOR map/, label);
          assert.equal(response.headers.get("x-amzn-query-error"), "SerializationException;Sender", label);
        }
      }
    });

    test("timestamps only in each protocol's form", async () => {
      const statistics = (start: unknown) => ({
        Namespace: "Portico/Times",
        MetricName: "M",
        StartTime: start,
        EndTime: 2_000_000_000,
        Period: 60,
        Statistics: ["Sum"],
      });
      for (const start of ["2024-01-01T00:00:00Z", "1700000000"]) {
        const response = await signedRequest(harness.endpoint, {
          headers: jsonHeaders("GetMetricStatistics"),
          body: JSON.stringify(statistics(start)),
        });
        assert.equal(response.status, 400, `JSON ${start}`);
        const document = JSON.parse(response.body.toString());
        assert.equal(document.__type, "SerializationException", `JSON ${start}`);
        assert.match(document.message, /StartTime must be a timestamp in epoch seconds/);
      }
      const cborPath = "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics";
      for (const start of ["2024-01-01T00:00:00Z", 1_700_000_000, tag({ tag: 1, value: "2024-01-01T00:00:00Z" })]) {
        const document = { ...statistics(start), EndTime: tag({ tag: 1, value: 2_000_000_000 }) };
        const response = await signedRequest(harness.endpoint, { path: cborPath, headers: cborHeaders, body: cbor.serialize(document) });
        assert.equal(response.status, 400, `CBOR ${JSON.stringify(start)}`);
        const decoded = cbor.deserialize(new Uint8Array(response.body)) as Record<string, string>;
        assert.equal(decoded.__type, "SerializationException");
        assert.match(decoded.message!, /StartTime must be a timestamp: CBOR tag 1 around epoch seconds/);
      }
      const accepted = await signedRequest(harness.endpoint, {
        path: cborPath,
        headers: cborHeaders,
        body: cbor.serialize({ ...statistics(tag({ tag: 1, value: 1_999_999_400 })), EndTime: tag({ tag: 1, value: 2_000_000_000 }) }),
      });
      assert.equal(accepted.status, 200);
    });

    test("query only GET and form POST", async () => {
      const body = "Action=ListMetrics&Version=2010-08-01";
      const deleted = await signedRequest(harness.endpoint, { method: "DELETE", headers: queryHeaders, body });
      assert.equal(deleted.status, 405);
      assert.equal(deleted.headers.get("allow"), "GET, POST");
      assert.match(deleted.body.toString(), /<Code>MethodNotAllowed<\/Code>/);
      const put = await signedRequest(harness.endpoint, { method: "PUT", headers: queryHeaders, body });
      assert.equal(put.status, 405);
      const text = await signedRequest(harness.endpoint, { headers: { "content-type": "text/plain" }, body });
      assert.equal(text.status, 415);
      assert.match(text.body.toString(), /<Code>UnsupportedMediaType<\/Code>.*application\/x-www-form-urlencoded/);
      const form = await signedRequest(harness.endpoint, { headers: queryHeaders, body });
      assert.equal(form.status, 200);
    });

    test("query index too large", async () => {
      const body = "Action=PutMetricData&Version=2010-08-01&Namespace=Portico%2FIndex&MetricData.member.99999999.MetricName=M&MetricData.member.99999999.Value=1";
      const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body });
      assert.equal(response.status, 400);
      const xml = response.body.toString();
      assert.match(xml, /<Code>InvalidParameterValue<\/Code>/);
      assert.match(xml, /The index 99999999 in MetricData.member is too large; indexes run from 1 to 9999999\./);
      const zero = await signedRequest(harness.endpoint, { headers: queryHeaders, body: body.replaceAll("99999999", "0") });
      assert.match(zero.body.toString(), /The index &#34;0&#34; in MetricData.member is not a positive integer/);
    });

    test("query doubles in decimal notation only", async () => {
      const body = (value: string) =>
        `Action=PutMetricData&Version=2010-08-01&Namespace=Portico%2FDoubles&MetricData.member.1.MetricName=M&MetricData.member.1.Value=${encodeURIComponent(value)}`;
      for (const value of ["0x10", "0b1", "0o7", " 1", "1 ", "", "1e", "--1", "inf"]) {
        const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body: body(value) });
        assert.equal(response.status, 400, `value ${JSON.stringify(value)}`);
        assert.match(response.body.toString(), /<Code>InvalidParameterValue<\/Code>/, `value ${JSON.stringify(value)}`);
      }
      for (const value of ["16", "-2.5", "1e3", "1.5E-3", ".5", "7."]) {
        const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body: body(value) });
        assert.equal(response.status, 200, `value ${JSON.stringify(value)}`);
      }
    });

    test("statistic sets of one value keep percentiles", async () => {
      const minute = Math.floor(Date.now() / 60_000) * 60 - 120;
      const put = (metricName: string, set: Record<string, number>) =>
        signedRequest(harness.endpoint, {
          headers: jsonHeaders("PutMetricData"),
          body: JSON.stringify({ Namespace: "Portico/Sets", MetricData: [{ MetricName: metricName, Timestamp: minute, StatisticValues: set }] }),
        });
      assert.equal((await put("Same", { SampleCount: 3, Sum: 30, Minimum: 10, Maximum: 10 })).status, 200);
      assert.equal((await put("Same", { SampleCount: 1, Sum: 7, Minimum: 7, Maximum: 7 })).status, 200);
      assert.equal((await put("Spread", { SampleCount: 2, Sum: 10, Minimum: 1, Maximum: 9 })).status, 200);
      // Statistics and ExtendedStatistics go in separate calls, as CloudWatch requires.
      const datapoints = async (metricName: string, wanted: Record<string, string[]>) => {
        const response = await signedRequest(harness.endpoint, {
          headers: jsonHeaders("GetMetricStatistics"),
          body: JSON.stringify({
            Namespace: "Portico/Sets",
            MetricName: metricName,
            StartTime: minute - 60,
            EndTime: minute + 60,
            Period: 60,
            ...wanted,
          }),
        });
        assert.equal(response.status, 200, response.body.toString());
        return JSON.parse(response.body.toString()).Datapoints as Array<Record<string, unknown>>;
      };
      const [totals] = await datapoints("Same", { Statistics: ["SampleCount", "Sum"] });
      assert.equal(totals!.SampleCount, 4);
      assert.equal(totals!.Sum, 37);
      const [same] = await datapoints("Same", { ExtendedStatistics: ["p50", "p99"] });
      assert.deepEqual(same!.ExtendedStatistics, { p50: 10, p99: 10 });
      // Values spread between Minimum and Maximum are unknown, so no percentile is made up.
      const [spread] = await datapoints("Spread", { ExtendedStatistics: ["p50"] });
      assert.ok(spread!.ExtendedStatistics === undefined || Object.keys(spread!.ExtendedStatistics as object).length === 0);
    });

    test("CBOR unknown operation", async () => {
      const response = await signedRequest(harness.endpoint, {
        path: "/service/GraniteServiceVersion20100801/operation/ListBananas",
        headers: cborHeaders,
        body: cbor.serialize({}),
      });
      assert.equal(response.status, 404);
      const document = cbor.deserialize(new Uint8Array(response.body)) as Record<string, string>;
      assert.equal(document.__type, "UnknownOperationException");
    });

    test("CBOR too many datapoints", async () => {
      const response = await signedRequest(harness.endpoint, {
        path: "/service/GraniteServiceVersion20100801/operation/GetMetricStatistics",
        headers: cborHeaders,
        body: cbor.serialize({
          Namespace: "AWS/CloudFront",
          MetricName: "Requests",
          StartTime: tag({ tag: 1, value: 0 }),
          EndTime: tag({ tag: 1, value: 1_000_000_000 }),
          Period: 60,
          Statistics: ["Sum"],
        }),
      });
      assert.equal(response.status, 400);
      assert.equal(response.headers.get("x-amzn-query-error"), "InvalidParameterCombination;Sender");
    });

    test("query unknown action", async () => {
      const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body: "Action=ListBananas&Version=2010-08-01" });
      assert.equal(response.status, 400);
      const xml = response.body.toString();
      assert.match(xml, /^<\?xml[^>]*>\s*<ErrorResponse xmlns="http:\/\/monitoring.amazonaws.com\/doc\/2010-08-01\/">/);
      assert.match(xml, /<Type>Sender<\/Type><Code>InvalidAction<\/Code>/);
    });

    test("query wrong version", async () => {
      for (const version of ["2011-01-01", "2010-08-01x", "1"]) {
        const response = await signedRequest(harness.endpoint, {
          headers: queryHeaders,
          body: `Action=ListMetrics&Version=${encodeURIComponent(version)}`,
        });
        assert.equal(response.status, 400, version);
        const xml = response.body.toString();
        assert.match(xml, /<Type>Sender<\/Type><Code>InvalidAction<\/Code>/, version);
        assert.ok(xml.includes(`Could not find operation ListMetrics for version ${version}.`), xml);
      }
    });

    test("query missing version", async () => {
      for (const body of ["Action=ListMetrics", "Action=ListMetrics&Version="]) {
        const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body });
        assert.equal(response.status, 400, body);
        const xml = response.body.toString();
        assert.match(xml, /<Code>MissingParameter<\/Code><Message>The parameter Version is required.<\/Message>/, body);
      }
      // The check runs before any handler, so a write without Version stores nothing.
      const put = await signedRequest(harness.endpoint, {
        headers: queryHeaders,
        body: "Action=PutMetricData&Namespace=Portico%2FNoVersion&MetricData.member.1.MetricName=M&MetricData.member.1.Value=1",
      });
      assert.equal(put.status, 400);
      const listed = await signedRequest(harness.endpoint, {
        headers: queryHeaders,
        body: "Action=ListMetrics&Version=2010-08-01&Namespace=Portico%2FNoVersion",
      });
      assert.equal(listed.status, 200);
      assert.doesNotMatch(listed.body.toString(), /<member>/);
    });

    test("query missing action", async () => {
      const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body: "Version=2010-08-01" });
      assert.equal(response.status, 400);
      assert.match(response.body.toString(), /<Code>MissingAction<\/Code>/);
    });

    test("query malformed number", async () => {
      const body =
        "Action=GetMetricStatistics&Version=2010-08-01&Namespace=A&MetricName=B&StartTime=2024-01-01T00%3A00%3A00Z" +
        "&EndTime=2024-01-01T01%3A00%3A00Z&Period=sixty&Statistics.member.1=Sum";
      const response = await signedRequest(harness.endpoint, { headers: queryHeaders, body });
      assert.equal(response.status, 400);
      assert.match(response.body.toString(), /<Code>InvalidParameterValue<\/Code>/);
    });

    test("query over GET", async () => {
      const path =
        "/?Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FCloudFront&Dimensions.member.1.Name=DistributionId" +
        `&Dimensions.member.1.Value=${DISTRIBUTION}&MetricName=Requests`;
      const response = await signedRequest(harness.endpoint, { method: "GET", path, headers: {}, body: "" });
      assert.equal(response.status, 200);
      const xml = response.body.toString();
      assert.match(xml, /<ListMetricsResponse xmlns="http:\/\/monitoring.amazonaws.com\/doc\/2010-08-01\/"><ListMetricsResult><Metrics><member>/);
      assert.match(xml, new RegExp(`<Value>${DISTRIBUTION}</Value>`));
    });

    test("invalid gzip body", async () => {
      const response = await signedRequest(harness.endpoint, {
        headers: { ...jsonHeaders("ListMetrics"), "content-encoding": "gzip" },
        body: "definitely not gzip",
      });
      assert.equal(response.status, 400);
      assert.equal(JSON.parse(response.body.toString()).__type, "com.amazonaws.cloudwatch#InvalidParameterValueException");
    });

    test("gzip query body", async () => {
      const body = gzipSync("Action=ListMetrics&Version=2010-08-01&Namespace=AWS%2FCloudFront");
      const response = await signedRequest(harness.endpoint, { headers: { ...queryHeaders, "content-encoding": "gzip" }, body });
      assert.equal(response.status, 200);
      assert.match(response.body.toString(), /<MetricName>Requests<\/MetricName>/);
    });

    test("unsigned query request", async () => {
      const response = await fetch(harness.endpoint + "/", {
        method: "POST",
        headers: queryHeaders,
        body: "Action=ListMetrics&Version=2010-08-01",
      });
      assert.equal(response.status, 403);
      assert.match(await response.text(), /<ErrorResponse[^>]*><Error><Type>Sender<\/Type><Code>MissingAuthenticationToken<\/Code>/);
    });
  });
});
