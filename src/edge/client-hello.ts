/**
 * Reads the server name (SNI, RFC 6066 section 3) from the start of a TLS
 * connection, before the TLS library reads it, so that the edge can choose
 * the certificate for the whole handshake.
 *
 * The one npm package for this (`sni`) reads only the first record of the
 * first chunk. A ClientHello with large key shares may span several records
 * and arrive in several reads, so the edge has this reader of its own.
 */

/** The outcome of scanning the bytes received so far. */
export type ClientHelloScan =
  /** More bytes are needed. */
  | { kind: "incomplete" }
  /** A whole ClientHello; `serverName` is its host name, lower-cased, when it has one. */
  | { kind: "hello"; serverName: string | undefined }
  /** Bytes that are not a TLS ClientHello, left for the TLS library to reject. */
  | { kind: "other" }
  /** A ClientHello larger than MAX_CLIENT_HELLO_BYTES. */
  | { kind: "oversized" };

/** TLS record content type `handshake` (RFC 8446 section 5.1). */
const HANDSHAKE_RECORD = 22;
/** Handshake message type `client_hello` (RFC 8446 section 4). */
const CLIENT_HELLO = 1;
/** Extension type `server_name` (RFC 6066 section 3). */
const SERVER_NAME_EXTENSION = 0;
/** `NameType` `host_name`. */
const HOST_NAME = 0;
/**
 * Largest ClientHello read. Browsers send under 2 KiB, post-quantum key
 * shares included; OpenSSL accepts larger ones, up to its own limit.
 */
export const MAX_CLIENT_HELLO_BYTES = 64 * 1024;

/** Scans the first bytes of a connection for a ClientHello and its server name. */
export function scanClientHello(data: Buffer): ClientHelloScan {
  // Gather the handshake bytes of the leading handshake records.
  const handshake: Buffer[] = [];
  let handshakeBytes = 0;
  let needed = -1;
  let offset = 0;
  while (needed < 0 || handshakeBytes < needed) {
    if (data.length < offset + 5) return { kind: "incomplete" };
    if (data[offset] !== HANDSHAKE_RECORD || data[offset + 1] !== 3) return { kind: "other" };
    const recordLength = data.readUInt16BE(offset + 3);
    if (recordLength === 0) return { kind: "other" };
    if (data.length < offset + 5 + recordLength) {
      return offset + 5 + recordLength > MAX_CLIENT_HELLO_BYTES + 64 ? { kind: "oversized" } : { kind: "incomplete" };
    }
    handshake.push(data.subarray(offset + 5, offset + 5 + recordLength));
    handshakeBytes += recordLength;
    offset += 5 + recordLength;
    if (needed < 0 && handshakeBytes >= 4) {
      const head = handshake.length === 1 ? handshake[0]! : Buffer.concat(handshake);
      if (head[0] !== CLIENT_HELLO) return { kind: "other" };
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > MAX_CLIENT_HELLO_BYTES) return { kind: "oversized" };
    }
  }
  const message = handshake.length === 1 ? handshake[0]! : Buffer.concat(handshake);
  const serverName = serverNameOf(message.subarray(4, needed));
  return serverName === null ? { kind: "other" } : { kind: "hello", serverName };
}

/** Returns the host name of a ClientHello body, undefined without one, or null when the body is malformed. */
function serverNameOf(body: Buffer): string | undefined | null {
  const reader = new Reader(body);
  // legacy_version, random, legacy_session_id, cipher_suites, legacy_compression_methods
  if (!reader.skip(2 + 32) || !reader.skipVector(1) || !reader.skipVector(2) || !reader.skipVector(1)) return null;
  if (reader.remaining === 0) return undefined;
  const extensions = reader.vector(2);
  if (extensions === undefined) return null;
  const list = new Reader(extensions);
  while (list.remaining > 0) {
    const type = list.uint16();
    const extension = list.vector(2);
    if (type === undefined || extension === undefined) return null;
    if (type !== SERVER_NAME_EXTENSION) continue;
    const names = new Reader(extension).vector(2);
    if (names === undefined) return null;
    const entries = new Reader(names);
    while (entries.remaining > 0) {
      const nameType = entries.uint8();
      const name = entries.vector(2);
      if (nameType === undefined || name === undefined) return null;
      if (nameType !== HOST_NAME) continue;
      // RFC 6066 requires an ASCII host name without a trailing dot. Clients such as
      // `openssl s_client` still send one, so it is kept here and ignored by the lookup.
      // Anything else is left to the TLS library.
      const text = name.toString("latin1");
      return /^[A-Za-z0-9.*_-]{1,253}$/.test(text) ? text.toLowerCase() : undefined;
    }
    return undefined;
  }
  return undefined;
}

/** Reads big-endian integers and length-prefixed vectors, failing softly past the end. */
class Reader {
  private offset = 0;

  constructor(private readonly data: Buffer) {}

  get remaining(): number {
    return this.data.length - this.offset;
  }

  skip(bytes: number): boolean {
    if (this.remaining < bytes) return false;
    this.offset += bytes;
    return true;
  }

  uint8(): number | undefined {
    if (this.remaining < 1) return undefined;
    return this.data[this.offset++];
  }

  uint16(): number | undefined {
    if (this.remaining < 2) return undefined;
    const value = this.data.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  /** Reads a vector whose length takes `lengthBytes` bytes (1 or 2). */
  vector(lengthBytes: 1 | 2): Buffer | undefined {
    const length = lengthBytes === 1 ? this.uint8() : this.uint16();
    if (length === undefined || this.remaining < length) return undefined;
    const value = this.data.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  skipVector(lengthBytes: 1 | 2): boolean {
    return this.vector(lengthBytes) !== undefined;
  }
}
