// Measures the resident memory of `portico up` (the primary and each edge worker) through
// bounded load phases: filling the memory tier past its budget, cache hits over keep-alive
// connections, large and chunked misses, slow and stalled viewers, and HTTP/2. It starts its
// own origin and Portico on 127.0.0.1 and samples VmRSS and VmHWM of every Portico process
// every 100 ms. It prints one table per phase and writes the samples to a JSON file under /tmp.
// On exit, also on Ctrl-C, it stops every process it started.
//
//   npm run build && node --import tsx bench/edge/memory.ts
//
// Environment (default): MEMORY_CACHE_MB (64), EDGE_WORKERS (2), PHASE_SECONDS (30, the
// longest phase; the others are shorter), SLOW_CONNECTIONS (200, per slow-viewer phase),
// PHASES (all; a comma-separated list of ids such as `d5,e2`, idle and settle always run),
// SETTLE_SECONDS (5, the unloaded phase at the end),
// OUT (/tmp/portico-memory-<time>.json). wrk drives the hit phase when it is on the PATH,
// undici otherwise.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import * as http2 from "node:http2";
import { connect as connectTcp, createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as connectTls } from "node:tls";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { randomBytes } from "node:crypto";
import { CloudFrontClient, CreateDistributionCommand, GetDistributionCommand } from "@aws-sdk/client-cloudfront";
import { Pool } from "undici";

const MiB = 1024 * 1024;
const KiB = 1024;
const HOST = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Origin: GET /obj/<name>?size=<bytes> with Content-Length, /chunked/<name>?size=<bytes> without.

/** Bytes of the repeating body pattern. A body is a window into it that starts at an offset derived from the name. */
const PATTERN_BYTES = 1 * MiB;
const ORIGIN_CHUNK_BYTES = 64 * KiB;
const MAX_OBJECT_BYTES = 1024 * MiB;

function runOrigin(): void {
  const pattern = Buffer.allocUnsafe(PATTERN_BYTES + ORIGIN_CHUNK_BYTES);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 131 + (i >>> 11)) & 0xff;

  const server = createHttpServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://origin.invalid");
    const match = /^\/(obj|chunked)\/([A-Za-z0-9_.-]+)$/.exec(url.pathname);
    const size = Number(url.searchParams.get("size"));
    if (match === null || !Number.isSafeInteger(size) || size < 0 || size > MAX_OBJECT_BYTES) {
      response.writeHead(404, { "content-type": "text/plain" }).end("not found: expected /obj/<name>?size=<bytes>\n");
      return;
    }
    const chunked = match[1] === "chunked";
    const headers: Record<string, string> = {
      "content-type": "application/octet-stream",
      "cache-control": "max-age=3600",
    };
    if (!chunked) headers["content-length"] = String(size);
    response.writeHead(200, headers);
    if (request.method === "HEAD") {
      response.end();
      return;
    }
    let start = 0;
    for (const char of match[2]!) start = (start * 31 + char.charCodeAt(0)) % PATTERN_BYTES;
    let sent = 0;
    const writeMore = (): void => {
      while (sent < size && !response.destroyed) {
        const length = Math.min(ORIGIN_CHUNK_BYTES, size - sent);
        const position = (start + sent) % PATTERN_BYTES;
        sent += length;
        if (!response.write(pattern.subarray(position, position + length))) {
          response.once("drain", writeMore);
          return;
        }
      }
      if (!response.destroyed) response.end();
    };
    writeMore();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, HOST, () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
  process.on("SIGTERM", () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

// ---------------------------------------------------------------------------------------------
// Configuration, mirroring how src/edge/index.ts and src/edge/workers.ts size the memory tier.

interface Config {
  memoryCacheMiB: number;
  edgeWorkers: number;
  phaseSeconds: number;
  slowConnections: number;
  /** Length of the last phase, without load, that shows what memory is given back. */
  settleSeconds: number;
  /** Ids of the phases to run (PHASES, comma-separated), or undefined for all of them. */
  phases: string[] | undefined;
  outPath: string;
  /** One worker's share of the memory tier budget. */
  workerShareBytes: number;
  /** Largest body one worker caches: an eighth of its share, at most 64 MiB. */
  maxObjectBytes: number;
  /** Bytes one worker may buffer for misses at once: a quarter of its share, at least one object. */
  inFlightBytes: number;
}

function positiveInteger(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1) throw new Error(`invalid ${name} '${text}': expected a whole number of at least 1`);
  return value;
}

/** Ids of the phases in the order they run, as PHASES names them. */
const PHASE_IDS = ["idle", "a", "b", "c", "d1", "d2", "d3", "d4", "d5", "e1", "e2", "settle"];

function readConfig(): Config {
  const phases = process.env.PHASES ? process.env.PHASES.split(",").map((id) => id.trim()) : undefined;
  const unknown = (phases ?? []).filter((id) => !PHASE_IDS.includes(id));
  if (unknown.length > 0) throw new Error(`invalid PHASES id ${unknown.join(", ")}: expected some of ${PHASE_IDS.join(", ")}`);
  const memoryCacheMiB = positiveInteger("MEMORY_CACHE_MB", 64);
  const edgeWorkers = positiveInteger("EDGE_WORKERS", 2);
  const workerShareBytes = Math.floor((memoryCacheMiB * MiB) / edgeWorkers);
  const maxObjectBytes = Math.min(Math.floor(workerShareBytes / 8), 64 * MiB);
  return {
    memoryCacheMiB,
    edgeWorkers,
    phaseSeconds: positiveInteger("PHASE_SECONDS", 30),
    slowConnections: positiveInteger("SLOW_CONNECTIONS", 200),
    settleSeconds: positiveInteger("SETTLE_SECONDS", 5),
    phases,
    outPath: process.env.OUT ?? join(tmpdir(), `portico-memory-${new Date().toISOString().replace(/[:.]/g, "-")}.json`),
    workerShareBytes,
    maxObjectBytes,
    inFlightBytes: Math.max(Math.floor(workerShareBytes / 4), maxObjectBytes),
  };
}

// ---------------------------------------------------------------------------------------------
// Processes this benchmark started, stopped by pid on exit.

const children: Array<{ name: string; child: ChildProcess }> = [];
/** Edge workers seen as children of the Portico primary, by pid, with their start time; killed if they outlive it. */
const workerPids = new Map<number, string>();
let dataDir: string | undefined;
/** Path that Portico's log is copied to before the data folder is removed. */
let logCopyPath: string | undefined;
let stopping: Promise<void> | undefined;

