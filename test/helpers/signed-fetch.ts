import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { fetch } from "undici";
import type { PorticoTarget } from "../../examples/lib/portico-clients.js";

export interface SignedRequestOptions {
  service: "s3" | "cloudfront" | "monitoring";
  method: string;
  /** Path with an optional query string, already percent-encoded. */
  path: string;
  body?: string | Buffer;
  headers?: Record<string, string>;
  /** Signs as if the clock read this time. */
  signingDate?: Date;
  /** Signs with this secret instead of the target's. */
  secretAccessKey?: string;
}

/**
 * Sends one SigV4-signed request, for inputs that the SDKs would not send
 * (malformed bodies, skewed clocks, wrong secrets).
 */
export async function signedFetch(
  target: PorticoTarget,
  options: SignedRequestOptions,
): Promise<{ status: number; headers: Headers; body: string }> {
  const url = new URL(options.path, target.endpoint);
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = value;
  const body = options.body ?? "";
  const signer = new SignatureV4({
    service: options.service,
    region: "us-east-1",
    credentials: {
      accessKeyId: target.accessKeyId,
      secretAccessKey: options.secretAccessKey ?? target.secretAccessKey,
    },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: options.service !== "s3",
    applyChecksum: options.service === "s3",
  });
  const signed = await signer.sign(
    {
      method: options.method,
      protocol: url.protocol,
      hostname: url.hostname,
      port: Number(url.port),
      path: url.pathname,
      query,
      headers: { host: url.host, ...(options.headers ?? {}) },
      body,
    },
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  const response = await fetch(url, {
    method: options.method,
    headers: signed.headers,
    ...(options.method === "GET" || options.method === "HEAD" ? {} : { body }),
  });
  return {
    status: response.status,
    headers: response.headers as unknown as Headers,
    body: await response.text(),
  };
}
