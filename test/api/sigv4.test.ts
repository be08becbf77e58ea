import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { StaticCredentialStore } from "../../src/api/auth/credentials.js";
import { SOURCE_ARN_HEADER } from "../../src/api/auth/principal.js";
import { verifySigV4, type SignedRequest } from "../../src/api/auth/sigv4.js";
import { ApiError } from "../../src/api/errors.js";

const ROOT = { accessKeyId: "AKIATESTROOT0000001", secretAccessKey: "root/secret+key0123456789abcdefghijklmnop" };
const SERVICE = { accessKeyId: "ASIATESTSERVICE0001", secretAccessKey: "service/secret0123456789abcdefghijklmnopq" };
const credentials = new StaticCredentialStore({
  accountId: "123456789012",
  root: ROOT,
  service: SERVICE,
  rootGenerated: false,
});

function signer(service: string, key = ROOT): SignatureV4 {
  return new SignatureV4({
    service,
    region: "us-east-1",
    credentials: key,
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: service !== "s3",
    applyChecksum: service === "s3",
  });
}

/** Turns a signed smithy request into what Node's HTTP server would hand over. */
function asReceived(signed: {
  method: string;
  path: string;
  query?: Record<string, string | string[] | null>;
  headers: Record<string, string>;
}): SignedRequest {
  const query = Object.entries(signed.query ?? {})
    .flatMap(([name, value]) =>
      (Array.isArray(value) ? value : [value]).map((item) =>
        item === null ? encodeURIComponent(name) : `${encodeURIComponent(name)}=${encodeURIComponent(item)}`,
      ),
    )
    .join("&");
  const rawHeaders = Object.entries(signed.headers).flatMap(([name, value]) => [name, value]);
  const headers = Object.fromEntries(Object.entries(signed.headers).map(([name, value]) => [name.toLowerCase(), value]));
  return { method: signed.method, target: signed.path + (query ? `?${query}` : ""), headers, rawHeaders };
}

function request(path: string, query: Record<string, string> = {}, headers: Record<string, string> = {}) {
  return {
    method: "GET",
    protocol: "http:",
    hostname: "127.0.0.1",
    port: 4580,
    path,
    query,
    headers: { host: "127.0.0.1:4580", ...headers },
  };
}

function expectCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (error: unknown) => error instanceof ApiError && error.code === code);
}

describe("SigV4 verification", () => {
  test("accepts S3 keys with spaces, plus, unicode and double slashes", async () => {
    for (const key of ["a b+c.html", "ünïcødé/ファイル.txt", "dir//twice/", "100%25 sure", "~tilde_(paren)!'*"]) {
      const encoded = key
        .split("/")
        .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
        .join("/");
      const signed = await signer("s3").sign(request(`/bucket/${encoded}`, { "list-type": "2", prefix: "a b/ü" }));
      const result = verifySigV4(asReceived(signed as never), credentials);
      assert.equal(result.principal.type, "root", key);
    }
  });

  test("accepts a CloudFront request whose path the signer escapes twice", async () => {
    const signed = await signer("cloudfront").sign(request("/2020-05-31/distribution/E123%3Aabc"));
    const result = verifySigV4(asReceived(signed as never), credentials, Date.now(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert.equal(result.service, "cloudfront");
  });

  test("rejects a wrong secret with SignatureDoesNotMatch", async () => {
    const signed = await signer("s3", { ...ROOT, secretAccessKey: "wrong" }).sign(request("/bucket/key"));
    expectCode(() => verifySigV4(asReceived(signed as never), credentials), "SignatureDoesNotMatch");
  });

  test("rejects a changed header or path", async () => {
    const signed = asReceived((await signer("s3").sign(request("/bucket/key", {}, { range: "bytes=0-1" }))) as never);
    const changedHeader = { ...signed, headers: { ...signed.headers, range: "bytes=0-100" }, rawHeaders: signed.rawHeaders.map((v) => (v === "bytes=0-1" ? "bytes=0-100" : v)) };
    expectCode(() => verifySigV4(changedHeader, credentials), "SignatureDoesNotMatch");
    expectCode(() => verifySigV4({ ...signed, target: "/bucket/other" }, credentials), "SignatureDoesNotMatch");
  });

  test("rejects unknown keys and skewed clocks", async () => {
    const unknown = await signer("s3", { accessKeyId: "AKIAUNKNOWN", secretAccessKey: "x" }).sign(request("/b/k"));
    expectCode(() => verifySigV4(asReceived(unknown as never), credentials), "InvalidAccessKeyId");
    const signed = await signer("s3").sign(request("/b/k"), { signingDate: new Date(Date.now() - 16 * 60_000) });
    expectCode(() => verifySigV4(asReceived(signed as never), credentials), "RequestTimeTooSkewed");
    const future = await signer("s3").sign(request("/b/k"), { signingDate: new Date(Date.now() + 16 * 60_000) });
    expectCode(() => verifySigV4(asReceived(future as never), credentials), "RequestTimeTooSkewed");
  });

  test("rejects a malformed authorization header", () => {
    const base = asReceived({ method: "GET", path: "/b/k", headers: { host: "h", "x-amz-date": "20260101T000000Z", authorization: "AWS4-HMAC-SHA256 Credential=onlyone" } });
    expectCode(() => verifySigV4(base, credentials), "AuthorizationHeaderMalformed");
  });

  test("verifies presigned URLs and their expiry", async () => {
    // Like @aws-sdk/s3-request-presigner, sign the payload as UNSIGNED-PAYLOAD.
    const unsignedPayload = { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" };
    const presigned = await signer("s3").presign(request("/bucket/a%20b.txt", {}, unsignedPayload), { expiresIn: 60 });
    assert.equal(verifySigV4(asReceived(presigned as never), credentials).presigned, true);
    const old = await signer("s3").presign(request("/bucket/k"), { expiresIn: 60, signingDate: new Date(Date.now() - 120_000) });
    expectCode(() => verifySigV4(asReceived(old as never), credentials), "AccessDenied");
    const tooLong = asReceived((await signer("s3").presign(request("/bucket/k"), { expiresIn: 60 })) as never);
    tooLong.target = tooLong.target.replace("X-Amz-Expires=60", `X-Amz-Expires=${8 * 24 * 3600}`);
    expectCode(() => verifySigV4(tooLong, credentials), "AuthorizationQueryParametersError");
  });

  test("trusts the source ARN only when it is signed", async () => {
    const arn = "arn:aws:cloudfront::123456789012:distribution/EDFDVBD6EXAMPLE";
    const signed = await signer("s3", SERVICE).sign(request("/bucket/k", {}, { [SOURCE_ARN_HEADER]: arn }));
    const result = verifySigV4(asReceived(signed as never), credentials);
    assert.equal(result.principal.type, "service");
    assert.equal(result.principal.type === "service" ? result.principal.sourceArn : "", arn);

    const unsigned = asReceived((await signer("s3", SERVICE).sign(request("/bucket/k"))) as never);
    unsigned.headers[SOURCE_ARN_HEADER] = arn;
    const withoutArn = verifySigV4(unsigned, credentials);
    assert.equal(withoutArn.principal.type === "service" ? withoutArn.principal.sourceArn : "x", undefined);
  });
});
