import assert from "node:assert/strict";
import { test, type TestContext } from "node:test";
import { PeerClient, type PeerMessage, type SharedFill } from "../../src/cluster/peers.js";
import { silentLogger } from "../../src/common/logger.js";

function sharedFill(id: number): SharedFill {
  return {
    id,
    status: 200,
    headers: ["content-length", "100"],
    receivedAtMs: Date.now(),
    initialAgeSeconds: 0,
    ttlSeconds: 60,
    distributionId: "E1",
    invalidationPaths: ["/big.bin"],
    startedAtMs: Date.now(),
    path: "/cache/tmp/write-1",
    bodyOffset: 512,
    bodyBytes: 100,
    writtenBodyBytes: 40,
  };
}

/** Starts a worker's side of the cache sharing, with nothing to hand out, closed when the test ends. */
function startClient(t: TestContext): PeerClient {
  const client = new PeerClient(
    () => undefined,
    async () => undefined,
    async () => {},
    30_000,
    silentLogger(),
  );
  t.after(() => client.close());
  return client;
}

test("progress before follow is kept", (t) => {
  const client = startClient(t);
  // The primary's last report of write 7 arrives before the request that was handed it follows it.
  const report: PeerMessage = { kind: "peer.progress", key: "k", id: 7, progress: { writtenBodyBytes: 100, path: "/cache/objects/k", state: "stored" } };
  process.emit("message", report, undefined);

  const progress = client.follow(sharedFill(7));
  assert.equal(progress.state, "stored");
  assert.equal(progress.writtenBodyBytes, 100);
  assert.equal(progress.path, "/cache/objects/k");

  // A write followed from the start takes its reports as they come.
  const later = client.follow(sharedFill(8));
  assert.equal(later.state, "writing");
  assert.equal(later.writtenBodyBytes, 40);
  process.emit("message", { ...report, id: 8, progress: { ...report.progress, state: "failed", writtenBodyBytes: 60 } }, undefined);
  assert.equal(later.state, "failed");
  assert.equal(later.writtenBodyBytes, 60);
});

test("readers of one write share progress", (t) => {
  const client = startClient(t);
  // A range that found the write and a request granted it both read it in this worker.
  const first = client.follow(sharedFill(9));
  const second = client.follow(sharedFill(9));
  assert.equal(second, first);
  process.emit("message", { kind: "peer.progress", key: "k", id: 9, progress: { writtenBodyBytes: 100, path: "/cache/objects/k", state: "stored" } }, undefined);
  assert.equal(first.state, "stored");
});
