import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  CreateBucketCommand,
  DeleteBucketPolicyCommand,
  GetBucketPolicyCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { makeDataDir, removeDataDir, startStore, TEST_CREDENTIALS, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "cdn-origin";
const DISTRIBUTION_ARN = `arn:aws:cloudfront::${TEST_CREDENTIALS.accountId}:distribution/E1ABCDEFGHIJKL`;
const OTHER_ARN = `arn:aws:cloudfront::${TEST_CREDENTIALS.accountId}:distribution/E9OTHERDISTRIB`;

const RUNBOOK_POLICY = JSON.stringify({
  Version: "2012-10-17",
  Statement: [
    {
      Effect: "Allow",
      Principal: { Service: "cloudfront.amazonaws.com" },
      Action: "s3:GetObject",
      Resource: `arn:aws:s3:::${BUCKET}/*`,
      Condition: { StringEquals: { "AWS:SourceArn": DISTRIBUTION_ARN } },
    },
  ],
});

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir);
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "index.html", Body: "<h1>hi</h1>", ContentType: "text/html" }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

/** Sends a GET signed as the CloudFront service principal, acting for `sourceArn`. */
async function fetchAsCloudFront(path: string, sourceArn: string, signingDate = new Date()): Promise<Response> {
  const signer = new SignatureV4({
    service: "s3",
    region: "us-east-1",
    credentials: { accessKeyId: TEST_CREDENTIALS.service.accessKeyId, secretAccessKey: TEST_CREDENTIALS.service.secretAccessKey },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
    applyChecksum: true,
  });
  const url = new URL(path, store.endpoint);
  const signed = await signer.sign(
    {
      method: "GET",
      protocol: "http:",
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      headers: {
        host: url.host,
        "x-portico-source-arn": sourceArn,
        "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
      },
    },
    { signingDate },
  );
  return fetch(url, { headers: signed.headers as Record<string, string> });
}

async function errorCode(response: Response): Promise<string | undefined> {
  const text = await response.text();
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
}

test("runbook policy allows only the distribution's ARN", async () => {
  await store.client.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: RUNBOOK_POLICY }));
  const stored = await store.client.send(new GetBucketPolicyCommand({ Bucket: BUCKET }));
  assert.equal(stored.Policy, RUNBOOK_POLICY);

  const allowed = await fetchAsCloudFront(`/${BUCKET}/index.html`, DISTRIBUTION_ARN);
  assert.equal(allowed.status, 200);
  assert.equal(await allowed.text(), "<h1>hi</h1>");

  const other = await fetchAsCloudFront(`/${BUCKET}/index.html`, OTHER_ARN);
  assert.equal(other.status, 403);
  // The service principal, which only the edge signs as, learns which part of which statement failed.
  assert.equal(
    other.headers.get("x-amz-error-detail"),
    `no bucket policy statement allows s3:GetObject on arn:aws:s3:::${BUCKET}/index.html: ` +
      `statement Statement[0] has a StringEquals condition on AWS:SourceArn that the request does not meet (the request has ${OTHER_ARN})`,
  );
  assert.equal(await errorCode(other), "AccessDenied");

  // GetObject alone does not grant ListBucket, so a missing key reads as AccessDenied.
  const missing = await fetchAsCloudFront(`/${BUCKET}/missing.html`, DISTRIBUTION_ARN);
  assert.equal(missing.status, 403);
  assert.equal(await errorCode(missing), "AccessDenied");
  // The detail for the edge names the missing key as the cause, which the viewer's 403 leaves out.
  assert.match(
    missing.headers.get("x-amz-error-detail") ?? "",
    new RegExp(`^the key does not exist, and no bucket policy statement allows s3:ListBucket on arn:aws:s3:::${BUCKET}: `),
  );
});

test("anonymous GET is denied with S3 XML", async () => {
  const response = await fetch(`${store.endpoint}/${BUCKET}/index.html`);
  assert.equal(response.status, 403);
  assert.equal(response.headers.get("x-amz-error-detail"), null, "other callers learn nothing of the policy");
  const missing = await fetch(`${store.endpoint}/${BUCKET}/missing.html`);
  assert.equal(missing.status, 403);
  assert.equal(missing.headers.get("x-amz-error-detail"), null, "nor whether a key exists");
  assert.equal(response.headers.get("content-type"), "application/xml");
  assert.ok(response.headers.get("x-amz-request-id"));
  const text = await response.text();
  assert.match(text, /<Error><Code>AccessDenied<\/Code><Message>[^<]+<\/Message>/);
  assert.match(text, /<Resource>\/cdn-origin\/index.html<\/Resource>/);
  assert.match(text, /<RequestId>[0-9A-F]{32}<\/RequestId>/);
});

