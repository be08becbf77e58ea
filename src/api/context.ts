import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "../common/logger.js";
import type { ApiError } from "./errors.js";
import type { Principal } from "./auth/principal.js";
import type { SigV4Result } from "./auth/sigv4.js";

/** A request on the API endpoint after its signature has been checked. */
export interface ApiRequest {
  raw: IncomingMessage;
  method: string;
  /** The request-target as received: path and query, percent-encoded. */
  target: string;
  /** The path part of the target, still percent-encoded. */
  path: string;
  /** Query parameters, percent-decoded, in arrival order; `+` stays a plus. */
  query: Array<[string, string]>;
  requestId: string;
  principal: Principal;
  /** The verified SigV4 signature, when the request had one. */
  sigv4: SigV4Result | undefined;
  /** True when the request arrived over TLS. */
  secure: boolean;
  sourceIp: string;
  log: Logger;
  /**
   * The whole body, for protocols whose bodies are read and hashed before the
   * signature check (CloudFront, CloudWatch). S3 streams its body instead.
   */
  body: Buffer | undefined;
}

/** One protocol on the API endpoint: S3, CloudFront, CloudWatch. */
export interface ProtocolService {
  /** Handles a request whose signature has been verified or that is anonymous. */
  handle(request: ApiRequest, response: ServerResponse): Promise<void>;
  /** Writes `error` as this protocol's error document. */
  renderError(error: ApiError, request: ApiRequest, response: ServerResponse): void;
}
