import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { request } from "undici";
import { writeFileDurably } from "../../common/durable.js";

/** How long one log file upload may take before it counts as failed. */
const UPLOAD_TIMEOUT_MS = 30_000;

/** A failed upload, with the S3 error code when the store returned one. */
export class LogDeliveryError extends Error {
  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface S3LogDeliveryOptions {
  /** Base URL of the bucket store, such as `http://127.0.0.1:4580`. */
  endpoint: string;
  /** The key that signs uploads; its principal must be allowed s3:PutObject on the log bucket. */
  credentials: { accessKeyId: string; secretAccessKey: string };
}

/**
 * Uploads log files with a SigV4-signed PutObject, path-style, the way any
 * S3 client would, so the store authorizes the upload like every other
 * request.
 */
export class S3LogDelivery {
  private readonly endpointUrl: URL;
  private readonly signer: SignatureV4;

  constructor(options: S3LogDeliveryOptions) {
    this.endpointUrl = new URL(options.endpoint);
    this.signer = new SignatureV4({
      service: "s3",
      region: "us-east-1",
      credentials: options.credentials,
      sha256: Hash.bind(null, "sha256"),
      uriEscapePath: false,
      applyChecksum: false,
    });
  }

  async put(bucket: string, key: string, body: Buffer): Promise<void> {
    const path = `/${bucket}/${encodeKey(key)}`;
    const host = this.endpointUrl.host;
    const signed = await this.signer.sign({
      method: "PUT",
      protocol: this.endpointUrl.protocol,
      hostname: this.endpointUrl.hostname,
      ...(this.endpointUrl.port === "" ? {} : { port: Number(this.endpointUrl.port) }),
      path,
      query: {},
      headers: {
        host,
        "content-type": "application/x-gzip",
        "content-length": String(body.length),
        "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"),
      },
      body,
    });

    let response;
    try {
      response = await request(new URL(path, this.endpointUrl), {
        method: "PUT",
        headers: signed.headers,
        body,
        headersTimeout: UPLOAD_TIMEOUT_MS,
        bodyTimeout: UPLOAD_TIMEOUT_MS,
      });
    } catch (error) {
      throw new LogDeliveryError(`log upload to ${bucket} failed: ${(error as Error).message}`, undefined, undefined, {
        cause: error,
      });
    }
    const text = await response.body.text();
    if (response.statusCode !== 200) {
      const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
      throw new LogDeliveryError(
        `log upload to ${bucket} returned ${response.statusCode}${code === undefined ? "" : ` ${code}`}`,
        response.statusCode,
        code,
      );
    }
  }
}

/** Writes a log file under a local folder, creating the folders its name contains. */
export async function writeLocalLogFile(folder: string, name: string, body: Buffer): Promise<string> {
  const path = join(folder, name);
  await mkdir(dirname(path), { recursive: true });
  await writeFileDurably(path, body, 0o640);
  return path;
}

/** Percent-encodes an object key for the path, keeping `/` between segments. */
function encodeKey(key: string): string {
  return key
    .split("/")
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (char) => "%" + char.charCodeAt(0).toString(16).toUpperCase()),
    )
    .join("/");
}
