import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  PutObjectCommand,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { makeDataDir, removeDataDir, startStore, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "objects-test";

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir);
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

async function readBody(key: string, bucket = BUCKET): Promise<Buffer> {
  const response = await store.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function expectS3Error(promise: Promise<unknown>, code: string, status: number): Promise<S3ServiceException> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof S3ServiceException, `expected an S3 error, got ${String(error)}`);
    assert.equal(error.name, code);
    assert.equal(error.$metadata.httpStatusCode, status);
    return error;
  }
  assert.fail(`expected ${code}, but the request succeeded`);
}

test("3 MiB PutObject round trip is byte-identical", async () => {
  const body = randomBytes(3 * 1024 * 1024);
  const put = await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "random/3mib.bin", Body: body }));
  assert.equal(put.ETag, `"${createHash("md5").update(body).digest("hex")}"`);
  assert.ok(put.ChecksumCRC32, "the SDK's default CRC32 trailer is echoed");
  const read = await readBody("random/3mib.bin");
  assert.ok(read.equals(body));
});

test("12 MiB multipart Upload round trip is byte-identical", async () => {
  const body = randomBytes(12 * 1024 * 1024);
  const result = await new Upload({ client: store.client, params: { Bucket: BUCKET, Key: "random/12mib.bin", Body: body } }).done();
  assert.match(result.ETag ?? "", /^"[0-9a-f]{32}-3"$/);
  const head = await store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "random/12mib.bin" }));
  assert.equal(head.ContentLength, body.length);
  const read = await readBody("random/12mib.bin");
  assert.ok(read.equals(body));
});

test("stored headers and metadata come back exactly", async () => {
  const expires = new Date("2030-01-02T03:04:05Z");
  await store.client.send(
    new PutObjectCommand({
      Bucket: BUCKET,
      Key: "headers.txt",
      Body: "hello",
      ContentType: "text/plain; charset=utf-8",
      CacheControl: "public, max-age=300",
      ContentEncoding: "identity",
      ContentDisposition: 'attachment; filename="h.txt"',
      ContentLanguage: "en-GB",
      Expires: expires,
      Metadata: { owner: "team-a", "mixed-case": "Value With Spaces" },
    }),
  );
  const head = await store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "headers.txt" }));
  assert.equal(head.ContentType, "text/plain; charset=utf-8");
  assert.equal(head.CacheControl, "public, max-age=300");
  assert.equal(head.ContentEncoding, "identity");
  assert.equal(head.ContentDisposition, 'attachment; filename="h.txt"');
  assert.equal(head.ContentLanguage, "en-GB");
  assert.equal(head.Expires?.getTime(), expires.getTime());
  assert.deepEqual(head.Metadata, { owner: "team-a", "mixed-case": "Value With Spaces" });
  assert.equal(head.ETag, `"${createHash("md5").update("hello").digest("hex")}"`);
  assert.ok(head.LastModified instanceof Date);
});

test("GetObject with ChecksumMode returns the stored CRC32", async () => {
  const body = randomBytes(100_000);
  const put = await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "checksum.bin", Body: body }));
  const got = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "checksum.bin", ChecksumMode: "ENABLED" }));
  assert.equal(got.ChecksumCRC32, put.ChecksumCRC32);
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
});

test("single Range returns 206 and 416 past the end", async () => {
  const body = Buffer.from("0123456789");
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "range.txt", Body: body }));
  const partial = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "range.txt", Range: "bytes=2-5" }));
  assert.equal(partial.$metadata.httpStatusCode, 206);
  assert.equal(partial.ContentRange, "bytes 2-5/10");
  assert.equal(await partial.Body!.transformToString(), "2345");
  const suffix = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "range.txt", Range: "bytes=-3" }));
  assert.equal(await suffix.Body!.transformToString(), "789");
  await expectS3Error(store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "range.txt", Range: "bytes=10-" })), "InvalidRange", 416);
});

test("conditional GET answers 304 and 412", async () => {
  const put = await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "cond.txt", Body: "c" }));
  await expectS3Error(store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "cond.txt", IfMatch: '"nope"' })), "PreconditionFailed", 412);
  const notModified = await fetch(`${store.endpoint}/${BUCKET}/cond.txt`, { headers: { "if-none-match": put.ETag! } });
  // Anonymous requests are denied before preconditions, so check with the SDK too.
  assert.equal(notModified.status, 403);
  const error = await store.client
    .send(new GetObjectCommand({ Bucket: BUCKET, Key: "cond.txt", IfNoneMatch: put.ETag! }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(error?.$metadata.httpStatusCode, 304);
  const future = new Date(Date.now() + 3600_000);
  const modified = await store.client
    .send(new GetObjectCommand({ Bucket: BUCKET, Key: "cond.txt", IfModifiedSince: future }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(modified?.$metadata.httpStatusCode, 304);
  await expectS3Error(
    store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "cond.txt", IfUnmodifiedSince: new Date(Date.now() - 3600_000) })),
    "PreconditionFailed",
    412,
  );
});

test("response-* overrides replace the stored headers", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "override.txt", Body: "o", ContentType: "text/plain" }));
  const got = await store.client.send(
    new GetObjectCommand({
      Bucket: BUCKET,
      Key: "override.txt",
      ResponseContentType: "application/json",
      ResponseCacheControl: "no-store",
      ResponseContentDisposition: "inline",
    }),
  );
  assert.equal(got.ContentType, "application/json");
  assert.equal(got.CacheControl, "no-store");
  assert.equal(got.ContentDisposition, "inline");
  assert.equal(await got.Body!.transformToString(), "o");
});

