import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { PorticoTarget } from "../../examples/lib/portico-clients.js";

const REPO = join(import.meta.dirname, "..", "..");
const READY_TIMEOUT_MS = 60_000;

/** A `portico up` child process, with its parsed log lines. */
export interface PorticoProcess {
  child: ChildProcess;
  target: PorticoTarget;
  /** Every JSON log line written to standard output so far. */
  logs: Array<Record<string, unknown>>;
  /** The same lines as written, for checks that parsing would hide, such as a repeated key. */
  rawLogs: string[];
  /** Everything written to standard error so far. */
  stderr: () => string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Starts `portico up` from the sources on free ports, waits for its
 * "portico ready" log line, and returns where it listens.
 */
export async function startPorticoProcess(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<PorticoProcess> {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(REPO, "src", "cli", "main.ts"),
      "up",
      "--data-dir",
      dataDir,
      "--api-port",
      "0",
      "--http-port",
      "0",
      "--https-port",
      "0",
    ],
    {
      cwd: REPO,
      env: { ...process.env, PORTICO_ACCESS_KEY_ID: "", PORTICO_SECRET_ACCESS_KEY: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const logs: Array<Record<string, unknown>> = [];
  const rawLogs: string[] = [];
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));

  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`portico up did not become ready in ${READY_TIMEOUT_MS} ms:\n${stderr}`)),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: child.stdout! }).on("line", (line) => {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(entry);
      rawLogs.push(line);
      if (entry.msg === "portico ready") {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`portico up exited with ${code} before it was ready:\n${stderr}`));
    });
  });
  const entry = await ready;

  const stored = JSON.parse(await readFile(join(dataDir, "credentials.json"), "utf8")) as {
    root?: { accessKeyId: string; secretAccessKey: string };
  };
  const root = env.PORTICO_ACCESS_KEY_ID
    ? { accessKeyId: env.PORTICO_ACCESS_KEY_ID, secretAccessKey: env.PORTICO_SECRET_ACCESS_KEY ?? "" }
    : stored.root!;
  return {
    child,
    logs,
    rawLogs,
    stderr: () => stderr,
    target: {
      endpoint: String(entry.apiUrl),
      accessKeyId: root.accessKeyId,
      secretAccessKey: root.secretAccessKey,
      httpPort: Number(entry.httpPort),
      httpsPort: Number(entry.httpsPort),
      caCertificatePath: String(entry.caCertificatePath),
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode !== null) return child.exitCode;
      child.kill(signal);
      const [code] = (await once(child, "exit")) as [number | null];
      return code;
    },
  };
}