test("public-read policy with a Deny for one prefix", async () => {
  const policy = {
    Version: "2012-10-17",
    Statement: [
      { Sid: "PublicRead", Effect: "Allow", Principal: "*", Action: ["s3:GetObject"], Resource: [`arn:aws:s3:::${BUCKET}/*`] },
      { Sid: "HideSecrets", Effect: "Deny", Principal: { AWS: "*" }, Action: "s3:*", Resource: `arn:aws:s3:::${BUCKET}/secret/*` },
      {
        Sid: "OnlyLoopback",
        Effect: "Deny",
        Principal: "*",
        Action: "s3:GetObject",
        Resource: `arn:aws:s3:::${BUCKET}/*`,
        Condition: { NotIpAddress: { "aws:SourceIp": ["127.0.0.0/8", "::1/128"] } },
      },
    ],
  };
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "secret/key.txt", Body: "s" }));
  await store.client.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify(policy) }));
  // An explicit Deny binds the bucket owner too; only the policy operations stay open to it.
  const ownerDenied = await store.client
    .send(new PutObjectCommand({ Bucket: BUCKET, Key: "secret/other.txt", Body: "s" }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(ownerDenied?.name, "AccessDenied");
  const open = await fetch(`${store.endpoint}/${BUCKET}/index.html`);
  assert.equal(open.status, 200);
  const hidden = await fetch(`${store.endpoint}/${BUCKET}/secret/key.txt`);
  assert.equal(hidden.status, 403);
  const listing = await fetch(`${store.endpoint}/${BUCKET}?list-type=2`);
  assert.equal(listing.status, 403, "GetObject does not grant ListBucket");
  const denied = await fetchAsCloudFront(`/${BUCKET}/secret/key.txt`, DISTRIBUTION_ARN);
  assert.equal(
    denied.headers.get("x-amz-error-detail"),
    `statement HideSecrets of the bucket policy denies s3:GetObject on arn:aws:s3:::${BUCKET}/secret/key.txt`,
  );
  await store.client.send(new DeleteBucketPolicyCommand({ Bucket: BUCKET }));
  assert.equal((await fetch(`${store.endpoint}/${BUCKET}/index.html`)).status, 403);
  const noPolicy = await fetchAsCloudFront(`/${BUCKET}/index.html`, DISTRIBUTION_ARN);
  assert.equal(
    noPolicy.headers.get("x-amz-error-detail"),
    `no bucket policy statement allows s3:GetObject on arn:aws:s3:::${BUCKET}/index.html: the bucket has no policy`,
  );
  // A key outside ASCII is percent-encoded in the header, which may carry ASCII only.
  const unicode = await fetchAsCloudFront(`/${BUCKET}/caf%C3%A9.txt`, DISTRIBUTION_ARN);
  assert.equal(unicode.status, 403);
  assert.match(unicode.headers.get("x-amz-error-detail") ?? "", /arn:aws:s3:::[^ ]+\/caf%C3%A9\.txt:/);
});

