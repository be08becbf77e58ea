import assert from "node:assert/strict";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { OriginPools } from "../../src/origin/pools.js";
import { sendPooled } from "../../src/origin/pools.js";
import { sleep } from "./helpers.js";

// undici 7 asserts that its HTTP/1.1 parser is not paused when an origin
// closes the connection, and the AssertionError from the socket's 'end'
// handler ends the process. Its parser pauses when nothing reads a body whose
// buffer is full, so each case here sends a whole response and closes at once,
// then reads the body only after a wait.

/** Starts a raw TCP origin that writes `head` and `body` for every connection's first request, then closes it. */
async function startClosingOrigin(t: TestContext, head: string, body: Buffer): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.once("data", () => {
      socket.write(head);
      socket.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return (server.address() as AddressInfo).port;
}

async function readAll(body: NodeJS.ReadableStream): Promise<number> {
  let bytes = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) bytes += chunk.length;
  return bytes;
}

const cases = [
  { name: "64 KiB with Content-Length", bytes: 64 * 1024, framing: "length" },
  { name: "256 KiB with Content-Length", bytes: 256 * 1024, framing: "length" },
  { name: "3 MiB with Content-Length", bytes: 3 * 1024 * 1024, framing: "length" },
  { name: "256 KiB chunked", bytes: 256 * 1024, framing: "chunked" },
  { name: "256 KiB ended by the close", bytes: 256 * 1024, framing: "close" },
] as const;

for (const { name, bytes, framing } of cases) {
  test(`closing origin, late reader: ${name}`, async (t) => {
    const payload = Buffer.alloc(bytes, 0x61);
    let head = "HTTP/1.1 200 OK\r\nconnection: close\r\n";
    let body = payload;
    if (framing === "length") head += `content-length: ${bytes}\r\n`;
    if (framing === "chunked") {
      head += "transfer-encoding: chunked\r\n";
      body = Buffer.concat([Buffer.from(`${bytes.toString(16)}\r\n`), payload, Buffer.from("\r\n0\r\n\r\n")]);
    }
    const port = await startClosingOrigin(t, `${head}\r\n`, body);
    const pools = new OriginPools();
    t.after(() => pools.close());
    const origin = `http://127.0.0.1:${port}`;
    const pool = pools.get(origin, { connectTimeoutMs: 2_000, keepAliveTimeoutMs: 1_000 });
    const response = await sendPooled(pool, origin, {
      method: "GET",
      target: "/object",
      headers: {},
      body: undefined,
      readTimeoutMs: 5_000,
      connectTimeoutMs: 2_000,
      connectionAttempts: 1,
    });
    assert.equal(response.status, 200);
    // The whole response and the close arrive while nothing reads the body.
    await sleep(300);
    assert.equal(await readAll(response.body), bytes);
  });
}
