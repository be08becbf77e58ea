import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { crc32 } from "node:zlib";
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { makeDataDir, removeDataDir, startStore, TEST_CREDENTIALS, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "payload-test";
const EMPTY_SHA256 = createHash("sha256").digest("hex");

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir);
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

const hmac = (key: Buffer | string, data: string): Buffer => createHmac("sha256", key).update(data).digest();

function signingKey(date: string): Buffer {
  const dateKey = hmac(`AWS4${TEST_CREDENTIALS.root.secretAccessKey}`, date);
  return hmac(hmac(hmac(dateKey, "us-east-1"), "s3"), "aws4_request");
}

/** Signs headers for a PUT with the root key; the body is sent separately. */
async function signPut(path: string, headers: Record<string, string>): Promise<Record<string, string>> {
  const url = new URL(path, store.endpoint);
  const signer = new SignatureV4({
    service: "s3",
    region: "us-east-1",
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const signed = await signer.sign({
    method: "PUT",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    headers: { host: url.host, ...headers },
  });
  return signed.headers as Record<string, string>;
}

/** Sends a raw PUT and returns status and body text. */
function rawPut(path: string, headers: Record<string, string>, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(`${store.endpoint}${path}`, { method: "PUT", headers }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      response.on("error", reject);
    });
    request.on("error", reject);
    request.end(body);
  });
}

function signedChunks(data: Buffer, chunkSize: number, seed: string, amzDate: string, trailer?: string): Buffer {
  const key = signingKey(amzDate.slice(0, 8));
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  let previous = seed;
  const out: Buffer[] = [];
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += chunkSize) pieces.push(data.subarray(offset, offset + chunkSize));
  pieces.push(Buffer.alloc(0));
  for (const piece of pieces) {
    const stringToSign = ["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, EMPTY_SHA256, createHash("sha256").update(piece).digest("hex")].join("\n");
    previous = hmac(key, stringToSign).toString("hex");
    out.push(Buffer.from(`${piece.length.toString(16)};chunk-signature=${previous}\r\n`), piece);
    if (piece.length > 0) out.push(Buffer.from("\r\n"));
  }
  if (trailer === undefined) {
    out.push(Buffer.from("\r\n"));
  } else {
    const stringToSign = ["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, previous, createHash("sha256").update(`${trailer}\n`).digest("hex")].join("\n");
    out.push(Buffer.from(`${trailer}\r\nx-amz-trailer-signature:${hmac(key, stringToSign).toString("hex")}\r\n\r\n`));
  }
  return Buffer.concat(out);
}

function crc32Base64(data: Buffer): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(data));
  return out.toString("base64");
}

async function objectExists(key: string): Promise<boolean> {
  return store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })).then(
    () => true,
    (error: S3ServiceException) => {
      if (error.$metadata.httpStatusCode === 404) return false;
      throw error;
    },
  );
}

async function putStreaming(key: string, data: Buffer, options: { trailer?: string; tamper?: (body: Buffer) => Buffer; decodedLength?: number }) {
  const mode = options.trailer === undefined ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
  const headers: Record<string, string> = {
    "x-amz-content-sha256": mode,
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(options.decodedLength ?? data.length),
  };
  if (options.trailer !== undefined) headers["x-amz-trailer"] = options.trailer.split(":")[0]!;
  const signed = await signPut(`/${BUCKET}/${key}`, headers);
  const seed = /Signature=([0-9a-f]{64})/.exec(signed.authorization!)![1]!;
  let body = signedChunks(data, 64 * 1024, seed, signed["x-amz-date"]!, options.trailer);
  if (options.tamper) body = options.tamper(body);
  return rawPut(`/${BUCKET}/${key}`, { ...signed, "content-length": String(body.length) }, body);
}

test("signed aws-chunked upload is verified and stored", async () => {
  const data = randomBytes(200 * 1024);
  const result = await putStreaming("chunked/signed", data, {});
  assert.equal(result.status, 200, result.text);
  const got = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "chunked/signed" }));
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
});

test("signed aws-chunked with a trailer checksum", async () => {
  const data = randomBytes(100 * 1024);
  const result = await putStreaming("chunked/trailer", data, { trailer: `x-amz-checksum-crc32:${crc32Base64(data)}` });
  assert.equal(result.status, 200, result.text);
  const got = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "chunked/trailer", ChecksumMode: "ENABLED" }));
  assert.equal(got.ChecksumCRC32, crc32Base64(data));
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(data));
});

