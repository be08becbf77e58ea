import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readdir } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { SignatureV4 } from "@smithy/signature-v4";
import { Hash } from "@smithy/hash-node";
import { expectS3Error, makeDataDir, removeDataDir, startStore, TEST_CREDENTIALS, type RunningStore } from "./harness.js";

let store: RunningStore;
let dataDir: string;
const BUCKET = "bad-input";
const IDLE_TIMEOUT_MS = 400;

before(async () => {
  dataDir = await makeDataDir();
  store = await startStore(dataDir, { bodyIdleTimeoutMs: IDLE_TIMEOUT_MS });
  await store.client.send(new CreateBucketCommand({ Bucket: BUCKET }));
});

after(async () => {
  await store.stop();
  await removeDataDir(dataDir);
});

/** Signs a request with the root key and an UNSIGNED-PAYLOAD body; returns the headers to send. */
async function signedHeaders(method: string, target: string, headers: Record<string, string>, host?: string) {
  const [path = "/", queryText = ""] = target.split("?");
  const query = Object.fromEntries(new URLSearchParams(queryText));
  const signer = new SignatureV4({
    service: "s3",
    region: "us-east-1",
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: false,
  });
  const signed = await signer.sign({
    method,
    protocol: "http:",
    hostname: "127.0.0.1",
    port: store.port,
    path,
    query,
    headers: { host: host ?? `127.0.0.1:${store.port}`, "x-amz-content-sha256": "UNSIGNED-PAYLOAD", ...headers },
  });
  return signed.headers as Record<string, string>;
}

interface RawExchange {
  /** Everything the server sent before it closed the connection or the wait ended. */
  text: string;
  closedByServer: boolean;
  elapsedMs: number;
}

/**
 * Writes `head` and `body` on a raw socket, then half-closes it or keeps it
 * open (a stalled client), and collects what the server sends for up to `waitMs`.
 */
function rawExchange(head: string, body: Buffer, options: { endAfterBody: boolean; waitMs: number }): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const startedAt = Date.now();
    const socket = connect(store.port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let closedByServer = false;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ text: Buffer.concat(chunks).toString("latin1"), closedByServer, elapsedMs: Date.now() - startedAt });
    };
    const timer = setTimeout(finish, options.waitMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => {
      closedByServer = true;
      finish();
    });
    socket.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ECONNRESET" || error.code === "EPIPE") {
        closedByServer = true;
        finish();
        return;
      }
      reject(error);
    });
    socket.write(head);
    socket.write(body);
    if (options.endAfterBody) socket.end();
  });
}

function requestHead(method: string, path: string, headers: Record<string, string>): string {
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}`);
  return `${method} ${path} HTTP/1.1\r\n${lines.join("\r\n")}\r\n\r\n`;
}

async function objectExists(key: string): Promise<boolean> {
  try {
    await store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    return true;
  } catch {
    return false;
  }
}

async function tempFiles(): Promise<string[]> {
  return readdir(join(dataDir, "store", "tmp"));
}

/** Polls until the temporary folder is empty, because cleanup runs after the socket closes. */
async function waitForNoTempFiles(): Promise<string[]> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const names = await tempFiles();
    if (names.length === 0) return names;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return tempFiles();
}

test("body cut short stores nothing", async () => {
  const path = `/${BUCKET}/cut-short`;
  const headers = await signedHeaders("PUT", path, { "content-length": "100000" });
  const exchange = await rawExchange(requestHead("PUT", path, headers), randomBytes(40_000), { endAfterBody: true, waitMs: 3000 });
  assert.ok(exchange.closedByServer, "the server closes a connection whose body ended early");
  // Node's HTTP parser answers a body cut off by end of stream with a bare 400
  // before the handler can; the handler sees IncompleteBody and drops the write.
  assert.match(exchange.text, /^HTTP\/1\.1 400 /);
  assert.equal(await objectExists("cut-short"), false);
  assert.deepEqual(await waitForNoTempFiles(), []);
});

test("stalled body times out with RequestTimeout", async () => {
  const path = `/${BUCKET}/stalled`;
  const headers = await signedHeaders("PUT", path, { "content-length": "50000" });
  const exchange = await rawExchange(requestHead("PUT", path, headers), randomBytes(10_000), { endAfterBody: false, waitMs: 5000 });
  assert.match(exchange.text, /^HTTP\/1\.1 400 /);
  assert.match(exchange.text, /<Code>RequestTimeout<\/Code>/);
  assert.ok(exchange.closedByServer, "the server closes the connection after an unread body");
  assert.ok(exchange.elapsedMs >= IDLE_TIMEOUT_MS, `answered after ${exchange.elapsedMs} ms`);
  assert.ok(exchange.elapsedMs < 4000, `answered after ${exchange.elapsedMs} ms`);
  assert.equal(await objectExists("stalled"), false);
  assert.deepEqual(await waitForNoTempFiles(), []);
});

test("overwrite cut short keeps old version", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "kept", Body: "first version" }));
  const path = `/${BUCKET}/kept`;
  const headers = await signedHeaders("PUT", path, { "content-length": "5000" });
  await rawExchange(requestHead("PUT", path, headers), Buffer.from("partial"), { endAfterBody: true, waitMs: 3000 });
  const read = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "kept" }));
  assert.equal(await read.Body!.transformToString(), "first version");
});

test("virtual-hosted addressing reaches the bucket", async () => {
  const port = store.port;
  const client = new S3Client({
    endpoint: `http://s3.portico.localhost:${port}`,
    region: "us-east-1",
    forcePathStyle: false,
    credentials: { accessKeyId: TEST_CREDENTIALS.root.accessKeyId, secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey },
  });
  // The SDK signs Host as <bucket>.s3.portico.localhost; connect to loopback without resolving that name.
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { hostname?: string; headers: Record<string, string> };
      assert.ok(request.headers.host?.endsWith(`.s3.portico.localhost:${port}`), request.headers.host);
      request.hostname = "127.0.0.1";
      return next(args);
    },
    { step: "deserialize", priority: "low" },
  );
  try {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "virtual/hosted key.txt", Body: "through the host name" }));
    const read = await store.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: "virtual/hosted key.txt" }));
    assert.equal(await read.Body!.transformToString(), "through the host name");
    const listed = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "virtual/" }));
    assert.deepEqual(listed.Contents?.map((entry) => entry.Key), ["virtual/hosted key.txt"]);
    await expectS3Error(client.send(new GetObjectCommand({ Bucket: "no-such-bucket-here", Key: "x" })), "NoSuchBucket", 404);
  } finally {
    client.destroy();
  }
});

