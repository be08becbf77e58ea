import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { ListBucketsCommand, S3Client, type S3ServiceException } from "@aws-sdk/client-s3";
import { startPorticoProcess, type PorticoProcess } from "../helpers/portico-process.js";

const REPO = join(import.meta.dirname, "..", "..");
const execFileAsync = promisify(execFile);

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `portico ARGS...` from the sources as a separate process. */
async function portico(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await execFileAsync(
      process.execPath,
      ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), ...args],
      { cwd: REPO, env: { ...process.env, PORTICO_MASTER_KEY: "", ...env }, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as Error & { code?: number; stdout?: string; stderr?: string };
    if (typeof failed.code !== "number") throw error;
    return { code: failed.code, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("portico users and keys against a running portico up", () => {
  let dataDir: string;
  let server: PorticoProcess;
  const clients: S3Client[] = [];

  function s3(accessKeyId: string, secretAccessKey: string): S3Client {
    const client = new S3Client({
      endpoint: server.target.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId, secretAccessKey },
      maxAttempts: 1,
    });
    clients.push(client);
    return client;
  }

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-iam-cli-"));
    server = await startPorticoProcess(dataDir);
  });
  after(async () => {
    for (const client of clients) client.destroy();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("key lifecycle without restart", { timeout: 150_000 }, async () => {
    const created = await portico(["users", "create", "ci-runner", "--data-dir", dataDir]);
    assert.equal(created.code, 0, created.stderr);
    assert.match(created.stdout, /Created user ci-runner/);
    assert.match(created.stdout, /arn:aws:iam::\d{12}:user\/ci-runner/);

    // PORTICO_DATA_DIR replaces --data-dir.
    const keyRun = await portico(["keys", "create", "ci-runner", "--json"], { PORTICO_DATA_DIR: dataDir });
    assert.equal(keyRun.code, 0, keyRun.stderr);
    const key = JSON.parse(keyRun.stdout) as { AccessKeyId: string; SecretAccessKey: string; UserName: string };
    assert.match(key.AccessKeyId, /^AKIA[A-Z0-9]{16}$/);
    assert.equal(key.SecretAccessKey.length, 40);
    const client = s3(key.AccessKeyId, key.SecretAccessKey);

    const [listed, firstUse, ghost, help, conflict] = await Promise.all([
      portico(["keys", "list", "ci-runner", "--data-dir", dataDir]),
      client.send(new ListBucketsCommand({})),
      portico(["users", "delete", "ghost", "--data-dir", dataDir]),
      portico(["keys", "create", "--help"]),
      portico(["users", "delete", "ci-runner", "--data-dir", dataDir]),
    ]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`${key.AccessKeyId}\\s+ci-runner\\s+Active`));
    assert.equal(listed.stdout.includes(key.SecretAccessKey), false, "keys list shows the secret");
    assert.deepEqual(firstUse.Buckets ?? [], []);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /The user with name ghost cannot be found/);
    assert.equal(help.code, 0);
    for (const option of ["--data-dir", "PORTICO_DATA_DIR", "--json", "PORTICO_MASTER_KEY", "master.key"]) {
      assert.ok(help.stdout.includes(option), `keys create --help mentions ${option}`);
    }
    assert.equal(conflict.code, 1);
    assert.match(conflict.stderr, /must delete access keys first/);

    const deleted = await portico(["keys", "delete", key.AccessKeyId, "--data-dir", dataDir]);
    assert.equal(deleted.code, 0, deleted.stderr);
    // The running server checks the database's change counter on every lookup, so no wait is needed.
    const [rejected, removed] = await Promise.all([
      client.send(new ListBucketsCommand({})).then(
        () => undefined,
        (error: unknown) => error as S3ServiceException,
      ),
      portico(["users", "delete", "ci-runner", "--data-dir", dataDir]),
    ]);
    assert.equal(rejected?.name, "InvalidAccessKeyId");
    assert.equal(rejected?.$metadata.httpStatusCode, 403);
    assert.equal(removed.code, 0, removed.stderr);
    const empty = await portico(["users", "list", "--json", "--data-dir", dataDir]);
    assert.deepEqual(JSON.parse(empty.stdout), []);

    const serverOutput = JSON.stringify(server.logs) + server.stderr();
    assert.ok(serverOutput.length > 0);
    assert.equal(serverOutput.includes(key.SecretAccessKey), false, "the server logged the secret");
  });
});
