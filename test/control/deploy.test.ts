import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CreateDistributionCommand,
  CreateInvalidationCommand,
  CreateOriginAccessControlCommand,
  GetDistributionCommand,
  GetInvalidationCommand,
  ListInvalidationsCommand,
  UpdateOriginAccessControlCommand,
  waitUntilDistributionDeployed,
  waitUntilInvalidationCompleted,
} from "@aws-sdk/client-cloudfront";
import type { ClusterMessage } from "../../src/cluster/types.js";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import { silentLogger } from "../../src/common/logger.js";
import { s3DistributionConfig, startHarness } from "./harness.js";

const WAITER = { maxWaitTime: 20, minDelay: 1, maxDelay: 1 };

/** An edge whose handler blocks on a gate the test opens, recording what it applied. */
class GatedEdge {
  readonly applied: ClusterMessage[] = [];
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => {};

  close(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  open(): void {
    this.openGate();
  }

  readonly handler = async (message: ClusterMessage): Promise<void> => {
    await this.gate;
    this.applied.push(message);
  };
}

test("distribution deploys once the edge applies it", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const edge = new GatedEdge();
  const membership = await harness.bus.join("edge-a", edge.handler);
  t.after(() => membership.leave());

  const oac = await harness.client.send(
    new CreateOriginAccessControlCommand({
      OriginAccessControlConfig: {
        Name: "deploy-oac",
        SigningProtocol: "sigv4",
        SigningBehavior: "always",
        OriginAccessControlOriginType: "s3",
      },
    }),
  );
  const oacId = oac.OriginAccessControl!.Id!;

  edge.close();
  const created = await harness.client.send(
    new CreateDistributionCommand({
      DistributionConfig: s3DistributionConfig("deploy", {
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: "site-bucket",
              DomainName: "site-bucket.s3.amazonaws.com",
              S3OriginConfig: { OriginAccessIdentity: "" },
              OriginAccessControlId: oacId,
            },
          ],
        },
      }),
    }),
  );
  const id = created.Distribution!.Id!;
  assert.equal(created.Distribution?.Status, "InProgress");
  const pending = await harness.client.send(new GetDistributionCommand({ Id: id }));
  assert.equal(pending.Distribution?.Status, "InProgress", "the edge has not applied it yet");

  edge.open();
  const waited = await waitUntilDistributionDeployed({ client: harness.client, ...WAITER }, { Id: id });
  assert.equal(waited.state, "SUCCESS");
  const deployed = await harness.client.send(new GetDistributionCommand({ Id: id }));
  assert.equal(deployed.Distribution?.Status, "Deployed");

  const first = edge.applied.find((message) => message.type === "distribution.updated");
  assert.ok(first?.type === "distribution.updated");
  assert.equal(first.snapshot.id, id);
  assert.equal(first.snapshot.domainName, created.Distribution?.DomainName);
  assert.equal(first.snapshot.arn, created.Distribution?.ARN);
  assert.equal(first.snapshot.config.DefaultRootObject, "index.html");
  assert.equal(first.snapshot.originAccessControls[oacId]?.SigningBehavior, "always");

  // Updating the OAC republishes the distribution with the new signing settings.
  edge.close();
  await harness.client.send(
    new UpdateOriginAccessControlCommand({
      Id: oacId,
      IfMatch: oac.ETag,
      OriginAccessControlConfig: {
        Name: "deploy-oac",
        SigningProtocol: "sigv4",
        SigningBehavior: "no-override",
        OriginAccessControlOriginType: "s3",
      },
    }),
  );
  const republished = await harness.client.send(new GetDistributionCommand({ Id: id }));
  assert.equal(republished.Distribution?.Status, "InProgress");
  edge.open();
  await waitUntilDistributionDeployed({ client: harness.client, ...WAITER }, { Id: id });
  const latest = edge.applied.filter((message) => message.type === "distribution.updated").at(-1);
  assert.ok(latest?.type === "distribution.updated");
  assert.equal(latest.snapshot.version, first.snapshot.version + 1);
  assert.equal(latest.snapshot.originAccessControls[oacId]?.SigningBehavior, "no-override");
});

