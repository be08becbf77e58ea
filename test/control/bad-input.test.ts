import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateDistributionCommand,
  DeleteDistributionCommand,
  GetDistributionCommand,
  ListDistributionsCommand,
  UpdateDistributionCommand,
} from "@aws-sdk/client-cloudfront";
import { ControlStore } from "../../src/control/store.js";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { errorName, s3DistributionConfig, sendSigned, startHarness, TEST_CREDENTIALS } from "./harness.js";

const NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

function customOrigin(overrides: Record<string, unknown> = {}, originOverrides: Record<string, unknown> = {}) {
  return {
    Id: "app",
    DomainName: "app.example.test",
    CustomOriginConfig: { HTTPPort: 80, HTTPSPort: 443, OriginProtocolPolicy: "https-only" as const, ...overrides },
    ...originOverrides,
  };
}

function configWithOrigin(reference: string, origin: ReturnType<typeof customOrigin>, extra: Record<string, unknown> = {}) {
  const base = s3DistributionConfig(reference);
  return {
    ...base,
    Origins: { Quantity: 1, Items: [origin] },
    DefaultCacheBehavior: { ...base.DefaultCacheBehavior, TargetOriginId: "app" },
    ...extra,
  };
}

test("numbers out of range name the field", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const cases: Array<[string, ReturnType<typeof customOrigin>, string]> = [
    ["port", customOrigin({ HTTPPort: 81 }), "HTTPPort"],
    ["https port", customOrigin({ HTTPSPort: 70000 }), "HTTPSPort"],
    ["read timeout", customOrigin({ OriginReadTimeout: 181 }), "OriginReadTimeout"],
    ["keepalive", customOrigin({ OriginKeepaliveTimeout: 0 }), "OriginKeepaliveTimeout"],
    ["protocol", customOrigin({ OriginProtocolPolicy: "ftp-only" }), "OriginProtocolPolicy"],
    ["attempts", customOrigin({}, { ConnectionAttempts: 4 }), "ConnectionAttempts"],
    ["connect timeout", customOrigin({}, { ConnectionTimeout: 11 }), "ConnectionTimeout"],
    ["host header", customOrigin({}, { CustomHeaders: { Quantity: 1, Items: [{ HeaderName: "Host", HeaderValue: "x" }] } }), "Host"],
    [
      "x-amz header",
      customOrigin({}, { CustomHeaders: { Quantity: 1, Items: [{ HeaderName: "X-Amz-Date", HeaderValue: "x" }] } }),
      "X-Amz-Date",
    ],
  ];
  for (const [name, origin, field] of cases) {
    const failure = await harness.client
      .send(new CreateDistributionCommand({ DistributionConfig: configWithOrigin(`range-${name}`, origin) }))
      .then(() => undefined, (error: Error) => error);
    assert.equal(failure?.name, "InvalidArgument", name);
    assert.ok(failure?.message.includes(field), `${name}: ${failure?.message}`);
  }

  const groups = {
    Quantity: 1,
    Items: [
      {
        Id: "group",
        FailoverCriteria: { StatusCodes: { Quantity: 1, Items: [200] } },
        Members: { Quantity: 2, Items: [{ OriginId: "app" }, { OriginId: "app" }] },
      },
    ],
  };
  assert.equal(
    await errorName(
      harness.client.send(
        new CreateDistributionCommand({ DistributionConfig: configWithOrigin("failover", customOrigin(), { OriginGroups: groups }) }),
      ),
    ),
    "InvalidArgument",
  );
  const errors = { Quantity: 1, Items: [{ ErrorCode: 418, ResponsePagePath: "/teapot.html", ResponseCode: "200" }] };
  assert.equal(
    await errorName(
      harness.client.send(
        new CreateDistributionCommand({
          DistributionConfig: configWithOrigin("errors", customOrigin(), { CustomErrorResponses: errors }),
        }),
      ),
    ),
    "InvalidArgument",
  );

  const listed = await harness.client.send(new ListDistributionsCommand({}));
  assert.equal(listed.DistributionList?.Quantity, 0, "no rejected config was stored");
});

test("non-UTF-8 and deep documents rejected", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const latin1 = Buffer.concat([
    Buffer.from(`<OriginAccessControlConfig xmlns="${NAMESPACE}"><Name>caf`),
    Buffer.from([0xe9]),
    Buffer.from(
      "</Name><SigningProtocol>sigv4</SigningProtocol><SigningBehavior>always</SigningBehavior>" +
        "<OriginAccessControlOriginType>s3</OriginAccessControlOriginType></OriginAccessControlConfig>",
    ),
  ]);
  const raw = await sendRaw(harness.endpoint, latin1);
  assert.equal(raw.status, 400, raw.text);
  assert.ok(raw.text.includes("<Code>MalformedInput</Code>"), raw.text);
  assert.ok(raw.text.includes("UTF-8"), raw.text);

  const deep = `<DistributionConfig xmlns="${NAMESPACE}">${"<Origins>".repeat(200)}${"</Origins>".repeat(200)}</DistributionConfig>`;
  const started = Date.now();
  const nested = await sendSigned(harness.endpoint, "POST", "/2020-05-31/distribution", deep);
  assert.equal(nested.status, 400);
  assert.ok(nested.text.includes("<Code>MalformedInput</Code>"), nested.text);
  assert.ok(Date.now() - started < 5000, "the server answered a deep document quickly");

  const health = await harness.client.send(new ListDistributionsCommand({}));
  assert.equal(health.DistributionList?.Quantity, 0);
});

