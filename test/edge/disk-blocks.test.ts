import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test, type TestContext } from "node:test";
import { DiskTier, type DiskMetadata } from "../../src/cache/disk.js";
import { BLOCK_BYTES, encodeHead, headLength } from "../../src/cache/disk-format.js";
import { VerifiedBodyReader } from "../../src/cache/disk-read.js";
import { silentLogger } from "../../src/common/logger.js";

// Three whole blocks and part of a fourth, so ranges can start, end and cross inside blocks.
const BODY = randomBytes(3 * BLOCK_BYTES + 12_345);

function metadataFor(key: string, bodyBytes: number): DiskMetadata {
  const now = Date.now();
  return {
    key,
    primaryKey: key,
    varyNames: [],
    distributionId: "E1",
    invalidationPaths: [`/${key}`],
    status: 200,
    originHeaders: ["content-type", "application/octet-stream"],
    responseAtMs: now,
    initialAgeSeconds: 0,
    ttlSeconds: 60,
    staleAtMs: now + 60_000,
    staleWhileRevalidateSeconds: 0,
    staleIfErrorSeconds: null,
    mustRevalidate: false,
    bodyBytes,
    storedAtMs: now,
  };
}

async function tierWithEntry(t: TestContext, write: "whole" | "streamed"): Promise<{ tier: DiskTier; directory: string; path: string }> {
  const directory = await mkdtemp(join(tmpdir(), "portico-blocks-"));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const tier = await DiskTier.open({ directory, capacityBytes: 16 * 1024 * 1024, log: silentLogger() });
  if (write === "whole") {
    assert.ok(await tier.write(metadataFor("big", BODY.length), BODY));
  } else {
    const tee = tier.tee(metadataFor("big", BODY.length));
    assert.ok(tee !== undefined);
    tee.tap.resume();
    // Chunks of an odd size, so block edges fall inside chunks.
    for (let offset = 0; offset < BODY.length; offset += 7_001) tee.tap.write(BODY.subarray(offset, offset + 7_001));
    tee.tap.end();
    assert.ok(await tee.stored);
  }
  const shard = (await readdir(join(directory, "objects")))[0]!;
  const name = (await readdir(join(directory, "objects", shard)))[0]!;
  return { tier, directory, path: join(directory, "objects", shard, name) };
}

/** Reads a range through the verifier; returns the bytes that arrived and whether it failed. */
async function readRange(tier: DiskTier, start: number, end: number): Promise<{ bytes: Buffer; failed: boolean; corruptCalls: number }> {
  const target = await tier.streamTarget("big");
  assert.ok(target !== undefined);
  let corruptCalls = 0;
  const reader = new VerifiedBodyReader(target, start, end, () => corruptCalls++);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of reader) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks), failed: false, corruptCalls };
  } catch {
    return { bytes: Buffer.concat(chunks), failed: true, corruptCalls };
  }
}

async function bodyOffsetOf(path: string): Promise<number> {
  return headLength(await readFile(path))!;
}

for (const write of ["whole", "streamed"] as const) {
  test(`ranges of a ${write} write read back exactly`, async (t) => {
    const { tier } = await tierWithEntry(t, write);
    const last = BODY.length - 1;
    const ranges: Array<[number, number]> = [
      [0, last],
      [0, 0],
      [last, last],
      [BLOCK_BYTES - 1, BLOCK_BYTES],
      [BLOCK_BYTES, 2 * BLOCK_BYTES - 1],
      [100, 3 * BLOCK_BYTES + 5],
      [3 * BLOCK_BYTES, last],
    ];
    for (const [start, end] of ranges) {
      const read = await readRange(tier, start, end);
      assert.equal(read.failed, false, `${start}-${end}`);
      assert.ok(read.bytes.equals(BODY.subarray(start, end + 1)), `${start}-${end}`);
    }
    assert.ok((await tier.read("big"))!.body.equals(BODY));
  });
}

test("corrupt block fails only covering ranges", async (t) => {
  const { tier, path } = await tierWithEntry(t, "streamed");
  const bodyOffset = await bodyOffsetOf(path);
  const file = await readFile(path);
  // One flipped byte in the third block.
  const flipped = 2 * BLOCK_BYTES + 500;
  file[bodyOffset + flipped] = file[bodyOffset + flipped]! ^ 0x01;
  await writeFile(path, file);

  const before = await readRange(tier, 10, BLOCK_BYTES + 10);
  assert.equal(before.failed, false);
  assert.ok(before.bytes.equals(BODY.subarray(10, BLOCK_BYTES + 11)));
  assert.equal(before.corruptCalls, 0);

  // The range inside the corrupt block gets nothing; the range across it gets the clean blocks before it only.
  const inside = await readRange(tier, flipped - 5, flipped + 5);
  assert.equal(inside.failed, true);
  assert.equal(inside.bytes.length, 0);
  assert.equal(inside.corruptCalls, 1);
  const across = await readRange(tier, BLOCK_BYTES + 7, 3 * BLOCK_BYTES + 7);
  assert.equal(across.failed, true);
  assert.ok(across.bytes.equals(BODY.subarray(BLOCK_BYTES + 7, 2 * BLOCK_BYTES)));

  // The whole-file check catches it too.
  assert.equal(await tier.read("big"), undefined);
});

