import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { connect as connectHttp2, constants as http2Constants } from "node:http2";
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { test, type TestContext } from "node:test";
import { allMethodsSnapshot, startTestEdge } from "./helpers.js";
import { F, frame, headerBlock, RawHttp2Client, requestFields, T } from "./http2-raw.js";

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

test("early response over HTTP/2 ends with NO_ERROR", async (t) => {
  const origin = await startEarlyOrigin(t, 413);
  const { fixture, host, ca } = await startEdgeFor(t, origin.port);
  const session = connectHttp2(`https://127.0.0.1:${fixture.edge.httpsPort}`, { ca, servername: host });
  t.after(() => session.destroy());
  session.on("error", () => {});
  let goaway = false;
  session.on("goaway", () => (goaway = true));

  for (let attempt = 0; attempt < 3; attempt++) {
    const upload = session.request({ ":method": "PUT", ":path": "/upload", ":authority": host, "content-length": String(UPLOAD_BYTES) });
    upload.on("error", () => {});
    let answered = false;
    const pump = (): void => {
      for (let sent = 0; !answered && !upload.destroyed && sent < UPLOAD_BYTES; sent += PIECE.length) {
        if (!upload.write(PIECE)) {
          upload.once("drain", pump);
          return;
        }
      }
    };
    const response = await new Promise<{ status: number; headers: Record<string, unknown>; body: string; rstCode: number | undefined }>(
      (resolve) => {
        let status = 0;
        let headers: Record<string, unknown> = {};
        const chunks: Buffer[] = [];
        upload.on("response", (fields) => {
          answered = true;
          status = Number(fields[":status"]);
          headers = fields;
        });
        upload.on("data", (chunk: Buffer) => chunks.push(chunk));
        upload.on("close", () => resolve({ status, headers, body: Buffer.concat(chunks).toString(), rstCode: upload.rstCode }));
        pump();
      },
    );
    assert.equal(response.status, 413);
    assert.equal(response.headers["x-origin-answer"], "early");
    assert.equal(response.body, "origin answered 413 after 0 bytes\n");
    assert.equal(response.rstCode, http2Constants.NGHTTP2_NO_ERROR);
  }

  // The connection is still in use after the resets.
  const next = session.request({ ":path": "/after", ":authority": host });
  const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
    let code = 0;
    const chunks: Buffer[] = [];
    next.on("response", (fields) => (code = Number(fields[":status"])));
    next.on("data", (chunk: Buffer) => chunks.push(chunk));
    next.on("end", () => resolve([code, Buffer.concat(chunks).toString()]));
    next.on("error", reject);
  });
  assert.equal(status, 200);
  assert.equal(body, "fine");
  assert.equal(goaway, false);
});

test("DATA after the NO_ERROR reset is dropped", async (t) => {
  const origin = await startEarlyOrigin(t, 413);
  const { fixture, host, ca } = await startEdgeFor(t, origin.port);
  const client = await RawHttp2Client.connect(fixture.edge.httpsPort, host, ca);
  t.after(() => client.close());

  const fields = requestFields(host, "/upload", [["content-length", String(UPLOAD_BYTES)]], "PUT");
  client.send(frame(T.HEADERS, F.END_HEADERS, 1, headerBlock(fields)));
  client.send(frame(T.DATA, 0, 1, Buffer.alloc(16 * 1024, 0x61)));
  const reset = await client.waitFor((f) => f.type === T.RST_STREAM && f.streamId === 1);
  assert.ok(reset !== undefined, "no RST_STREAM for the answered stream");
  assert.equal(reset.payload.readUInt32BE(0), 0, "the reset is not NO_ERROR");
  assert.equal(client.statusOf(1), 413);
  const resetAt = client.frames.indexOf(reset);
  const endAt = client.frames.findIndex((f) => f.streamId === 1 && (f.flags & F.END_STREAM) !== 0 && (f.type === T.DATA || f.type === T.HEADERS));
  assert.ok(endAt >= 0, "the response did not end its stream");
  assert.ok(endAt < resetAt, "RST_STREAM came before the response's END_STREAM");

  // 3 MiB more for the stream, past its 256 KiB window and past half the connection's 4 MiB,
  // then trailers that end it, as a client sends what it had in flight before the reset.
  const dataFrame = frame(T.DATA, 0, 1, Buffer.alloc(16 * 1024, 0x62));
  for (let i = 0; i < 192; i++) client.send(dataFrame);
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 1, headerBlock([["x-trailer", "1"]])));
  client.send(frame(T.PING, 0, 0, Buffer.from("12345678")));
  const pong = await client.waitFor((f) => f.type === T.PING && (f.flags & F.ACK) !== 0, 5000);
  assert.ok(pong !== undefined, "no PING ACK after the dropped DATA");
  const later = client.frames.slice(resetAt + 1);
  assert.equal(later.filter((f) => f.type === T.RST_STREAM).length, 0, "DATA after the reset drew another RST_STREAM");
  assert.equal(later.filter((f) => f.type === T.GOAWAY).length, 0, "DATA after the reset closed the connection");
  assert.ok(
    later.some((f) => f.type === T.WINDOW_UPDATE && f.streamId === 0),
    "the connection window was not returned for the dropped DATA",
  );
  assert.equal(fixture.metrics.floods.length, 0);

  // The connection serves a new stream.
  client.send(frame(T.HEADERS, F.END_HEADERS | F.END_STREAM, 3, headerBlock(requestFields(host, "/after"))));
  const answer = await client.waitFor((f) => f.type === T.DATA && f.streamId === 3 && (f.flags & F.END_STREAM) !== 0);
  assert.ok(answer !== undefined, "no response on the next stream");
  assert.equal(client.statusOf(3), 200);
});