test("Logging.Bucket must name a bucket", async (t) => {
  const harness = await startHarness({ buckets: new Set(["logs"]) });
  t.after(() => harness.close());
  const logging = (bucket: string, enabled = true) => ({ Logging: { Enabled: enabled, IncludeCookies: false, Bucket: bucket, Prefix: "" } });
  const cases: Array<[string, RegExp]> = [
    ["obslogs", /Logging.Bucket 'obslogs' is not an S3 bucket domain/],
    ["", /Logging.Bucket '' is not an S3 bucket domain/],
    ["http://evil/", /Logging.Bucket 'http:\/\/evil\/' is not an S3 bucket domain/],
    ["nosuch.s3.amazonaws.com", /The S3 bucket that you specified for CloudFront logs doesn't exist or is not accessible: 'nosuch'/],
  ];
  for (const [bucket, message] of cases) {
    const failure = await harness.client
      .send(new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig(`logging-${bucket}`, logging(bucket)) }))
      .then(() => undefined, (error: Error) => error);
    assert.equal(failure?.name, "InvalidArgument", bucket);
    assert.match(failure?.message ?? "", message, bucket);
  }
  const listed = await harness.client.send(new ListDistributionsCommand({}));
  assert.equal(listed.DistributionList?.Quantity, 0, "no rejected config was stored");

  const created = await harness.client.send(
    new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("logging-ok", logging("logs.s3.amazonaws.com")) }),
  );
  const id = created.Distribution!.Id!;
  const regional = await harness.client.send(
    new UpdateDistributionCommand({
      Id: id,
      IfMatch: created.ETag,
      DistributionConfig: s3DistributionConfig("logging-ok", logging("logs.s3.eu-west-1.amazonaws.com")),
    }),
  );
  const update = await harness.client
    .send(
      new UpdateDistributionCommand({
        Id: id,
        IfMatch: regional.ETag,
        DistributionConfig: s3DistributionConfig("logging-ok", logging("nosuch.s3.amazonaws.com")),
      }),
    )
    .then(() => undefined, (error: Error) => error);
  assert.equal(update?.name, "InvalidArgument", "an update is checked too");
  // With logging off, CloudFront ignores Bucket, and the default is an empty one.
  await harness.client.send(
    new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("logging-off", logging("", false)) }),
  );
});

test("stored Logging.Bucket kept on update", async () => {
  const first = await startHarness({ buckets: new Set(["logs"]) });
  const created = await first.client.send(
    new CreateDistributionCommand({
      DistributionConfig: s3DistributionConfig("legacy", { Logging: { Enabled: true, IncludeCookies: false, Bucket: "logs.s3.amazonaws.com", Prefix: "" } }),
    }),
  );
  const id = created.Distribution!.Id!;
  await first.stop();
  // A data folder from before the check can hold a bucket value it now rejects.
  const store = new ControlStore(first.dataDir);
  const record = store.getDistribution(id)!;
  store.updateDistribution({ ...record, config: { ...record.config, Logging: { ...record.config.Logging!, Bucket: "obslogs" } } });
  store.close();

  const harness = await startHarness({ dataDir: first.dataDir, buckets: new Set() });
  try {
    const current = await harness.client.send(new GetDistributionCommand({ Id: id }));
    assert.equal(current.Distribution?.DistributionConfig?.Logging?.Bucket, "obslogs");
    const legacyLogging = { Logging: { Enabled: true, IncludeCookies: false, Bucket: "obslogs", Prefix: "" } };
    const disabled = await harness.client.send(
      new UpdateDistributionCommand({
        Id: id,
        IfMatch: current.ETag,
        DistributionConfig: s3DistributionConfig("legacy", { ...legacyLogging, Enabled: false }),
      }),
    );
    const deleted = await harness.client.send(new DeleteDistributionCommand({ Id: id, IfMatch: disabled.ETag }));
    assert.equal(deleted.$metadata.httpStatusCode, 204);
  } finally {
    await harness.close();
  }
});

/** Posts raw bytes as an origin access control document, signed as the SDK signs requests. */
async function sendRaw(endpoint: string, body: Buffer): Promise<{ status: number; text: string }> {
  const url = new URL("/2020-05-31/origin-access-control", endpoint);
  const signer = new SignatureV4({
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
    region: "us-east-1",
    service: "cloudfront",
    sha256: Hash.bind(null, "sha256"),
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    headers: { host: url.host, "content-type": "application/xml" },
    body: new Uint8Array(body),
  });
  const response = await fetch(url, { method: "POST", headers: signed.headers, body: new Uint8Array(body) });
  return { status: response.status, text: await response.text() };
}
