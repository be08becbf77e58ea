import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { authErrors, ApiError } from "../errors.js";
import {
  SOURCE_ARN_HEADER,
  type CredentialStore,
  type Principal,
  type SigningKey,
} from "./principal.js";

/** The largest clock difference accepted between a client and the server. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
/** Presigned URLs may be valid for at most seven days, as in S3. */
export const MAX_PRESIGNED_EXPIRES_SECONDS = 7 * 24 * 3600;

export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The outcome of a verified SigV4 signature, with what the payload check needs. */
export interface SigV4Result {
  principal: Exclude<Principal, { type: "anonymous" }>;
  key: SigningKey;
  /** The credential scope's service, such as `s3`, `cloudfront` or `monitoring`. */
  service: string;
  region: string;
  /** `yyyymmddThhmmssZ`, as signed. */
  amzDate: string;
  /** The value signed as the payload hash: a hex SHA-256 or a streaming mode name. */
  payloadHash: string;
  /** The request's signature, the seed of aws-chunked chunk signatures. */
  signature: string;
  /** The HMAC key derived for this date, region and service. */
  signingKey: Buffer;
  presigned: boolean;
}

/** The parts of an HTTP request that SigV4 covers. */
export interface SignedRequest {
  method: string;
  /** The request-target as received: path and query, still percent-encoded. */
  target: string;
  headers: IncomingHttpHeaders;
  /** Header names and values in arrival order, as `IncomingMessage.rawHeaders`. */
  rawHeaders: string[];
}

interface ParsedCredential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

/** Returns the credential scope service of a request's SigV4 signature, or undefined. */
export function credentialScopeService(request: SignedRequest): string | undefined {
  const header = request.headers.authorization;
  let credential: string | undefined;
  if (typeof header === "string" && header.startsWith("AWS4-HMAC-SHA256")) {
    credential = /Credential=([^,\s]+)/.exec(header)?.[1];
  } else {
    const queryStart = request.target.indexOf("?");
    if (queryStart >= 0) {
      const params = new URLSearchParams(request.target.slice(queryStart + 1));
      credential = params.get("X-Amz-Credential") ?? undefined;
    }
  }
  return credential?.split("/")[3];
}

/** Returns whether a request carries a SigV4 signature, in a header or a query string. */
export function hasSigV4(request: SignedRequest): boolean {
  const header = request.headers.authorization;
  if (typeof header === "string") return header.startsWith("AWS4-HMAC-SHA256");
  return /[?&]X-Amz-Algorithm=AWS4-HMAC-SHA256(&|$)/.test(request.target);
}

/**
 * Verifies a SigV4 signature, from the `Authorization` header or a presigned
 * query string. `payloadHash` is the hash the caller computed of a body it has
 * already read. When it is undefined, the request's `x-amz-content-sha256` is
 * signed instead, so the caller must check the body against it as it streams.
 */
export function verifySigV4(
  request: SignedRequest,
  credentials: CredentialStore,
  nowMs: number = Date.now(),
  payloadHash?: string,
): SigV4Result {
  const header = request.headers.authorization;
  if (typeof header === "string") return verifyHeader(request, header, credentials, nowMs, payloadHash);
  return verifyPresigned(request, credentials, nowMs);
}

function verifyHeader(
  request: SignedRequest,
  header: string,
  credentials: CredentialStore,
  nowMs: number,
  computedPayloadHash: string | undefined,
): SigV4Result {
  const match =
    /^AWS4-HMAC-SHA256\s+Credential=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-f]{64})\s*$/.exec(
      header,
    );
  if (!match) {
    throw authErrors.authorizationHeaderMalformed(
      "The authorization header is malformed; it must be 'AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...'.",
    );
  }
  const credential = parseCredential(match[1]!);
  const signedHeaders = match[2]!.split(";");
  const signature = match[3]!;

  const amzDate = headerValue(request.headers, "x-amz-date") ?? headerValue(request.headers, "date");
  if (amzDate === undefined) {
    throw new ApiError(
      "AccessDenied",
      403,
      "AWS authentication requires a valid Date or x-amz-date header",
    );
  }
  const requestTimeMs = parseAmzDate(amzDate);
  checkSkew(requestTimeMs, amzDate, nowMs);
  checkScopeDate(credential, amzDate);

  const key = lookupKey(credentials, credential.accessKeyId);
  checkSignedHeaders(signedHeaders, request.headers);

  let payloadHash = headerValue(request.headers, "x-amz-content-sha256");
  if (credential.service === "s3") {
    if (payloadHash === undefined) {
      throw new ApiError(
        "InvalidRequest",
        400,
        "Missing required header for this request: x-amz-content-sha256",
      );
    }
  } else {
    payloadHash = computedPayloadHash ?? payloadHash ?? EMPTY_SHA256;
  }
  if (computedPayloadHash !== undefined && payloadHash !== computedPayloadHash) {
    throw new ApiError(
      "XAmzContentSHA256Mismatch",
      400,
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
      { details: { ClientComputedContentSHA256: payloadHash, S3ComputedContentSHA256: computedPayloadHash } },
    );
  }

  return completeVerification(request, {
    credential,
    key,
    signedHeaders,
    amzDate,
    payloadHash,
    signature,
    excludedQueryParameter: undefined,
  });
}

