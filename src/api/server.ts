import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../common/logger.js";
import { newRequestId } from "../common/ids.js";
import type { ApiRequest, ProtocolService } from "./context.js";
import { ApiError, authErrors } from "./errors.js";
import type { CredentialStore, Principal } from "./auth/principal.js";
import { credentialScopeService, hasSigV4, parseQuery, verifySigV4, type SigV4Result } from "./auth/sigv4.js";

/** How long `close` lets requests in flight finish before it closes their connections. */
export const API_DRAIN_TIMEOUT_MS = 10_000;

/** The largest body read whole for CloudFront and CloudWatch requests. */
export const MAX_BUFFERED_BODY_BYTES = 8 * 1024 * 1024;

export type ProtocolName = "s3" | "cloudfront" | "cloudwatch" | "iam";

export type HealthStatus = "ok" | "starting" | "edge down";

export interface ApiServerOptions {
  credentials: CredentialStore;
  /** The protocol services; IAM is optional so that a server can run without users. */
  services: Record<Exclude<ProtocolName, "iam">, ProtocolService> & { iam?: ProtocolService };
  log: Logger;
  /**
   * Returns the state for `GET /_portico/health`: "ok" once every component
   * is ready, "starting" before, and "edge down" when no edge process is left
   * to serve viewers. Only "ok" gets status 200.
   */
  health: () => HealthStatus;
  /**
   * Extra routes under `/_portico/`, such as metrics or the dashboard, by
   * exact path. A key `<prefix>/*` serves every other path under `<prefix>/`.
   */
  adminRoutes?: Map<string, (request: IncomingMessage, response: ServerResponse) => void | Promise<void>>;
}

/** SigV4 credential scope services and the protocol each one selects. */
const SERVICE_BY_SCOPE: Record<string, ProtocolName> = {
  s3: "s3",
  cloudfront: "cloudfront",
  monitoring: "cloudwatch",
  iam: "iam",
};

const CLOUDWATCH_JSON_TARGET_PREFIX = "GraniteServiceVersion20100801.";
const CLOUDWATCH_CBOR_PATH_PREFIX = "/service/GraniteServiceVersion20100801/";

/**
 * The one API endpoint: it picks the protocol from the SigV4 credential scope
 * (or, for unsigned requests, from the path and headers), verifies the
 * signature, and hands the request to that protocol's service.
 */
export class ApiServer {
  readonly server: Server;

  constructor(private readonly options: ApiServerOptions) {
    // No whole-request deadline: a 5 GiB upload at a modest rate takes longer than
    // Node's default 300 s. Stalled bodies are cut by the S3 body idle timeout instead,
    // and request heads still have to arrive within headersTimeout.
    this.server = createServer({ requireHostHeader: false, requestTimeout: 0 }, (request, response) => {
      void this.dispatch(request, response);
    });
    this.server.keepAliveTimeout = 65_000;
  }

  async listen(port: number, host: string): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  /**
   * Stops accepting connections and waits for requests in flight, closing
   * idle keep-alive connections at once and any still busy after `drainMs`.
   */
  async close(drainMs = API_DRAIN_TIMEOUT_MS): Promise<void> {
    const timer = setTimeout(() => this.server.closeAllConnections(), drainMs);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
    clearTimeout(timer);
  }