/** Returns a process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or undefined once it is gone. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

async function stopChild(name: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), timeoutMs).unref());
  if ((await Promise.race([exited, timer])) === "timeout") {
    process.stderr.write(`${name} (pid ${child.pid}) did not stop within ${timeoutMs} ms; killing it\n`);
    child.kill("SIGKILL");
    await exited;
  }
}

function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    for (const { name, child } of [...children].reverse()) await stopChild(name, child, 20_000);
    for (const [pid, startTime] of workerPids) {
      // A matching start time means the pid still names the worker, not a process that reused it.
      if (startTimeOf(pid) === startTime) {
        process.stderr.write(`edge worker pid ${pid} outlived the primary; killing it\n`);
        process.kill(pid, "SIGKILL");
      }
    }
    if (dataDir !== undefined) {
      const log = join(dataDir, "portico.log");
      if (logCopyPath !== undefined && existsSync(log)) copyFileSync(log, logCopyPath);
      rmSync(dataDir, { recursive: true, force: true });
    }
  })();
  return stopping;
}

function stopOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping the processes this benchmark started\n`);
      void stopEverything().finally(() => process.exit(130));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Sampler: a worker thread reads /proc every 100 ms, so load on the main thread does not delay it.

interface ProcessSample {
  pid: number;
  role: string;
  rssKiB: number;
  /** VmHWM, reset to the current RSS when each phase starts, so it is the phase's peak so far. */
  hwmKiB: number;
  anonKiB: number;
}

interface Sample {
  tMs: number;
  phase: string;
  processes: ProcessSample[];
  /** Pages of TCP socket buffers in the network namespace (/proc/net/sockstat, `TCP: mem`). */
  tcpMemPages: number;
}

