import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { Transform, type Readable, type TransformCallback } from "node:stream";
import type { ApiRequest } from "../context.js";
import { ApiError, authErrors } from "../errors.js";
import {
  CHECKSUM_ALGORITHMS,
  checksumDigestBytes,
  checksumHeaderName,
  createChecksumHasher,
  parseChecksumAlgorithm,
  type ChecksumAlgorithm,
  type ChecksumHasher,
} from "../../store/checksums.js";
import { EMPTY_SHA256, UNSIGNED_PAYLOAD, hmac, sha256Hex } from "./sigv4.js";

export const STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/** The largest chunk-size line or trailer line accepted in an aws-chunked body. */
const MAX_CHUNK_LINE_BYTES = 4096;

/** Digests of a body, known once every byte has been read and verified. */
export interface PayloadDigests {
  sizeBytes: number;
  md5Hex: string;
  /** The verified (or, when the client sent none, computed) additional checksum. */
  checksum: { algorithm: ChecksumAlgorithm; valueBase64: string } | undefined;
}

export interface VerifiedPayload {
  /**
   * The decoded body. It fails with an ApiError before it ends when a
   * signature, hash, checksum or length does not match, so a consumer that
   * waits for its end never accepts an unverified body.
   */
  body: Readable;
  /** Digests of the decoded body; valid only after `body` has ended. */
  digests(): PayloadDigests;
}

export interface PayloadOptions {
  /** An algorithm to compute even when the request carries no checksum, such as a multipart upload's. */
  computeAlgorithm?: ChecksumAlgorithm | undefined;
  /** How long the body may send nothing before the request fails with RequestTimeout. */
  idleTimeoutMs?: number | undefined;
}

/**
 * Default time a body may stall. S3 documents no figure for its RequestTimeout;
 * this is an estimate long enough for a client that pauses between chunks.
 */
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 20_000;

type PayloadMode =
  | { kind: "unsigned" }
  | { kind: "sha256"; expectedHex: string }
  | { kind: "chunked"; signed: boolean; trailer: boolean };

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(",") : value;
}

/** Decides how the body is framed and verified from the signed payload hash. */
function payloadMode(request: ApiRequest): PayloadMode {
  const declared = request.sigv4?.payloadHash ?? headerValue(request.raw.headers, "x-amz-content-sha256");
  if (declared === undefined || declared === UNSIGNED_PAYLOAD) return { kind: "unsigned" };
  if (/^[0-9a-f]{64}$/.test(declared)) return { kind: "sha256", expectedHex: declared };
  if (declared === STREAMING_UNSIGNED_TRAILER) return { kind: "chunked", signed: false, trailer: true };
  if (declared === STREAMING_SIGNED || declared === STREAMING_SIGNED_TRAILER) {
    if (request.sigv4 === undefined || request.sigv4.presigned) {
      throw new ApiError(
        "InvalidRequest",
        400,
        `x-amz-content-sha256 ${declared} requires a SigV4 Authorization header to sign the chunks.`,
      );
    }
    return { kind: "chunked", signed: true, trailer: declared === STREAMING_SIGNED_TRAILER };
  }
  throw new ApiError("InvalidArgument", 400, `x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-* or a SHA-256 hex digest, not '${declared}'.`, {
    details: { ArgumentName: "x-amz-content-sha256", ArgumentValue: declared },
  });
}

