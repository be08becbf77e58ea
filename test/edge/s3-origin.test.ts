import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { SOURCE_ARN_HEADER, type CredentialStore, type SigningKey } from "../../src/api/auth/principal.js";
import { verifySigV4 } from "../../src/api/auth/sigv4.js";
import type { DistributionSnapshot } from "../../src/cluster/types.js";
import { customSnapshot, request, startTestEdge } from "./helpers.js";

const SERVICE_KEY: SigningKey = {
  accessKeyId: "ASIATESTSERVICEKEY01",
  secretAccessKey: "service-secret-for-tests-only-0000000000",
  principal: { type: "service", service: "cloudfront.amazonaws.com", accessKeyId: "ASIATESTSERVICEKEY01", sourceArn: undefined },
};
const credentials: CredentialStore = { lookup: (id) => (id === SERVICE_KEY.accessKeyId ? SERVICE_KEY : undefined) };

/** Starts a bucket endpoint that checks SigV4 with the API's verifier and records each verdict. */
async function startBucketEndpoint() {
  const seen: Array<{ url: string; headers: IncomingMessage["headers"]; verdict: string; sourceArn?: string | undefined }> = [];
  const server = createServer((req, res) => {
    let verdict = "anonymous";
    let sourceArn: string | undefined;
    if (req.headers.authorization !== undefined) {
      try {
        const result = verifySigV4(
          { method: req.method ?? "GET", target: req.url ?? "/", headers: req.headers, rawHeaders: req.rawHeaders },
          credentials,
        );
        verdict = `${result.service}/${result.region}`;
        sourceArn = result.principal.type === "service" ? result.principal.sourceArn : undefined;
      } catch (error) {
        verdict = `rejected: ${(error as Error).message}`;
      }
    }
    seen.push({ url: req.url ?? "", headers: req.headers, verdict, sourceArn });
    if (verdict === "anonymous" && req.url?.includes("private")) {
      res.writeHead(403, { "content-type": "application/xml" });
      res.end("<Error><Code>AccessDenied</Code></Error>");
      return;
    }
    res.writeHead(200, { "content-type": "text/plain", etag: '"s3etag"' });
    res.end(`object ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function s3Snapshot(signingBehavior: "always" | "never" | undefined): DistributionSnapshot {
  const base = customSnapshot({ originPort: 1 });
  const origin = {
    Id: "bucket-origin",
    DomainName: "media-bucket.s3.us-east-1.amazonaws.com",
    OriginPath: "/site",
    S3OriginConfig: { OriginAccessIdentity: "" },
    ...(signingBehavior === undefined ? {} : { OriginAccessControlId: "OAC1" }),
  };
  return {
    ...base,
    config: {
      ...base.config,
      Origins: { Quantity: 1, Items: [origin] },
      DefaultCacheBehavior: { ...base.config.DefaultCacheBehavior!, TargetOriginId: "bucket-origin", ForwardedValues: { QueryString: true, Cookies: { Forward: "none" } } },
    },
    originAccessControls:
      signingBehavior === undefined
        ? {}
        : { OAC1: { Name: "oac", SigningProtocol: "sigv4", SigningBehavior: signingBehavior, OriginAccessControlOriginType: "s3" } },
  };
}

test("S3 origin request is signed for s3 with the source ARN", async (t) => {
  const bucket = await startBucketEndpoint();
  t.after(() => bucket.close());
  const fixture = await startTestEdge({ s3Endpoint: bucket.endpoint });
  t.after(() => fixture.close());
  const snapshot = s3Snapshot("always");
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });

  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/dir/a%2Fb%20c(1).txt?x=1&y=a%20b", {
    headers: { authorization: "Bearer viewer-token" },
  });
  assert.equal(response.status, 200);
  const seen = bucket.seen[0]!;
  assert.equal(seen.url, "/media-bucket/site/dir/a%2Fb%20c(1).txt?x=1&y=a%20b");
  assert.equal(seen.verdict, "s3/us-east-1");
  assert.equal(seen.sourceArn, snapshot.arn);
  assert.equal(seen.headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
  const authorization = String(seen.headers.authorization);
  assert.match(authorization, /^AWS4-HMAC-SHA256 Credential=ASIATESTSERVICEKEY01\/\d{8}\/us-east-1\/s3\/aws4_request/);
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)![1]!.split(";");
  assert.ok(signedHeaders.includes(SOURCE_ARN_HEADER));
  assert.ok(signedHeaders.includes("host"));
  assert.ok(signedHeaders.includes("x-amz-date"));
});

test("S3 origin without OAC is unsigned and its 403 passes", async (t) => {
  const bucket = await startBucketEndpoint();
  t.after(() => bucket.close());
  const fixture = await startTestEdge({ s3Endpoint: bucket.endpoint });
  t.after(() => fixture.close());
  const snapshot = s3Snapshot(undefined);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });

  const open = await request(fixture.edge.httpPort, snapshot.domainName, "/public.txt");
  assert.equal(open.status, 200);
  assert.equal(bucket.seen[0]!.verdict, "anonymous");
  assert.equal(bucket.seen[0]!.headers[SOURCE_ARN_HEADER], undefined);

  const denied = await request(fixture.edge.httpPort, snapshot.domainName, "/private.txt");
  assert.equal(denied.status, 403);
  assert.equal(denied.headers["x-cache"], "Error from portico");
  assert.match(denied.body.toString(), /AccessDenied/);
});

test("OAC with signing never sends unsigned", async (t) => {
  const bucket = await startBucketEndpoint();
  t.after(() => bucket.close());
  const fixture = await startTestEdge({ s3Endpoint: bucket.endpoint });
  t.after(() => fixture.close());
  const snapshot = s3Snapshot("never");
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  await request(fixture.edge.httpPort, snapshot.domainName, "/x.txt");
  assert.equal(bucket.seen[0]!.verdict, "anonymous");
});
