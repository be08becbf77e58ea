import { STATIC_TABLE } from "./hpack.js";

/**
 * The HPACK encoder of one connection (RFC 7541). Response fields that repeat
 * from one response to the next, such as `server`, `content-type`, `via` or an
 * object's `etag`, go into the peer's dynamic table the first time and are
 * sent as a one-byte index after that. Fields whose value changes with every
 * response (`age`, `cache-status`, the request id, `content-range`) are sent
 * as literals and enter the table at most once, for their names, so they never
 * churn it. `set-cookie` is a never-indexed literal (section 7.1.3). No Huffman
 * coding is used.
 *
 * The peer's decoder follows this table only if every block reaches it in the
 * order it was encoded, so a block must be written to the connection as soon
 * as it is encoded, and never dropped.
 */

/** The largest table size this encoder uses. It is also the size HTTP/2 starts with (RFC 9113 section 6.5.2). */
export const ENCODER_TABLE_SIZE = 4096;

/** Fields whose value differs between responses of one object. */
const VOLATILE_NAMES = new Set(["age", "cache-status", "x-amz-cf-id", "content-range"]);
/** Fields an intermediary must not index (RFC 7541 section 7.1.3). */
const SENSITIVE_NAMES = new Set(["set-cookie", "authorization", "proxy-authorization"]);
/** The RFC 7541 entry overhead added to a field's name and value octets (section 4.1). */
const ENTRY_OVERHEAD = 32;
const STATIC_COUNT = STATIC_TABLE.length;
const REQUEST_ID_NAME = "x-amz-cf-id";

const STATIC_NAME_INDEX = new Map<string, number>();
const STATIC_FIELD_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
  if (value !== "") STATIC_FIELD_INDEX.set(`${name}\n${value}`, i + 1);
});

interface Entry {
  key: string;
  name: string;
  octets: number;
  /** Insertion number: the first entry ever added is 0. */
  absolute: number;
}

/** One response head to encode: `:status`, then `fields` as a flat `[name, value, ...]` list. */
export interface ResponseHead {
  status: number;
  /** Lower-case names, without the fields HTTP/2 forbids. */
  fields: readonly string[];
  /**
   * The same object for heads whose status and fields are equal, such as a
   * cache entry's prepared hit. Its block is reused while the table has not
   * changed since it was encoded.
   */
  reuseKey?: object;
  /** Sent after `fields` as `x-amz-cf-id`. */
  requestId?: string;
}

/** An encoded head: `block`, and `tail` (the request id field) to send right after it, when there is one. */
export interface EncodedHead {
  block: Buffer;
  tail: Buffer | undefined;
}

export class HpackEncoder {
  private maxSize = ENCODER_TABLE_SIZE;
  private size = 0;
  /** Entries from oldest to newest; `first` is the index of the oldest still in the table. */
  private readonly entries: Entry[] = [];
  private first = 0;
  private insertions = 0;
  private readonly byField = new Map<string, number>();
  private readonly byName = new Map<string, number>();
  /** Changes whenever the table does, so a reused block is known to be current. */
  private version = 0;
  /** Sizes to announce at the start of the next block (section 4.2): the lowest since the last block, then the current one. */
  private lowestPendingSize: number | undefined;
  private reusedKey: object | undefined;
  private reusedVersion = -1;
  private reusedBlock: Buffer | undefined;
  /** The request id field of the last head encoded, and its length. The buffer fits an id of 126 octets. */
  private tail = Buffer.allocUnsafe(160);
  private tailLength = 0;

  /** Applies the peer's SETTINGS_HEADER_TABLE_SIZE: this encoder's table never exceeds it. */
  setPeerLimit(limit: number): void {
    const size = Math.min(limit, ENCODER_TABLE_SIZE);
    if (size === this.maxSize) return;
    this.lowestPendingSize = Math.min(this.lowestPendingSize ?? size, size);
    this.maxSize = size;
    this.evict(0);
    this.version += 1;
  }

  encode(head: ResponseHead): EncodedHead {
    const block = this.encodeBlock(head);
    if (this.tailLength === 0) return { block, tail: undefined };
    return { block, tail: Buffer.from(this.tail.subarray(0, this.tailLength)) };
  }

  /**
   * Encodes a head as encode does, but leaves the request id field in this encoder, for
   * copyTail: a hit then writes its head without a buffer of its own for the id.
   */
  encodeBlock(head: ResponseHead): Buffer {
    let block: Buffer;
    if (head.reuseKey !== undefined && head.reuseKey === this.reusedKey && this.reusedVersion === this.version && this.lowestPendingSize === undefined) {
      block = this.reusedBlock!;
    } else {
      const versionBefore = this.version;
      const out: number[] = [];
      const announced = this.announceSize(out);
      this.field(out, ":status", String(head.status));
      const fields = head.fields;
      for (let i = 0; i < fields.length; i += 2) this.field(out, fields[i]!, fields[i + 1]!);
      block = Buffer.from(out);
      // A block that added to the table would add again if sent twice, so only one that left the
      // table as it was, and announced no size, can be reused.
      if (head.reuseKey !== undefined && this.version === versionBefore && !announced) {
        this.reusedKey = head.reuseKey;
        this.reusedVersion = this.version;
        this.reusedBlock = block;
      }
    }
    this.tailLength = head.requestId === undefined ? 0 : this.encodeRequestId(head.requestId);
    return block;
  }

  /** The octets of the request id field that encodeBlock left, 0 when its head had none. */
  get tailBytes(): number {
    return this.tailLength;
  }

  /** Copies the request id field that encodeBlock left into `target` at `offset`. */
  copyTail(target: Buffer, offset: number): void {
    // A loop: Buffer's copy of part of a buffer makes a view of that part first.
    const tail = this.tail;
    for (let i = 0; i < this.tailLength; i++) target[offset + i] = tail[i]!;
  }

