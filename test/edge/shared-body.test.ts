import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdir, readlink } from "node:fs/promises";
import { connect } from "node:net";
import { test, type TestContext } from "node:test";
import { sharedBodiesAvailable } from "../../src/edge/shared-body.js";
import { customSnapshot, request, startOrigin, startTestEdge } from "./helpers.js";

// Loopback's MSS: 65,535 bytes less the IP and TCP headers and the timestamp option.
const LOOPBACK_MSS = 65483;

const BODIES: Record<string, Buffer> = {
  "/small": randomBytes(1024),
  "/a": randomBytes(100 * 1024),
  "/b": randomBytes(300 * 1024 + 7),
  "/large": randomBytes(1024 * 1024),
  // With the head, a few hundred bytes over one segment, fewer than the head: the head leaves alone.
  "/over-by-head": randomBytes(LOOPBACK_MSS - 100),
  // With the head, 5,000 bytes over one segment: the head and 5,000 body bytes leave first.
  "/over-by-more": randomBytes(LOOPBACK_MSS + 5000),
};

async function setup(t: TestContext) {
  const origin = await startOrigin((req, res) => {
    const body = BODIES[req.url ?? ""];
    if (body === undefined) {
      res.writeHead(404, { "cache-control": "no-store" });
      res.end();
      return;
    }
    res.writeHead(200, { "cache-control": "max-age=600", "content-type": "application/octet-stream", etag: `"${req.url}"` });
    res.end(body);
  });
  t.after(() => origin.close());
  const fixture = await startTestEdge({ memoryCacheBytes: 64 * 1024 * 1024 });
  t.after(() => fixture.close());
  const snapshot = customSnapshot({ originPort: origin.port });
  await fixture.publishAndWait({ type: "distribution.updated", snapshot });
  const port = fixture.edge.httpPort;
  const host = snapshot.domainName;
  for (const path of Object.keys(BODIES)) {
    const filled = await request(port, host, path);
    assert.equal(filled.status, 200);
  }
  return { origin, port, host };
}

/** Counts the memfd mappings that this process has open for shared bodies. */
async function sharedBodyDescriptors(): Promise<number> {
  let count = 0;
  for (const name of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${name}`).catch(() => "");
    if (target.startsWith("/memfd:portico-body")) count++;
  }
  return count;
}

interface ParsedResponse {
  status: number;
  headers: Map<string, string>;
  body: Buffer;
}

/** Splits pipelined HTTP/1.1 responses framed by Content-Length. The last response must end the bytes. */
function parseResponses(bytes: Buffer, headOnly: ReadonlySet<number> = new Set()): ParsedResponse[] {
  const responses: ParsedResponse[] = [];
  let offset = 0;
  while (offset < bytes.length) {
    const headEnd = bytes.indexOf("\r\n\r\n", offset, "latin1");
    assert.ok(headEnd > 0, "a response head is cut short");
    const lines = bytes.toString("latin1", offset, headEnd).split("\r\n");
    const status = Number(lines[0]!.split(" ")[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    const length = headOnly.has(responses.length) ? 0 : Number(headers.get("content-length") ?? 0);
    const bodyStart = headEnd + 4;
    assert.ok(bodyStart + length <= bytes.length, `response ${responses.length} is cut short`);
    responses.push({ status, headers, body: bytes.subarray(bodyStart, bodyStart + length) });
    offset = bodyStart + length;
  }
  return responses;
}

/**
 * Sends raw requests on one connection and collects the bytes until it
 * closes. With `gapMs`, each request leaves on its own after that pause, and
 * the viewer reads nothing until the last one has left.
 */
function pipeline(port: number, requests: string[], gapMs = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks)));
    socket.on("connect", async () => {
      if (gapMs === 0) {
        socket.write(requests.join(""));
        return;
      }
      socket.pause();
      for (const request of requests) {
        socket.write(request);
        await new Promise((resume) => setTimeout(resume, gapMs));
      }
      socket.resume();
    });
  });
}

function get(host: string, path: string, last = false, method = "GET"): string {
  return `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\n${last ? "Connection: close\r\n" : ""}\r\n`;
}

test("shared hits arrive whole and in order", { skip: !sharedBodiesAvailable }, async (t) => {
  const { port, host } = await setup(t);
  // The bodies from 32 KiB to 300 KiB moved to shared memory, and the 1 KiB and 1 MiB ones did not.
  assert.equal(await sharedBodyDescriptors(), 4);
  const paths = ["/small", "/a", "/small", "/b", "/a", "/large", "/a", "/b", "/over-by-head", "/over-by-more", "/over-by-head"];
  const bytes = await pipeline(port, paths.map((path, i) => get(host, path, i === paths.length - 1)));
  const responses = parseResponses(bytes);
  assert.equal(responses.length, paths.length);
  responses.forEach((response, i) => {
    assert.equal(response.status, 200);
    assert.match(response.headers.get("x-cache") ?? "", /^Hit from/);
    assert.ok(response.body.equals(BODIES[paths[i]!]!), `body ${i} (${paths[i]}) differs`);
  });
});

test("late reader gets every byte", async (t) => {
  const { port, host } = await setup(t);
  // About 9 MiB of responses, each request on its own, while the viewer reads nothing: the
  // kernel takes part of a response, and the rest waits in the socket behind what it took.
  const paths: string[] = [];
  for (let i = 0; i < 24; i++) paths.push("/a", "/b", "/small");
  const bytes = await pipeline(port, paths.map((path, i) => get(host, path, i === paths.length - 1)), 5);
  const responses = parseResponses(bytes);
  assert.equal(responses.length, paths.length);
  responses.forEach((response, i) => assert.ok(response.body.equals(BODIES[paths[i]!]!), `body ${i} (${paths[i]}) differs`));
});

test("HEAD and ranges of a shared body", async (t) => {
  const { port, host } = await setup(t);
  const paths = ["/a", "/a", "/b"];
  const bytes = await pipeline(port, [
    get(host, "/a", false, "HEAD"),
    `GET /a HTTP/1.1\r\nHost: ${host}\r\nRange: bytes=1000-1999\r\n\r\n`,
    get(host, "/b", true),
  ]);
  const responses = parseResponses(bytes, new Set([0]));
  assert.equal(responses.length, paths.length);
  assert.equal(responses[0]!.status, 200);
  assert.equal(responses[0]!.headers.get("content-length"), String(BODIES["/a"]!.length));
  assert.equal(responses[1]!.status, 206);
  assert.ok(responses[1]!.body.equals(BODIES["/a"]!.subarray(1000, 2000)));
  assert.ok(responses[2]!.body.equals(BODIES["/b"]!));
});