const SAMPLER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const fs = require("node:fs");
const primary = workerData.primaryPid;
let phase = "startup";
const samples = [];
const field = (text, name) => {
  const match = new RegExp("^" + name + ":\\\\s+(\\\\d+) kB", "m").exec(text);
  return match === null ? 0 : Number(match[1]);
};
const childrenOf = (pid) => {
  const out = [];
  try {
    for (const task of fs.readdirSync("/proc/" + pid + "/task")) {
      const text = fs.readFileSync("/proc/" + pid + "/task/" + task + "/children", "utf8").trim();
      if (text !== "") out.push(...text.split(/\\s+/).map(Number));
    }
  } catch {}
  return out.sort((a, b) => a - b);
};
const pids = () => [primary, ...childrenOf(primary)];
const sample = () => {
  const processes = [];
  for (const pid of pids()) {
    try {
      const text = fs.readFileSync("/proc/" + pid + "/status", "utf8");
      processes.push({
        pid,
        role: pid === primary ? "primary" : "worker",
        rssKiB: field(text, "VmRSS"),
        hwmKiB: field(text, "VmHWM"),
        anonKiB: field(text, "RssAnon"),
      });
    } catch {}
  }
  let tcpMemPages = 0;
  try {
    const match = /^TCP:.* mem (\\d+)/m.exec(fs.readFileSync("/proc/net/sockstat", "utf8"));
    if (match !== null) tcpMemPages = Number(match[1]);
  } catch {}
  samples.push({ tMs: Date.now(), phase, processes, tcpMemPages });
};
const timer = setInterval(sample, 100);
parentPort.on("message", (message) => {
  if (message.kind === "phase") {
    sample();
    let resetPeaks = true;
    for (const pid of pids()) {
      try {
        fs.writeFileSync("/proc/" + pid + "/clear_refs", "5");
      } catch {
        resetPeaks = false;
      }
    }
    phase = message.name;
    sample();
    parentPort.postMessage({ kind: "phase", resetPeaks, pids: pids() });
  } else if (message.kind === "stop") {
    clearInterval(timer);
    sample();
    parentPort.postMessage({ kind: "samples", samples });
  }
});
`;

class Sampler {
  private readonly worker: Worker;
  /** Whether writing 5 to /proc/<pid>/clear_refs reset VmHWM at every phase start. */
  peaksReset = true;

  constructor(primaryPid: number) {
    this.worker = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { primaryPid } });
  }

  async startPhase(name: string): Promise<void> {
    this.worker.postMessage({ kind: "phase", name });
    const [reply] = (await once(this.worker, "message")) as [{ resetPeaks: boolean; pids: number[] }];
    if (!reply.resetPeaks) this.peaksReset = false;
    for (const pid of reply.pids.slice(1)) {
      const startTime = startTimeOf(pid);
      if (!workerPids.has(pid) && startTime !== undefined) workerPids.set(pid, startTime);
    }
  }

  async stop(): Promise<Sample[]> {
    this.worker.postMessage({ kind: "stop" });
    const [reply] = (await once(this.worker, "message")) as [{ samples: Sample[] }];
    await this.worker.terminate();
    return reply.samples;
  }
}

// ---------------------------------------------------------------------------------------------
// Starting the origin, Portico and the distribution.

interface Portico {
  apiUrl: string;
  httpPort: number;
  httpsPort: number;
  primaryPid: number;
  domain: string;
  caCertificate: Buffer;
}

async function startOrigin(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--origin"], {
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  children.push({ name: "origin", child });
  let output = "";
  for await (const chunk of child.stdout!) {
    output += String(chunk);
    const line = output.split("\n")[0];
    if (output.includes("\n") && line !== undefined) return (JSON.parse(line) as { port: number }).port;
  }
  throw new Error(`the origin process exited before it printed its port (exit code ${child.exitCode})`);
}

async function startPortico(config: Config, originPort: number): Promise<Portico> {
  dataDir = mkdtempSync(join(tmpdir(), "portico-memory-"));
  const accessKeyId = `AKIA${randomBytes(8).toString("hex").toUpperCase()}`;
  const secretAccessKey = randomBytes(20).toString("hex");
  const logFd = openSync(join(dataDir, "portico.log"), "a");
  const cli = fileURLToPath(new URL("../../dist/cli/main.js", import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  // Its own process group, so Ctrl-C reaches only this script, which then stops Portico by pid.
  const child = spawn(
    process.execPath,
    [
      cli,
      "up",
      "--data-dir",
      join(dataDir, "data"),
      "--host",
      HOST,
      "--api-port",
      "0",
      "--http-port",
      "0",
      "--https-port",
      "0",
      "--memory-cache",
      String(config.memoryCacheMiB),
      "--edge-workers",
      String(config.edgeWorkers),
      "--log-level",
      "warn",
    ],
    {
      stdio: ["ignore", logFd, "pipe"],
      detached: true,
      env: { ...process.env, PORTICO_ACCESS_KEY_ID: accessKeyId, PORTICO_SECRET_ACCESS_KEY: secretAccessKey },
    },
  );
  children.push({ name: "portico", child });
  let banner = "";
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`portico up printed no ready banner within 60 s:\n${banner}`)), 60_000);
    child.stderr!.on("data", (chunk: Buffer) => {
      banner += String(chunk);
      if (banner.includes("Edge HTTPS:")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`portico up exited with code ${code} while starting:\n${banner}`));
    });
  });
  await ready;
  const apiUrl = /API endpoint[^:]*: (http:\/\/\S+)/.exec(banner)?.[1];
  const httpPort = Number(/Edge HTTP:\s+port (\d+)/.exec(banner)?.[1]);
  const httpsPort = Number(/Edge HTTPS:\s+port (\d+)/.exec(banner)?.[1]);
  if (apiUrl === undefined || !(httpPort > 0) || !(httpsPort > 0)) throw new Error(`cannot read the ports from the banner:\n${banner}`);
  if (!new URL(apiUrl).hostname.startsWith("127.")) throw new Error(`the API endpoint ${apiUrl} is not on loopback`);

  await waitForHealth(apiUrl);
  const domain = await createDistribution(apiUrl, accessKeyId, secretAccessKey, originPort);
  return {
    apiUrl,
    httpPort,
    httpsPort,
    primaryPid: child.pid!,
    domain,
    caCertificate: readFileSync(join(dataDir, "data", "tls", "ca.crt")),
  };
}

async function waitForHealth(apiUrl: string): Promise<void> {
  const deadlineMs = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`${apiUrl}/_portico/health`);
      if (response.status === 200) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadlineMs) throw new Error(`${apiUrl}/_portico/health did not return 200 within 30 s`);
    await sleep(200);
  }
}

/** Creates a distribution whose custom origin is the benchmark origin, forwarding query strings, and waits until it is Deployed. */
async function createDistribution(apiUrl: string, accessKeyId: string, secretAccessKey: string, originPort: number): Promise<string> {
  const client = new CloudFrontClient({ endpoint: apiUrl, region: "us-east-1", credentials: { accessKeyId, secretAccessKey } });
  const created = await client.send(
    new CreateDistributionCommand({
      DistributionConfig: {
        CallerReference: `memory-bench-${Date.now()}`,
        Comment: "memory benchmark",
        Enabled: true,
        Origins: {
          Quantity: 1,
          Items: [
            {
              Id: "bench-origin",
              DomainName: HOST,
              CustomOriginConfig: { HTTPPort: originPort, HTTPSPort: 443, OriginProtocolPolicy: "http-only" },
            },
          ],
        },
        DefaultCacheBehavior: {
          TargetOriginId: "bench-origin",
          ViewerProtocolPolicy: "allow-all",
          MinTTL: 0,
          DefaultTTL: 86400,
          MaxTTL: 31536000,
          ForwardedValues: { QueryString: true, Cookies: { Forward: "none" } },
        },
      },
    }),
  );
  const id = created.Distribution!.Id!;
  const deadlineMs = Date.now() + 30_000;
  for (;;) {
    const { Distribution } = await client.send(new GetDistributionCommand({ Id: id }));
    if (Distribution?.Status === "Deployed") break;
    if (Date.now() > deadlineMs) throw new Error(`distribution ${id} was not Deployed after 30 s`);
    await sleep(200);
  }
  client.destroy();
  return created.Distribution!.DomainName!;
}

// ---------------------------------------------------------------------------------------------
// Load: counters, an HTTP/1.1 client pool, slow viewers, HTTP/2 sessions.

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Seeded PRNG (mulberry32), so every run requests the same objects. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts of the requests, bytes, errors and responses of one phase's load. */
class LoadCounters {
  requests = 0;
  bytes = 0;
  errors = 0;
  /** Responses whose body was shorter or longer than the object. */
  wrongLength = 0;
  readonly statuses = new Map<string, number>();
  readonly errorKinds = new Map<string, number>();
  notes: string[] = [];

  count(map: Map<string, number>, key: string): void {
    map.set(key, (map.get(key) ?? 0) + 1);
  }

  fail(error: unknown): void {
    this.errors++;
    const kind = (error as NodeJS.ErrnoException).code ?? (error as Error).name ?? "Error";
    this.count(this.errorKinds, kind);
  }
}

/** Returns a short name for a Cache-Status value: its detail, else hit, collapsed or stored. */
function cacheLabel(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(",") : value;
  if (text === undefined) return "no cache-status";
  const detail = /detail=([a-z-]+)/.exec(text)?.[1];
  if (detail !== undefined) return detail;
  if (text.includes("; hit")) return "hit";
  if (text.includes("collapsed")) return "collapsed";
  if (text.includes("stored")) return "stored";
  return text;
}

class Http1Client {
  private readonly pool: Pool;

  constructor(
    port: number,
    private readonly domain: string,
    connections: number,
  ) {
    this.pool = new Pool(`http://${HOST}:${port}`, { connections, pipelining: 1, bodyTimeout: 60_000, headersTimeout: 60_000 });
  }

  /** Requests `path`, reads the whole body and counts it. A body whose length is not `expectedBytes` counts as wrong. */
  async get(path: string, counters: LoadCounters, expectedBytes?: number): Promise<void> {
    try {
      const response = await this.pool.request({ path, method: "GET", headers: { host: this.domain } });
      let bytes = 0;
      for await (const chunk of response.body) bytes += (chunk as Buffer).length;
      counters.requests++;
      counters.bytes += bytes;
      counters.count(counters.statuses, `${response.statusCode} ${cacheLabel(response.headers["cache-status"])}`);
      if (expectedBytes !== undefined && response.statusCode === 200 && bytes !== expectedBytes) counters.wrongLength++;
    } catch (error) {
      counters.fail(error);
    }
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Runs `job(i)` for i = 0, 1, ... with `concurrency` at once, until `count` jobs ran or `deadlineMs` passed. */
async function runJobs(count: number, concurrency: number, deadlineMs: number, job: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const lanes = Array.from({ length: concurrency }, async () => {
    while (next < count && Date.now() < deadlineMs) await job(next++);
  });
  await Promise.all(lanes);
  return next;
}

function objectPath(name: string, sizeBytes: number): string {
  return `/obj/${name}?size=${sizeBytes}`;
}

function chunkedPath(name: string, sizeBytes: number): string {
  return `/chunked/${name}?size=${sizeBytes}`;
}

/** Objects the hit phases request, sized to fit one worker's share together. */
function hotSet(config: Config): Array<{ path: string; size: number }> {
  const sizes = [
    ...Array<number>(16).fill(256 * KiB),
    ...Array<number>(6).fill(1 * MiB),
    ...Array<number>(2).fill(config.maxObjectBytes),
  ];
  let total = 0;
  const set: Array<{ path: string; size: number }> = [];
  for (const [i, size] of sizes.entries()) {
    // Keeps the hot set under 60% of a share, so fills and misses of other phases do not push it out at once.
    if (total + size > config.workerShareBytes * 0.6) continue;
    total += size;
    set.push({ path: objectPath(`hot-${i}`, size), size });
  }
  return set;
}

/** Returns the largest hot object, which the slow-viewer and HTTP/2 phases request as a hit. */
function largestHot(config: Config): { path: string; size: number } {
  return hotSet(config).reduce((a, b) => (b.size > a.size ? b : a));
}

/** Requests each path with several connections at once, so every worker caches it. */
async function warm(client: Http1Client, objects: Array<{ path: string; size: number }>, counters: LoadCounters): Promise<void> {
  for (const object of objects) {
    await Promise.all(Array.from({ length: 8 }, () => client.get(object.path, counters, object.size)));
  }
}

/**
 * A viewer on its own socket that requests one object, reads the first chunk (the response
 * head), and then reads nothing more ("paused") or one chunk every 250 ms ("slow").
 */
class SlowViewer {
  bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: Socket,
    path: string,
    domain: string,
    mode: "paused" | "slow",
    counters: LoadCounters,
  ) {
    socket.on("error", (error) => counters.fail(error));
    socket.on("data", (chunk: Buffer) => {
      if (this.bytes === 0) {
        const head = chunk.subarray(0, Math.max(0, chunk.indexOf("\r\n\r\n"))).toString("latin1");
        const status = /^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? "no status line";
        counters.count(counters.statuses, `${status} ${cacheLabel(/^cache-status: (.*)$/im.exec(head)?.[1])}`);
      }
      this.bytes += chunk.length;
      socket.pause();
    });
    socket.write(`GET ${path} HTTP/1.1\r\nhost: ${domain}\r\n\r\n`);
    counters.requests++;
    if (mode === "slow") {
      // One data event every 250 ms: Node.js 20 reads at most 64 KiB from TCP and 16 KiB from TLS at a time.
      this.timer = setInterval(() => socket.resume(), 250);
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.socket.destroy();
  }
}

function openPlainSocket(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTcp({ host: HOST, port }, () => resolve(socket));
    socket.once("error", reject);
  });
}

