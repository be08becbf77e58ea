import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { connect as connectHttp2 } from "node:http2";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { TLSSocket } from "node:tls";
import { promisify } from "node:util";
import { gunzipSync } from "node:zlib";
import {
  CreateDistributionCommand,
  waitUntilDistributionDeployed,
  type DistributionConfig,
} from "@aws-sdk/client-cloudfront";
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
} from "@aws-sdk/client-s3";
import { PutMetricAlarmCommand, SetAlarmStateCommand } from "@aws-sdk/client-cloudwatch";
import { fetch } from "undici";
import { createClients, Viewer } from "../../examples/lib/portico-clients.js";
import { fetchStatus } from "../../src/cli/status.js";
import { silentLogger } from "../../src/common/logger.js";
import { S3LogDelivery } from "../../src/metrics/access-log/delivery.js";
import { DistributionDirectory } from "../../src/metrics/access-log/distributions.js";
import { LOG_FIELDS } from "../../src/metrics/access-log/format.js";
import { AccessLogWriter } from "../../src/metrics/access-log/writer.js";
import type { RequestRecord } from "../../src/metrics/types.js";
import { startPorticoProcess, type PorticoProcess } from "../helpers/portico-process.js";

const run = promisify(execFile);
const REPO = join(import.meta.dirname, "..", "..");
const LOG_INTERVAL_SECONDS = 2;

