/**
 * HPACK (RFC 7541) for the edge's HTTP/2 server: the static table, Huffman
 * decoding and the decoder of request header blocks. Response blocks are
 * encoded by hpack-encoder.ts.
 */

/** A fault in a header block; the connection ends with COMPRESSION_ERROR (RFC 9113 section 4.3). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

/** The static table of RFC 7541 Appendix A; index 1 is the first entry. */
export const STATIC_TABLE: ReadonlyArray<readonly [string, string]> = [
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"], [":path", "/index.html"],
  [":scheme", "http"], [":scheme", "https"], [":status", "200"], [":status", "204"], [":status", "206"],
  [":status", "304"], [":status", "400"], [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""], ["accept", ""],
  ["access-control-allow-origin", ""], ["age", ""], ["allow", ""], ["authorization", ""], ["cache-control", ""],
  ["content-disposition", ""], ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""], ["date", ""],
  ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""], ["if-match", ""],
  ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""], ["if-unmodified-since", ""],
  ["last-modified", ""], ["link", ""], ["location", ""], ["max-forwards", ""], ["proxy-authenticate", ""],
  ["proxy-authorization", ""], ["range", ""], ["referer", ""], ["refresh", ""], ["retry-after", ""],
  ["server", ""], ["set-cookie", ""], ["strict-transport-security", ""], ["transfer-encoding", ""],
  ["user-agent", ""], ["vary", ""], ["via", ""], ["www-authenticate", ""],
];

/**
 * Code lengths of the Huffman code of RFC 7541 Appendix B, for symbols 0 to
 * 255 and EOS (256). The code is canonical: codes are assigned in order of
 * length, then symbol, so the lengths determine every code.
 */
const HUFFMAN_CODE_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28,
  28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6,
  12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5,
  6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22,
  22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22, 21,
  20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26,
  28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27,
  28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS = 256;

/**
 * The Huffman decoder as a state machine over 4-bit steps. A state is a
 * node of the code's binary tree; each entry gives the next state, the
 * symbol completed on the way (or -1), and whether the bits read since the
 * last symbol are all ones, the only padding RFC 7541 section 5.2 allows.
 */
interface NibbleTable {
  /** Bits from the root to each state: the bits read since the last symbol. */
  depth: Uint8Array;
  next: Int32Array;
  symbol: Int32Array;
  /** 1: the state after the step may end the string; 2: the step hit EOS or an unused code. */
  flags: Uint8Array;
}

const NIBBLE = buildNibbleTable();

function buildNibbleTable(): NibbleTable {
  // The tree: children[2 * node + bit], leaves store ~symbol.
  const children: number[] = [0, 0];
  let nodes = 1;
  const order = [...HUFFMAN_CODE_LENGTHS.keys()].sort((a, b) => HUFFMAN_CODE_LENGTHS[a]! - HUFFMAN_CODE_LENGTHS[b]! || a - b);
  let code = 0;
  let previousLength = HUFFMAN_CODE_LENGTHS[order[0]!]!;
  order.forEach((symbol, index) => {
    const length = HUFFMAN_CODE_LENGTHS[symbol]!;
    if (index > 0) code = (code + 1) * 2 ** (length - previousLength);
    previousLength = length;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const branch = Math.floor(code / 2 ** bit) % 2;
      const slot = 2 * node + branch;
      if (bit === 0) {
        children[slot] = ~symbol;
        break;
      }
      if (children[slot] === 0 || children[slot] === undefined) {
        children[slot] = nodes++;
        children.push(0, 0);
      }
      node = children[slot]!;
    }
  });

  // Which nodes lie on the all-ones path from the root, and how deep each node is.
  const onesOnly = new Uint8Array(nodes);
  const depth = new Uint8Array(nodes);
  onesOnly[0] = 1;
  for (let node = 0; node < nodes; node++) {
    for (const branch of [0, 1]) {
      const child = children[2 * node + branch]!;
      if (child <= 0) continue;
      depth[child] = depth[node]! + 1;
      if (branch === 1 && onesOnly[node] === 1) onesOnly[child] = 1;
    }
  }

  const table: NibbleTable = {
    depth,
    next: new Int32Array(nodes * 16),
    symbol: new Int32Array(nodes * 16).fill(-1),
    flags: new Uint8Array(nodes * 16),
  };
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      let symbol = -1;
      let failed = false;
      // Bits read since the last completed symbol are all ones while this stays true.
      let ones = onesOnly[state] === 1;
      for (let bit = 3; bit >= 0; bit--) {
        const branch = (nibble >> bit) & 1;
        const child = children[2 * node + branch]!;
        if (branch === 0) ones = false;
        if (child < 0) {
          symbol = ~child;
          if (symbol === EOS) failed = true;
          node = 0;
          ones = true;
        } else if (child === 0) {
          failed = true;
          break;
        } else {
          node = child;
        }
      }
      const entry = state * 16 + nibble;
      table.next[entry] = node;
      table.symbol[entry] = symbol;
      let entryFlags = 0;
      if (failed) entryFlags = 2;
      else if (ones) entryFlags = 1;
      table.flags[entry] = entryFlags;
    }
  }
  return table;
}