function openTlsSocket(port: number, domain: string, ca: Buffer, alpn: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connectTls({ host: HOST, port, servername: domain, ca, ALPNProtocols: [alpn] }, () => resolve(socket));
    socket.once("error", reject);
  });
}

/**
 * A TCP relay from a local port to the edge's HTTPS port. `stall()` stops reading from the
 * edge, so the edge's writes to these viewers back up while the viewers keep sending.
 */
class StallingRelay {
  private readonly server = createTcpServer((viewer) => this.relay(viewer));
  private readonly upstreams = new Set<Socket>();
  private readonly viewers = new Set<Socket>();

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<number> {
    this.server.listen(0, HOST);
    await once(this.server, "listening");
    return (this.server.address() as AddressInfo).port;
  }

  private relay(viewer: Socket): void {
    const upstream = connectTcp({ host: HOST, port: this.targetPort });
    this.viewers.add(viewer);
    this.upstreams.add(upstream);
    viewer.on("error", () => upstream.destroy());
    upstream.on("error", () => viewer.destroy());
    viewer.on("close", () => upstream.destroy());
    upstream.on("close", () => viewer.destroy());
    viewer.pipe(upstream);
    upstream.pipe(viewer);
  }

  stall(): void {
    for (const upstream of this.upstreams) {
      upstream.unpipe();
      upstream.pause();
    }
  }

  close(): void {
    for (const socket of [...this.upstreams, ...this.viewers]) socket.destroy();
    this.server.close();
  }
}

interface H2Options {
  port: number;
  domain: string;
  ca: Buffer;
  /** The window this client grants per stream and per connection. The protocol's default is 65,535. */
  windowBytes: number;
}

async function openH2Session(options: H2Options): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://${options.domain}`, {
    settings: { initialWindowSize: Math.min(options.windowBytes, 2 ** 31 - 1) },
    createConnection: () =>
      connectTls({ host: HOST, port: options.port, servername: options.domain, ca: options.ca, ALPNProtocols: ["h2"] }),
  });
  session.on("error", () => {});
  await once(session, "connect");
  if (options.windowBytes > 65_535) session.setLocalWindowSize(Math.min(options.windowBytes, 2 ** 31 - 1));
  return session;
}

/** An HTTP/2 stream that has not closed yet, for reporting streams that never finish. */
interface OpenStream {
  path: string;
  status: string;
  bytes: number;
  startedMs: number;
}

/** Requests `path` on an HTTP/2 session. With `read` false the stream stays paused after its headers. */
function h2Get(
  session: http2.ClientHttp2Session,
  path: string,
  counters: LoadCounters,
  read: boolean,
  ending: { value: boolean },
  expectedBytes?: number,
  open?: Set<OpenStream>,
): Promise<void> {
  return new Promise((resolve) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request({ ":method": "GET", ":path": path });
    } catch (error) {
      counters.fail(error);
      resolve();
      return;
    }
    const state: OpenStream = { path, status: "", bytes: 0, startedMs: Date.now() };
    open?.add(state);
    stream.on("response", (headers) => {
      state.status = `${headers[":status"]} ${cacheLabel(headers["cache-status"])}`;
      counters.count(counters.statuses, state.status);
    });
    if (read) stream.on("data", (chunk: Buffer) => (state.bytes += chunk.length));
    else stream.pause();
    stream.on("error", (error) => {
      if (!ending.value) counters.fail(error);
    });
    stream.on("close", () => {
      open?.delete(state);
      if (read) {
        counters.requests++;
        counters.bytes += state.bytes;
        if (expectedBytes !== undefined && state.status.startsWith("200") && state.bytes !== expectedBytes) counters.wrongLength++;
      }
      resolve();
    });
    if (!read) counters.requests++;
  });
}

// ---------------------------------------------------------------------------------------------
// Phases.

interface PhaseRecord {
  name: string;
  description: string;
  startMs: number;
  endMs: number;
  counters: LoadCounters;
}

interface Run {
  config: Config;
  portico: Portico;
  sampler: Sampler;
  phases: PhaseRecord[];
}

