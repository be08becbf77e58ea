import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
} from "@aws-sdk/client-s3";
import { expectS3Error, makeDataDir, removeDataDir, startStore, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "multipart-copy";
const MIB = 1024 * 1024;

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir);
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

async function getBytes(key: string, extra: { PartNumber?: number; Range?: string } = {}) {
  const response = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, ...extra }));
  return { response, body: Buffer.from(await response.Body!.transformToByteArray()) };
}

async function objectFileBytes(): Promise<number> {
  const root = join(dataDir, "store", "objects");
  let total = 0;
  for (const name of await readdir(root, { recursive: true })) {
    const info = await stat(join(root, name));
    if (info.isFile()) total += info.size;
  }
  return total;
}

/** Uploads `parts` as a multipart object and returns the completed ETag. */
async function uploadMultipart(key: string, parts: Buffer[]): Promise<string> {
  const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
  const etags: string[] = [];
  for (const [index, part] of parts.entries()) {
    const uploaded = await store.client.send(
      new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: index + 1, Body: part }),
    );
    etags.push(uploaded.ETag!);
  }
  const done = await store.client.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: key,
      UploadId: created.UploadId,
      MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
    }),
  );
  return done.ETag!;
}

test("completing keeps parts as segments without a copy", async () => {
  const before = await objectFileBytes();
  const parts = [randomBytes(5 * MIB), randomBytes(5 * MIB), randomBytes(1234)];
  const etag = await uploadMultipart("segments.bin", parts);
  const partMd5s = Buffer.concat(parts.map((part) => createHash("md5").update(part).digest()));
  assert.equal(etag, `"${createHash("md5").update(partMd5s).digest("hex")}-3"`);
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  assert.equal((await objectFileBytes()) - before, total, "the bytes are on disk once");

  const { body } = await getBytes("segments.bin");
  assert.ok(body.equals(Buffer.concat(parts)));
  const across = await getBytes("segments.bin", { Range: `bytes=${5 * MIB - 10}-${5 * MIB + 9}` });
  assert.equal(across.response.ContentRange, `bytes ${5 * MIB - 10}-${5 * MIB + 9}/${total}`);
  assert.ok(across.body.equals(Buffer.concat(parts).subarray(5 * MIB - 10, 5 * MIB + 10)));
});

test("GetObject partNumber returns one part", async () => {
  const parts = [randomBytes(5 * MIB), randomBytes(777)];
  await uploadMultipart("by-part.bin", parts);
  const second = await getBytes("by-part.bin", { PartNumber: 2 });
  assert.equal(second.response.$metadata.httpStatusCode, 206);
  assert.equal(second.response.PartsCount, 2);
  assert.equal(second.response.ContentLength, 777);
  assert.equal(second.response.ContentRange, `bytes ${5 * MIB}-${5 * MIB + 776}/${5 * MIB + 777}`);
  assert.ok(second.body.equals(parts[1]!));
  const first = await getBytes("by-part.bin", { PartNumber: 1 });
  assert.ok(first.body.equals(parts[0]!));
  await expectS3Error(getBytes("by-part.bin", { PartNumber: 3 }), "InvalidPartNumber", 416);

  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "single.txt", Body: "one part" }));
  const only = await getBytes("single.txt", { PartNumber: 1 });
  assert.equal(only.body.toString(), "one part");
  assert.equal(only.response.PartsCount, 1);
  await expectS3Error(getBytes("single.txt", { PartNumber: 2 }), "InvalidPartNumber", 416);

  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "empty.txt", Body: "" }));
  const empty = await getBytes("empty.txt", { PartNumber: 1 });
  assert.equal(empty.response.$metadata.httpStatusCode, 200);
  assert.equal(empty.body.length, 0);
});

test("CopyObject of a multipart source", async () => {
  const parts = [randomBytes(5 * MIB), randomBytes(4321)];
  await uploadMultipart("multipart-source.bin", parts);
  const copied = await store.client.send(
    new CopyObjectCommand({ Bucket: BUCKET, Key: "multipart-copy.bin", CopySource: `${BUCKET}/multipart-source.bin` }),
  );
  const whole = Buffer.concat(parts);
  assert.equal(copied.CopyObjectResult?.ETag, `"${createHash("md5").update(whole).digest("hex")}"`);
  const { body } = await getBytes("multipart-copy.bin");
  assert.ok(body.equals(whole));
});

