import { randomFillSync, randomInt } from "node:crypto";

const UPPER_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER_ALPHANUMERIC = "abcdefghijklmnopqrstuvwxyz0123456789";

/** Returns `length` characters drawn uniformly from `alphabet` with a CSPRNG. */
export function randomString(alphabet: string, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += alphabet[randomInt(alphabet.length)];
  return out;
}

export function randomUpperAlphanumeric(length: number): string {
  return randomString(UPPER_ALPHANUMERIC, length);
}

export function randomLowerAlphanumeric(length: number): string {
  return randomString(LOWER_ALPHANUMERIC, length);
}

const REQUEST_ID_BYTES = 16;
/** Random bytes drawn in blocks, because one CSPRNG call per request costs more than the hex encoding. */
const requestIdPool = Buffer.alloc(REQUEST_ID_BYTES * 256);
let requestIdOffset = requestIdPool.length;

/** A request id in the style AWS services return: 16 random bytes as upper-case hex. */
export function newRequestId(): string {
  if (requestIdOffset === requestIdPool.length) {
    randomFillSync(requestIdPool);
    requestIdOffset = 0;
  }
  const start = requestIdOffset;
  requestIdOffset += REQUEST_ID_BYTES;
  return requestIdPool.toString("hex", start, requestIdOffset).toUpperCase();
}