async function runPhase(run: Run, spec: PhaseSpec): Promise<void> {
  if (stopping !== undefined) throw new Error(`stopped before phase ${spec.name}`);
  const counters = new LoadCounters();
  await run.sampler.startPhase(spec.name);
  const startMs = Date.now();
  process.stderr.write(`${new Date().toISOString()} ${spec.name}: ${spec.description}\n`);
  await spec.body(counters);
  run.phases.push({ name: spec.name, description: spec.description, startMs, endMs: Date.now(), counters });
}

async function fillPhase(run: Run, counters: LoadCounters): Promise<void> {
  const { config, portico } = run;
  const client = new Http1Client(portico.httpPort, portico.domain, 8);
  const random = seededRandom(1);
  const targetBytes = 12 * config.memoryCacheMiB * MiB;
  const deadlineMs = Date.now() + config.phaseSeconds * 1000;
  let requested = 0;
  let objects = 0;
  await runJobs(1000, 8, deadlineMs, async (i) => {
    if (requested >= targetBytes) return;
    // Log-uniform between 256 KiB and 8 MiB.
    const size = Math.round(256 * KiB * 32 ** random());
    requested += size;
    objects++;
    await client.get(objectPath(`fill-${i}`, size), counters, size);
  });
  counters.notes.push(`${objects} distinct objects, ${(requested / MiB).toFixed(0)} MiB requested (${(requested / (config.memoryCacheMiB * MiB)).toFixed(1)}x the budget)`);
  await client.close();
}

async function hitPhase(run: Run, counters: LoadCounters): Promise<void> {
  const { config, portico } = run;
  const hot = hotSet(config);
  const warmer = new Http1Client(portico.httpPort, portico.domain, 8);
  await warm(warmer, hot, counters);
  await warmer.close();

  const seconds = Math.round((config.phaseSeconds * 2) / 3);
  const connections = 128;
  const wrk = spawnSync("sh", ["-c", "command -v wrk"], { encoding: "utf8" }).stdout.trim();
  if (wrk !== "") {
    const script = join(dataDir!, "hot.lua");
    writeFileSync(
      script,
      `wrk.headers["Host"] = "${portico.domain}"\n` +
        `local paths = { ${hot.map((object) => `"${object.path}"`).join(", ")} }\n` +
        "local i = 0\n" +
        "request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n",
    );

    const child = spawn(wrk, ["-t2", `-c${connections}`, `-d${seconds}s`, "-s", script, `http://${HOST}:${portico.httpPort}/`], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.push({ name: "wrk", child });
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => (output += String(chunk)));
    await once(child, "exit");

    const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? 0);
    const rate = /Requests\/sec:\s+([\d.]+)/.exec(output)?.[1];
    const transfer = /Transfer\/sec:\s+(\S+)/.exec(output)?.[1];
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
    const socketErrors = /Socket errors: (.*)/.exec(output)?.[1];
    counters.requests += requests;
    counters.errors += non2xx;
    counters.notes.push(`wrk ${connections} connections ${seconds} s over ${hot.length} hot objects: ${rate} req/s, ${transfer}/s, non-2xx ${non2xx}${socketErrors ? `, socket errors ${socketErrors}` : ""}`);
    return;
  }

  const client = new Http1Client(portico.httpPort, portico.domain, connections);
  const deadlineMs = Date.now() + seconds * 1000;
  await runJobs(Number.MAX_SAFE_INTEGER, connections, deadlineMs, (i) => client.get(hot[i % hot.length]!.path, counters, hot[i % hot.length]!.size));
  counters.notes.push(`undici ${connections} connections ${seconds} s over ${hot.length} hot objects`);
  await client.close();
}

async function largeMissPhase(run: Run, counters: LoadCounters): Promise<void> {
  const { config, portico } = run;
  const deadlineMs = Date.now() + config.phaseSeconds * 1000;
  const client = new Http1Client(portico.httpPort, portico.domain, 96);
  const largeSizes = [3, 4, 6, 8, 12, 16].map((factor) => factor * config.maxObjectBytes);
  const chunkedSizes = [0.25, 0.5, 1, 1.5, 3, 6].map((factor) => Math.round(factor * config.maxObjectBytes));
  // Distinct large objects with Content-Length and distinct chunked ones, 24 connections each.
  const large = runJobs(24, 24, deadlineMs, (i) => client.get(objectPath(`large-${i}`, largeSizes[i % largeSizes.length]!), counters, largeSizes[i % largeSizes.length]));
  const chunked = runJobs(48, 24, deadlineMs, (i) => client.get(chunkedPath(`chunk-${i}`, chunkedSizes[i % chunkedSizes.length]!), counters, chunkedSizes[i % chunkedSizes.length]));
  // Bursts: 48 concurrent first requests of one new cacheable key, alternately with and without Content-Length.
  const bursts = (async () => {
    for (let burst = 0; burst < 8 && Date.now() < deadlineMs; burst++) {
      const size = config.maxObjectBytes;
      const path = burst % 2 === 0 ? objectPath(`burst-${burst}`, size) : chunkedPath(`burst-${burst}`, size);
      await Promise.all(Array.from({ length: 48 }, () => client.get(path, counters, size)));
    }
  })();
  await Promise.all([large, chunked, bursts]);
  counters.notes.push(
    `large objects of ${largeSizes.map((size) => `${size / MiB}`).join("/")} MiB, chunked of ${chunkedSizes.map((size) => (size / MiB).toFixed(1)).join("/")} MiB, bursts of 48 on one ${config.maxObjectBytes / MiB} MiB key`,
  );
  await client.close();
}

/** Opens `count` slow viewers, half paused and half reading slowly, keeps them open for `holdMs`, then closes them. */
async function slowViewers(
  count: number,
  holdMs: number,
  open: () => Promise<Socket>,
  pathOf: (i: number) => string,
  domain: string,
  counters: LoadCounters,
  perTick: number,
): Promise<void> {
  const viewers: SlowViewer[] = [];
  const startedMs = Date.now();
  for (let i = 0; i < count; i += perTick) {
    const batch = Array.from({ length: Math.min(perTick, count - i) }, async (_, j) => {
      try {
        const socket = await open();
        viewers.push(new SlowViewer(socket, pathOf(i + j), domain, (i + j) % 2 === 0 ? "paused" : "slow", counters));
      } catch (error) {
        counters.fail(error);
      }
    });
    await Promise.all(batch);
    await sleep(100);
  }
  await sleep(Math.max(0, holdMs - (Date.now() - startedMs)));
  const read = viewers.reduce((sum, viewer) => sum + viewer.bytes, 0);
  counters.bytes += read;
  counters.notes.push(`${viewers.length} viewers held ${(holdMs / 1000).toFixed(0)} s, read ${(read / MiB).toFixed(1)} MiB in all`);
  for (const viewer of viewers) viewer.close();
  await sleep(1000);
}

