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