/** Finds the additional checksum the request declares in a header or in `x-amz-trailer`. */
function declaredChecksum(
  headers: IncomingHttpHeaders,
  trailer: boolean,
): { algorithm: ChecksumAlgorithm; headerValue: string | undefined; inTrailer: boolean } | undefined {
  const present = CHECKSUM_ALGORITHMS.filter((algorithm) => headers[checksumHeaderName(algorithm)] !== undefined);
  if (present.length > 1) {
    throw new ApiError("InvalidRequest", 400, "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.");
  }
  if (present.length === 1) {
    const algorithm = present[0]!;
    const value = headerValue(headers, checksumHeaderName(algorithm))!;
    checkChecksumFormat(algorithm, value);
    return { algorithm, headerValue: value, inTrailer: false };
  }
  const trailerNames = (headerValue(headers, "x-amz-trailer") ?? "")
    .split(",")
    .map((name) => name.trim().toLowerCase())
    .filter((name) => name !== "");
  for (const name of trailerNames) {
    const algorithm = name.startsWith("x-amz-checksum-") ? parseChecksumAlgorithm(name.slice("x-amz-checksum-".length)) : undefined;
    if (!algorithm) {
      throw new ApiError("InvalidRequest", 400, `The trailer ${name} is not supported; send an x-amz-checksum-* trailer.`);
    }
    if (!trailer) {
      throw new ApiError("InvalidRequest", 400, "x-amz-trailer requires a STREAMING-*-TRAILER x-amz-content-sha256 value.");
    }
    return { algorithm, headerValue: undefined, inTrailer: true };
  }
  const announced = headerValue(headers, "x-amz-sdk-checksum-algorithm");
  if (announced !== undefined) {
    const algorithm = parseChecksumAlgorithm(announced);
    if (!algorithm) {
      throw new ApiError("InvalidRequest", 400, `Checksum algorithm '${announced}' is not supported; use CRC32, CRC32C, CRC64NVME, SHA1 or SHA256.`);
    }
    return { algorithm, headerValue: undefined, inTrailer: false };
  }
  return undefined;
}

function checkChecksumFormat(algorithm: ChecksumAlgorithm, value: string): void {
  const bytes = Buffer.from(value, "base64");
  if (bytes.length !== checksumDigestBytes(algorithm) || bytes.toString("base64") !== value) {
    throw new ApiError("InvalidRequest", 400, `Value for ${checksumHeaderName(algorithm)} header is invalid.`);
  }
}

function parseContentMd5(headers: IncomingHttpHeaders): string | undefined {
  const value = headerValue(headers, "content-md5");
  if (value === undefined) return undefined;
  const bytes = Buffer.from(value, "base64");
  if (bytes.length !== 16 || bytes.toString("base64") !== value.trim()) {
    throw new ApiError("InvalidDigest", 400, "The Content-MD5 you specified was invalid.", { details: { "Content-MD5": value } });
  }
  return bytes.toString("hex");
}

function parseLength(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    throw new ApiError("InvalidArgument", 400, `${name} must be a non-negative integer, not '${value}'.`, {
      details: { ArgumentName: name, ArgumentValue: value },
    });
  }
  return Number(value);
}

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/**
 * Turns a raw S3 request body into a verified stream of its decoded bytes.
 * It handles the SigV4 payload modes UNSIGNED-PAYLOAD, a hex SHA-256,
 * STREAMING-AWS4-HMAC-SHA256-PAYLOAD and the two -TRAILER modes, as the S3 API
 * reference describes them under "Authenticating Requests (AWS Signature
 * Version 4)". It also checks `x-amz-checksum-*` headers or trailers and `Content-MD5`.
 */
