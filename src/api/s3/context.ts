import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Logger } from "../../common/logger.js";
import type { ApiRequest } from "../context.js";
import type { BucketStore } from "../../store/bucket-store.js";
import type { BucketOwnership } from "./authorize.js";
import type { S3Route } from "./router.js";

/** Dependencies shared by every S3 operation handler. */
export interface S3Context {
  store: BucketStore;
  accountId: string;
  log: Logger;
  /** How long a request body may stall before the request fails with RequestTimeout. */
  bodyIdleTimeoutMs: number;
  /** Which user owns which bucket; without it, users own no bucket. */
  owners?: BucketOwnership | undefined;
}

export type S3Handler = (context: S3Context, request: ApiRequest, response: ServerResponse, route: S3Route) => Promise<void>;

/** Returns the Owner element of listings, with a canonical user id derived from the account id. */
export function ownerOf(accountId: string): { ID: string; DisplayName: string } {
  return { ID: createHash("sha256").update(`portico-account:${accountId}`).digest("hex"), DisplayName: accountId };
}

/** Returns the first value of a query parameter, or undefined. */
export function queryValue(request: ApiRequest, name: string): string | undefined {
  return request.query.find(([candidate]) => candidate === name)?.[1];
}

export function headerValue(request: ApiRequest, name: string): string | undefined {
  const value = request.raw.headers[name];
  return Array.isArray(value) ? value.join(",") : value;
}

/** Sends an empty response with the given status and headers. */
export function sendEmpty(response: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...headers, "content-length": 0 });
  response.end();
}

export function isOwner(request: ApiRequest): boolean {
  return request.principal.type === "root" || request.principal.type === "user";
}
