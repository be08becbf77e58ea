import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { test } from "node:test";
import { silentLogger } from "../../src/common/logger.js";
import { Http2ConnectionSet } from "../../src/edge/http2/server.js";
import { F, frame, headerBlock, PREFACE, RawHttp2Client, requestFields, T } from "./http2-raw.js";

test("stalled header block outlives the idle timeout", async (t) => {
  // Short limits, so the sweep (once a second) meets the idle deadline first.
  const connections = new Http2ConnectionSet(
    () => undefined,
    { maxHeaderListBytes: 32 * 1024, maxConcurrentStreams: 8, idleTimeoutMs: 200, headersTimeoutMs: 2_500, bodyIdleTimeoutMs: 10_000 },
    silentLogger(),
  );
  t.after(() => connections.drain(0));
  const server = createServer((socket) => connections.accept(socket, "http"));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());

  const client = await RawHttp2Client.connectPlain((server.address() as AddressInfo).port);
  t.after(() => client.socket.destroy());
  const block = headerBlock(requestFields("example.test", "/stalled"));
  // HEADERS without END_HEADERS opens a header block that the client never finishes.
  client.send(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0), frame(T.HEADERS, F.END_STREAM, 1, block.subarray(0, 2))]));
  const goaway = await client.waitFor((received) => received.type === T.GOAWAY, 6_000);
  assert.ok(goaway !== undefined);
  // PROTOCOL_ERROR (1) for the header timeout, where the idle sweep would send NO_ERROR (0).
  assert.equal(goaway.payload.readUInt32BE(4), 1);
  assert.match(goaway.payload.subarray(8).toString(), /header block timed out/);
});
