import assert from "node:assert/strict";
import { createServer, type Socket } from "node:net";
import { test } from "node:test";
import { OriginPools, sendPooled } from "../../src/origin/pools.js";
import { OriginError } from "../../src/origin/types.js";

test("request queued behind a full pool times out", async (t) => {
  // An origin that sends a response head and then one body byte every 100 ms, so each
  // response keeps its pool connection busy without ever tripping undici's body timeout.
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("data", () => {
      socket.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
      const timer = setInterval(() => socket.write("x"), 100);
      socket.once("close", () => clearInterval(timer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const pools = new OriginPools();
  t.after(() => pools.close());
  const origin = `http://127.0.0.1:${port}`;
  const pool = pools.get(origin, { connectTimeoutMs: 300, keepAliveTimeoutMs: 1_000 });
  const request = { method: "GET", target: "/held", headers: {}, body: undefined, readTimeoutMs: 500, connectTimeoutMs: 300, connectionAttempts: 1 };

  // The pool has 128 connections per origin: fill them all with responses that never end.
  const held = await Promise.all(Array.from({ length: 128 }, () => sendPooled(pool, origin, request)));
  t.after(() => {
    for (const response of held) response.body.destroy();
  });
  assert.equal(sockets.size, 128);

  const startedAt = performance.now();
  await assert.rejects(sendPooled(pool, origin, request), (error: unknown) => {
    assert.ok(error instanceof OriginError);
    assert.equal(error.kind, "timeout");
    return true;
  });
  const waitedMs = performance.now() - startedAt;
  assert.ok(waitedMs < 2_000, `the queued request waited ${Math.round(waitedMs)} ms`);
  assert.ok(waitedMs >= 700, `the queued request gave up after ${Math.round(waitedMs)} ms, before its deadline`);
});

test("upload longer than the read timeout gets its response", async (t) => {
  const { createServer: createHttpServer } = await import("node:http");
  const { PassThrough } = await import("node:stream");
  // The origin responds once it has the whole body, and after a delay when asked to.
  const server = createHttpServer((req, res) => {
    let received = 0;
    req.on("data", (chunk: Buffer) => (received += chunk.length));
    req.on("end", () => setTimeout(() => res.end(`received ${received}`), req.url === "/late" ? 550 : 0));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;
  const pools = new OriginPools();
  t.after(() => pools.close());
  const origin = `http://127.0.0.1:${port}`;
  const pool = pools.get(origin, { connectTimeoutMs: 300, keepAliveTimeoutMs: 1_000 });
  const upload = (target: string): Promise<{ status: number; text: string; ms: number }> => {
    // 12 chunks 100 ms apart: the upload takes 1.2 s, longer than the 300 + 400 ms timeouts.
    const body = new PassThrough();
    let sent = 0;
    const timer = setInterval(() => {
      body.write(Buffer.alloc(1000, 0x75));
      if (++sent === 12) {
        clearInterval(timer);
        body.end();
      }
    }, 100);
    t.after(() => clearInterval(timer));
    const startedAt = performance.now();
    const request = { method: "POST", target, headers: {}, body, readTimeoutMs: 400, connectTimeoutMs: 300, connectionAttempts: 1 };
    return sendPooled(pool, origin, request).then(async (response) => {
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      return { status: response.status, text: Buffer.concat(chunks).toString(), ms: performance.now() - startedAt };
    });
  };

  const answered = await upload("/upload");
  assert.equal(answered.status, 200);
  assert.equal(answered.text, "received 12000");
  assert.ok(answered.ms > 1_000, `the upload took ${answered.ms} ms`);

  // The wait for the response still times out, counted from the end of the upload, after the
  // read timeout alone (400 ms), since the connection exists by then.
  await assert.rejects(upload("/late"), (error: unknown) => error instanceof OriginError && error.kind === "timeout");
});
