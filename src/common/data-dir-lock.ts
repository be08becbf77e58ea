import { open, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";

/** A held lock on a data folder; `release` removes it. */
export interface DataDirLock {
  path: string;
  release(): Promise<void>;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes `<dataDir>/portico.pid` with an exclusive create, so that a second
 * `portico up` on the same folder fails instead of sweeping the first one's
 * temporary files. A file left by a process that no longer runs is replaced.
 */
export async function lockDataDir(dataDir: string): Promise<DataDirLock> {
  const path = join(dataDir, "portico.pid");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, "wx", 0o644);
      await handle.writeFile(`${process.pid}\n`);
      await handle.sync();
      await handle.close();
      return {
        path,
        release: async () => {
          await unlink(path).catch(() => {});
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const owner = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isProcessAlive(owner)) {
      throw new Error(
        `data folder ${dataDir} is in use by process ${owner}; stop it or choose another --data-dir`,
      );
    }
    await unlink(path).catch(() => {});
  }
  throw new Error(`cannot lock data folder ${dataDir}: ${path} keeps reappearing`);
}

/** The file in a data folder that names the API endpoint of the Portico running on it. */
const ENDPOINT_FILE = "api-endpoint";

/**
 * Records the API endpoint of the Portico that holds the folder's lock, so
 * that commands given only `--data-dir` find the port it listens on. Returns
 * the function that removes the record.
 */
export async function recordEndpoint(dataDir: string, url: string): Promise<() => Promise<void>> {
  const path = join(dataDir, ENDPOINT_FILE);
  const staging = `${path}.${process.pid}`;
  await writeFile(staging, `${url}\n`, { mode: 0o644 });
  await rename(staging, path);
  return async () => {
    await unlink(path).catch(() => {});
  };
}

/** Returns the API endpoint that a running Portico recorded in `dataDir`, if any. */
export async function recordedEndpoint(dataDir: string): Promise<string | undefined> {
  const text = await readFile(join(dataDir, ENDPOINT_FILE), "utf8").catch(() => undefined);
  const url = text?.trim();
  return url === undefined || url === "" ? undefined : url;
}
