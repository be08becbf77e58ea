import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, describe, test } from "node:test";
import { startIamHarness, TEST_CREDENTIALS, type IamHarness } from "./harness.js";

const run = promisify(execFile);
const SCRIPT = fileURLToPath(new URL("./boto3_iam.py", import.meta.url));

/** Debian's python3-boto3 and pip's current boto3; both speak IAM's Query protocol. */
const INTERPRETERS = [
  { name: "Debian boto3", python: "/usr/bin/python3" },
  { name: "pip boto3", python: "python3" },
];

/** pip's AWS CLI v1 on PATH and Debian's CLI v2, which ignores AWS_ENDPOINT_URL, so every call passes --endpoint-url. */
const AWS_CLIS = [
  { name: "AWS CLI v1", command: "aws" },
  { name: "AWS CLI v2", command: "/usr/bin/aws" },
];

/** Keeps the user's AWS configuration and any proxy out of the client under test. */
function cleanEnvironment(dataDir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: dataDir,
    AWS_CONFIG_FILE: join(dataDir, "aws-config-absent"),
    AWS_SHARED_CREDENTIALS_FILE: join(dataDir, "aws-credentials-absent"),
    AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.root.accessKeyId,
    AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.root.secretAccessKey,
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_MAX_ATTEMPTS: "1",
    NO_PROXY: "127.0.0.1,localhost",
  };
}

function unavailable(command: string, args: string[]): string | undefined {
  const probe = spawnSync(command, args, { encoding: "utf8" });
  if (probe.error) return `${command} cannot run: ${probe.error.message}`;
  if (probe.status !== 0) return `${command} ${args.join(" ")} failed: ${probe.stderr.trim().split("\n").pop()}`;
  return undefined;
}

// The clients are independent processes, so the tests run at once to keep the file short.
describe("IAM with boto3 and the AWS CLIs", { concurrency: true }, () => {
  let harness: IamHarness;
  before(async () => {
    harness = await startIamHarness();
  });
  after(() => harness.close());

  for (const [index, { name, python }] of INTERPRETERS.entries()) {
    test(`${name} user and key calls`, { skip: unavailable(python, ["-c", "import boto3"]) ?? false }, async () => {
      const userName = `boto-user-${index}`;
      const { stdout } = await run(
        python,
        [SCRIPT, harness.endpoint, TEST_CREDENTIALS.root.accessKeyId, TEST_CREDENTIALS.root.secretAccessKey, userName],
        { env: cleanEnvironment(harness.dataDir), timeout: 60_000 },
      );
      const out = JSON.parse(stdout) as Record<string, any>;
      assert.equal(out.protocol, "query");
      assert.equal(out.created.UserName, userName);
      assert.match(out.created.UserId, /^AIDA[A-Z0-9]{17}$/);
      assert.equal(out.created.Arn, `arn:aws:iam::${TEST_CREDENTIALS.accountId}:user/${userName}`);
      assert.deepEqual(out.created.Tags, [{ Key: "owner", Value: "ops team" }]);
      assert.equal(out.got, out.created.UserId);
      assert.ok(out.listed.includes(userName));
      assert.match(out.key.AccessKeyId, /^AKIA[A-Z0-9]{16}$/);
      assert.equal(out.key.SecretLength, 40);
      assert.equal(out.key.Status, "Active");
      assert.deepEqual(out.keys, [{ AccessKeyId: out.key.AccessKeyId, Status: "Inactive" }]);
      assert.deepEqual(out.deleteConflict, { code: "DeleteConflict", status: 409 });
      assert.deepEqual(out.missing, { code: "NoSuchEntity", status: 404 });
    });
  }

  for (const [index, { name, command }] of AWS_CLIS.entries()) {
    test(`${name} iam commands`, { skip: unavailable(command, ["--version"]) ?? false }, async () => {
      const env = cleanEnvironment(harness.dataDir);
      const aws = async (...args: string[]): Promise<any> => {
        const { stdout } = await run(command, ["iam", ...args, "--endpoint-url", harness.endpoint, "--output", "json"], {
          env,
          timeout: 60_000,
        });
        return stdout.trim() === "" ? undefined : JSON.parse(stdout);
      };
      const userName = `cli-user-${index}`;
      const created = await aws("create-user", "--user-name", userName, "--path", "/cli/");
      assert.equal(created.User.UserName, userName);
      assert.equal(created.User.Arn, `arn:aws:iam::${TEST_CREDENTIALS.accountId}:user/cli/${userName}`);
      const got = await aws("get-user", "--user-name", userName);
      assert.equal(got.User.UserId, created.User.UserId);
      const listed = await aws("list-users", "--path-prefix", "/cli/");
      assert.ok(listed.Users.some((user: { UserName: string }) => user.UserName === userName));
      assert.ok(listed.Users.every((user: { Path: string }) => user.Path === "/cli/"));
      const key = await aws("create-access-key", "--user-name", userName);
      assert.match(key.AccessKey.AccessKeyId, /^AKIA[A-Z0-9]{16}$/);
      await aws("update-access-key", "--user-name", userName, "--access-key-id", key.AccessKey.AccessKeyId, "--status", "Inactive");
      const keys = await aws("list-access-keys", "--user-name", userName);
      assert.equal(keys.AccessKeyMetadata[0].Status, "Inactive");
      await assert.rejects(aws("delete-user", "--user-name", userName), (error: Error & { stderr?: string }) => {
        assert.match(error.stderr ?? "", /DeleteConflict/);
        return true;
      });
      await aws("delete-access-key", "--user-name", userName, "--access-key-id", key.AccessKey.AccessKeyId);
      await aws("delete-user", "--user-name", userName);
      await assert.rejects(aws("get-user", "--user-name", userName), (error: Error & { stderr?: string }) => {
        assert.match(error.stderr ?? "", /NoSuchEntity/);
        return true;
      });
    });
  }
});