export function openVerifiedPayload(request: ApiRequest, options: PayloadOptions = {}): VerifiedPayload {
  const headers = request.raw.headers;
  const mode = payloadMode(request);
  const checksum = declaredChecksum(headers, mode.kind === "chunked" && mode.trailer);
  const contentMd5Hex = parseContentMd5(headers);

  let expectedLength: number | undefined;
  let decoder: AwsChunkedDecoder | undefined;
  if (mode.kind === "chunked") {
    expectedLength = parseLength(headerValue(headers, "x-amz-decoded-content-length"), "x-amz-decoded-content-length");
    decoder = new AwsChunkedDecoder(mode.signed, mode.trailer, request);
  } else {
    expectedLength = parseLength(headerValue(headers, "content-length"), "Content-Length");
  }

  const algorithm = checksum?.algorithm ?? options.computeAlgorithm;
  const verifier = new DigestVerifier({
    expectedLength,
    expectedSha256Hex: mode.kind === "sha256" ? mode.expectedHex : undefined,
    contentMd5Hex,
    algorithm,
    expectedChecksum: () => {
      if (!checksum) return undefined;
      if (!checksum.inTrailer) return checksum.headerValue;
      const value = decoder?.trailers.get(checksumHeaderName(checksum.algorithm));
      if (value === undefined) {
        throw new ApiError("InvalidRequest", 400, `The trailer ${checksumHeaderName(checksum.algorithm)} declared in x-amz-trailer is missing.`);
      }
      checkChecksumFormat(checksum.algorithm, value);
      return value;
    },
  });

  const source: Readable = request.raw;
  const body = decoder ? source.pipe(decoder).pipe(verifier) : source.pipe(verifier);
  // pipe() does not forward errors, so a failure anywhere upstream must fail the body.
  source.on("error", (error) => verifier.destroy(error));
  source.once("aborted", () => verifier.destroy(incompleteBody()));
  decoder?.on("error", (error) => verifier.destroy(error));
  // A failed _flush can emit 'error' again after the consumer's pipeline has
  // settled and removed its listeners; the consumer has already seen the error.
  verifier.on("error", () => {});
  failWhenIdle(source, verifier, options.idleTimeoutMs ?? DEFAULT_BODY_IDLE_TIMEOUT_MS);
  return { body, digests: () => verifier.result() };
}

