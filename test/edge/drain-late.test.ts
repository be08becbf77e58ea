import assert from "node:assert/strict";
import { createConnection, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { silentLogger } from "../../src/common/logger.js";
import type { RequestListener } from "../../src/edge/http1/connection.js";
import { DEFAULT_HTTP1_OPTIONS, Http1ConnectionSet } from "../../src/edge/http1/server.js";
import { Http2ConnectionSet, http2LimitsOf } from "../../src/edge/http2/server.js";
import { F, frame, PREFACE, RawHttp2Client, T } from "./http2-raw.js";

// Connections that a front end takes over after its drain began, as a TLS handshake that
// completes during shutdown does, are drained too instead of staying open.

const listener = (): undefined => undefined;

const answering: RequestListener = (_request, response) => {
  response.send(200, ["content-type", "text/plain", "content-length", "2"], Buffer.from("ok"));
  return undefined;
};

/** Waits until a connection set is empty, for at most 2 s, and returns its size. */
async function emptied(connections: { size: number }): Promise<number> {
  for (let waited = 0; connections.size > 0 && waited < 2_000; waited += 10) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return connections.size;
}

/** Listens on a loopback port and hands every accepted socket to `accept`. */
async function handOver(t: TestContext, accept: (socket: Socket) => void): Promise<number> {
  const server: Server = createServer(accept);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test("HTTP/2 connection after drain gets GOAWAY", async (t) => {
  const connections = new Http2ConnectionSet(listener, http2LimitsOf(DEFAULT_HTTP1_OPTIONS), silentLogger());
  await connections.drain(1_000);
  const port = await handOver(t, (socket) => connections.accept(socket, "http"));

  const client = await RawHttp2Client.connectPlain(port);
  t.after(() => client.socket.destroy());
  client.send(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
  const goaway = await client.waitFor((received) => received.type === T.GOAWAY);
  assert.ok(goaway !== undefined);
  assert.equal(goaway.payload.readUInt32BE(4), 0);
  assert.equal(await emptied(connections), 0);
  assert.ok(client.frames.some((received) => received.type === T.SETTINGS && (received.flags & F.ACK) === 0));
});

/** Drains an HTTP/1.1 connection set first, then connects a client to it and collects what it receives. */
async function connectAfterDrain(t: TestContext, requestListener: RequestListener) {
  const connections = new Http1ConnectionSet(requestListener, DEFAULT_HTTP1_OPTIONS, silentLogger());
  await connections.drain();
  const port = await handOver(t, (socket) => connections.accept(socket, "http"));
  const socket = createConnection(port, "127.0.0.1");
  t.after(() => socket.destroy());
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  return { connections, socket, received };
}

test("HTTP/1.1 connection after drain is closed", async (t) => {
  const { connections, socket, received } = await connectAfterDrain(t, listener);
  // Without the drain, the idle connection would stay open for its keep-alive timeout (5 s).
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 3_000);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  assert.equal(closed, true);
  assert.equal(Buffer.concat(received).length, 0);
  assert.equal(await emptied(connections), 0);
});

test("request after drain is answered", async (t) => {
  const { connections, socket, received } = await connectAfterDrain(t, answering);
  // A client that sent its request right after connecting, as the drain began.
  socket.write("GET /late HTTP/1.1\r\nHost: example.test\r\n\r\n");
  await new Promise((resolve) => socket.once("close", resolve));
  const response = Buffer.concat(received).toString("latin1");
  assert.match(response, /^HTTP\/1\.1 200 /);
  assert.match(response, /\r\nconnection: close\r\n/i);
  assert.match(response, /\r\n\r\nok$/);
  assert.equal(await emptied(connections), 0);
});
