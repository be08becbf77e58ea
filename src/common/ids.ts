import { randomBytes, randomInt } from "node:crypto";

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

const REQUEST_ID_HEX_CHARS = 32;
/** Ids drawn per CSPRNG call, because one call and one hex encoding per request cost more than the rest of an id. */
const IDS_PER_BLOCK = 2048;

/** Request ids in the style AWS services return: 16 random bytes as upper-case hex. */
export class RequestIdSource {
  private block = "";
  private offset = 0;

  next(): string {
    if (this.offset === this.block.length) {
      this.block = randomBytes((REQUEST_ID_HEX_CHARS / 2) * IDS_PER_BLOCK).toString("hex").toUpperCase();
      this.offset = 0;
    }
    const start = this.offset;
    this.offset += REQUEST_ID_HEX_CHARS;
    return this.block.slice(start, this.offset);
  }
}

const sharedIds = new RequestIdSource();

/** Returns a new request id from the process-wide source. */
export function newRequestId(): string {
  return sharedIds.next();
}
