import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { makeDataDir, removeDataDir, startStore, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "listing-test";
const KEYS = ["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "z", "é", "ﬀ", "😀", "A", "a b+c"];

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir);
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
  for (const key of KEYS) await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: key }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

const byteOrder = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

test("ListObjectsV2 lists keys in UTF-8 byte order", async () => {
  const result = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
  assert.deepEqual(result.Contents?.map((entry) => entry.Key), [...KEYS].sort(byteOrder));
  assert.equal(result.KeyCount, KEYS.length);
  assert.equal(result.IsTruncated, false);
});

test("delimiter groups common prefixes", async () => {
  const result = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: "/" }));
  assert.deepEqual(result.CommonPrefixes?.map((entry) => entry.Prefix), ["a/", "c/"]);
  assert.deepEqual(result.Contents?.map((entry) => entry.Key), ["A", "a b+c", "b", "z", "é", "ﬀ", "😀"]);
  const nested = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "a/", Delimiter: "/" }));
  assert.deepEqual(nested.Contents?.map((entry) => entry.Key), ["a/1", "a/2"]);
  assert.deepEqual(nested.CommonPrefixes?.map((entry) => entry.Prefix), ["a/b/"]);
});

test("continuation tokens page through keys and prefixes", async () => {
  const seen: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Delimiter: "/", MaxKeys: 2, ContinuationToken: token }));
    for (const entry of page.Contents ?? []) seen.push(entry.Key!);
    for (const entry of page.CommonPrefixes ?? []) seen.push(entry.Prefix!);
    token = page.NextContinuationToken;
    assert.equal(page.IsTruncated, token !== undefined);
    pages += 1;
    assert.ok(pages < 20, "pagination must end");
  } while (token);
  assert.deepEqual(seen.sort(byteOrder), ["A", "a b+c", "a/", "b", "c/", "z", "é", "ﬀ", "😀"].sort(byteOrder));
  const after = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, StartAfter: "c/x" }));
  assert.equal(after.Contents?.[0]?.Key, "c/y");
});

test("ListObjects v1 pages with markers", async () => {
  const first = await store.client.send(new ListObjectsCommand({ Bucket: BUCKET, MaxKeys: 3 }));
  assert.equal(first.IsTruncated, true);
  assert.equal(first.Contents?.length, 3);
  const second = await store.client.send(new ListObjectsCommand({ Bucket: BUCKET, Marker: first.Contents![2]!.Key }));
  assert.equal((first.Contents?.length ?? 0) + (second.Contents?.length ?? 0), KEYS.length);
  const delimited = await store.client.send(new ListObjectsCommand({ Bucket: BUCKET, Delimiter: "/", MaxKeys: 2 }));
  assert.equal(delimited.NextMarker, "a b+c");
  const next = await store.client.send(new ListObjectsCommand({ Bucket: BUCKET, Delimiter: "/", MaxKeys: 2, Marker: delimited.NextMarker }));
  assert.deepEqual(next.CommonPrefixes?.map((entry) => entry.Prefix), ["a/"]);
  assert.deepEqual(next.Contents?.map((entry) => entry.Key), ["b"]);
});

test("encoding-type=url encodes keys in the response", async () => {
  const response = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "a b", EncodingType: "url" }));
  assert.equal(response.Contents?.[0]?.Key, "a%20b%2Bc");
});

test("max-keys must be an integer", async () => {
  const response = await store.client
    .send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: -1 }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(response?.name, "InvalidArgument");
});

test("multipart checks part order, ETags and sizes", async () => {
  const key = "mpu/object";
  const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const uploadId = created.UploadId!;
  const small = await store.client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 1, Body: "tiny" }));
  const second = await store.client.send(new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, PartNumber: 2, Body: "end" }));
  const parts = await store.client.send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  assert.deepEqual(parts.Parts?.map((part) => part.PartNumber), [1, 2]);
  const uploads = await store.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  assert.ok(uploads.Uploads?.some((upload) => upload.UploadId === uploadId));

  const complete = (partList: Array<{ PartNumber: number; ETag: string }>) =>
    store.client
      .send(new CompleteMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId, MultipartUpload: { Parts: partList } }))
      .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal((await complete([{ PartNumber: 1, ETag: small.ETag! }, { PartNumber: 2, ETag: second.ETag! }]))?.name, "EntityTooSmall");
  assert.equal((await complete([{ PartNumber: 2, ETag: second.ETag! }, { PartNumber: 1, ETag: small.ETag! }]))?.name, "InvalidPartOrder");
  assert.equal((await complete([{ PartNumber: 1, ETag: '"0000"' }]))?.name, "InvalidPart");
  assert.equal((await complete([{ PartNumber: 3, ETag: small.ETag! }]))?.name, "InvalidPart");

  await store.client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  const afterAbort = await store.client
    .send(new ListPartsCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }))
    .then(() => undefined, (caught: S3ServiceException) => caught);
  assert.equal(afterAbort?.name, "NoSuchUpload");
});
