import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { lockDataDir } from "../../src/common/data-dir-lock.js";

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "portico-lock-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test("lock is exclusive while held", async (t) => {
  const dir = await tempDir(t);
  const lock = await lockDataDir(dir);
  assert.equal((await readFile(lock.path, "utf8")).trim(), String(process.pid));

  // A live process other than this one owns the lock file.
  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"]);
  t.after(() => holder.kill());
  await lock.release();
  await writeFile(join(dir, "portico.pid"), `${holder.pid}\n`);
  await assert.rejects(lockDataDir(dir), /in use by process \d+/);

  holder.kill();
  await once(holder, "exit");
  const again = await lockDataDir(dir);
  assert.equal((await readFile(again.path, "utf8")).trim(), String(process.pid));
  await again.release();
});

test("lock replaces a stale pid file", async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, "portico.pid"), "999999999\n");
  const lock = await lockDataDir(dir);
  assert.equal((await readFile(lock.path, "utf8")).trim(), String(process.pid));
  await lock.release();
});