test("invalidation completes after every edge acknowledges", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const created = await harness.client.send(
    new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("invalidate") }),
  );
  const distributionId = created.Distribution!.Id!;
  const fast = new GatedEdge();
  const slow = new GatedEdge();
  const leaving = new GatedEdge();
  const fastMembership = await harness.bus.join("edge-fast", fast.handler);
  const slowMembership = await harness.bus.join("edge-slow", slow.handler);
  const leavingMembership = await harness.bus.join("edge-leaving", leaving.handler);
  t.after(async () => {
    await fastMembership.leave();
    await slowMembership.leave();
  });
  await waitUntilDistributionDeployed({ client: harness.client, ...WAITER }, { Id: distributionId });

  slow.close();
  leaving.close();
  const batch = { CallerReference: "deploy-1", Paths: { Quantity: 2, Items: ["/index.html", "/assets/*"] } };
  const invalidation = await harness.client.send(
    new CreateInvalidationCommand({ DistributionId: distributionId, InvalidationBatch: batch }),
  );
  const invalidationId = invalidation.Invalidation!.Id!;
  assert.equal(invalidation.$metadata.httpStatusCode, 201);
  assert.match(invalidationId, /^I[A-Z0-9]{13}$/);
  assert.equal(invalidation.Invalidation?.Status, "InProgress");
  assert.deepEqual(invalidation.Invalidation?.InvalidationBatch?.Paths?.Items, ["/index.html", "/assets/*"]);
  assert.ok(invalidation.Location?.endsWith(`/distribution/${distributionId}/invalidation/${invalidationId}`));

  const repeated = await harness.client.send(
    new CreateInvalidationCommand({ DistributionId: distributionId, InvalidationBatch: batch }),
  );
  assert.equal(repeated.Invalidation?.Id, invalidationId, "the same CallerReference returns the same invalidation");
  const conflicting = await harness.client
    .send(
      new CreateInvalidationCommand({
        DistributionId: distributionId,
        InvalidationBatch: { CallerReference: "deploy-1", Paths: { Quantity: 1, Items: ["/other"] } },
      }),
    )
    .then(() => undefined, (error: Error) => error);
  assert.equal(conflicting?.name, "InvalidationBatchAlreadyExists");

  const distribution = await harness.client.send(new GetDistributionCommand({ Id: distributionId }));
  assert.equal(distribution.Distribution?.InProgressInvalidationBatches, 1);

  // The fast edge has acknowledged; the slow one has not, so it is still in progress.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(fast.applied.some((message) => message.type === "invalidation.created"));
  const inProgress = await harness.client.send(
    new GetInvalidationCommand({ DistributionId: distributionId, Id: invalidationId }),
  );
  assert.equal(inProgress.Invalidation?.Status, "InProgress");

  // An edge that leaves stops counting; the slow edge still has to acknowledge.
  await leavingMembership.leave();
  const stillPending = await harness.client.send(
    new GetInvalidationCommand({ DistributionId: distributionId, Id: invalidationId }),
  );
  assert.equal(stillPending.Invalidation?.Status, "InProgress");

  slow.open();
  const waited = await waitUntilInvalidationCompleted(
    { client: harness.client, ...WAITER },
    { DistributionId: distributionId, Id: invalidationId },
  );
  assert.equal(waited.state, "SUCCESS");
  const listed = await harness.client.send(new ListInvalidationsCommand({ DistributionId: distributionId }));
  assert.equal(listed.InvalidationList?.Quantity, 1);
  assert.equal(listed.InvalidationList?.Items?.[0]?.Status, "Completed");
  const message = slow.applied.find((entry) => entry.type === "invalidation.created");
  assert.ok(message?.type === "invalidation.created");
  assert.deepEqual(message.paths, ["/index.html", "/assets/*"]);
});

test("invalidation paths are checked", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const created = await harness.client.send(
    new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("paths") }),
  );
  const distributionId = created.Distribution!.Id!;
  for (const [index, path] of ["no-slash", "/a*b", "/*/x", "/100%", "/bad%zzescape"].entries()) {
    const error = await harness.client
      .send(
        new CreateInvalidationCommand({
          DistributionId: distributionId,
          InvalidationBatch: { CallerReference: `bad-${index}`, Paths: { Quantity: 1, Items: [path] } },
        }),
      )
      .then(() => undefined, (failure: Error) => failure);
    assert.equal(error?.name, "InvalidArgument", path);
    assert.ok(error?.message.includes(path), path);
  }
  const unknown = await harness.client
    .send(
      new CreateInvalidationCommand({
        DistributionId: "ENOSUCHDIST000",
        InvalidationBatch: { CallerReference: "x", Paths: { Quantity: 1, Items: ["/*"] } },
      }),
    )
    .then(() => undefined, (failure: Error) => failure);
  assert.equal(unknown?.name, "NoSuchDistribution");
  const missing = await harness.client
    .send(new GetInvalidationCommand({ DistributionId: distributionId, Id: "INOSUCHINVAL00" }))
    .then(() => undefined, (failure: Error) => failure);
  assert.equal(missing?.name, "NoSuchInvalidation");
  const listed = await harness.client.send(new ListInvalidationsCommand({ DistributionId: distributionId }));
  assert.equal(listed.InvalidationList?.Quantity, 0, "no rejected invalidation was stored");
});