test("tampered chunk gives SignatureDoesNotMatch and stores nothing", async () => {
  const data = randomBytes(100 * 1024);
  const result = await putStreaming("chunked/tampered", data, {
    tamper: (body) => {
      const copy = Buffer.from(body);
      copy[200] = copy[200]! ^ 0xff;
      return copy;
    },
  });
  assert.equal(result.status, 403);
  assert.match(result.text, /<Code>SignatureDoesNotMatch<\/Code>/);
  assert.equal(await objectExists("chunked/tampered"), false);
});

test("wrong trailer checksum gives BadDigest", async () => {
  const data = randomBytes(10 * 1024);
  const result = await putStreaming("chunked/bad-crc", data, { trailer: `x-amz-checksum-crc32:${crc32Base64(Buffer.from("other"))}` });
  assert.equal(result.status, 400);
  assert.match(result.text, /<Code>BadDigest<\/Code>/);
  assert.equal(await objectExists("chunked/bad-crc"), false);
});

test("short decoded body gives IncompleteBody", async () => {
  const data = randomBytes(1000);
  const result = await putStreaming("chunked/short", data, { decodedLength: 2000 });
  assert.equal(result.status, 400);
  assert.match(result.text, /<Code>IncompleteBody<\/Code>/);
  assert.equal(await objectExists("chunked/short"), false);
});

test("unsigned trailer upload verifies its CRC32", async () => {
  const data = Buffer.from("hello trailer");
  const framed = (checksum: string): Buffer =>
    Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from(`\r\n0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`)]);
  const headers = {
    "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    "content-encoding": "aws-chunked",
    "x-amz-decoded-content-length": String(data.length),
    "x-amz-trailer": "x-amz-checksum-crc32",
  };
  const good = framed(crc32Base64(data));
  const signed = await signPut(`/${BUCKET}/trailer/unsigned`, headers);
  const ok = await rawPut(`/${BUCKET}/trailer/unsigned`, { ...signed, "content-length": String(good.length) }, good);
  assert.equal(ok.status, 200, ok.text);
  const bad = framed(crc32Base64(Buffer.from("x")));
  const signedBad = await signPut(`/${BUCKET}/trailer/unsigned-bad`, headers);
  const rejected = await rawPut(`/${BUCKET}/trailer/unsigned-bad`, { ...signedBad, "content-length": String(bad.length) }, bad);
  assert.equal(rejected.status, 400);
  assert.match(rejected.text, /<Code>BadDigest<\/Code>/);
  assert.equal(await objectExists("trailer/unsigned-bad"), false);
});

test("SHA-256 payload mismatch gives XAmzContentSHA256Mismatch", async () => {
  const body = Buffer.from("actual body");
  const signed = await signPut(`/${BUCKET}/sha/mismatch`, { "x-amz-content-sha256": createHash("sha256").update("other body").digest("hex") });
  const result = await rawPut(`/${BUCKET}/sha/mismatch`, { ...signed, "content-length": String(body.length) }, body);
  assert.equal(result.status, 400);
  assert.match(result.text, /<Code>XAmzContentSHA256Mismatch<\/Code>/);
  assert.equal(await objectExists("sha/mismatch"), false);
});

test("malformed XML bodies give MalformedXML", async () => {
  const body = Buffer.from("<Delete><Object><Key>a</Key></Delete>");
  const url = new URL(`/${BUCKET}?delete`, store.endpoint);
  const signer = new SignatureV4({
    service: "s3",
    region: "us-east-1",
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const signed = await signer.sign({
    method: "POST",
    protocol: "http:",
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: { delete: "" },
    headers: {
      host: url.host,
      "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"),
      // S3 requires Content-MD5 (or a checksum) on DeleteObjects.
      "content-md5": createHash("md5").update(body).digest("base64"),
    },
    body,
  });
  const response = await fetch(url, { method: "POST", headers: signed.headers as Record<string, string>, body });
  assert.equal(response.status, 400);
  assert.match(await response.text(), /<Code>MalformedXML<\/Code>/);
});