/** Decodes a Huffman-coded string of `buffer[start..end)` into latin1 characters. */
export function decodeHuffman(buffer: Buffer, start: number, end: number): string {
  const { next, symbol, flags } = NIBBLE;
  let state = 0;
  let accepting = true;
  let out = "";
  for (let i = start; i < end; i++) {
    const byte = buffer[i]!;
    const high = state * 16 + (byte >> 4);
    if (flags[high] === 2) throw new HpackError("invalid Huffman code");
    if (symbol[high]! >= 0) out += String.fromCharCode(symbol[high]!);
    state = next[high]!;
    const low = state * 16 + (byte & 0x0f);
    if (flags[low] === 2) throw new HpackError("invalid Huffman code");
    if (symbol[low]! >= 0) out += String.fromCharCode(symbol[low]!);
    state = next[low]!;
    accepting = flags[low] === 1;
  }
  // RFC 7541 section 5.2: at most 7 bits of padding, all ones.
  if (!accepting || NIBBLE.depth[state]! > 7) throw new HpackError("invalid Huffman padding");
  return out;
}

/** Largest integer a block may encode; larger ones can only be attacks on the decoder. */
const MAX_INTEGER = 2 ** 31 - 1;

/** A decoded header field, name and value in latin1 as received. */
export type HeaderField = readonly [name: string, value: string];

/**
 * The HPACK decoder of one connection. It keeps the dynamic table between
 * header blocks, so every block of the connection must pass through it in
 * order, even blocks of streams that are then refused.
 */
export class HpackDecoder {
  /** Dynamic table entries from the newest, each with whether `validEntry` passed it. */
  private readonly entries: Array<{ field: HeaderField; valid: boolean }> = [];
  private size = 0;
  private maxSize: number;
  /** The size of the list that decode returned last, as section 6.5.2 of RFC 9113 counts it. */
  listBytes = 0;
  /**
   * Bit i is set when field i of the list that decode returned last came from the static table,
   * or from a dynamic table entry that `validEntry` passed. Fields past the 31st are never marked.
   */
  validBits = 0;

  /**
   * `settingsMaxSize` is the SETTINGS_HEADER_TABLE_SIZE this server advertised. `validEntry`
   * checks each field once, as the peer adds it to the dynamic table, so that blocks that
   * refer to it by index need not check it again.
   */
  constructor(
    private readonly settingsMaxSize: number,
    private readonly validEntry: (field: HeaderField) => boolean = () => false,
  ) {
    this.maxSize = settingsMaxSize;
  }