test("restart republishes stored distributions", async (t) => {
  const first = await startHarness();
  const dataDir = first.dataDir;
  const created = await first.client.send(
    new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("restart") }),
  );
  const id = created.Distribution!.Id!;
  const invalidation = await first.client.send(
    new CreateInvalidationCommand({
      DistributionId: id,
      InvalidationBatch: { CallerReference: "before-restart", Paths: { Quantity: 1, Items: ["/*"] } },
    }),
  );
  await first.stop();

  const bus = new EmbeddedBus(silentLogger());
  const second = await startHarness({ dataDir, bus });
  t.after(() => second.close());
  const edge = new GatedEdge();
  const membership = await bus.join("edge-after-restart", edge.handler);
  t.after(() => membership.leave());
  await waitUntilDistributionDeployed({ client: second.client, ...WAITER }, { Id: id });
  const snapshot = edge.applied.find((message) => message.type === "distribution.updated");
  assert.ok(snapshot?.type === "distribution.updated");
  assert.equal(snapshot.snapshot.id, id);
  assert.equal(snapshot.snapshot.domainName, created.Distribution?.DomainName);

  const fetched = await second.client.send(new GetDistributionCommand({ Id: id }));
  assert.equal(fetched.ETag, created.ETag);
  const stored = await second.client.send(
    new GetInvalidationCommand({ DistributionId: id, Id: invalidation.Invalidation!.Id }),
  );
  assert.equal(stored.Invalidation?.Status, "Completed");
});

test("invalidation reaches an edge that rejoins", async (t) => {
  const harness = await startHarness();
  t.after(() => harness.close());
  const created = await harness.client.send(new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("rejoin") }));
  const id = created.Distribution!.Id!;
  const edge = new GatedEdge();
  const first = await harness.bus.join("edge-rejoin", edge.handler);
  await waitUntilDistributionDeployed({ client: harness.client, ...WAITER }, { Id: id });

  // The edge leaves while the invalidation waits behind its gate, then an edge of the same id joins.
  edge.close();
  const invalidation = await harness.client.send(
    new CreateInvalidationCommand({
      DistributionId: id,
      InvalidationBatch: { CallerReference: "rejoin", Paths: { Quantity: 1, Items: ["/a/*"] } },
    }),
  );
  await first.leave();
  edge.open();
  const again = new GatedEdge();
  const second = await harness.bus.join("edge-rejoin", again.handler);
  t.after(() => second.leave());
  await second.caughtUp;
  assert.ok(again.applied.some((message) => message.type === "invalidation.created" && message.invalidationId === invalidation.Invalidation!.Id));
  await waitUntilInvalidationCompleted({ client: harness.client, ...WAITER }, { DistributionId: id, Id: invalidation.Invalidation!.Id });
});

test("restart redelivers invalidations in progress", async (t) => {
  const first = await startHarness();
  const dataDir = first.dataDir;
  const created = await first.client.send(new CreateDistributionCommand({ DistributionConfig: s3DistributionConfig("owed") }));
  const id = created.Distribution!.Id!;
  const edge = new GatedEdge();
  const member = await first.bus.join("edge-owed", edge.handler);
  await waitUntilDistributionDeployed({ client: first.client, ...WAITER }, { Id: id });
  edge.close();
  const invalidation = await first.client.send(
    new CreateInvalidationCommand({
      DistributionId: id,
      InvalidationBatch: { CallerReference: "owed", Paths: { Quantity: 1, Items: ["/b/*"] } },
    }),
  );
  const invalidationId = invalidation.Invalidation!.Id!;
  await first.stop();
  await member.leave();

  // After the restart the edge joins again under its id and receives the invalidation it owed.
  const bus = new EmbeddedBus(silentLogger());
  const second = await startHarness({ dataDir, bus });
  t.after(() => second.close());
  const rejoined = new GatedEdge();
  const membership = await bus.join("edge-owed", rejoined.handler);
  t.after(() => membership.leave());
  await membership.caughtUp;
  const owed = rejoined.applied.find((message) => message.type === "invalidation.created");
  assert.ok(owed?.type === "invalidation.created");
  assert.equal(owed.invalidationId, invalidationId);
  assert.deepEqual(owed.paths, ["/b/*"]);
  await waitUntilInvalidationCompleted({ client: second.client, ...WAITER }, { DistributionId: id, Id: invalidationId });
});
