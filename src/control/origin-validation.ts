import type { CustomErrorResponse, Origin, OriginGroup } from "@aws-sdk/client-cloudfront";
import { cloudFrontError, controlErrors } from "./errors.js";
import { checkHeaderValue } from "./header-value.js";

const invalid = controlErrors.invalidArgument;

/** CustomOriginConfig limits (CloudFront API reference, CustomOriginConfig and Origin). */
const ORIGIN_PROTOCOL_POLICIES = new Set(["http-only", "match-viewer", "https-only"]);
const MAX_ORIGIN_TIMEOUT_SECONDS = 180;
const MAX_CONNECTION_ATTEMPTS = 3;
const MAX_CONNECTION_TIMEOUT_SECONDS = 10;
export const MAX_CUSTOM_HEADERS_PER_ORIGIN = 10;

/** Status codes CloudFront accepts in CustomErrorResponse.ErrorCode and in origin group failover criteria. */
const CUSTOM_ERROR_CODES = new Set([400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504]);
const FAILOVER_STATUS_CODES = new Set([400, 403, 404, 416, 500, 502, 503, 504]);

function checkRange(value: number | undefined, min: number, max: number, field: string): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${field} must be an integer from ${min} to ${max}, not ${value}.`);
  }
}

/** Checks an origin port: 80, 443, or 1024 to 65535. */
function checkPort(port: number | undefined, field: string): void {
  if (port === undefined) throw invalid(`${field} is required.`);
  if (port !== 80 && port !== 443 && (port < 1024 || port > 65535)) {
    throw invalid(`${field} ${port} is not allowed; use 80, 443 or a port from 1024 to 65535.`);
  }
}

/**
 * Headers that an origin's CustomHeaders may not set, from the CloudFront
 * developer guide's "Custom headers that CloudFront can't add to origin
 * requests"; names starting with X-Amz- or X-Edge- are also denied.
 */
const DENIED_CUSTOM_HEADERS = new Set([
  "cache-control",
  "connection",
  "content-length",
  "cookie",
  "host",
  "if-match",
  "if-modified-since",
  "if-none-match",
  "if-range",
  "if-unmodified-since",
  "max-forwards",
  "pragma",
  "proxy-authorization",
  "proxy-connection",
  "range",
  "request-range",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "via",
  "x-real-ip",
]);

/** Checks the numeric and enumerated settings of one origin. */
export function checkOriginSettings(origin: Origin, path: string): void {
  checkRange(origin.ConnectionAttempts, 1, MAX_CONNECTION_ATTEMPTS, `${path}.ConnectionAttempts`);
  checkRange(origin.ConnectionTimeout, 1, MAX_CONNECTION_TIMEOUT_SECONDS, `${path}.ConnectionTimeout`);
  const headers = origin.CustomHeaders?.Items ?? [];
  if (headers.length > MAX_CUSTOM_HEADERS_PER_ORIGIN) {
    throw cloudFrontError(
      "TooManyOriginCustomHeaders",
      `${path}.CustomHeaders lists ${headers.length} headers; the maximum is ${MAX_CUSTOM_HEADERS_PER_ORIGIN}.`,
    );
  }
  headers.forEach((header, index) => {
    if (!header.HeaderName || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header.HeaderName)) {
      throw invalid(`${path}.CustomHeaders.Items[${index}].HeaderName '${header.HeaderName ?? ""}' is not a valid header name.`);
    }
    checkHeaderValue(header.HeaderValue ?? "", `${path}.CustomHeaders.Items[${index}].HeaderValue`);
    const name = header.HeaderName.toLowerCase();
    if (DENIED_CUSTOM_HEADERS.has(name) || name.startsWith("x-amz-") || name.startsWith("x-edge-")) {
      throw invalid(
        `${path}.CustomHeaders.Items[${index}].HeaderName '${header.HeaderName}' is a header that CloudFront does not let an origin add.`,
      );
    }
  });

  const custom = origin.CustomOriginConfig;
  if (!custom) return;
  const where = `${path}.CustomOriginConfig`;
  checkPort(custom.HTTPPort, `${where}.HTTPPort`);
  checkPort(custom.HTTPSPort, `${where}.HTTPSPort`);
  if (!ORIGIN_PROTOCOL_POLICIES.has(custom.OriginProtocolPolicy ?? "")) {
    throw invalid(
      `${where}.OriginProtocolPolicy '${custom.OriginProtocolPolicy ?? ""}' is not valid; use http-only, match-viewer or https-only.`,
    );
  }
  checkRange(custom.OriginReadTimeout, 1, MAX_ORIGIN_TIMEOUT_SECONDS, `${where}.OriginReadTimeout`);
  checkRange(custom.OriginKeepaliveTimeout, 1, MAX_ORIGIN_TIMEOUT_SECONDS, `${where}.OriginKeepaliveTimeout`);
}

/** Checks an origin group's members and failover status codes. */
export function checkOriginGroupSettings(group: OriginGroup, path: string): void {
  if ((group.Members?.Items ?? []).length !== 2) {
    throw invalid(`${path}.Members must list exactly two origins, a primary and a secondary.`);
  }
  const codes = group.FailoverCriteria?.StatusCodes?.Items ?? [];
  if (codes.length === 0) throw invalid(`${path}.FailoverCriteria.StatusCodes must list at least one status code.`);
  for (const code of codes) {
    if (!FAILOVER_STATUS_CODES.has(code)) {
      throw invalid(`${path}.FailoverCriteria.StatusCodes: ${code} is not allowed; use ${[...FAILOVER_STATUS_CODES].join(", ")}.`);
    }
  }
}

/** Checks custom error responses: known error codes, absolute page paths, and no code twice. */
export function checkCustomErrorResponses(responses: CustomErrorResponse[]): void {
  const seen = new Set<number>();
  responses.forEach((response, index) => {
    const path = `DistributionConfig.CustomErrorResponses.Items[${index}]`;
    const code = response.ErrorCode;
    if (code === undefined || !CUSTOM_ERROR_CODES.has(code)) {
      throw invalid(`${path}.ErrorCode ${code ?? ""} is not allowed; use ${[...CUSTOM_ERROR_CODES].join(", ")}.`);
    }
    if (seen.has(code)) throw invalid(`${path}.ErrorCode ${code} is listed more than once.`);
    seen.add(code);
    if (response.ResponsePagePath && !response.ResponsePagePath.startsWith("/")) {
      throw invalid(`${path}.ResponsePagePath '${response.ResponsePagePath}' must start with '/'.`);
    }
    if (response.ResponsePagePath && !response.ResponseCode) {
      throw invalid(`${path}.ResponseCode is required when ResponsePagePath is set.`);
    }
    if (response.ResponseCode && !/^[1-5]\d\d$/.test(response.ResponseCode)) {
      throw invalid(`${path}.ResponseCode '${response.ResponseCode}' is not an HTTP status code.`);
    }
    checkRange(response.ErrorCachingMinTTL, 0, 31_536_000, `${path}.ErrorCachingMinTTL`);
  });
}
