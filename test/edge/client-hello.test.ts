import assert from "node:assert/strict";
import { createServer, type AddressInfo } from "node:net";
import { test } from "node:test";
import { connect } from "node:tls";
import { scanClientHello } from "../../src/edge/client-hello.js";

/** Captures the first bytes a real TLS client sends: its ClientHello. */
async function captureClientHello(servername: string | undefined): Promise<Buffer> {
  let resolveHello: (hello: Buffer) => void = () => {};
  const hello = new Promise<Buffer>((resolve) => (resolveHello = resolve));
  const server = createServer((socket) => {
    socket.once("data", (data: Buffer) => {
      resolveHello(data);
      socket.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = connect({ port: (server.address() as AddressInfo).port, host: "127.0.0.1", ...(servername === undefined ? {} : { servername }) });
  client.on("error", () => {});
  const data = await hello;
  client.destroy();
  server.close();
  return data;
}

/** Splits the handshake bytes of a one-record ClientHello into two records. */
function inTwoRecords(hello: Buffer, firstLength: number): Buffer {
  const body = hello.subarray(5);
  const record = (payload: Buffer) => Buffer.concat([Buffer.from([22, 3, 1, payload.length >> 8, payload.length & 0xff]), payload]);
  return Buffer.concat([record(body.subarray(0, firstLength)), record(body.subarray(firstLength))]);
}

test("server name read once whole", async () => {
  const hello = await captureClientHello("Cdn.Example.Test");
  assert.deepEqual(scanClientHello(hello), { kind: "hello", serverName: "cdn.example.test" });
  for (const cut of [0, 1, 4, 5, 9, 43, hello.length - 1]) {
    assert.deepEqual(scanClientHello(hello.subarray(0, cut)), { kind: "incomplete" }, `cut at ${cut}`);
  }
  // Handshake bytes spread over two records, even inside the handshake header.
  for (const firstLength of [2, 100]) {
    assert.deepEqual(scanClientHello(inTwoRecords(hello, firstLength)), { kind: "hello", serverName: "cdn.example.test" });
    assert.deepEqual(scanClientHello(inTwoRecords(hello, firstLength).subarray(0, hello.length)), { kind: "incomplete" });
  }
});

test("no server name, and non-TLS bytes", async () => {
  // Node.js sends no SNI when connecting to an IP address.
  const hello = await captureClientHello(undefined);
  assert.deepEqual(scanClientHello(hello), { kind: "hello", serverName: undefined });
  assert.deepEqual(scanClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n")), { kind: "other" });
  assert.deepEqual(scanClientHello(Buffer.from([22, 3, 1, 0, 0])), { kind: "other" });
  // A handshake that is not a ClientHello (a ServerHello, type 2).
  const serverHello = Buffer.from(hello);
  serverHello[5] = 2;
  assert.deepEqual(scanClientHello(serverHello), { kind: "other" });
  // A ClientHello that claims more than 64 KiB is rejected.
  const huge = Buffer.from(hello);
  huge.writeUIntBE(70_000, 6, 3);
  assert.deepEqual(scanClientHello(huge), { kind: "oversized" });
  // A ClientHello whose extensions run past its end is malformed.
  const truncated = Buffer.from(hello);
  truncated.writeUIntBE(hello.length - 9 - 20, 6, 3);
  truncated.writeUInt16BE(hello.length - 5 - 20, 3);
  assert.deepEqual(scanClientHello(truncated.subarray(0, hello.length - 20)), { kind: "other" });
});