test("bad checksum or cut file fails", async (t) => {
  const { tier, path } = await tierWithEntry(t, "whole");
  const bodyOffset = await bodyOffsetOf(path);
  const file = await readFile(path);
  const table = bodyOffset + BODY.length;
  // The checksum of the second block.
  const damaged = Buffer.from(file);
  damaged[table + 4 + 3] = damaged[table + 4 + 3]! ^ 0x80;
  await writeFile(path, damaged);
  assert.equal((await readRange(tier, BLOCK_BYTES, BLOCK_BYTES + 1)).failed, true);
  assert.equal((await readRange(tier, 0, 1)).failed, false);

  // A file cut inside the last block has lost its checksums and the head's digest.
  await writeFile(path, file.subarray(0, bodyOffset + BODY.length - 100));
  assert.equal(await tier.streamTarget("big"), undefined);
  assert.equal(tier.has("big"), false);
});

test("corrupt head is not streamed", async (t) => {
  const { tier, path } = await tierWithEntry(t, "whole");
  const file = await readFile(path);
  // The status code inside the metadata JSON: still valid JSON, but not what was written.
  const at = file.indexOf('"status":200');
  assert.ok(at > 0);
  file.write('"status":206', at, "latin1");
  await writeFile(path, file);
  assert.equal(await tier.streamTarget("big"), undefined);
  assert.equal(tier.has("big"), false);
});

test("earlier format dropped on open", async (t) => {
  const directory = await mkdtemp(join(tmpdir(), "portico-blocks-"));
  t.after(() => rm(directory, { recursive: true, force: true }));
  const tier = await DiskTier.open({ directory, capacityBytes: 1024 * 1024, log: silentLogger() });
  assert.ok(await tier.write(metadataFor("kept", 5), Buffer.from("alpha")));
  // The same entry as the format before block checksums wrote it: magic version 1, one trailing digest.
  const head = encodeHead(metadataFor("old", 4));
  head[7] = 1;
  const shard = (await readdir(join(directory, "objects")))[0]!;
  await writeFile(join(directory, "objects", shard, "0".repeat(64)), Buffer.concat([head, Buffer.from("beta"), randomBytes(32)]));

  const reopened = await DiskTier.open({ directory, capacityBytes: 1024 * 1024, log: silentLogger() });
  assert.equal(reopened.entryCount, 1);
  assert.equal((await reopened.read("kept"))!.body.toString(), "alpha");
  assert.equal((await readdir(join(directory, "objects", shard))).length, 1);
});

test("unread bodies of removed files fail quietly", async () => {
  const { openDiskBody } = await import("../../src/edge/disk-flow.js");
  const { fillBody } = await import("../../src/edge/fill-follow.js");
  const { WriteProgress } = await import("../../src/cache/disk.js");
  const missing = join(tmpdir(), `portico-missing-${randomBytes(6).toString("hex")}`);
  const metadata = { key: "gone", distributionId: "E1" } as DiskMetadata;
  const context = { log: silentLogger(), disk: undefined } as unknown as Parameters<typeof openDiskBody>[0];
  const failed = new WriteProgress(missing, 0, 100);
  failed.end(false);
  // A HEAD or a 304 destroys its body unread, while the body still opens a file that is gone.
  const bodies = [
    openDiskBody(context, { metadata, path: missing, bodyOffset: 0, bodyBytes: 100, inode: 1 }, undefined),
    fillBody(failed),
  ];
  for (const body of bodies) body.destroy();
  // An 'error' event without a listener would end this process before the timer fires.
  await new Promise((resolve) => setTimeout(resolve, 50));
  for (const body of bodies) assert.equal(body.destroyed, true);
  // A reader that consumes such a body still gets the error.
  const read = openDiskBody(context, { metadata, path: missing, bodyOffset: 0, bodyBytes: 100, inode: 1 }, undefined);
  await assert.rejects(async () => {
    for await (const _chunk of read) assert.fail("a missing file has no bytes");
  }, /ENOENT/);
});
