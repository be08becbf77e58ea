import { promisify } from "node:util";
import { brotliCompress, constants, gzip } from "node:zlib";
import { headerIn, headerValues } from "./headers.js";

/**
 * Edge compression as CloudFront documents it in "Serve compressed files":
 * with Compress on, objects of a compressible type whose size is between
 * 1,000 and 10,000,000 bytes are compressed with Brotli or gzip, picked from
 * the viewer's normalized Accept-Encoding (Brotli first; legacy cache
 * settings offer gzip alone). A response that already has a Content-Encoding
 * is never compressed again, and one whose Cache-Control has `no-transform`
 * is never compressed (RFC 9110 section 7.7).
 */

export const MIN_COMPRESS_BYTES = 1_000;
export const MAX_COMPRESS_BYTES = 10_000_000;

export type EdgeEncoding = "br" | "gzip";

/** Media types CloudFront compresses, without parameters (a subset of its published list, plus the text/* family). */
const COMPRESSIBLE_TYPES = new Set([
  "application/dash+xml",
  "application/eot",
  "application/font",
  "application/font-sfnt",
  "application/javascript",
  "application/json",
  "application/opentype",
  "application/otf",
  "application/pkcs7-mime",
  "application/protobuf",
  "application/rss+xml",
  "application/truetype",
  "application/ttf",
  "application/vnd.apple.mpegurl",
  "application/vnd.mapbox-vector-tile",
  "application/vnd.ms-fontobject",
  "application/wasm",
  "application/xhtml+xml",
  "application/xml",
  "application/x-font-opentype",
  "application/x-font-truetype",
  "application/x-font-ttf",
  "application/x-httpd-cgi",
  "application/x-javascript",
  "application/x-mpegurl",
  "application/x-opentype",
  "application/x-otf",
  "application/x-perl",
  "application/x-ttf",
  "font/eot",
  "font/opentype",
  "font/otf",
  "font/ttf",
  "image/svg+xml",
  "vnd.apple.mpegurl",
]);

export function isCompressibleType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  return type.startsWith("text/") || COMPRESSIBLE_TYPES.has(type);
}

/** Picks the encoding for a normalized Accept-Encoding (`br,gzip`, `br`, `gzip` or empty). */
export function chooseEncoding(normalizedAcceptEncoding: string): EdgeEncoding | undefined {
  if (normalizedAcceptEncoding === "") return undefined;
  const codings = normalizedAcceptEncoding.split(",");
  if (codings.includes("br")) return "br";
  if (codings.includes("gzip")) return "gzip";
  return undefined;
}

const NO_TRANSFORM = /(^|,)\s*no-transform\s*(,|$)/i;

/**
 * Returns whether the edge compresses this response for viewers that accept
 * an encoding, so that every copy of it, compressed or not, varies by
 * Accept-Encoding.
 */
export function isCompressible(status: number, headers: readonly string[], lengthBytes: number | undefined): boolean {
  if (status !== 200 || lengthBytes === undefined) return false;
  if (lengthBytes < MIN_COMPRESS_BYTES || lengthBytes > MAX_COMPRESS_BYTES) return false;
  const existing = headerIn(headers, "content-encoding");
  if (existing !== undefined && existing.trim().toLowerCase() !== "identity") return false;
  if (NO_TRANSFORM.test(headerValues(headers, "cache-control") ?? "")) return false;
  return isCompressibleType(headerIn(headers, "content-type"));
}

const brotliAsync = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

/** Compresses a body off the event loop. Brotli quality 5 trades a little size for much less CPU than 11. */
export function compressBody(body: Buffer, encoding: EdgeEncoding): Promise<Buffer> {
  if (encoding === "br") {
    return brotliAsync(body, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 5, [constants.BROTLI_PARAM_SIZE_HINT]: body.length },
    });
  }
  return gzipAsync(body);
}

/**
 * Returns the headers of a compressed representation: Content-Encoding set,
 * Vary naming Accept-Encoding, and a strong ETag made weak, as CloudFront
 * does, because the bytes differ from the origin's.
 */
export function compressedHeaders(headers: readonly string[], encoding: EdgeEncoding): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    let value = headers[i + 1]!;
    if (name === "content-encoding" || name === "content-md5") continue;
    if (name === "etag" && value.startsWith('"')) value = `W/${value}`;
    out.push(name, value);
  }
  out.push("content-encoding", encoding);
  return varyingByAcceptEncoding(out);
}

/**
 * Returns the headers with Vary naming Accept-Encoding, for the uncompressed
 * copy of a compressible response too: a shared cache downstream must not
 * hand that copy to viewers that would get a compressed one here.
 */
export function varyingByAcceptEncoding(headers: readonly string[]): string[] {
  const out: string[] = [];
  let varies = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    let value = headers[i + 1]!;
    if (name === "vary" && !varies) {
      varies = true;
      if (!/(^|,)\s*accept-encoding\s*(,|$)/i.test(value)) value = `${value}, Accept-Encoding`;
    }
    out.push(name, value);
  }
  if (!varies) out.push("vary", "Accept-Encoding");
  return out;
}
