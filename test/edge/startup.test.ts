import assert from "node:assert/strict";
import { test } from "node:test";
import { EmbeddedBus } from "../../src/cluster/embedded.js";
import type { ClusterMessage, EdgeChannel } from "../../src/cluster/types.js";
import { silentLogger } from "../../src/common/logger.js";
import { customSnapshot, request, sleep, startOrigin, startTestEdge } from "./helpers.js";

test("bus replay settles caughtUp", async () => {
  const bus = new EmbeddedBus(silentLogger());
  const empty = await bus.join("edge-empty", async () => {});
  await empty.caughtUp;

  await bus.publish({ type: "distribution.updated", snapshot: customSnapshot({ originPort: 1 }) });
  await bus.publish({ type: "distribution.updated", snapshot: { ...customSnapshot({ originPort: 2 }), id: "E2SECONDDIST" } });
  let openGate = (): void => {};
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const applied: ClusterMessage[] = [];
  const member = await bus.join("edge-gated", async (message) => {
    await gate;
    applied.push(message);
  });
  let caughtUp = false;
  void member.caughtUp.then(() => (caughtUp = true));
  await sleep(50);
  assert.equal(caughtUp, false, "the replay has not been applied yet");

  openGate();
  await member.caughtUp;
  assert.equal(applied.length, 2);
});

test("edge loads distributions before listening", async (t) => {
  const origin = await startOrigin((_req, res) => {
    res.writeHead(200, { "cache-control": "max-age=60" });
    res.end("loaded");
  });
  t.after(() => origin.close());

  const bus = new EmbeddedBus(silentLogger());
  const snapshot = customSnapshot({ originPort: origin.port });
  await bus.publish({ type: "distribution.updated", snapshot });
  // Applying each message takes a while, as loading certificates or a slow disk can.
  const slowChannel: EdgeChannel = {
    join: (edgeId, handler) =>
      bus.join(edgeId, async (message) => {
        await sleep(300);
        await handler(message);
      }),
  };
  const fixture = await startTestEdge({ bus, channel: slowChannel });
  t.after(() => fixture.close());

  const response = await request(fixture.edge.httpPort, snapshot.domainName, "/first.txt");
  assert.equal(response.status, 200);
  assert.equal(response.body.toString(), "loaded");
});
