import assert from "node:assert/strict";
import type { Worker } from "node:cluster";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { relayWorker } from "../../src/cluster/ipc.js";
import type { EdgeChannel } from "../../src/cluster/types.js";
import type { RollupTargets } from "../../src/metrics/edge-rollup.js";
import { createLogger } from "../../src/common/logger.js";

/** A fake forked worker that records what the primary sends and lets the test send replies. */
class FakeWorker extends EventEmitter {
  readonly sent: Array<{ kind: string; sequence?: number }> = [];
  isConnected(): boolean {
    return true;
  }
  send(message: { kind: string; sequence?: number }): boolean {
    this.sent.push(message);
    return true;
  }
}

const bus: EdgeChannel = {
  join: async (edgeId: string) => ({ edgeId, caughtUp: Promise.resolve(), leave: async () => {} }),
};

const rollups: RollupTargets = { addMinute: () => {}, prometheus: undefined, records: undefined, countDropped: () => {} };

/** Resolves with whether `promise` settled within the turns of the event loop already queued. */
async function settledNow(promise: Promise<void>): Promise<boolean> {
  let settled = false;
  void promise.then(() => (settled = true));
  await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

test("flush skips a starting worker", async () => {
  const worker = new FakeWorker();
  const relay = relayWorker(worker as unknown as Worker, bus, rollups, createLogger("silent"));
  assert.equal(await settledNow(relay.flushMetrics()), true);
  assert.deepEqual(worker.sent, []);
});

test("flush waits for a joined worker", async () => {
  const worker = new FakeWorker();
  const relay = relayWorker(worker as unknown as Worker, bus, rollups, createLogger("silent"));
  worker.emit("message", { kind: "bus.join", edgeId: "/1" });
  const flushed = relay.flushMetrics();
  assert.equal(await settledNow(flushed), false);
  const request = worker.sent.find((message) => message.kind === "metrics.flush");
  assert.ok(request !== undefined);
  worker.emit("message", { kind: "metrics.flushed", sequence: request.sequence });
  assert.equal(await settledNow(flushed), true);
});
