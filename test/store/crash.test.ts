import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomInt } from "node:crypto";
import { once } from "node:events";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from "@aws-sdk/client-s3";
import { makeDataDir, removeDataDir, TEST_CREDENTIALS } from "./harness.js";

// Kills the store with SIGKILL during concurrent uploads, overwrites and
// deletes, restarts it on the same folder and checks that each key holds its
// last acknowledged version or the version of the one request that was in
// flight for it, byte for byte. SIGKILL keeps the page cache, so this tests
// crash atomicity of the process, not durability across power loss.

const BUCKET = "crash-test";
const WORKERS = 8;
const KEYS_PER_WORKER = 5;
const CYCLES = 2;
const MIB = 1024 * 1024;

/** A key's content as a SHA-256 hex digest, or null for no object. */
type Content = string | null;

interface KeyState {
  acknowledged: Content;
  /** The result of a request sent but not answered when the process died. */
  inFlight: Content | undefined;
}

let dataDir: string;
let child: ChildProcess | undefined;

before(async () => {
  dataDir = await makeDataDir();
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await removeDataDir(dataDir);
});

async function startServer(): Promise<{ process: ChildProcess; client: S3Client }> {
  const serverPath = join(import.meta.dirname, "crash-server.ts");
  const started = spawn(process.execPath, ["--import", "tsx", serverPath, dataDir], { stdio: ["ignore", "pipe", "inherit"] });
  child = started;
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    started.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /port=(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    started.once("exit", (code) => reject(new Error(`the store process exited with code ${String(code)} before listening`)));
  });
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    forcePathStyle: true,
    maxAttempts: 1,
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
  });
  return { process: started, client };
}

function digest(body: Buffer): string {
  return createHash("sha256").update(body).digest("hex");
}

/** Runs one random write on `key` and returns the content it leaves once acknowledged. */
async function randomWrite(client: S3Client, key: string, state: KeyState): Promise<void> {
  const choice = randomInt(100);
  if (choice < 25) {
    state.inFlight = null;
    await client.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    state.acknowledged = null;
    state.inFlight = undefined;
    return;
  }
  if (choice < 40) {
    // A multipart upload: one 5 MiB part and a small last part, or one small part.
    const parts = randomInt(2) === 0 ? [randomBytes(5 * MIB), randomBytes(randomInt(1, 4096))] : [randomBytes(randomInt(1, 300_000))];
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: key }));
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) {
      const uploaded = await client.send(
        new UploadPartCommand({ Bucket: BUCKET, Key: key, UploadId: created.UploadId, PartNumber: index + 1, Body: part }),
      );
      etags.push(uploaded.ETag!);
    }
    state.inFlight = digest(Buffer.concat(parts));
    await client.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: key,
        UploadId: created.UploadId,
        MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) },
      }),
    );
    state.acknowledged = state.inFlight;
    state.inFlight = undefined;
    return;
  }
  const body = randomBytes(randomInt(0, 1.5 * MIB));
  state.inFlight = digest(body);
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  state.acknowledged = state.inFlight;
  state.inFlight = undefined;
}

/** Writes in `WORKERS` loops, each on its own keys, until the process dies. */
async function loadUntilKilled(client: S3Client, server: ChildProcess, states: Map<string, KeyState>, killAfterMs: number): Promise<number> {
  let acknowledged = 0;
  let killed = false;
  const worker = async (workerIndex: number): Promise<void> => {
    const keys = [...states.keys()].filter((_, index) => index % WORKERS === workerIndex);
    while (!killed) {
      const key = keys[randomInt(keys.length)]!;
      const state = states.get(key)!;
      try {
        await randomWrite(client, key, state);
        acknowledged += 1;
      } catch (error) {
        // An S3 error answer means the write did not happen; a lost connection leaves it in doubt.
        if (error instanceof S3ServiceException && error.$metadata.httpStatusCode !== undefined) state.inFlight = undefined;
        if (!killed) throw error;
      }
    }
  };
  const workers = Array.from({ length: WORKERS }, (_, index) => worker(index));
  await new Promise((resolve) => setTimeout(resolve, killAfterMs));
  killed = true;
  server.kill("SIGKILL");
  await once(server, "exit");
  await Promise.allSettled(workers);
  client.destroy();
  return acknowledged;
}

async function readContent(client: S3Client, key: string): Promise<Content> {
  try {
    const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return digest(Buffer.from(await response.Body!.transformToByteArray()));
  } catch (error) {
    if (error instanceof S3ServiceException && error.name === "NoSuchKey") return null;
    throw error;
  }
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

/** Sums the sizes of every listed object and every part of every unfinished upload. */
async function referencedBytes(client: S3Client): Promise<{ objects: number; parts: number; uploads: Array<{ key: string; id: string }> }> {
  let objects = 0;
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, ContinuationToken: token }));
    for (const entry of page.Contents ?? []) objects += entry.Size ?? 0;
    token = page.NextContinuationToken;
  } while (token !== undefined);
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
  let parts = 0;
  const uploads: Array<{ key: string; id: string }> = [];
  for (const upload of listed.Uploads ?? []) {
    uploads.push({ key: upload.Key!, id: upload.UploadId! });
    const partList = await client.send(new ListPartsCommand({ Bucket: BUCKET, Key: upload.Key!, UploadId: upload.UploadId! }));
    for (const part of partList.Parts ?? []) parts += part.Size ?? 0;
  }
  return { objects, parts, uploads };
}

test("SIGKILL under load loses no acknowledged write", { timeout: 90_000 }, async () => {
  const states = new Map<string, KeyState>();
  for (let index = 0; index < WORKERS * KEYS_PER_WORKER; index++) {
    states.set(`crash/key-${index}`, { acknowledged: null, inFlight: undefined });
  }
  let server = await startServer();
  await server.client.send(new CreateBucketCommand({ Bucket: BUCKET }));

  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const acknowledged = await loadUntilKilled(server.client, server.process, states, randomInt(1200, 2500));
    assert.ok(acknowledged > 20, `only ${acknowledged} writes were acknowledged before the kill`);

    server = await startServer();
    assert.deepEqual(await readdir(join(dataDir, "store", "tmp")), [], "temporary files are removed at start");

    for (const [key, state] of states) {
      const content = await readContent(server.client, key);
      const allowed = [state.acknowledged, ...(state.inFlight === undefined ? [] : [state.inFlight])];
      assert.ok(allowed.includes(content), `${key} holds ${String(content)}, expected one of ${allowed.map(String).join(", ")}`);
      state.acknowledged = content;
      state.inFlight = undefined;
    }

    const listed = await server.client.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    const expectedKeys = [...states].filter(([, state]) => state.acknowledged !== null).map(([key]) => key);
    assert.deepEqual((listed.Contents ?? []).map((entry) => entry.Key).sort(), expectedKeys.sort(), "no unacknowledged key is listed");

    // Every byte in the object folder belongs to a listed object or to a part of an unfinished upload.
    const referenced = await referencedBytes(server.client);
    assert.equal(await objectFileBytes(), referenced.objects + referenced.parts, `cycle ${cycle}: orphaned object files remain`);
    for (const upload of referenced.uploads) {
      await server.client.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: upload.key, UploadId: upload.id }));
    }
    assert.equal(await objectFileBytes(), referenced.objects, `cycle ${cycle}: aborted parts remain on disk`);
  }
  server.client.destroy();
  server.process.kill("SIGKILL");
  await once(server.process, "exit");
});
