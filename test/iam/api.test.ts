import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  DeleteAccessKeyCommand,
  DeleteUserCommand,
  GetUserCommand,
  ListAccessKeysCommand,
  ListUsersCommand,
  UpdateAccessKeyCommand,
  type IAMServiceException,
} from "@aws-sdk/client-iam";
import { fetch } from "undici";
import { startIamHarness, TEST_CREDENTIALS, type IamHarness } from "./harness.js";

/** Runs `action` and returns the IAM error it raised. */
async function iamError(action: () => Promise<unknown>): Promise<IAMServiceException> {
  try {
    await action();
  } catch (error) {
    return error as IAMServiceException;
  }
  assert.fail("expected the call to fail");
}

describe("IAM Query API", () => {
  let harness: IamHarness;
  before(async () => {
    harness = await startIamHarness();
  });
  after(() => harness.close());

  test("user lifecycle", async () => {
    const created = await harness.root.send(
      new CreateUserCommand({ UserName: "deploy-bot", Path: "/tools/", Tags: [{ Key: "team", Value: "web" }] }),
    );
    const user = created.User!;
    assert.equal(user.UserName, "deploy-bot");
    assert.equal(user.Path, "/tools/");
    assert.match(user.UserId!, /^AIDA[A-Z0-9]{17}$/);
    assert.equal(user.Arn, `arn:aws:iam::${TEST_CREDENTIALS.accountId}:user/tools/deploy-bot`);
    assert.ok(user.CreateDate instanceof Date);
    assert.ok(Math.abs(user.CreateDate.getTime() - Date.now()) < 60_000);
    assert.deepEqual(user.Tags, [{ Key: "team", Value: "web" }]);

    const fetched = await harness.root.send(new GetUserCommand({ UserName: "deploy-bot" }));
    assert.equal(fetched.User?.UserId, user.UserId);
    assert.deepEqual(fetched.User?.Tags, [{ Key: "team", Value: "web" }]);

    const listed = await harness.root.send(new ListUsersCommand({ PathPrefix: "/tools/" }));
    assert.deepEqual(listed.Users?.map((entry) => entry.UserName), ["deploy-bot"]);
    assert.equal(listed.IsTruncated, false);

    await harness.root.send(new DeleteUserCommand({ UserName: "deploy-bot" }));
    const missing = await iamError(() => harness.root.send(new GetUserCommand({ UserName: "deploy-bot" })));
    assert.equal(missing.name, "NoSuchEntityException");
    assert.equal(missing.$metadata.httpStatusCode, 404);
  });

  test("GetUser without a name describes the root", async () => {
    const result = await harness.root.send(new GetUserCommand({}));
    assert.equal(result.User?.UserId, TEST_CREDENTIALS.accountId);
    assert.equal(result.User?.Arn, `arn:aws:iam::${TEST_CREDENTIALS.accountId}:root`);
    assert.equal(result.User?.UserName, undefined);
  });

  test("user names are unique regardless of case", async () => {
    await harness.root.send(new CreateUserCommand({ UserName: "Casey" }));
    const duplicate = await iamError(() => harness.root.send(new CreateUserCommand({ UserName: "casey" })));
    assert.equal(duplicate.name, "EntityAlreadyExistsException");
    assert.equal(duplicate.$metadata.httpStatusCode, 409);
    const fetched = await harness.root.send(new GetUserCommand({ UserName: "CASEY" }));
    assert.equal(fetched.User?.UserName, "Casey");
    await harness.root.send(new DeleteUserCommand({ UserName: "casey" }));
  });

  test("invalid input is a ValidationError", async () => {
    const cases = [
      () => harness.root.send(new CreateUserCommand({ UserName: "has space" })),
      () => harness.root.send(new CreateUserCommand({ UserName: "x".repeat(65) })),
      () => harness.root.send(new CreateUserCommand({ UserName: "" })),
      () => harness.root.send(new CreateUserCommand({ UserName: "ok", Path: "no-slashes" })),
      () => harness.root.send(new ListUsersCommand({ MaxItems: 0 })),
      () => harness.root.send(new ListUsersCommand({ MaxItems: 1001 })),
      () => harness.root.send(new UpdateAccessKeyCommand({ UserName: "ok", AccessKeyId: "AKIA0000000000000000", Status: "Paused" as "Active" })),
      () => harness.root.send(new DeleteAccessKeyCommand({ UserName: "ok", AccessKeyId: "short" })),
      () =>
        harness.root.send(
          new CreateUserCommand({ UserName: "tagged", Tags: [{ Key: "a", Value: "1" }, { Key: "A", Value: "2" }] }),
        ),
    ];
    for (const [index, action] of cases.entries()) {
      const error = await iamError(action);
      assert.equal(error.name, "ValidationError", `case ${index}: ${error.message}`);
      assert.equal(error.$metadata.httpStatusCode, 400, `case ${index}`);
    }
    const users = await harness.root.send(new ListUsersCommand({}));
    assert.equal(users.Users?.some((user) => user.UserName === "ok" || user.UserName === "tagged"), false);
  });

  test("access key lifecycle and limits", async () => {
    await harness.root.send(new CreateUserCommand({ UserName: "keyholder" }));
    const first = (await harness.root.send(new CreateAccessKeyCommand({ UserName: "keyholder" }))).AccessKey!;
    assert.match(first.AccessKeyId!, /^AKIA[A-Z0-9]{16}$/);
    assert.equal(first.SecretAccessKey?.length, 40);
    assert.equal(first.Status, "Active");
    assert.equal(first.UserName, "keyholder");
    const second = (await harness.root.send(new CreateAccessKeyCommand({ UserName: "keyholder" }))).AccessKey!;
    assert.notEqual(second.AccessKeyId, first.AccessKeyId);
    assert.notEqual(second.SecretAccessKey, first.SecretAccessKey);

    const third = await iamError(() => harness.root.send(new CreateAccessKeyCommand({ UserName: "keyholder" })));
    assert.equal(third.name, "LimitExceededException");
    assert.equal(third.$metadata.httpStatusCode, 409);

    const conflict = await iamError(() => harness.root.send(new DeleteUserCommand({ UserName: "keyholder" })));
    assert.equal(conflict.name, "DeleteConflictException");
    assert.equal(conflict.$metadata.httpStatusCode, 409);

    await harness.root.send(
      new UpdateAccessKeyCommand({ UserName: "keyholder", AccessKeyId: first.AccessKeyId!, Status: "Inactive" }),
    );
    const listed = await harness.root.send(new ListAccessKeysCommand({ UserName: "keyholder" }));
    const byId = new Map(listed.AccessKeyMetadata?.map((key) => [key.AccessKeyId, key]));
    assert.equal(byId.size, 2);
    assert.equal(byId.get(first.AccessKeyId)?.Status, "Inactive");
    assert.equal(byId.get(second.AccessKeyId)?.Status, "Active");
    assert.equal(byId.get(first.AccessKeyId)?.UserName, "keyholder");
    assert.equal(JSON.stringify(listed).includes(first.SecretAccessKey!), false);

    const wrongUser = await iamError(() =>
      harness.root.send(new DeleteAccessKeyCommand({ UserName: "nobody", AccessKeyId: first.AccessKeyId! })),
    );
    assert.equal(wrongUser.name, "NoSuchEntityException");
    await harness.root.send(new CreateUserCommand({ UserName: "other" }));
    const notTheirs = await iamError(() =>
      harness.root.send(new DeleteAccessKeyCommand({ UserName: "other", AccessKeyId: first.AccessKeyId! })),
    );
    assert.equal(notTheirs.name, "NoSuchEntityException");
    await harness.root.send(new DeleteUserCommand({ UserName: "other" }));

    for (const key of [first, second]) {
      await harness.root.send(new DeleteAccessKeyCommand({ UserName: "keyholder", AccessKeyId: key.AccessKeyId! }));
    }
    const gone = await iamError(() =>
      harness.root.send(new DeleteAccessKeyCommand({ UserName: "keyholder", AccessKeyId: first.AccessKeyId! })),
    );
    assert.equal(gone.name, "NoSuchEntityException");
    await harness.root.send(new DeleteUserCommand({ UserName: "keyholder" }));
  });

  test("ListUsers pages with Marker", async () => {
    const names = Array.from({ length: 7 }, (_, index) => `pager-${index}`);
    for (const name of names) await harness.root.send(new CreateUserCommand({ UserName: name, Path: "/paging/" }));
    const seen: string[] = [];
    let marker: string | undefined;
    let pages = 0;
    do {
      const page = await harness.root.send(new ListUsersCommand({ PathPrefix: "/paging/", MaxItems: 3, Marker: marker }));
      pages++;
      seen.push(...(page.Users ?? []).map((user) => user.UserName!));
      marker = page.IsTruncated ? page.Marker : undefined;
      if (page.IsTruncated) assert.ok(page.Marker, "a truncated page carries a Marker");
    } while (marker !== undefined);
    assert.deepEqual(seen, names);
    assert.equal(pages, 3);
    for (const name of names) await harness.root.send(new DeleteUserCommand({ UserName: name }));
  });

  test("users may not call IAM", async () => {
    await harness.root.send(new CreateUserCommand({ UserName: "intruder" }));
    const key = (await harness.root.send(new CreateAccessKeyCommand({ UserName: "intruder" }))).AccessKey!;
    const client = harness.iamClient(key.AccessKeyId!, key.SecretAccessKey!);
    for (const action of [
      () => client.send(new ListUsersCommand({})),
      () => client.send(new CreateUserCommand({ UserName: "escalated" })),
      () => client.send(new CreateAccessKeyCommand({ UserName: "intruder" })),
    ]) {
      const denied = await iamError(action);
      assert.equal(denied.name, "AccessDenied");
      assert.equal(denied.$metadata.httpStatusCode, 403);
    }
    const users = await harness.root.send(new ListUsersCommand({}));
    assert.equal(users.Users?.some((user) => user.UserName === "escalated"), false);
  });

  test("unknown key is InvalidClientTokenId", async () => {
    const client = harness.iamClient("AKIAUNKNOWN000000000", "x".repeat(40));
    const error = await iamError(() => client.send(new ListUsersCommand({})));
    assert.equal(error.name, "InvalidClientTokenId");
    assert.equal(error.$metadata.httpStatusCode, 403);
    const wrongSecret = harness.iamClient(TEST_CREDENTIALS.root.accessKeyId, "y".repeat(40));
    const mismatch = await iamError(() => wrongSecret.send(new ListUsersCommand({})));
    assert.equal(mismatch.name, "SignatureDoesNotMatch");
  });

  test("Query errors use IAM's ErrorResponse", async () => {
    const { signedFetch } = await import("../helpers/signed-fetch.js");
    const target = {
      endpoint: harness.endpoint,
      accessKeyId: TEST_CREDENTIALS.root.accessKeyId,
      secretAccessKey: TEST_CREDENTIALS.root.secretAccessKey,
      httpPort: 0,
      httpsPort: 0,
      caCertificatePath: "",
    };
    const send = (body: string) =>
      signedFetch(target, {
        service: "iam" as "s3",
        method: "POST",
        path: "/",
        body,
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      });
    const unknown = await send("Action=FlyToTheMoon&Version=2010-05-08");
    assert.equal(unknown.status, 400);
    assert.match(unknown.body, /<ErrorResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/">/);
    assert.match(unknown.body, /<Type>Sender<\/Type><Code>InvalidAction<\/Code>/);
    assert.match(unknown.body, /<RequestId>[0-9A-F]{32}<\/RequestId>/);

    const unbuilt = await send("Action=AttachUserPolicy&Version=2010-05-08&UserName=a&PolicyArn=x");
    assert.equal(unbuilt.status, 501);
    assert.match(unbuilt.body, /<Code>NotImplemented<\/Code>/);
    assert.match(unbuilt.body, /<Type>Receiver<\/Type>/);

    const missing = await send("Action=CreateUser&Version=2010-05-08");
    assert.equal(missing.status, 400);
    assert.match(missing.body, /<Code>ValidationError<\/Code>/);

    const ok = await send("Action=ListUsers&Version=2010-05-08");
    assert.equal(ok.status, 200);
    assert.match(ok.body, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<ListUsersResponse xmlns="https:\/\/iam\.amazonaws\.com\/doc\/2010-05-08\/"><ListUsersResult>/);
    assert.match(ok.body, /<ResponseMetadata><RequestId>[0-9A-F]{32}<\/RequestId><\/ResponseMetadata><\/ListUsersResponse>$/);

    const unsigned = await fetch(`${harness.endpoint}/`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "Action=ListUsers&Version=2010-05-08",
    });
    assert.equal(unsigned.status, 403);
    await unsigned.text();
  });
});
