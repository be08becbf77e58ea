import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { request } from "undici";
import type { StatusReport } from "../metrics/status.js";

export interface StatusCommandOptions {
  endpoint: string;
  dataDir: string;
  minutes: number;
  json: boolean;
}

/** How long the status request may take. */
const STATUS_TIMEOUT_MS = 10_000;

/**
 * Finds the key that signs the request: AWS_ACCESS_KEY_ID and
 * AWS_SECRET_ACCESS_KEY when both are set, else the root key stored in the
 * data folder's credentials.json.
 */
export async function resolveStatusCredentials(
  dataDir: string,
): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (accessKeyId && secretAccessKey) return { accessKeyId, secretAccessKey };

  const path = join(dataDir, "credentials.json");
  let stored: { root?: { accessKeyId: string; secretAccessKey: string } };
  try {
    stored = JSON.parse(await readFile(path, "utf8")) as typeof stored;
  } catch (error) {
    throw new Error(
      `no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass --data-dir with a readable credentials.json (${(error as Error).message})`,
      { cause: error },
    );
  }
  if (!stored.root) {
    throw new Error(`${path} has no root key (it came from the environment); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
  }
  return stored.root;
}

/** Fetches `GET /_portico/status`, signed with SigV4. */
export async function fetchStatus(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  minutes: number,
): Promise<StatusReport> {
  const url = new URL(`/_portico/status?minutes=${minutes}`, endpoint);
  const signer = new SignatureV4({
    service: "portico",
    region: "us-east-1",
    credentials,
    sha256: Hash.bind(null, "sha256"),
  });
  const signed = await signer.sign({
    method: "GET",
    protocol: url.protocol,
    hostname: url.hostname,
    ...(url.port === "" ? {} : { port: Number(url.port) }),
    path: url.pathname,
    query: { minutes: String(minutes) },
    headers: { host: url.host },
  });
  const response = await request(url, {
    method: "GET",
    headers: signed.headers,
    headersTimeout: STATUS_TIMEOUT_MS,
    bodyTimeout: STATUS_TIMEOUT_MS,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200) {
    throw new Error(`GET ${url.pathname} on ${endpoint} returned ${response.statusCode}: ${text.trim()}`);
  }
  return JSON.parse(text) as StatusReport;
}

function percent(value: number | null): string {
  return value === null ? "-" : `${value.toFixed(1)}%`;
}

function ago(nowMs: number, atMs: number): string {
  const seconds = Math.max(0, Math.round((nowMs - atMs) / 1000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m ago`;
  return `${Math.round(seconds / 3600)}h ago`;
}

/** Lays out rows as left-aligned columns separated by two spaces. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Renders the report as the tables `portico status` prints. */
export function formatStatusReport(report: StatusReport): string {
  let out = `Distributions (last ${report.windowMinutes} minutes)\n`;
  out +=
    report.distributions.length === 0
      ? "  none\n"
      : formatTable(
          ["ID", "DOMAIN", "ENABLED", "VERSION", "EDGES CURRENT", "REQUESTS", "HIT RATE", "ERROR RATE"],
          report.distributions.map((row) => [
            row.id,
            row.domainName,
            row.enabled ? "yes" : "no",
            String(row.version),
            `${row.edgesCurrent}/${row.edgesLive}`,
            String(row.requests),
            percent(row.cacheHitRate),
            percent(row.errorRate),
          ]),
        );
  out += "\nEdges\n";
  out +=
    report.edges.length === 0
      ? "  none live\n"
      : formatTable(
          ["EDGE", "STATE", "JOINED", "LAST SEEN", "BEHIND ON"],
          report.edges.map((edge) => [
            edge.edgeId,
            "live",
            new Date(edge.joinedAtMs).toISOString().replace("T", " ").slice(0, 19),
            ago(report.generatedAtMs, edge.lastSeenAtMs),
            edge.behind.length === 0 ? "-" : edge.behind.join(","),
          ]),
        );
  if (report.accessLog !== undefined) {
    const log = report.accessLog;
    out += `\nAccess logs: ${log.pendingRecords} records waiting, ${log.retainedFiles} files awaiting retry, ${log.lostRecords} records lost\n`;
  }
  return out;
}

/** Runs `portico status`: fetches the report and writes it to standard output. */
export async function runStatus(options: StatusCommandOptions): Promise<void> {
  const credentials = await resolveStatusCredentials(options.dataDir);
  const report = await fetchStatus(options.endpoint, credentials, options.minutes);
  process.stdout.write(options.json ? JSON.stringify(report, null, 2) + "\n" : formatStatusReport(report));
}