  /**
   * Decodes one complete header block. Throws HpackError when the block is
   * invalid or when the decoded list exceeds `maxListBytes`, counted as in
   * RFC 9113 section 6.5.2 (names and values plus 32 octets a field). The
   * caller then ends the connection, since the table may be out of step.
   */
  decode(block: Buffer, maxListBytes: number): HeaderField[] {
    const fields: HeaderField[] = [];
    let listBytes = 0;
    let validBits = 0;
    let position = 0;
    let sizeUpdateAllowed = true;
    const end = block.length;
    while (position < end) {
      const first = block[position]!;
      if (first >= 0x80) {
        // Indexed field (section 6.1).
        const index = decodeInteger(block, position, 7);
        position = decodedEnd;
        let field: HeaderField;
        let valid = true;
        if (index === 0) throw new HpackError("header field index 0");
        if (index <= STATIC_TABLE.length) {
          field = STATIC_TABLE[index - 1]!;
        } else {
          const entry = this.entry(index);
          field = entry.field;
          valid = entry.valid;
        }
        if (valid && fields.length < 31) validBits |= 1 << fields.length;
        fields.push(field);
        listBytes += field[0].length + field[1].length + 32;
      } else if (first >= 0x40 || first < 0x20) {
        // Literal with incremental indexing (6.2.1), without indexing (6.2.2) or never indexed (6.2.3).
        const indexing = first >= 0x40;
        const index = decodeInteger(block, position, indexing ? 6 : 4);
        position = decodedEnd;
        let name: string;
        if (index === 0) {
          name = decodeString(block, position);
          position = decodedEnd;
        } else {
          name = this.lookup(index)[0];
        }
        const value = decodeString(block, position);
        position = decodedEnd;
        const field: HeaderField = [name, value];
        if (indexing) this.add(field);
        fields.push(field);
        listBytes += name.length + value.length + 32;
      } else {
        // Dynamic table size update (6.3): only at the start of a block (section 4.2).
        if (!sizeUpdateAllowed) throw new HpackError("dynamic table size update after a header field");
        const size = decodeInteger(block, position, 5);
        position = decodedEnd;
        if (size > this.settingsMaxSize) throw new HpackError("dynamic table size update above the advertised limit");
        this.maxSize = size;
        this.evict(0);
        continue;
      }
      sizeUpdateAllowed = false;
      if (listBytes > maxListBytes) throw new HpackError("header list too large");
    }
    this.listBytes = listBytes;
    this.validBits = validBits;
    return fields;
  }

  private lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError("header field index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    return this.entry(index).field;
  }

  private entry(index: number): { field: HeaderField; valid: boolean } {
    const entry = this.entries[index - STATIC_TABLE.length - 1];
    if (entry === undefined) throw new HpackError(`header field index ${index} is not in the table`);
    return entry;
  }

  private add(field: HeaderField): void {
    const entrySize = field[0].length + field[1].length + 32;
    // Section 4.4: an entry larger than the table empties it and is not added.
    this.evict(entrySize);
    if (entrySize > this.maxSize) return;
    this.entries.unshift({ field, valid: this.validEntry(field) });
    this.size += entrySize;
  }

  /** Evicts the oldest entries until `room` more octets fit. */
  private evict(room: number): void {
    while (this.entries.length > 0 && this.size + room > this.maxSize) {
      const oldest = this.entries.pop()!.field;
      this.size -= oldest[0].length + oldest[1].length + 32;
    }
  }
}

/**
 * The offset after the integer or string that decodeInteger or decodeString read last. The
 * decoders return it here rather than in a pair, which would be an allocation per field.
 */
let decodedEnd = 0;

/** Decodes an integer with an N-bit prefix (section 5.1), returns it and sets decodedEnd. */
function decodeInteger(buffer: Buffer, start: number, prefixBits: number): number {
  const limit = (1 << prefixBits) - 1;
  let value = buffer[start]! & limit;
  let position = start + 1;
  if (value < limit) {
    decodedEnd = position;
    return value;
  }
  let shift = 0;
  for (;;) {
    if (position >= buffer.length) throw new HpackError("truncated integer");
    const byte = buffer[position++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (value > MAX_INTEGER) throw new HpackError("integer too large");
    if ((byte & 0x80) === 0) {
      decodedEnd = position;
      return value;
    }
    shift += 7;
  }
}

/** Decodes a string literal (section 5.2), returns it and sets decodedEnd. */
function decodeString(buffer: Buffer, start: number): string {
  if (start >= buffer.length) throw new HpackError("truncated string");
  const huffman = (buffer[start]! & 0x80) !== 0;
  const length = decodeInteger(buffer, start, 7);
  const position = decodedEnd;
  const end = position + length;
  if (end > buffer.length) throw new HpackError("truncated string");
  const text = huffman ? decodeHuffman(buffer, position, end) : buffer.toString("latin1", position, end);
  decodedEnd = end;
  return text;
}
