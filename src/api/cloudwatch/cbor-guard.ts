/**
 * A structural pass over a CBOR body (RFC 8949) before it is decoded. The
 * decoder turns bignum tags (2 and 3) into BigInt one byte at a time, which
 * takes time quadratic in the length, so a signed request with a large bignum
 * could hold the event loop for minutes. No CloudWatch input member is a
 * bignum or a decimal: the only tag the protocol uses is 1, epoch-based time.
 */

/** The one tag the rpcv2Cbor protocol sends for CloudWatch: a timestamp in epoch seconds. */
const EPOCH_TIME_TAG = 1;
/** Containers may nest no deeper than this; CloudWatch inputs nest a few levels. */
const MAX_DEPTH = 64;

export class CborShapeError extends Error {}

/**
 * Walks every data item of `bytes` without building values and throws
 * CborShapeError for a tag other than 1, nesting past MAX_DEPTH, or a
 * truncated or malformed item.
 */
export function checkCborItems(bytes: Uint8Array): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  // Items still expected in each open container; -1 for an indefinite one, closed by a break.
  const open: number[] = [1];

  const argument = (info: number): number => {
    if (info < 24) return info;
    // Additional information 24 to 27 means a 1, 2, 4 or 8-byte argument follows.
    if (info > 27) throw new CborShapeError(`reserved additional information ${info}`);
    const size = 2 ** (info - 24);
    if (offset + size > bytes.length) throw new CborShapeError("truncated item");
    let value: number;
    if (size === 1) value = view.getUint8(offset);
    else if (size === 2) value = view.getUint16(offset);
    else if (size === 4) value = view.getUint32(offset);
    else value = Number(view.getBigUint64(offset));
    offset += size;
    return value;
  };

  while (open.length > 0) {
    const top = open.length - 1;
    if (open[top] === 0) {
      open.pop();
      continue;
    }
    if (offset >= bytes.length) throw new CborShapeError("truncated item");
    const initial = bytes[offset++]!;
    if (initial === 0xff) {
      if (open[top] !== -1) throw new CborShapeError("break outside an indefinite-length item");
      open.pop();
      continue;
    }
    if (open[top]! > 0) open[top]!--;
    const major = initial >> 5;
    const info = initial & 0x1f;
    if (info === 31) {
      if (major < 2 || major > 5) throw new CborShapeError("indefinite length on a scalar");
      if (open.length >= MAX_DEPTH) throw new CborShapeError("nested too deep");
      open.push(-1);
      continue;
    }
    const value = argument(info);
    switch (major) {
      case 2:
      case 3:
        if (value > bytes.length - offset) throw new CborShapeError("truncated string");
        offset += value;
        break;
      case 4:
      case 5: {
        const items = major === 4 ? value : value * 2;
        if (items > bytes.length - offset) throw new CborShapeError("truncated container");
        if (open.length >= MAX_DEPTH) throw new CborShapeError("nested too deep");
        open.push(items);
        break;
      }
      case 6:
        if (value !== EPOCH_TIME_TAG) throw new CborShapeError(`unsupported tag ${value}`);
        // The tagged item follows as the next item of the same container.
        if (open[top]! >= 0) open[top]!++;
        break;
      default:
        // Integers, simple values and floats carry nothing beyond their argument.
        break;
    }
  }
  if (offset !== bytes.length) throw new CborShapeError("bytes after the top-level item");
}
