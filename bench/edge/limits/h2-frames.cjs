// The HTTP/2 part of the ceiling servers h2-raw-server.cjs and h2-native-tls-server.cjs. It reads
// frame headers, acknowledges SETTINGS and PING, and responds to every HEADERS frame that ends its
// stream with one preallocated HEADERS and DATA pair in one write. It decodes no header block and
// keeps no flow control, so it is a limit to compare with, not a server.
'use strict';

/** Returns a frame header (RFC 9113 section 4.1) for stream 0. Responses patch in their stream id. */
function frameHeader(length, type, flags) {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  return header;
}

/** Encodes an HPACK literal without indexing whose name is static table entry `index` (RFC 7541 section 6.2.2). */
function literal(index, value) {
  return Buffer.concat([Buffer.from([0x0f, index - 15, value.length]), Buffer.from(value, 'latin1')]);
}

const SETTINGS = frameHeader(0, 0x4, 0x0);
const SETTINGS_ACK = frameHeader(0, 0x4, 0x1);

/**
 * Returns the frame reader of one connection: give it the bytes read, in order. `write` sends a
 * buffer, which it may keep. Responses carry a body of `size` bytes.
 */
function connectionReader(size, write) {
  // In the static table, :status 200 is entry 8, content-length 28 and content-type 31.
  const block = Buffer.concat([Buffer.from([0x88]), literal(28, String(size)), literal(31, 'application/octet-stream')]);
  const template = Buffer.concat([frameHeader(block.length, 0x1, 0x4), block, frameHeader(size, 0x0, 0x1), Buffer.alloc(size, 97)]);
  const dataHeaderAt = 9 + block.length;
  let pending = Buffer.alloc(0);
  let prefaceLeft = 24;
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    if (prefaceLeft > 0) {
      const skipped = Math.min(prefaceLeft, pending.length);
      prefaceLeft -= skipped;
      at = skipped;
    }
    while (pending.length - at >= 9) {
      const length = pending.readUIntBE(at, 3);
      if (pending.length - at < 9 + length) break;
      const type = pending[at + 3];
      const flags = pending[at + 4];
      const streamId = pending.readUInt32BE(at + 5) & 0x7fffffff;
      if (type === 0x1 && (flags & 0x1) !== 0) {
        const out = Buffer.from(template);
        out.writeUInt32BE(streamId, 5);
        out.writeUInt32BE(streamId, dataHeaderAt + 5);
        write(out);
      } else if (type === 0x4 && (flags & 0x1) === 0) {
        write(SETTINGS_ACK);
      } else if (type === 0x6 && (flags & 0x1) === 0) {
        const ping = Buffer.from(pending.subarray(at, at + 9 + length));
        ping[4] = 0x1;
        write(ping);
      }
      at += 9 + length;
    }
    // What is left is copied, since a reader may reuse the chunk's memory for its next read.
    pending = at === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(at));
  };
}

module.exports = { SETTINGS, connectionReader };