test("raw virtual-hosted GET names bucket by Host", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "raw-vhost", Body: "raw" }));
  const host = `${BUCKET}.s3.us-east-1.amazonaws.com`;
  const headers = await signedHeaders("GET", "/raw-vhost", {}, host);
  const exchange = await rawExchange(requestHead("GET", "/raw-vhost", { ...headers, connection: "close" }), Buffer.alloc(0), {
    endAfterBody: false,
    waitMs: 3000,
  });
  assert.match(exchange.text, /^HTTP\/1\.1 200 /);
  assert.ok(exchange.text.endsWith("\r\n\r\nraw"), exchange.text);
});

test("bad keys and subresources get S3 errors", async () => {
  const cases: Array<{ path: string; method: string; code: string; status: number }> = [
    { method: "PUT", path: `/${BUCKET}/nul%00key`, code: "InvalidArgument", status: 400 },
    { method: "PUT", path: `/${BUCKET}/${"k".repeat(1025)}`, code: "KeyTooLongError", status: 400 },
    { method: "PUT", path: `/${BUCKET}/bad%E0%A4%A`, code: "InvalidURI", status: 400 },
    { method: "GET", path: `/${BUCKET}?notASubresource`, code: "NotImplemented", status: 501 },
    { method: "GET", path: `/${BUCKET}?versioning`, code: "NotImplemented", status: 501 },
    { method: "PUT", path: "/Bad_Bucket", code: "InvalidBucketName", status: 400 },
    { method: "PUT", path: "/ab", code: "InvalidBucketName", status: 400 },
  ];
  // Anonymous requests: the key, bucket name and subresource are checked before authorization.
  for (const entry of cases) {
    const headers = { host: `127.0.0.1:${store.port}`, "content-length": "1", connection: "close" };
    const exchange = await rawExchange(requestHead(entry.method, entry.path, headers), Buffer.from("x"), {
      endAfterBody: false,
      waitMs: 3000,
    });
    assert.match(exchange.text, new RegExp(`^HTTP/1\\.1 ${entry.status} `), `${entry.method} ${entry.path}`);
    assert.match(exchange.text, new RegExp(`<Code>${entry.code}</Code>`), `${entry.method} ${entry.path}`);
  }
  const listed = await store.client.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "nul" }));
  assert.equal(listed.KeyCount, 0);
});

test("oversized XML body gives an S3 error", async () => {
  const entries = Array.from({ length: 60_000 }, (_, index) => `<Object><Key>key-${index}</Key></Object>`).join("");
  const body = Buffer.from(`<Delete>${entries}</Delete>`);
  const path = `/${BUCKET}?delete`;
  const contentMd5 = createHash("md5").update(body).digest("base64");
  const headers = await signedHeaders("POST", path, { "content-length": String(body.length), "content-md5": contentMd5 });
  const exchange = await rawExchange(requestHead("POST", path, { ...headers, connection: "close" }), body, {
    endAfterBody: false,
    waitMs: 5000,
  });
  assert.match(exchange.text, /^HTTP\/1\.1 400 /);
  assert.match(exchange.text, /<Code>(MaxMessageLengthExceeded|MalformedXML)<\/Code>/);
});

test("DeleteObjects without a digest is rejected", async () => {
  await store.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: "kept-by-delete", Body: "still here" }));
  const body = Buffer.from("<Delete><Object><Key>kept-by-delete</Key></Object></Delete>");
  const path = `/${BUCKET}?delete`;
  const headers = await signedHeaders("POST", path, { "content-length": String(body.length) });
  const exchange = await rawExchange(requestHead("POST", path, { ...headers, connection: "close" }), body, {
    endAfterBody: false,
    waitMs: 3000,
  });
  assert.match(exchange.text, /^HTTP\/1\.1 400 /);
  assert.match(exchange.text, /<Code>InvalidRequest<\/Code>/);
  assert.equal(await objectExists("kept-by-delete"), true);
});
