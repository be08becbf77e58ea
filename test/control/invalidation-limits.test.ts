import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateDistributionCommand,
  CreateInvalidationCommand,
  GetInvalidationCommand,
  waitUntilInvalidationCompleted,
} from "@aws-sdk/client-cloudfront";
import type { ClusterMessage } from "../../src/cluster/types.js";
import { errorName, s3DistributionConfig, startHarness } from "./harness.js";

test("in-progress wildcard and file limits", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const { client } = harness;

  // An edge that holds every invalidation until released keeps them InProgress.
  let release: () => void = () => {};
  const invalidationsHeld = new Promise<void>((resolve) => (release = resolve));
  const membership = await harness.bus.join("edge-holding", async (message: ClusterMessage) => {
    if (message.type === "invalidation.created") await invalidationsHeld;
  });
  t.after(() => membership.leave());
  t.after(() => release());

  const created = await client.send(new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("limits") }));
  const distributionId = created.Distribution!.Id!;
  const invalidate = (callerReference: string, paths: string[]) =>
    client.send(
      new CreateInvalidationCommand({
        DistributionId: distributionId,
        InvalidationBatch: { CallerReference: callerReference, Paths: { Quantity: paths.length, Items: paths } },
      }),
    );

  const wildcards = Array.from({ length: 15 }, (_, index) => `/section-${index}/*`);
  const first = await invalidate("wildcards", wildcards);
  assert.equal(first.Invalidation?.Status, "InProgress");
  assert.equal(await errorName(invalidate("one-more-wildcard", ["/other/*"])), "TooManyInvalidationsInProgress");

  // The file limit is independent of the wildcard limit.
  const files = Array.from({ length: 3000 }, (_, index) => `/file-${index}.html`);
  const fileBatch = await invalidate("files", files);
  assert.equal(fileBatch.Invalidation?.InvalidationBatch?.Paths?.Quantity, 3000);
  assert.equal(await errorName(invalidate("one-more-file", ["/extra.html"])), "TooManyInvalidationsInProgress");
  assert.equal(await errorName(invalidate("too-large", [...files, "/extra.html"])), "BatchTooLarge");

  // A URL-encoded path is accepted as sent.
  release();
  await waitUntilInvalidationCompleted(
    { client, maxWaitTime: 20, minDelay: 1, maxDelay: 1 },
    { DistributionId: distributionId, Id: first.Invalidation!.Id! },
  );
  const encoded = await invalidate("encoded", ["/caf%C3%A9/menu%20today.html"]);
  const stored = await client.send(new GetInvalidationCommand({ DistributionId: distributionId, Id: encoded.Invalidation!.Id! }));
  assert.deepEqual(stored.Invalidation?.InvalidationBatch?.Paths?.Items, ["/caf%C3%A9/menu%20today.html"]);
});
