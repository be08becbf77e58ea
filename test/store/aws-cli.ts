import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { GetObjectCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import { makeDataDir, removeDataDir, startStore, TEST_CREDENTIALS, type RunningStore } from "./harness.js";

const run = promisify(execFile);

let store: RunningStore;
let dataDir: string;
let workDir: string;

function cliVersion(bin: string): string | undefined {
  try {
    return execFileSync(bin, ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    return undefined;
  }
}

async function aws(bin: string, args: string[]): Promise<string> {
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: workDir,
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.root.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_CONFIG_FILE: join(workDir, "no-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(workDir, "no-credentials"),
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_PAGER: "",
  };
  try {
    const { stdout } = await run(bin, [...args, "--endpoint-url", store.endpoint, "--output", "json"], {
      env,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    throw new Error(`${bin} ${args.join(" ")} failed: ${failure.stderr ?? failure.message}`);
  }
}

async function objectBytes(bucket: string, key: string): Promise<Buffer> {
  const response = await store.client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await response.Body!.transformToByteArray());
}

async function listBucketNames(): Promise<string[]> {
  const listed = await store.client.send(new ListBucketsCommand({}));
  return (listed.Buckets ?? []).map((entry) => entry.Name!);
}

async function listKeys(bucket: string, prefix: string): Promise<string[]> {
  const listed = await store.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  return (listed.Contents ?? []).map((entry) => entry.Key!).sort();
}

/**
 * Defines the AWS CLI tests for one CLI binary. Every call gets
 * --endpoint-url, because Debian's CLI 2.9 ignores AWS_ENDPOINT_URL. Each CLI
 * start costs about two seconds of Python, so the tests keep calls few.
 */
export function defineCliTests(cli: { name: string; bin: string }): void {
  before(async () => {
    dataDir = await makeDataDir();
    store = await startStore(dataDir);
    workDir = await mkdtemp(join(tmpdir(), "portico-cli-"));
  });

  after(async () => {
    await store.stop();
    await removeDataDir(dataDir);
    await rm(workDir, { recursive: true, force: true });
  });

  const version = cliVersion(cli.bin);
  const skip = version === undefined ? `${cli.bin} is not installed` : false;
  const bucket = `cli-${cli.name}-bucket`;

  test(`AWS CLI ${cli.name} s3 sync mirrors a folder`, { skip }, async () => {
    await aws(cli.bin, ["s3api", "create-bucket", "--bucket", bucket]);
    const site = join(workDir, `site-${cli.name}`);
    const files: Record<string, Buffer> = {
      "index.html": Buffer.from("<h1>home</h1>"),
      "css/site.css": Buffer.from("body { color: black }"),
      "img/logo one.png": randomBytes(70_000),
      "docs/ünïcødé +plus%.txt": Buffer.from("odd name"),
      "empty.txt": Buffer.alloc(0),
    };
    for (const [name, body] of Object.entries(files)) {
      await mkdir(join(site, name, ".."), { recursive: true });
      await writeFile(join(site, name), body);
    }
    await aws(cli.bin, ["s3", "sync", site, `s3://${bucket}/site/`]);
    assert.deepEqual(await listKeys(bucket, "site/"), Object.keys(files).map((name) => `site/${name}`).sort());
    for (const [name, body] of Object.entries(files)) {
      assert.ok((await objectBytes(bucket, `site/${name}`)).equals(body), name);
    }
    const css = await store.client.send(new HeadObjectCommand({ Bucket: bucket, Key: "site/css/site.css" }));
    assert.equal(css.ContentType, "text/css");

    // Change one file, delete one, and sync with --delete.
    await writeFile(join(site, "index.html"), "<h1>home, second version</h1>");
    await unlink(join(site, "empty.txt"));
    await aws(cli.bin, ["s3", "sync", site, `s3://${bucket}/site/`, "--delete"]);
    assert.equal((await objectBytes(bucket, "site/index.html")).toString(), "<h1>home, second version</h1>");
    assert.ok(!(await listKeys(bucket, "site/")).includes("site/empty.txt"));

    // And back down to a fresh folder.
    const copy = join(workDir, `copy-${cli.name}`);
    await aws(cli.bin, ["s3", "sync", `s3://${bucket}/site/`, copy]);
    assert.ok((await readFile(join(copy, "img/logo one.png"))).equals(files["img/logo one.png"]!));
    assert.equal(await readFile(join(copy, "docs/ünïcødé +plus%.txt"), "utf8"), "odd name");
  });

  test(`AWS CLI ${cli.name} s3 cp goes multipart`, { skip }, async () => {
    const big = randomBytes(20 * 1024 * 1024);
    const source = join(workDir, `big-${cli.name}.bin`);
    await writeFile(source, big);
    await aws(cli.bin, ["s3", "cp", source, `s3://${bucket}/big.bin`]);
    const head = await store.client.send(new HeadObjectCommand({ Bucket: bucket, Key: "big.bin" }));
    assert.equal(head.ContentLength, big.length);
    // The CLI's default threshold and part size are 8 MiB, so 20 MiB is three parts.
    assert.match(head.ETag ?? "", /^"[0-9a-f]{32}-3"$/);
    const target = join(workDir, `big-${cli.name}.out`);
    await aws(cli.bin, ["s3", "cp", `s3://${bucket}/big.bin`, target]);
    const read = await readFile(target);
    assert.equal(createHash("sha256").update(read).digest("hex"), createHash("sha256").update(big).digest("hex"));
  });

  test(`AWS CLI ${cli.name} s3api calls`, { skip }, async () => {
    const bodyPath = join(workDir, `body-${cli.name}.txt`);
    await writeFile(bodyPath, "api body");
    const put = JSON.parse(
      await aws(cli.bin, [
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "api/one.txt",
        "--body",
        bodyPath,
        "--content-type",
        "text/plain",
        "--metadata",
        "owner=cli",
      ]),
    ) as { ETag: string };
    assert.equal(put.ETag, `"${createHash("md5").update("api body").digest("hex")}"`);

    const head = JSON.parse(await aws(cli.bin, ["s3api", "head-object", "--bucket", bucket, "--key", "api/one.txt"])) as {
      ContentLength: number;
      ContentType: string;
      Metadata: Record<string, string>;
    };
    assert.equal(head.ContentLength, 8);
    assert.equal(head.ContentType, "text/plain");
    assert.deepEqual(head.Metadata, { owner: "cli" });

    await aws(cli.bin, ["s3api", "copy-object", "--bucket", bucket, "--key", "api/two.txt", "--copy-source", `${bucket}/api/one.txt`]);
    const listed = JSON.parse(
      await aws(cli.bin, ["s3api", "list-objects-v2", "--bucket", bucket, "--prefix", "api/", "--delimiter", "/"]),
    ) as { Contents: Array<{ Key: string }> };
    assert.deepEqual(listed.Contents.map((entry) => entry.Key), ["api/one.txt", "api/two.txt"]);

    const outPath = join(workDir, `out-${cli.name}.txt`);
    await aws(cli.bin, ["s3api", "get-object", "--bucket", bucket, "--key", "api/two.txt", "--range", "bytes=4-7", outPath]);
    assert.equal(await readFile(outPath, "utf8"), "body");

    await aws(cli.bin, ["s3", "rm", `s3://${bucket}/`, "--recursive"]);
    await aws(cli.bin, ["s3api", "delete-bucket", "--bucket", bucket]);
    assert.deepEqual(await listBucketNames(), []);
  });
}