  /**
   * Writes the `x-amz-cf-id` field into `tail` and returns its length. Once the name is in the
   * table, every hit sends it as a literal naming that entry, written without the general path.
   */
  private encodeRequestId(requestId: string): number {
    const known = this.byName.get(REQUEST_ID_NAME);
    if (known === undefined || requestId.length > 126) {
      const out: number[] = [];
      this.field(out, REQUEST_ID_NAME, requestId);
      if (out.length > this.tail.length) this.tail = Buffer.allocUnsafe(out.length);
      for (let i = 0; i < out.length; i++) this.tail[i] = out[i]!;
      return out.length;
    }
    // A literal without indexing whose name is entry `index` (RFC 7541 section 6.2.2), its
    // integer with a 4-bit prefix (section 5.1), then the value's length and octets.
    const tail = this.tail;
    let position = 0;
    const index = this.indexOf(known);
    if (index < 15) {
      tail[position++] = index;
    } else {
      tail[position++] = 15;
      let rest = index - 15;
      while (rest >= 0x80) {
        tail[position++] = (rest & 0x7f) | 0x80;
        rest >>>= 7;
      }
      tail[position++] = rest;
    }
    tail[position++] = requestId.length;
    for (let i = 0; i < requestId.length; i++) tail[position++] = requestId.charCodeAt(i) & 0xff;
    return position;
  }

  /** Entries in the table, for tests. */
  get entryCount(): number {
    return this.entries.length - this.first;
  }

  /** Appends the pending table size updates and returns whether there were any. */
  private announceSize(out: number[]): boolean {
    const lowest = this.lowestPendingSize;
    if (lowest === undefined) return false;
    this.lowestPendingSize = undefined;
    // Section 4.2: the smallest size since the last block first, so the peer evicts as far as it
    // did, then the size in use.
    if (lowest < this.maxSize) encodeInteger(out, lowest, 5, 0x20);
    encodeInteger(out, this.maxSize, 5, 0x20);
    return true;
  }

  private field(out: number[], name: string, value: string): void {
    const key = `${name}\n${value}`;
    const staticIndex = STATIC_FIELD_INDEX.get(key);
    if (staticIndex !== undefined) {
      encodeInteger(out, staticIndex, 7, 0x80);
      return;
    }
    const known = this.byField.get(key);
    if (known !== undefined) {
      encodeInteger(out, this.indexOf(known), 7, 0x80);
      return;
    }
    const nameIndex = this.nameIndexOf(name);
    if (SENSITIVE_NAMES.has(name)) {
      literal(out, nameIndex, name, value, 4, 0x10);
      return;
    }
    const octets = name.length + value.length + ENTRY_OVERHEAD;
    // A field that changes per response is added once, so that later responses can name it by index.
    const indexing = octets <= this.maxSize / 2 && (!VOLATILE_NAMES.has(name) || nameIndex === 0);
    if (!indexing) {
      literal(out, nameIndex, name, value, 4, 0x00);
      return;
    }
    literal(out, nameIndex, name, value, 6, 0x40);
    this.add(key, name, octets);
  }

  private nameIndexOf(name: string): number {
    const staticIndex = STATIC_NAME_INDEX.get(name);
    if (staticIndex !== undefined) return staticIndex;
    const known = this.byName.get(name);
    return known === undefined ? 0 : this.indexOf(known);
  }

  /** Returns the table index of an entry from its insertion number: the newest entry is STATIC_COUNT + 1. */
  private indexOf(absolute: number): number {
    return STATIC_COUNT + this.insertions - absolute;
  }

  private add(key: string, name: string, octets: number): void {
    this.evict(octets);
    const absolute = this.insertions;
    this.insertions += 1;
    this.entries.push({ key, name, octets, absolute });
    this.size += octets;
    this.byField.set(key, absolute);
    this.byName.set(name, absolute);
    this.version += 1;
  }

  /** Evicts the oldest entries until `room` more octets fit (section 4.4). */
  private evict(room: number): void {
    while (this.first < this.entries.length && this.size + room > this.maxSize) {
      const oldest = this.entries[this.first]!;
      this.first += 1;
      this.size -= oldest.octets;
      if (this.byField.get(oldest.key) === oldest.absolute) this.byField.delete(oldest.key);
      if (this.byName.get(oldest.name) === oldest.absolute) this.byName.delete(oldest.name);
    }
    // Drop evicted entries from the array once they are most of it.
    if (this.first > 64 && this.first * 2 > this.entries.length) {
      this.entries.splice(0, this.first);
      this.first = 0;
    }
  }
}

/** Appends a literal field with the given representation: name by index, or literal when `nameIndex` is 0. */
function literal(out: number[], nameIndex: number, name: string, value: string, prefixBits: number, pattern: number): void {
  encodeInteger(out, nameIndex, prefixBits, pattern);
  if (nameIndex === 0) encodeString(out, name);
  encodeString(out, value);
}

/** Appends an integer with an N-bit prefix whose high bits are `pattern` (section 5.1). */
export function encodeInteger(out: number[], value: number, prefixBits: number, pattern: number): void {
  const limit = (1 << prefixBits) - 1;
  if (value < limit) {
    out.push(pattern | value);
    return;
  }
  out.push(pattern | limit);
  let rest = value - limit;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

/** Appends a string literal without Huffman coding (section 5.2). Each character of `text` is one octet. */
export function encodeString(out: number[], text: string): void {
  encodeInteger(out, text.length, 7, 0);
  for (let i = 0; i < text.length; i++) out.push(text.charCodeAt(i) & 0xff);
}