/** Opens the slow viewers of one step on the plain HTTP port, or on the HTTPS port with HTTP/1.1. */
function slowStep(run: Run, pathOf: (i: number) => string, tls: boolean, perTick: number, warmFirst?: { path: string; size: number }) {
  const { config, portico } = run;
  const open = tls
    ? () => openTlsSocket(portico.httpsPort, portico.domain, portico.caCertificate, "http/1.1")
    : () => openPlainSocket(portico.httpPort);
  return async (counters: LoadCounters): Promise<void> => {
    if (warmFirst !== undefined) {
      const warmer = new Http1Client(portico.httpPort, portico.domain, 8);
      await warm(warmer, [warmFirst], counters);
      await warmer.close();
    }
    await slowViewers(config.slowConnections, Math.round(config.phaseSeconds * 300), open, pathOf, portico.domain, counters, perTick);
  };
}

/** Runs 4 connections of 32 reading streams each, and 2 connections whose 100 streams are paused with 64 KiB windows. */
async function http2ReadersPhase(run: Run, counters: LoadCounters): Promise<void> {
  const { config, portico } = run;
  const deadlineMs = Date.now() + Math.round((config.phaseSeconds * 2) / 3) * 1000;
  const hot = hotSet(config);
  const biggest = largestHot(config);
  const warmer = new Http1Client(portico.httpPort, portico.domain, 8);
  await warm(warmer, hot, counters);
  await warmer.close();

  const direct = { port: portico.httpsPort, domain: portico.domain, ca: portico.caCertificate };
  const sessions: http2.ClientHttp2Session[] = [];
  const large = 8 * config.maxObjectBytes;
  const chunked = Math.round(config.maxObjectBytes / 2);
  /** Set once the phase closes its sessions, so the cancelled streams are not counted as errors. */
  const ending = { value: false };
  const reading = new Set<OpenStream>();

  const readers = Array.from({ length: 4 }, async (_, s) => {
    const session = await openH2Session({ ...direct, windowBytes: 4 * MiB });
    sessions.push(session);
    await runJobs(Number.MAX_SAFE_INTEGER, 32, deadlineMs, (i) => {
      if (i % 16 === 5) return h2Get(session, objectPath(`h2-large-${s}-${i}`, large), counters, true, ending, large, reading);
      if (i % 16 === 11) return h2Get(session, chunkedPath(`h2-chunk-${s}-${i}`, chunked), counters, true, ending, chunked, reading);
      const object = hot[i % hot.length]!;
      return h2Get(session, object.path, counters, true, ending, object.size, reading);
    });
  });

  const pausedStreams: Array<Promise<void>> = [];
  const paused = await Promise.all([openH2Session({ ...direct, windowBytes: 65_535 }), openH2Session({ ...direct, windowBytes: 65_535 })]);
  sessions.push(...paused);
  for (const [s, session] of paused.entries()) {
    for (let i = 0; i < 100; i++) {
      // Half the streams request the hit, a quarter a large object, a quarter a large chunked one.
      let path = biggest.path;
      if (i % 4 === 1) path = objectPath(`h2-paused-${s}-${i}`, large);
      if (i % 4 === 3) path = chunkedPath(`h2-paused-${s}-${i}`, large);
      pausedStreams.push(h2Get(session, path, counters, false, ending));
    }
  }

  // Streams started before the deadline may take a while to finish. Past the grace period they count as stuck.
  const graceMs = 15_000;
  if ((await Promise.race([Promise.all(readers), sleep(deadlineMs + graceMs - Date.now()).then(() => "timeout" as const)])) === "timeout") {
    const nowMs = Date.now();
    const stuck = [...reading].map((open) => `${open.path} (${open.status || "no response"}, ${open.bytes} bytes after ${((nowMs - open.startedMs) / 1000).toFixed(0)} s)`);
    const shown = stuck.slice(0, 6).join("; ");
    counters.notes.push(`${stuck.length} reading streams did not finish ${graceMs / 1000} s after the phase's deadline, such as ${shown}`);
    counters.errors += stuck.length;
    counters.count(counters.errorKinds, "stream never finished");
  }
  counters.notes.push(
    `4 reading connections x 32 streams (hits, ${large / MiB} MiB misses, ${(chunked / MiB).toFixed(1)} MiB chunked); ` +
      `2 connections x 100 paused streams with 64 KiB windows, of the ${biggest.size / MiB} MiB hit and ${large / MiB} MiB misses (half chunked)`,
  );
  ending.value = true;
  for (const session of sessions) session.destroy();
  await Promise.race([Promise.all(pausedStreams), sleep(2000)]);
}

/**
 * Opens half of SLOW_CONNECTIONS HTTP/2 connections that grant 2 GiB windows and stop reading
 * at the TCP level, then requests 3 streams on each: the largest hot object, a large object and
 * a large chunked object.
 */
async function http2StalledPhase(run: Run, counters: LoadCounters): Promise<void> {
  const { config, portico } = run;
  const biggest = largestHot(config);
  const warmer = new Http1Client(portico.httpPort, portico.domain, 8);
  await warm(warmer, [biggest], counters);
  await warmer.close();
  const large = 8 * config.maxObjectBytes;
  const ending = { value: false };
  const relay = new StallingRelay(portico.httpsPort);
  const relayPort = await relay.listen();

  const options = { port: relayPort, domain: portico.domain, ca: portico.caCertificate, windowBytes: 2 ** 31 - 1 };
  const count = Math.max(1, Math.floor(config.slowConnections / 2));
  const sessions: http2.ClientHttp2Session[] = [];
  for (let i = 0; i < count; i += 10) {
    sessions.push(...(await Promise.all(Array.from({ length: Math.min(10, count - i) }, () => openH2Session(options)))));
  }
  relay.stall();

  const streams: Array<Promise<void>> = [];
  for (const [s, session] of sessions.entries()) {
    streams.push(h2Get(session, biggest.path, counters, false, ending));
    streams.push(h2Get(session, objectPath(`h2-stalled-${s}`, large), counters, false, ending));
    streams.push(h2Get(session, chunkedPath(`h2-stalled-${s}`, large), counters, false, ending));
  }
  await sleep(Math.round(config.phaseSeconds * 300));

  counters.notes.push(
    `${sessions.length} connections with 2 GiB windows, stalled at TCP, 3 streams each: the ${biggest.size / MiB} MiB hit, ` +
      `a ${large / MiB} MiB object and a ${large / MiB} MiB chunked object`,
  );
  ending.value = true;
  for (const session of sessions) session.destroy();
  relay.close();
  await Promise.race([Promise.all(streams), sleep(2000)]);
}