test("missing bucket and key give NoSuchBucket and NoSuchKey", async () => {
  await expectS3Error(store.client.send(new GetObjectCommand({ Bucket: "no-such-bucket-here", Key: "k" })), "NoSuchBucket", 404);
  await expectS3Error(store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "missing/key" })), "NoSuchKey", 404);
  await expectS3Error(store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "missing/key" })), "NotFound", 404);
});

test("odd keys round trip and long keys are rejected", async () => {
  const keys = ["../escape", "a//b", "dir/./x", "ünïcødé/日本語/🙂", "with space+plus&amp", "x".repeat(1024), "trailing/"];
  for (const key of keys) {
    await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `body of ${key}` }));
    assert.equal((await readBody(key)).toString(), `body of ${key}`, key);
  }
  await expectS3Error(store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "x".repeat(1025), Body: "z" })), "KeyTooLongError", 400);
  const objectFiles = await readdir(join(dataDir, "store", "objects"), { recursive: true });
  assert.ok(!objectFiles.some((name) => name.includes("escape") || name.includes("日本")), "files are named by id, not key");
});

test("Content-MD5 mismatch gives BadDigest and stores nothing", async () => {
  const response = await store.client
    .send(new PutObjectCommand({ Bucket: BUCKET, Key: "bad-md5", Body: "payload", ContentMD5: createHash("md5").update("other").digest("base64") }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(response?.name, "BadDigest");
  await expectS3Error(store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "bad-md5" })), "NotFound", 404);
});

test("CopyObject copies bytes and can replace metadata", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "copy/src", Body: "copy me", ContentType: "text/a", Metadata: { a: "1" } }));
  const copied = await store.client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/dst", CopySource: `${BUCKET}/copy/src` }));
  assert.equal(copied.CopyObjectResult?.ETag, `"${createHash("md5").update("copy me").digest("hex")}"`);
  const head = await store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "copy/dst" }));
  assert.equal(head.ContentType, "text/a");
  assert.deepEqual(head.Metadata, { a: "1" });
  await store.client.send(
    new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/dst", CopySource: `${BUCKET}/copy/src`, MetadataDirective: "REPLACE", ContentType: "text/b" }),
  );
  const replaced = await store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: "copy/dst" }));
  assert.equal(replaced.ContentType, "text/b");
  assert.deepEqual(replaced.Metadata, {});
  assert.equal((await readBody("copy/dst")).toString(), "copy me");
  await expectS3Error(store.client.send(new CopyObjectCommand({ Bucket: BUCKET, Key: "copy/src", CopySource: `${BUCKET}/copy/src` })), "InvalidRequest", 400);
});

test("DeleteObject and quiet DeleteObjects remove keys", async () => {
  for (const key of ["del/1", "del/2", "del/3"]) await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
  await store.client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: "del/1" }));
  const loud = await store.client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: "del/2" }, { Key: "del/none" }] } }));
  assert.deepEqual(loud.Deleted?.map((entry) => entry.Key).sort(), ["del/2", "del/none"]);
  const quiet = await store.client.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: "del/3" }], Quiet: true } }));
  assert.equal(quiet.Deleted, undefined);
  for (const key of ["del/1", "del/2", "del/3"]) {
    await expectS3Error(store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key })), "NotFound", 404);
  }
});

test("bucket lifecycle: names, location, not empty, already owned", async () => {
  await expectS3Error(store.client.send(new CreateBucketCommand({ Bucket: "Bad_Name" })), "InvalidBucketName", 400);
  await expectS3Error(store.client.send(new CreateBucketCommand({ Bucket: "192.168.5.4" })), "InvalidBucketName", 400);
  await store.client.send(new CreateBucketCommand({ Bucket: "life-cycle", CreateBucketConfiguration: { LocationConstraint: "eu-west-1" } }));
  await expectS3Error(store.client.send(new CreateBucketCommand({ Bucket: "life-cycle" })), "BucketAlreadyOwnedByYou", 409);
  const location = await store.client.send(new GetBucketLocationCommand({ Bucket: "life-cycle" }));
  assert.equal(location.LocationConstraint, "eu-west-1");
  await store.client.send(new HeadBucketCommand({ Bucket: "life-cycle" }));
  const listed = await store.client.send(new ListBucketsCommand({}));
  assert.ok(listed.Buckets?.some((bucket) => bucket.Name === "life-cycle"));
  await store.client.send(new PutObjectCommand({ Bucket: "life-cycle", Key: "k", Body: "v" }));
  await expectS3Error(store.client.send(new DeleteBucketCommand({ Bucket: "life-cycle" })), "BucketNotEmpty", 409);
  await store.client.send(new DeleteObjectCommand({ Bucket: "life-cycle", Key: "k" }));
  await store.client.send(new DeleteBucketCommand({ Bucket: "life-cycle" }));
  await expectS3Error(store.client.send(new HeadBucketCommand({ Bucket: "life-cycle" })), "NotFound", 404);
});

test("restart on the same data folder reads objects back", async () => {
  const body = randomBytes(256 * 1024);
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "restart/object", Body: body, ContentType: "x/restart" }));
  await store.stop();
  store = await startStore(dataDir);
  const got = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "restart/object" }));
  assert.equal(got.ContentType, "x/restart");
  assert.ok(Buffer.from(await got.Body!.transformToByteArray()).equals(body));
  assert.ok((await readBody("random/3mib.bin")).length === 3 * 1024 * 1024);
});