  private async dispatch(raw: IncomingMessage, response: ServerResponse): Promise<void> {
    const requestId = newRequestId();
    const target = raw.url ?? "/";
    const queryStart = target.indexOf("?");
    const path = queryStart < 0 ? target : target.slice(0, queryStart);
    const log = this.options.log.child({ requestId });

    if (path.startsWith("/_portico/")) {
      await this.serveAdmin(path, raw, response, log);
      return;
    }

    const signed = { method: raw.method ?? "GET", target, headers: raw.headers, rawHeaders: raw.rawHeaders };
    const protocol = this.selectProtocol(raw, path);
    const service = this.options.services[protocol]!;
    const request: ApiRequest = {
      raw,
      method: raw.method ?? "GET",
      target,
      path,
      query: parseQuery(queryStart < 0 ? "" : target.slice(queryStart + 1)),
      requestId,
      principal: { type: "anonymous" } satisfies Principal,
      sigv4: undefined,
      secure: "encrypted" in raw.socket && raw.socket.encrypted === true,
      sourceIp: raw.socket.remoteAddress ?? "",
      log,
      body: undefined,
    };
    response.setHeader("x-amz-request-id", requestId);

    try {
      if (protocol !== "s3") {
        request.body = await readBody(raw, MAX_BUFFERED_BODY_BYTES);
      }
      if (hasSigV4(signed)) {
        const scopeService = credentialScopeService(signed);
        if (!scopeService) {
          throw authErrors.authorizationHeaderMalformed(
            `The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
          );
        }
        if (!this.serves(scopeService)) {
          throw new ApiError(
            "InvalidRequest",
            400,
            `The credential scope service '${scopeService}' is not served here; use s3, cloudfront, monitoring or iam.`,
          );
        }
        const bodyHash =
          request.body === undefined ? undefined : createHash("sha256").update(request.body).digest("hex");
        const result: SigV4Result = verifySigV4(signed, this.options.credentials, Date.now(), bodyHash);
        request.sigv4 = result;
        request.principal = result.principal;
      } else if (protocol !== "s3") {
        throw authErrors.missingAuthentication();
      }
      await service.handle(request, response);
    } catch (error) {
      this.fail(error, request, response, service);
    }
  }

  private serves(scopeService: string): boolean {
    const protocol = SERVICE_BY_SCOPE[scopeService];
    return protocol !== undefined && this.options.services[protocol] !== undefined;
  }

  private selectProtocol(raw: IncomingMessage, path: string): ProtocolName {
    const signed = { method: raw.method ?? "GET", target: raw.url ?? "/", headers: raw.headers, rawHeaders: [] };
    const scopeService = hasSigV4(signed) ? credentialScopeService(signed) : undefined;
    if (scopeService !== undefined && this.serves(scopeService)) return SERVICE_BY_SCOPE[scopeService]!;
    if (path.startsWith("/2020-05-31/")) return "cloudfront";
    const amzTarget = raw.headers["x-amz-target"];
    if (typeof amzTarget === "string" && amzTarget.startsWith(CLOUDWATCH_JSON_TARGET_PREFIX)) return "cloudwatch";
    if (path.startsWith(CLOUDWATCH_CBOR_PATH_PREFIX)) return "cloudwatch";
    if (isCloudWatchQuery(raw, path)) return "cloudwatch";
    return "s3";
  }

  private fail(error: unknown, request: ApiRequest, response: ServerResponse, service: ProtocolService): void {
    const apiError =
      error instanceof ApiError
        ? error
        : new ApiError("InternalError", 500, "We encountered an internal error. Please try again.", { cause: error });
    if (apiError.status >= 500) {
      request.log.error({ err: error, method: request.method, path: request.path }, "request failed");
    } else {
      request.log.info(
        { code: apiError.code, status: apiError.status, method: request.method, path: request.path },
        "request rejected",
      );
    }
    if (response.headersSent) {
      response.destroy();
      return;
    }
    service.renderError(apiError, request, response);
  }

  /** Returns the route of `path`: its exact route, else the `<prefix>/*` route of its nearest prefix. */
  private adminRoute(path: string): ((request: IncomingMessage, response: ServerResponse) => void | Promise<void>) | undefined {
    const routes = this.options.adminRoutes;
    if (routes === undefined) return undefined;
    const exact = routes.get(path);
    if (exact !== undefined) return exact;
    for (let end = path.lastIndexOf("/"); end > 0; end = path.lastIndexOf("/", end - 1)) {
      const fallback = routes.get(`${path.slice(0, end)}/*`);
      if (fallback !== undefined) return fallback;
    }
    return undefined;
  }

  private async serveAdmin(
    path: string,
    raw: IncomingMessage,
    response: ServerResponse,
    log: Logger,
  ): Promise<void> {
    if (path === "/_portico/health") {
      const status = this.options.health();
      response.writeHead(status === "ok" ? 200 : 503, { "content-type": "application/json" });
      response.end(JSON.stringify({ status }) + "\n");
      return;
    }
    const route = this.adminRoute(path);
    if (!route) {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("not found\n");
      return;
    }
    try {
      await route(raw, response);
    } catch (error) {
      log.error({ err: error, path }, "admin route failed");
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
      response.end("internal error\n");
    }
  }
}

/**
 * An unsigned CloudWatch Query request: `POST /` with a form body (S3 has no
 * urlencoded form requests), or `GET /?Action=...&Version=2010-08-01`.
 */
function isCloudWatchQuery(raw: IncomingMessage, path: string): boolean {
  if (path !== "/") return false;
  const contentType = String(raw.headers["content-type"] ?? "").toLowerCase();
  if (raw.method === "POST" && contentType.startsWith("application/x-www-form-urlencoded")) return true;
  return raw.method === "GET" && /[?&]Action=/.test(raw.url ?? "") && /[?&]Version=2010-08-01(&|$)/.test(raw.url ?? "");
}

/** Reads a whole body, rejecting one over `maxBytes`. */
export async function readBody(raw: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = Number(raw.headers["content-length"] ?? "0");
  if (declared > maxBytes) {
    throw new ApiError("RequestEntityTooLarge", 413, `The request body is larger than ${maxBytes} bytes.`);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of raw as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new ApiError("RequestEntityTooLarge", 413, `The request body is larger than ${maxBytes} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}