interface PhaseSpec {
  id: string;
  name: string;
  description: string;
  body: (counters: LoadCounters) => Promise<void>;
}

/** Returns every phase in the order of PHASE_IDS. PHASES picks some by id, and idle and settle always run. */
function phaseSpecs(run: Run): PhaseSpec[] {
  const { config } = run;
  const count = config.slowConnections;
  const hot = largestHot(config);
  const large = 16 * config.maxObjectBytes;
  const object = config.maxObjectBytes;
  const viewers = `${count} viewers, half paused and half reading 1 chunk per 250 ms`;
  return [
    { id: "idle", name: "idle", description: "no load for 3 s after the distribution deployed", body: () => sleep(3000) },
    { id: "a", name: "a filling", description: "distinct objects of 256 KiB to 8 MiB, 8 connections, until 12x the budget", body: (c) => fillPhase(run, c) },
    { id: "b", name: "b hit load", description: "hot set warmed, then keep-alive hits", body: (c) => hitPhase(run, c) },
    {
      id: "c",
      name: "c large misses",
      description: "first requests of objects above the max object size, chunked objects, bursts on new keys",
      body: (c) => largeMissPhase(run, c),
    },
    {
      id: "d1",
      name: "d1 slow, large misses",
      description: `${viewers}, of distinct ${large / MiB} MiB objects with Content-Length`,
      body: slowStep(run, (i) => objectPath(`slow-large-${i}`, large), false, 20),
    },
    {
      id: "d2",
      name: "d2 slow, chunked misses",
      description: `${viewers}, of distinct ${large / MiB} MiB chunked objects`,
      body: slowStep(run, (i) => chunkedPath(`slow-chunked-${i}`, large), false, 20),
    },
    {
      id: "d3",
      name: "d3 slow, hits",
      description: `${viewers}, of one cached ${hot.size / MiB} MiB object`,
      body: slowStep(run, () => hot.path, false, 20, hot),
    },
    {
      id: "d4",
      name: "d4 slow, evicted hits",
      description: `${viewers}, of distinct ${object / MiB} MiB objects that later misses evict`,
      body: slowStep(run, (i) => objectPath(`slow-evicted-${i}`, object), false, 4),
    },
    {
      id: "d5",
      name: "d5 slow, TLS hits",
      description: `${viewers} over HTTPS with HTTP/1.1, of one cached ${hot.size / MiB} MiB object`,
      body: slowStep(run, () => hot.path, true, 20, hot),
    },
    { id: "e1", name: "e1 HTTP/2", description: "HTTP/2 over TLS: reading streams and paused streams", body: (c) => http2ReadersPhase(run, c) },
    { id: "e2", name: "e2 HTTP/2 stalled", description: "HTTP/2 over TLS: 2 GiB windows, stalled at TCP", body: (c) => http2StalledPhase(run, c) },
    { id: "settle", name: "settle", description: `no load for ${config.settleSeconds} s`, body: () => sleep(config.settleSeconds * 1000) },
  ];
}

// ---------------------------------------------------------------------------------------------
// Report.