/** Reads and verifies a small body whole, such as an XML or JSON document. */
export async function readVerifiedPayload(request: ApiRequest, maxBytes: number, options: PayloadOptions = {}): Promise<Buffer> {
  const payload = openVerifiedPayload(request, options);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of payload.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      payload.body.destroy();
      throw new ApiError("MaxMessageLengthExceeded", 400, `Your request was too big; the limit is ${maxBytes} bytes.`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/**
 * Fails `body` with RequestTimeout when `source` delivers nothing for
 * `idleTimeoutMs`. A source paused by backpressure (a slow disk) is not idle.
 */
function failWhenIdle(source: Readable, body: Transform, idleTimeoutMs: number): void {
  let timer: NodeJS.Timeout | undefined;
  const onIdle = (): void => {
    if (source.isPaused()) {
      arm();
      return;
    }
    body.destroy(
      new ApiError("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period."),
    );
  };
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(onIdle, idleTimeoutMs);
    timer.unref();
  };
  const stop = (): void => clearTimeout(timer);
  source.on("data", arm);
  source.once("end", stop);
  body.once("close", stop);
  arm();
}

function incompleteBody(): ApiError {
  return new ApiError("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.");
}

interface VerifierOptions {
  expectedLength: number | undefined;
  expectedSha256Hex: string | undefined;
  contentMd5Hex: string | undefined;
  algorithm: ChecksumAlgorithm | undefined;
  expectedChecksum: () => string | undefined;
}

/** Hashes the decoded body and checks length, SHA-256, Content-MD5 and checksum before it ends. */
class DigestVerifier extends Transform {
  private readonly md5 = createHash("md5");
  private readonly sha256: Hash | undefined;
  private readonly hasher: ChecksumHasher | undefined;
  private sizeBytes = 0;
  private digests: PayloadDigests | undefined;

  constructor(private readonly options: VerifierOptions) {
    super();
    this.sha256 = options.expectedSha256Hex === undefined ? undefined : createHash("sha256");
    this.hasher = options.algorithm === undefined ? undefined : createChecksumHasher(options.algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.sizeBytes += chunk.length;
    if (this.options.expectedLength !== undefined && this.sizeBytes > this.options.expectedLength) {
      callback(new ApiError("InvalidRequest", 400, "The decoded body is longer than x-amz-decoded-content-length."));
      return;
    }
    this.md5.update(chunk);
    this.sha256?.update(chunk);
    this.hasher?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.verify().then(
      () => callback(),
      (error: unknown) => callback(error as Error),
    );
  }

  private async verify(): Promise<void> {
    const { expectedLength, expectedSha256Hex, contentMd5Hex, algorithm } = this.options;
    if (expectedLength !== undefined && this.sizeBytes !== expectedLength) throw incompleteBody();
    if (expectedSha256Hex !== undefined) {
      const computed = this.sha256!.digest("hex");
      if (computed !== expectedSha256Hex) {
        throw new ApiError("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.", {
          details: { ClientComputedContentSHA256: expectedSha256Hex, S3ComputedContentSHA256: computed },
        });
      }
    }
    const md5Hex = this.md5.digest("hex");
    if (contentMd5Hex !== undefined && contentMd5Hex !== md5Hex) {
      throw new ApiError("BadDigest", 400, "The Content-MD5 you specified did not match what we received.", {
        details: {
          ExpectedDigest: Buffer.from(contentMd5Hex, "hex").toString("base64"),
          CalculatedDigest: Buffer.from(md5Hex, "hex").toString("base64"),
        },
      });
    }
    let checksum: PayloadDigests["checksum"];
    if (algorithm !== undefined && this.hasher !== undefined) {
      const valueBase64 = await this.hasher.digestBase64();
      const expected = this.options.expectedChecksum();
      if (expected !== undefined && expected !== valueBase64) {
        throw new ApiError("BadDigest", 400, `The ${algorithm} you specified did not match the calculated checksum.`, {
          details: { [`Client${algorithm}`]: expected, [`Computed${algorithm}`]: valueBase64 },
        });
      }
      checksum = { algorithm, valueBase64 };
    }
    this.digests = { sizeBytes: this.sizeBytes, md5Hex, checksum };
  }

  result(): PayloadDigests {
    if (!this.digests) throw new Error("payload digests requested before the body ended");
    return this.digests;
  }
}

type ChunkState = "size-line" | "data" | "data-crlf" | "trailer" | "done";

/**
 * Decodes `Content-Encoding: aws-chunked` bodies: `<hex size>[;chunk-signature=<sig>]\r\n<data>\r\n`
 * repeated, a zero-size chunk, then optional trailer lines and an empty line.
 * In signed modes each chunk signature chains from the previous one, starting
 * at the request's seed signature.
 */
class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>();
  private state: ChunkState = "size-line";
  private line = Buffer.alloc(0);
  private remaining = 0;
  private chunkSignature = "";
  private chunkHash: Hash | undefined;
  private previousSignature: string;
  private readonly trailerLines: string[] = [];
  private trailerSignature: string | undefined;
  private readonly scope: string;

  constructor(
    private readonly signed: boolean,
    private readonly expectTrailer: boolean,
    private readonly request: ApiRequest,
  ) {
    super();
    const sigv4 = request.sigv4;
    this.previousSignature = sigv4?.signature ?? "";
    this.scope = sigv4 ? `${sigv4.amzDate.slice(0, 8)}/${sigv4.region}/${sigv4.service}/aws4_request` : "";
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.consume(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    // Without trailers, a body that stops right after the zero-size chunk line is complete.
    const endedAfterLastChunk = this.state === "trailer" && !this.expectTrailer && this.line.length === 0 && this.trailerLines.length === 0;
    if (this.state !== "done" && !endedAfterLastChunk) {
      callback(incompleteBody());
      return;
    }
    callback();
  }

  private consume(input: Buffer): void {
    let offset = 0;
    while (offset < input.length) {
      if (this.state === "data") {
        const take = Math.min(this.remaining, input.length - offset);
        const data = input.subarray(offset, offset + take);
        this.chunkHash?.update(data);
        this.push(data);
        this.remaining -= take;
        offset += take;
        if (this.remaining === 0) this.state = "data-crlf";
        continue;
      }
      if (this.state === "done") {
        throw malformedChunk("unexpected bytes after the end of the aws-chunked body");
      }
      const newline = input.indexOf(0x0a, offset);
      const end = newline < 0 ? input.length : newline + 1;
      this.line = Buffer.concat([this.line, input.subarray(offset, end)]);
      offset = end;
      if (this.line.length > MAX_CHUNK_LINE_BYTES) throw malformedChunk("a chunk header or trailer line is too long");
      if (newline < 0) continue;
      const text = this.line.toString("latin1");
      this.line = Buffer.alloc(0);
      if (!text.endsWith("\r\n")) throw malformedChunk("lines must end with CRLF");
      this.handleLine(text.slice(0, -2));
    }
  }

  private handleLine(text: string): void {
    switch (this.state) {
      case "data-crlf":
        if (text !== "") throw malformedChunk("chunk data must be followed by CRLF");
        this.finishChunk();
        this.state = "size-line";
        return;
      case "size-line":
        this.startChunk(text);
        return;
      case "trailer":
        if (text === "") {
          this.finishTrailer();
          this.state = "done";
          return;
        }
        this.addTrailerLine(text);
        return;
      default:
        throw malformedChunk("unexpected line");
    }
  }

  private startChunk(text: string): void {
    const match = /^([0-9a-fA-F]{1,16})(?:;chunk-signature=([0-9a-f]{64}))?$/.exec(text);
    if (!match) throw malformedChunk(`invalid chunk header '${text.slice(0, 100)}'`);
    if (this.signed && match[2] === undefined) throw malformedChunk("a signed aws-chunked body needs a chunk-signature on every chunk");
    const size = parseInt(match[1]!, 16);
    this.chunkSignature = match[2] ?? "";
    this.chunkHash = this.signed ? createHash("sha256") : undefined;
    if (size === 0) {
      this.finishChunk();
      this.state = "trailer";
      return;
    }
    this.remaining = size;
    this.state = "data";
  }

  private finishChunk(): void {
    if (!this.signed) return;
    const sigv4 = this.request.sigv4!;
    const stringToSign = [
      "AWS4-HMAC-SHA256-PAYLOAD",
      sigv4.amzDate,
      this.scope,
      this.previousSignature,
      EMPTY_SHA256,
      this.chunkHash!.digest("hex"),
    ].join("\n");
    const expected = hmac(sigv4.signingKey, stringToSign).toString("hex");
    if (!sameSecret(expected, this.chunkSignature)) {
      throw authErrors.signatureDoesNotMatch({ StringToSign: stringToSign });
    }
    this.previousSignature = this.chunkSignature;
  }

  private addTrailerLine(text: string): void {
    const colon = text.indexOf(":");
    if (colon <= 0) throw malformedChunk(`invalid trailer line '${text.slice(0, 100)}'`);
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === "x-amz-trailer-signature") {
      this.trailerSignature = value;
      return;
    }
    if (!this.expectTrailer) throw malformedChunk(`trailer ${name} was not declared`);
    this.trailers.set(name, value);
    this.trailerLines.push(`${name}:${value}\n`);
  }

  private finishTrailer(): void {
    if (!this.signed || !this.expectTrailer) return;
    if (this.trailerSignature === undefined) throw malformedChunk("x-amz-trailer-signature is missing");
    const sigv4 = this.request.sigv4!;
    const stringToSign = [
      "AWS4-HMAC-SHA256-TRAILER",
      sigv4.amzDate,
      this.scope,
      this.previousSignature,
      sha256Hex(this.trailerLines.join("")),
    ].join("\n");
    const expected = hmac(sigv4.signingKey, stringToSign).toString("hex");
    if (!sameSecret(expected, this.trailerSignature)) {
      throw authErrors.signatureDoesNotMatch({ StringToSign: stringToSign });
    }
  }
}

function malformedChunk(reason: string): ApiError {
  return new ApiError("InvalidRequest", 400, `The aws-chunked body is malformed: ${reason}.`);
}