function distributionConfig(reference: string, bucket: string, logBucket: string, prefix: string): DistributionConfig {
  return {
    CallerReference: reference,
    Comment: "observability test",
    Enabled: true,
    Origins: {
      Quantity: 1,
      Items: [{ Id: "site", DomainName: `${bucket}.s3.amazonaws.com`, S3OriginConfig: { OriginAccessIdentity: "" } }],
    },
    DefaultCacheBehavior: {
      TargetOriginId: "site",
      ViewerProtocolPolicy: "allow-all",
      MinTTL: 0,
      DefaultTTL: 3600,
      MaxTTL: 86400,
      ForwardedValues: { QueryString: true, Cookies: { Forward: "none" } },
    },
    Logging: { Enabled: true, IncludeCookies: true, Bucket: `${logBucket}.s3.amazonaws.com`, Prefix: prefix },
  };
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Returns the data lines of a log file, after checking its two header lines. */
function dataLines(text: string): string[][] {
  const lines = text.split("\n");
  assert.equal(lines[0], "#Version: 1.0");
  assert.equal(lines[1], `#Fields: ${LOG_FIELDS.join(" ")}`);
  assert.equal(lines.at(-1), "", "the file ends with a line feed");
  return lines.slice(2, -1).map((line) => line.split("\t"));
}

describe("observability against portico up", { timeout: 120_000 }, () => {
  let dataDir: string;
  let logDir: string;
  let portico: PorticoProcess;
  let viewer: Viewer;
  let clients: ReturnType<typeof createClients>;
  const suffix = Math.random().toString(36).slice(2, 8);
  const siteBucket = `obs-site-${suffix}`;
  const logBucket = `obs-logs-${suffix}`;
  const lateBucket = `obs-late-${suffix}`;
  let logged: { id: string; domainName: string };
  let late: { id: string; domainName: string };

  const get = (distribution: { domainName: string }, path: string, headers: Record<string, string> = {}) =>
    viewer.request(`http://${distribution.domainName}:${portico.target.httpPort}${path}`, headers);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "portico-obs-"));
    logDir = join(dataDir, "access-logs");
    portico = await startPorticoProcess(dataDir, {
      PORTICO_LOG_INTERVAL: String(LOG_INTERVAL_SECONDS),
      PORTICO_ACCESS_LOG_DIR: logDir,
    });
    viewer = await Viewer.create(portico.target.caCertificatePath);
    clients = createClients(portico.target);
    const { s3, cloudfront } = clients;

    await s3.send(new CreateBucketCommand({ Bucket: siteBucket }));
    await s3.send(new CreateBucketCommand({ Bucket: logBucket }));
    // CreateDistribution checks that the log bucket exists; the test deletes it afterwards.
    await s3.send(new CreateBucketCommand({ Bucket: lateBucket }));
    await s3.send(
      new PutBucketPolicyCommand({
        Bucket: siteBucket,
        Policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: "*", Action: "s3:GetObject", Resource: `arn:aws:s3:::${siteBucket}/*` }],
        }),
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: siteBucket, Key: "index.html", Body: "<p>hello</p>", ContentType: "text/html" }));
    await s3.send(new PutObjectCommand({ Bucket: siteBucket, Key: "a b/ü.txt", Body: "unicode", ContentType: "text/plain" }));

    for (const [name, target] of [
      ["logged", logBucket],
      ["late", lateBucket],
    ] as const) {
      const created = await cloudfront.send(
        new CreateDistributionCommand({
          DistributionConfig: distributionConfig(`${name}-${suffix}`, siteBucket, target, name === "logged" ? "cf/" : ""),
        }),
      );
      const distribution = { id: created.Distribution!.Id!, domainName: created.Distribution!.DomainName! };
      await waitUntilDistributionDeployed({ client: cloudfront, maxWaitTime: 30, minDelay: 1, maxDelay: 1 }, { Id: distribution.id });
      if (name === "logged") logged = distribution;
      else late = distribution;
    }
    await s3.send(new DeleteBucketCommand({ Bucket: lateBucket }));
  });

  after(async () => {
    await viewer?.close();
    await portico?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("metrics endpoint counts hits and passes promtool", async (t) => {
    // Edge workers may each keep their own cache, so request until one serves from cache.
    const seen = { Hit: 0, Miss: 0 };
    for (let i = 0; i < 20 && seen.Hit === 0; i++) {
      const response = await get(logged, "/index.html");
      assert.equal(response.status, 200);
      const cache = response.headers.get("x-cache") ?? "";
      if (cache.startsWith("Hit")) seen.Hit += 1;
      if (cache.startsWith("Miss")) seen.Miss += 1;
      await response.arrayBuffer();
    }
    assert.equal(seen.Hit, 1, "one of the requests was served from cache");
    const missing = await get(logged, "/missing.html");
    assert.equal(missing.status, 403, "a missing key behind a GetObject-only policy is AccessDenied");
    await missing.arrayBuffer();

    const response = await fetch(`${portico.target.endpoint}/_portico/metrics`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
    const text = await response.text();
    const count = (cacheStatus: string): number =>
      Number(
        new RegExp(
          `^portico_requests_total\\{distribution_id="${logged.id}",status_class="2xx",cache_status="${cacheStatus}"\\} (\\d+)$`,
          "m",
        ).exec(text)?.[1] ?? 0,
      );
    assert.equal(count("Hit"), seen.Hit, `Hit count differs from the X-Cache headers:\n${text}`);
    assert.equal(count("Miss"), seen.Miss, `Miss count differs from the X-Cache headers:\n${text}`);
    assert.match(text, new RegExp(`portico_requests_total\\{distribution_id="${logged.id}",status_class="4xx",cache_status="Error"\\} 1`));
    const total = seen.Hit + seen.Miss + 1;
    assert.match(text, new RegExp(`portico_request_duration_seconds_count\\{distribution_id="${logged.id}"\\} ${total}\n`));
    assert.match(text, new RegExp(`portico_origin_latency_seconds_bucket\\{distribution_id="${logged.id}",le="\\+Inf"\\} [1-9]`));

    if (!existsSync("/usr/bin/promtool")) return t.skip("promtool is missing (Debian package prometheus)");
    const check = await promtool(text);
    assert.equal(check.code, 0, `promtool check metrics failed:\n${check.output}`);
  });

  test("log files land in the bucket, named and formatted", async () => {
    const agent = "portico test/1.0 \"quoted\"";
    const response = await get(logged, "/a%20b/%C3%BC.txt?x=1&y=%7B", { "user-agent": agent, cookie: "session=abc" });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), "unicode");

    const keyPattern = new RegExp(`^cf/${logged.id}\\.\\d{4}-\\d{2}-\\d{2}-\\d{2}\\.[A-Z0-9]{12}\\.gz$`);
    const lines = await waitFor("a log line for the unicode request", async () => {
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: logBucket, Prefix: "cf/" }));
      const found: string[][] = [];
      for (const object of listed.Contents ?? []) {
        assert.match(object.Key!, keyPattern);
        const file = await clients.s3.send(new GetObjectCommand({ Bucket: logBucket, Key: object.Key! }));
        const body = Buffer.from(await file.Body!.transformToByteArray());
        assert.equal(body[0], 0x1f, "gzip magic");
        found.push(...dataLines(gunzipSync(body).toString("utf8")));
      }
      return found.some((fields) => fields[7] === "/a%20b/%C3%BC.txt") ? found : undefined;
    });

    const fields = lines.find((entry) => entry[7] === "/a%20b/%C3%BC.txt")!;
    assert.equal(fields.length, 33);
    assert.match(fields[0]!, /^\d{4}-\d{2}-\d{2}$/);
    assert.match(fields[1]!, /^\d{2}:\d{2}:\d{2}$/);
    assert.equal(fields[2], "edge-1");
    assert.ok(Number(fields[3]) > "unicode".length, "sc-bytes includes headers");
    assert.equal(fields[5], "GET");
    assert.equal(fields[6], logged.domainName);
    assert.equal(fields[8], "200");
    assert.equal(fields[9], "-", "no Referer");
    assert.equal(fields[10], "portico%20test/1.0%20%22quoted%22");
    assert.equal(fields[11], "x=1&y=%7B");
    assert.equal(fields[12], "session=abc", "IncludeCookies logs the Cookie header");
    assert.equal(fields[13], "Miss");
    assert.equal(fields[15], logged.domainName);
    assert.equal(fields[16], "http");
    assert.match(fields[18]!, /^\d+\.\d{3}$/);
    assert.equal(fields[23], "HTTP/1.1");
    for (const entry of lines) assert.equal(entry.length, 33, `every line has 33 fields: ${entry.join("|")}`);
  });

  test("rotation writes a new file each interval", async () => {
    const before = await clients.s3.send(new ListObjectsV2Command({ Bucket: logBucket, Prefix: "cf/" }));
    const keysBefore = new Set((before.Contents ?? []).map((object) => object.Key!));
    const response = await get(logged, "/index.html?rotation=1");
    await response.arrayBuffer();
    const added = await waitFor("a file from the next rotation", async () => {
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: logBucket, Prefix: "cf/" }));
      const keys = (listed.Contents ?? []).map((object) => object.Key!).filter((key) => !keysBefore.has(key));
      return keys.length > 0 ? keys : undefined;
    });
    assert.ok(keysBefore.size >= 1);
    const file = await clients.s3.send(new GetObjectCommand({ Bucket: logBucket, Key: added[0]! }));
    const lines = dataLines(gunzipSync(Buffer.from(await file.Body!.transformToByteArray())).toString("utf8"));
    assert.ok(lines.some((fields) => fields[11] === "rotation=1"), "the new file has the new request");
    assert.ok(lines.every((fields) => fields[11] !== "x=1&y=%7B"), "an earlier file's record is not written again");
  });

  test("missing bucket retries and counts the failure", async () => {
    const response = await get(late, "/index.html?late=1");
    await response.arrayBuffer();
    await waitFor("a failed upload", async () => {
      const text = await (await fetch(`${portico.target.endpoint}/_portico/metrics`)).text();
      const failures = /^portico_access_log_delivery_failures_total (\d+)$/m.exec(text);
      return failures && Number(failures[1]) >= 1 ? true : undefined;
    });

    await clients.s3.send(new CreateBucketCommand({ Bucket: lateBucket }));
    const keys = await waitFor("the retried file in the new bucket", async () => {
      const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: lateBucket }));
      return listed.KeyCount ? listed.Contents!.map((object) => object.Key!) : undefined;
    });
    assert.match(keys[0]!, new RegExp(`^${late.id}\\.\\d{4}-\\d{2}-\\d{2}-\\d{2}\\.[A-Z0-9]{12}\\.gz$`));
    const file = await clients.s3.send(new GetObjectCommand({ Bucket: lateBucket, Key: keys[0]! }));
    const lines = dataLines(gunzipSync(Buffer.from(await file.Body!.transformToByteArray())).toString("utf8"));
    assert.ok(lines.some((fields) => fields[11] === "late=1"));
    const text = await (await fetch(`${portico.target.endpoint}/_portico/metrics`)).text();
    assert.match(text, /^portico_access_log_lost_records_total\{reason="delivery_failed"\} 0$/m, "a retried file loses nothing");
  });

  test("TLS, port and response fields are logged", async () => {
    const ca = await readFile(portico.target.caCertificatePath);
    const host = logged.domainName;

    // HTTP/1.1 over TLS, with the client port read from the socket.
    const overTls = await new Promise<{ status: number; port: number; protocol: string; cipher: string }>((resolve, reject) => {
      const outgoing = httpsRequest(
        { host: "127.0.0.1", port: portico.target.httpsPort, path: "/index.html?tls=1", servername: host, ca, headers: { host }, agent: false },
        (response) => {
          const socket = response.socket as TLSSocket;
          const details = { port: socket.localPort!, protocol: socket.getProtocol() ?? "", cipher: socket.getCipher().name };
          response.resume();
          response.on("end", () => resolve({ status: response.statusCode ?? 0, ...details }));
        },
      );
      outgoing.on("error", reject);
      outgoing.end();
    });
    assert.equal(overTls.status, 200);

    // HTTP/2, whose streams share the session's TLS socket.
    const session = connectHttp2(`https://127.0.0.1:${portico.target.httpsPort}`, { ca, servername: host });
    const overHttp2 = await new Promise<{ status: number; port: number }>((resolve, reject) => {
      const stream = session.request({ ":path": "/index.html?h2=1", ":authority": host });
      let status = 0;
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.resume();
      stream.on("end", () => resolve({ status, port: session.socket.localPort! }));
      stream.on("error", reject);
    });
    session.close();
    assert.equal(overHttp2.status, 200);

    // Misses until a hit is served from an entry's prepared head (each edge worker may keep its
    // own copy), then a range.
    let headRequests = 0;
    for (let hits = 0; hits === 0 && headRequests < 20; headRequests++) {
      const response = await get(logged, "/index.html?head=1");
      if ((response.headers.get("x-cache") ?? "").startsWith("Hit")) hits += 1;
      await response.arrayBuffer();
    }
    const rangeResponse = await get(logged, "/index.html?head=1", { range: "bytes=1-4" });
    assert.equal(rangeResponse.status, 206);
    await rangeResponse.arrayBuffer();

    const byQuery = await waitFor("log lines of the TLS and range requests", async () => {
      const names = existsSync(logDir) ? (await readdir(logDir)).filter((name) => name.startsWith(logged.id)) : [];
      const found = new Map<string, string[][]>();
      for (const name of names) {
        for (const fields of dataLines(gunzipSync(await readFile(join(logDir, name))).toString("utf8"))) {
          const query = fields[11]!;
          found.set(query, [...(found.get(query) ?? []), fields]);
        }
      }
      return found.has("tls=1") && found.has("h2=1") && found.get("head=1")?.length === headRequests + 1 ? found : undefined;
    });

    const tls = byQuery.get("tls=1")![0]!;
    assert.equal(tls[16], "https");
    assert.equal(tls[20], overTls.protocol);
    assert.match(tls[20]!, /^TLSv1\.[23]$/);
    assert.equal(tls[21], overTls.cipher);
    assert.equal(tls[26], String(overTls.port));
    assert.equal(tls[29], "text/html");
    assert.equal(tls[30], "12");
    assert.equal(tls[31], "-");
    assert.equal(tls[32], "-");

    const h2 = byQuery.get("h2=1")![0]!;
    assert.equal(h2[23], "HTTP/2.0");
    assert.match(h2[20]!, /^TLSv1\.[23]$/);
    assert.notEqual(h2[21], "-");
    assert.equal(h2[26], String(overHttp2.port));
    assert.equal(h2[30], "12");

    // Workers deliver their records in any order, so each line is identified by its fields.
    const headLines = byQuery.get("head=1")!;
    const miss = headLines.find((fields) => fields[13] === "Miss" && fields[8] === "200");
    const hit = headLines.find((fields) => fields[13] === "Hit" && fields[8] === "200");
    const ranged = headLines.find((fields) => fields[8] === "206");
    assert.ok(miss, "a miss was logged");
    assert.ok(hit, "a hit was logged");
    assert.ok(ranged, "the range was logged");
    for (const fields of headLines) {
      assert.equal(fields[16], "http");
      assert.equal(fields[20], "-", "no TLS on the plain port");
      assert.equal(fields[21], "-");
      assert.match(fields[26]!, /^\d+$/);
      assert.equal(fields[29], "text/html");
    }
    assert.equal(miss[30], "12");
    assert.equal(miss[31], "-");
    assert.equal(hit[30], "12");
    assert.equal(ranged[30], "4");
    assert.equal(ranged[31], "1");
    assert.equal(ranged[32], "4");
  });

  test("GoAccess parses the local log files", async (t) => {
    if (!existsSync("/usr/bin/goaccess")) return t.skip("goaccess is missing (Debian package goaccess)");
    const files = await waitFor("local log files", async () => {
      const names = existsSync(logDir) ? (await readdir(logDir)).filter((name) => name.endsWith(".gz")) : [];
      return names.some((name) => name.startsWith(logged.id)) ? names : undefined;
    });
    let text = "";
    let records = 0;
    for (const name of files.filter((entry) => entry.startsWith(logged.id))) {
      const content = gunzipSync(await readFile(join(logDir, name))).toString("utf8");
      records += dataLines(content).length;
      text += content;
    }
    const logPath = join(dataDir, "combined.log");
    const reportPath = join(dataDir, "goaccess.json");
    await writeFile(logPath, text);
    await run("/usr/bin/goaccess", [logPath, "--log-format=CLOUDFRONT", "--no-global-config", "-o", reportPath], {
      timeout: 30_000,
    });
    const report = JSON.parse(await readFile(reportPath, "utf8")) as {
      general: { total_requests: number; valid_requests: number; failed_requests: number };
    };
    assert.equal(report.general.failed_requests, 0, "GoAccess rejected no line");
    assert.equal(report.general.valid_requests, records);
    assert.ok(records >= 5);
  });

  test("status prints distributions, edges and rates", async () => {
    // Without --endpoint, status finds the port in the data folder, where `portico up` recorded it.
    assert.equal((await readFile(join(dataDir, "api-endpoint"), "utf8")).trim(), portico.target.endpoint);
    const { stdout } = await run(
      process.execPath,
      ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "status", "--data-dir", dataDir],
      { cwd: REPO, env: { ...process.env, AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" }, timeout: 30_000 },
    );
    const header = stdout.split("\n").find((line) => line.startsWith("ID"));
    assert.ok(header, `no table header:\n${stdout}`);
    assert.ok(header.includes("HIT RATE"), header);
    assert.ok(header.includes("ERROR RATE"), header);
    const row = stdout.split("\n").find((line) => line.startsWith(logged.id));
    assert.ok(row, `no row for ${logged.id}:\n${stdout}`);
    assert.ok(row.includes(logged.domainName));
    const edges = /\s(\d+)\/(\d+)\s/.exec(row);
    assert.ok(edges, `no EDGES CURRENT column:\n${stdout}`);
    assert.ok(Number(edges[2]) >= 1, "at least one edge is live");
    assert.equal(edges[1], edges[2], "every live edge has the current version");
    assert.match(row, /\d+\.\d%\s+\d+\.\d%$/, "hit rate and error rate are percentages");
    assert.match(stdout, /^edge-\S+\s+live\s/m);
  });

  test("status without recorded endpoint fails", async () => {
    const empty = await mkdtemp(join(tmpdir(), "portico-status-"));
    try {
      await assert.rejects(
        run(process.execPath, ["--import", "tsx", join(REPO, "src", "cli", "main.ts"), "status", "--data-dir", empty], {
          cwd: REPO,
          env: { ...process.env, PORTICO_ENDPOINT: "" },
          timeout: 30_000,
        }),
        (error: { stderr?: string }) => {
          assert.match(String(error.stderr), /no running Portico recorded its API endpoint in .*api-endpoint/);
          return true;
        },
      );
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  test("status rejects unsigned and wrongly signed requests", async () => {
    const unsigned = await fetch(`${portico.target.endpoint}/_portico/status`);
    assert.equal(unsigned.status, 403);
    await unsigned.arrayBuffer();
    await assert.rejects(
      fetchStatus(portico.target.endpoint, { accessKeyId: portico.target.accessKeyId, secretAccessKey: "wrong-secret" }, 5),
      /returned 403.*SignatureDoesNotMatch/,
    );
    await assert.rejects(fetchStatus(portico.target.endpoint, portico.target, 0), /returned 400.*minutes/);
    const report = await fetchStatus(portico.target.endpoint, portico.target, 60);
    assert.equal(report.windowMinutes, 60);
  });

  test("log lines name each key once", async () => {
    // An alarm that changes state logs as the metrics component.
    const cloudwatch = clients.cloudwatch;
    await cloudwatch.send(
      new PutMetricAlarmCommand({
        AlarmName: "log-check",
        Namespace: "Portico/LogCheck",
        MetricName: "Nothing",
        Statistic: "Sum",
        Period: 60,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: "GreaterThanThreshold",
        TreatMissingData: "notBreaching",
      }),
    );
    await cloudwatch.send(new SetAlarmStateCommand({ AlarmName: "log-check", StateValue: "ALARM", StateReason: "log check" }));
    await waitFor("the state change's log line", async () => (portico.logs.some((line) => line.msg === "alarm state changed") ? true : undefined));
    const components = () => new Set(portico.logs.map((line) => line.component));
    for (const line of portico.rawLogs) {
      const keys = topLevelKeys(line);
      const repeated = keys.filter((key, index) => keys.indexOf(key) !== index);
      assert.deepEqual(repeated, [], `repeated keys in ${line}`);
    }
    for (const component of ["metrics", "observability", "access-log", "control"]) {
      assert.ok(components().has(component), `no line of component ${component}: ${[...components()].join(", ")}`);
    }
  });

  test("writer bounds its buffer and counts losses", async () => {
    const directory = new DistributionDirectory();
    const missingBucket = `obs-missing-${suffix}`;
    directory.observe({
      type: "distribution.updated",
      snapshot: {
        id: "EUNITTEST",
        arn: "arn:aws:cloudfront::000000000000:distribution/EUNITTEST",
        domainName: "dunittest00000.portico.localhost",
        version: 1,
        config: distributionConfig("unit", siteBucket, missingBucket, "unit/"),
        originAccessControls: {},
      },
    });
    const delivery = new S3LogDelivery({ endpoint: portico.target.endpoint, credentials: portico.target });
    const writer = new AccessLogWriter({
      directory,
      intervalSeconds: 3600,
      upload: (bucket, key, body) => delivery.put(bucket, key, body),
      writeLocal: undefined,
      log: silentLogger(),
      limits: { maxPendingRecords: 5, maxBufferedBytes: 2000 },
    });
    for (let i = 0; i < 8; i++) writer.record(sampleRecord("EUNITTEST", i));
    writer.record(sampleRecord("EOTHER", 0));
    assert.equal(writer.stats().pendingRecords, 5, "records past the bound are not kept");
    assert.equal(writer.stats().lost.records_limit, 3, "and are counted");

    writer.formatPending();
    const afterFormat = writer.stats();
    assert.ok(afterFormat.bufferedBytes <= 2000);
    const keptLines = 5 - afterFormat.lost.bytes_limit;
    assert.ok(keptLines >= 1);

    await writer.rotate();
    assert.equal(writer.stats().deliveryFailures, 1, "NoSuchBucket fails the upload");
    assert.equal(writer.stats().retainedFiles, 1, "the file is kept for a retry");
    assert.equal(writer.stats().lost.delivery_failed, 0);

    await clients.s3.send(new CreateBucketCommand({ Bucket: missingBucket }));
    await writer.rotate();
    assert.equal(writer.stats().retainedFiles, 0);
    assert.equal(writer.stats().deliveredFiles, 1);
    const listed = await clients.s3.send(new ListObjectsV2Command({ Bucket: missingBucket, Prefix: "unit/" }));
    assert.equal(listed.KeyCount, 1);
    const file = await clients.s3.send(new GetObjectCommand({ Bucket: missingBucket, Key: listed.Contents![0]!.Key! }));
    const lines = dataLines(gunzipSync(Buffer.from(await file.Body!.transformToByteArray())).toString("utf8"));
    assert.equal(lines.length, keptLines, "the delivered file has every kept record");
    await writer.close();
  });
});

function sampleRecord(distributionId: string, index: number): RequestRecord {
  return {
    distributionId,
    timestampMs: Date.now(),
    edgeId: "edge-unit",
    method: "GET",
    path: `/file-${index}.txt`,
    query: "",
    host: "dunittest00000.portico.localhost",
    protocol: "https",
    httpVersion: "2.0",
    status: 200,
    bytesDownloaded: 512,
    bytesUploaded: 0,
    resultType: "Hit",
    originLatencyMs: undefined,
    durationMs: 0.4,
    clientIp: "127.0.0.1",
    userAgent: "x".repeat(300),
    referer: undefined,
    requestId: `REQ${index}`,
  };
}

/** Returns the keys of a JSON object's top level, in order and with repeats, which JSON.parse would merge. */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let index = 0;
  while (index < text.length) {
    const char = text[index]!;
    if (char === '"') {
      let end = index + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      const afterString = text.slice(end + 1).trimStart();
      if (depth === 1 && afterString.startsWith(":")) keys.push(JSON.parse(text.slice(index, end + 1)) as string);
      index = end + 1;
      continue;
    }
    if (char === "{" || char === "[") depth += 1;
    if (char === "}" || char === "]") depth -= 1;
    index += 1;
  }
  return keys;
}

async function promtool(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn("/usr/bin/promtool", ["check", "metrics"], { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    child.on("exit", (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}