test("UploadPartCopy copies ranges of a source", async () => {
  const source = randomBytes(6 * MIB + 100);
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "copy-source.bin", Body: source }));
  const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "copied.bin" }));
  const uploadId = created.UploadId!;
  const first = await store.client.send(
    new UploadPartCopyCommand({
      Bucket: BUCKET,
      Key: "copied.bin",
      UploadId: uploadId,
      PartNumber: 1,
      CopySource: `${BUCKET}/copy-source.bin`,
      CopySourceRange: `bytes=0-${5 * MIB - 1}`,
    }),
  );
  assert.equal(first.CopyPartResult?.ETag, `"${createHash("md5").update(source.subarray(0, 5 * MIB)).digest("hex")}"`);
  const second = await store.client.send(
    new UploadPartCopyCommand({
      Bucket: BUCKET,
      Key: "copied.bin",
      UploadId: uploadId,
      PartNumber: 2,
      CopySource: `${BUCKET}/copy-source.bin`,
      CopySourceRange: `bytes=${5 * MIB}-${source.length - 1}`,
    }),
  );
  await store.client.send(
    new CompleteMultipartUploadCommand({
      Bucket: BUCKET,
      Key: "copied.bin",
      UploadId: uploadId,
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: first.CopyPartResult!.ETag! },
          { PartNumber: 2, ETag: second.CopyPartResult!.ETag! },
        ],
      },
    }),
  );
  const { body } = await getBytes("copied.bin");
  assert.ok(body.equals(source));
});

test("UploadPartCopy rejects bad ranges and failed conditions", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "small-source", Body: "0123456789" }));
  const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: "bad-copy" }));
  const base = { Bucket: BUCKET, Key: "bad-copy", UploadId: created.UploadId!, PartNumber: 1, CopySource: `${BUCKET}/small-source` };
  await expectS3Error(store.client.send(new UploadPartCopyCommand({ ...base, CopySourceRange: "bytes=0-10" })), "InvalidArgument", 400);
  await expectS3Error(store.client.send(new UploadPartCopyCommand({ ...base, CopySourceRange: "bytes=5-2" })), "InvalidArgument", 400);
  await expectS3Error(store.client.send(new UploadPartCopyCommand({ ...base, CopySourceRange: "0-3" })), "InvalidArgument", 400);
  await expectS3Error(
    store.client.send(new UploadPartCopyCommand({ ...base, CopySourceIfMatch: '"00000000000000000000000000000000"' })),
    "PreconditionFailed",
    412,
  );
  await expectS3Error(
    store.client.send(new UploadPartCopyCommand({ ...base, CopySource: `${BUCKET}/missing-source` })),
    "NoSuchKey",
    404,
  );
  const ok = await store.client.send(new UploadPartCopyCommand({ ...base, CopySourceRange: "bytes=2-5" }));
  assert.equal(ok.CopyPartResult?.ETag, `"${createHash("md5").update("2345").digest("hex")}"`);
  await store.client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: "bad-copy", UploadId: created.UploadId! }));
});

test("ListMultipartUploads groups keys by delimiter", async () => {
  const keys = ["uploads/a/1", "uploads/a/2", "uploads/b/1", "uploads/c", "uploads/d/x/y"];
  const ids = new Map<string, string>();
  for (const key of keys) {
    const created = await store.client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    ids.set(key, created.UploadId!);
  }
  const grouped = await store.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "uploads/", Delimiter: "/" }));
  assert.deepEqual(grouped.CommonPrefixes?.map((entry) => entry.Prefix), ["uploads/a/", "uploads/b/", "uploads/d/"]);
  assert.deepEqual(grouped.Uploads?.map((upload) => upload.Key), ["uploads/c"]);
  assert.equal(grouped.IsTruncated, false);

  // Two items a page: common prefixes and uploads both count, and no page repeats one.
  const seen: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (let page = 0; page < 5; page++) {
    const result = await store.client.send(
      new ListMultipartUploadsCommand({
        Bucket: BUCKET,
        Prefix: "uploads/",
        Delimiter: "/",
        MaxUploads: 2,
        KeyMarker: keyMarker,
        UploadIdMarker: uploadIdMarker,
      }),
    );
    seen.push(...(result.CommonPrefixes ?? []).map((entry) => entry.Prefix!), ...(result.Uploads ?? []).map((upload) => upload.Key!));
    if (!result.IsTruncated) break;
    keyMarker = result.NextKeyMarker;
    uploadIdMarker = result.NextUploadIdMarker;
  }
  assert.deepEqual(seen.sort(), ["uploads/a/", "uploads/b/", "uploads/c", "uploads/d/"]);

  const flat = await store.client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: "uploads/a/" }));
  assert.deepEqual(flat.Uploads?.map((upload) => upload.Key), ["uploads/a/1", "uploads/a/2"]);
  for (const [key, uploadId] of ids) {
    await store.client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: key, UploadId: uploadId }));
  }
});

test("overwriting a multipart object frees its segments", async () => {
  await uploadMultipart("overwritten.bin", [randomBytes(5 * MIB), randomBytes(10)]);
  const before = await objectFileBytes();
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "overwritten.bin", Body: "small now" }));
  assert.equal(before - (await objectFileBytes()), 5 * MIB + 10 - "small now".length);
  const { body } = await getBytes("overwritten.bin");
  assert.equal(body.toString(), "small now");
});