interface PhaseMemory {
  name: string;
  seconds: number;
  /** Peak RSS per process, in KiB: the largest VmRSS sample or VmHWM within the phase. */
  peaks: Array<{ pid: number; role: string; peakKiB: number; peakAnonKiB: number }>;
  /** Sum of VmRSS over the processes in the phase's first sample. */
  startTotalKiB: number;
  /** Largest sum of VmRSS over the processes of one sample. */
  peakTotalKiB: number;
  peakTotalAnonKiB: number;
  medianTotalKiB: number;
  peakTcpMemKiB: number;
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function primaryFirstByPid(a: { pid: number; role: string }, b: { pid: number; role: string }): number {
  if (a.role !== b.role) return a.role === "primary" ? -1 : 1;
  return a.pid - b.pid;
}

function summarize(phases: PhaseRecord[], samples: Sample[]): PhaseMemory[] {
  return phases.map((record) => {
    const inPhase = samples.filter((sample) => sample.phase === record.name);
    const peaks = new Map<number, { pid: number; role: string; peakKiB: number; peakAnonKiB: number }>();
    const totals: number[] = [];
    let peakTotalKiB = 0;
    let peakTotalAnonKiB = 0;
    let peakTcpMemKiB = 0;
    for (const sample of inPhase) {
      let total = 0;
      let totalAnon = 0;
      for (const entry of sample.processes) {
        const peak = peaks.get(entry.pid) ?? { pid: entry.pid, role: entry.role, peakKiB: 0, peakAnonKiB: 0 };
        peak.peakKiB = Math.max(peak.peakKiB, entry.rssKiB, entry.hwmKiB);
        peak.peakAnonKiB = Math.max(peak.peakAnonKiB, entry.anonKiB);
        peaks.set(entry.pid, peak);
        total += entry.rssKiB;
        totalAnon += entry.anonKiB;
      }
      totals.push(total);
      peakTotalKiB = Math.max(peakTotalKiB, total);
      peakTotalAnonKiB = Math.max(peakTotalAnonKiB, totalAnon);
      peakTcpMemKiB = Math.max(peakTcpMemKiB, sample.tcpMemPages * 4);
    }
    return {
      name: record.name,
      seconds: (record.endMs - record.startMs) / 1000,
      startTotalKiB: totals[0] ?? 0,
      peaks: [...peaks.values()].sort(primaryFirstByPid),
      peakTotalKiB,
      peakTotalAnonKiB,
      medianTotalKiB: median(totals),
      peakTcpMemKiB,
    };
  });
}

function mib(kib: number): string {
  return (kib / 1024).toFixed(1);
}

function printReport(run: Run, memory: PhaseMemory[]): void {
  const { config } = run;
  const budgetKiB = config.memoryCacheMiB * 1024;
  const workerCount = Math.max(...memory.map((phase) => phase.peaks.filter((peak) => peak.role === "worker").length));
  const out: string[] = [];
  out.push(
    "",
    `memory tier budget ${config.memoryCacheMiB} MiB over ${config.edgeWorkers} edge process(es): ${config.workerShareBytes / MiB} MiB each, ` +
      `max object ${(config.maxObjectBytes / MiB).toFixed(1)} MiB, in-flight budget ${(config.inFlightBytes / MiB).toFixed(1)} MiB each`,
    "",
    "Peak resident memory (MiB). Process peaks are VmHWM within the phase; totals are the largest sum of VmRSS in one 100 ms sample;",
    "growth is the peak total minus the total at the phase's start; kernel TCP is the socket buffer memory of the whole network namespace.",
    "",
  );
  const workerHeads = Array.from({ length: workerCount }, (_, i) => `worker ${i + 1}`);
  const heads = ["phase", "s", "budget", "primary", ...workerHeads, "worker - share", "total", "total - budget", "start total", "growth", "total anon", "kernel TCP"];
  out.push(`| ${heads.join(" | ")} |`);
  out.push(`| --- | ${heads.slice(1).map(() => "---:").join(" | ")} |`);
  for (const phase of memory) {
    const primary = phase.peaks.find((peak) => peak.role === "primary");
    const workers = phase.peaks.filter((peak) => peak.role === "worker");
    const workerCells = workerHeads.map((_, i) => (workers[i] === undefined ? "-" : mib(workers[i]!.peakKiB)));
    const workerExcess = workers.length === 0 ? "-" : mib(Math.max(...workers.map((peak) => peak.peakKiB)) - config.workerShareBytes / KiB);
    const cells = [
      phase.name,
      phase.seconds.toFixed(0),
      String(config.memoryCacheMiB),
      primary === undefined ? "-" : mib(primary.peakKiB),
      ...workerCells,
      workerExcess,
      mib(phase.peakTotalKiB),
      mib(phase.peakTotalKiB - budgetKiB),
      mib(phase.startTotalKiB),
      mib(phase.peakTotalKiB - phase.startTotalKiB),
      mib(phase.peakTotalAnonKiB),
      mib(phase.peakTcpMemKiB),
    ];
    out.push(`| ${cells.join(" | ")} |`);
  }
  out.push("", "Load per phase:", "");
  out.push("| phase | requests | MiB read | errors | wrong length | responses (status, Cache-Status) |");
  out.push("| --- | ---: | ---: | ---: | ---: | --- |");
  for (const record of run.phases) {
    const c = record.counters;
    const statuses = [...c.statuses.entries()].sort((a, b) => b[1] - a[1]).map(([key, n]) => `${key}: ${n}`).join(", ");
    const errors = [...c.errorKinds.entries()].map(([key, n]) => `${key} ${n}`).join(", ");
    out.push(`| ${record.name} | ${c.requests} | ${(c.bytes / MiB).toFixed(0)} | ${c.errors}${errors ? ` (${errors})` : ""} | ${c.wrongLength} | ${statuses} |`);
  }
  out.push("");
  for (const record of run.phases) {
    out.push(`${record.name}: ${record.description}`);
    for (const note of record.counters.notes) out.push(`  ${note}`);
  }

  // The bound as measured: the largest excess of a worker over its share, and the primary's peak.
  const workerPeaks = memory.flatMap((phase) => phase.peaks.filter((peak) => peak.role === "worker"));
  const primaryPeakKiB = Math.max(...memory.flatMap((phase) => phase.peaks.filter((peak) => peak.role === "primary").map((peak) => peak.peakKiB)));
  if (workerPeaks.length === 0) {
    out.push("", `measured: budget ${config.memoryCacheMiB} MiB + ${mib(primaryPeakKiB - budgetKiB)} MiB in the one process that runs the edge`);
  } else {
    const workerExcessKiB = Math.max(...workerPeaks.map((peak) => peak.peakKiB - config.workerShareBytes / KiB));
    out.push(
      "",
      `measured: budget ${config.memoryCacheMiB} MiB + ${mib(workerExcessKiB)} MiB per worker (largest worker peak minus its ${config.workerShareBytes / MiB} MiB share) ` +
        `+ ${mib(primaryPeakKiB)} MiB for the primary`,
    );
  }
  if (!run.sampler.peaksReset) out.push("NOTE: /proc/<pid>/clear_refs could not be written, so VmHWM was not reset per phase; process peaks are sampled VmRSS only.");
  process.stdout.write(`${out.join("\n")}\n`);
}

function machineInfo(): Record<string, string> {
  const cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  return {
    nproc: spawnSync("nproc", { encoding: "utf8" }).stdout.trim(),
    cpu,
    kernel: spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim(),
    node: process.version,
    loadAverage: readFileSync("/proc/loadavg", "utf8").trim(),
  };
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  stopOnSignals();
  let exitCode = 0;
  try {
    const config = readConfig();
    logCopyPath = config.outPath.replace(/\.json$/, "") + ".portico.log";
    const originPort = await startOrigin();
    const portico = await startPortico(config, originPort);
    process.stderr.write(`origin on port ${originPort}; Portico API ${portico.apiUrl}, HTTP ${portico.httpPort}, HTTPS ${portico.httpsPort}, distribution ${portico.domain}\n`);
    const machineBefore = machineInfo();
    const sampler = new Sampler(portico.primaryPid);
    const run: Run = { config, portico, sampler, phases: [] };

    for (const spec of phaseSpecs(run)) {
      if (config.phases === undefined || spec.id === "idle" || spec.id === "settle" || config.phases.includes(spec.id)) await runPhase(run, spec);
    }

    const samples = await sampler.stop();
    const memory = summarize(run.phases, samples);
    printReport(run, memory);
    const machineAfter = machineInfo();
    writeFileSync(
      config.outPath,
      JSON.stringify(
        {
          config,
          machine: { ...machineBefore, loadAverageAfter: machineAfter.loadAverage },
          phases: run.phases.map((record) => ({
            name: record.name,
            description: record.description,
            startMs: record.startMs,
            endMs: record.endMs,
            requests: record.counters.requests,
            bytes: record.counters.bytes,
            errors: record.counters.errors,
            wrongLength: record.counters.wrongLength,
            statuses: Object.fromEntries(record.counters.statuses),
            notes: record.counters.notes,
          })),
          memory,
          samples,
        },
        null,
        1,
      ),
    );
    process.stdout.write(
      `\nmachine: ${JSON.stringify(machineBefore)}; load average after: ${machineAfter.loadAverage}\n` +
        `samples written to ${config.outPath}, Portico's log to ${logCopyPath}\n`,
    );
  } catch (error) {
    process.stderr.write(`memory benchmark failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    if (dataDir !== undefined) process.stderr.write(`Portico's log is copied to ${logCopyPath}\n`);
    exitCode = 1;
  } finally {
    await stopEverything();
  }
  process.exit(exitCode);
}

if (process.argv.includes("--origin")) {
  runOrigin();
} else {
  await main();
}
