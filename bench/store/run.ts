// Benchmarks the bucket store against nginx serving the same files from disk,
// in one run: PUT and GET of 4 KiB and 64 MiB objects at 1 and 32 concurrent
// clients, each driven by the same wrk script. Prints a Markdown table of
// medians and the store's peak resident memory.
//
//   node --import tsx bench/store/run.ts
//
// Environment (default): DURATION_SECONDS (5) for 4 KiB cases,
// LARGE_DURATION_SECONDS (12) for 64 MiB cases, REPS (3), SMALL_COUNT (1000),
// LARGE_COUNT (8), ONLY (unset; a case name such as PUT-64MiB-32 runs that case alone). Everything listens on 127.0.0.1 and lives in a temporary
// folder that is removed at the end.
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir, cpus, release } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { CreateBucketCommand, PutBucketPolicyCommand, S3Client } from "@aws-sdk/client-s3";
import { BENCH_CREDENTIALS } from "./server.js";

const run = promisify(execFile);
const DURATION_SECONDS = Number(process.env.DURATION_SECONDS ?? 5);
const LARGE_DURATION_SECONDS = Number(process.env.LARGE_DURATION_SECONDS ?? 12);
const REPS = Number(process.env.REPS ?? 3);
const SMALL_COUNT = Number(process.env.SMALL_COUNT ?? 1000);
const LARGE_COUNT = Number(process.env.LARGE_COUNT ?? 8);
const BUCKET = "bench";
const KIB = 1024;
const MIB = 1024 * KIB;
const HERE = import.meta.dirname;

interface Case {
  method: "GET" | "PUT";
  sizeBytes: number;
  clients: number;
  /** Number of distinct keys the requests cycle over. */
  keys: number;
  prefix: string;
}

interface Measure {
  requestsPerSecond: number;
  megabytesPerSecond: number;
  errors: number;
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, "close");
  return port;
}

async function startStore(dataDir: string): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(HERE, "server.ts"), dataDir], { stdio: ["ignore", "pipe", "inherit"] });
  let output = "";
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /port=(\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`the store exited with code ${String(code)}`)));
  });
  return { child, port };
}

/** Starts nginx with a configuration in `folder` that serves and accepts PUT under `root`. */
async function startNginx(folder: string, root: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  // Started as root, nginx runs its workers as the user nobody, who cannot read a 0700 temporary folder.
  const user = process.getuid?.() === 0 ? "user root;" : "";
  const config = `
${user}
worker_processes ${cpus().length};
daemon off;
pid ${join(folder, "nginx.pid")};
error_log ${join(folder, "error.log")} warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_max_body_size 0;
  client_body_temp_path ${join(folder, "client-body")};
  proxy_temp_path ${join(folder, "proxy")};
  fastcgi_temp_path ${join(folder, "fastcgi")};
  uwsgi_temp_path ${join(folder, "uwsgi")};
  scgi_temp_path ${join(folder, "scgi")};
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location / {
      dav_methods PUT;
      create_full_put_path on;
    }
  }
}
`;
  const configPath = join(folder, "nginx.conf");
  await writeFile(configPath, config);
  const child = spawn("nginx", ["-c", configPath, "-p", folder, "-e", join(folder, "error.log")], { stdio: "inherit" });
  for (let attempt = 0; attempt < 100; attempt++) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      await response.arrayBuffer();
      return { child, port };
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error("nginx did not start listening");
}

function parseRate(text: string, label: string): number {
  const match = new RegExp(`${label}:\\s+([\\d.]+)(\\w*)`).exec(text);
  if (!match) throw new Error(`wrk printed no ${label}:\n${text}`);
  const units: Record<string, number> = { "": 1, B: 1, KB: KIB, MB: MIB, GB: 1024 * MIB, k: 1000, M: 1_000_000 };
  return Number(match[1]) * (units[match[2] ?? ""] ?? 1);
}

async function runWrk(port: number, benchCase: Case): Promise<Measure> {
  const threads = Math.min(benchCase.clients, cpus().length);
  const args = [
    `-t${threads}`,
    `-c${benchCase.clients}`,
    `-d${durationSeconds(benchCase)}s`,
    "--timeout",
    "120s",
    "-s",
    join(HERE, "wrk.lua"),
    `http://127.0.0.1:${port}`,
    "--",
    benchCase.method,
    `/${BUCKET}/${benchCase.prefix}`,
    String(benchCase.keys),
    String(benchCase.sizeBytes),
  ];
  const { stdout } = await run("wrk", args, { maxBuffer: 1024 * 1024 });
  const requestsPerSecond = parseRate(stdout, "Requests/sec");
  // wrk counts response bytes as they arrive, so Transfer/sec also measures
  // large GETs that are still running when the run ends; requests/sec does not.
  const isLargeGet = benchCase.method === "GET" && benchCase.sizeBytes >= MIB;
  const megabytesPerSecond = isLargeGet
    ? parseRate(stdout, "Transfer/sec") / 1_000_000
    : (requestsPerSecond * benchCase.sizeBytes) / 1_000_000;
  const errorsMatch = /Non-2xx or 3xx responses: (\d+)/.exec(stdout);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = Number(errorsMatch?.[1] ?? 0) + (socketErrors ? socketErrors.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0);
  return { requestsPerSecond, megabytesPerSecond, errors };
}

