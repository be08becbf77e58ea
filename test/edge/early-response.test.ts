import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { allMethodsSnapshot, startTestEdge } from "./helpers.js";

/** The upload each viewer sends: far more than the socket buffers between the edge and the origin hold. */
const UPLOAD_BYTES = 20 * 1024 * 1024;
const PIECE = Buffer.alloc(64 * 1024, 0x61);

/**
 * Starts an origin that responds to an upload with `status` and `connection: close` once it has read
 * `readBytes` of the body (0: at once, before any), and then closes without reading the rest.
 * GET gets 200 "fine". Returns its port and the bytes of each body it read.
 */
async function startEarlyOrigin(t: TestContext, status: number, readBytes = 0) {
  const received: number[] = [];
  const server = createHttpServer((req, res) => {
    if (req.method === "GET") {
      res.end("fine");
      return;
    }
    let bytes = 0;
    const answer = (): void => {
      req.pause();
      received.push(bytes);
      const body = `origin answered ${status} after ${bytes} bytes\n`;
      res.writeHead(status, { connection: "close", "content-type": "text/plain", "content-length": body.length, "x-origin-answer": "early" });
      res.end(body);
    };
    if (readBytes === 0) {
      answer();
      return;
    }
    const onData = (chunk: Buffer): void => {
      bytes += chunk.length;
      if (bytes < readBytes) return;
      req.off("data", onData);
      answer();
    };
    req.on("data", onData);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as AddressInfo).port, received };
}

async function startEdgeFor(t: TestContext, originPort: number) {
  const fixture = await startTestEdge({});
  t.after(() => fixture.close());
  const snapshot = allMethodsSnapshot(originPort);
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  return { fixture, host: snapshot.domainName, ca: await readFile(fixture.edge.caCertificatePath) };
}

interface RawResponse {
  status: number;
  head: string;
  body: string;
  /** The edge ended the connection (a FIN) after the response. */
  endedByEdge: boolean;
  /** Body bytes the viewer wrote before the response arrived. */
  bytesSent: number;
}

/**
 * Sends an HTTP/1.1 PUT of UPLOAD_BYTES, with Content-Length or chunked, and stops sending once
 * the response's first bytes arrive. Resolves when the edge ends the connection, or after 10 s.
 */
function uploadHttp1(port: number, host: string, chunked: boolean): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    let answered = false;
    let endedByEdge = false;
    let bytesSent = 0;
    socket.on("data", (chunk: Buffer) => {
      answered = true;
      chunks.push(chunk);
    });
    socket.on("end", () => {
      endedByEdge = true;
      socket.end();
    });
    // Writes that race the edge's close may fail, and only the response is checked.
    socket.on("error", () => {});
    const timer = setTimeout(() => socket.destroy(), 10_000);
    socket.on("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const split = text.indexOf("\r\n\r\n");
      const status = /^HTTP\/1\.1 (\d{3}) /.exec(text);
      if (status === null || split < 0) {
        reject(new Error(`no response: ${JSON.stringify(text.slice(0, 200))}`));
        return;
      }
      resolve({ status: Number(status[1]), head: text.slice(0, split + 2), body: text.slice(split + 4), endedByEdge, bytesSent });
    });
    const framing = chunked ? "transfer-encoding: chunked" : `content-length: ${UPLOAD_BYTES}`;
    socket.write(`PUT /upload HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/octet-stream\r\n${framing}\r\n\r\n`);
    const chunkHead = Buffer.from(`${PIECE.length.toString(16)}\r\n`, "latin1");
    const chunkTail = Buffer.from("\r\n", "latin1");
    const pump = (): void => {
      while (!answered && !socket.destroyed && bytesSent < UPLOAD_BYTES) {
        bytesSent += PIECE.length;
        const piece = chunked ? Buffer.concat([chunkHead, PIECE, chunkTail]) : PIECE;
        const last = chunked && bytesSent >= UPLOAD_BYTES ? Buffer.from("0\r\n\r\n", "latin1") : undefined;
        const room = socket.write(last === undefined ? piece : Buffer.concat([piece, last]));
        if (!room) {
          socket.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
}

function assertRelayed(response: RawResponse, status: number): void {
  assert.equal(response.status, status, response.head);
  assert.match(response.head, /\r\nx-origin-answer: early\r\n/);
  assert.match(response.body, new RegExp(`^origin answered ${status} after \\d+ bytes\\n$`));
  // The rest of the upload was not read, so the connection cannot carry another request.
  assert.match(response.head, /\r\nconnection: close\r\n/);
  assert.ok(response.endedByEdge, "the edge did not end the connection after the response");
  assert.ok(response.bytesSent < UPLOAD_BYTES, `the viewer sent its whole upload (${response.bytesSent} bytes) before the response`);
}

test("early 413 reaches an HTTP/1.1 viewer", async (t) => {
  const origin = await startEarlyOrigin(t, 413);
  const { fixture, host } = await startEdgeFor(t, origin.port);
  // Whether the origin's reset overtakes its response depends on timing, so the upload is repeated.
  for (let attempt = 0; attempt < 3; attempt++) {
    assertRelayed(await uploadHttp1(fixture.edge.httpPort, host, false), 413);
  }
  assert.deepEqual(origin.received, [0, 0, 0]);
});

test("early 200 and 403 are relayed", async (t) => {
  for (const status of [200, 403]) {
    const origin = await startEarlyOrigin(t, status);
    const { fixture, host } = await startEdgeFor(t, origin.port);
    assertRelayed(await uploadHttp1(fixture.edge.httpPort, host, false), status);
  }
});

test("response after a partial read is relayed", async (t) => {
  const origin = await startEarlyOrigin(t, 413, 1024 * 1024);
  const { fixture, host } = await startEdgeFor(t, origin.port);
  const response = await uploadHttp1(fixture.edge.httpPort, host, false);
  assertRelayed(response, 413);
  assert.ok(origin.received[0]! >= 1024 * 1024, `the origin read ${origin.received[0]} bytes`);
});

test("chunked upload gets the early response", async (t) => {
  const origin = await startEarlyOrigin(t, 413);
  const { fixture, host } = await startEdgeFor(t, origin.port);
  assertRelayed(await uploadHttp1(fixture.edge.httpPort, host, true), 413);
  const partly = await startEarlyOrigin(t, 413, 512 * 1024);
  const second = await startEdgeFor(t, partly.port);
  assertRelayed(await uploadHttp1(second.fixture.edge.httpPort, second.host, true), 413);
});

test("reset without a response gives 502", async (t) => {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    let bytes = 0;
    socket.on("data", (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > 256 * 1024) socket.resetAndDestroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  const { fixture, host } = await startEdgeFor(t, (server.address() as AddressInfo).port);
  const response = await uploadHttp1(fixture.edge.httpPort, host, false);
  assert.equal(response.status, 502, response.head);
  assert.match(response.head, /\r\nconnection: close\r\n/);
});
