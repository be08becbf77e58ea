import assert from "node:assert/strict";
import { test } from "node:test";
import { sleep } from "./helpers.js";
import { setupDistribution } from "./semantics-setup.js";

test("concurrent misses stay within the in-flight budget", async (t) => {
  const body = Buffer.alloc(6000, 1);
  const { origin, get } = await setupDistribution(
    t,
    async (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60", "content-length": String(body.length) });
      res.write(body.subarray(0, 100));
      await sleep(300);
      res.end(body.subarray(100));
    },
    {},
    () => {},
    // 64 KiB of memory: objects up to 8 KiB, 16 KiB buffered at once.
    { memoryCacheBytes: 64 * 1024 },
  );
  const responses = await Promise.all(Array.from({ length: 6 }, (_, i) => get(`/k${i}`)));
  const statuses = responses.map((response) => String(response.headers["cache-status"]));
  for (const response of responses) assert.ok(response.body.equals(body));
  const stored = statuses.filter((value) => value.includes("; stored"));
  const refused = statuses.filter((value) => value.includes("detail=buffers-full"));
  assert.equal(stored.length, 2, statuses.join("\n"));
  assert.equal(refused.length, 4, statuses.join("\n"));
  assert.equal(origin.hits(), 6);

  // With the buffers free again, the next miss is stored.
  const refusedIndex = statuses.findIndex((value) => value.includes("detail=buffers-full"));
  const later = await get(`/k${refusedIndex}`);
  assert.match(String(later.headers["cache-status"]), /; stored/);
});

test("read-ahead of an oversized chunked body stays reserved until sent", async (t) => {
  // 64 MiB of memory: objects up to 8 MiB, 16 MiB buffered at once. Each body
  // is 9 MiB without Content-Length, so 8 MiB are read ahead before the edge
  // finds the object too large, and a viewer that reads nothing keeps most
  // of them waiting in the edge.
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const { fixture, snapshot } = await setupDistribution(
    t,
    async (_req, res) => {
      res.writeHead(200, { "cache-control": "max-age=60" });
      for (let i = 0; i < 9; i++) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
      }
      res.end();
    },
    {},
    () => {},
    { memoryCacheBytes: 64 * 1024 * 1024 },
  );
  const { request: send } = await import("node:http");
  const held: Array<import("node:http").ClientRequest> = [];
  const pausedHead = (path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const outgoing = send({ host: "127.0.0.1", port: fixture.edge.httpPort, path, headers: { host: snapshot.domainName } }, (response) => {
        response.pause();
        resolve(String(response.headers["cache-status"]));
      });
      outgoing.on("error", () => {});
      outgoing.on("response", () => {});
      outgoing.end();
      held.push(outgoing);
      setTimeout(() => reject(new Error(`no response head for ${path}`)), 10_000).unref();
    });
  const first = await pausedHead("/big-1");
  const second = await pausedHead("/big-2");
  assert.match(first, /detail=too-large/);
  assert.match(second, /detail=too-large/);
  // Both read-aheads are still held for their paused viewers, so a third finds the budget full.
  const third = await pausedHead("/big-3");
  assert.match(third, /detail=buffers-full/);

  // Once those viewers leave, their reservations return.
  for (const outgoing of held.splice(0)) outgoing.destroy();
  await sleep(300);
  const fourth = await pausedHead("/big-4");
  assert.match(fourth, /detail=too-large/);
  for (const outgoing of held.splice(0)) outgoing.destroy();
});