function durationSeconds(benchCase: Case): number {
  return benchCase.sizeBytes >= MIB ? LARGE_DURATION_SECONDS : DURATION_SECONDS;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Writes the GET objects: through the store's S3 API, and as files under nginx's root. */
async function prepareObjects(storePort: number, nginxRoot: string): Promise<void> {
  const sets = [
    { prefix: "get-small-", count: SMALL_COUNT, sizeBytes: 4 * KIB },
    { prefix: "get-large-", count: LARGE_COUNT, sizeBytes: 64 * MIB },
  ];
  await mkdir(join(nginxRoot, BUCKET), { recursive: true });
  for (const set of sets) {
    const body = Buffer.alloc(set.sizeBytes, "g");
    for (let index = 0; index < set.count; index++) {
      const key = `${set.prefix}${index}`;
      const response = await fetch(`http://127.0.0.1:${storePort}/${BUCKET}/${key}`, { method: "PUT", body });
      if (response.status !== 200) throw new Error(`PUT ${key} failed with ${response.status}: ${await response.text()}`);
      await writeFile(join(nginxRoot, BUCKET, key), body);
    }
  }
}

async function peakMemoryMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function main(): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), "portico-store-bench-"));
  const nginxRoot = join(folder, "nginx-root");
  await mkdir(nginxRoot, { recursive: true });
  const store = await startStore(join(folder, "store-data"));
  const nginx = await startNginx(folder, nginxRoot);
  try {
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${store.port}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: BENCH_CREDENTIALS.root,
    });
    await client.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Anonymous GET and PUT, so both servers get the very same unsigned requests;
    // the store still evaluates this policy on every request.
    const policy = {
      Version: "2012-10-17",
      Statement: [{ Effect: "Allow", Principal: "*", Action: ["s3:GetObject", "s3:PutObject"], Resource: `arn:aws:s3:::${BUCKET}/*` }],
    };
    await client.send(new PutBucketPolicyCommand({ Bucket: BUCKET, Policy: JSON.stringify(policy) }));
    client.destroy();
    await prepareObjects(store.port, nginxRoot);

    const cases: Case[] = [];
    for (const method of ["GET", "PUT"] as const) {
      for (const sizeBytes of [4 * KIB, 64 * MIB]) {
        for (const clients of [1, 32]) {
          const small = sizeBytes === 4 * KIB;
          // GETs read the prepared objects; large PUTs write one key per client.
          let keys = small ? SMALL_COUNT : LARGE_COUNT;
          if (method === "PUT" && !small) keys = clients;
          const prefix = `${method.toLowerCase()}-${small ? "small" : "large"}-`;
          const name = `${method}-${small ? "4KiB" : "64MiB"}-${clients}`;
          if (process.env.ONLY === undefined || process.env.ONLY === name) cases.push({ method, sizeBytes, clients, keys, prefix });
        }
      }
    }

    const rows: string[] = [];
    for (const benchCase of cases) {
      const portico: Measure[] = [];
      const reference: Measure[] = [];
      // Alternate the servers so that load from other work on the machine hits both alike.
      for (let rep = 0; rep < REPS; rep++) {
        portico.push(await runWrk(store.port, benchCase));
        reference.push(await runWrk(nginx.port, benchCase));
      }
      const porticoRate = median(portico.map((measure) => measure.requestsPerSecond));
      const nginxRate = median(reference.map((measure) => measure.requestsPerSecond));
      const porticoMegabytes = median(portico.map((measure) => measure.megabytesPerSecond));
      const nginxMegabytes = median(reference.map((measure) => measure.megabytesPerSecond));
      const errors = portico.reduce((sum, measure) => sum + measure.errors, 0) + reference.reduce((sum, measure) => sum + measure.errors, 0);
      const size = benchCase.sizeBytes === 4 * KIB ? "4 KiB" : "64 MiB";
      rows.push(
        `| ${benchCase.method} | ${size} | ${benchCase.clients} | ${porticoRate.toFixed(1)} | ${porticoMegabytes.toFixed(1)} | ` +
          `${nginxRate.toFixed(1)} | ${nginxMegabytes.toFixed(1)} | ${(porticoMegabytes / nginxMegabytes).toFixed(2)} | ${errors} |`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }

    const memory = await peakMemoryMiB(store.child.pid!);
    const { stdout: wrkVersion } = await run("wrk", ["-v"]).catch((error: { stdout?: string }) => ({ stdout: error.stdout ?? "" }));
    const { stderr: nginxVersion } = await run("nginx", ["-v"]);
    process.stdout.write(
      [
        `Machine: ${cpus().length} cores, ${cpus()[0]?.model ?? "unknown CPU"}, Linux ${release()}, Node.js ${process.version}, ` +
          `${nginxVersion.trim()}, ${wrkVersion.split("\n")[0]?.trim() ?? "wrk"}.`,
        `Each cell is the median of ${REPS} wrk runs (${DURATION_SECONDS} s for 4 KiB, ${LARGE_DURATION_SECONDS} s for 64 MiB). ` +
          "MB/s is 10^6 bytes of object data a second: requests/s times the size, except for 64 MiB GETs, " +
          "where it is wrk's Transfer/sec, which also counts responses still in progress when a run ends.",
        "",
        "| operation | size | clients | Portico req/s | Portico MB/s | nginx req/s | nginx MB/s | Portico / nginx | errors |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ...rows,
        "",
        `Peak resident memory of the store process: ${memory.toFixed(0)} MiB.`,
        "",
      ].join("\n"),
    );
  } finally {
    store.child.kill("SIGTERM");
    nginx.child.kill("SIGQUIT");
    await Promise.all([once(store.child, "exit"), once(nginx.child, "exit")]);
    await rm(folder, { recursive: true, force: true });
  }
}

await main();
