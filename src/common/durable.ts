import { randomBytes } from "node:crypto";
import { open, rename, mkdir, unlink } from "node:fs/promises";
import { dirname, join, basename } from "node:path";

/** Flushes a directory entry so that a rename or create inside it survives a crash. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes a whole file durably: temporary file in the same folder, fsync,
 * rename over the target, fsync of the folder. Readers see the old content
 * or the new one, never a partial file.
 */
export async function writeFileDurably(
  path: string,
  data: string | Uint8Array,
  mode = 0o644,
): Promise<void> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true });
  const temporaryPath = join(folder, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const handle = await open(temporaryPath, "wx", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close();
    await unlink(temporaryPath).catch(() => {});
    throw error;
  }
  await handle.close();
  await rename(temporaryPath, path);
  await fsyncDirectory(folder);
}