test("malformed policies name the element at fault", async () => {
  const cases: Array<[unknown, RegExp]> = [
    [{ Version: "2012-10-17" }, /Statement/],
    [{ Statement: [{ Effect: "Maybe", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*` }] }, /effect/i],
    [{ Statement: [{ Effect: "Allow", Principal: "*", Action: "ec2:RunInstances", Resource: `arn:aws:s3:::${BUCKET}/*` }] }, /action/],
    [{ Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: "arn:aws:s3:::another-bucket/*" }] }, /resource/],
    [{ Statement: [{ Effect: "Allow", Principal: { Group: "x" }, Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*` }] }, /principal/],
    [
      {
        Statement: [
          { Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${BUCKET}/*`, Condition: { StringSorta: { "aws:Referer": "x" } } },
        ],
      },
      /Condition type : StringSorta/,
    ],
  ];
  for (const [document, message] of cases) {
    const error = await store.client
      .send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify(document) }))
      .then(() => undefined, (caught: S3ServiceException) => caught);
    assert.equal(error?.name, "MalformedPolicy", JSON.stringify(document));
    assert.match(error?.message ?? "", message);
  }
  const notJson = await store.client
    .send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: "{not json" }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(notJson?.name, "MalformedPolicy");
});

test("wrong secret gives SignatureDoesNotMatch", async () => {
  const client = new S3Client({
    endpoint: store.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: "wrong-secret-wrong-secret-wrong-secret00" },
  });
  try {
    const error = await client
      .send(new PutObjectCommand({ Bucket: BUCKET, Key: "nope", Body: "x" }))
      .then(() => undefined, (caught: S3ServiceException) => caught);
    assert.equal(error?.name, "SignatureDoesNotMatch");
    assert.equal(error?.$metadata.httpStatusCode, 403);
  } finally {
    client.destroy();
  }
  const unknownKey = new S3Client({
    endpoint: store.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x".repeat(40) },
  });
  try {
    const error = await unknownKey
      .send(new PutObjectCommand({ Bucket: BUCKET, Key: "nope", Body: "x" }))
      .then(() => undefined, (caught: S3ServiceException) => caught);
    assert.equal(error?.name, "InvalidAccessKeyId");
  } finally {
    unknownKey.destroy();
  }
});

test("x-amz-date 20 minutes off gives RequestTimeTooSkewed", async () => {
  const response = await fetchAsCloudFront(`/${BUCKET}/index.html`, DISTRIBUTION_ARN, new Date(Date.now() - 20 * 60 * 1000));
  assert.equal(response.status, 403);
  assert.equal(await errorCode(response), "RequestTimeTooSkewed");
});

test("SigV2 header and presigned query are verified", async () => {
  const path = `/${BUCKET}/index.html`;
  const date = new Date().toUTCString();
  const sign = (stringToSign: string, secret: string): string => createHmac("sha1", secret).update(stringToSign).digest("base64");
  const good = sign(`GET\n\n\n${date}\n${path}`, TEST_CREDENTIALS.root.secretAccessKey);
  const ok = await fetch(`${store.endpoint}${path}`, { headers: { date, authorization: `AWS ${TEST_CREDENTIALS.root.accessKeyId}:${good}` } });
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), "<h1>hi</h1>");

  const bad = sign(`GET\n\n\n${date}\n${path}`, "not-the-secret");
  const rejected = await fetch(`${store.endpoint}${path}`, { headers: { date, authorization: `AWS ${TEST_CREDENTIALS.root.accessKeyId}:${bad}` } });
  assert.equal(rejected.status, 403);
  assert.equal(await errorCode(rejected), "SignatureDoesNotMatch");

  const expires = Math.floor(Date.now() / 1000) + 300;
  const signature = sign(`GET\n\n\n${expires}\n${path}`, TEST_CREDENTIALS.root.secretAccessKey);
  const query = new URLSearchParams({ AWSAccessKeyId: TEST_CREDENTIALS.root.accessKeyId, Expires: String(expires), Signature: signature });
  const presigned = await fetch(`${store.endpoint}${path}?${query.toString()}`);
  assert.equal(presigned.status, 200);

  const expired = Math.floor(Date.now() / 1000) - 10;
  const expiredSignature = sign(`GET\n\n\n${expired}\n${path}`, TEST_CREDENTIALS.root.secretAccessKey);
  const old = new URLSearchParams({ AWSAccessKeyId: TEST_CREDENTIALS.root.accessKeyId, Expires: String(expired), Signature: expiredSignature });
  const expiredResponse = await fetch(`${store.endpoint}${path}?${old.toString()}`);
  assert.equal(expiredResponse.status, 403);
});

test("unbuilt operations answer NotImplemented naming them", async () => {
  const response = await fetch(`${store.endpoint}/${BUCKET}?cors`, {
    headers: { date: new Date().toUTCString() },
  });
  assert.equal(response.status, 501);
  const text = await response.text();
  assert.match(text, /<Code>NotImplemented<\/Code>/);
  assert.match(text, /GetBucketCors/);
});
