import type { Readable } from "node:stream";

/** A request the edge sends to an origin on a viewer's behalf. */
export interface OriginRequest {
  method: string;
  /** The viewer's path, percent-encoded exactly as received; the origin prepends its OriginPath. */
  path: string;
  /** The forwarded query string without `?`, or empty. */
  query: string;
  /** Headers for the origin, lower-case names. */
  headers: Record<string, string>;
  body: Readable | undefined;
  /** The viewer's protocol, which `match-viewer` origins follow. */
  viewerProtocol: "http" | "https";
}

export interface OriginResponse {
  status: number;
  /** Lower-case names. */
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
  /** Time from sending the request to the response headers. */
  firstByteLatencyMs: number;
  /** For S3 origins: whether the request was signed through an origin access control. */
  signed?: boolean;
}

/** Fetches from one configured origin of a distribution. */
export interface Origin {
  readonly id: string;
  fetch(request: OriginRequest): Promise<OriginResponse>;
}

/** Why an origin request failed without a response; it maps to the status the viewer gets. */
export type OriginFailureKind = "connect" | "timeout" | "protocol";

/** An origin request that produced no HTTP response. */
export class OriginError extends Error {
  readonly kind: OriginFailureKind;

  constructor(kind: OriginFailureKind, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OriginError";
    this.kind = kind;
  }

  /** CloudFront answers 504 when the origin timed out and 502 when it could not be used. */
  get viewerStatus(): number {
    return this.kind === "timeout" ? 504 : 502;
  }
}