function verifyPresigned(
  request: SignedRequest,
  credentials: CredentialStore,
  nowMs: number,
): SigV4Result {
  const { path, query } = splitTarget(request.target);
  const params = new Map<string, string>();
  for (const [name, value] of parseQuery(query)) {
    if (!params.has(name)) params.set(name, value);
  }
  const required = ["X-Amz-Credential", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Expires"];
  for (const name of required) {
    if (!params.get(name)) {
      throw new ApiError(
        "AuthorizationQueryParametersError",
        400,
        `Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; ${name} is missing.`,
      );
    }
  }
  const credential = parseCredential(params.get("X-Amz-Credential")!);
  const amzDate = params.get("X-Amz-Date")!;
  const requestTimeMs = parseAmzDate(amzDate);
  const expiresSeconds = Number(params.get("X-Amz-Expires"));
  if (!Number.isInteger(expiresSeconds) || expiresSeconds < 1) {
    throw new ApiError(
      "AuthorizationQueryParametersError",
      400,
      "X-Amz-Expires should be a number of seconds from 1 to 604800.",
    );
  }
  if (expiresSeconds > MAX_PRESIGNED_EXPIRES_SECONDS) {
    throw new ApiError(
      "AuthorizationQueryParametersError",
      400,
      "X-Amz-Expires must be less than a week (in seconds) that is 604800",
    );
  }
  if (requestTimeMs - nowMs > MAX_CLOCK_SKEW_MS) {
    // S3 rejects a presigned URL dated in the future as not yet valid.
    throw new ApiError("AccessDenied", 403, "Request is not valid yet", {
      details: { "X-Amz-Date": amzDate, ServerTime: new Date(nowMs).toISOString() },
    });
  }
  if (nowMs > requestTimeMs + expiresSeconds * 1000) {
    throw new ApiError("AccessDenied", 403, "Request has expired", {
      details: {
        "X-Amz-Expires": String(expiresSeconds),
        Expires: new Date(requestTimeMs + expiresSeconds * 1000).toISOString(),
        ServerTime: new Date(nowMs).toISOString(),
      },
    });
  }
  checkScopeDate(credential, amzDate);
  const key = lookupKey(credentials, credential.accessKeyId);
  const signedHeaders = params.get("X-Amz-SignedHeaders")!.split(";");
  checkSignedHeaders(signedHeaders, request.headers);

  return completeVerification(request, {
    credential,
    key,
    signedHeaders,
    amzDate,
    payloadHash: params.get("X-Amz-Content-Sha256") ?? UNSIGNED_PAYLOAD,
    signature: params.get("X-Amz-Signature")!,
    excludedQueryParameter: "X-Amz-Signature",
  });
}

interface SignatureParts {
  credential: ParsedCredential;
  key: SigningKey;
  signedHeaders: string[];
  amzDate: string;
  payloadHash: string;
  signature: string;
  /** The query parameter that carries the signature itself, left out of the canonical query. */
  excludedQueryParameter: string | undefined;
}

/** Builds the canonical request, checks the signature and returns what the payload check needs. */
function completeVerification(request: SignedRequest, parts: SignatureParts): SigV4Result {
  const { credential, key, signedHeaders, amzDate, payloadHash, signature } = parts;
  const { path, query } = splitTarget(request.target);
  const canonicalRequest = buildCanonicalRequest(
    request.method,
    canonicalUri(path, credential.service),
    canonicalQuery(query, parts.excludedQueryParameter),
    signedHeaders,
    request,
    payloadHash,
  );
  const signingKey = deriveSigningKey(key.secretAccessKey, credential);
  checkSignature(signingKey, credential, amzDate, canonicalRequest, signature);

  return {
    principal: principalFor(key, signedHeaders, request.headers),
    key,
    service: credential.service,
    region: credential.region,
    amzDate,
    payloadHash,
    signature,
    signingKey,
    presigned: parts.excludedQueryParameter !== undefined,
  };
}

function parseCredential(value: string): ParsedCredential {
  const parts = value.split("/");
  if (parts.length !== 5 || parts[4] !== "aws4_request" || !/^\d{8}$/.test(parts[1]!)) {
    throw authErrors.authorizationHeaderMalformed(
      `The authorization header is malformed; the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`,
    );
  }
  const [accessKeyId, date, region, service] = parts as [string, string, string, string];
  if (!accessKeyId || !region || !service) {
    throw authErrors.authorizationHeaderMalformed(
      "The authorization header is malformed; the Credential has an empty access key, region or service.",
    );
  }
  return { accessKeyId, date, region, service };
}

function lookupKey(credentials: CredentialStore, accessKeyId: string): SigningKey {
  const key = credentials.lookup(accessKeyId);
  if (!key) throw authErrors.invalidAccessKeyId();
  return key;
}

function checkSkew(requestTimeMs: number, amzDate: string, nowMs: number): void {
  if (Math.abs(requestTimeMs - nowMs) > MAX_CLOCK_SKEW_MS) {
    throw authErrors.requestTimeTooSkewed(amzDate, formatAmzDate(nowMs));
  }
}

function checkScopeDate(credential: ParsedCredential, amzDate: string): void {
  if (!amzDate.startsWith(credential.date)) {
    throw authErrors.authorizationHeaderMalformed(
      `The authorization header is malformed; Invalid credential date "${credential.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`,
    );
  }
}

function checkSignedHeaders(signedHeaders: string[], headers: IncomingHttpHeaders): void {
  if (!signedHeaders.includes("host")) {
    throw new ApiError(
      "AccessDenied",
      403,
      "The host header must be signed. Add 'host' to SignedHeaders.",
    );
  }
  for (const name of signedHeaders) {
    if (name !== name.toLowerCase() || name === "") {
      throw authErrors.authorizationHeaderMalformed(
        `The authorization header is malformed; SignedHeaders entry '${name}' is not a lower-case header name.`,
      );
    }
  }
  // x-amz-date decides the signing time, so an unsigned one could replay a
  // signature at another time.
  if (headers["x-amz-date"] !== undefined && headers.authorization !== undefined && !signedHeaders.includes("x-amz-date")) {
    throw new ApiError("AccessDenied", 403, "There were headers present in the request which were not signed: x-amz-date");
  }
}

function principalFor(
  key: SigningKey,
  signedHeaders: string[],
  headers: IncomingHttpHeaders,
): Exclude<Principal, { type: "anonymous" }> {
  if (key.principal.type !== "service") return key.principal;
  const sourceArn = signedHeaders.includes(SOURCE_ARN_HEADER)
    ? headerValue(headers, SOURCE_ARN_HEADER)
    : undefined;
  return { ...key.principal, sourceArn };
}

/** Parses `yyyymmddThhmmssZ` or an HTTP date into epoch milliseconds. */
export function parseAmzDate(value: string): number {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  let ms: number;
  if (match) {
    const [, y, mo, d, h, mi, s] = match.map(Number) as number[];
    ms = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
  } else {
    ms = Date.parse(value);
  }
  if (!Number.isFinite(ms)) {
    throw new ApiError("AccessDenied", 403, `Invalid date format: ${JSON.stringify(value)}; expected yyyyMMdd'T'HHmmss'Z'.`);
  }
  return ms;
}

export function formatAmzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(",") : value;
}

