import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CreateAccessKeyCommand, CreateUserCommand, DeleteAccessKeyCommand, UpdateAccessKeyCommand } from "@aws-sdk/client-iam";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  PutBucketPolicyCommand,
  PutObjectCommand,
  type S3Client,
  type S3ServiceException,
} from "@aws-sdk/client-s3";
import { openIam } from "../../src/iam/index.js";
import { silentLogger } from "../../src/common/logger.js";
import { startIamHarness, TEST_CREDENTIALS, type IamHarness } from "./harness.js";

const ACCOUNT = TEST_CREDENTIALS.accountId;

async function s3Error(action: () => Promise<unknown>): Promise<S3ServiceException> {
  try {
    await action();
  } catch (error) {
    return error as S3ServiceException;
  }
  assert.fail("expected the request to fail");
}

function policy(effect: "Allow" | "Deny", principal: string, actions: string[], resource: string): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: effect, Principal: { AWS: principal }, Action: actions, Resource: resource }],
  });
}

describe("S3 access of IAM users", () => {
  let harness: IamHarness;
  let rootS3: S3Client;
  const users = new Map<string, { accessKeyId: string; secretAccessKey: string; client: S3Client }>();

  async function addUser(name: string): Promise<{ accessKeyId: string; secretAccessKey: string; client: S3Client }> {
    await harness.root.send(new CreateUserCommand({ UserName: name }));
    const key = (await harness.root.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!;
    const entry = {
      accessKeyId: key.AccessKeyId!,
      secretAccessKey: key.SecretAccessKey!,
      client: harness.s3Client(key.AccessKeyId!, key.SecretAccessKey!),
    };
    users.set(name, entry);
    return entry;
  }

  before(async () => {
    harness = await startIamHarness();
    rootS3 = harness.s3Client(TEST_CREDENTIALS.root.accessKeyId, TEST_CREDENTIALS.root.secretAccessKey);
    await rootS3.send(new CreateBucketCommand({ Bucket: "root-bucket" }));
    await rootS3.send(new PutObjectCommand({ Bucket: "root-bucket", Key: "page.html", Body: "root content" }));
    await addUser("alice");
    await addUser("bob");
  });
  after(() => harness.close());

  test("user denied on another's bucket", async () => {
    const alice = users.get("alice")!.client;
    const denied = await s3Error(() => alice.send(new GetObjectCommand({ Bucket: "root-bucket", Key: "page.html" })));
    assert.equal(denied.name, "AccessDenied");
    assert.equal(denied.$metadata.httpStatusCode, 403);
    const write = await s3Error(() => alice.send(new PutObjectCommand({ Bucket: "root-bucket", Key: "x", Body: "x" })));
    assert.equal(write.name, "AccessDenied");
    const policyWrite = await s3Error(() =>
      alice.send(new PutBucketPolicyCommand({ Bucket: "root-bucket", Policy: policy("Allow", "*", ["s3:*"], "arn:aws:s3:::root-bucket/*") })),
    );
    assert.equal(policyWrite.name, "AccessDenied");
  });

  test("policy naming the user's ARN allows it", async () => {
    await rootS3.send(
      new PutBucketPolicyCommand({
        Bucket: "root-bucket",
        Policy: policy("Allow", `arn:aws:iam::${ACCOUNT}:user/alice`, ["s3:GetObject"], "arn:aws:s3:::root-bucket/*"),
      }),
    );
    const alice = users.get("alice")!.client;
    const object = await alice.send(new GetObjectCommand({ Bucket: "root-bucket", Key: "page.html" }));
    assert.equal(await object.Body?.transformToString(), "root content");
    // The policy grants reads only, and only to alice.
    const write = await s3Error(() => alice.send(new PutObjectCommand({ Bucket: "root-bucket", Key: "x", Body: "x" })));
    assert.equal(write.name, "AccessDenied");
    const bob = users.get("bob")!.client;
    const other = await s3Error(() => bob.send(new GetObjectCommand({ Bucket: "root-bucket", Key: "page.html" })));
    assert.equal(other.name, "AccessDenied");
  });

  test("account principal Allow does not reach users", async () => {
    // Naming the account delegates to it; a user would also need an identity-based policy, which Portico lacks.
    await rootS3.send(
      new PutBucketPolicyCommand({
        Bucket: "root-bucket",
        Policy: policy("Allow", `arn:aws:iam::${ACCOUNT}:root`, ["s3:GetObject"], "arn:aws:s3:::root-bucket/*"),
      }),
    );
    const bob = users.get("bob")!.client;
    const denied = await s3Error(() => bob.send(new GetObjectCommand({ Bucket: "root-bucket", Key: "page.html" })));
    assert.equal(denied.name, "AccessDenied");
    const root = await rootS3.send(new GetObjectCommand({ Bucket: "root-bucket", Key: "page.html" }));
    assert.equal(await root.Body?.transformToString(), "root content");
  });

  test("user owns the bucket it creates", async () => {
    const bob = users.get("bob")!.client;
    await bob.send(new CreateBucketCommand({ Bucket: "bob-bucket" }));
    await bob.send(new PutObjectCommand({ Bucket: "bob-bucket", Key: "notes.txt", Body: "bob's" }));
    const object = await bob.send(new GetObjectCommand({ Bucket: "bob-bucket", Key: "notes.txt" }));
    assert.equal(await object.Body?.transformToString(), "bob's");
    await bob.send(
      new PutBucketPolicyCommand({
        Bucket: "bob-bucket",
        Policy: policy("Allow", `arn:aws:iam::${ACCOUNT}:user/alice`, ["s3:GetObject"], "arn:aws:s3:::bob-bucket/*"),
      }),
    );

    const taken = await s3Error(() => users.get("alice")!.client.send(new CreateBucketCommand({ Bucket: "bob-bucket" })));
    assert.equal(taken.name, "BucketAlreadyExists");
    assert.equal(taken.$metadata.httpStatusCode, 409);
    const again = await s3Error(() => bob.send(new CreateBucketCommand({ Bucket: "bob-bucket" })));
    assert.equal(again.name, "BucketAlreadyOwnedByYou");

    const listed = await bob.send(new ListBucketsCommand({}));
    assert.deepEqual(listed.Buckets?.map((bucket) => bucket.Name), ["bob-bucket"]);
    const rootListed = await rootS3.send(new ListBucketsCommand({}));
    assert.deepEqual(rootListed.Buckets?.map((bucket) => bucket.Name).sort(), ["bob-bucket", "root-bucket"]);

    const alice = users.get("alice")!.client;
    const shared = await alice.send(new GetObjectCommand({ Bucket: "bob-bucket", Key: "notes.txt" }));
    assert.equal(await shared.Body?.transformToString(), "bob's");
    const aliceWrite = await s3Error(() => alice.send(new PutObjectCommand({ Bucket: "bob-bucket", Key: "y", Body: "y" })));
    assert.equal(aliceWrite.name, "AccessDenied");
    // The root keeps full access to a user's bucket.
    const root = await rootS3.send(new GetObjectCommand({ Bucket: "bob-bucket", Key: "notes.txt" }));
    assert.equal(await root.Body?.transformToString(), "bob's");
  });

  test("explicit Deny wins over ownership", async () => {
    const bob = users.get("bob")!.client;
    await bob.send(new CreateBucketCommand({ Bucket: "bob-locked" }));
    await bob.send(new PutObjectCommand({ Bucket: "bob-locked", Key: "k", Body: "v" }));
    await bob.send(
      new PutBucketPolicyCommand({
        Bucket: "bob-locked",
        Policy: policy("Deny", ACCOUNT, ["s3:GetObject"], "arn:aws:s3:::bob-locked/*"),
      }),
    );
    const denied = await s3Error(() => bob.send(new GetObjectCommand({ Bucket: "bob-locked", Key: "k" })));
    assert.equal(denied.name, "AccessDenied");
    // The owner may still replace the policy that locks it out.
    await bob.send(
      new PutBucketPolicyCommand({
        Bucket: "bob-locked",
        Policy: policy("Deny", `arn:aws:iam::${ACCOUNT}:user/alice`, ["s3:GetObject"], "arn:aws:s3:::bob-locked/*"),
      }),
    );
    const allowed = await bob.send(new GetObjectCommand({ Bucket: "bob-locked", Key: "k" }));
    assert.equal(await allowed.Body?.transformToString(), "v");
  });

  test("re-created bucket is not inherited", async () => {
    const carol = await addUser("carol");
    await carol.client.send(new CreateBucketCommand({ Bucket: "carol-temp" }));
    await carol.client.send(new DeleteBucketCommand({ Bucket: "carol-temp" }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    await rootS3.send(new CreateBucketCommand({ Bucket: "carol-temp" }));
    const denied = await s3Error(() => carol.client.send(new PutObjectCommand({ Bucket: "carol-temp", Key: "a", Body: "a" })));
    assert.equal(denied.name, "AccessDenied");
  });

  test("deactivated key fails at once", async () => {
    const dave = await addUser("dave");
    await dave.client.send(new CreateBucketCommand({ Bucket: "dave-bucket" }));
    await harness.root.send(new UpdateAccessKeyCommand({ UserName: "dave", AccessKeyId: dave.accessKeyId, Status: "Inactive" }));
    const inactive = await s3Error(() => dave.client.send(new ListBucketsCommand({})));
    assert.equal(inactive.name, "InvalidAccessKeyId");
    assert.equal(inactive.$metadata.httpStatusCode, 403);
    await harness.root.send(new UpdateAccessKeyCommand({ UserName: "dave", AccessKeyId: dave.accessKeyId, Status: "Active" }));
    const back = await dave.client.send(new ListBucketsCommand({}));
    assert.deepEqual(back.Buckets?.map((bucket) => bucket.Name), ["dave-bucket"]);
    await harness.root.send(new DeleteAccessKeyCommand({ UserName: "dave", AccessKeyId: dave.accessKeyId }));
    const deleted = await s3Error(() => dave.client.send(new ListBucketsCommand({})));
    assert.equal(deleted.name, "InvalidAccessKeyId");
  });

  test("change from another connection seen at once", async () => {
    const erin = await addUser("erin");
    await erin.client.send(new ListBucketsCommand({}));
    // A second connection to the same database, as the CLI in another process opens.
    const other = await openIam({ dataDir: harness.dataDir, accountId: ACCOUNT, masterKey: undefined, log: silentLogger() });
    try {
      other.store.updateAccessKey(erin.accessKeyId, "erin", "Inactive");
      const inactive = await s3Error(() => erin.client.send(new ListBucketsCommand({})));
      assert.equal(inactive.name, "InvalidAccessKeyId");
      other.store.updateAccessKey(erin.accessKeyId, "erin", "Active");
      await erin.client.send(new ListBucketsCommand({}));
      other.store.deleteAccessKey(erin.accessKeyId, undefined);
      const deleted = await s3Error(() => erin.client.send(new ListBucketsCommand({})));
      assert.equal(deleted.name, "InvalidAccessKeyId");

      // A key created by another connection works on its first request.
      const created = other.store.createAccessKey("erin", Date.now());
      const fresh = harness.s3Client(created.accessKeyId, created.secretAccessKey);
      const listed = await fresh.send(new ListBucketsCommand({}));
      assert.deepEqual(listed.Buckets ?? [], []);
    } finally {
      other.close();
    }
  });

  test("secrets never reach the log", () => {
    const log = harness.logText();
    assert.ok(log.includes("access key created"), "the log records key creation");
    assert.ok(users.size >= 4);
    for (const [name, { accessKeyId, secretAccessKey }] of users) {
      assert.ok(log.includes(accessKeyId), `the log names ${name}'s key id`);
      assert.equal(log.includes(secretAccessKey), false, `${name}'s secret is in the log`);
    }
  });
});
