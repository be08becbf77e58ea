import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CloudFrontServiceException,
  CreateDistributionCommand,
  CreateDistributionWithTagsCommand,
  DeleteDistributionCommand,
  GetDistributionCommand,
  GetDistributionConfigCommand,
  ListDistributionsCommand,
  ListTagsForResourceCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateDistributionCommand,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import { s3DistributionConfig, startHarness, ZONE, type Harness } from "./harness.js";

/** Runs `action` and returns the CloudFront error it must fail with. */
async function expectError(action: () => Promise<unknown>): Promise<CloudFrontServiceException> {
  try {
    await action();
  } catch (error) {
    assert.ok(error instanceof CloudFrontServiceException, `expected a CloudFront error, got ${String(error)}`);
    return error;
  }
  assert.fail("the request succeeded but was expected to fail");
}

describe("distributions", () => {
  let harness: Harness;
  before(async () => {
    harness = await startHarness();
  });
  after(async () => {
    await harness.close();
  });

  test("create returns assigned fields", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("create-fields") }),
    );
    const distribution = created.Distribution!;
    assert.equal(created.$metadata.httpStatusCode, 201);
    assert.match(distribution.Id!, /^E[A-Z0-9]{13}$/);
    assert.equal(distribution.ARN, `arn:aws:cloudfront::123456789012:distribution/${distribution.Id}`);
    assert.match(distribution.DomainName!, new RegExp(`^d[a-z0-9]{13}\\.${ZONE.replace(".", "\\.")}$`));
    assert.equal(distribution.Status, "Deployed", "no edge is live, so the config counts as deployed");
    assert.ok(created.ETag);
    assert.ok(created.Location?.endsWith(`/2020-05-31/distribution/${distribution.Id}`));
    assert.ok(distribution.LastModifiedTime instanceof Date);
    const config = distribution.DistributionConfig!;
    assert.equal(config.DefaultRootObject, "index.html");
    assert.equal(config.Origins?.Items?.[0]?.DomainName, "site-bucket.s3.amazonaws.com");
    assert.equal(config.DefaultCacheBehavior?.ViewerProtocolPolicy, "redirect-to-https");
    assert.equal(config.DefaultCacheBehavior?.DefaultTTL, 3600);
    assert.equal(config.DefaultCacheBehavior?.ForwardedValues?.Cookies?.Forward, "none");
    assert.equal(config.PriceClass, "PriceClass_All", "defaults are filled in");

    const fetched = await harness.client.send(new GetDistributionCommand({ Id: distribution.Id }));
    assert.equal(fetched.ETag, created.ETag);
    assert.equal(fetched.Distribution?.DomainName, distribution.DomainName);
    const configOnly = await harness.client.send(new GetDistributionConfigCommand({ Id: distribution.Id }));
    assert.equal(configOnly.ETag, created.ETag);
    assert.equal(configOnly.DistributionConfig?.CallerReference, "create-fields");
  });

  test("CallerReference makes create idempotent", async () => {
    const first = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("idempotent") }),
    );
    const again = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("idempotent") }),
    );
    assert.equal(again.Distribution?.Id, first.Distribution?.Id);
    assert.equal(again.ETag, first.ETag);

    const error = await expectError(() =>
      harness.client.send(
        new CreateDistributionCommand({
          DistributionConfig: s3DistributionConfig("idempotent", { Comment: "another config" }),
        }),
      ),
    );
    assert.equal(error.name, "DistributionAlreadyExists");
    assert.equal(error.$metadata.httpStatusCode, 409);
  });

  test("invalid configs are rejected with the field", async () => {
    const base = s3DistributionConfig("x");
    const cases: Array<{ name: string; config: DistributionConfig; code: string; mentions: string }> = [
      {
        name: "quantity mismatch",
        config: { ...base, Origins: { Quantity: 2, Items: base.Origins.Items } },
        code: "InconsistentQuantities",
        mentions: "Origins.Quantity",
      },
      {
        name: "TTL order",
        config: { ...base, DefaultCacheBehavior: { ...base.DefaultCacheBehavior, MinTTL: 100, DefaultTTL: 50 } },
        code: "InvalidTTLOrder",
        mentions: "MinTTL",
      },
      {
        name: "unknown target origin",
        config: { ...base, DefaultCacheBehavior: { ...base.DefaultCacheBehavior, TargetOriginId: "nowhere" } },
        code: "NoSuchOrigin",
        mentions: "nowhere",
      },
      {
        name: "duplicate path pattern",
        config: {
          ...base,
          CacheBehaviors: {
            Quantity: 2,
            Items: [
              { ...base.DefaultCacheBehavior, PathPattern: "/img/*" },
              { ...base.DefaultCacheBehavior, PathPattern: "/img/*" },
            ],
          },
        },
        code: "InvalidArgument",
        mentions: "PathPattern",
      },
      {
        name: "unknown origin access control",
        config: {
          ...base,
          Origins: { Quantity: 1, Items: [{ ...base.Origins.Items[0]!, OriginAccessControlId: "E0000000000000" }] },
        },
        code: "NoSuchOriginAccessControl",
        mentions: "E0000000000000",
      },
      {
        name: "S3 origin outside S3",
        config: {
          ...base,
          Origins: { Quantity: 1, Items: [{ ...base.Origins.Items[0]!, DomainName: "example.com" }] },
        },
        code: "InvalidOrigin",
        mentions: "example.com",
      },
      {
        name: "too many origins",
        config: {
          ...base,
          Origins: {
            Quantity: 101,
            Items: Array.from({ length: 101 }, (_, index) => ({
              ...base.Origins.Items[0]!,
              Id: `origin-${index}`,
              DomainName: `bucket-${index}.s3.amazonaws.com`,
            })),
          },
          DefaultCacheBehavior: { ...base.DefaultCacheBehavior, TargetOriginId: "origin-0" },
        },
        code: "TooManyOrigins",
        mentions: "100",
      },
      {
        name: "legacy behavior without ForwardedValues",
        config: { ...base, DefaultCacheBehavior: { ...base.DefaultCacheBehavior, ForwardedValues: undefined } },
        code: "InvalidArgument",
        mentions: "ForwardedValues",
      },
    ];
    for (const [index, entry] of cases.entries()) {
      const error = await expectError(() =>
        harness.client.send(
          new CreateDistributionCommand({ DistributionConfig: { ...entry.config, CallerReference: `invalid-${index}` } }),
        ),
      );
      assert.equal(error.name, entry.code, entry.name);
      assert.ok(error.message.includes(entry.mentions), `${entry.name}: '${error.message}' names ${entry.mentions}`);
    }
    const listed = await harness.client.send(new ListDistributionsCommand({}));
    const references = await Promise.all(
      (listed.DistributionList?.Items ?? []).map(async (item) => {
        const config = await harness.client.send(new GetDistributionConfigCommand({ Id: item.Id }));
        return config.DistributionConfig?.CallerReference ?? "";
      }),
    );
    assert.ok(references.every((reference) => !reference.startsWith("invalid-")), "no rejected config was stored");
  });

  test("alias used elsewhere is CNAMEAlreadyExists", async () => {
    await harness.client.send(
      new CreateDistributionCommand({
        DistributionConfig: s3DistributionConfig("alias-owner", { Aliases: { Quantity: 1, Items: ["cdn.example.com"] } }),
      }),
    );
    const error = await expectError(() =>
      harness.client.send(
        new CreateDistributionCommand({
          DistributionConfig: s3DistributionConfig("alias-thief", {
            Aliases: { Quantity: 1, Items: ["CDN.example.com"] },
          }),
        }),
      ),
    );
    assert.equal(error.name, "CNAMEAlreadyExists");
    assert.equal(error.$metadata.httpStatusCode, 409);
  });

  test("update requires the current ETag", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("update-etag") }),
    );
    const id = created.Distribution!.Id!;
    const changed = s3DistributionConfig("update-etag", { Comment: "changed" });

    const missing = await expectError(() =>
      harness.client.send(new UpdateDistributionCommand({ Id: id, DistributionConfig: changed })),
    );
    assert.equal(missing.name, "InvalidIfMatchVersion");

    const updated = await harness.client.send(
      new UpdateDistributionCommand({ Id: id, IfMatch: created.ETag, DistributionConfig: changed }),
    );
    assert.notEqual(updated.ETag, created.ETag);
    assert.equal(updated.Distribution?.DistributionConfig?.Comment, "changed");

    const stale = await expectError(() =>
      harness.client.send(
        new UpdateDistributionCommand({
          Id: id,
          IfMatch: created.ETag,
          DistributionConfig: s3DistributionConfig("update-etag", { Comment: "stale write" }),
        }),
      ),
    );
    assert.equal(stale.name, "PreconditionFailed");
    assert.equal(stale.$metadata.httpStatusCode, 412);
    const after = await harness.client.send(new GetDistributionConfigCommand({ Id: id }));
    assert.equal(after.DistributionConfig?.Comment, "changed", "the stale update changed nothing");
    assert.equal(after.ETag, updated.ETag);

    const renamed = await expectError(() =>
      harness.client.send(
        new UpdateDistributionCommand({
          Id: id,
          IfMatch: updated.ETag,
          DistributionConfig: s3DistributionConfig("another-reference"),
        }),
      ),
    );
    assert.equal(renamed.name, "IllegalUpdate");
  });

  test("concurrent updates with one ETag: one wins", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("race") }),
    );
    const id = created.Distribution!.Id!;
    const attempts = await Promise.allSettled(
      ["first", "second", "third", "fourth"].map((comment) =>
        harness.client.send(
          new UpdateDistributionCommand({
            Id: id,
            IfMatch: created.ETag,
            DistributionConfig: s3DistributionConfig("race", { Comment: comment }),
          }),
        ),
      ),
    );
    const winners = attempts.filter((attempt) => attempt.status === "fulfilled");
    const losers = attempts.filter((attempt) => attempt.status === "rejected");
    assert.equal(winners.length, 1);
    for (const loser of losers) assert.equal((loser.reason as Error).name, "PreconditionFailed");
    const stored = await harness.client.send(new GetDistributionConfigCommand({ Id: id }));
    assert.equal(stored.ETag, winners[0]!.value.ETag);
    assert.equal(stored.DistributionConfig?.Comment, winners[0]!.value.Distribution?.DistributionConfig?.Comment);
  });

  test("delete needs a disabled distribution", async () => {
    const created = await harness.client.send(
      new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("delete-me") }),
    );
    const id = created.Distribution!.Id!;
    const enabled = await expectError(() =>
      harness.client.send(new DeleteDistributionCommand({ Id: id, IfMatch: created.ETag })),
    );
    assert.equal(enabled.name, "DistributionNotDisabled");
    assert.equal(enabled.$metadata.httpStatusCode, 409);

    const disabled = await harness.client.send(
      new UpdateDistributionCommand({
        Id: id,
        IfMatch: created.ETag,
        DistributionConfig: s3DistributionConfig("delete-me", { Enabled: false }),
      }),
    );
    const stale = await expectError(() =>
      harness.client.send(new DeleteDistributionCommand({ Id: id, IfMatch: created.ETag })),
    );
    assert.equal(stale.name, "PreconditionFailed");
    const deleted = await harness.client.send(new DeleteDistributionCommand({ Id: id, IfMatch: disabled.ETag }));
    assert.equal(deleted.$metadata.httpStatusCode, 204);
    const gone = await expectError(() => harness.client.send(new GetDistributionCommand({ Id: id })));
    assert.equal(gone.name, "NoSuchDistribution");
    assert.equal(gone.$metadata.httpStatusCode, 404);
  });

  test("unknown id is NoSuchDistribution", async () => {
    const error = await expectError(() => harness.client.send(new GetDistributionCommand({ Id: "ENOSUCHDIST000" })));
    assert.equal(error.name, "NoSuchDistribution");
    assert.ok(error.message.includes("ENOSUCHDIST000"));
  });

  test("list pages with Marker and MaxItems", async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (let page = 0; page < 50; page++) {
      const listed = await harness.client.send(new ListDistributionsCommand({ MaxItems: 2, Marker: marker }));
      const list = listed.DistributionList!;
      assert.ok((list.Items ?? []).length <= 2);
      assert.equal(list.Quantity, (list.Items ?? []).length);
      seen.push(...(list.Items ?? []).map((item) => item.Id!));
      if (!list.IsTruncated) break;
      marker = list.NextMarker;
      assert.ok(marker);
    }
    const all = await harness.client.send(new ListDistributionsCommand({}));
    assert.deepEqual(seen, (all.DistributionList?.Items ?? []).map((item) => item.Id));
    assert.equal(new Set(seen).size, seen.length, "no distribution is listed twice");
    assert.ok(seen.length >= 5);
    const unknownMarker = await expectError(() =>
      harness.client.send(new ListDistributionsCommand({ Marker: "ENOSUCHDIST000" })),
    );
    assert.equal(unknownMarker.name, "InvalidArgument");
  });

  test("tags on create and by ARN", async () => {
    const created = await harness.client.send(
      new CreateDistributionWithTagsCommand({
        DistributionConfigWithTags: {
          DistributionConfig: s3DistributionConfig("tagged"),
          Tags: { Items: [{ Key: "team", Value: "web" }] },
        },
      }),
    );
    const arn = created.Distribution!.ARN!;
    await harness.client.send(new TagResourceCommand({ Resource: arn, Tags: { Items: [{ Key: "env", Value: "prod" }] } }));
    await harness.client.send(new UntagResourceCommand({ Resource: arn, TagKeys: { Items: ["team"] } }));
    const listed = await harness.client.send(new ListTagsForResourceCommand({ Resource: arn }));
    assert.deepEqual(listed.Tags?.Items, [{ Key: "env", Value: "prod" }]);
  });
});