function splitTarget(target: string): { path: string; query: string } {
  const queryStart = target.indexOf("?");
  if (queryStart < 0) return { path: target, query: "" };
  return { path: target.slice(0, queryStart), query: target.slice(queryStart + 1) };
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Splits a query string into decoded name/value pairs, keeping `+` as a literal plus. */
export function parseQuery(query: string): Array<[string, string]> {
  if (query === "") return [];
  const pairs: Array<[string, string]> = [];
  for (const part of query.split("&")) {
    if (part === "") continue;
    const equals = part.indexOf("=");
    const name = equals < 0 ? part : part.slice(0, equals);
    const value = equals < 0 ? "" : part.slice(equals + 1);
    pairs.push([safeDecode(name), safeDecode(value)]);
  }
  return pairs;
}

/** Percent-encodes every byte but the RFC 3986 unreserved characters (and `/` when kept). */
export function uriEncode(value: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of Buffer.from(value, "utf8")) {
    const isUnreserved =
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      (byte >= 0x30 && byte <= 0x39) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f ||
      byte === 0x7e;
    if (isUnreserved || (keepSlash && byte === 0x2f)) out += String.fromCharCode(byte);
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/**
 * S3 signs the path encoded once; every other service signs it encoded twice,
 * because its signer escapes the already escaped path again.
 */
function canonicalUri(rawPath: string, service: string): string {
  const path = rawPath === "" ? "/" : rawPath;
  if (service === "s3") return uriEncode(safeDecode(path), true);
  return uriEncode(uriEncode(safeDecode(path), true), true);
}

function canonicalQuery(query: string, exclude: string | undefined): string {
  const pairs = parseQuery(query)
    .filter(([name]) => name !== exclude)
    .map(([name, value]) => [uriEncode(name, false), uriEncode(value, false)] as const);
  pairs.sort(([name, value], [otherName, otherValue]) => compareCodeUnits(name, otherName) || compareCodeUnits(value, otherValue));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

/** Orders strings by UTF-16 code units; on encoded ASCII text that is byte order, as SigV4 sorts. */
function compareCodeUnits(left: string, right: string): number {
  if (left < right) return -1;
  return left > right ? 1 : 0;
}

function buildCanonicalRequest(
  method: string,
  uri: string,
  query: string,
  signedHeaders: string[],
  request: SignedRequest,
  payloadHash: string,
): string {
  const values = new Map<string, string[]>();
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    const name = request.rawHeaders[i]!.toLowerCase();
    const list = values.get(name);
    const value = request.rawHeaders[i + 1]!.trim().replace(/\s+/g, " ");
    if (list) list.push(value);
    else values.set(name, [value]);
  }
  let headerBlock = "";
  for (const name of signedHeaders) {
    headerBlock += `${name}:${(values.get(name) ?? []).join(",")}\n`;
  }
  return [method, uri, query, headerBlock, signedHeaders.join(";"), payloadHash].join("\n");
}

const signingKeyCache = new Map<string, Buffer>();

function deriveSigningKey(secret: string, credential: ParsedCredential): Buffer {
  const cacheKey = `${secret}\0${credential.date}\0${credential.region}\0${credential.service}`;
  const cached = signingKeyCache.get(cacheKey);
  if (cached) return cached;
  const dateKey = hmac(`AWS4${secret}`, credential.date);
  const regionKey = hmac(dateKey, credential.region);
  const serviceKey = hmac(regionKey, credential.service);
  const signingKey = hmac(serviceKey, "aws4_request");
  if (signingKeyCache.size > 1024) signingKeyCache.clear();
  signingKeyCache.set(cacheKey, signingKey);
  return signingKey;
}

/**
 * Compares the request's signature with the one computed from the canonical
 * request. On a mismatch the error carries what S3 returns to help a client
 * find the difference: the string to sign and the canonical request.
 */
function checkSignature(
  signingKey: Buffer,
  credential: ParsedCredential,
  amzDate: string,
  canonicalRequest: string,
  provided: string,
): void {
  const scope = `${credential.date}/${credential.region}/${credential.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  const expected = Buffer.from(hmac(signingKey, stringToSign).toString("hex"), "utf8");
  const actual = Buffer.from(provided, "utf8");
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw authErrors.signatureDoesNotMatch({
      AWSAccessKeyId: credential.accessKeyId,
      StringToSign: stringToSign,
      SignatureProvided: provided,
      CanonicalRequest: canonicalRequest,
    });
  }
}

export function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}
