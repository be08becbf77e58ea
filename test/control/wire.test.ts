import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateDistributionCommand,
  CreateOriginAccessControlCommand,
  DeleteOriginAccessControlCommand,
  GetDistributionConfigCommand,
  GetOriginAccessControlCommand,
  GetOriginAccessControlConfigCommand,
  ListOriginAccessControlsCommand,
  UpdateOriginAccessControlCommand,
} from "@aws-sdk/client-cloudfront";
import { s3DistributionConfig, sendSigned, startHarness, type Harness } from "./harness.js";

const NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

function oacConfig(name: string, signingBehavior: "always" | "never" | "no-override" = "always") {
  return {
    Name: name,
    Description: `OAC ${name}`,
    SigningProtocol: "sigv4" as const,
    SigningBehavior: signingBehavior,
    OriginAccessControlOriginType: "s3" as const,
  };
}

function errorCode(text: string): string | undefined {
  return /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
}

describe("origin access controls and the wire format", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness();
  });
  after(async () => {
    await harness.close();
  });

  test("OAC create, read, update, delete", async () => {
    const created = await harness.client.send(
      new CreateOriginAccessControlCommand({ OriginAccessControlConfig: oacConfig("site") }),
    );
    const id = created.OriginAccessControl!.Id!;
    assert.match(id, /^E[A-Z0-9]{13}$/);
    assert.equal(created.$metadata.httpStatusCode, 201);
    assert.ok(created.Location?.endsWith(`/origin-access-control/${id}`));

    const fetched = await harness.client.send(new GetOriginAccessControlCommand({ Id: id }));
    assert.equal(fetched.ETag, created.ETag);
    assert.equal(fetched.OriginAccessControl?.OriginAccessControlConfig?.SigningBehavior, "always");
    const configOnly = await harness.client.send(new GetOriginAccessControlConfigCommand({ Id: id }));
    assert.equal(configOnly.OriginAccessControlConfig?.Name, "site");

    const duplicate = await harness.client
      .send(new CreateOriginAccessControlCommand({ OriginAccessControlConfig: oacConfig("site") }))
      .then(() => undefined, (error: Error) => error);
    assert.equal(duplicate?.name, "OriginAccessControlAlreadyExists");

    const updated = await harness.client.send(
      new UpdateOriginAccessControlCommand({
        Id: id,
        IfMatch: created.ETag,
        OriginAccessControlConfig: oacConfig("site", "no-override"),
      }),
    );
    assert.notEqual(updated.ETag, created.ETag);
    assert.equal(updated.OriginAccessControl?.OriginAccessControlConfig?.SigningBehavior, "no-override");
    const stale = await harness.client
      .send(
        new UpdateOriginAccessControlCommand({ Id: id, IfMatch: created.ETag, OriginAccessControlConfig: oacConfig("site", "never") }),
      )
      .then(() => undefined, (error: Error) => error);
    assert.equal(stale?.name, "PreconditionFailed");

    await harness.client.send(
      new CreateDistributionCommand({
        DistributionConfig: s3DistributionConfig("uses-oac", {
          Origins: {
            Quantity: 1,
            Items: [
              {
                Id: "site-bucket",
                DomainName: "site-bucket.s3.us-east-1.amazonaws.com",
                S3OriginConfig: { OriginAccessIdentity: "" },
                OriginAccessControlId: id,
              },
            ],
          },
        }),
      }),
    );
    const inUse = await harness.client
      .send(new DeleteOriginAccessControlCommand({ Id: id, IfMatch: updated.ETag }))
      .then(() => undefined, (error: Error) => error);
    assert.equal(inUse?.name, "OriginAccessControlInUse");

    const spare = await harness.client.send(
      new CreateOriginAccessControlCommand({ OriginAccessControlConfig: oacConfig("spare") }),
    );
    await harness.client.send(
      new DeleteOriginAccessControlCommand({ Id: spare.OriginAccessControl!.Id, IfMatch: spare.ETag }),
    );
    const missing = await harness.client
      .send(new GetOriginAccessControlCommand({ Id: spare.OriginAccessControl!.Id }))
      .then(() => undefined, (error: Error & { $metadata?: { httpStatusCode?: number } }) => error);
    assert.equal(missing?.name, "NoSuchOriginAccessControl");
    assert.equal(missing?.$metadata?.httpStatusCode, 404);

    const listed = await harness.client.send(new ListOriginAccessControlsCommand({ MaxItems: 1 }));
    assert.equal(listed.OriginAccessControlList?.Quantity, 1);
    assert.equal(listed.OriginAccessControlList?.IsTruncated, false);
    assert.equal(listed.OriginAccessControlList?.Items?.[0]?.Id, id);
  });

  test("responses carry the namespace and headers", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("wire-headers") }),
    );
    const id = created.Distribution!.Id!;
    const response = await sendSigned(harness.endpoint, "GET", `/2020-05-31/distribution/${id}`, "");
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "text/xml");
    assert.equal(response.headers.get("etag"), created.ETag);
    assert.ok(response.headers.get("x-amzn-requestid"));
    assert.ok(response.text.includes(`<Distribution xmlns="${NAMESPACE}">`));
    assert.ok(response.text.includes("<Origin><Id>site-bucket</Id>"), "list items use the model's member name");
  });

  test("bad documents are MalformedInput", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("wire-bad-input") }),
    );
    const id = created.Distribution!.Id!;
    const billionLaughs =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
      '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>' +
      "<DistributionConfig><CallerReference>&lol3;</CallerReference></DistributionConfig>";
    const externalEntity =
      '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
      "<DistributionConfig><Comment>&xxe;</Comment></DistributionConfig>";
    const deep = "<DistributionConfig>" + "<Origins>".repeat(200) + "</Origins>".repeat(200) + "</DistributionConfig>";
    const cases: Array<[string, string]> = [
      ["malformed XML", "<DistributionConfig><Comment>unclosed</DistributionConfig>"],
      ["billion laughs", billionLaughs],
      ["external entity", externalEntity],
      ["deep nesting", deep],
      ["unknown element", '<DistributionConfig xmlns="' + NAMESPACE + '"><Surprise>1</Surprise></DistributionConfig>'],
      ["wrong root", "<Distribution><Id>x</Id></Distribution>"],
      ["not an integer", "<DistributionConfig><Origins><Quantity>many</Quantity></Origins></DistributionConfig>"],
      ["empty body", ""],
    ];
    for (const [name, body] of cases) {
      const response = await sendSigned(harness.endpoint, "POST", "/2020-05-31/distribution", body);
      assert.equal(response.status, 400, name);
      assert.equal(errorCode(response.text), "MalformedInput", `${name}: ${response.text}`);
      assert.ok(response.text.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<ErrorResponse xmlns="' + NAMESPACE + '"><Error><Type>Sender</Type>'), name);
      assert.match(response.text, /<RequestId>[0-9A-F]{32}<\/RequestId><\/ErrorResponse>$/);
      assert.equal(response.headers.get("content-type"), "text/xml");
      assert.ok(response.headers.get("x-amzn-requestid"));
    }

    const update = await sendSigned(harness.endpoint, "PUT", `/2020-05-31/distribution/${id}/config`, billionLaughs, {
      "if-match": created.ETag!,
    });
    assert.equal(errorCode(update.text), "MalformedInput");
    const stored = await harness.client.send(new GetDistributionConfigCommand({ Id: id }));
    assert.equal(stored.ETag, created.ETag, "a rejected update leaves the distribution unchanged");
    assert.equal(stored.DistributionConfig?.Comment, "static site");
  });

  test("document in another namespace is rejected", async () => {
    const config = (namespace: string, reference: string) =>
      `<DistributionConfig xmlns="${namespace}"><CallerReference>${reference}</CallerReference>` +
      "<Origins><Quantity>1</Quantity><Items><Origin><Id>o1</Id><DomainName>origin.example.test</DomainName>" +
      "<CustomOriginConfig><HTTPPort>80</HTTPPort><HTTPSPort>443</HTTPSPort>" +
      "<OriginProtocolPolicy>http-only</OriginProtocolPolicy></CustomOriginConfig></Origin></Items></Origins>" +
      "<DefaultCacheBehavior><TargetOriginId>o1</TargetOriginId><ViewerProtocolPolicy>allow-all</ViewerProtocolPolicy>" +
      "<CachePolicyId>658327ea-f89d-4fab-a63d-7e88639e58f6</CachePolicyId></DefaultCacheBehavior>" +
      "<Comment>namespaces</Comment><Enabled>true</Enabled></DistributionConfig>";
    const accepted = await sendSigned(harness.endpoint, "POST", "/2020-05-31/distribution", config(NAMESPACE, "ns-right"));
    assert.equal(accepted.status, 201, accepted.text);
    const rejected = await sendSigned(
      harness.endpoint,
      "POST",
      "/2020-05-31/distribution",
      config("http://example.com/wrong", "ns-wrong"),
    );
    assert.equal(rejected.status, 400);
    assert.equal(errorCode(rejected.text), "MalformedInput", rejected.text);
  });

  test("character references decode, others do not", async () => {
    const body =
      `<OriginAccessControlConfig xmlns="${NAMESPACE}"><Name>amp&amp;&#65;&#x42;</Name>` +
      "<SigningProtocol>sigv4</SigningProtocol><SigningBehavior>always</SigningBehavior>" +
      "<OriginAccessControlOriginType>s3</OriginAccessControlOriginType></OriginAccessControlConfig>";
    const created = await sendSigned(harness.endpoint, "POST", "/2020-05-31/origin-access-control", body);
    assert.equal(created.status, 201, created.text);
    assert.ok(created.text.includes("<Name>amp&amp;AB</Name>"));
    const undefinedEntity = body.replace("amp&amp;", "&nbsp;");
    const rejected = await sendSigned(harness.endpoint, "POST", "/2020-05-31/origin-access-control", undefinedEntity);
    assert.equal(errorCode(rejected.text), "MalformedInput");
  });

  test("unbuilt operations are NotImplemented", async () => {
    const response = await sendSigned(harness.endpoint, "GET", "/2020-05-31/function", "");
    assert.equal(response.status, 501);
    assert.equal(errorCode(response.text), "NotImplemented");
    assert.ok(response.text.includes("ListFunctions"));
  });
});
