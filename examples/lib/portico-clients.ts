import { readFile, readdir } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { CloudFrontClient } from "@aws-sdk/client-cloudfront";
import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import { S3Client } from "@aws-sdk/client-s3";
import mime from "mime-types";
import { Agent, fetch, type Response } from "undici";

/** The addresses and credentials of a running Portico. */
export interface PorticoTarget {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  httpPort: number;
  httpsPort: number;
  caCertificatePath: string;
}

/**
 * Reads the target from the environment: PORTICO_ENDPOINT, PORTICO_HTTP_PORT,
 * PORTICO_HTTPS_PORT and the usual AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
 * Without AWS keys, it falls back to the root keys that `portico up` stored in
 * the data folder (PORTICO_DATA_DIR, default `.portico`).
 */
export async function targetFromEnvironment(): Promise<PorticoTarget> {
  const dataDir = process.env.PORTICO_DATA_DIR ?? ".portico";
  let accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  let secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    const path = join(dataDir, "credentials.json");
    let stored: { root?: { accessKeyId: string; secretAccessKey: string } };
    try {
      stored = JSON.parse(await readFile(path, "utf8")) as typeof stored;
    } catch (error) {
      throw new Error(
        `no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or start 'portico up' so that ${path} exists`,
        { cause: error },
      );
    }
    if (!stored.root) {
      throw new Error(`${path} has no root key: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`);
    }
    ({ accessKeyId, secretAccessKey } = stored.root);
  }
  return {
    endpoint: process.env.PORTICO_ENDPOINT ?? "http://127.0.0.1:4580",
    accessKeyId,
    secretAccessKey,
    httpPort: Number(process.env.PORTICO_HTTP_PORT ?? 8081),
    httpsPort: Number(process.env.PORTICO_HTTPS_PORT ?? 8444),
    caCertificatePath: join(dataDir, "tls", "ca.crt"),
  };
}

/** Creates the three AWS SDK clients, with default settings but endpoint, region, credentials and path style. */
export function createClients(target: PorticoTarget): {
  s3: S3Client;
  cloudfront: CloudFrontClient;
  cloudwatch: CloudWatchClient;
} {
  const common = {
    endpoint: target.endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: target.accessKeyId, secretAccessKey: target.secretAccessKey },
  };
  return {
    s3: new S3Client({ ...common, forcePathStyle: true }),
    cloudfront: new CloudFrontClient(common),
    cloudwatch: new CloudWatchClient(common),
  };
}

/**
 * Resolves every `*.localhost` name to 127.0.0.1, as RFC 6761 reserves them
 * for loopback; glibc's resolver, which Node.js uses, does not do it by itself.
 */
const localhostLookup: LookupFunction = (hostname, options, callback) => {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    if (options.all) {
      (callback as (error: null, addresses: LookupAddress[]) => void)(null, [
        { address: "127.0.0.1", family: 4 },
      ]);
    } else {
      callback(null, "127.0.0.1", 4);
    }
    return;
  }
  dnsLookup(hostname, options, callback);
};

/** A viewer: fetches edge URLs over HTTP and HTTPS, trusting Portico's local CA. */
export class Viewer {
  private constructor(private readonly agent: Agent) {}

  static async create(caCertificatePath: string): Promise<Viewer> {
    const ca = await readFile(caCertificatePath, "utf8");
    return new Viewer(new Agent({ connect: { ca, lookup: localhostLookup } }));
  }

  /** GET (or another method) without following redirects. */
  async request(url: string, headers: Record<string, string> = {}, method = "GET"): Promise<Response> {
    return fetch(url, { method, headers, redirect: "manual", dispatcher: this.agent });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** One file of a static site, with the key it gets in the bucket. */
export interface SiteFile {
  key: string;
  path: string;
  contentType: string;
}

/** Lists every file under `root` with its bucket key (slash-separated, relative to root). */
export async function listSite(root: string): Promise<SiteFile[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  const files: SiteFile[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    const key = relative(root, path).split(sep).join("/");
    files.push({ key, path, contentType: mime.lookup(entry.name) || "application/octet-stream" });
  }
  files.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  return files;
}

/** Runs `work` over `items` with at most `concurrency` in flight. */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      await work(items[index]!, index);
    }
  });
  await Promise.all(workers);
}
