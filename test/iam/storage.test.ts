import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, readdir, rm, stat, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { CreateAccessKeyCommand, CreateUserCommand } from "@aws-sdk/client-iam";
import { ListBucketsCommand } from "@aws-sdk/client-s3";
import { silentLogger } from "../../src/common/logger.js";
import { openIam } from "../../src/iam/index.js";
import { parseMasterKey, SecretSealer } from "../../src/iam/secrets.js";
import { startIamHarness, TEST_CREDENTIALS } from "./harness.js";

/** Reads every byte of the IAM folder's files, WAL included. */
async function folderBytes(folder: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const name of await readdir(folder)) parts.push(await readFile(join(folder, name)));
  return Buffer.concat(parts);
}

describe("IAM storage", () => {
  let dataDir: string;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-iam-storage-"));
  });
  after(() => rm(dataDir, { recursive: true, force: true }));

  test("secret encrypted under a 0600 master key", async () => {
    const harness = await startIamHarness({ dataDir });
    let secret: string;
    try {
      await harness.root.send(new CreateUserCommand({ UserName: "stored" }));
      const key = (await harness.root.send(new CreateAccessKeyCommand({ UserName: "stored" }))).AccessKey!;
      secret = key.SecretAccessKey!;
      const iamDir = join(dataDir, "iam");
      const keyInfo = await stat(join(iamDir, "master.key"));
      assert.equal(keyInfo.mode & 0o777, 0o600);
      assert.equal((await stat(iamDir)).mode & 0o077, 0);
      const bytes = await folderBytes(iamDir);
      assert.ok(bytes.includes(Buffer.from(key.AccessKeyId!)), "the key id is stored in the clear");
      assert.equal(bytes.includes(Buffer.from(secret)), false, "the plaintext secret is in the IAM folder");
    } finally {
      await harness.close();
    }

    // After a restart the stored key still signs requests.
    const restarted = await startIamHarness({ dataDir });
    try {
      const row = restarted.iam.store.listAccessKeys("stored", undefined, 10).items[0]!;
      const client = restarted.s3Client(row.accessKeyId, secret);
      const listed = await client.send(new ListBucketsCommand({}));
      assert.deepEqual(listed.Buckets ?? [], []);
    } finally {
      await restarted.close();
    }
  });

  test("master key widened to 0644 is narrowed", async () => {
    const path = join(dataDir, "iam", "master.key");
    await chmod(path, 0o644);
    const iam = await openIam({ dataDir, accountId: TEST_CREDENTIALS.accountId, masterKey: undefined, log: silentLogger() });
    iam.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
  });

  test("wrong master key is rejected at open", async () => {
    const wrong = randomBytes(32).toString("base64");
    await assert.rejects(
      openIam({ dataDir, accountId: TEST_CREDENTIALS.accountId, masterKey: wrong, log: silentLogger() }),
      /master key does not match/,
    );
  });

  test("PORTICO_MASTER_KEY is never written", async () => {
    const folder = await mkdtemp(join(tmpdir(), "portico-iam-envkey-"));
    try {
      const hexKey = randomBytes(32).toString("hex");
      const iam = await openIam({ dataDir: folder, accountId: TEST_CREDENTIALS.accountId, masterKey: hexKey, log: silentLogger() });
      const user = iam.store.createUser("envkey", "/", [], Date.now());
      const key = iam.store.createAccessKey(user.userName, Date.now());
      iam.close();
      assert.deepEqual((await readdir(join(folder, "iam"))).filter((name) => name.includes("master")), []);
      const reopened = await openIam({ dataDir: folder, accountId: TEST_CREDENTIALS.accountId, masterKey: hexKey, log: silentLogger() });
      assert.equal(reopened.store.findActiveKey(key.accessKeyId)?.secretAccessKey, key.secretAccessKey);
      reopened.close();
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  test("master key text is checked", async () => {
    assert.throws(() => parseMasterKey("too-short", "test"), /expected 32 bytes/);
    assert.throws(() => parseMasterKey("ab".repeat(31), "test"), /expected 32 bytes/);
    assert.equal(parseMasterKey("ab".repeat(32), "test").length, 32);
    assert.equal(parseMasterKey(randomBytes(32).toString("base64") + "\n", "test").length, 32);
  });

  test("sealed secret is bound to its key id", () => {
    const sealer = new SecretSealer(randomBytes(32));
    const sealed = sealer.seal("secret-value", "AKIAAAAAAAAAAAAAAAAA");
    assert.equal(sealer.open(sealed, "AKIAAAAAAAAAAAAAAAAA"), "secret-value");
    assert.throws(() => sealer.open(sealed, "AKIABBBBBBBBBBBBBBBB"));
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 20]! ^= 1;
    assert.throws(() => sealer.open(tampered, "AKIAAAAAAAAAAAAAAAAA"));
    assert.throws(() => new SecretSealer(randomBytes(16)), /32 bytes/);
  });

  test("credentials.json is required by tools", async () => {
    const { readAccountId } = await import("../../src/iam/index.js");
    const folder = await mkdtemp(join(tmpdir(), "portico-iam-noaccount-"));
    try {
      await assert.rejects(readAccountId(folder), /credentials\.json not found: run 'portico up/);
      await writeFile(join(folder, "credentials.json"), JSON.stringify({ accountId: "12" }));
      await assert.rejects(readAccountId(folder), /no valid 12-digit accountId/);
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });
});
